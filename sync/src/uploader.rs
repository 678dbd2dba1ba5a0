//! The uploader: drains [`UploadSource`]s to the platform, in priority order.
//!
//! The decisions live in [`crate::policy`]; this module is the loop around them:
//!
//! * A window of at most `in_flight` batches. Each batch is a task that delivers its range
//!   completely — retrying with the same bytes, splitting on 413/422 — or fails only on
//!   401/403 (or shutdown).
//! * Results are committed strictly in the order the batches were read, so each source's
//!   cursor moves forward without holes, and only after the receiver's 2xx with a complete
//!   per-record answer (a malformed answer is an unknown outcome and is retried).
//! * When a slot frees up, the next batch comes from the highest-priority source that has
//!   records: claims and scans overtake a sensor backlog at the next batch boundary.
//! * Memory is bounded: at most `in_flight` batches plus one read-ahead buffer per source.

use crate::config::{ConfigError, SyncConfig, TokenError};
use crate::policy::{
    classify, parse_retry_after, split_point, BatchPlan, Disposition, RetryPolicy,
};
use crate::record::{JournalId, Record};
use crate::signing::{content_digest_header, AgentKey};
use crate::source::{Backlog, RecordOutcome, SourceError, UploadSource};
use crate::wire::{self, reason, BatchResponse, ErrorBody, RecordStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Largest answer body read from the receiver (a 100 000-record answer is about 100 KiB).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Why the uploader could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token could not be read.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// A source failed (a storage error: fatal by design).
    #[error("upload source {journal}: {source}")]
    Source {
        /// The source's journal.
        journal: JournalId,
        /// The error.
        source: SourceError,
    },
    /// No sources were given.
    #[error("the uploader needs at least one source")]
    NoSources,
}

/// What the uploader is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncState {
    /// Nothing to send.
    Idle,
    /// Batches in flight.
    Uploading,
    /// Waiting before a retry (see `retry_at` and `last_error`).
    BackingOff,
    /// The platform refused the credentials (401/403); waiting for a configuration change.
    StoppedAuth,
}

/// An error with the time it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub message: String,
}

/// Per-source progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    /// The source's journal.
    pub journal_id: JournalId,
    /// Its priority (0 first).
    pub priority: usize,
    /// The committed cursor: highest seq the receiver confirmed.
    pub cursor: u64,
    /// Records not yet confirmed.
    pub unsent: u64,
    /// Time (ms since the epoch) of the oldest unconfirmed record.
    pub oldest_unsent_ms: Option<i64>,
    /// Its age in seconds, by this PC's clock.
    pub oldest_unsent_age_s: Option<i64>,
    /// The receiver's highest seq for this journal, from its last answer.
    pub receiver_highest_seq: Option<u64>,
    /// The receiver's gap-free prefix for this journal, from its last answer.
    pub receiver_contiguous_seq: Option<u64>,
    /// Sequence numbers missing from the local journal (seen while reading).
    pub local_missing: u64,
}

/// Cumulative counts since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Records the receiver stored for the first time.
    pub accepted: u64,
    /// Records the receiver already held (retries): delivered, not counted twice.
    pub duplicate: u64,
    /// Records in conflict (claim already taken, id or chain conflict).
    pub conflict: u64,
    /// Records rejected (by the receiver, or alone by a 413/422).
    pub rejected: u64,
    /// Batches answered with 2xx.
    pub batches: u64,
    /// Attempts that were retried.
    pub retries: u64,
    /// Batches split after a 413/422.
    pub splits: u64,
    /// Retry-After values longer than `retry_after_max` (cut to it).
    pub retry_after_capped: u64,
    /// Request body bytes sent (gzip), every attempt included.
    pub bytes_sent: u64,
}

/// A snapshot of the uploader for the status API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// What it is doing.
    pub state: SyncState,
    /// Why it is stopped or backing off, when it is.
    pub message: Option<String>,
    /// The last 2xx.
    pub last_success: Option<DateTime<Utc>>,
    /// The last failure of any kind.
    pub last_error: Option<ErrorInfo>,
    /// When the next retry is due, while backing off.
    pub retry_at: Option<DateTime<Utc>>,
    /// Batches in flight.
    pub in_flight: usize,
    /// Unsent records over all sources, and the oldest of them.
    pub backlog: Backlog,
    /// Age in seconds of the oldest unsent record over all sources.
    pub oldest_unsent_age_s: Option<i64>,
    /// Each source, in priority order.
    pub sources: Vec<SourceStatus>,
    /// Cumulative counts.
    pub counters: Counters,
}

