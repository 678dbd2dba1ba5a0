//! The single writer: one thread owns the write connection and commits in groups.
//!
//! Each loop takes the first waiting operation, then every other one already queued (up to
//! `max_batch`), runs them all in one transaction and commits. Only then does each
//! operation's completion fire. So a burst of N appends costs one fsync, not N, and nobody is
//! told "stored" before the data is on disk (DESIGN invariant 1).
//!
//! Storage errors other than a full disk are fatal: the writer fails every waiting
//! operation and stops, and the daemon exits for systemd to restart it (DESIGN invariant 10:
//! after a failed fsync the kernel may have dropped the dirty pages, so retrying could
//! "succeed" for data that never reached the disk).

use super::{ChainHead, JournalConfig, JournalError};
use bobbin_sync::record::{JournalId, Record, RecordContent, RecordHash};
use rusqlite::{params, Connection, Transaction};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// A record's place in the journal, returned once it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The journal it went to.
    pub journal_id: JournalId,
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: RecordHash,
}

/// A piece of bad input kept with its raw bytes (DESIGN invariant 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRow {
    /// When it arrived (UTC ms).
    pub time_ms: i64,
    /// Where it came from, e.g. `device:scan-1` or `mqtt:machines/m7/data`.
    pub source: String,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Why it was refused.
    pub reason: String,
}

/// Runs inside the writer's transaction; returns what to do once the commit's outcome is known.
type ExecFn = Box<dyn FnOnce(&mut TxCtx<'_, '_>) -> Completion + Send>;
type Completion = Box<dyn FnOnce(Result<(), &JournalError>) + Send>;

enum WriteOp {
    Append {
        content: RecordContent,
        done: oneshot::Sender<Result<Committed, JournalError>>,
    },
    Exec(ExecFn),
    Shutdown(oneshot::Sender<()>),
}

/// Producers' side of the journal. Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct JournalHandle {
    tx: mpsc::Sender<WriteOp>,
    fatal: Arc<Mutex<Option<String>>>,
}

/// An append that is queued; [`Pending::wait`] resolves once it is durable.
pub struct Pending(
    oneshot::Receiver<Result<Committed, JournalError>>,
    JournalHandle,
);

impl Pending {
    /// Waits until the record is committed (or the writer failed).
    pub async fn wait(self) -> Result<Committed, JournalError> {
        match self.0.await {
            Ok(r) => r,
            Err(_) => Err(self.1.closed()),
        }
    }

    /// The blocking form of [`Pending::wait`], for threads outside the async runtime.
    pub fn blocking_wait(self) -> Result<Committed, JournalError> {
        match self.0.blocking_recv() {
            Ok(r) => r,
            Err(_) => Err(self.1.closed()),
        }
    }
}

impl JournalHandle {
    fn closed(&self) -> JournalError {
        let reason = self.fatal.lock().map(|g| g.clone()).unwrap_or(None);
        JournalError::Closed(reason)
    }

    /// Queues a record, waiting only for queue space (back-pressure), not for the commit.
    pub async fn enqueue(&self, content: RecordContent) -> Result<Pending, JournalError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(WriteOp::Append { content, done })
            .await
            .map_err(|_| self.closed())?;
        Ok(Pending(rx, self.clone()))
    }

    /// Appends a record and returns once it is durable.
    pub async fn append(&self, content: RecordContent) -> Result<Committed, JournalError> {
        self.enqueue(content).await?.wait().await
    }

    /// The blocking form of [`JournalHandle::enqueue`], for threads outside the runtime.
    pub fn blocking_enqueue(&self, content: RecordContent) -> Result<Pending, JournalError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .blocking_send(WriteOp::Append { content, done })
            .map_err(|_| self.closed())?;
        Ok(Pending(rx, self.clone()))
    }

    /// The blocking form of [`JournalHandle::append`].
    pub fn blocking_append(&self, content: RecordContent) -> Result<Committed, JournalError> {
        self.blocking_enqueue(content)?.blocking_wait()
    }

    /// Stores a reject row; returns its id once durable.
    pub async fn reject(&self, row: RejectRow) -> Result<i64, JournalError> {
        self.exec(move |ctx| {
            ctx.tx.execute(
                "INSERT INTO rejects (time_ms, source, raw, reason) VALUES (?1, ?2, ?3, ?4)",
                params![row.time_ms, row.source, row.raw, row.reason],
            )?;
            Ok(ctx.tx.last_insert_rowid())
        })
        .await
    }

    /// Runs `f` inside the writer's next transaction (in a savepoint of its own, so its
    /// failure touches nothing else) and returns its result once the transaction committed.
    /// `f` may read and write any table and append records through [`TxCtx::append`], all
    /// atomically: e.g. a claim check, its work record and its claim row.
    pub async fn exec<T, F>(&self, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TxCtx<'_, '_>) -> Result<T, JournalError> + Send + 'static,
    {
        let (op, rx) = exec_op(f);
        self.tx
            .send(WriteOp::Exec(op))
            .await
            .map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
    }

    /// The blocking form of [`JournalHandle::exec`], for threads outside the runtime.
    pub fn blocking_exec<T, F>(&self, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TxCtx<'_, '_>) -> Result<T, JournalError> + Send + 'static,
    {
        let (op, rx) = exec_op(f);
        self.tx
            .blocking_send(WriteOp::Exec(op))
            .map_err(|_| self.closed())?;
        rx.blocking_recv().map_err(|_| self.closed())?
    }
}

