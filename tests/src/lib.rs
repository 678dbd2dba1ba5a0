//! The harness shared by Bobbin's process-level tests: pseudo-terminal scanners, a real
//! Mosquitto, and condition polling with deadlines (never sleep-and-hope).

pub mod mosquitto;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A pseudo-terminal playing a serial scanner (it lives in the drivers crate because
/// `bobbin demo` uses it too).
pub use bobbin_drivers::sim::PtyScanner;

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
