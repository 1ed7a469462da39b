//! Reading a role's load for the autoscaling decision: from a Prometheus
//! server's query API (as KEDA's Prometheus scaler does), or from the pods'
//! own `/metrics`, with rates from the previous scrape of each pod.
//!
//! The metrics every Inflow pod exports: `process_cpu_seconds_total`,
//! `inflow_write_lines_total`, `inflow_queries_in_flight` and the
//! `inflow_query_duration_seconds` histogram.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::autoscale::PodLoad;

/// A pod to scrape: its name and address (`ip:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    /// The pod's name.
    pub name: String,
    /// Where its `/metrics` is.
    pub address: String,
}

/// The counters of one scrape of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// `process_cpu_seconds_total`.
    pub cpu_seconds: Option<f64>,
    /// `inflow_write_lines_total`.
    pub write_lines: Option<f64>,
    /// `inflow_queries_in_flight`.
    pub queries_in_flight: Option<f64>,
    /// `inflow_query_duration_seconds_bucket` summed over the APIs, by `le`.
    pub query_buckets: BTreeMap<String, f64>,
}

/// The value of a sample line's label `name`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')?;
    Some(&labels[start..start + end])
}

/// Reads the metrics the decision needs from a Prometheus text exposition.
pub fn parse_exposition(text: &str) -> Scrape {
    let mut scrape = Scrape {
        cpu_seconds: None,
        write_lines: None,
        queries_in_flight: None,
        query_buckets: BTreeMap::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some((s, v)) => (s.trim(), v.trim()),
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.find('{') {
            Some(i) => (&series[..i], &series[i..]),
            None => (series, ""),
        };
        let add = |slot: &mut Option<f64>| *slot = Some(slot.unwrap_or(0.0) + value);
        match name {
            "process_cpu_seconds_total" => add(&mut scrape.cpu_seconds),
            "inflow_write_lines_total" => add(&mut scrape.write_lines),
            "inflow_queries_in_flight" => add(&mut scrape.queries_in_flight),
            "inflow_query_duration_seconds_bucket" => {
                if let Some(le) = label(labels, "le") {
                    *scrape.query_buckets.entry(le.to_string()).or_insert(0.0) += value;
                }
            }
            _ => {}
        }
    }
    scrape
}

/// The 99th percentile (ms) of the observations between two cumulative
/// histograms, interpolated within its bucket as Prometheus'
/// `histogram_quantile` does; `None` without observations.
pub fn p99_ms(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter_map(|(le, count)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, count - before.get(le).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = 0.99 * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower * 1e3);
            }
            let within = count - below;
            let fraction = if within > 0.0 {
                (rank - below) / within
            } else {
                1.0
            };
            return Some((lower + (bound - lower) * fraction) * 1e3);
        }
        (lower, below) = (bound, count);
    }
    None
}

/// Remembers each pod's last scrape, for rates.
#[derive(Debug, Default)]
pub struct Sampler {
    last: Mutex<HashMap<String, (Instant, Scrape)>>,
}

impl Sampler {
    /// The load of `pod` from its scrape `now` and the one before (rates
    /// need two: the first scrape of a pod gives only its gauge).
    pub fn load(&self, pod: &str, now: Instant, scrape: Scrape) -> PodLoad {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let previous = last.insert(pod.to_string(), (now, scrape.clone()));
        let mut load = PodLoad {
            cpu: None,
            write_lines_per_second: None,
            queries_in_flight: scrape.queries_in_flight,
            query_p99_ms: None,
        };
        if let Some((then, before)) = previous {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                let rate = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    // A restarted pod's counters start over.
                    (Some(a), Some(b)) if b >= a => Some((b - a) / seconds),
                    _ => None,
                };
                load.cpu = rate(before.cpu_seconds, scrape.cpu_seconds);
                load.write_lines_per_second = rate(before.write_lines, scrape.write_lines);
                load.query_p99_ms = p99_ms(&before.query_buckets, &scrape.query_buckets);
            }
        }
        load
    }

    /// Forgets pods no longer in `names`.
    pub fn retain(&self, names: &[String]) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.retain(|k, _| names.contains(k));
    }
}

/// Scrapes each pod's `/metrics` (a pod that does not answer is `None`).
pub async fn from_pods(
    http: &reqwest::Client,
    sampler: &Sampler,
    pods: &[PodTarget],
) -> Vec<Option<PodLoad>> {
    let mut loads = Vec::with_capacity(pods.len());
    for pod in pods {
        let text = async {
            let r = http
                .get(format!("http://{}/metrics", pod.address))
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.text().await.ok()
        }
        .await;
        loads.push(text.map(|t| sampler.load(&pod.name, Instant::now(), parse_exposition(&t))));
    }
    sampler.retain(&pods.iter().map(|p| p.name.clone()).collect::<Vec<_>>());
    loads
}

/// Runs one instant query; the value of each series by its `instance`
/// (else `pod`) label. NaN values (a quantile of no observations) are left out.
async fn instant(
    http: &reqwest::Client,
    url: &str,
    query: &str,
) -> Result<HashMap<String, f64>, String> {
    let r = http
        .get(format!("{}/api/v1/query", url.trim_end_matches('/')))
        .query(&[("query", query)])
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("Prometheus at {url}: {e}"))?;
    let body: Value = r
        .json()
        .await
        .map_err(|e| format!("Prometheus at {url}: {e}"))?;
    if body["status"] != "success" {
        return Err(format!(
            "Prometheus at {url} refused `{query}`: {}",
            body["error"].as_str().unwrap_or("no reason given")
        ));
    }
    let mut out = HashMap::new();
    for series in body["data"]["result"].as_array().into_iter().flatten() {
        let key = series["metric"]["instance"]
            .as_str()
            .or(series["metric"]["pod"].as_str())
            .unwrap_or_default()
            .to_string();
        let value = series["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite());
        if let Some(v) = value {
            out.insert(key, v);
        }
    }
    Ok(out)
}

