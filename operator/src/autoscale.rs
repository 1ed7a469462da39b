//! The autoscaling decision: Kubernetes' HorizontalPodAutoscaler algorithm
//! on Inflow's own metrics, as a pure function of what was measured, so
//! that it is tested on recorded series rather than on a cluster.
//!
//! ```text
//!  per metric with a target:  ratio = mean per pod / target
//!                             |ratio - 1| <= tolerance  -> keep the count
//!                             else desired = ceil(current x ratio)
//!    pods without metrics: counted as idle when scaling up, as at the
//!    target when scaling down (never a reason to move the other way)
//!  recommendation = the largest desired over the metrics
//!  stabilization:  up to the smallest recommendation of the up window,
//!                  down to the largest of the down window
//!  clamp to [minReplicas, maxReplicas]
//! ```

use std::time::Duration;

use crate::crd::{AutoscalingSpec, Recommendation};

/// A metric's value on one pod.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodLoad {
    /// CPU cores in use.
    pub cpu: Option<f64>,
    /// Lines written per second.
    pub write_lines_per_second: Option<f64>,
    /// Queries running.
    pub queries_in_flight: Option<f64>,
    /// The 99th percentile of query latency, ms.
    pub query_p99_ms: Option<f64>,
}

/// The metrics the decision knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `targets.cpu`.
    Cpu,
    /// `targets.writeLinesPerSecondPerPod`.
    WriteLines,
    /// `targets.queriesInFlightPerPod`.
    QueriesInFlight,
    /// `targets.queryP99Ms`.
    QueryP99,
}

impl Metric {
    /// Its name in the status and events.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::WriteLines => "writeLinesPerSecondPerPod",
            Metric::QueriesInFlight => "queriesInFlightPerPod",
            Metric::QueryP99 => "queryP99Ms",
        }
    }

    fn of(self, load: &PodLoad) -> Option<f64> {
        match self {
            Metric::Cpu => load.cpu,
            Metric::WriteLines => load.write_lines_per_second,
            Metric::QueriesInFlight => load.queries_in_flight,
            Metric::QueryP99 => load.query_p99_ms,
        }
    }

    fn target(self, spec: &AutoscalingSpec) -> Option<f64> {
        let t = &spec.targets;
        match self {
            Metric::Cpu => t.cpu,
            Metric::WriteLines => t.write_lines_per_second_per_pod,
            Metric::QueriesInFlight => t.queries_in_flight_per_pod,
            Metric::QueryP99 => t.query_p99_ms,
        }
        .filter(|t| *t > 0.0)
    }
}

const METRICS: [Metric; 4] = [
    Metric::Cpu,
    Metric::WriteLines,
    Metric::QueriesInFlight,
    Metric::QueryP99,
];

/// What the decision saw and chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The count to run.
    pub replicas: i32,
    /// What the metrics asked for now, before the windows.
    pub recommended: i32,
    /// The metric asking for the most pods, with its mean and target.
    pub metric: Option<(Metric, f64, f64)>,
    /// Why.
    pub reason: String,
    /// The recommendations to keep for the next decision.
    pub history: Vec<Recommendation>,
}

/// The windows and tolerance of a spec, with Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behavior {
    /// `scaleUpStabilization` (default 0).
    pub up_window: Duration,
    /// `scaleDownStabilization` (default 5 minutes).
    pub down_window: Duration,
    /// `tolerance` (default 0.1).
    pub tolerance: f64,
}

impl Behavior {
    /// The behaviour `spec` asks for; an unreadable duration is an error.
    pub fn of(spec: &AutoscalingSpec) -> Result<Self, String> {
        let window = |s: &Option<String>, default: Duration| match s {
            None => Ok(default),
            Some(text) => humantime::parse_duration(text).map_err(|e| format!("'{text}': {e}")),
        };
        Ok(Self {
            up_window: window(&spec.scale_up_stabilization, Duration::ZERO)?,
            down_window: window(&spec.scale_down_stabilization, Duration::from_secs(300))?,
            tolerance: spec.tolerance.unwrap_or(0.1),
        })
    }
}

