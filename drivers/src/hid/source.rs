//! Where HID reports come from: the [`ReportSource`] trait, its hidapi implementation,
//! and the blocking read loop that drives a [`ReportDecoder`].
//!
//! hidapi's reads block, so each HID device gets a blocking-pool thread that reads with a
//! short timeout (to notice shutdown and idle gaps) and hands readings to the async side.

use std::ffi::CStr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::backoff::Backoff;
use crate::config::HidConfig;
use crate::device::{shutdown_now, shutdown_requested, DeviceHandle, Sink};
use crate::hid::ReportDecoder;
use crate::reading::Reading;
use crate::status::{DeviceState, StatusCell};

/// How long one read waits before the loop checks shutdown and idle timers.
const READ_POLL: Duration = Duration::from_millis(50);
/// Largest report read (HID full-speed reports are at most 64 bytes; high-speed 1024).
const REPORT_BUF: usize = 1024;

/// A read error from an open report source (the device is then reopened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Why a report source could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// No matching device is present.
    #[error("{0}")]
    Missing(String),
    /// A matching device is present but could not be opened (permissions, busy).
    #[error("{0}")]
    Failed(String),
}

/// A stream of input reports from one opened device.
pub trait ReportSource: Send {
    /// Reads one input report into `buf`, waiting at most `timeout`; returns its length,
    /// or 0 if none arrived in time. With numbered reports the first byte is the report ID.
    fn read_report(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, SourceError>;
}

/// Opens report sources; called again after every failure (hot-plug).
pub trait ReportOpener: Send + 'static {
    /// Finds and opens the device.
    fn open(&mut self) -> Result<Box<dyn ReportSource>, OpenError>;
    /// What is being opened, for status and logs.
    fn describe(&self) -> String;
}

/// Whether a device matches the config's vid/pid/serial/usage page/path.
pub fn matches(cfg: &HidConfig, info: &hidapi::DeviceInfo) -> bool {
    if let Some(p) = &cfg.path {
        if info.path().to_str().ok() != Some(p.as_str()) {
            return false;
        }
    }
    cfg.vid.is_none_or(|v| v == info.vendor_id())
        && cfg.pid.is_none_or(|p| p == info.product_id())
        && cfg
            .serial
            .as_deref()
            .is_none_or(|s| info.serial_number() == Some(s))
        && cfg.usage_page.is_none_or(|u| u == info.usage_page())
}

/// Opens the configured scanner through hidapi (hidraw backend).
pub struct HidApiOpener {
    cfg: HidConfig,
    api: Option<hidapi::HidApi>,
}

impl HidApiOpener {
    /// An opener for `cfg`.
    pub fn new(cfg: HidConfig) -> Self {
        HidApiOpener { cfg, api: None }
    }
}

impl ReportOpener for HidApiOpener {
    fn open(&mut self) -> Result<Box<dyn ReportSource>, OpenError> {
        let api = match &mut self.api {
            Some(api) => {
                api.refresh_devices()
                    .map_err(|e| OpenError::Failed(format!("hidapi enumerate: {e}")))?;
                api
            }
            None => self.api.insert(
                hidapi::HidApi::new()
                    .map_err(|e| OpenError::Failed(format!("hidapi init: {e}")))?,
            ),
        };
        let info = api
            .device_list()
            .find(|d| matches(&self.cfg, d))
            .ok_or_else(|| {
                OpenError::Missing(format!("no HID device matching {}", self.cfg.describe()))
            })?;
        let path: &CStr = info.path();
        let dev = info
            .open_device(api)
            .map_err(|e| OpenError::Failed(format!("open {}: {e}", path.to_string_lossy())))?;
        Ok(Box::new(HidApiSource(dev)))
    }

    fn describe(&self) -> String {
        self.cfg.describe()
    }
}

struct HidApiSource(hidapi::HidDevice);

impl ReportSource for HidApiSource {
    fn read_report(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, SourceError> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        self.0
            .read_timeout(buf, ms)
            .map_err(|e| SourceError(e.to_string()))
    }
}

