//! Running devices: [`spawn_device`], the [`DeviceHandle`] it returns, and the sink that
//! turns decoder events into readings and status counters.

use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{DeviceConfig, DeviceKind};
use crate::hid::source::HidApiOpener;
use crate::reading::{DecodeEvent, FrameReject, Reading};
use crate::rfid::RfidDecoder;
use crate::serial::framer::SerialFramer;
use crate::serial::port::{run_serial, SerialTask};
use crate::status::{DeviceState, DeviceStatus, RejectReason, StatusCell};

/// Feedback to the operator after a reading was handled (sent only after the record is
/// committed, per the durability invariant — that ordering is the caller's job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// The scan was accepted.
    Good,
    /// The scan was refused.
    Bad,
}

/// Queued feedback requests per device; more than this while the port is busy are dropped
/// (a missed beep is better than a late one).
const FEEDBACK_QUEUE: usize = 4;

/// Handle to a running device task.
#[derive(Debug)]
pub struct DeviceHandle {
    id: String,
    status: StatusCell,
    feedback: Option<mpsc::Sender<Feedback>>,
    task: JoinHandle<()>,
}

impl DeviceHandle {
    pub(crate) fn new(
        id: String,
        status: StatusCell,
        feedback: Option<mpsc::Sender<Feedback>>,
        task: JoinHandle<()>,
    ) -> Self {
        DeviceHandle {
            id,
            status,
            feedback,
            task,
        }
    }

    /// The configured device id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A snapshot of the device's state and counters.
    pub fn status(&self) -> DeviceStatus {
        self.status.snapshot()
    }

    /// The shared status cell, for a status API that outlives or does not own the handle.
    pub fn status_cell(&self) -> StatusCell {
        self.status.clone()
    }

    /// Writes the configured good/bad bytes to the device if it is connected and has them
    /// configured; otherwise does nothing. Never blocks.
    pub fn feedback(&self, fb: Feedback) {
        if let Some(tx) = &self.feedback {
            if self.status.snapshot().state == DeviceState::Connected {
                // Full queue: drop; the operator gets one beep fewer, the agent never stalls.
                let _ = tx.try_send(fb);
            }
        }
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the task to end (after shutdown was signalled).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(device = %self.id, error = %e, "device task failed");
        }
    }
}

/// Starts the task for one device. Must be called inside a Tokio runtime.
///
/// Readings go to `tx` (bounded: when it is full the device stops being read, so the
/// back-pressure reaches the device's own buffer). The task ends when `shutdown` becomes
/// `true` (or its sender is dropped), or when `tx` is closed. A device that is missing or
/// fails is retried with capped backoff (0.5 s doubling to 10 s).
pub fn spawn_device(
    cfg: DeviceConfig,
    tx: mpsc::Sender<Reading>,
    shutdown: watch::Receiver<bool>,
) -> DeviceHandle {
    spawn_device_with_rejects(cfg, tx, None, shutdown)
}

