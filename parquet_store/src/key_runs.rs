//! The [`crate::KEY_RUNS`] entry of a file's footer, read back: each
//! value's row runs, checked against the file's row count so that a
//! damaged entry is ignored rather than trusted.

use std::collections::HashMap;

/// The runs of one file: its first series-key tag, and each value's runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRuns {
    /// The tag.
    pub column: String,
    /// Each value's runs, in file order.
    pub runs: HashMap<String, Vec<Run>>,
}

/// Rows `first_row..end_row` from the start of the file holding one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub rows: std::ops::Range<usize>,
    /// `(first_time, step)` when row `k` of the run has time
    /// `first_time + k * step`.
    pub even: Option<(i64, i64)>,
}

impl Run {
    /// Its rows with `min_time <= time <= max_time`: exact when its times
    /// step evenly, all of them otherwise.
    pub fn rows_within(&self, min_time: i64, max_time: i64) -> std::ops::Range<usize> {
        let Some((first, step)) = self.even else {
            return self.rows.clone();
        };
        let len = (self.rows.end - self.rows.start) as i128;
        let (first, step, lo, hi) = (
            first as i128,
            step as i128,
            min_time as i128,
            max_time as i128,
        );
        let (k_lo, k_end) = if step == 0 {
            // One row.
            if lo <= first && first <= hi {
                (0, len)
            } else {
                (0, 0)
            }
        } else {
            // The first k with first + k * step >= lo, and the first past hi.
            let k_lo = if lo <= first {
                0
            } else {
                (lo - first + step - 1) / step
            };
            let k_end = if hi < first {
                0
            } else {
                (hi - first) / step + 1
            };
            (k_lo.min(len), k_end.min(len))
        };
        let (k_lo, k_end) = (k_lo as usize, (k_end as usize).max(k_lo as usize));
        self.rows.start + k_lo..self.rows.start + k_end
    }
}

/// Decodes the entry `text` of a file of `rows` rows; `None` when it is
/// not one, or does not fit the file (a run past its last row, a
/// reversed run, a step that does not match the run's length).
pub fn decode(text: &str, rows: usize) -> Option<KeyRuns> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let column = json.get("column")?.as_str()?.to_string();
    let mut runs: HashMap<String, Vec<Run>> = HashMap::new();
    for run in json.get("runs")?.as_array()? {
        let value = run.get(0)?.as_str()?;
        let start = usize::try_from(run.get(1)?.as_u64()?).ok()?;
        let end = usize::try_from(run.get(2)?.as_u64()?).ok()?;
        if start > end || end > rows {
            return None;
        }
        let even = match (run.get(3), run.get(4)) {
            (Some(first), Some(step)) => {
                let (first, step) = (first.as_i64()?, step.as_i64()?);
                // A step of 0 only for one row; anything else does not fit.
                if step < 0 || (step == 0) != (end - start == 1) {
                    return None;
                }
                Some((first, step))
            }
            _ => None,
        };
        runs.entry(value.to_string()).or_default().push(Run {
            rows: start..end,
            even,
        });
    }
    Some(KeyRuns { column, runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_runs_select_exactly_their_rows_in_a_time_range() {
        // Rows 100..110 at times 1_000, 1_010, ..., 1_090.
        let run = Run {
            rows: 100..110,
            even: Some((1_000, 10)),
        };
        let model = |lo: i64, hi: i64| {
            let rows: Vec<usize> = (0..10)
                .filter(|k| (lo..=hi).contains(&(1_000 + 10 * *k as i64)))
                .map(|k| 100 + k)
                .collect();
            match (rows.first(), rows.last()) {
                (Some(a), Some(b)) => *a..*b + 1,
                _ => 0..0,
            }
        };
        for (lo, hi) in [
            (i64::MIN, i64::MAX),
            (1_000, 1_090),
            (1_001, 1_089),
            (1_010, 1_010),
            (1_011, 1_019),
            (0, 999),
            (1_091, i64::MAX),
            (1_045, 1_075),
            (i64::MIN, 1_000),
            (1_090, i64::MAX),
        ] {
            let got = run.rows_within(lo, hi);
            let want = model(lo, hi);
            assert_eq!(got.len(), want.len(), "{lo}..={hi}: {got:?} vs {want:?}");
            if !want.is_empty() {
                assert_eq!(got, want, "{lo}..={hi}");
            }
        }
        let one = Run {
            rows: 7..8,
            even: Some((5, 0)),
        };
        assert_eq!(one.rows_within(5, 5), 7..8);
        assert!(one.rows_within(6, 9).is_empty());
        // Without listed times, every row.
        let uneven = Run {
            rows: 3..9,
            even: None,
        };
        assert_eq!(uneven.rows_within(0, 1), 3..9);
    }
}