#[derive(Default)]
struct Inner {
    stopped: Option<String>,
    backing_off: usize,
    retry_at: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<ErrorInfo>,
    in_flight: usize,
    sources: Vec<SourceStatus>,
    counters: Counters,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Notify,
    shutdown: watch::Sender<bool>,
    config: watch::Sender<SyncConfig>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock only leaves stale numbers; keep serving them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, message: String) {
        tracing::warn!(target: "bobbin_sync", "{message}");
        self.lock().last_error = Some(ErrorInfo {
            at: Utc::now(),
            message,
        });
    }
}

/// Controls a running [`Uploader`]: status, wake-ups, reconfiguration, shutdown.
#[derive(Clone)]
pub struct UploaderHandle {
    shared: Arc<Shared>,
}

impl UploaderHandle {
    /// A snapshot for the status API.
    pub fn status(&self) -> SyncStatus {
        let i = self.shared.lock();
        let state = if i.stopped.is_some() {
            SyncState::StoppedAuth
        } else if i.backing_off > 0 {
            SyncState::BackingOff
        } else if i.in_flight > 0 {
            SyncState::Uploading
        } else {
            SyncState::Idle
        };
        let message = match state {
            SyncState::StoppedAuth => i.stopped.clone(),
            SyncState::BackingOff => i.last_error.as_ref().map(|e| e.message.clone()),
            _ => None,
        };
        let unsent = i.sources.iter().map(|s| s.unsent).sum();
        let oldest = i.sources.iter().filter_map(|s| s.oldest_unsent_ms).min();
        SyncStatus {
            state,
            message,
            last_success: i.last_success,
            last_error: i.last_error.clone(),
            retry_at: if state == SyncState::BackingOff {
                i.retry_at
            } else {
                None
            },
            in_flight: i.in_flight,
            backlog: Backlog {
                unsent,
                oldest_unsent_ms: oldest,
            },
            oldest_unsent_age_s: oldest.map(age_s),
            sources: i.sources.clone(),
            counters: i.counters,
        }
    }

    /// Tells the uploader that new records were committed (so it need not wait for its poll).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Replaces the configuration (after `bobbin` reloads its config file). Resumes an
    /// uploader stopped by a 401/403. The key file is read only at start.
    pub fn reconfigure(&self, config: SyncConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.shared.config.send_replace(config);
        Ok(())
    }

    /// Asks the uploader to stop; [`Uploader::run`] returns soon after. Batches in flight are
    /// abandoned (they are re-sent at the next start and answered as duplicates).
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

fn age_s(ms: i64) -> i64 {
    (Utc::now().timestamp_millis() - ms).max(0) / 1000
}

/// Everything a batch task needs, fixed for the task's life.
struct Ctx {
    client: reqwest::Client,
    url: String,
    token: String,
    agent_id: String,
    key: Arc<AgentKey>,
    policy: RetryPolicy,
    gzip_level: u32,
    /// The batch length, halved after a 413 (shared by all tasks).
    max_records: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    gate: Arc<Gate>,
}

/// The earliest time any batch may be sent: a `Retry-After` applies to every slot.
#[derive(Default)]
struct Gate {
    not_before: Mutex<Option<Instant>>,
}

impl Gate {
    fn push(&self, until: Instant) {
        let mut g = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none_or(|t| t < until) {
            *g = Some(until);
        }
    }

