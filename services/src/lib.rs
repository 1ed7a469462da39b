//! The two services every API front end calls, and their plain request,
//! outcome and error types.
//!
//! ```text
//!  http_api, flight ─▶ WriteService ◀── ingester
//!                                    ─▶ QueryService ◀── query::QueryEngine
//!  http_api ─────────▶ EngineService ◀── engine::ProcessingEngine
//!  ingester ─────────▶ FlushListener ◀── engine (every durable WAL flush)
//! ```
//!
//! Front ends depend on this crate only, not on the write path's or the
//! query engine's internals; the server assembly plugs the implementations
//! in.

pub mod engine;
pub mod influxql;
mod query;
mod write;

pub use query::{INTERNAL_DB, Params, QueryError, QueryResults, QueryService, SqlQuery};
pub use write::{
    Limits, MAX_REPORTED_ERRORS, RejectedLine, WriteError, WriteOutcome, WriteRequest, WriteService,
};
