//! DataFusion catalog, schema and table providers over one database.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use buffer::Buffer;
use catalog::{DatabaseSchema, TableSchema};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// The schema name of user tables, as in InfluxDB 3.
pub(crate) const IOX_SCHEMA: &str = "iox";

/// The `public` catalog of a query: the database's tables in schema `iox`.
#[derive(Debug)]
pub struct DatabaseCatalog {
    iox: Arc<DatabaseTables>,
    system: Arc<crate::system::SystemTables>,
}

impl DatabaseCatalog {
    /// A catalog over `db`'s schema of the moment, with the `system` tables
    /// of catalog state `state`.
    pub fn new(db: Arc<DatabaseSchema>, buffer: Arc<Buffer>, state: Arc<catalog::CatalogState>) -> Self {
        Self {
            iox: Arc::new(DatabaseTables { db, buffer }),
            system: Arc::new(crate::system::SystemTables::new(state)),
        }
    }
}

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![IOX_SCHEMA.to_string(), crate::system::SYSTEM_SCHEMA.to_string()]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            IOX_SCHEMA => Some(Arc::clone(&self.iox) as Arc<dyn SchemaProvider>),
            crate::system::SYSTEM_SCHEMA => Some(Arc::clone(&self.system) as Arc<dyn SchemaProvider>),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct DatabaseTables {
    db: Arc<DatabaseSchema>,
    buffer: Arc<Buffer>,
}

#[async_trait]
impl SchemaProvider for DatabaseTables {
    fn table_names(&self) -> Vec<String> {
        self.db.tables().map(|t| t.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.db.table(name).map(|t| {
            Arc::new(BufferTable {
                db_id: self.db.id,
                schema: buffer::table_arrow_schema(t),
                table: Arc::clone(t),
                buffer: Arc::clone(&self.buffer),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.db.table(name).is_some()
    }
}

/// One table's buffered rows.
#[derive(Debug)]
struct BufferTable {
    db_id: u32,
    table: Arc<TableSchema>,
    schema: SchemaRef,
    buffer: Arc<Buffer>,
}

#[async_trait]
impl TableProvider for BufferTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self
            .buffer
            .snapshot(self.db_id, &self.table)
            .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?;
        let partitions = match batch {
            Some(b) => vec![vec![b]],
            None => vec![vec![]],
        };
        MemTable::try_new(Arc::clone(&self.schema), partitions)?
            .scan(state, projection, filters, limit)
            .await
    }
}
