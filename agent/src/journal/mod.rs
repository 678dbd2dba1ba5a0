//! The durable journal: an append-only, hash-chained SQLite file with one writer.
//!
//! - [`Journal::open`] opens (or creates) the file, migrates it, checks it, and quarantines a
//!   corrupt one instead of crash-looping.
//! - [`writer`] owns the only write connection and commits in groups; a record's completion
//!   fires only after its transaction committed (DESIGN invariant 1).
//! - [`reader`] serves queries (trace, upload reads, verify) on separate connections, which
//!   WAL lets run beside the writer.
//! - [`verify`] recomputes the hash chain.

pub mod backup;
pub mod reader;
pub mod restore;
pub mod retention;
pub mod schema;
pub mod verify;
pub mod writer;

use bobbin_sync::record::{JournalId, RecordContent, RecordHash, GENESIS_HASH};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use reader::JournalReader;
pub use writer::{Committed, JournalHandle, Pending, RejectRow, TxCtx};

/// How the journal is set up; the `[journal]` config section.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// Most operations one transaction takes (group-commit bound).
    pub max_batch: usize,
    /// Operations that may wait for the writer before producers are slowed down.
    pub queue: usize,
    /// How often the background checkpointer folds the WAL into the database.
    pub checkpoint_interval: Duration,
}

impl JournalConfig {
    /// Defaults for a journal at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        JournalConfig {
            path: path.into(),
            max_batch: 4096,
            queue: 16_384,
            checkpoint_interval: Duration::from_millis(1000),
        }
    }
}

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    /// A file operation around the database failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The writer has stopped (shutdown, or a fatal storage error); nothing more is accepted.
    #[error("journal writer is not running{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    /// The disk is full: the record was not stored. Back off and retry; an alarm is raised.
    #[error("disk full: record not stored")]
    DiskFull,
    /// Another process has this journal open for writing.
    #[error("journal {0} is in use by another bobbin process{1}; only one writer may append to a journal")]
    Locked(PathBuf, String),
    /// The database content is not a Bobbin journal we can use.
    #[error("journal is damaged: {0}")]
    Damaged(String),
}

impl JournalError {
    /// Maps an OS error on `path` while doing `what`.
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| JournalError::Io { what, path, source }
    }

    /// The error for a journal file that does not exist (readers never create one).
    pub(crate) fn missing(path: &Path) -> Self {
        Self::io("opening journal", path)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ))
    }
}

/// Puts a fully written `tmp` file at `dest` so that a crash leaves either the old state or
/// the whole new file: fsync the file, rename it, fsync the directory.
pub(crate) fn install_file(tmp: &Path, dest: &Path) -> Result<(), JournalError> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(JournalError::io("syncing", tmp))?;
    std::fs::rename(tmp, dest).map_err(JournalError::io("renaming into place", dest))?;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(JournalError::io("syncing directory", dir))
}

/// What happened while opening the journal, for the log and the status API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenReport {
    /// The id of the journal new records go to.
    pub journal_id: JournalId,
    /// True when the file was created now.
    pub created: bool,
    /// The schema version found before migrating (0 for a new file).
    pub migrated_from: i64,
    /// Where a corrupt file was moved, and why.
    pub quarantined: Option<Quarantine>,
    /// The next sequence number to be written.
    pub next_seq: u64,
}

/// A damaged database moved aside at open.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Quarantine {
    /// Where the damaged file now is.
    pub moved_to: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// The chain position the writer continues from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainHead {
    /// Row id of the current journal in `journals`.
    pub journal: i64,
    pub journal_id: JournalId,
    pub next_seq: u64,
    pub last_hash: RecordHash,
}

/// An open journal: the writer thread, the checkpointer, and the path for readers.
pub struct Journal {
    // Declared first so it is released last, after the writer has stopped.
    _lock: WriterLock,
    handle: JournalHandle,
    writer: writer::WriterThread,
    path: PathBuf,
    report: OpenReport,
}

