//! The uploader's decisions as plain functions: how long to wait before a retry, what an HTTP
//! answer means, and how records are cut into batches. No I/O, no clocks of their own (the
//! caller passes `now` and the random source), so every rule is unit-tested.

use crate::record::Record;
use crate::wire::estimated_size;
use rand::Rng;
use std::time::{Duration, SystemTime};

/// Capped exponential backoff with full jitter, never sooner than `Retry-After`.
///
/// Full jitter (a uniform wait in `[0, min(cap, base·2^attempt)]`) spreads a thousand
/// workshops that lost the platform at the same moment over the whole window instead of
/// letting them return in lockstep; the cap bounds how long after the platform comes back
/// an agent still waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first window.
    pub base: Duration,
    /// The largest window.
    pub cap: Duration,
    /// The longest `Retry-After` obeyed; longer values are cut to this and reported.
    pub retry_after_max: Duration,
}

/// How long to wait before the next attempt, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryDelay {
    /// The wait.
    pub wait: Duration,
    /// True when the receiver's `Retry-After` asked for more than `retry_after_max`.
    pub retry_after_capped: bool,
}

impl RetryPolicy {
    /// The jitter window for retry number `attempt` (0 for the first retry).
    pub fn window(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry number `attempt`, at least `retry_after` (capped at
    /// `retry_after_max`) when the receiver sent one.
    pub fn delay<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> RetryDelay {
        let window = self.window(attempt);
        let jitter = if window.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(
                rng.random_range(0..=window.as_nanos().min(u64::MAX as u128) as u64),
            )
        };
        match retry_after {
            None => RetryDelay {
                wait: jitter,
                retry_after_capped: false,
            },
            Some(ra) => RetryDelay {
                wait: jitter.max(ra.min(self.retry_after_max)),
                retry_after_capped: ra > self.retry_after_max,
            },
        }
    }
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP-date.
///
/// An HTTP-date is measured against the response's own `Date` header when there is one, so
/// a wrong clock on the workshop PC does not matter; without it, against `now`. A date in
/// the past means zero. Garbage gives `None` (fall back to normal backoff).
pub fn parse_retry_after(
    value: &str,
    response_date: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Very large numbers saturate; the retry_after_max cap applies later.
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let base = response_date
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
        .unwrap_or(now);
    Some(at.duration_since(base).unwrap_or(Duration::ZERO))
}

/// What the uploader does with an HTTP answer to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// 2xx: read the per-record results.
    Success,
    /// 408, 429, 5xx (and connection errors, timeouts): retry the same bytes after backoff.
    Retry,
    /// 401, 403: stop until the configuration changes; retrying cannot fix credentials.
    StopAuth,
    /// 413, or 422 about the batch as a whole: split the batch in halves. A single record
    /// that still gets this answer is rejected locally with the reason.
    Split,
    /// Any other answer (400, 404, 409, 415...): a protocol or configuration mismatch, not a
    /// property of the records. Retry at the backoff cap and show the error; never drop.
    ProtocolError,
}

/// Maps an HTTP status to a [`Disposition`].
pub fn classify(status: u16) -> Disposition {
    match status {
        200..=299 => Disposition::Success,
        408 | 429 | 500..=599 => Disposition::Retry,
        401 | 403 => Disposition::StopAuth,
        413 | 422 => Disposition::Split,
        _ => Disposition::ProtocolError,
    }
}

/// Where to split a batch of `len` records (`len >= 2`): the length of the first half.
pub fn split_point(len: usize) -> usize {
    len.div_ceil(2).max(1)
}

/// How many records and bytes go into one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    /// At most this many records.
    pub max_records: usize,
    /// At most about this many bytes of uncompressed batch document (a record larger than
    /// this still travels, alone).
    pub max_bytes: usize,
}

impl BatchPlan {
    /// How many of `records` (read in order from one source) go into the next batch: a
    /// prefix that is one journal's contiguous run, within both limits, at least one record.
    pub fn cut(&self, records: &[Record]) -> usize {
        let Some(first) = records.first() else {
            return 0;
        };
        let mut bytes = 0usize;
        let mut n = 0usize;
        for r in records.iter().take(self.max_records.max(1)) {
            let contiguous = r.journal_id == first.journal_id && r.seq == first.seq + n as u64;
            let size = estimated_size(r);
            if !contiguous || (n > 0 && bytes + size > self.max_bytes) {
                break;
            }
            bytes += size;
            n += 1;
        }
        n.max(1)
    }

