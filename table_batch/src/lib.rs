//! A table's rows as Arrow: the shape (InfluxDB 3's column types and
//! metadata) and the batch rules every stage applies the same way.
//!
//! ```text
//!  catalog TableSchema ─▶ table_arrow_schema() ─▶ SchemaRef
//!  RecordBatch ─▶ align() ─▶ sort_by_key() ─▶ dedup() ─▶ compact_dictionaries()
//! ```
//!
//! The buffer, persistence, compaction and the query path all depend on
//! these, and on nothing else of each other, so a rule (say, which of two
//! rows with one series key and time wins) is written once.
//!
//! Dedup rule: rows with the same tag set and time are one point; for each
//! field, the value of the latest row that has one wins, "latest" being the
//! later row in the batch.

mod deletes;
mod rules;
mod schema;

pub use deletes::{deleted_rows, without_deleted};
pub use rules::{
    align, compact_dictionaries, dedup, key_columns, sort_by_key, tag_mask, time_range,
};
pub use schema::{COLUMN_TYPE_KEY, arrow_field, arrow_type, column_type_name, table_arrow_schema};

#[cfg(test)]
mod tests;