impl Journal {
    /// Opens the journal at `cfg.path`, creating, migrating and checking it, and starts the
    /// writer. A file that fails its integrity check is moved aside and a new journal starts.
    pub fn open(cfg: &JournalConfig) -> Result<Journal, JournalError> {
        let lock = WriterLock::acquire(&cfg.path)?;
        let (mut conn, mut head, mut report) = open_or_recover(&cfg.path)?;
        if let Some(q) = &report.quarantined {
            // Leave a trace in the new journal itself, so the platform hears of it too.
            let body = serde_json::json!({
                "moved_to": q.moved_to.display().to_string(),
                "reason": q.reason,
            });
            let content = RecordContent {
                kind: "journal.quarantined".into(),
                time_ms: now_ms(),
                body: body.to_string(),
                ..Default::default()
            };
            let tx = conn.transaction()?;
            writer::append_in_tx(&tx, &mut head, &content)?;
            tx.commit()?;
            report.next_seq = head.next_seq;
        }
        let (handle, writer) = writer::start(conn, head, cfg)?;
        Ok(Journal {
            _lock: lock,
            handle,
            writer,
            path: cfg.path.clone(),
            report,
        })
    }

    /// A handle producers use to append; cheap to clone.
    pub fn handle(&self) -> JournalHandle {
        self.handle.clone()
    }

    /// What happened at open.
    pub fn report(&self) -> &OpenReport {
        &self.report
    }

    /// A new read connection on the same file.
    pub fn reader(&self) -> Result<JournalReader, JournalError> {
        JournalReader::open(&self.path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while the writer thread runs (for liveness checks and the systemd watchdog).
    pub fn writer_alive(&self) -> bool {
        self.writer.alive()
    }

    /// A cheap, shareable check of [`Journal::writer_alive`] for other tasks.
    pub fn liveness(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        self.writer.liveness()
    }

    /// Commits everything queued, checkpoints, and stops the writer.
    pub fn close(self) -> Result<(), JournalError> {
        self.writer.shutdown(&self.handle)
    }
}

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Opens a connection with the journal's pragmas (WAL, synchronous=FULL). Records are
/// appended only through the writer; this is for the working tables and tools.
pub fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(schema::CONNECTION_PRAGMAS)?;
    Ok(conn)
}

fn is_damage(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase))
}

/// Opens, migrates and checks; on damage, quarantines and starts afresh.
fn open_or_recover(path: &Path) -> Result<(Connection, ChainHead, OpenReport), JournalError> {
    let existed = path.exists();
    match open_checked(path) {
        Ok((conn, head, migrated_from)) => Ok((
            conn,
            head,
            OpenReport {
                journal_id: head.journal_id,
                created: !existed,
                migrated_from,
                quarantined: None,
                next_seq: head.next_seq,
            },
        )),
        Err(JournalError::Damaged(reason)) => {
            let moved_to = quarantine(path)?;
            tracing::error!(
                path = %path.display(),
                moved_to = %moved_to.display(),
                %reason,
                "journal failed its integrity check; moved it aside and started a new journal"
            );
            let (conn, head, _) = open_checked(path)?;
            Ok((
                conn,
                head,
                OpenReport {
                    journal_id: head.journal_id,
                    created: true,
                    migrated_from: 0,
                    quarantined: Some(Quarantine { moved_to, reason }),
                    next_seq: head.next_seq,
                },
            ))
        }
        Err(e) => Err(e),
    }
}

