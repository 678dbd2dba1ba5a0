//! systemd integration: `Type=notify` readiness, watchdog pings, status lines.
//!
//! Every call is a no-op when the agent does not run under systemd (`NOTIFY_SOCKET` unset),
//! so the same binary runs by hand, in tests and as a service.

use sd_notify::NotifyState;
use std::time::Duration;

/// Tells systemd the agent is ready: the journal is open and the tasks are started.
pub fn ready(status: &str) {
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the agent is stopping (so a slow final commit is not taken for a hang).
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// How often to ping the watchdog: half the interval systemd asked for, if it asked.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// One watchdog ping. Sent only from the liveness check, after the journal writer and the
/// async runtime were both seen alive, so a wedged agent is restarted by systemd.
pub fn watchdog() {
    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
}
