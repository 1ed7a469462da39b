//! The parameters of the query endpoints, from the query string and, for
//! a POST, the body: a JSON object, a form, or (InfluxQL only) the
//! statement itself as `application/vnd.influxql`. A body's value wins
//! over the query string's.

use serde::Deserialize;

/// Whether a body, after any leading whitespace, opens a JSON object.
fn looks_like_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// `/api/v3/query_sql` and the v3 query endpoints.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct SqlParams {
    pub db: Option<String>,
    pub q: Option<String>,
    pub format: Option<String>,
    /// In a query string or form: a JSON object as text. In a JSON body: an object.
    pub params: Option<serde_json::Value>,
}

impl SqlParams {
    /// From the query string and a POST's non-empty body with its content
    /// type. The error is the body of a 400.
    pub fn from_request(query: Option<&str>, body: Option<(&[u8], &str)>) -> Result<Self, String> {
        let mut p = serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .map(Self::from_pairs)
            .map_err(|e| format!("invalid query string: {e}"))?;
        let Some((bytes, content_type)) = body.filter(|(b, _)| !b.is_empty()) else {
            return Ok(p);
        };
        // InfluxDB 3 Core reads every POST body as JSON, whatever its
        // content type (`curl -d` sends JSON labelled as a form); a body
        // that is not a JSON object is read as a form when labelled so.
        let from_body: SqlParams = if content_type.starts_with("application/x-www-form-urlencoded")
            && !looks_like_json(bytes)
        {
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
                .map(Self::from_pairs)
                .map_err(|e| format!("invalid form body: {e}"))?
        } else {
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON request body: {e}"))?
        };
        p.db = from_body.db.or(p.db);
        p.q = from_body.q.or(p.q);
        p.format = from_body.format.or(p.format);
        p.params = from_body.params.or(p.params);
        Ok(p)
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut p = SqlParams::default();
        for (k, v) in pairs {
            match k.as_str() {
                "db" => p.db = Some(v),
                "q" => p.q = Some(v),
                "format" => p.format = Some(v),
                "params" => p.params = Some(serde_json::Value::String(v)),
                _ => {}
            }
        }
        p
    }
}

/// InfluxDB 1.x's `/query` and `/api/v3/query_influxql`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InfluxqlParams {
    pub db: Option<String>,
    pub rp: Option<String>,
    pub q: Option<String>,
    pub epoch: Option<String>,
    pub chunked: bool,
    /// Positive, when given as a number.
    pub chunk_size: Option<usize>,
    pub pretty: bool,
    /// Bind parameters: a JSON object as text.
    pub params: Option<String>,
    pub format: Option<String>,
}

impl InfluxqlParams {
    /// From the query string and a POST's non-empty body with its content
    /// type. The error is the body of a 400.
    pub fn from_request(query: Option<&str>, body: Option<(&[u8], &str)>) -> Result<Self, String> {
        let mut p = InfluxqlParams::default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| format!("invalid query string: {e}"))?;
        for (k, v) in pairs {
            p.set(&k, v);
        }
        let Some((bytes, content_type)) = body.filter(|(b, _)| !b.is_empty()) else {
            return Ok(p);
        };
        if content_type.starts_with("application/vnd.influxql") {
            p.q = Some(String::from_utf8_lossy(bytes).into_owned());
        } else if content_type.starts_with("application/json") || looks_like_json(bytes) {
            let v: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| format!("invalid JSON request body: {e}"))?;
            if let serde_json::Value::Object(m) = v {
                for (k, v) in m {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Null => continue,
                        other => other.to_string(),
                    };
                    p.set(&k, text);
                }
            }
        } else {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
                .map_err(|e| format!("invalid form body: {e}"))?;
            for (k, v) in pairs {
                p.set(&k, v);
            }
        }
        Ok(p)
    }

    fn set(&mut self, k: &str, v: String) {
        match k {
            "db" => self.db = Some(v),
            "rp" => self.rp = Some(v),
            "q" => self.q = Some(v),
            "epoch" => self.epoch = Some(v),
            "chunked" => self.chunked = v == "true",
            "chunk_size" => self.chunk_size = v.parse().ok().filter(|n| *n > 0),
            "pretty" => self.pretty = v == "true",
            "params" => self.params = Some(v),
            "format" => self.format = Some(v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_body_wins_over_the_query_string() {
        let p = SqlParams::from_request(
            Some("db=a&q=SELECT+1&format=csv"),
            Some((
                br#"{"db":"b","params":{"x":1}}"#,
                "application/x-www-form-urlencoded",
            )),
        )
        .expect("valid");
        assert_eq!(p.db.as_deref(), Some("b"));
        assert_eq!(p.q.as_deref(), Some("SELECT 1"));
        assert_eq!(p.format.as_deref(), Some("csv"));
        assert_eq!(p.params, Some(serde_json::json!({"x": 1})));
        let p = SqlParams::from_request(
            None,
            Some((b"db=c&q=x", "application/x-www-form-urlencoded")),
        )
        .expect("form");
        assert_eq!(p.db.as_deref(), Some("c"));
        let e = SqlParams::from_request(None, Some((b"db=c", "text/plain"))).expect_err("json");
        assert!(e.starts_with("invalid JSON request body"), "{e}");
    }

    #[test]
    fn influxql_reads_every_body_kind() {
        let p = InfluxqlParams::from_request(
            Some("db=a&chunked=true&chunk_size=0&epoch=ms"),
            Some((b"SHOW DATABASES", "application/vnd.influxql")),
        )
        .expect("valid");
        assert_eq!(p.q.as_deref(), Some("SHOW DATABASES"));
        assert!(p.chunked);
        assert_eq!(p.chunk_size, None);
        let p = InfluxqlParams::from_request(
            None,
            Some((br#"{"db":"x","chunk_size":5,"pretty":true,"rp":null}"#, "")),
        )
        .expect("json");
        assert_eq!(
            (p.db.as_deref(), p.chunk_size, p.pretty),
            (Some("x"), Some(5), true)
        );
        let p = InfluxqlParams::from_request(None, Some((b"q=SELECT%201", "")))
            .expect("a form by default");
        assert_eq!(p.q.as_deref(), Some("SELECT 1"));
    }
}
