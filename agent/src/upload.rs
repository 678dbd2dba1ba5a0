//! The agent's side of sync: the journal as an [`UploadSource`] for the uploader.
//!
//! Reads go through a reader connection of their own; the cursor and the platform's
//! per-record outcomes are written through the journal writer, in one transaction, so a
//! crash leaves both or neither (the uploader re-sends, the receiver answers duplicate).

use crate::journal::{reader::JournalInfo, JournalError, JournalHandle, JournalReader};
use bobbin_sync::{Backlog, JournalId, Record, RecordOutcome, SourceError, UploadSource};
use rusqlite::{params, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

/// One journal of the database, as the uploader sees it.
pub struct JournalSource {
    info: JournalInfo,
    reader: Mutex<JournalReader>,
    writer: JournalHandle,
}

fn src(e: impl std::fmt::Display) -> SourceError {
    SourceError::msg(e.to_string())
}

impl JournalSource {
    /// A source per journal in the file, oldest first: a restored database's older journal
    /// drains before the new one.
    pub fn all(path: &Path, writer: &JournalHandle) -> Result<Vec<JournalSource>, JournalError> {
        let reader = JournalReader::open(path)?;
        reader
            .journals()?
            .into_iter()
            .map(|info| {
                Ok(JournalSource {
                    info,
                    reader: Mutex::new(JournalReader::open(path)?),
                    writer: writer.clone(),
                })
            })
            .collect()
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&JournalReader) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        let guard = self
            .reader
            .lock()
            .map_err(|_| SourceError::msg("reader lock poisoned"))?;
        f(&guard)
    }
}

impl UploadSource for JournalSource {
    fn journal_id(&self) -> JournalId {
        self.info.journal_id
    }

    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Record>, SourceError> {
        self.with_reader(|r| r.read_after(&self.info, after, max).map_err(src))
    }

    fn cursor(&self) -> Result<u64, SourceError> {
        self.with_reader(|r| {
            let seq: Option<i64> = r
                .connection()
                .query_row(
                    "SELECT seq FROM upload_cursors WHERE journal = ?1",
                    [self.info.row],
                    |row| row.get(0),
                )
                .optional()
                .map_err(src)?;
            Ok(seq.unwrap_or(0) as u64)
        })
    }

    fn commit_results(&self, up_to: u64, outcomes: &[RecordOutcome]) -> Result<(), SourceError> {
        let journal = self.info.row;
        let outcomes = outcomes.to_vec();
        self.writer
            .blocking_exec(move |ctx| {
                let now = crate::journal::now_ms();
                for o in &outcomes {
                    ctx.tx.execute(
                        "INSERT OR REPLACE INTO upload_outcomes (journal, seq, status, reason, message, time_ms) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![journal, o.seq as i64, o.status.as_str(), o.reason, o.message, now],
                    )?;
                }
                ctx.tx.execute(
                    "INSERT INTO upload_cursors (journal, seq) VALUES (?1, ?2) \
                     ON CONFLICT(journal) DO UPDATE SET seq = max(seq, ?2)",
                    params![journal, up_to as i64],
                )?;
                Ok(())
            })
            .map_err(src)
    }

    fn backlog(&self) -> Result<Backlog, SourceError> {
        let cursor = self.cursor()?;
        self.with_reader(|r| {
            // Two index lookups, not a count: records after the cursor are never pruned, so
            // the sequence has no holes there.
            let (max, oldest): (i64, Option<i64>) = r
                .connection()
                .query_row(
                    "SELECT COALESCE((SELECT MAX(seq) FROM records WHERE journal = ?1), 0), \
                     (SELECT time_ms FROM records WHERE journal = ?1 AND seq > ?2 ORDER BY seq LIMIT 1)",
                    params![self.info.row, cursor as i64],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(src)?;
            Ok(Backlog {
                unsent: (max as u64).saturating_sub(cursor),
                oldest_unsent_ms: oldest,
            })
        })
    }
}
