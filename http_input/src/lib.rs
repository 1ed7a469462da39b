//! What an HTTP request carries, decoded before a handler acts on it: the
//! body (gzip undone, within the size limit, so neither a large body nor a
//! gzip bomb gets through) and the parameters of the write and query
//! endpoints (from the query string, a form, JSON or an InfluxQL body).
//!
//! It is its own crate, free of the server and the query engine, so that
//! the fuzz targets under `fuzz/` drive exactly the code the server runs
//! on every request, built in seconds.

pub mod body;
pub mod query;
pub mod write;

pub use body::{BodyError, decode_body};
pub use query::{InfluxqlParams, SqlParams};
pub use write::{WriteApi, WriteTarget};
