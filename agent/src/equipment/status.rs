//! A cheap snapshot of the equipment ingest for the status API.

use bobbin_drivers::mqtt::{ClientStatus, Message};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Per machine counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MachineStatus {
    /// When its last reading committed (UTC ms, arrival time).
    pub last_message_ms: Option<i64>,
    /// Readings stored.
    pub readings: u64,
    /// Redelivered readings recognised (by seq, or by time and values) and not stored again.
    pub duplicates: u64,
    /// Temperature alerts raised.
    pub alerts: u64,
    /// Rejected messages naming this machine.
    pub rejects: u64,
}

/// The ingest's state. Accounting closes: `received` = `stored` + `duplicates` +
/// `rejects` + messages that carry no reading (Sparkplug births without mapped metrics,
/// deaths, commands) once everything received has committed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EquipmentStatus {
    /// The broker: `mqtt://host:port` or `embedded mqtt://addr`.
    pub broker: String,
    /// True when the agent runs the broker itself.
    pub embedded: bool,
    /// Connected to the broker now.
    pub connected: bool,
    /// Reconnects that found the broker session gone (possible upstream gaps).
    pub sessions_lost: u64,
    /// Last connection error.
    pub last_error: Option<String>,
    /// Messages received.
    pub received: u64,
    /// Readings stored.
    pub stored: u64,
    /// Redeliveries recognised and not stored twice.
    pub duplicates: u64,
    /// Messages stored as rejects (all reasons, including unknown topics).
    pub rejects: u64,
    /// Temperature alerts raised.
    pub alerts: u64,
    /// Sparkplug sequence gaps seen.
    pub sparkplug_gaps: u64,
    /// Sparkplug rebirth requests sent.
    pub rebirths_requested: u64,
    /// Per machine (listed machines and, bounded, unlisted ones found by patterns).
    pub machines: BTreeMap<String, MachineStatus>,
}

/// Shared, updated by the ingest after each commit.
#[derive(Clone)]
pub struct StatusCell(Arc<Mutex<EquipmentStatus>>);

impl StatusCell {
    pub(crate) fn new(broker: String, embedded: bool) -> StatusCell {
        StatusCell(Arc::new(Mutex::new(EquipmentStatus {
            broker,
            embedded,
            ..Default::default()
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut EquipmentStatus) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    pub(crate) fn broker(&self) -> String {
        self.with(|s| s.broker.clone())
    }

    pub(crate) fn received(&self, gap: bool) {
        self.with(|s| {
            s.received += 1;
            if gap {
                s.sparkplug_gaps += 1;
            }
        })
    }

    pub(crate) fn rebirth(&self) {
        self.with(|s| s.rebirths_requested += 1)
    }

    pub(crate) fn applied(&self, applied: &[super::ingest::Applied], messages: &[Message]) {
        let now = messages.last().map(|m| m.received_ms);
        self.with(|s| {
            for a in applied {
                match a {
                    super::ingest::Applied::New { machine, alert } => {
                        s.stored += 1;
                        let m = s.machines.entry(machine.to_string()).or_default();
                        m.readings += 1;
                        m.last_message_ms = now.or(m.last_message_ms);
                        if *alert {
                            s.alerts += 1;
                            m.alerts += 1;
                        }
                    }
                    super::ingest::Applied::Duplicate { machine } => {
                        s.duplicates += 1;
                        s.machines
                            .entry(machine.to_string())
                            .or_default()
                            .duplicates += 1;
                    }
                    super::ingest::Applied::Rejected { machine } => {
                        s.rejects += 1;
                        if let Some(machine) = machine {
                            s.machines.entry(machine.to_string()).or_default().rejects += 1;
                        }
                    }
                    super::ingest::Applied::Recorded => {}
                }
            }
        })
    }

    /// The snapshot, with the client's connection state merged in.
    pub fn snapshot(&self, client: Option<ClientStatus>) -> EquipmentStatus {
        let mut s = self.with(|s| s.clone());
        if let Some(c) = client {
            s.connected = c.connected;
            s.sessions_lost = c.sessions_lost;
            s.last_error = c.last_error;
        }
        s
    }
}
