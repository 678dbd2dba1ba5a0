//! The harness shared by Bobbin's process-level tests: pseudo-terminal scanners and
//! condition polling with deadlines (never sleep-and-hope).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Polls `cond` every 10 ms until it holds; panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

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
    pub fn open(link: &Path) -> PtyScanner {
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
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just returned by openpty and belong to nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))
            .expect("pty slave path");
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
        std::os::unix::fs::symlink(&slave_path, link).expect("symlink to pty");
        PtyScanner {
            master: File::from(master),
            _slave: File::from(slave),
            link: link.to_owned(),
        }
    }

    /// Sends one scan, terminated with CR LF as most serial scanners do.
    pub fn scan(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).expect("write scan");
        self.master.write_all(b"\r\n").expect("write terminator");
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
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        got
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released: a test binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A plain HTTP/1.1 GET on loopback: (status code, body). Enough for the agent's status API
/// without pulling an HTTP client into every test.
pub fn http_get(addr: &str, path: &str, bearer: Option<&str>) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, bearer, None)
}

/// A plain HTTP/1.1 POST of a JSON body on loopback: (status code, body).
pub fn http_post_json(addr: &str, path: &str, json: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "POST", path, None, Some(json))
}

fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = json.map(|b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
    });
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n{}",
        body.unwrap_or_else(|| "\r\n".into())
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let head_end = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    let mut body = text[head_end..].to_string();
    if text[..head_end]
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
