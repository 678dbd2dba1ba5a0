//! Simulated devices: a pseudo-terminal pair that plays a serial scanner, for `bobbin demo`
//! and for tests. The agent opens the slave side through tokio-serial exactly as it would a
//! real `/dev/serial/by-id/…` path; the simulator writes scans to the master.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A pseudo-terminal pair playing a serial scanner: the agent opens the slave side through
/// tokio-serial (via a stable symlink, as it would a `/dev/serial/by-id` path); the test
/// writes scans to the master and reads the feedback bytes the agent sends back.
pub struct PtyScanner {
    master: File,
    _slave: File,
    /// The symlink the agent's config names.
    pub link: PathBuf,
}

impl PtyScanner {
    /// Opens a pty pair and points `link` at its slave.
    ///
    /// # Panics
    /// When the system has no pseudo-terminals left (a test or demo cannot go on then).
    pub fn open(link: &Path) -> PtyScanner {
        Self::try_open(link).expect("open a pseudo-terminal pair")
    }

    /// Opens a pty pair and points `link` at its slave.
    pub fn try_open(link: &Path) -> std::io::Result<PtyScanner> {
        let (mut m, mut s): (libc::c_int, libc::c_int) = (-1, -1);
        // SAFETY: openpty writes two fds; the name, termios and winsize pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both fds were just returned by openpty and belong to nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
        // Non-blocking, so reading feedback can poll with a deadline.
        // SAFETY: fcntl on a valid fd we own.
        unsafe {
            let fd = master.as_raw_fd();
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            );
        }
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link)?;
        Ok(PtyScanner {
            master: File::from(master),
            _slave: File::from(slave),
            link: link.to_owned(),
        })
    }

    /// Sends one scan, terminated with CR LF as most serial scanners do.
    ///
    /// # Panics
    /// When the pty cannot be written (tests want that loud); see [`PtyScanner::send`].
    pub fn scan(&mut self, text: &str) {
        self.send(text).expect("write scan to pty");
    }

    /// Sends one scan with CR LF; an error instead of a panic.
    pub fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.master.write_all(text.as_bytes())?;
        self.master.write_all(b"\r\n")
    }

    /// Reads and discards what the agent wrote back (feedback bytes), without waiting.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 256];
        while matches!(self.master.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Reads what the agent wrote back until `n` bytes arrived, or panics after `limit`.
    pub fn read_feedback(&mut self, n: usize, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < n {
            match self.master.read(&mut buf) {
                Ok(k) if k > 0 => got.extend_from_slice(&buf[..k]),
                _ => {
                    assert!(
                        Instant::now() < deadline,
                        "only {got:02X?} came back, wanted {n} bytes"
                    );
                    // Fine-grained, so latency measured through it is the agent's, not ours.
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        got
    }
}
