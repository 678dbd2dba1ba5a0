//! Read-side queries on their own connection: trace lookups, upload reads, chain walks.
//!
//! WAL lets these run beside the writer without blocking it. A reader never creates a file:
//! pointing `bobbin verify` at a wrong path must say so, not leave an empty journal behind.

use super::{to_hash, JournalError};
use bobbin_sync::record::{JournalId, Record, RecordContent, RecordHash};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use std::path::Path;

/// One journal (epoch) held in the database file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalInfo {
    /// Row id in `journals`; higher is newer.
    #[serde(skip)]
    pub row: i64,
    /// The journal's id.
    pub journal_id: JournalId,
    /// When it was started (UTC ms).
    pub created_ms: i64,
    /// Why it was started: `created`, `restored from …`, ….
    pub origin: String,
    /// Records up to this sequence were pruned after upload.
    pub pruned_through: u64,
    /// The hash of the last pruned record, where the remaining chain starts.
    #[serde(skip)]
    pub pruned_hash: Option<RecordHash>,
}

/// A read connection on a journal file.
pub struct JournalReader {
    conn: Connection,
}

const RECORD_COLUMNS: &str =
    "seq, kind, time_ms, station, worker, trace_code, order_no, process, body, prev_hash, hash";

impl JournalReader {
    /// Opens an existing journal for reading.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if !path.exists() {
            return Err(JournalError::missing(path));
        }
        // Read-write flags without CREATE: WAL readers need to write the -shm index, and a
        // wrong path must not conjure up an empty database.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = 1;")?;
        let version = super::schema::version(&conn)?;
        if version == 0 {
            return Err(JournalError::Damaged(format!(
                "{} is not a Bobbin journal (no schema)",
                path.display()
            )));
        }
        Ok(JournalReader { conn })
    }

    /// The underlying connection, for queries this type does not wrap yet.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Every journal in the file, oldest first.
    pub fn journals(&self) -> Result<Vec<JournalInfo>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, journal_id, created_ms, origin, pruned_through, pruned_hash \
             FROM journals ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (row, id, created_ms, origin, pruned_through, pruned_hash) = row?;
            let journal_id = JournalId(id.try_into().map_err(|_| {
                JournalError::Damaged("journals.journal_id is not 16 bytes".into())
            })?);
            let pruned_hash = match pruned_hash {
                Some(h) => Some(to_hash(h, "journals.pruned_hash")?),
                None => None,
            };
            out.push(JournalInfo {
                row,
                journal_id,
                created_ms,
                origin,
                pruned_through: pruned_through as u64,
                pruned_hash,
            });
        }
        Ok(out)
    }

    /// Calls `each` for every record of journal `j` in sequence order, streaming (a backlog
    /// of millions is never loaded at once). Stops early when `each` returns false.
    pub fn for_each_record(
        &self,
        j: &JournalInfo,
        mut each: impl FnMut(Record) -> bool,
    ) -> Result<(), JournalError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE journal = ?1 ORDER BY seq"
        ))?;
        let mut rows = stmt.query([j.row])?;
        while let Some(row) = rows.next()? {
            if !each(record_from_row(j.journal_id, row)?) {
                break;
            }
        }
        Ok(())
    }

    /// Up to `max` records of journal `j` after sequence `after`, in order.
    pub fn read_after(
        &self,
        j: &JournalInfo,
        after: u64,
        max: usize,
    ) -> Result<Vec<Record>, JournalError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE journal = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ))?;
        let mut rows = stmt.query(rusqlite::params![j.row, after as i64, max as i64])?;
        let mut out = Vec::with_capacity(max.min(4096));
        while let Some(row) = rows.next()? {
            out.push(record_from_row(j.journal_id, row)?);
        }
        Ok(out)
    }

    /// The first sequence number of journal `j` whose record is at or after wall time `t`,
    /// by binary search over sequence numbers: a handful of key lookups instead of a scan
    /// of a million rows. Wall time is nearly monotonic in seq; after a clock jump the
    /// answer is approximate, which its callers (status counts, start-up replay) accept.
    pub fn first_seq_at_or_after(&self, j: &JournalInfo, t: i64) -> Result<u64, JournalError> {
        let max: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM records WHERE journal = ?1",
            [j.row],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT time_ms FROM records WHERE journal = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1",
        )?;
        let (mut lo, mut hi) = (j.pruned_through as i64 + 1, max + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let time: Option<i64> = stmt
                .query_row(rusqlite::params![j.row, mid], |r| r.get(0))
                .optional()?;
            match time {
                Some(tm) if tm < t => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo as u64)
    }

    /// Every record carrying trace key `code`, oldest first (journal by journal, then
    /// sequence).
    pub fn trace(&self, code: &str) -> Result<Vec<Record>, JournalError> {
        let journals = self.journals()?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT journal, {RECORD_COLUMNS} FROM records WHERE trace_code = ?1 ORDER BY journal, seq"
        ))?;
        let mut rows = stmt.query([code])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let jrow: i64 = row.get(0)?;
            let Some(j) = journals.iter().find(|j| j.row == jrow) else {
                return Err(JournalError::Damaged(format!(
                    "record refers to journal row {jrow}, which does not exist"
                )));
            };
            out.push(record_from_row_at(j.journal_id, row, 1)?);
        }
        Ok(out)
    }
}

fn record_from_row(journal_id: JournalId, row: &Row<'_>) -> Result<Record, JournalError> {
    record_from_row_at(journal_id, row, 0)
}

/// Builds a record from the `RECORD_COLUMNS` starting at column `at`.
fn record_from_row_at(
    journal_id: JournalId,
    row: &Row<'_>,
    at: usize,
) -> Result<Record, JournalError> {
    let seq: i64 = row.get(at)?;
    Ok(Record {
        journal_id,
        seq: seq as u64,
        content: RecordContent {
            kind: row.get(at + 1)?,
            time_ms: row.get(at + 2)?,
            station: row.get(at + 3)?,
            worker: row.get(at + 4)?,
            trace_code: row.get(at + 5)?,
            order: row.get(at + 6)?,
            process: row.get(at + 7)?,
            body: row.get(at + 8)?,
        },
        prev_hash: to_hash(row.get(at + 9)?, "records.prev_hash")?,
        hash: to_hash(row.get(at + 10)?, "records.hash")?,
    })
}
