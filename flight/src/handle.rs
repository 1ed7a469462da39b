//! What a ticket or a statement handle carries: InfluxDB 3's JSON ticket,
//! and Inflow's own handles for Flight SQL statements (the query itself, so
//! any querier can run it and nothing is kept between calls).

use serde::{Deserialize, Serialize};
use services::Params;
use tonic::Status;

/// The language of an InfluxDB 3 ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryType {
    /// SQL.
    Sql,
    /// InfluxQL.
    Influxql,
}

/// InfluxDB 3's Flight ticket: `{"database", "sql_query", "query_type",
/// "params"?}`, as `influxdb3-python` and the other v3 clients send it.
#[derive(Debug, Clone, Deserialize)]
pub struct InfluxTicket {
    /// The database; IOx's older names are accepted too.
    #[serde(alias = "namespace_name", alias = "bucket")]
    pub database: String,
    /// The query text.
    pub sql_query: String,
    /// `sql` (the default) or `influxql`.
    #[serde(default = "sql")]
    pub query_type: QueryType,
    /// Values for `$name` placeholders.
    #[serde(default)]
    pub params: Option<Params>,
}

fn sql() -> QueryType {
    QueryType::Sql
}

impl InfluxTicket {
    /// `None` when `ticket` is not JSON (a Flight SQL ticket); an error when
    /// it is JSON but not a valid ticket.
    pub fn parse(ticket: &[u8]) -> Result<Option<Self>, Status> {
        let first = ticket.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Ok(None);
        }
        serde_json::from_slice(ticket).map(Some).map_err(|e| {
            Status::invalid_argument(format!(
                "invalid ticket: {e}; expected {{\"database\", \"sql_query\", \"query_type\": \"sql\"}}"
            ))
        })
    }
}

/// A Flight SQL statement: the handle of a ticket, or of a prepared
/// statement (with its bound parameters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Statement {
    /// The database, from the request's `database` header.
    pub database: String,
    /// The SQL.
    pub sql: String,
    /// Bound parameters, by placeholder name (`1` for `$1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Params>,
}

impl Statement {
    /// The handle's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // A struct of strings and JSON values always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a handle made by [`Statement::encode`].
    pub(crate) fn decode(handle: &[u8]) -> Result<Self, Status> {
        serde_json::from_slice(handle)
            .map_err(|e| Status::invalid_argument(format!("invalid statement handle: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn influx_tickets() {
        let t =
            InfluxTicket::parse(br#"{"database":"db","sql_query":"SELECT 1","query_type":"sql"}"#)
                .unwrap()
                .unwrap();
        assert_eq!(
            (t.database.as_str(), t.sql_query.as_str(), t.query_type),
            ("db", "SELECT 1", QueryType::Sql)
        );
        let t = InfluxTicket::parse(
            br#" {"namespace_name":"db","sql_query":"q","query_type":"influxql","params":{"h":"a"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.query_type, QueryType::Influxql);
        assert_eq!(t.params.unwrap()["h"], "a");
        assert!(
            InfluxTicket::parse(b"\x0a\x10type.googleapis.com")
                .unwrap()
                .is_none()
        );
        assert!(InfluxTicket::parse(br#"{"database":"db"}"#).is_err());
    }

    #[test]
    fn statement_handles_round_trip() {
        let s = Statement {
            database: "db".into(),
            sql: "SELECT $1".into(),
            params: Some(serde_json::from_str(r#"{"1": 5}"#).unwrap()),
        };
        assert_eq!(Statement::decode(&s.encode()).unwrap(), s);
        assert!(Statement::decode(b"nope").is_err());
    }
}
