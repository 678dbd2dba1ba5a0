//! Per-device status: a cheap shared snapshot for the status API, and the reject reasons.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::hex::to_hex;

/// How many bytes of a rejected frame are kept in the status snapshot.
const REJECT_SAMPLE: usize = 64;

/// Connection state of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// The task has not tried to open the device yet.
    Starting,
    /// The device is open and being read.
    Connected,
    /// The device is not present (not plugged in, path absent); retried with backoff.
    Missing,
    /// The device is present but failed to open or read; retried with backoff.
    Error,
    /// The task has ended (shutdown, or the readings channel was closed).
    Stopped,
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceState::Starting => "starting",
            DeviceState::Connected => "connected",
            DeviceState::Missing => "missing",
            DeviceState::Error => "error",
            DeviceState::Stopped => "stopped",
        })
    }
}

/// Why a frame, report or scan was rejected instead of becoming a [`crate::Reading`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    /// Longer than the configured maximum; the reader resynchronised after it.
    Oversize,
    /// Bytes outside any frame (between ETX and STX, before an M100 header).
    Unframed,
    /// A frame that never completed (idle gap, new STX before ETX, HID POS timeout).
    Incomplete,
    /// Frame checksum mismatch (M100).
    Checksum,
    /// Frame structure broken (missing end marker, impossible length).
    Malformed,
    /// The tag's Gen2 CRC-16 over PC+EPC does not match.
    TagCrc,
    /// An ASCII-mode RFID line that is not a hex EPC.
    BadHex,
    /// A keyboard-wedge key with no meaning in a scan (arrow, F-key) inside a scan.
    UnexpectedKey,
    /// A keyboard report with ErrorRollOver in all key slots.
    Rollover,
}

impl RejectReason {
    /// Stable kebab-case name, used in the status counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversize => "oversize",
            RejectReason::Unframed => "unframed",
            RejectReason::Incomplete => "incomplete",
            RejectReason::Checksum => "checksum",
            RejectReason::Malformed => "malformed",
            RejectReason::TagCrc => "tag-crc",
            RejectReason::BadHex => "bad-hex",
            RejectReason::UnexpectedKey => "unexpected-key",
            RejectReason::Rollover => "rollover",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most recent reject, with a sample of its bytes for diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastReject {
    /// Why it was rejected.
    pub reason: RejectReason,
    /// Extra detail (e.g. expected/actual checksum).
    pub detail: String,
    /// When it was rejected.
    pub time_utc: DateTime<Utc>,
    /// Up to 64 bytes of the rejected data, as hex.
    pub bytes_hex: String,
    /// Full length of the rejected data.
    pub len: usize,
}

/// Snapshot of one device's state and counters (cheap to clone, serialisable for the API).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStatus {
    /// Configured device id.
    pub id: String,
    /// Device kind (`serial`, `hid`, `rfid-serial`).
    pub kind: String,
    /// Connection state.
    pub state: DeviceState,
    /// Detail for `missing`/`error` (what is missing, the error text).
    pub message: Option<String>,
    /// The path actually opened while connected (a by-id or USB match resolves to it).
    pub port: Option<String>,
    /// When `state` last changed.
    pub since_utc: DateTime<Utc>,
    /// Time of the last reading delivered.
    pub last_reading_utc: Option<DateTime<Utc>>,
    /// Readings delivered to the channel.
    pub readings: u64,
    /// Frames/reports/scans rejected (sum of `rejected_by_reason`).
    pub rejected: u64,
    /// Rejects by reason.
    pub rejected_by_reason: BTreeMap<RejectReason, u64>,
    /// The most recent reject.
    pub last_reject: Option<LastReject>,
    /// Successful (re)connections since start.
    pub connects: u64,
}

impl DeviceStatus {
    /// A fresh status in state `starting`.
    pub fn new(id: &str, kind: &str) -> Self {
        DeviceStatus {
            id: id.to_owned(),
            kind: kind.to_owned(),
            state: DeviceState::Starting,
            message: None,
            port: None,
            since_utc: Utc::now(),
            last_reading_utc: None,
            readings: 0,
            rejected: 0,
            rejected_by_reason: BTreeMap::new(),
            last_reject: None,
            connects: 0,
        }
    }

