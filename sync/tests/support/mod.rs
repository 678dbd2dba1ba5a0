//! Shared test harness: receivers (in-process and as a child process), agents, uploaders,
//! and waiting on conditions with deadlines.

#![allow(dead_code)]

pub mod proxy;

use bobbin_sync::receiver::{self, AgentRegistry, ReceiverConfig, Store};
use bobbin_sync::testing::{RecordGen, SqliteJournal};
use bobbin_sync::{
    AgentKey, SyncConfig, SyncError, SyncStatus, UploadSource, Uploader, UploaderHandle,
};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const READER_TOKEN: &str = "reader-token";

/// An agent identity: id, token, key.
pub struct Agent {
    pub id: String,
    pub token: String,
    pub key_seed: [u8; 32],
}

impl Agent {
    pub fn new(n: u8) -> Agent {
        Agent {
            id: format!("ws-{n:04}"),
            token: format!("token-{n}-secret"),
            key_seed: [n; 32],
        }
    }

    pub fn key(&self) -> AgentKey {
        AgentKey::from_seed(self.key_seed)
    }
}

pub fn registry(agents: &[&Agent]) -> AgentRegistry {
    let mut reg = AgentRegistry::new();
    for a in agents {
        reg.add_agent(&a.id, &a.token, a.key().public_key());
    }
    reg.add_reader("tests", READER_TOKEN);
    reg
}

/// The same registry as an agents file, for the binary.
pub fn agents_file(dir: &Path, agents: &[&Agent]) -> PathBuf {
    let mut text = String::new();
    for a in agents {
        text.push_str(&format!(
            "[[agent]]\nid = \"{}\"\ntoken = \"{}\"\npublic_key = \"{}\"\n\n",
            a.id,
            a.token,
            a.key().public_key_base64()
        ));
    }
    text.push_str(&format!(
        "[[reader]]\nname = \"tests\"\ntoken = \"{READER_TOKEN}\"\n"
    ));
    let path = dir.join("agents.toml");
    std::fs::write(&path, text).expect("write agents file");
    path
}

/// A receiver running in this process.
pub struct InProcessReceiver {
    pub addr: SocketAddr,
    pub db: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for InProcessReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl InProcessReceiver {
    pub async fn start(
        dir: &Path,
        agents: &[&Agent],
        tweak: impl FnOnce(&mut ReceiverConfig),
    ) -> Self {
        let db = dir.join("receiver.db");
        let mut config = ReceiverConfig::new(&db, registry(agents));
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            receiver::serve(listener, config).await.expect("receiver");
        });
        InProcessReceiver { addr, db, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn store(&self) -> Store {
        Store::open(&self.db).expect("open receiver store")
    }
}

/// The `bobbin-receiver` binary as a child process (killed on drop).
pub struct ChildReceiver {
    pub child: std::process::Child,
    pub addr: SocketAddr,
}

impl Drop for ChildReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildReceiver {
    /// Starts the binary on `listen` and waits (with a deadline) for its "listening on" line.
    pub fn start(db: &Path, agents: &Path, listen: &str) -> ChildReceiver {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bobbin-receiver"))
            .args(["serve", "--listen", listen, "--db"])
            .arg(db)
            .arg("--agents")
            .arg(agents)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn bobbin-receiver");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("bobbin-receiver did not report its address within 30 s");
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        ChildReceiver { child, addr }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

/// Settings for tests: fast retries, short timeouts.
pub fn fast_config(url: &str, agent: &Agent) -> SyncConfig {
    let mut c = SyncConfig::new(url, &agent.id, &agent.token);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(300);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c.poll_interval = Duration::from_millis(50);
    c
}

pub struct Running {
    pub handle: UploaderHandle,
    pub task: tokio::task::JoinHandle<Result<(), SyncError>>,
}

impl Running {
    pub async fn stop(self) {
        self.handle.shutdown();
        let r = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("uploader did not stop within 10 s")
            .expect("uploader task panicked");
        r.expect("uploader returned an error");
    }

    pub fn status(&self) -> SyncStatus {
        self.handle.status()
    }

    /// How far `j` is delivered *and counted*: the journal's cursor is committed before
    /// the uploader updates its counters, so waiting on the cursor alone races the
    /// counters a test asserts next.
    pub fn settled(&self, j: &SqliteJournal) -> u64 {
        let id = j.journal_id();
        let reported = self
            .status()
            .sources
            .iter()
            .find(|s| s.journal_id == id)
            .map_or(0, |s| s.cursor);
        reported.min(cursor(j))
    }
}

pub fn start_uploader(
    cfg: SyncConfig,
    agent: &Agent,
    sources: Vec<Arc<dyn UploadSource>>,
) -> Running {
    let (up, handle) = Uploader::new(cfg, agent.key(), sources).expect("uploader");
    let task = tokio::spawn(up.run());
    Running { handle, task }
}

/// A journal in `dir` with `n` generated records.
pub fn journal(dir: &Path, name: &str, seed: u64, n: usize) -> Arc<SqliteJournal> {
    let j = SqliteJournal::open(&dir.join(name)).expect("journal");
    let mut g = RecordGen::new(seed);
    let mut left = n;
    while left > 0 {
        let k = left.min(10_000);
        j.append(g.take(k)).expect("append");
        left -= k;
    }
    Arc::new(j)
}

/// Waits until `cond` holds, polling; panics with `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cursor of a source (panics on a storage error).
pub fn cursor(j: &SqliteJournal) -> u64 {
    j.cursor().expect("cursor")
}

/// GET a query endpoint with the reader token.
pub async fn get_json(base: &str, path: &str) -> serde_json::Value {
    bobbin_sync::install_crypto_provider();
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(READER_TOKEN)
        .send()
        .await
        .expect("GET");
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json")
}