    async fn wait(&self) {
        let until = *self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = until {
            tokio::time::sleep_until(t).await;
        }
    }
}

/// Installs rustls's ring crypto provider as the process default, if none is installed yet.
///
/// reqwest is built without a provider of its own (no aws-lc-rs C build) and panics when it
/// builds a client without one, so call this before building any other `reqwest::Client`.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the uploader's HTTP client (installing the crypto provider first).
fn build_client(cfg: &SyncConfig) -> Result<reqwest::Client, SyncError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("bobbin-sync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SyncError::Client(e.to_string()))
}

/// The result of delivering one batch range completely.
struct Delivered {
    first: u64,
    up_to: u64,
    outcomes: Vec<RecordOutcome>,
    accepted: u64,
    duplicate: u64,
    receiver: Option<(u64, u64)>,
}

enum Failure {
    Auth(String),
}

struct SourceSlot {
    src: Arc<dyn UploadSource>,
    journal: JournalId,
    /// Highest seq read (sent or buffered).
    read_pos: u64,
    /// Highest seq committed.
    committed: u64,
    buffer: VecDeque<Record>,
}

struct InFlight {
    slot: usize,
    handle: JoinHandle<Result<Delivered, Failure>>,
}

/// Drains sources to the platform. Build with [`Uploader::new`], run with [`Uploader::run`].
pub struct Uploader {
    shared: Arc<Shared>,
    key: Arc<AgentKey>,
    sources: Vec<Arc<dyn UploadSource>>,
    config_rx: watch::Receiver<SyncConfig>,
    shutdown_rx: watch::Receiver<bool>,
}

impl Uploader {
    /// An uploader for `sources`, in priority order (the first drains first).
    pub fn new(
        config: SyncConfig,
        key: AgentKey,
        sources: Vec<Arc<dyn UploadSource>>,
    ) -> Result<(Uploader, UploaderHandle), SyncError> {
        config.validate()?;
        if sources.is_empty() {
            return Err(SyncError::NoSources);
        }
        // Fail early on an unreadable token file (a changed one is re-read after 401/403).
        config.read_token()?;
        build_client(&config)?;
        let (config_tx, config_rx) = watch::channel(config);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let inner = Inner {
            sources: sources
                .iter()
                .enumerate()
                .map(|(priority, s)| SourceStatus {
                    journal_id: s.journal_id(),
                    priority,
                    cursor: 0,
                    unsent: 0,
                    oldest_unsent_ms: None,
                    oldest_unsent_age_s: None,
                    receiver_highest_seq: None,
                    receiver_contiguous_seq: None,
                    local_missing: 0,
                })
                .collect(),
            ..Inner::default()
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            wake: Notify::new(),
            shutdown: shutdown_tx,
            config: config_tx,
        });
        let handle = UploaderHandle {
            shared: shared.clone(),
        };
        Ok((
            Uploader {
                shared,
                key: Arc::new(key),
                sources,
                config_rx,
                shutdown_rx,
            },
            handle,
        ))
    }

    fn make_ctx(&self, cfg: &SyncConfig, gate: Arc<Gate>) -> Result<Arc<Ctx>, SyncError> {
        Ok(Arc::new(Ctx {
            client: build_client(cfg)?,
            url: cfg.batches_url(),
            token: cfg.read_token()?,
            agent_id: cfg.agent_id.clone(),
            key: self.key.clone(),
            policy: cfg.retry_policy(),
            gzip_level: cfg.gzip_level,
            max_records: Arc::new(AtomicUsize::new(cfg.batch_max_records)),
            shared: self.shared.clone(),
            gate,
        }))
    }

