//! The Arrow shape of a table: InfluxDB 3's column types and metadata.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use catalog::{ColumnDef, ColumnKind, FieldType, TableSchema};

/// The metadata key InfluxDB 3 (IOx) uses for a column's role.
pub const COLUMN_TYPE_KEY: &str = "iox::column::type";

/// The Arrow type of a column: tags are dictionary strings, time is a
/// nanosecond timestamp without time zone.
pub fn arrow_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Tag => {
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        }
        ColumnKind::Time => DataType::Timestamp(TimeUnit::Nanosecond, None),
        ColumnKind::Field(FieldType::Float) => DataType::Float64,
        ColumnKind::Field(FieldType::Integer) => DataType::Int64,
        ColumnKind::Field(FieldType::UInteger) => DataType::UInt64,
        ColumnKind::Field(FieldType::String) => DataType::Utf8,
        ColumnKind::Field(FieldType::Boolean) => DataType::Boolean,
    }
}

/// The `iox::column::type` value of a column.
pub fn column_type_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Tag => "iox::column_type::tag",
        ColumnKind::Time => "iox::column_type::timestamp",
        ColumnKind::Field(FieldType::Float) => "iox::column_type::field::float",
        ColumnKind::Field(FieldType::Integer) => "iox::column_type::field::integer",
        ColumnKind::Field(FieldType::UInteger) => "iox::column_type::field::uinteger",
        ColumnKind::Field(FieldType::String) => "iox::column_type::field::string",
        ColumnKind::Field(FieldType::Boolean) => "iox::column_type::field::boolean",
    }
}

/// The Arrow field of a column. Time is never null.
pub fn arrow_field(c: &ColumnDef) -> Field {
    Field::new(
        c.name.as_ref(),
        arrow_type(c.kind),
        c.kind != ColumnKind::Time,
    )
    .with_metadata(HashMap::from([(
        COLUMN_TYPE_KEY.to_string(),
        column_type_name(c.kind).to_string(),
    )]))
}

/// The Arrow schema of a table: every column, sorted by name, as InfluxDB 3
/// shows them (`SELECT *` lists columns alphabetically).
pub fn table_arrow_schema(table: &TableSchema) -> SchemaRef {
    let mut cols: Vec<&ColumnDef> = table.columns().iter().collect();
    cols.sort_by(|a, b| a.name.cmp(&b.name));
    Arc::new(Schema::new(
        cols.into_iter().map(arrow_field).collect::<Vec<_>>(),
    ))
}
