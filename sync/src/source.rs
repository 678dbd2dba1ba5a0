//! What the uploader reads from: the [`UploadSource`] trait the agent implements on its
//! journal, and the outcome types it records.

use crate::record::{JournalId, Record};
use crate::wire::RecordStatus;
use serde::{Deserialize, Serialize};

/// A storage error of a source. Per the design (invariant 10) the uploader does not retry
/// these: it stops and returns the error, and the agent exits for systemd to restart it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub Box<dyn std::error::Error + Send + Sync + 'static>);

impl SourceError {
    /// Wraps any error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SourceError(Box::new(e))
    }

    /// An error from a message.
    pub fn msg(m: impl Into<String>) -> Self {
        SourceError(m.into().into())
    }
}

/// The outcome of one record that was not simply delivered: a conflict or a reject, decided
/// by the receiver (or by the uploader for a record the receiver refused alone, 413/422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOutcome {
    /// The record's journal.
    pub journal_id: JournalId,
    /// The record's sequence number.
    pub seq: u64,
    /// Conflict or rejected.
    pub status: RecordStatus,
    /// A code from [`crate::wire::reason`].
    pub reason: String,
    /// Human-readable detail for supervisors.
    pub message: String,
}

/// How far behind a source is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    /// Records not yet confirmed by the receiver.
    pub unsent: u64,
    /// Wall time (ms since the epoch) of the oldest unconfirmed record.
    pub oldest_unsent_ms: Option<i64>,
}

/// One journal (hash chain) the uploader drains. The agent implements this on its SQLite
/// journal; [`crate::testing::SqliteJournal`] is a small complete implementation.
///
/// All methods block; the uploader calls them through `spawn_blocking`.
pub trait UploadSource: Send + Sync + 'static {
    /// The journal's id (constant).
    fn journal_id(&self) -> JournalId;

    /// Up to `max` records with `seq > after`, in sequence order. Fewer (or none) when the
    /// journal has no more. Gaps (records pruned or lost) are allowed: the uploader sends
    /// what exists and the receiver reports the missing range.
    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Record>, SourceError>;

    /// The highest sequence number the receiver confirmed (0 when none): the durable cursor.
    fn cursor(&self) -> Result<u64, SourceError>;

    /// Durably records that the receiver answered for every record up to `up_to`: moves the
    /// cursor to `up_to` and stores `outcomes` — only the records that were a conflict or
    /// rejected; every other record `<= up_to` was accepted or a duplicate, i.e. delivered —
    /// in **one transaction**, so a crash leaves either both or neither.
    ///
    /// Called in journal order, with `up_to` increasing.
    fn commit_results(&self, up_to: u64, outcomes: &[RecordOutcome]) -> Result<(), SourceError>;

    /// Unsent count and the time of the oldest unsent record. Called about once a second
    /// while uploading, so it should be cheap (not a full scan).
    fn backlog(&self) -> Result<Backlog, SourceError>;
}