/// What an [`JournalHandle::exec`] closure works with: the open transaction, and the chain
/// head so it can append records.
pub struct TxCtx<'a, 'c> {
    /// The writer's open transaction.
    pub tx: &'a Transaction<'c>,
    head: &'a mut ChainHead,
}

impl TxCtx<'_, '_> {
    /// Appends a record in this transaction; it is durable once the transaction commits.
    pub fn append(&mut self, content: &RecordContent) -> Result<Committed, JournalError> {
        append_in_tx(self.tx, self.head, content)
    }

    /// The journal new records go to.
    pub fn journal_id(&self) -> JournalId {
        self.head.journal_id
    }

    /// The row id of the current journal in `journals`.
    pub fn journal_row(&self) -> i64 {
        self.head.journal
    }
}

type ExecResult<T> = oneshot::Receiver<Result<T, JournalError>>;

fn exec_op<T, F>(f: F) -> (ExecFn, ExecResult<T>)
where
    T: Send + 'static,
    F: FnOnce(&mut TxCtx<'_, '_>) -> Result<T, JournalError> + Send + 'static,
{
    let (done, rx) = oneshot::channel::<Result<T, JournalError>>();
    let op: ExecFn = Box::new(move |ctx| {
        let result = in_savepoint(ctx, f);
        Box::new(move |commit| {
            let _ = done.send(match commit {
                Ok(()) => result,
                Err(e) => Err(copy_error(e)),
            });
        })
    });
    (op, rx)
}

fn in_savepoint<T>(
    ctx: &mut TxCtx<'_, '_>,
    f: impl FnOnce(&mut TxCtx<'_, '_>) -> Result<T, JournalError>,
) -> Result<T, JournalError> {
    let saved = *ctx.head;
    ctx.tx.execute_batch("SAVEPOINT exec_op")?;
    match f(ctx) {
        Ok(v) => {
            ctx.tx.execute_batch("RELEASE exec_op")?;
            Ok(v)
        }
        Err(e) => {
            // Undo its rows and its place in the chain alike.
            *ctx.head = saved;
            ctx.tx
                .execute_batch("ROLLBACK TO exec_op; RELEASE exec_op")?;
            Err(e)
        }
    }
}

/// One error fans out to every operation of a failed transaction; rusqlite's errors are not
/// `Clone`, so each gets a copy by kind and message.
fn copy_error(e: &JournalError) -> JournalError {
    match e {
        JournalError::DiskFull => JournalError::DiskFull,
        JournalError::Closed(r) => JournalError::Closed(r.clone()),
        other => JournalError::Closed(Some(other.to_string())),
    }
}

/// The writer thread and the checkpointer beside it.
pub(crate) struct WriterThread {
    writer: Option<JoinHandle<()>>,
    checkpointer: Option<(JoinHandle<()>, std::sync::mpsc::Sender<()>)>,
    alive: Arc<AtomicBool>,
}

impl WriterThread {
    pub(crate) fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub(crate) fn liveness(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let alive = self.alive.clone();
        move || alive.load(Ordering::Acquire)
    }