/// Starts a HID device task reading from `opener` (hidapi in production, a scripted
/// source in tests). Must be called inside a Tokio runtime.
pub fn spawn_hid_with<O: ReportOpener>(
    id: String,
    cfg: HidConfig,
    opener: O,
    tx: mpsc::Sender<Reading>,
    shutdown: watch::Receiver<bool>,
) -> DeviceHandle {
    spawn_hid_with_rejects(id, cfg, opener, tx, None, shutdown)
}

/// Like [`spawn_hid_with`], also sending refused reports with their bytes to `rejects`.
pub fn spawn_hid_with_rejects<O: ReportOpener>(
    id: String,
    cfg: HidConfig,
    opener: O,
    tx: mpsc::Sender<Reading>,
    rejects: Option<mpsc::Sender<crate::reading::FrameReject>>,
    shutdown: watch::Receiver<bool>,
) -> DeviceHandle {
    let status = StatusCell::new(&id, "hid");
    let sink = Sink::new(&id, tx, status.clone(), rejects);
    let handle = tokio::runtime::Handle::current();
    let join = tokio::task::spawn_blocking(move || hid_loop(cfg, opener, sink, shutdown, handle));
    DeviceHandle::new(id, status, None, join)
}

fn set_state(sink: &Sink, state: DeviceState, message: Option<String>, port: Option<String>) {
    if sink.status().set_state(state, message.clone(), port) {
        match state {
            DeviceState::Connected => tracing::info!(device = %sink.id(), "connected"),
            DeviceState::Missing | DeviceState::Error => tracing::warn!(
                device = %sink.id(), state = %state, msg = message.unwrap_or_default(),
                "device not available; retrying"
            ),
            _ => tracing::info!(device = %sink.id(), state = %state, "device state"),
        }
    }
}

fn hid_loop<O: ReportOpener>(
    cfg: HidConfig,
    mut opener: O,
    sink: Sink,
    mut shutdown: watch::Receiver<bool>,
    rt: tokio::runtime::Handle,
) {
    let mut backoff = Backoff::default();
    let mut decoder = ReportDecoder::new(&cfg);
    let gap = Duration::from_millis(cfg.wedge.gap_ms);
    let mut buf = vec![0u8; REPORT_BUF];
    let mut events = Vec::new();
    // Sleeps `d` unless shutdown comes first; false = shutting down.
    let pause = |d: Duration, shutdown: &mut watch::Receiver<bool>| -> bool {
        rt.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(d) => true,
                _ = shutdown_requested(shutdown) => false,
            }
        })
    };
    'outer: while !shutdown_now(&shutdown) {
        let mut src = match opener.open() {
            Ok(s) => s,
            Err(e) => {
                let state = match e {
                    OpenError::Missing(_) => DeviceState::Missing,
                    OpenError::Failed(_) => DeviceState::Error,
                };
                set_state(&sink, state, Some(e.to_string()), None);
                if !pause(backoff.next_delay(), &mut shutdown) {
                    break;
                }
                continue;
            }
        };
        set_state(&sink, DeviceState::Connected, None, Some(opener.describe()));
        backoff.reset();
        decoder.reset();
        let mut last_report = Instant::now();
        loop {
            if shutdown_now(&shutdown) {
                break 'outer;
            }
            let now = match src.read_report(&mut buf, READ_POLL) {
                Ok(0) => {
                    let now = Instant::now();
                    decoder.on_quiet(
                        now.saturating_duration_since(last_report),
                        gap,
                        now,
                        &mut events,
                    );
                    now
                }
                Ok(n) => {
                    let now = Instant::now();
                    last_report = now;
                    decoder.push_report(&buf[..n.min(buf.len())], now, &mut events);
                    now
                }
                Err(e) => {
                    set_state(&sink, DeviceState::Error, Some(format!("read: {e}")), None);
                    break;
                }
            };
            if !events.is_empty() && !rt.block_on(sink.deliver(&mut events, now, &mut shutdown)) {
                break 'outer;
            }
        }
        drop(src);
        if !pause(backoff.next_delay(), &mut shutdown) {
            break;
        }
    }
    set_state(&sink, DeviceState::Stopped, None, None);
}