/// The role's pods' loads from Prometheus: one per series found, and
/// `None` for each of the `replicas` pods it has no series of.
pub async fn from_prometheus(
    http: &reqwest::Client,
    url: &str,
    selector: &str,
    window: &str,
    replicas: usize,
) -> Result<Vec<Option<PodLoad>>, String> {
    let cpu = instant(
        http,
        url,
        &format!("rate(process_cpu_seconds_total{{{selector}}}[{window}])"),
    )
    .await?;
    let lines = instant(
        http,
        url,
        &format!("rate(inflow_write_lines_total{{{selector}}}[{window}])"),
    )
    .await?;
    let in_flight = instant(
        http,
        url,
        &format!("sum by (instance) (inflow_queries_in_flight{{{selector}}})"),
    )
    .await?;
    let p99 = instant(
        http,
        url,
        &format!(
            "1000 * histogram_quantile(0.99, sum by (instance, le) \
             (rate(inflow_query_duration_seconds_bucket{{{selector}}}[{window}])))"
        ),
    )
    .await?;
    let mut instances: Vec<&String> = cpu
        .keys()
        .chain(lines.keys())
        .chain(in_flight.keys())
        .collect();
    instances.sort();
    instances.dedup();
    let mut loads: Vec<Option<PodLoad>> = instances
        .iter()
        .map(|i| {
            Some(PodLoad {
                cpu: cpu.get(*i).copied(),
                write_lines_per_second: lines.get(*i).copied(),
                queries_in_flight: in_flight.get(*i).copied(),
                query_p99_ms: p99.get(*i).copied(),
            })
        })
        .collect();
    while loads.len() < replicas {
        loads.push(None);
    }
    Ok(loads)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# HELP process_cpu_seconds_total cpu\n\
        process_cpu_seconds_total 12.5\n\
        inflow_write_lines_total 1000\n\
        inflow_queries_in_flight 3\n\
        inflow_query_duration_seconds_bucket{api=\"sql\",le=\"0.01\"} 90\n\
        inflow_query_duration_seconds_bucket{api=\"sql\",le=\"0.1\"} 99\n\
        inflow_query_duration_seconds_bucket{api=\"sql\",le=\"1\"} 100\n\
        inflow_query_duration_seconds_bucket{api=\"sql\",le=\"+Inf\"} 100\n\
        inflow_query_duration_seconds_bucket{api=\"flight\",le=\"0.01\"} 0\n\
        inflow_query_duration_seconds_bucket{api=\"flight\",le=\"+Inf\"} 0\n";

    #[test]
    fn the_exposition_gives_the_counters() {
        let s = parse_exposition(EXPOSITION);
        assert_eq!(s.cpu_seconds, Some(12.5));
        assert_eq!(s.write_lines, Some(1000.0));
        assert_eq!(s.queries_in_flight, Some(3.0));
        assert_eq!(s.query_buckets["0.01"], 90.0);
        assert_eq!(s.query_buckets["+Inf"], 100.0);
    }

    #[test]
    fn rates_come_from_two_scrapes() {
        let sampler = Sampler::default();
        let t0 = Instant::now();
        let first = sampler.load("p", t0, parse_exposition(EXPOSITION));
        assert_eq!(first.queries_in_flight, Some(3.0));
        assert_eq!(first.write_lines_per_second, None);
        let later = EXPOSITION
            .replace(
                "process_cpu_seconds_total 12.5",
                "process_cpu_seconds_total 14.5",
            )
            .replace(
                "inflow_write_lines_total 1000",
                "inflow_write_lines_total 21000",
            )
            .replace("le=\"1\"} 100", "le=\"1\"} 200")
            .replace("le=\"+Inf\"} 100", "le=\"+Inf\"} 200");
        let second = sampler.load("p", t0 + Duration::from_secs(2), parse_exposition(&later));
        assert_eq!(second.cpu, Some(1.0));
        assert_eq!(second.write_lines_per_second, Some(10_000.0));
        // The 100 new queries all took 0.1 s to 1 s: the 99th is near 1 s.
        let p99 = second.query_p99_ms.unwrap();
        assert!((980.0..=1000.0).contains(&p99), "{p99}");
        // A restarted pod's smaller counters give no rate.
        let third = sampler.load(
            "p",
            t0 + Duration::from_secs(4),
            parse_exposition(EXPOSITION),
        );
        assert_eq!(third.write_lines_per_second, None);
    }

    #[test]
    fn the_p99_interpolates_within_its_bucket() {
        let before = BTreeMap::new();
        let after: BTreeMap<String, f64> = [("0.01", 50.0), ("0.1", 100.0), ("+Inf", 100.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        // Rank 99 of 100 lies 49/50 of the way through 10 ms..100 ms.
        let p = p99_ms(&before, &after).unwrap();
        assert!((p - 98.2).abs() < 0.01, "{p}");
        assert_eq!(p99_ms(&after, &after), None);
    }
}