    /// Asks the writer to commit what is queued and stop, then joins both threads.
    pub(crate) fn shutdown(mut self, handle: &JournalHandle) -> Result<(), JournalError> {
        let (done, rx) = oneshot::channel();
        if handle.tx.blocking_send(WriteOp::Shutdown(done)).is_ok() {
            let _ = rx.blocking_recv();
        }
        self.join();
        match handle.fatal.lock().map(|g| g.clone()).unwrap_or(None) {
            Some(reason) => Err(JournalError::Closed(Some(reason))),
            None => Ok(()),
        }
    }

    fn join(&mut self) {
        if let Some((t, stop)) = self.checkpointer.take() {
            let _ = stop.send(());
            let _ = t.join();
        }
        if let Some(t) = self.writer.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        // Without an explicit shutdown the writer ends when every handle is gone; the
        // checkpointer must not outlive the journal either.
        if let Some((t, stop)) = self.checkpointer.take() {
            let _ = stop.send(());
            let _ = t.join();
        }
    }
}

/// Starts the writer on `conn`, continuing the chain at `head`.
pub(crate) fn start(
    conn: Connection,
    head: ChainHead,
    cfg: &JournalConfig,
) -> Result<(JournalHandle, WriterThread), JournalError> {
    // Checkpoints run on their own thread: SQLite's automatic ones run inside a commit and
    // stalled commits for 13-33 ms here.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let (tx, rx) = mpsc::channel(cfg.queue.max(1));
    let fatal = Arc::new(Mutex::new(None));
    let alive = Arc::new(AtomicBool::new(true));
    let max_batch = cfg.max_batch.max(1);
    let writer = {
        let fatal = fatal.clone();
        let alive = alive.clone();
        std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                let mut w = Writer {
                    conn,
                    head,
                    max_batch,
                };
                let reason = w.run(rx);
                if let Some(reason) = &reason {
                    tracing::error!(%reason, "journal writer stopped on a storage error");
                }
                if let Ok(mut g) = fatal.lock() {
                    *g = reason;
                }
                alive.store(false, Ordering::Release);
            })
            .map_err(|source| JournalError::Io {
                what: "starting the writer thread for",
                path: cfg.path.clone(),
                source,
            })?
    };
    let checkpointer = spawn_checkpointer(cfg)?;
    Ok((
        JournalHandle { tx, fatal },
        WriterThread {
            writer: Some(writer),
            checkpointer: Some(checkpointer),
            alive,
        },
    ))
}

fn spawn_checkpointer(
    cfg: &JournalConfig,
) -> Result<(JoinHandle<()>, std::sync::mpsc::Sender<()>), JournalError> {
    let conn = super::connect(&cfg.path)?;
    let every = cfg.checkpoint_interval;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let t = std::thread::Builder::new()
        .name("journal-checkpoint".into())
        .spawn(move || loop {
            match stopped.recv_timeout(every) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // PASSIVE never waits for the writer; whatever it cannot fold now it
                    // folds next time.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "background WAL checkpoint failed");
                    }
                }
                _ => return,
            }
        })
        .map_err(|source| JournalError::Io {
            what: "starting the checkpoint thread for",
            path: cfg.path.clone(),
            source,
        })?;
    Ok((t, stop))
}

struct Writer {
    conn: Connection,
    head: ChainHead,
    max_batch: usize,
}

/// An operation's completion, held until its transaction's outcome is known.
enum Done {
    Append(
        oneshot::Sender<Result<Committed, JournalError>>,
        Option<Committed>,
    ),
    Exec(Completion),
    Shutdown(oneshot::Sender<()>),
}