    /// Runs until [`UploaderHandle::shutdown`] (then `Ok`) or a source's storage error.
    pub async fn run(mut self) -> Result<(), SyncError> {
        let mut cfg = self.config_rx.borrow_and_update().clone();
        let gate = Arc::new(Gate::default());
        let mut ctx = self.make_ctx(&cfg, gate.clone())?;
        let mut slots = Vec::with_capacity(self.sources.len());
        for src in &self.sources {
            let s = src.clone();
            let cursor = blocking(move || s.cursor(), src.journal_id()).await?;
            slots.push(SourceSlot {
                src: src.clone(),
                journal: src.journal_id(),
                read_pos: cursor,
                committed: cursor,
                buffer: VecDeque::new(),
            });
        }
        let mut window: VecDeque<InFlight> = VecDeque::new();
        let mut last_backlog = None::<Instant>;
        let result = loop {
            if *self.shutdown_rx.borrow() {
                break Ok(());
            }
            // Fill the window from the highest-priority source with records.
            let mut starved = false;
            while window.len() < cfg.in_flight {
                match next_batch(&mut slots, &cfg, &ctx).await {
                    Ok(Some((slot, records))) => {
                        let c = ctx.clone();
                        window.push_back(InFlight {
                            slot,
                            handle: tokio::spawn(deliver(c, Arc::new(records))),
                        });
                    }
                    Ok(None) => {
                        starved = true;
                        break;
                    }
                    Err(e) => {
                        abort_all(&mut window);
                        return Err(e);
                    }
                }
            }
            self.shared.lock().in_flight = window.len();
            if last_backlog.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(1))
                || window.is_empty()
            {
                if let Err(e) = refresh_backlog(&slots, &self.shared).await {
                    abort_all(&mut window);
                    return Err(e);
                }
                last_backlog = Some(Instant::now());
            }
            let Some(front) = window.front_mut() else {
                debug_assert!(starved);
                // Idle: wait for new records, the poll interval, a new config or shutdown.
                tokio::select! {
                    _ = self.shared.wake.notified() => {}
                    _ = tokio::time::sleep(cfg.poll_interval) => {}
                    r = self.config_rx.changed() => {
                        if r.is_ok() {
                            cfg = self.config_rx.borrow_and_update().clone();
                            ctx = self.make_ctx(&cfg, gate.clone())?;
                        }
                    }
                    _ = self.shutdown_rx.changed() => {}
                }
                continue;
            };
            tokio::select! {
                joined = &mut front.handle => {
                    let slot = front.slot;
                    window.pop_front();
                    match joined {
                        Ok(Ok(d)) => {
                            if let Err(e) = commit(&mut slots[slot], d, &self.shared).await {
                                abort_all(&mut window);
                                return Err(e);
                            }
                        }
                        Ok(Err(Failure::Auth(msg))) => {
                            abort_all(&mut window);
                            rewind(&mut slots);
                            self.shared.lock().in_flight = 0;
                            match self.stopped_auth(msg, &mut cfg).await {
                                Some(()) => ctx = self.make_ctx(&cfg, gate.clone())?,
                                None => break Ok(()),
                            }
                        }
                        Err(join) => {
                            // A panicked batch task: its range is re-read and re-sent.
                            self.shared.error(format!("batch task failed: {join}"));
                            abort_all(&mut window);
                            rewind(&mut slots);
                        }
                    }
                }
                r = self.config_rx.changed() => {
                    if r.is_ok() {
                        // Batches in flight finish with the old settings.
                        cfg = self.config_rx.borrow_and_update().clone();
                        ctx = self.make_ctx(&cfg, gate.clone())?;
                    }
                }
                _ = self.shutdown_rx.changed() => {}
            }
        };
        abort_all(&mut window);
        self.shared.lock().in_flight = 0;
        result
    }

    /// Waits in the stopped state until the configuration (or the token file) changes.
    /// Returns `None` on shutdown.
    async fn stopped_auth(&mut self, msg: String, cfg: &mut SyncConfig) -> Option<()> {
        tracing::error!(target: "bobbin_sync", "uploads stopped: {msg}");
        {
            let mut i = self.shared.lock();
            i.stopped = Some(msg.clone());
            i.last_error = Some(ErrorInfo {
                at: Utc::now(),
                message: msg,
            });
        }
        let old_token = cfg.read_token().ok();
        loop {
            tokio::select! {
                r = self.config_rx.changed() => {
                    if r.is_err() { return None; }
                    *cfg = self.config_rx.borrow_and_update().clone();
                    break;
                }
                _ = tokio::time::sleep(cfg.poll_interval.max(Duration::from_secs(2))) => {
                    // A replaced token file counts as a configuration change.
                    if cfg.token_file.is_some() && cfg.read_token().ok() != old_token {
                        break;
                    }
                }
                _ = self.shutdown_rx.changed() => return None,
            }
            if *self.shutdown_rx.borrow() {
                return None;
            }
        }
        self.shared.lock().stopped = None;
        tracing::info!(target: "bobbin_sync", "configuration changed: uploads resume");
        Some(())
    }
}

fn abort_all(window: &mut VecDeque<InFlight>) {
    for f in window.drain(..) {
        f.handle.abort();
    }
}

/// Forgets everything read but not committed, so it is read again.
fn rewind(slots: &mut [SourceSlot]) {
    for s in slots {
        s.read_pos = s.committed;
        s.buffer.clear();
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
    journal: JournalId,
) -> Result<T, SyncError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|source| SyncError::Source { journal, source }),
        Err(e) => Err(SyncError::Source {
            journal,
            source: SourceError::msg(format!("source call panicked: {e}")),
        }),
    }
}