/// Like [`spawn_device`], and also sends every refused frame, with its bytes, to `rejects`
/// (best effort: a full queue only counts it).
pub fn spawn_device_with_rejects(
    cfg: DeviceConfig,
    tx: mpsc::Sender<Reading>,
    rejects: Option<mpsc::Sender<FrameReject>>,
    shutdown: watch::Receiver<bool>,
) -> DeviceHandle {
    let kind = cfg.kind_name();
    match cfg.kind {
        DeviceKind::Serial(c) => {
            let status = StatusCell::new(&cfg.id, kind);
            let (fb_tx, fb_rx) = mpsc::channel(FEEDBACK_QUEUE);
            let task = SerialTask {
                settings: c.port_settings(),
                decoder: Box::new(SerialFramer::new(c.framing.clone())),
                feedback: c.feedback.clone(),
                start_command: None,
                command_interval: None,
            };
            let sink = Sink::new(&cfg.id, tx, status.clone(), rejects);
            let join = tokio::spawn(run_serial(task, sink, shutdown, fb_rx));
            DeviceHandle::new(cfg.id, status, Some(fb_tx), join)
        }
        DeviceKind::RfidSerial(c) => {
            let status = StatusCell::new(&cfg.id, kind);
            let (_fb_tx, fb_rx) = mpsc::channel(1);
            let task = SerialTask {
                settings: c.port_settings(),
                decoder: Box::new(RfidDecoder::new(&c)),
                feedback: Default::default(),
                start_command: c.start_command.as_ref().map(|b| b.0.clone()),
                command_interval: (c.command_interval_ms > 0)
                    .then(|| std::time::Duration::from_millis(c.command_interval_ms)),
            };
            let sink = Sink::new(&cfg.id, tx, status.clone(), rejects);
            let join = tokio::spawn(run_serial(task, sink, shutdown, fb_rx));
            DeviceHandle::new(cfg.id, status, None, join)
        }
        DeviceKind::Hid(c) => {
            let opener = HidApiOpener::new(c.clone());
            crate::hid::source::spawn_hid_with_rejects(cfg.id, c, opener, tx, rejects, shutdown)
        }
    }
}

/// Resolves when shutdown is requested (the value becomes `true` or the sender is gone).
pub(crate) async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Whether shutdown has been requested, without waiting.
pub(crate) fn shutdown_now(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow() || rx.has_changed().is_err()
}

/// Delivers decoder events: data → [`Reading`] on the channel, rejects → status counters.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    id: String,
    tx: mpsc::Sender<Reading>,
    status: StatusCell,
    rejects: Option<mpsc::Sender<FrameReject>>,
}

impl Sink {
    pub(crate) fn new(
        id: &str,
        tx: mpsc::Sender<Reading>,
        status: StatusCell,
        rejects: Option<mpsc::Sender<FrameReject>>,
    ) -> Self {
        Sink {
            id: id.to_owned(),
            tx,
            status,
            rejects,
        }
    }

    pub(crate) fn status(&self) -> &StatusCell {
        &self.status
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Delivers and clears `events`. Returns `false` if the task should stop (the channel
    /// is closed or shutdown was requested while waiting for room).
    pub(crate) async fn deliver(
        &self,
        events: &mut Vec<DecodeEvent>,
        time_mono: Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        for ev in events.drain(..) {
            match ev {
                DecodeEvent::Data { bytes, hint } => {
                    let reading = Reading::new(&self.id, time_mono, bytes, hint);
                    let time_utc = reading.time_utc;
                    // Reserve first so the counter is updated before the consumer can see
                    // the reading, and only for readings that are certainly delivered.
                    tokio::select! {
                        biased;
                        permit = self.tx.reserve() => match permit {
                            Ok(permit) => {
                                self.status.record_reading(time_utc);
                                permit.send(reading);
                            }
                            Err(_) => {
                                tracing::info!(device = %self.id, "readings channel closed; stopping");
                                return false;
                            }
                        },
                        _ = shutdown_requested(shutdown) => return false,
                    }
                }
                DecodeEvent::Reject {
                    reason,
                    detail,
                    bytes,
                } => {
                    match reason {
                        RejectReason::Unframed | RejectReason::Rollover => {
                            tracing::debug!(device = %self.id, %reason, %detail, "input rejected")
                        }
                        _ => tracing::info!(device = %self.id, %reason, %detail, "input rejected"),
                    }
                    self.status.record_reject(reason, detail.clone(), &bytes);
                    if let Some(r) = &self.rejects {
                        // Never block reading on the reject path: a flood of garbage must
                        // not stall good scans. What does not fit is still counted above.
                        let fr = FrameReject {
                            device: self.id.clone(),
                            time_utc: chrono::Utc::now(),
                            reason,
                            detail,
                            bytes,
                        };
                        if r.try_send(fr).is_err() {
                            tracing::warn!(device = %self.id, "reject queue full; reject counted but not stored");
                        }
                    }
                }
            }
        }
        true
    }
}
