//! Collapses repeated reads of one tag: a tag in the field is read many times a second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Suppresses repeats of a key (the EPC) seen within `window` of its previous read.
///
/// The window slides: every read of a tag refreshes it, so a tag that stays in the field
/// yields one reading, and a new reading only after it has been unseen for `window`.
/// Memory is bounded by `capacity` keys; when full, expired keys are dropped first, then
/// the least recently seen one (which can at worst produce one extra reading).
#[derive(Debug, Clone)]
pub struct RepeatFilter {
    window: Duration,
    capacity: usize,
    last_seen: HashMap<Vec<u8>, Instant>,
}

impl RepeatFilter {
    /// A filter with the given window (zero disables it) and capacity (at least 1).
    pub fn new(window: Duration, capacity: usize) -> Self {
        RepeatFilter {
            window,
            capacity: capacity.max(1),
            last_seen: HashMap::new(),
        }
    }

    /// Records a read of `key` at monotonic time `now`; returns `true` if it is a new
    /// reading, `false` if it repeats one within the window.
    pub fn accept(&mut self, key: &[u8], now: Instant) -> bool {
        if self.window.is_zero() {
            return true;
        }
        if let Some(last) = self.last_seen.get_mut(key) {
            let fresh = now.saturating_duration_since(*last) >= self.window;
            // Reads arriving out of order (same instant from two frames) never move time back.
            if now > *last {
                *last = now;
            }
            return fresh;
        }
        if self.last_seen.len() >= self.capacity {
            self.evict(now);
        }
        self.last_seen.insert(key.to_vec(), now);
        true
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.last_seen.len()
    }

    /// Whether no keys are remembered.
    pub fn is_empty(&self) -> bool {
        self.last_seen.is_empty()
    }

    fn evict(&mut self, now: Instant) {
        let window = self.window;
        self.last_seen
            .retain(|_, t| now.saturating_duration_since(*t) < window);
        while self.last_seen.len() >= self.capacity {
            let oldest = self
                .last_seen
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.last_seen.remove(&k);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPC: &[u8] = &[
        0x30, 0x75, 0x1F, 0xEB, 0x70, 0x5C, 0x59, 0x04, 0xE3, 0xD5, 0x0D, 0x70,
    ];

    #[test]
    fn tv_rf_07_ten_reads_in_200ms_are_one() {
        let mut f = RepeatFilter::new(Duration::from_secs(1), 16);
        let t0 = Instant::now();
        let accepted = (0..10)
            .filter(|i| f.accept(EPC, t0 + Duration::from_millis(20 * i)))
            .count();
        assert_eq!(accepted, 1);
    }

    #[test]
    fn window_slides_and_expires() {
        let mut f = RepeatFilter::new(Duration::from_secs(2), 16);
        let t0 = Instant::now();
        assert!(f.accept(EPC, t0));
        assert!(!f.accept(EPC, t0 + Duration::from_millis(1500)));
        // Still in the field: 1.5 s after the last read, inside the sliding window.
        assert!(!f.accept(EPC, t0 + Duration::from_millis(3000)));
        // Gone for 2 s, then back: a new reading.
        assert!(f.accept(EPC, t0 + Duration::from_millis(5000)));
    }

    #[test]
    fn different_tags_are_independent() {
        let mut f = RepeatFilter::new(Duration::from_secs(2), 16);
        let t0 = Instant::now();
        assert!(f.accept(b"A", t0));
        assert!(f.accept(b"B", t0));
        assert!(!f.accept(b"A", t0));
    }

    #[test]
    fn zero_window_disables() {
        let mut f = RepeatFilter::new(Duration::ZERO, 16);
        let t0 = Instant::now();
        assert!(f.accept(EPC, t0));
        assert!(f.accept(EPC, t0));
        assert!(f.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut f = RepeatFilter::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for i in 0u32..10_000 {
            assert!(f.accept(&i.to_be_bytes(), t0 + Duration::from_millis(i as u64)));
            assert!(f.len() <= 100);
        }
        // The most recent keys are still remembered.
        assert!(!f.accept(&9_999u32.to_be_bytes(), t0 + Duration::from_millis(10_000)));
    }
}