impl Writer {
    /// Runs until shutdown or a fatal error; returns the fatal reason, if any.
    fn run(&mut self, mut rx: mpsc::Receiver<WriteOp>) -> Option<String> {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            let Some(first) = rx.blocking_recv() else {
                self.final_checkpoint();
                return None;
            };
            batch.push(first);
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let stop = batch.iter().any(|op| matches!(op, WriteOp::Shutdown(_)));
            if let Err(fatal) = self.commit_batch(&mut batch) {
                // Fail everything still queued, so no producer waits forever.
                rx.close();
                while let Ok(op) = rx.try_recv() {
                    fail_op(op, &fatal);
                }
                return Some(fatal.to_string());
            }
            if stop {
                rx.close();
                while let Ok(op) = rx.try_recv() {
                    fail_op(op, &JournalError::Closed(Some("shutting down".into())));
                }
                self.final_checkpoint();
                return None;
            }
        }
    }

    fn final_checkpoint(&self) {
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "final WAL checkpoint failed");
        }
    }

    /// Runs and commits one group. Err only for a fatal storage error.
    fn commit_batch(&mut self, batch: &mut Vec<WriteOp>) -> Result<(), JournalError> {
        let saved = self.head;
        let mut done = Vec::with_capacity(batch.len());
        let outcome = self.write_group(batch.drain(..), &mut done);
        match outcome {
            Ok(()) => {
                for d in done {
                    d.fire(Ok(()));
                }
                Ok(())
            }
            Err(e) => {
                self.head = saved;
                let fatal = !matches!(e, JournalError::DiskFull);
                if fatal {
                    tracing::error!(error = %e, "journal commit failed");
                } else {
                    tracing::error!("disk full: journal commit refused; producers must back off");
                }
                for d in done {
                    d.fire(Err(&e));
                }
                if fatal {
                    Err(e)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn write_group(
        &mut self,
        ops: impl Iterator<Item = WriteOp>,
        done: &mut Vec<Done>,
    ) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(classify)?;
        let mut failed: Option<JournalError> = None;
        for op in ops {
            match op {
                WriteOp::Append { content, done: d } => {
                    if failed.is_some() {
                        done.push(Done::Append(d, None));
                        continue;
                    }
                    match append_in_tx(&tx, &mut self.head, &content) {
                        Ok(c) => done.push(Done::Append(d, Some(c))),
                        Err(e) => {
                            failed = Some(e);
                            done.push(Done::Append(d, None));
                        }
                    }
                }
                WriteOp::Exec(f) => {
                    let mut ctx = TxCtx {
                        tx: &tx,
                        head: &mut self.head,
                    };
                    done.push(Done::Exec(f(&mut ctx)));
                }
                WriteOp::Shutdown(d) => done.push(Done::Shutdown(d)),
            }
        }
        if let Some(e) = failed {
            let _ = tx.rollback();
            return Err(e);
        }
        tx.commit().map_err(classify)
    }
}

impl Done {
    fn fire(self, outcome: Result<(), &JournalError>) {
        match self {
            Done::Append(d, c) => {
                let _ = d.send(match (outcome, c) {
                    (Ok(()), Some(c)) => Ok(c),
                    (Ok(()), None) => Err(JournalError::Closed(Some("append lost".into()))),
                    (Err(e), _) => Err(copy_error(e)),
                });
            }
            Done::Exec(f) => f(outcome),
            Done::Shutdown(d) => {
                let _ = d.send(());
            }
        }
    }
}

fn fail_op(op: WriteOp, e: &JournalError) {
    match op {
        WriteOp::Append { done, .. } => {
            let _ = done.send(Err(copy_error(e)));
        }
        // Dropping the closure drops its result sender: the caller sees the writer as closed.
        WriteOp::Exec(_) => {}
        WriteOp::Shutdown(d) => {
            let _ = d.send(());
        }
    }
}

/// Maps SQLite's full-disk error to [`JournalError::DiskFull`] (back-pressure, not fatal).
fn classify(e: rusqlite::Error) -> JournalError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        JournalError::DiskFull
    } else {
        JournalError::Sqlite(e)
    }
}

/// Seals `content` as the next record after `head` and inserts it; advances `head`.
pub(crate) fn append_in_tx(
    tx: &Transaction<'_>,
    head: &mut ChainHead,
    content: &RecordContent,
) -> Result<Committed, JournalError> {
    let seq = head.next_seq;
    let hash = Record::compute_hash(&head.journal_id, seq, content, &head.last_hash);
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO records (journal, seq, kind, time_ms, station, worker, trace_code, \
             order_no, process, body, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(classify)?;
    stmt.execute(params![
        head.journal,
        seq as i64,
        content.kind,
        content.time_ms,
        content.station,
        content.worker,
        content.trace_code,
        content.order,
        content.process,
        content.body,
        &head.last_hash.0[..],
        &hash.0[..],
    ])
    .map_err(classify)?;
    head.next_seq += 1;
    head.last_hash = hash;
    Ok(Committed {
        journal_id: head.journal_id,
        seq,
        hash,
    })
}