    /// Rejects counted for one reason.
    pub fn rejected_for(&self, reason: RejectReason) -> u64 {
        self.rejected_by_reason.get(&reason).copied().unwrap_or(0)
    }
}

/// Shared, mutex-protected status written by a device task and read by the status API.
///
/// The lock is held only for field updates or a clone, never across I/O.
#[derive(Debug, Clone)]
pub struct StatusCell(Arc<Mutex<DeviceStatus>>);

impl StatusCell {
    /// A new cell for device `id` of `kind`.
    pub fn new(id: &str, kind: &str) -> Self {
        StatusCell(Arc::new(Mutex::new(DeviceStatus::new(id, kind))))
    }

    fn lock(&self) -> MutexGuard<'_, DeviceStatus> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // that matters, so recover from poisoning instead of propagating it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current status.
    pub fn snapshot(&self) -> DeviceStatus {
        self.lock().clone()
    }

    /// Sets state, message and port; returns `true` if the state changed (or, for
    /// `error`, the error text changed), so the caller logs once per change of state
    /// instead of once per retry.
    pub fn set_state(
        &self,
        state: DeviceState,
        message: Option<String>,
        port: Option<String>,
    ) -> bool {
        let mut s = self.lock();
        let changed = s.state != state || (state == DeviceState::Error && s.message != message);
        if s.state != state {
            s.since_utc = Utc::now();
            if state == DeviceState::Connected {
                s.connects += 1;
            }
        }
        s.state = state;
        s.message = message;
        s.port = port;
        changed
    }

    /// Counts a delivered reading.
    pub fn record_reading(&self, time_utc: DateTime<Utc>) {
        let mut s = self.lock();
        s.readings += 1;
        s.last_reading_utc = Some(time_utc);
    }

    /// Counts a reject and keeps a sample of its bytes.
    pub fn record_reject(&self, reason: RejectReason, detail: String, bytes: &[u8]) {
        let mut s = self.lock();
        s.rejected += 1;
        *s.rejected_by_reason.entry(reason).or_insert(0) += 1;
        s.last_reject = Some(LastReject {
            reason,
            detail,
            time_utc: Utc::now(),
            bytes_hex: to_hex(&bytes[..bytes.len().min(REJECT_SAMPLE)]),
            len: bytes.len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_change_reported_once() {
        let c = StatusCell::new("s1", "serial");
        assert!(c.set_state(DeviceState::Missing, Some("no such file".into()), None));
        assert!(!c.set_state(DeviceState::Missing, Some("no such file".into()), None));
        assert!(!c.set_state(DeviceState::Missing, Some("other detail".into()), None));
        assert_eq!(c.snapshot().message.as_deref(), Some("other detail"));
        assert!(c.set_state(DeviceState::Error, Some("EACCES".into()), None));
        assert!(!c.set_state(DeviceState::Error, Some("EACCES".into()), None));
        assert!(c.set_state(DeviceState::Error, Some("EBUSY".into()), None));
        assert!(c.set_state(DeviceState::Connected, None, Some("/dev/ttyACM0".into())));
        assert!(!c.set_state(DeviceState::Connected, None, Some("/dev/ttyACM0".into())));
        let s = c.snapshot();
        assert_eq!(s.state, DeviceState::Connected);
        assert_eq!(s.connects, 1);
        assert_eq!(s.port.as_deref(), Some("/dev/ttyACM0"));
    }

    #[test]
    fn counters_and_serialisation() {
        let c = StatusCell::new("s1", "serial");
        c.record_reading(Utc::now());
        c.record_reject(RejectReason::Oversize, "5000 bytes".into(), &[0x41; 100]);
        c.record_reject(RejectReason::Oversize, "5000 bytes".into(), &[0x41; 3]);
        let s = c.snapshot();
        assert_eq!(s.readings, 1);
        assert_eq!(s.rejected, 2);
        assert_eq!(s.rejected_for(RejectReason::Oversize), 2);
        assert_eq!(s.rejected_for(RejectReason::Checksum), 0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "starting");
        assert_eq!(json["rejected_by_reason"]["oversize"], 2);
        assert_eq!(json["last_reject"]["len"], 3);
    }
}
