//! Temperature excursions of irons, debounced: one alert when a reading leaves the range,
//! one end when readings are back inside by the hysteresis margin, however many readings
//! lie between. Pure; the open excursion is kept in SQL by `store` so it survives restarts
//! and rolls back with its transaction.

/// An open excursion.
#[derive(Debug, Clone, PartialEq)]
pub struct Excursion {
    /// Stable id, `<machine>-<start_ms>`; the end record names it.
    pub alert_id: String,
    /// Time of the first reading out of range (UTC ms).
    pub start_ms: i64,
    /// Time of the latest reading seen during it.
    pub last_ms: i64,
    /// The range it left.
    pub low: f64,
    /// The range it left.
    pub high: f64,
    /// The reading furthest outside the range.
    pub peak: f64,
    /// Readings seen during it.
    pub readings: i64,
}

/// What a reading did to the alert state.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertEvent {
    /// The value left the range: raise an alert.
    Start(Excursion),
    /// Still out (or inside the hysteresis band): update the open excursion.
    Continue(Excursion),
    /// Back in range: the excursion is over.
    End {
        /// The excursion as it ended.
        excursion: Excursion,
        /// Time of the first reading back in range.
        end_ms: i64,
    },
}

fn outside(v: f64, low: f64, high: f64) -> bool {
    v < low || v > high
}

fn distance(v: f64, low: f64, high: f64) -> f64 {
    if v < low {
        low - v
    } else if v > high {
        v - high
    } else {
        0.0
    }
}

/// Feeds one reading. `open` is the machine's open excursion, if any. Readings older than
/// the excursion's latest (redeliveries, out-of-order) change nothing.
pub fn step(
    machine: &str,
    open: Option<&Excursion>,
    value: f64,
    t_ms: i64,
    range: [f64; 2],
    hysteresis: f64,
) -> Option<AlertEvent> {
    let [low, high] = range;
    match open {
        None => outside(value, low, high).then(|| {
            AlertEvent::Start(Excursion {
                alert_id: format!("{machine}-{t_ms}"),
                start_ms: t_ms,
                last_ms: t_ms,
                low,
                high,
                peak: value,
                readings: 1,
            })
        }),
        Some(ex) if t_ms < ex.last_ms => None,
        Some(ex) => {
            // A range narrower than twice the hysteresis could never close with it; any
            // reading inside closes it then.
            let back = if ex.high - ex.low > 2.0 * hysteresis {
                value >= ex.low + hysteresis && value <= ex.high - hysteresis
            } else {
                !outside(value, ex.low, ex.high)
            };
            let mut ex = ex.clone();
            if back {
                return Some(AlertEvent::End {
                    excursion: ex,
                    end_ms: t_ms,
                });
            }
            ex.last_ms = t_ms;
            ex.readings += 1;
            if distance(value, ex.low, ex.high) > distance(ex.peak, ex.low, ex.high) {
                ex.peak = value;
            }
            Some(AlertEvent::Continue(ex))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_excursion_is_one_alert_with_start_and_end() {
        let mut open: Option<Excursion> = None;
        let (mut starts, mut ends) = (0, 0);
        let values = [
            150.0, 150.0, 171.0, 175.0, 180.0, 169.0, 168.5, 165.0, 150.0, 150.0,
        ];
        let mut end = None;
        for (i, v) in values.iter().enumerate() {
            match step(
                "iron-1",
                open.as_ref(),
                *v,
                i as i64 * 1000,
                [140.0, 170.0],
                2.0,
            ) {
                Some(AlertEvent::Start(e)) => {
                    starts += 1;
                    open = Some(e)
                }
                Some(AlertEvent::Continue(e)) => open = Some(e),
                Some(AlertEvent::End { excursion, end_ms }) => {
                    ends += 1;
                    end = Some((excursion, end_ms));
                    open = None
                }
                None => {}
            }
        }
        assert_eq!((starts, ends), (1, 1));
        let (ex, end_ms) = end.unwrap();
        assert_eq!(ex.start_ms, 2000);
        assert_eq!(ex.peak, 180.0);
        // 169 and 168.5 are inside the hysteresis band: still open; 165 closes it.
        assert_eq!(end_ms, 7000);
        assert_eq!(ex.alert_id, "iron-1-2000");
    }

    #[test]
    fn in_range_raises_nothing_and_old_readings_are_ignored() {
        assert_eq!(step("m", None, 150.0, 0, [140.0, 170.0], 2.0), None);
        let ex = match step("m", None, 100.0, 5000, [140.0, 170.0], 2.0) {
            Some(AlertEvent::Start(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(step("m", Some(&ex), 150.0, 4000, [140.0, 170.0], 2.0), None);
    }

    #[test]
    fn narrow_range_still_closes() {
        let ex = match step("m", None, 10.0, 0, [100.0, 101.0], 2.0) {
            Some(AlertEvent::Start(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            step("m", Some(&ex), 100.5, 1, [100.0, 101.0], 2.0),
            Some(AlertEvent::End { .. })
        ));
    }
}
