//! The serial port loop: resolve and open the port with tokio-serial, feed the decoder,
//! write feedback and start commands, reconnect with backoff.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use crate::backoff::Backoff;
use crate::config::{FeedbackConfig, FlowControl, Parity, PortSettings};
use crate::device::{shutdown_now, shutdown_requested, Feedback, Sink};
use crate::serial::StreamDecoder;
use crate::status::DeviceState;

/// Why a port could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Not present (path absent, no matching USB device).
    #[error("{0}")]
    Missing(String),
    /// Present but could not be opened or configured.
    #[error("{0}")]
    Failed(String),
}

/// Finds the tty path for `settings`: the configured path if it exists (symlinks are
/// followed, so a dangling `/dev/serial/by-id` link counts as missing), or the first port
/// matching the USB VID:PID[:serial].
pub fn resolve_port(settings: &PortSettings) -> Result<String, PortError> {
    if let Some(p) = &settings.path {
        return if Path::new(p).exists() {
            Ok(p.clone())
        } else {
            Err(PortError::Missing(format!("{p} not found")))
        };
    }
    if let Some(m) = &settings.usb {
        let mut ports = crate::list::serial_ports().0;
        ports.sort_by(|a, b| a.path.cmp(&b.path));
        return ports
            .into_iter()
            .find(|p| {
                p.vid == Some(m.vid)
                    && p.pid == Some(m.pid)
                    && (m.serial.is_none() || p.serial_number == m.serial)
            })
            .map(|p| p.path)
            .ok_or_else(|| PortError::Missing(format!("no serial port with USB id {m}")));
    }
    Err(PortError::Failed("neither path nor usb configured".into()))
}

fn open_port(path: &str, s: &PortSettings) -> Result<SerialStream, PortError> {
    let builder = tokio_serial::new(path, s.baud)
        .data_bits(match s.data_bits {
            5 => tokio_serial::DataBits::Five,
            6 => tokio_serial::DataBits::Six,
            7 => tokio_serial::DataBits::Seven,
            _ => tokio_serial::DataBits::Eight,
        })
        .parity(match s.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Odd => tokio_serial::Parity::Odd,
            Parity::Even => tokio_serial::Parity::Even,
        })
        .stop_bits(if s.stop_bits == 2 {
            tokio_serial::StopBits::Two
        } else {
            tokio_serial::StopBits::One
        })
        .flow_control(match s.flow_control {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::Software => tokio_serial::FlowControl::Software,
            FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        });
    builder.open_native_async().map_err(|e| {
        if Path::new(path).exists() {
            PortError::Failed(format!("open {path}: {e}"))
        } else {
            PortError::Missing(format!("{path} not found"))
        }
    })
}

/// Everything the serial loop needs besides the channels.
pub(crate) struct SerialTask {
    pub settings: PortSettings,
    pub decoder: Box<dyn StreamDecoder>,
    pub feedback: FeedbackConfig,
    pub start_command: Option<Vec<u8>>,
    pub command_interval: Option<Duration>,
}

fn set_state(sink: &Sink, state: DeviceState, message: Option<String>, port: Option<String>) {
    if sink
        .status()
        .set_state(state, message.clone(), port.clone())
    {
        let msg = message.unwrap_or_default();
        match state {
            DeviceState::Connected => {
                tracing::info!(device = %sink.id(), port = port.as_deref().unwrap_or(""), "connected")
            }
            DeviceState::Missing | DeviceState::Error => {
                tracing::warn!(device = %sink.id(), state = %state, %msg, "device not available; retrying")
            }
            _ => tracing::info!(device = %sink.id(), state = %state, "device state"),
        }
    }
}

async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown_requested(shutdown) => false,
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// Runs one serial device until shutdown or until the readings channel closes.
pub(crate) async fn run_serial(
    mut task: SerialTask,
    sink: Sink,
    mut shutdown: watch::Receiver<bool>,
    mut fb_rx: mpsc::Receiver<Feedback>,
) {
    let mut backoff = Backoff::default();
    let mut buf = vec![0u8; 4096];
    let mut events = Vec::new();
    'outer: while !shutdown_now(&shutdown) {
        let opened = resolve_port(&task.settings)
            .and_then(|p| open_port(&p, &task.settings).map(|s| (p, s)));
        let (path, mut port) = match opened {
            Ok(x) => x,
            Err(e) => {
                let state = match e {
                    PortError::Missing(_) => DeviceState::Missing,
                    PortError::Failed(_) => DeviceState::Error,
                };
                set_state(&sink, state, Some(e.to_string()), None);
                if !sleep_or_shutdown(backoff.next_delay(), &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        set_state(&sink, DeviceState::Connected, None, Some(path.clone()));
        backoff.reset();
        task.decoder.reset();
        // Feedback queued while disconnected is stale.
        while fb_rx.try_recv().is_ok() {}
        let mut next_command = task.start_command.as_ref().map(|_| Instant::now());
        let mut last_data = Instant::now();

        let failure: String = loop {
            let idle_at = task
                .decoder
                .idle_gap()
                .filter(|_| task.decoder.has_pending())
                .map(|g| last_data + g);
            tokio::select! {
                _ = shutdown_requested(&mut shutdown) => break 'outer,
                r = port.read(&mut buf) => match r {
                    Ok(0) => break "end of file".to_owned(),
                    Ok(n) => {
                        let now = Instant::now();
                        last_data = now;
                        task.decoder.push(&buf[..n], now, &mut events);
                    }
                    Err(e) => break format!("read: {e}"),
                },
                Some(fb) = fb_rx.recv() => {
                    let bytes = match fb {
                        Feedback::Good => task.feedback.good.as_ref(),
                        Feedback::Bad => task.feedback.bad.as_ref(),
                    };
                    if let Some(b) = bytes {
                        if let Err(e) = port.write_all(&b.0).await {
                            break format!("write feedback: {e}");
                        }
                    }
                }
                _ = sleep_until_opt(idle_at), if idle_at.is_some() => {
                    task.decoder.flush_idle(Instant::now(), &mut events);
                }
                _ = sleep_until_opt(next_command), if next_command.is_some() => {
                    if let Some(cmd) = &task.start_command {
                        if let Err(e) = port.write_all(cmd).await {
                            break format!("write start_command: {e}");
                        }
                    }
                    next_command = task.command_interval.map(|i| Instant::now() + i);
                }
            }
            if !events.is_empty() && !sink.deliver(&mut events, last_data, &mut shutdown).await {
                break 'outer;
            }
        };
        drop(port);
        // A vanished port (unplugged, link removed) is "missing", anything else an error.
        match resolve_port(&task.settings) {
            Err(PortError::Missing(m)) => set_state(
                &sink,
                DeviceState::Missing,
                Some(format!("disconnected ({failure}); {m}")),
                None,
            ),
            _ => set_state(
                &sink,
                DeviceState::Error,
                Some(format!("{path}: {failure}")),
                None,
            ),
        }
        if !sleep_or_shutdown(backoff.next_delay(), &mut shutdown).await {
            break;
        }
    }
    set_state(&sink, DeviceState::Stopped, None, None);
}