/// Takes the next batch from the highest-priority source that has records.
async fn next_batch(
    slots: &mut [SourceSlot],
    cfg: &SyncConfig,
    ctx: &Ctx,
) -> Result<Option<(usize, Vec<Record>)>, SyncError> {
    let plan = BatchPlan {
        max_records: ctx.max_records.load(Ordering::Relaxed).max(1),
        max_bytes: cfg.batch_max_bytes,
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        if slot.buffer.is_empty() {
            let src = slot.src.clone();
            let after = slot.read_pos;
            let max = cfg.batch_max_records;
            let recs = blocking(move || src.read_after(after, max), slot.journal).await?;
            if let Some(first) = recs.first() {
                if first.seq != after + 1 {
                    let missing = first.seq.saturating_sub(after + 1);
                    tracing::warn!(target: "bobbin_sync",
                        "journal {}: records {}..{} are missing locally; sending what exists",
                        slot.journal, after + 1, first.seq - 1);
                    slot_status(&ctx.shared, i, |s| s.local_missing += missing);
                }
            }
            slot.buffer
                .extend(recs.into_iter().filter(|r| r.seq > after));
        }
        if slot.buffer.is_empty() {
            continue;
        }
        let contiguous = slot.buffer.make_contiguous();
        let n = plan.cut(contiguous);
        let batch: Vec<Record> = slot.buffer.drain(..n).collect();
        if let Some(next) = slot.buffer.front() {
            let last = batch.last().map_or(0, |r| r.seq);
            if next.seq > last + 1 {
                slot_status(&ctx.shared, i, |s| s.local_missing += next.seq - last - 1);
                tracing::warn!(target: "bobbin_sync",
                    "journal {}: records {}..{} are missing locally", slot.journal, last + 1, next.seq - 1);
            }
        }
        slot.read_pos = batch.last().map_or(slot.read_pos, |r| r.seq);
        return Ok(Some((i, batch)));
    }
    Ok(None)
}

fn slot_status(shared: &Shared, i: usize, f: impl FnOnce(&mut SourceStatus)) {
    if let Some(s) = shared.lock().sources.get_mut(i) {
        f(s);
    }
}

async fn commit(slot: &mut SourceSlot, d: Delivered, shared: &Shared) -> Result<(), SyncError> {
    let src = slot.src.clone();
    let outcomes = d.outcomes;
    let up_to = d.up_to;
    let (conflicts, rejects) = outcomes.iter().fold((0, 0), |(c, r), o| match o.status {
        RecordStatus::Conflict => (c + 1, r),
        _ => (c, r + 1),
    });
    for o in &outcomes {
        tracing::warn!(target: "bobbin_sync", "record {}:{} {}: {} ({})",
            o.journal_id, o.seq, o.status.as_str(), o.reason, o.message);
    }
    blocking(move || src.commit_results(up_to, &outcomes), slot.journal).await?;
    slot.committed = up_to;
    let mut i = shared.lock();
    i.last_success = Some(Utc::now());
    let c = &mut i.counters;
    c.accepted += d.accepted;
    c.duplicate += d.duplicate;
    c.conflict += conflicts;
    c.rejected += rejects;
    c.batches += 1;
    if let Some(s) = i.sources.iter_mut().find(|s| s.journal_id == slot.journal) {
        s.cursor = up_to;
        if let Some((highest, contiguous)) = d.receiver {
            s.receiver_highest_seq = Some(highest);
            s.receiver_contiguous_seq = Some(contiguous);
            if contiguous + 1 < d.first {
                tracing::warn!(target: "bobbin_sync",
                    "receiver holds journal {} only up to {contiguous} without gaps; this batch started at {}",
                    slot.journal, d.first);
            }
        }
    }
    Ok(())
}

async fn refresh_backlog(slots: &[SourceSlot], shared: &Shared) -> Result<(), SyncError> {
    for (idx, slot) in slots.iter().enumerate() {
        let src = slot.src.clone();
        let b = blocking(move || src.backlog(), slot.journal).await?;
        slot_status(shared, idx, |s| {
            s.unsent = b.unsent;
            s.oldest_unsent_ms = b.oldest_unsent_ms;
            s.oldest_unsent_age_s = b.oldest_unsent_ms.map(age_s);
            s.cursor = slot.committed;
        });
    }
    Ok(())
}