/// What one metric asks for.
fn desired_for(
    metric: Metric,
    target: f64,
    current: i32,
    pods: &[Option<PodLoad>],
    tolerance: f64,
) -> Option<(i32, f64)> {
    let values: Vec<f64> = pods.iter().flatten().filter_map(|p| metric.of(p)).collect();
    if values.is_empty() {
        return None;
    }
    let missing = pods.len().saturating_sub(values.len()) as f64;
    let sum: f64 = values.iter().sum();
    let mean = sum / values.len() as f64;
    let mut ratio = mean / target;
    if (ratio - 1.0).abs() <= tolerance {
        return Some((current, mean));
    }
    if missing > 0.0 {
        // The pods that did not report move the ratio toward 1: idle when
        // scaling up, at the target when scaling down.
        let total = values.len() as f64 + missing;
        let adjusted = if ratio > 1.0 {
            sum / total / target
        } else {
            (sum + missing * target) / total / target
        };
        if (adjusted - 1.0).abs() <= tolerance || (adjusted > 1.0) != (ratio > 1.0) {
            return Some((current, mean));
        }
        ratio = adjusted;
    }
    let desired = (f64::from(current.max(1)) * ratio).ceil();
    Some((desired.clamp(0.0, f64::from(i32::MAX)) as i32, mean))
}

