//! Per-unit summaries of machine readings. Pure: the SQL side (`store::unit_summaries`)
//! loads the samples and calls these.
//!
//! - Counters (stitches, trims, run seconds, needle stops) are cumulative and reset on
//!   power-up: the summary sums positive steps and counts a decrease as a reset (the new
//!   value is what was counted since).
//! - Temperatures are sampled: each reading holds until the next one (at most
//!   `MAX_HOLD_MS`, so a silent iron is not assumed hot or cold forever); time outside the
//!   range sums the held intervals outside it, clipped to the unit's window.

use super::fields::{number, Reading};
use serde_json::{json, Value};

/// A reading is assumed to hold at most this long (ms) when computing time out of range.
pub const MAX_HOLD_MS: i64 = 60_000;

/// One stored reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Reading time (UTC ms).
    pub time_ms: i64,
    /// Its values.
    pub values: Vec<(Reading, f64)>,
}

impl Sample {
    /// The value of `r`, if present.
    pub fn get(&self, r: Reading) -> Option<f64> {
        self.values.iter().find(|(x, _)| *x == r).map(|(_, v)| *v)
    }

    /// Parses a stored metrics JSON object; unknown names are skipped.
    pub fn from_json(time_ms: i64, metrics: &str) -> Sample {
        let values = match serde_json::from_str::<Value>(metrics) {
            Ok(Value::Object(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((Reading::by_name(k)?, v.as_f64()?)))
                .collect(),
            _ => Vec::new(),
        };
        Sample { time_ms, values }
    }
}

/// The increase of a cumulative counter over `samples`, starting from `baseline` (the last
/// value before the window), treating a decrease as a reset.
pub fn counter_delta(baseline: Option<f64>, samples: impl IntoIterator<Item = f64>) -> f64 {
    let mut prev = baseline;
    let mut total = 0.0;
    for v in samples {
        if let Some(p) = prev {
            total += if v >= p { v - p } else { v };
        }
        prev = Some(v);
    }
    total
}

/// Sewing machine: stitches, trims, run seconds, needle stops in the window.
pub fn sewing(baseline: Option<&Sample>, samples: &[Sample]) -> Value {
    let mut out = serde_json::Map::new();
    for r in [
        Reading::Stitches,
        Reading::Trims,
        Reading::RunS,
        Reading::NeedleStops,
    ] {
        let series: Vec<f64> = samples.iter().filter_map(|s| s.get(r)).collect();
        if series.is_empty() {
            continue;
        }
        let base = baseline.and_then(|b| b.get(r));
        out.insert(r.name().to_string(), number(counter_delta(base, series)));
    }
    out.insert("readings".into(), json!(samples.len()));
    Value::Object(out)
}

fn stats(values: &[f64]) -> Option<Value> {
    if values.is_empty() {
        return None;
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some(json!({
        "min": number(min),
        "max": number(max),
        "mean": number((mean * 100.0).round() / 100.0),
    }))
}

/// Milliseconds within `[start, end]` that the held temperature was outside `range`.
pub fn time_outside_ms(
    baseline: Option<&Sample>,
    samples: &[Sample],
    start: i64,
    end: i64,
    range: [f64; 2],
) -> i64 {
    let mut points: Vec<(i64, f64)> = Vec::with_capacity(samples.len() + 1);
    if let Some(b) = baseline {
        if let Some(v) = b.get(Reading::TempC) {
            points.push((b.time_ms, v));
        }
    }
    points.extend(
        samples
            .iter()
            .filter_map(|s| Some((s.time_ms, s.get(Reading::TempC)?))),
    );
    let mut total = 0;
    for (i, (t, v)) in points.iter().enumerate() {
        let held_until = points
            .get(i + 1)
            .map_or(end, |(n, _)| *n)
            .min(t + MAX_HOLD_MS);
        let a = (*t).max(start);
        let b = held_until.min(end);
        if b > a && (*v < range[0] || *v > range[1]) {
            total += b - a;
        }
    }
    total
}

/// Iron: temperature min/max/mean and time outside `range`, steam pressure, press cycles.
pub fn iron(
    baseline: Option<&Sample>,
    samples: &[Sample],
    start: i64,
    end: i64,
    range: Option<[f64; 2]>,
) -> Value {
    let mut out = serde_json::Map::new();
    let temps: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.get(Reading::TempC))
        .collect();
    if let Some(s) = stats(&temps) {
        out.insert("temp_c".into(), s);
    }
    if let Some(r) = range {
        out.insert("range_c".into(), json!([number(r[0]), number(r[1])]));
        let ms = time_outside_ms(baseline, samples, start, end, r);
        out.insert("outside_range_s".into(), number(ms as f64 / 1000.0));
    }
    let steam: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.get(Reading::SteamBar))
        .collect();
    if let Some(s) = stats(&steam) {
        out.insert("steam_bar".into(), s);
    }
    let dwell: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.get(Reading::DwellS))
        .collect();
    if !dwell.is_empty() {
        out.insert("press_cycles".into(), json!(dwell.len()));
        out.insert("dwell_s_total".into(), number(dwell.iter().sum::<f64>()));
    }
    out.insert("readings".into(), json!(samples.len()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, vals: &[(Reading, f64)]) -> Sample {
        Sample {
            time_ms: t,
            values: vals.to_vec(),
        }
    }

    #[test]
    fn counters_with_reset() {
        assert_eq!(counter_delta(Some(100.0), [110.0, 130.0]), 30.0);
        // Power-up reset after 130: 5 counted since.
        assert_eq!(counter_delta(Some(100.0), [130.0, 5.0, 9.0]), 39.0);
        assert_eq!(counter_delta(None, [10.0, 15.0]), 5.0);
        assert_eq!(counter_delta(None, []), 0.0);
    }

    #[test]
    fn sewing_summary() {
        let base = s(0, &[(Reading::Stitches, 1000.0), (Reading::Trims, 10.0)]);
        let v = sewing(
            Some(&base),
            &[
                s(1, &[(Reading::Stitches, 1200.0), (Reading::Trims, 12.0)]),
                s(
                    2,
                    &[
                        (Reading::Stitches, 1500.0),
                        (Reading::Trims, 15.0),
                        (Reading::RunS, 60.0),
                    ],
                ),
            ],
        );
        assert_eq!(
            v,
            json!({"stitches": 500, "trims": 5, "run_s": 0, "readings": 2})
        );
    }

    #[test]
    fn iron_time_outside() {
        let t = Reading::TempC;
        let samples = [
            s(1_000, &[(t, 150.0)]),
            s(2_000, &[(t, 180.0)]),
            s(5_000, &[(t, 150.0)]),
        ];
        // Baseline before the window was out of range and holds until the first sample.
        let base = s(-500, &[(t, 100.0)]);
        assert_eq!(
            time_outside_ms(Some(&base), &samples, 0, 10_000, [140.0, 170.0]),
            1_000 + 3_000
        );
        let v = iron(None, &samples, 0, 10_000, Some([140.0, 170.0]));
        assert_eq!(v["temp_c"], json!({"min": 150, "max": 180, "mean": 160}));
        assert_eq!(v["outside_range_s"], json!(3));
    }

    #[test]
    fn hold_is_capped() {
        let samples = [s(0, &[(Reading::TempC, 300.0)])];
        assert_eq!(
            time_outside_ms(None, &samples, 0, 1_000_000, [140.0, 170.0]),
            MAX_HOLD_MS
        );
    }
}