/// One HTTP attempt's result.
enum Attempt {
    Answer(BatchResponse),
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    Transport(String),
}

struct Body {
    gz: Vec<u8>,
    signature: String,
    digest: String,
    key: String,
}

fn build_body(ctx: &Ctx, records: &[Record]) -> Result<Body, String> {
    let doc = wire::encode_batch(&ctx.agent_id, records).map_err(|e| e.to_string())?;
    let gz = wire::gzip(&doc, ctx.gzip_level);
    let (first, last) = match (records.first(), records.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err("empty batch".into()),
    };
    Ok(Body {
        signature: ctx.key.sign_body(&gz),
        digest: content_digest_header(&gz),
        key: format!(
            "\"{}\"",
            wire::idempotency_key(&first.journal_id, first.seq, last.seq)
        ),
        gz,
    })
}

async fn send(ctx: &Ctx, body: &Body, range: (JournalId, u64, u64)) -> Attempt {
    let req = ctx
        .client
        .post(&ctx.url)
        .bearer_auth(&ctx.token)
        .header("content-type", wire::BATCH_CONTENT_TYPE)
        .header("content-encoding", "gzip")
        .header("idempotency-key", &body.key)
        .header("content-digest", &body.digest)
        .header("bobbin-signature", &body.signature)
        .body(body.gz.clone());
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Attempt::Transport(describe(&e)),
    };
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after")
        .and_then(|v| parse_retry_after(&v, header("date").as_deref(), SystemTime::now()));
    let mut bytes = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if bytes.len() + c.len() > MAX_RESPONSE_BYTES {
                    return Attempt::Transport(format!(
                        "answer larger than {MAX_RESPONSE_BYTES} bytes"
                    ));
                }
                bytes.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => return Attempt::Transport(format!("reading the answer: {}", describe(&e))),
        }
    }
    if (200..300).contains(&status) {
        let parsed = serde_json::from_slice::<BatchResponse>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|r| r.validate(&range.0, range.1, range.2).map(|()| r));
        return match parsed {
            Ok(r) => Attempt::Answer(r),
            // An unreadable 2xx is an unknown outcome: retry; the receiver dedupes.
            Err(e) => Attempt::Transport(format!("HTTP {status} with a malformed answer: {e}")),
        };
    }
    let body = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(e) => format!("{}: {}", e.error, e.message),
        Err(_) => String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
    };
    Attempt::Status {
        status,
        retry_after,
        body,
    }
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "transport error"
    };
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Delivers `records` completely: every record ends accepted, duplicate, conflict or
/// rejected. Fails only on 401/403.
async fn deliver(ctx: Arc<Ctx>, records: Arc<Vec<Record>>) -> Result<Delivered, Failure> {
    let (first, last) = match (records.first(), records.last()) {
        (Some(f), Some(l)) => (f.seq, l.seq),
        _ => unreachable!("batches are never empty"),
    };
    let mut out = Delivered {
        first,
        up_to: last,
        outcomes: Vec::new(),
        accepted: 0,
        duplicate: 0,
        receiver: None,
    };
    // Ranges still to deliver, the next one last; halves of a split go back in order.
    let mut todo: Vec<Range<usize>> = Vec::new();
    todo.push(0..records.len());
    while let Some(range) = todo.pop() {
        let part = &records[range.clone()];
        let (journal, lo, hi) = (part[0].journal_id, part[0].seq, part[part.len() - 1].seq);
        let rc = records.clone();
        let c2 = ctx.clone();
        let r2 = range.clone();
        // Encoding and gzip take milliseconds: keep them off the async workers.
        let body = match tokio::task::spawn_blocking(move || build_body(&c2, &rc[r2])).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) | Err(_) if part.len() == 1 => {
                // Cannot happen for a record read from a journal; never drop it silently.
                out.outcomes.push(local_reject(
                    &part[0],
                    reason::INVALID,
                    "cannot be encoded".into(),
                ));
                continue;
            }
            _ => {
                let mid = range.start + split_point(range.len());
                todo.push(mid..range.end);
                todo.push(range.start..mid);
                continue;
            }
        };
        let mut attempt = 0u32;
        loop {
            ctx.gate.wait().await;
            ctx.shared.lock().counters.bytes_sent += body.gz.len() as u64;
            let (retry_after, what) = match send(&ctx, &body, (journal, lo, hi)).await {
                Attempt::Answer(r) => {
                    for c in r.statuses.chars() {
                        match RecordStatus::from_code(c) {
                            Some(RecordStatus::Accepted) => out.accepted += 1,
                            Some(RecordStatus::Duplicate) => out.duplicate += 1,
                            _ => {}
                        }
                    }
                    out.outcomes.extend(r.problems.into_iter().map(|p| RecordOutcome {
                        journal_id: journal,
                        seq: p.seq,
                        status: p.status,
                        reason: p.reason,
                        message: p.message,
                    }));
                    out.receiver = Some((r.highest_seq, r.contiguous_seq));
                    break;
                }
                Attempt::Transport(e) => (None, e),
                Attempt::Status {
                    status,
                    retry_after,
                    body: text,
                } => match classify(status) {
                    Disposition::Success => unreachable!("2xx is an answer"),
                    Disposition::StopAuth => {
                        return Err(Failure::Auth(format!(
                            "the platform refused our credentials (HTTP {status}: {text}); fix sync.token/token_file or register the public key, then reload"
                        )))
                    }
                    Disposition::Split if part.len() == 1 => {
                        let code = if status == 413 { reason::TOO_LARGE } else { reason::UNPROCESSABLE };
                        out.outcomes.push(local_reject(&part[0], code, format!("HTTP {status}: {text}")));
                        break;
                    }
                    Disposition::Split => {
                        if status == 413 {
                            let mut plan = BatchPlan {
                                max_records: ctx.max_records.load(Ordering::Relaxed),
                                max_bytes: usize::MAX,
                            };
                            plan.shrink_after_too_large(part.len());
                            ctx.max_records.store(plan.max_records, Ordering::Relaxed);
                        }
                        ctx.shared.lock().counters.splits += 1;
                        tracing::info!(target: "bobbin_sync",
                            "HTTP {status} for {journal}:{lo}-{hi}: splitting ({text})");
                        let mid = range.start + split_point(range.len());
                        todo.push(mid..range.end);
                        todo.push(range.start..mid);
                        break;
                    }
                    Disposition::Retry => (retry_after, format!("HTTP {status}: {text}")),
                    Disposition::ProtocolError => {
                        // Not about these records; wait the longest window and keep trying.
                        attempt = attempt.max(31);
                        (retry_after, format!("HTTP {status} (protocol or configuration mismatch): {text}"))
                    }
                },
            };
            let delay = ctx.policy.delay(attempt, retry_after, &mut rand::rng());
            if let Some(ra) = retry_after {
                ctx.gate
                    .push(Instant::now() + ra.min(ctx.policy.retry_after_max));
            }
            {
                let mut i = ctx.shared.lock();
                i.counters.retries += 1;
                if delay.retry_after_capped {
                    i.counters.retry_after_capped += 1;
                }
                i.backing_off += 1;
                i.retry_at = Some(Utc::now() + delay.wait);
            }
            ctx.shared.error(format!(
                "batch {journal}:{lo}-{hi}: {what}; retry {} in {:.1}s",
                attempt + 1,
                delay.wait.as_secs_f64()
            ));
            // Decrement the counter even if the task is aborted while sleeping.
            let guard = BackoffGuard(&ctx.shared);
            tokio::time::sleep(delay.wait).await;
            drop(guard);
            attempt = attempt.saturating_add(1);
        }
    }
    Ok(out)
}

struct BackoffGuard<'a>(&'a Shared);

impl Drop for BackoffGuard<'_> {
    fn drop(&mut self) {
        let mut i = self.0.lock();
        i.backing_off = i.backing_off.saturating_sub(1);
    }
}

fn local_reject(r: &Record, code: &str, message: String) -> RecordOutcome {
    RecordOutcome {
        journal_id: r.journal_id,
        seq: r.seq,
        status: RecordStatus::Rejected,
        reason: code.into(),
        message,
    }
}