    /// After a 413 on a batch of `sent` records: later batches are at most half as long, so
    /// the uploader stops sending batches the receiver refuses.
    pub fn shrink_after_too_large(&mut self, sent: usize) {
        self.max_records = self.max_records.min(split_point(sent)).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{JournalId, RecordContent, GENESIS_HASH};
    use rand::SeedableRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            retry_after_max: Duration::from_secs(900),
        }
    }

    #[test]
    fn windows_grow_exponentially_up_to_the_cap() {
        let p = policy();
        let w: Vec<_> = (0..8).map(|a| p.window(a).as_millis()).collect();
        assert_eq!(w, vec![500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
        assert_eq!(p.window(1000), Duration::from_secs(8));
    }

    #[test]
    fn full_jitter_stays_in_the_window_and_spreads() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let waits: Vec<_> = (0..2000)
            .map(|_| p.delay(10, None, &mut rng).wait)
            .collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(8)));
        // Full jitter: both halves of the window are used (no lockstep return).
        assert!(waits.iter().any(|w| *w < Duration::from_secs(2)));
        assert!(waits.iter().any(|w| *w > Duration::from_secs(6)));
        let mean = waits.iter().map(|w| w.as_secs_f64()).sum::<f64>() / waits.len() as f64;
        assert!((3.5..4.5).contains(&mean), "mean {mean}");
    }

    #[test]
    fn never_sooner_than_retry_after_but_capped() {
        let p = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for attempt in 0..10 {
            let d = p.delay(attempt, Some(Duration::from_secs(7)), &mut rng);
            assert!(d.wait >= Duration::from_secs(7));
            assert!(!d.retry_after_capped);
        }
        let d = p.delay(0, Some(Duration::from_secs(86_400)), &mut rng);
        assert_eq!(d.wait, Duration::from_secs(900));
        assert!(d.retry_after_capped);
    }

    #[test]
    fn retry_after_parses_both_forms_against_the_response_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_900_000);
        assert_eq!(
            parse_retry_after("7", None, now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after(" 0 ", None, now), Some(Duration::ZERO));
        // The server's clock says 08:49:30; the date is 7 s later. Our clock is an hour off
        // and must not matter.
        let d = parse_retry_after(
            "Sun, 06 Nov 1994 08:49:37 GMT",
            Some("Sun, 06 Nov 1994 08:49:30 GMT"),
            now,
        );
        assert_eq!(d, Some(Duration::from_secs(7)));
        // Without a Date header, our clock is the base.
        let at = httpdate::fmt_http_date(now + Duration::from_secs(9));
        assert_eq!(
            parse_retry_after(&at, None, now),
            Some(Duration::from_secs(9))
        );
        // A date in the past means now.
        let past = httpdate::fmt_http_date(now - Duration::from_secs(9));
        assert_eq!(parse_retry_after(&past, None, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", None, now), None);
        assert_eq!(parse_retry_after("-3", None, now), None);
        assert_eq!(parse_retry_after("", None, now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", None, now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(200), Disposition::Success);
        assert_eq!(classify(207), Disposition::Success);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify(s), Disposition::Retry, "{s}");
        }
        assert_eq!(classify(401), Disposition::StopAuth);
        assert_eq!(classify(403), Disposition::StopAuth);
        assert_eq!(classify(413), Disposition::Split);
        assert_eq!(classify(422), Disposition::Split);
        for s in [400, 404, 405, 409, 415, 301] {
            assert_eq!(classify(s), Disposition::ProtocolError, "{s}");
        }
    }

    fn records(journal: u8, seqs: impl IntoIterator<Item = u64>, body_len: usize) -> Vec<Record> {
        seqs.into_iter()
            .map(|s| {
                Record::seal(
                    JournalId([journal; 16]),
                    s,
                    RecordContent {
                        kind: "work".into(),
                        body: "x".repeat(body_len),
                        ..Default::default()
                    },
                    GENESIS_HASH,
                )
            })
            .collect()
    }

    #[test]
    fn batches_respect_count_bytes_and_contiguity() {
        let plan = BatchPlan {
            max_records: 10,
            max_bytes: 1000,
        };
        assert_eq!(plan.cut(&[]), 0);
        assert_eq!(plan.cut(&records(1, 1..=50, 10)), 10);
        let size = estimated_size(&records(1, [1], 100)[0]);
        assert_eq!(plan.cut(&records(1, 1..=50, 100)), 1000 / size);
        // A record larger than the byte limit still goes, alone.
        assert_eq!(plan.cut(&records(1, 1..=3, 5000)), 1);
        // A gap in the sequence ends the batch.
        let mut gap = records(1, 1..=3, 10);
        gap.extend(records(1, 10..=12, 10));
        assert_eq!(plan.cut(&gap), 3);
        let mut mixed = records(1, 1..=2, 10);
        mixed.extend(records(2, 3..=4, 10));
        assert_eq!(plan.cut(&mixed), 2);
    }

    #[test]
    fn too_large_halves_later_batches_and_splits_evenly() {
        let mut plan = BatchPlan {
            max_records: 1000,
            max_bytes: 1 << 20,
        };
        plan.shrink_after_too_large(1000);
        assert_eq!(plan.max_records, 500);
        plan.shrink_after_too_large(3);
        assert_eq!(plan.max_records, 2);
        plan.shrink_after_too_large(1);
        assert_eq!(plan.max_records, 1);
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(1000), 500);
    }
}