/// Opens the file and checks it. Corruption comes back as [`JournalError::Damaged`]; anything
/// else (permissions, a newer schema) as itself, because moving such a file aside would hide
/// good data.
fn open_checked(path: &Path) -> Result<(Connection, ChainHead, i64), JournalError> {
    let damaged = |e: rusqlite::Error| {
        if is_damage(&e) {
            JournalError::Damaged(e.to_string())
        } else {
            JournalError::Sqlite(e)
        }
    };
    let mut conn = connect(path).map_err(damaged)?;
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(damaged)?;
    if check != "ok" {
        return Err(JournalError::Damaged(format!("quick_check: {check}")));
    }
    let from = match schema::migrate(&mut conn) {
        Ok(v) => v,
        Err(schema::SchemaError::Sqlite(e)) => return Err(damaged(e)),
        Err(e) => return Err(e.into()),
    };
    let head = load_head(&conn).map_err(|e| match e {
        JournalError::Sqlite(e) => damaged(e),
        other => other,
    })?;
    Ok((conn, head, from))
}

/// A `journals` row: row id, journal id bytes, pruned_through, pruned_hash.
type JournalRow = (i64, Vec<u8>, i64, Option<Vec<u8>>);

/// Finds the current journal and where its chain ends, creating the first journal if none.
fn load_head(conn: &Connection) -> Result<ChainHead, JournalError> {
    let current: Option<JournalRow> = conn
        .query_row(
            "SELECT id, journal_id, pruned_through, pruned_hash FROM journals ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((journal, id_bytes, pruned_through, pruned_hash)) = current else {
        return start_journal(conn, "created");
    };
    let journal_id = JournalId(
        id_bytes
            .try_into()
            .map_err(|_| JournalError::Damaged("journals.journal_id is not 16 bytes".into()))?,
    );
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM records WHERE journal = ?1 ORDER BY seq DESC LIMIT 1",
            [journal],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (last_seq, last_hash) = match last {
        Some((seq, hash)) => (seq, to_hash(hash, "records.hash")?),
        None => match pruned_hash {
            Some(h) => (pruned_through, to_hash(h, "journals.pruned_hash")?),
            None => (0, GENESIS_HASH),
        },
    };
    Ok(ChainHead {
        journal,
        journal_id,
        next_seq: last_seq as u64 + 1,
        last_hash,
    })
}

/// Starts a new journal (new random id, sequence from 1) in this database.
pub(crate) fn start_journal(conn: &Connection, origin: &str) -> Result<ChainHead, JournalError> {
    let journal_id = JournalId::random();
    conn.execute(
        "INSERT INTO journals (journal_id, created_ms, origin) VALUES (?1, ?2, ?3)",
        rusqlite::params![&journal_id.0[..], now_ms(), origin],
    )?;
    Ok(ChainHead {
        journal: conn.last_insert_rowid(),
        journal_id,
        next_seq: 1,
        last_hash: GENESIS_HASH,
    })
}

pub(crate) fn to_hash(bytes: Vec<u8>, what: &str) -> Result<RecordHash, JournalError> {
    bytes
        .try_into()
        .map(RecordHash)
        .map_err(|_| JournalError::Damaged(format!("{what} is not 32 bytes")))
}

/// Moves a damaged database and its WAL/SHM files aside with a UTC timestamp suffix.
fn quarantine(path: &Path) -> Result<PathBuf, JournalError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let moved_to = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        let to = PathBuf::from(format!("{}{suffix}", moved_to.display()));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(JournalError::Io {
                    what: "moving aside",
                    path: from,
                    source,
                })
            }
        }
    }
    Ok(moved_to)
}

/// An exclusive `flock` on `<journal>.lock`, held while a process may append.
///
/// Two writers on one journal would both continue the chain from the same head and fork
/// it; SQLite's own locking serialises transactions but cannot prevent that.
pub(crate) struct WriterLock {
    _file: std::fs::File,
}

impl WriterLock {
    pub(crate) fn acquire(db: &Path) -> Result<WriterLock, JournalError> {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(format!("{}.lock", db.display()));
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
                what: "creating directory",
                path: dir.to_owned(),
                source,
            })?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| JournalError::Io {
                what: "opening lock file",
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(JournalError::Locked(db.to_owned(), who));
        }
        // Best effort: the pid helps a technician find the other process.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        Ok(WriterLock { _file: file })
    }
}
