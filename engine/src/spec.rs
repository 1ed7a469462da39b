//! Trigger specifications, as InfluxDB 3 writes them: `table:NAME`,
//! `all_tables`, `every:DURATION`, `cron:SECONDS MINUTES HOURS DAYS MONTHS
//! WEEKDAYS` and `request:PATH`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest `every:` interval.
const MAX_EVERY: Duration = Duration::from_secs(366 * 86_400);

/// When a trigger's plugin runs.
#[derive(Debug, Clone)]
pub enum TriggerSpec {
    /// On every WAL flush with rows of the table.
    Table(String),
    /// On every WAL flush of the database.
    AllTables,
    /// Every interval, at multiples of it since the epoch.
    Every(Duration),
    /// On a 6-field cron schedule (with seconds), in UTC.
    Cron(Box<cron::Schedule>),
    /// On requests to `/api/v3/engine/PATH`.
    Request(String),
}

impl TriggerSpec {
    /// Parses a specification; the error says what is wrong with it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid trigger specification '{spec}': {why}");
        if spec == "all_tables" {
            return Ok(TriggerSpec::AllTables);
        }
        let Some((kind, rest)) = spec.split_once(':') else {
            return Err(bad(
                "expected table:NAME, all_tables, every:DURATION, cron:EXPRESSION or request:PATH",
            ));
        };
        match kind {
            "table" if !rest.is_empty() => Ok(TriggerSpec::Table(rest.to_string())),
            "table" => Err(bad("no table name")),
            "every" => {
                let d = humantime::parse_duration(rest).map_err(|e| bad(&e.to_string()))?;
                if d.is_zero() {
                    return Err(bad("the interval must be longer than zero"));
                }
                if d > MAX_EVERY {
                    return Err(bad("the interval can be a year at most"));
                }
                Ok(TriggerSpec::Every(d))
            }
            "cron" => {
                let fields = rest.split_whitespace().count();
                if fields != 6 {
                    return Err(bad(&format!(
                        "a cron expression has 6 fields (second minute hour day-of-month month day-of-week), not {fields}"
                    )));
                }
                cron::Schedule::from_str(rest)
                    .map(|s| TriggerSpec::Cron(Box::new(s)))
                    .map_err(|e| bad(&e.to_string()))
            }
            "request" => {
                let ok = !rest.is_empty()
                    && rest.split('/').all(|seg| {
                        !seg.is_empty()
                            && seg
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    });
                if ok {
                    Ok(TriggerSpec::Request(rest.to_string()))
                } else {
                    Err(bad(
                        "a request path is letters, digits, '_' and '-', in segments separated by '/'",
                    ))
                }
            }
            _ => Err(bad(&format!("unknown kind '{kind}'"))),
        }
    }

    /// Whether the plugin runs on WAL flushes.
    pub fn is_wal(&self) -> bool {
        matches!(self, TriggerSpec::Table(_) | TriggerSpec::AllTables)
    }

    /// Whether the plugin runs on a schedule.
    pub fn is_schedule(&self) -> bool {
        matches!(self, TriggerSpec::Every(_) | TriggerSpec::Cron(_))
    }

    /// The first firing after `after` (schedule triggers only).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            TriggerSpec::Every(d) => {
                let step = i64::try_from(d.as_nanos()).ok()?;
                let now = after.timestamp_nanos_opt()?;
                let next = (now.div_euclid(step) + 1).checked_mul(step)?;
                Some(DateTime::from_timestamp_nanos(next))
            }
            TriggerSpec::Cron(s) => s.after(&after).next(),
            _ => None,
        }
    }

    /// The table of a `table:` trigger.
    pub fn table(&self) -> Option<&str> {
        match self {
            TriggerSpec::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The path of a request trigger.
    pub fn request_path(&self) -> Option<&str> {
        match self {
            TriggerSpec::Request(p) => Some(p),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifications_parse_as_influxdb_writes_them() {
        assert!(matches!(
            TriggerSpec::parse("all_tables"),
            Ok(TriggerSpec::AllTables)
        ));
        assert_eq!(
            TriggerSpec::parse("table:cpu").unwrap().table(),
            Some("cpu")
        );
        assert!(matches!(
            TriggerSpec::parse("every:30s"),
            Ok(TriggerSpec::Every(d)) if d == Duration::from_secs(30)
        ));
        assert!(matches!(
            TriggerSpec::parse("every:1M"),
            Ok(TriggerSpec::Every(_))
        ));
        assert!(TriggerSpec::parse("cron:0 0 6 * * 1-5").is_ok());
        assert_eq!(
            TriggerSpec::parse("request:hello-world")
                .unwrap()
                .request_path(),
            Some("hello-world")
        );
        for bad in [
            "",
            "table:",
            "every:0s",
            "every:2y",
            "every:soon",
            "cron:* * * * *",
            "cron:61 * * * * *",
            "request:",
            "request:a/../b",
            "request:/x",
            "wal:cpu",
        ] {
            let e = TriggerSpec::parse(bad).unwrap_err();
            assert!(e.contains("invalid trigger specification"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_fires_at_multiples_of_its_interval() {
        let spec = TriggerSpec::parse("every:10s").unwrap();
        let t = DateTime::from_timestamp(1_700_000_003, 0).unwrap();
        assert_eq!(spec.next_after(t).unwrap().timestamp(), 1_700_000_010);
        let t = DateTime::from_timestamp(1_700_000_010, 0).unwrap();
        assert_eq!(spec.next_after(t).unwrap().timestamp(), 1_700_000_020);
        let cron = TriggerSpec::parse("cron:*/5 * * * * *").unwrap();
        let t = DateTime::from_timestamp(1_700_000_001, 0).unwrap();
        assert_eq!(cron.next_after(t).unwrap().timestamp(), 1_700_000_005);
    }
}
