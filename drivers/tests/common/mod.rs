//! Test helpers: pseudo-terminal pairs, condition polling with deadlines.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bobbin_drivers::{DeviceHandle, DeviceState, Reading};
use tokio::sync::mpsc;

/// Default deadline for a condition: generous, because the reconnect backoff grows to
/// several seconds and CI machines are slow. Tests finish as soon as the condition holds.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A pseudo-terminal pair. The driver opens `slave_path` through tokio-serial; the test
/// writes to (and reads from) the master, playing the scanner.
pub struct Pty {
    pub master: File,
    /// Kept open so the slave node exists before the driver opens it.
    slave: File,
    pub slave_path: PathBuf,
}

impl Pty {
    pub fn open() -> Pty {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        // SAFETY: openpty writes two fds; name/termios/winsize may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just returned by openpty and are owned by nobody else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let slave_path = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&slave)
        ))
        .expect("slave path");
        // Non-blocking master so the test can poll it for feedback bytes.
        // SAFETY: fcntl on an owned, valid fd.
        unsafe {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&master);
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Pty {
            master: File::from(master),
            slave: File::from(slave),
            slave_path,
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to pty master");
    }

    /// Reads whatever the driver wrote to the port, waiting until `n` bytes arrived.
    pub async fn read_exact_within(&mut self, n: usize, within: Duration) -> Vec<u8> {
        let end = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < n {
            match self.master.read(&mut buf) {
                Ok(k) if k > 0 => got.extend_from_slice(&buf[..k]),
                _ => {
                    assert!(
                        Instant::now() < end,
                        "only {got:02X?} arrived at the master, expected {n} bytes"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        got
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `DEADLINE`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the device reaches `state`.
pub async fn wait_state(h: &DeviceHandle, state: DeviceState) {
    let what = format!("{} to become {state}", h.id());
    wait_until(&what, || h.status().state == state).await;
}

/// The next reading, or a panic after `DEADLINE`.
pub async fn next_reading(rx: &mut mpsc::Receiver<Reading>) -> Reading {
    match tokio::time::timeout(DEADLINE, rx.recv()).await {
        Ok(Some(r)) => r,
        Ok(None) => panic!("readings channel closed"),
        Err(_) => panic!("no reading within {DEADLINE:?}"),
    }
}