/// Decides a role's count from its pods' loads (`None` for a pod whose
/// metrics could not be read), at `now` (seconds since the epoch), given
/// the recommendations of earlier decisions.
pub fn decide(
    spec: &AutoscalingSpec,
    behavior: Behavior,
    current: i32,
    pods: &[Option<PodLoad>],
    history: &[Recommendation],
    now: i64,
) -> Decision {
    let (min, max) = (spec.min_replicas.max(1), spec.max_replicas.max(1));
    let mut best: Option<(i32, Metric, f64, f64)> = None;
    for metric in METRICS {
        let Some(target) = metric.target(spec) else {
            continue;
        };
        if let Some((desired, mean)) =
            desired_for(metric, target, current, pods, behavior.tolerance)
            && best.is_none_or(|(d, ..)| desired > d)
        {
            best = Some((desired, metric, mean, target));
        }
    }
    let keep = |s: &Recommendation| {
        let age = now.saturating_sub(s.at);
        age <= behavior.up_window.max(behavior.down_window).as_secs() as i64
    };
    let mut kept: Vec<Recommendation> = history.iter().copied().filter(keep).collect();
    let Some((recommended, metric, mean, target)) = best else {
        let replicas = current.clamp(min, max);
        return Decision {
            replicas,
            recommended: current,
            metric: None,
            reason: if pods.iter().all(Option::is_none) {
                "no pod's metrics could be read: the count stays".to_string()
            } else {
                "no metric with a target was reported: the count stays".to_string()
            },
            history: kept,
        };
    };
    let recommended = recommended.clamp(min, max);
    // One recommendation per second: a later one of the same second replaces it.
    kept.retain(|r| r.at != now);
    kept.push(Recommendation {
        at: now,
        replicas: recommended,
    });
    let within = |window: Duration| {
        kept.iter()
            .filter(move |r| now.saturating_sub(r.at) <= window.as_secs() as i64)
            .map(|r| r.replicas)
    };
    // Up only as far as the whole up window asked; down only as far as
    // the whole down window allows.
    let up_to = within(behavior.up_window).min().unwrap_or(recommended);
    let down_to = within(behavior.down_window).max().unwrap_or(recommended);
    let replicas = if up_to > current {
        up_to
    } else if down_to < current {
        down_to
    } else {
        current
    }
    .clamp(min, max);
    let reason = if replicas > current {
        format!(
            "{} is {mean:.2} per pod, target {target}: {current} -> {replicas} pods",
            metric.name()
        )
    } else if replicas < current {
        format!(
            "{} is {mean:.2} per pod, target {target}: {current} -> {replicas} pods (stable for the down window)",
            metric.name()
        )
    } else if recommended != current {
        format!(
            "{} is {mean:.2} per pod, target {target}: {recommended} pods asked for, held by the stabilization window",
            metric.name()
        )
    } else {
        format!(
            "{} is {mean:.2} per pod, target {target}: within tolerance",
            metric.name()
        )
    };
    Decision {
        replicas,
        recommended,
        metric: Some((metric, mean, target)),
        reason,
        history: kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AutoscalingMode, AutoscalingTargets};

    fn spec(targets: AutoscalingTargets) -> AutoscalingSpec {
        AutoscalingSpec {
            mode: AutoscalingMode::Operator,
            min_replicas: 1,
            max_replicas: 10,
            targets,
            scale_up_stabilization: None,
            scale_down_stabilization: Some("60s".into()),
            tolerance: None,
            prometheus: None,
        }
    }

    fn lines(rate: f64) -> Option<PodLoad> {
        Some(PodLoad {
            cpu: None,
            write_lines_per_second: Some(rate),
            queries_in_flight: None,
            query_p99_ms: None,
        })
    }

    fn writes(target: f64) -> AutoscalingSpec {
        spec(AutoscalingTargets {
            write_lines_per_second_per_pod: Some(target),
            ..Default::default()
        })
    }

    /// Runs a recorded series: each step is (seconds since the start, the
    /// pods' loads); returns the count after each step.
    fn replay(
        spec: &AutoscalingSpec,
        start: i32,
        steps: &[(i64, Vec<Option<PodLoad>>)],
    ) -> Vec<i32> {
        let behavior = Behavior::of(spec).unwrap();
        let (mut current, mut history) = (start, Vec::new());
        steps
            .iter()
            .map(|(at, pods)| {
                let d = decide(spec, behavior, current, pods, &history, *at);
                current = d.replicas;
                history = d.history;
                current
            })
            .collect()
    }

    #[test]
    fn a_burst_scales_up_at_once_and_down_after_the_window() {
        let s = writes(100_000.0);
        // Two pods at 300k lines/s each: 6 pods; then the load goes away.
        let series = vec![
            (0, vec![lines(300_000.0), lines(300_000.0)]),
            (15, vec![lines(100_000.0); 6]),
            (30, vec![lines(0.0); 6]),
            (60, vec![lines(0.0); 6]),
            (91, vec![lines(0.0); 6]),
        ];
        // Down only once every recommendation of the last 60 s is 1.
        assert_eq!(replay(&s, 2, &series), vec![6, 6, 6, 6, 1]);
    }

    #[test]
    fn a_steady_load_within_the_tolerance_changes_nothing() {
        let s = writes(100_000.0);
        let series: Vec<_> = (0..10)
            .map(|i| {
                (
                    i * 15,
                    vec![lines(95_000.0 + f64::from(i as i32) * 1_000.0); 4],
                )
            })
            .collect();
        assert_eq!(replay(&s, 4, &series), vec![4; 10]);
    }

    /// Like [`replay`], with a total load the current pods share evenly.
    fn replay_total(spec: &AutoscalingSpec, start: i32, steps: &[(i64, f64)]) -> Vec<i32> {
        let behavior = Behavior::of(spec).unwrap();
        let (mut current, mut history) = (start, Vec::new());
        steps
            .iter()
            .map(|(at, total)| {
                let pods = vec![lines(total / f64::from(current)); current as usize];
                let d = decide(spec, behavior, current, &pods, &history, *at);
                current = d.replicas;
                history = d.history;
                current
            })
            .collect()
    }

    #[test]
    fn a_flapping_load_does_not_flap_the_count() {
        let s = writes(100_000.0);
        // 400k and 40k lines/s in turn every 15 s: up once, then held.
        let series: Vec<_> = (0..8)
            .map(|i| (i * 15, if i % 2 == 0 { 400_000.0 } else { 40_000.0 }))
            .collect();
        assert_eq!(replay_total(&s, 2, &series), vec![4; 8]);
    }

    #[test]
    fn a_pod_without_metrics_never_pushes_the_other_way() {
        let s = writes(100_000.0);
        let behavior = Behavior::of(&s).unwrap();
        // Scaling up: the silent pod counts as idle, so 3 pods at 150k
        // (450k over 4 pods = 112.5k) ask for ceil(4 x 1.125) = 5.
        let pods = vec![lines(150_000.0), lines(150_000.0), lines(150_000.0), None];
        let d = decide(&s, behavior, 4, &pods, &[], 0);
        assert_eq!(d.replicas, 5);
        // Scaling down: the silent pod counts as at the target: 3 pods at
        // 10k and one at 100k average 32.5k: ceil(4 x 0.325) = 2 ...
        let pods = vec![lines(10_000.0), lines(10_000.0), lines(10_000.0), None];
        let d = decide(
            &s,
            Behavior {
                down_window: Duration::ZERO,
                ..behavior
            },
            4,
            &pods,
            &[],
            0,
        );
        assert_eq!(d.replicas, 2);
        // ... and a load that reads high only because a pod is missing
        // does not scale up: 2 pods at 120k and 2 silent ones average 60k.
        let pods = vec![lines(120_000.0), lines(120_000.0), None, None];
        let d = decide(&s, behavior, 4, &pods, &[], 0);
        assert_eq!(d.replicas, 4, "{}", d.reason);
        // No pod reports: the count stays, and says why.
        let d = decide(&s, behavior, 3, &[None, None, None], &[], 0);
        assert_eq!(d.replicas, 3);
        assert!(d.reason.contains("no pod's metrics"), "{}", d.reason);
    }

    #[test]
    fn the_largest_metric_wins_within_min_and_max() {
        let s = spec(AutoscalingTargets {
            cpu: Some(1.0),
            queries_in_flight_per_pod: Some(4.0),
            query_p99_ms: Some(100.0),
            ..Default::default()
        });
        let behavior = Behavior::of(&s).unwrap();
        let pod = Some(PodLoad {
            cpu: Some(1.5),
            write_lines_per_second: None,
            queries_in_flight: Some(12.0),
            query_p99_ms: Some(150.0),
        });
        let d = decide(&s, behavior, 2, &[pod, pod], &[], 0);
        // cpu asks for 3, queries for 6, p99 for 3.
        assert_eq!(d.replicas, 6);
        assert_eq!(d.metric.map(|(m, ..)| m), Some(Metric::QueriesInFlight));
        let d = decide(&s, behavior, 8, &[pod; 8], &[], 0);
        assert_eq!(d.replicas, 10, "max_replicas caps it");
        let idle = Some(PodLoad {
            cpu: Some(0.0),
            write_lines_per_second: None,
            queries_in_flight: Some(0.0),
            query_p99_ms: Some(1.0),
        });
        let d = decide(
            &s,
            Behavior {
                down_window: Duration::ZERO,
                ..behavior
            },
            3,
            &[idle; 3],
            &[],
            0,
        );
        assert_eq!(d.replicas, 1, "min_replicas floors it");
    }

    #[test]
    fn an_up_window_waits_for_a_sustained_load() {
        let mut s = writes(100_000.0);
        s.scale_up_stabilization = Some("30s".into());
        let series = vec![
            (0, vec![lines(100_000.0); 2]),
            (10, vec![lines(300_000.0); 2]),
            (20, vec![lines(100_000.0); 2]),
            (40, vec![lines(300_000.0); 2]),
            (55, vec![lines(300_000.0); 2]),
            (71, vec![lines(300_000.0); 2]),
        ];
        // The spike at 10 s is not sustained; from 40 s on it is, and once
        // the low recommendation of 20 s has left the window (at 55 s), up
        // it goes.
        assert_eq!(replay(&s, 2, &series), vec![2, 2, 2, 2, 6, 6]);
    }
}
