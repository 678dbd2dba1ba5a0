//! A small fault-injecting HTTP/1.1 proxy on loopback.
//!
//! It understands just enough HTTP/1.1 (request and response heads, Content-Length and
//! chunked bodies) to act per request on a kept-alive connection: forward, delay, answer
//! with canned bytes, lose the answer after the receiver committed (hold the connection or
//! reset it), truncate the answer, or reset before forwarding. Faults are taken from a
//! script, one per request; an empty script forwards.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Pass it through.
    Forward,
    /// Wait, then pass it through.
    Delay(Duration),
    /// Answer with these bytes (a whole HTTP response) without forwarding; then close.
    Respond(Vec<u8>),
    /// Forward, read the receiver's whole answer, and never send it: keep the connection open
    /// until the client gives up (its request timeout).
    HoldResponse,
    /// Forward, read the whole answer, then reset the client connection (RST).
    ResetAfterForward,
    /// Forward, send only the first `n` bytes of the answer, then close.
    TruncateResponse(usize),
    /// Reset the client connection without forwarding.
    ResetBeforeForward,
}

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When its body was fully read.
    pub at: Instant,
    /// Request line, e.g. `POST /v1/batches HTTP/1.1`.
    pub line: String,
    /// What was done.
    pub fault: Fault,
}

/// A running proxy.
pub struct FaultProxy {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s2, seen2) = (script.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (s3, seen3) = (s2.clone(), seen2.clone());
                tokio::spawn(async move {
                    let _ = serve_conn(client, upstream, s3, seen3).await;
                });
            }
        });
        FaultProxy {
            addr,
            script,
            seen,
            task,
        }
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends faults for the next requests.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script.lock().expect("script").extend(faults);
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    /// How many requests were seen.
    pub fn count(&self) -> usize {
        self.seen.lock().expect("seen").len()
    }

    /// Faults not yet used.
    pub fn pending(&self) -> usize {
        self.script.lock().expect("script").len()
    }
}

/// A canned response with an empty body.
pub fn canned(status: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, need: usize) -> std::io::Result<()> {
    while buf.len() < need {
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Resets a connection: SO_LINGER 0 makes the close send RST. (Deprecated in tokio because a
/// non-zero linger blocks on drop; zero does not block.)
#[allow(deprecated)]
fn reset(s: &TcpStream) -> std::io::Result<()> {
    s.set_linger(Some(Duration::ZERO))
}

/// Reads one HTTP message (head and body) from `s`, with `buf` holding bytes read ahead.
/// Returns the raw bytes and the first line, or `None` at a clean end of stream.
async fn read_message(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<(Vec<u8>, String)>> {
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let line = head.lines().next().unwrap_or("").to_string();
    let lower = head.to_ascii_lowercase();
    let content_length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = lower
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    let total = if chunked {
        // Walk the chunks: size line, data, CRLF ... until the zero chunk and its CRLF.
        let mut pos = head_end;
        loop {
            let line_end = loop {
                if let Some(p) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    break pos + p;
                }
                let need = buf.len() + 1;
                fill(s, buf, need).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[pos..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            pos = line_end + 2 + size + 2;
            fill(s, buf, pos).await?;
            if size == 0 {
                break pos;
            }
        }
    } else {
        let need = head_end + content_length.unwrap_or(0);
        fill(s, buf, need).await?;
        need
    };
    let msg: Vec<u8> = buf.drain(..total).collect();
    Ok(Some((msg, line)))
}

async fn serve_conn(
    mut client: TcpStream,
    upstream: SocketAddr,
    script: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut cbuf = Vec::new();
    let mut up: Option<(TcpStream, Vec<u8>)> = None;
    while let Some((req, line)) = read_message(&mut client, &mut cbuf).await? {
        let fault = script
            .lock()
            .map(|mut s| s.pop_front())
            .ok()
            .flatten()
            .unwrap_or(Fault::Forward);
        seen.lock().expect("seen").push(Seen {
            at: Instant::now(),
            line,
            fault: fault.clone(),
        });
        match &fault {
            Fault::Respond(bytes) => {
                client.write_all(bytes).await?;
                client.shutdown().await?;
                return Ok(());
            }
            Fault::ResetBeforeForward => {
                reset(&client)?;
                return Ok(());
            }
            Fault::Delay(d) => tokio::time::sleep(*d).await,
            _ => {}
        }
        // Forward on a kept-alive upstream connection (reconnect when it was closed).
        let answer = {
            let mut attempt = 0;
            loop {
                if up.is_none() {
                    up = Some((TcpStream::connect(upstream).await?, Vec::new()));
                }
                let (u, ubuf) = up.as_mut().expect("upstream");
                let r = async {
                    u.write_all(&req).await?;
                    read_message(u, ubuf).await
                }
                .await;
                match r {
                    Ok(Some((resp, _))) => break resp,
                    _ if attempt == 0 => {
                        // A stale kept-alive upstream connection: retry once on a fresh one.
                        up = None;
                        attempt += 1;
                    }
                    Ok(None) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                    Err(e) => return Err(e),
                }
            }
        };
        match fault {
            Fault::HoldResponse => {
                // Swallow the answer; the client's request timeout ends this connection.
                let mut sink = [0u8; 1024];
                while client.read(&mut sink).await.unwrap_or(0) > 0 {}
                return Ok(());
            }
            Fault::ResetAfterForward => {
                reset(&client)?;
                return Ok(());
            }
            Fault::TruncateResponse(n) => {
                client.write_all(&answer[..n.min(answer.len())]).await?;
                client.shutdown().await?;
                return Ok(());
            }
            _ => client.write_all(&answer).await?,
        }
    }
    Ok(())
}
