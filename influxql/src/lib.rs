//! InfluxQL, the query language of InfluxDB 1.x: the statement tree and
//! its parser.
//!
//! ```text
//!  "SELECT mean(v) FROM cpu WHERE time > now() - 1h GROUP BY time(1m)"
//!        └─ parse() ─▶ Vec<Statement> ─▶ (the planner in influxql_query)
//! ```
//!
//! The parser covers the whole `SELECT` and `SHOW` language and the
//! statements clients send at start (`CREATE DATABASE`); statements Inflow
//! does not run (users, grants, continuous queries) parse to
//! [`Statement::Unsupported`] so the caller can answer them with a clear
//! error. Errors are worded as InfluxDB's, which clients and scripts show.

pub mod ast;
pub mod duration;
mod parser;

pub use ast::*;

/// A statement that does not parse. The text is InfluxDB's wording without
/// its `error parsing query: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses `text` into its statements (split by `;`).
pub fn parse(text: &str) -> Result<Vec<Statement>, ParseError> {
    parser::Parser::new(text).statements()
}

/// Parses one expression (a `WHERE` condition, for instance).
pub fn parse_expr(text: &str) -> Result<Expr, ParseError> {
    parser::Parser::new(text).expr()
}

#[cfg(test)]
mod tests;
