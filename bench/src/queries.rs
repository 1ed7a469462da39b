//! The TSBS `cpu-only` queries, in SQL and in InfluxQL, over the time range
//! the generated data covers.

use crate::data::DataSpec;

/// One query in both languages.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    /// TSBS name.
    pub(crate) name: &'static str,
    /// SQL (Inflow, DataFusion dialect).
    pub(crate) sql: String,
    /// InfluxQL (InfluxDB 1.x).
    pub(crate) influxql: String,
}

fn rfc3339(s: i64) -> String {
    // Seconds since the epoch to `YYYY-MM-DDTHH:MM:SSZ` (UTC).
    let days = s.div_euclid(86_400);
    let secs = s.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The queries, with windows starting at the data's first timestamp.
pub(crate) fn all(spec: &DataSpec) -> Vec<Query> {
    let t0 = spec.start_s;
    let end = t0 + (spec.points as i64) * spec.interval_s as i64;
    let w = |hours: i64| (rfc3339(t0), rfc3339(t0 + hours * 3600));
    let hosts = |n: usize| -> Vec<String> {
        (0..n.min(spec.hosts))
            .map(|h| format!("host_{h}"))
            .collect()
    };
    let sql_in = |hs: &[String]| {
        hs.iter()
            .map(|h| format!("'{h}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let iql_or = |hs: &[String]| {
        hs.iter()
            .map(|h| format!("hostname = '{h}'"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let five = [
        "usage_user",
        "usage_system",
        "usage_idle",
        "usage_nice",
        "usage_iowait",
    ];
    let all_fields = crate::data::FIELDS;
    let max_sql = |fs: &[&str]| {
        fs.iter()
            .map(|f| format!("max({f}) AS max_{f}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let max_iql = |fs: &[&str]| {
        fs.iter()
            .map(|f| format!("max({f})"))
            .collect::<Vec<_>>()
            .join(", ")
    };

    let (a1, b1) = w(1);
    let (a12, b12) = w(12);
    let (a8, b8) = w(8);
    let h1 = hosts(1);
    let h8 = hosts(8);
    vec![
        Query {
            name: "single-groupby-1-1-1",
            sql: format!(
                "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(usage_user) AS max_usage_user FROM cpu \
                 WHERE hostname IN ({}) AND time >= '{a1}' AND time < '{b1}' GROUP BY minute ORDER BY minute",
                sql_in(&h1)
            ),
            influxql: format!(
                "SELECT max(usage_user) FROM cpu WHERE ({}) AND time >= '{a1}' AND time < '{b1}' GROUP BY time(1m)",
                iql_or(&h1)
            ),
        },
        Query {
            name: "single-groupby-5-1-12",
            sql: format!(
                "SELECT date_bin(INTERVAL '1 minute', time) AS minute, {} FROM cpu \
                 WHERE hostname IN ({}) AND time >= '{a12}' AND time < '{b12}' GROUP BY minute ORDER BY minute",
                max_sql(&five),
                sql_in(&h1)
            ),
            influxql: format!(
                "SELECT {} FROM cpu WHERE ({}) AND time >= '{a12}' AND time < '{b12}' GROUP BY time(1m)",
                max_iql(&five),
                iql_or(&h1)
            ),
        },
        Query {
            name: "cpu-max-all-8",
            sql: format!(
                "SELECT date_bin(INTERVAL '1 hour', time) AS hour, {} FROM cpu \
                 WHERE hostname IN ({}) AND time >= '{a8}' AND time < '{b8}' GROUP BY hour ORDER BY hour",
                max_sql(&all_fields),
                sql_in(&h8)
            ),
            influxql: format!(
                "SELECT {} FROM cpu WHERE ({}) AND time >= '{a8}' AND time < '{b8}' GROUP BY time(1h)",
                max_iql(&all_fields),
                iql_or(&h8)
            ),
        },
        Query {
            name: "high-cpu-1",
            sql: format!(
                "SELECT * FROM cpu WHERE usage_user > 90 AND hostname IN ({}) AND time >= '{a12}' AND time < '{b12}'",
                sql_in(&h1)
            ),
            influxql: format!(
                "SELECT * FROM cpu WHERE usage_user > 90 AND ({}) AND time >= '{a12}' AND time < '{b12}'",
                iql_or(&h1)
            ),
        },
        Query {
            name: "double-groupby-1",
            sql: format!(
                "SELECT date_bin(INTERVAL '1 hour', time) AS hour, hostname, avg(usage_user) AS mean_usage_user FROM cpu \
                 WHERE time >= '{a12}' AND time < '{b12}' GROUP BY hour, hostname ORDER BY hostname, hour"
            ),
            influxql: format!(
                "SELECT mean(usage_user) FROM cpu WHERE time >= '{a12}' AND time < '{b12}' GROUP BY time(1h), hostname"
            ),
        },
        Query {
            name: "lastpoint",
            sql: "SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC"
                .to_string(),
            influxql: "SELECT last(*) FROM cpu GROUP BY hostname".to_string(),
        },
        Query {
            name: "groupby-orderby-limit",
            sql: format!(
                "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(usage_user) AS max_usage_user FROM cpu \
                 WHERE time < '{}' GROUP BY minute ORDER BY minute DESC LIMIT 5",
                rfc3339(end)
            ),
            influxql: format!(
                "SELECT max(usage_user) FROM cpu WHERE time >= '{}' AND time < '{}' GROUP BY time(1m) ORDER BY time DESC LIMIT 5",
                rfc3339(t0),
                rfc3339(end)
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_451_606_400), "2016-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
