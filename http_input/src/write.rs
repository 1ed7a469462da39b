//! The query string of the three write endpoints: they differ in
//! parameter names, precision spellings and the `accept_partial` default.

use line_protocol::Precision;
use serde::Deserialize;

/// Which write endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteApi {
    /// InfluxDB 1.x's `/write`.
    V1,
    /// InfluxDB 2's `/api/v2/write`.
    V2,
    /// InfluxDB 3's `/api/v3/write_lp`.
    V3,
}

/// What a write request's query string asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTarget {
    /// The database: `db`, v2's `bucket`, or v1's `db/rp` for a retention
    /// policy other than the default, as InfluxDB 3 Core names it.
    pub db: String,
    pub precision: Precision,
    pub accept_partial: bool,
    pub no_sync: bool,
}

#[derive(Debug, Default, Deserialize)]
struct RawWriteParams {
    db: Option<String>,
    bucket: Option<String>,
    rp: Option<String>,
    precision: Option<String>,
    accept_partial: Option<bool>,
    no_sync: Option<bool>,
}

impl WriteTarget {
    /// Reads `query` (the part after `?`, if any). The error is the body
    /// of a 400.
    pub fn from_query(api: WriteApi, query: Option<&str>) -> Result<WriteTarget, String> {
        let p: RawWriteParams = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| format!("invalid query parameters: {e}"))?;
        let db = match api {
            WriteApi::V2 => p.bucket.or(p.db),
            _ => p.db,
        }
        .filter(|d| !d.is_empty())
        .ok_or_else(|| match api {
            WriteApi::V2 => {
                "missing query parameter 'bucket' (the database to write to)".to_string()
            }
            _ => "missing query parameter 'db' (the database to write to)".to_string(),
        })?;
        let db = if api == WriteApi::V1 {
            v1_database(db, p.rp.as_deref())?
        } else {
            db
        };
        let precision = match (api, p.precision.as_deref()) {
            (WriteApi::V3, None) => Precision::Auto,
            (_, None) => Precision::Nanosecond,
            (WriteApi::V3, Some(s)) => Precision::parse_v3(s).ok_or_else(|| {
                format!(
                    "invalid precision '{s}': use auto, nanosecond, microsecond, millisecond or second"
                )
            })?,
            (WriteApi::V2, Some(s)) => Precision::parse_v2(s)
                .ok_or_else(|| format!("invalid precision '{s}': use ns, us, ms or s"))?,
            (WriteApi::V1, Some(s)) => Precision::parse_v1(s).ok_or_else(|| {
                format!("invalid precision '{s}': use n, ns, u, us, µ, ms, s, m or h")
            })?,
        };
        Ok(WriteTarget {
            db,
            precision,
            accept_partial: p.accept_partial.unwrap_or(api == WriteApi::V3),
            no_sync: p.no_sync.unwrap_or(false),
        })
    }
}

/// The database a v1 write goes to: `db`, or `db/rp` for a retention
/// policy other than the default (`autogen` or none). A `/` in either is
/// refused, since `db/rp` would be ambiguous.
fn v1_database(db: String, rp: Option<&str>) -> Result<String, String> {
    if db.contains('/') || rp.is_some_and(|rp| rp.contains('/')) {
        return Err(
            "the database and retention policy of a v1 write must not contain '/'; give the retention policy as 'rp'"
                .into(),
        );
    }
    Ok(match rp {
        None | Some("" | "''" | "autogen") => db,
        Some(rp) => format!("{db}/{rp}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_api_names_its_database() {
        let t = WriteTarget::from_query(WriteApi::V2, Some("bucket=b&db=d&precision=ms"))
            .expect("valid");
        assert_eq!(t.db, "b");
        assert_eq!(t.precision, Precision::Millisecond);
        assert!(!t.accept_partial);
        let t = WriteTarget::from_query(WriteApi::V1, Some("db=d&rp=week")).expect("valid");
        assert_eq!(t.db, "d/week");
        let t = WriteTarget::from_query(WriteApi::V1, Some("db=d&rp=autogen")).expect("valid");
        assert_eq!(t.db, "d");
        let t = WriteTarget::from_query(WriteApi::V3, Some("db=d")).expect("valid");
        assert_eq!((t.precision, t.accept_partial), (Precision::Auto, true));
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        let e = WriteTarget::from_query(WriteApi::V2, None).expect_err("no bucket");
        assert!(e.contains("'bucket'"), "{e}");
        let e = WriteTarget::from_query(WriteApi::V3, Some("db=d&precision=n")).expect_err("v3");
        assert!(e.contains("use auto"), "{e}");
        let e =
            WriteTarget::from_query(WriteApi::V3, Some("db=d&no_sync=maybe")).expect_err("bool");
        assert!(e.starts_with("invalid query parameters"), "{e}");
        let e = WriteTarget::from_query(WriteApi::V1, Some("db=a/b")).expect_err("slash");
        assert!(e.contains("'/'"), "{e}");
    }
}
