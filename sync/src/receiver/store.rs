//! The reference receiver's SQLite store: records by (journal, seq), the first claim of
//! every (trace code, process), conflicts, rejects and the missing ranges of every journal.
//!
//! Every batch is applied in one transaction and committed (WAL, `synchronous=FULL`) before
//! the answer goes out, so an answer the agent receives describes durable state, and a
//! batch whose answer was lost is answered `duplicate` on retry.

use crate::record::{JournalId, RecordContent, RecordHash, GENESIS_HASH};
use crate::wire::{reason, Batch, BatchResponse, Problem, RecordStatus};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("receiver store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The journal belongs to another agent.
    #[error("journal {journal} belongs to agent {owner:?}")]
    NotOwner {
        /// The journal.
        journal: JournalId,
        /// Its owner.
        owner: String,
    },
}

/// Largest field the receiver stores (a record field, not a picture: media go elsewhere).
pub const MAX_FIELD_BYTES: usize = 256;
/// Largest record body the receiver stores.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A stored record, as the trace query returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecord {
    /// The agent that sent it.
    pub agent: String,
    /// Its journal.
    pub journal_id: JournalId,
    /// Its sequence number.
    pub seq: u64,
    /// Its content.
    #[serde(flatten)]
    pub content: RecordContent,
    /// Its hash.
    pub hash: RecordHash,
    /// For a claim (a `work` record with trace code and process): `first` if it stands,
    /// `conflict` if someone claimed the coupon before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<&'static str>,
    /// When the receiver stored it (ms since the epoch).
    pub received_ms: i64,
}

/// A conflict the receiver recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictRow {
    /// The sending agent.
    pub agent: String,
    /// The record's journal.
    pub journal_id: JournalId,
    /// The record's sequence number.
    pub seq: u64,
    /// A code from [`reason`].
    pub reason: String,
    /// Detail.
    pub message: String,
    /// When (ms since the epoch).
    pub received_ms: i64,
}

/// A journal's state at the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalSummary {
    /// The journal.
    pub journal_id: JournalId,
    /// Highest sequence number held.
    pub highest_seq: u64,
    /// Every record `1..=contiguous_seq` is held.
    pub contiguous_seq: u64,
    /// Records held.
    pub records: u64,
    /// Missing ranges `[first, last]` below `highest_seq` (at most 100 listed).
    pub gaps: Vec<[u64; 2]>,
    /// How many missing ranges there are in all.
    pub gap_count: u64,
    /// Conflicts and rejects recorded for this journal.
    pub conflicts: u64,
    /// Rejected records of this journal.
    pub rejects: u64,
    /// When a batch of it last arrived (ms since the epoch).
    pub last_seen_ms: i64,
}

/// An agent's state at the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSummary {
    /// The agent id.
    pub agent: String,
    /// When it last sent a batch (ms since the epoch).
    pub last_seen_ms: i64,
    /// Its journals.
    pub journals: Vec<JournalSummary>,
}

/// The receiver's database.
pub struct Store {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journals(
    jid INTEGER PRIMARY KEY,
    journal BLOB NOT NULL UNIQUE,
    agent TEXT NOT NULL,
    highest_seq INTEGER NOT NULL,
    contiguous_seq INTEGER NOT NULL,
    records INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records(
    id INTEGER PRIMARY KEY,
    jid INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    station TEXT, worker TEXT, trace_code TEXT, order_no TEXT, process TEXT,
    body TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    claim_conflict INTEGER NOT NULL DEFAULT 0,
    received_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_by_id ON records(jid, seq);
-- Serves trace queries and the claim check: one index with random inserts instead of two.
-- The first claim of a (trace code, process) is the `work` record with claim_conflict = 0.
CREATE INDEX IF NOT EXISTS records_by_trace ON records(trace_code, process) WHERE trace_code IS NOT NULL;
CREATE TABLE IF NOT EXISTS conflicts(
    id INTEGER PRIMARY KEY,
    agent TEXT NOT NULL,
    journal BLOB NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    hash BLOB NOT NULL,
    record TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE(journal, seq, reason, hash)
);
CREATE TABLE IF NOT EXISTS rejects(
    id INTEGER PRIMARY KEY,
    agent TEXT NOT NULL,
    journal BLOB NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    record TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE(journal, seq, reason)
);
CREATE TABLE IF NOT EXISTS gaps(
    journal BLOB NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    PRIMARY KEY(journal, start)
) WITHOUT ROWID;
";

fn seq_sql(v: u64) -> i64 {
    // Sequence numbers come from u64 but real journals stay far below i64::MAX.
    v.min(i64::MAX as u64) as i64
}

fn hash_from(blob: Vec<u8>) -> RecordHash {
    RecordHash(blob.try_into().unwrap_or([0u8; 32]))
}

fn journal_from(blob: Vec<u8>) -> JournalId {
    JournalId(blob.try_into().unwrap_or([0u8; 16]))
}

/// Missing ranges after storing `stored` (sorted): the old gaps that overlap the batch
/// plus the new range above the old maximum, minus what was stored.
pub(crate) fn remaining_gaps(
    overlapping: &[(u64, u64)],
    old_max: u64,
    new_max: u64,
    stored: &[u64],
) -> Vec<(u64, u64)> {
    let mut candidates: Vec<(u64, u64)> = overlapping.to_vec();
    if new_max > old_max {
        candidates.push((old_max + 1, new_max));
    }
    let mut out = Vec::new();
    for (s, e) in candidates {
        let mut start = s;
        let from = stored.partition_point(|&x| x < s);
        for &x in stored[from..].iter().take_while(|&&x| x <= e) {
            if x > start {
                out.push((start, x - 1));
            }
            start = x + 1;
        }
        if start <= e {
            out.push((start, e));
        }
    }
    out.sort_unstable();
    out
}

struct Held {
    hash: RecordHash,
    claim_conflict: bool,
    trace_code: Option<String>,
    process: Option<String>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: an answer is only sent for a durable commit (see DESIGN.md invariant 1).
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The trace index takes inserts at random places; a 64 MiB page cache
        // keeps their inner pages in memory as the store grows into millions of records.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    fn db(&self) -> Db<'_> {
        Db { conn: &self.conn }
    }

    /// The agent owning `journal`, if the receiver knows it.
    pub fn journal_owner(&self, journal: &JournalId) -> Result<Option<String>, StoreError> {
        self.db().journal_owner(journal)
    }

    /// Records that a one-record batch's content does not match its claimed hash, and
    /// answers `rejected` for it. (A longer batch that does not verify is answered 422 so
    /// the agent bisects down to the altered record.) One transaction.
    pub fn reject_altered(
        &mut self,
        agent: &str,
        batch: &Batch,
        message: &str,
        now_ms: i64,
    ) -> Result<BatchResponse, StoreError> {
        let tx = self.conn.transaction()?;
        let r = Db { conn: &tx }.reject_altered(agent, batch, message, now_ms)?;
        tx.commit()?;
        Ok(r)
    }

    /// Applies a verified batch (`hashes` are the recomputed hashes of its records) and
    /// answers for every record. One transaction, committed before this returns.
    pub fn ingest(
        &mut self,
        agent: &str,
        batch: &Batch,
        hashes: &[RecordHash],
        now_ms: i64,
    ) -> Result<BatchResponse, StoreError> {
        let tx = self.conn.transaction()?;
        let r = Db { conn: &tx }.ingest(agent, batch, hashes, now_ms)?;
        tx.commit()?;
        Ok(r)
    }

    /// Every record of a trace code across all agents: by time, then journal and sequence.
    pub fn trace(&self, code: &str) -> Result<Vec<StoredRecord>, StoreError> {
        self.db().trace(code)
    }

    /// Conflicts, newest first (at most `limit`).
    pub fn conflicts(&self, limit: usize) -> Result<Vec<ConflictRow>, StoreError> {
        self.db().conflicts(limit)
    }

    /// Rejected records, newest first (at most `limit`).
    pub fn rejects(&self, limit: usize) -> Result<Vec<ConflictRow>, StoreError> {
        self.db().rejects(limit)
    }

    /// Every agent with its journals: last seen, highest sequence, gaps.
    pub fn agents(&self) -> Result<Vec<AgentSummary>, StoreError> {
        self.db().agents()
    }

    /// How many records the store holds for `journal`.
    pub fn record_count(&self, journal: &JournalId) -> Result<u64, StoreError> {
        self.db().record_count(journal)
    }
}

/// The store's operations on a connection or an open transaction.
struct Db<'c> {
    conn: &'c Connection,
}

impl Db<'_> {
    /// The agent owning `journal`, if the receiver knows it.
    fn journal_owner(&self, journal: &JournalId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT agent FROM journals WHERE journal = ?1",
                [&journal.0[..]],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The journal's row id and highest seq, registering it for `agent` if new.
    fn ensure_journal(
        &self,
        agent: &str,
        journal: &JournalId,
        now_ms: i64,
    ) -> Result<(i64, u64), StoreError> {
        let row: Option<(String, i64, i64)> = self
            .conn
            .prepare_cached("SELECT agent, jid, highest_seq FROM journals WHERE journal = ?1")?
            .query_row([&journal.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        match row {
            Some((owner, _, _)) if owner != agent => Err(StoreError::NotOwner {
                journal: *journal,
                owner,
            }),
            Some((_, jid, h)) => Ok((jid, h as u64)),
            None => {
                self.conn.execute(
                    "INSERT INTO journals(journal, agent, highest_seq, contiguous_seq, records, first_seen_ms, last_seen_ms)
                     VALUES (?1, ?2, 0, 0, 0, ?3, ?3)",
                    params![&journal.0[..], agent, now_ms],
                )?;
                Ok((self.conn.last_insert_rowid(), 0))
            }
        }
    }

    /// The claim standing for (trace, process), other than record (`jid`, `seq`) itself.
    fn standing_claim(
        &self,
        trace: &str,
        process: &str,
        jid: i64,
        seq: u64,
    ) -> Result<Option<(String, JournalId, u64)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT j.agent, j.journal, r.seq FROM records r JOIN journals j ON j.jid = r.jid
                 WHERE r.trace_code = ?1 AND r.process = ?2 AND r.kind = 'work' AND r.claim_conflict = 0
                   AND NOT (r.jid = ?3 AND r.seq = ?4)
                 LIMIT 1",
            )?
            .query_row(params![trace, process, jid, seq_sql(seq)], |r| {
                Ok((r.get(0)?, journal_from(r.get(1)?), r.get::<_, i64>(2)? as u64))
            })
            .optional()?)
    }

    fn claim_message(
        trace: &str,
        process: &str,
        first: Option<(String, JournalId, u64)>,
    ) -> String {
        match first {
            Some((agent, j, seq)) => format!(
                "coupon {trace} process {process} was claimed first by agent {agent} (journal {j} seq {seq})"
            ),
            None => format!("coupon {trace} process {process} was claimed before"),
        }
    }

    // Plain columns of one row; a struct for them would only move the list elsewhere.
    #[allow(clippy::too_many_arguments)]
    fn note_conflict(
        &self,
        agent: &str,
        journal: &JournalId,
        seq: u64,
        hash: &RecordHash,
        content: &RecordContent,
        reason: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO conflicts(agent, journal, seq, reason, message, hash, record, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                agent,
                &journal.0[..],
                seq_sql(seq),
                reason,
                message,
                &hash.0[..],
                serde_json::to_string(content).unwrap_or_default(),
                now_ms
            ])?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn note_reject(
        &self,
        agent: &str,
        journal: &JournalId,
        seq: u64,
        content: &RecordContent,
        reason: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO rejects(agent, journal, seq, reason, message, record, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                agent,
                &journal.0[..],
                seq_sql(seq),
                reason,
                message,
                serde_json::to_string(content).unwrap_or_default(),
                now_ms
            ])?;
        Ok(())
    }

    /// Records that a one-record batch's content does not match its claimed hash, and
    /// answers `rejected` for it. (A longer batch that does not verify is answered 422 so
    /// the agent bisects down to the altered record.)
    fn reject_altered(
        &self,
        agent: &str,
        batch: &Batch,
        message: &str,
        now_ms: i64,
    ) -> Result<BatchResponse, StoreError> {
        let (_, highest) = self.ensure_journal(agent, &batch.journal_id, now_ms)?;
        let mut problems = Vec::new();
        for (i, c) in batch.records.iter().enumerate() {
            let seq = batch.first_seq + i as u64;
            self.note_reject(
                agent,
                &batch.journal_id,
                seq,
                c,
                reason::HASH_MISMATCH,
                message,
                now_ms,
            )?;
            problems.push(Problem {
                seq,
                status: RecordStatus::Rejected,
                reason: reason::HASH_MISMATCH.into(),
                message: message.into(),
            });
        }
        // The rejected range is now a known hole in the chain.
        let new_max = highest.max(batch.last_seq);
        self.update_gaps(
            &batch.journal_id,
            batch.first_seq,
            batch.last_seq,
            highest,
            new_max,
            &[],
        )?;
        let contiguous = self.finish_journal(&batch.journal_id, new_max, 0, now_ms)?;
        Ok(BatchResponse {
            journal: batch.journal_id,
            first: batch.first_seq,
            last: batch.last_seq,
            statuses: "r".repeat(batch.records.len()),
            problems,
            highest_seq: new_max,
            contiguous_seq: contiguous,
        })
    }

    fn update_gaps(
        &self,
        journal: &JournalId,
        first: u64,
        last: u64,
        old_max: u64,
        new_max: u64,
        stored: &[u64],
    ) -> Result<(), StoreError> {
        let j = &journal.0[..];
        let overlapping: Vec<(u64, u64)> = self
            .conn
            .prepare_cached(
                "SELECT start, end FROM gaps WHERE journal = ?1 AND start <= ?3 AND end >= ?2",
            )?
            .query_map(params![j, seq_sql(first), seq_sql(last)], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<_, _>>()?;
        if overlapping.is_empty() && new_max <= old_max {
            return Ok(());
        }
        let remaining = remaining_gaps(&overlapping, old_max, new_max, stored);
        for (s, _) in &overlapping {
            self.conn
                .prepare_cached("DELETE FROM gaps WHERE journal = ?1 AND start = ?2")?
                .execute(params![j, seq_sql(*s)])?;
        }
        for (s, e) in remaining {
            self.conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO gaps(journal, start, end) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![j, seq_sql(s), seq_sql(e)])?;
        }
        Ok(())
    }

    /// Updates the journal row; returns its contiguous prefix.
    fn finish_journal(
        &self,
        journal: &JournalId,
        new_max: u64,
        added: u64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let j = &journal.0[..];
        let first_gap: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(start) FROM gaps WHERE journal = ?1")?
            .query_row([j], |r| r.get(0))?;
        let contiguous = first_gap.map_or(new_max, |s| (s as u64).saturating_sub(1));
        self.conn
            .prepare_cached(
                "UPDATE journals SET highest_seq = ?2, contiguous_seq = ?3, records = records + ?4, last_seen_ms = ?5
                 WHERE journal = ?1",
            )?
            .execute(params![j, seq_sql(new_max), seq_sql(contiguous), seq_sql(added), now_ms])?;
        Ok(contiguous)
    }

    fn ingest(
        &self,
        agent: &str,
        batch: &Batch,
        hashes: &[RecordHash],
        now_ms: i64,
    ) -> Result<BatchResponse, StoreError> {
        let journal = batch.journal_id;
        let (a, b) = (batch.first_seq, batch.last_seq);
        let (jid, old_max) = self.ensure_journal(agent, &journal, now_ms)?;
        let n = batch.records.len();
        let mut held: Vec<Option<Held>> = (0..n).map(|_| None).collect();
        if a <= old_max {
            let mut st = self.conn.prepare_cached(
                "SELECT seq, hash, claim_conflict, trace_code, process FROM records
                 WHERE jid = ?1 AND seq BETWEEN ?2 AND ?3",
            )?;
            let rows = st.query_map(params![jid, seq_sql(a), seq_sql(b)], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    Held {
                        hash: hash_from(r.get(1)?),
                        claim_conflict: r.get::<_, i64>(2)? != 0,
                        trace_code: r.get(3)?,
                        process: r.get(4)?,
                    },
                ))
            })?;
            for row in rows {
                let (seq, h) = row?;
                if let Some(slot) = held.get_mut((seq - a) as usize) {
                    *slot = Some(h);
                }
            }
        }
        // The hash held for the record before the current one: the link to check.
        let mut held_prev: Option<RecordHash> = if a == 1 {
            Some(GENESIS_HASH)
        } else {
            self.conn
                .prepare_cached("SELECT hash FROM records WHERE jid = ?1 AND seq = ?2")?
                .query_row(params![jid, seq_sql(a - 1)], |r| r.get::<_, Vec<u8>>(0))
                .optional()?
                .map(hash_from)
        };
        let mut statuses = String::with_capacity(n);
        let mut problems = Vec::new();
        let mut stored = Vec::with_capacity(n);
        let mut problem =
            |statuses: &mut String, seq, status: RecordStatus, reason: &str, message: String| {
                statuses.push(status.code());
                problems.push(Problem {
                    seq,
                    status,
                    reason: reason.into(),
                    message,
                });
            };
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO records(jid, seq, kind, time_ms, station, worker, trace_code, order_no, process, body,
                                 prev_hash, hash, claim_conflict, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for (i, c) in batch.records.iter().enumerate() {
            let seq = a + i as u64;
            let h = hashes[i];
            let prev = if i == 0 {
                batch.prev_hash
            } else {
                hashes[i - 1]
            };
            if let Some(old) = &held[i] {
                if old.hash == h {
                    if old.claim_conflict {
                        // Answer a retry exactly like the first time.
                        let (t, p) = (
                            old.trace_code.as_deref().unwrap_or(""),
                            old.process.as_deref().unwrap_or(""),
                        );
                        let msg = Self::claim_message(t, p, self.standing_claim(t, p, jid, seq)?);
                        problem(
                            &mut statuses,
                            seq,
                            RecordStatus::Conflict,
                            reason::CLAIM_CONFLICT,
                            msg,
                        );
                    } else {
                        statuses.push(RecordStatus::Duplicate.code());
                    }
                } else {
                    let msg = format!(
                        "the receiver holds {journal}:{seq} with hash {}, this one hashes to {h}",
                        old.hash
                    );
                    self.note_conflict(
                        agent,
                        &journal,
                        seq,
                        &h,
                        c,
                        reason::ID_CONFLICT,
                        &msg,
                        now_ms,
                    )?;
                    problem(
                        &mut statuses,
                        seq,
                        RecordStatus::Conflict,
                        reason::ID_CONFLICT,
                        msg,
                    );
                }
                held_prev = Some(old.hash);
                continue;
            }
            if let Some(hp) = held_prev {
                if hp != prev {
                    let msg = format!(
                        "previous hash {prev} differs from the held record {}'s hash {hp}: the chain forks",
                        seq - 1
                    );
                    self.note_conflict(agent, &journal, seq, &h, c, reason::FORK, &msg, now_ms)?;
                    problem(
                        &mut statuses,
                        seq,
                        RecordStatus::Conflict,
                        reason::FORK,
                        msg,
                    );
                    held_prev = None;
                    continue;
                }
            }
            if let Err(msg) = validate_content(c) {
                self.note_reject(agent, &journal, seq, c, reason::INVALID, &msg, now_ms)?;
                problem(
                    &mut statuses,
                    seq,
                    RecordStatus::Rejected,
                    reason::INVALID,
                    msg,
                );
                held_prev = None;
                continue;
            }
            // A claim: is the coupon's process already claimed? (One writer, so checking
            // before inserting is race-free; records earlier in this batch count too.)
            let first_claim = match (c.kind.as_str(), &c.trace_code, &c.process) {
                ("work", Some(t), Some(p)) => Some((t, p, self.standing_claim(t, p, jid, seq)?)),
                _ => None,
            };
            let conflicting = matches!(first_claim, Some((_, _, Some(_))));
            insert.execute(params![
                jid,
                seq_sql(seq),
                c.kind,
                c.time_ms,
                c.station,
                c.worker,
                c.trace_code,
                c.order,
                c.process,
                c.body,
                &prev.0[..],
                &h.0[..],
                conflicting as i64,
                now_ms
            ])?;
            stored.push(seq);
            held_prev = Some(h);
            match first_claim {
                Some((t, p, Some(first))) => {
                    // The first claim stands; this one is kept, flagged, and reported.
                    let msg = Self::claim_message(t, p, Some(first));
                    self.note_conflict(
                        agent,
                        &journal,
                        seq,
                        &h,
                        c,
                        reason::CLAIM_CONFLICT,
                        &msg,
                        now_ms,
                    )?;
                    problem(
                        &mut statuses,
                        seq,
                        RecordStatus::Conflict,
                        reason::CLAIM_CONFLICT,
                        msg,
                    );
                }
                _ => statuses.push(RecordStatus::Accepted.code()),
            }
        }
        // The link forward: a later batch that arrived first must continue this one.
        if let (Some(&last_stored), Some(h)) = (stored.last(), hashes.last()) {
            if last_stored == b {
                let next: Option<Vec<u8>> = self
                    .conn
                    .prepare_cached("SELECT prev_hash FROM records WHERE jid = ?1 AND seq = ?2")?
                    .query_row(params![jid, seq_sql(b + 1)], |r| r.get(0))
                    .optional()?;
                if let Some(next_prev) = next.map(hash_from) {
                    if next_prev != *h {
                        let msg = format!(
                            "held record {} names previous hash {next_prev}, but record {b} hashes to {h}: the chain forks",
                            b + 1
                        );
                        self.note_conflict(
                            agent,
                            &journal,
                            b + 1,
                            &next_prev,
                            &batch.records[n - 1],
                            reason::FORK,
                            &msg,
                            now_ms,
                        )?;
                    }
                }
            }
        }
        let new_max = old_max.max(stored.last().copied().unwrap_or(0));
        self.update_gaps(&journal, a, b, old_max, new_max, &stored)?;
        let contiguous = self.finish_journal(&journal, new_max, stored.len() as u64, now_ms)?;
        Ok(BatchResponse {
            journal,
            first: a,
            last: b,
            statuses,
            problems,
            highest_seq: new_max,
            contiguous_seq: contiguous,
        })
    }

    /// Every record of a trace code across all agents: by time, then journal and sequence.
    fn trace(&self, code: &str) -> Result<Vec<StoredRecord>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT j.agent, j.journal, r.seq, r.kind, r.time_ms, r.station, r.worker, r.trace_code, r.order_no,
                    r.process, r.body, r.hash, r.claim_conflict, r.received_ms
             FROM records r JOIN journals j ON j.jid = r.jid
             WHERE r.trace_code = ?1
             ORDER BY r.time_ms, j.journal, r.seq",
        )?;
        let rows = st.query_map([code], |r| {
            let content = RecordContent {
                kind: r.get(3)?,
                time_ms: r.get(4)?,
                station: r.get(5)?,
                worker: r.get(6)?,
                trace_code: r.get(7)?,
                order: r.get(8)?,
                process: r.get(9)?,
                body: r.get(10)?,
            };
            let is_claim =
                content.kind == "work" && content.trace_code.is_some() && content.process.is_some();
            let conflict = r.get::<_, i64>(12)? != 0;
            Ok(StoredRecord {
                agent: r.get(0)?,
                journal_id: journal_from(r.get(1)?),
                seq: r.get::<_, i64>(2)? as u64,
                content,
                hash: hash_from(r.get(11)?),
                claim: is_claim.then_some(if conflict { "conflict" } else { "first" }),
                received_ms: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Conflicts, newest first (at most `limit`).
    fn conflicts(&self, limit: usize) -> Result<Vec<ConflictRow>, StoreError> {
        self.refused(
            "SELECT agent, journal, seq, reason, message, received_ms FROM conflicts ORDER BY id DESC LIMIT ?1",
            limit,
        )
    }

    /// Rejected records, newest first (at most `limit`).
    fn rejects(&self, limit: usize) -> Result<Vec<ConflictRow>, StoreError> {
        self.refused(
            "SELECT agent, journal, seq, reason, message, received_ms FROM rejects ORDER BY id DESC LIMIT ?1",
            limit,
        )
    }

    /// The rows of `sql` (conflicts and rejects have the same columns).
    fn refused(&self, sql: &str, limit: usize) -> Result<Vec<ConflictRow>, StoreError> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([limit as i64], |r| {
            Ok(ConflictRow {
                agent: r.get(0)?,
                journal_id: journal_from(r.get(1)?),
                seq: r.get::<_, i64>(2)? as u64,
                reason: r.get(3)?,
                message: r.get(4)?,
                received_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every agent with its journals: last seen, highest sequence, gaps.
    fn agents(&self) -> Result<Vec<AgentSummary>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT agent, journal, highest_seq, contiguous_seq, records, last_seen_ms,
                    (SELECT COUNT(*) FROM conflicts c WHERE c.journal = j.journal),
                    (SELECT COUNT(*) FROM rejects x WHERE x.journal = j.journal),
                    (SELECT COUNT(*) FROM gaps g WHERE g.journal = j.journal)
             FROM journals j ORDER BY agent, first_seen_ms",
        )?;
        let rows: Vec<(String, JournalSummary)> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    JournalSummary {
                        journal_id: journal_from(r.get(1)?),
                        highest_seq: r.get::<_, i64>(2)? as u64,
                        contiguous_seq: r.get::<_, i64>(3)? as u64,
                        records: r.get::<_, i64>(4)? as u64,
                        last_seen_ms: r.get(5)?,
                        conflicts: r.get::<_, i64>(6)? as u64,
                        rejects: r.get::<_, i64>(7)? as u64,
                        gap_count: r.get::<_, i64>(8)? as u64,
                        gaps: Vec::new(),
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut gaps_st = self.conn.prepare_cached(
            "SELECT start, end FROM gaps WHERE journal = ?1 ORDER BY start LIMIT 100",
        )?;
        let mut out: Vec<AgentSummary> = Vec::new();
        for (agent, mut js) in rows {
            js.gaps = gaps_st
                .query_map([&js.journal_id.0[..]], |r| {
                    Ok([r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64])
                })?
                .collect::<Result<_, _>>()?;
            match out.last_mut() {
                Some(a) if a.agent == agent => {
                    a.last_seen_ms = a.last_seen_ms.max(js.last_seen_ms);
                    a.journals.push(js);
                }
                _ => out.push(AgentSummary {
                    agent,
                    last_seen_ms: js.last_seen_ms,
                    journals: vec![js],
                }),
            }
        }
        Ok(out)
    }

    /// How many records the store holds for `journal`.
    fn record_count(&self, journal: &JournalId) -> Result<u64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM records r JOIN journals j ON j.jid = r.jid WHERE j.journal = ?1",
            [&journal.0[..]],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

fn validate_content(c: &RecordContent) -> Result<(), String> {
    if c.kind.is_empty() || c.kind.len() > MAX_FIELD_BYTES {
        return Err(format!("kind must be 1..={MAX_FIELD_BYTES} bytes"));
    }
    for (name, v) in [
        ("station", &c.station),
        ("worker", &c.worker),
        ("trace_code", &c.trace_code),
        ("order", &c.order),
        ("process", &c.process),
    ] {
        if v.as_ref().is_some_and(|s| s.len() > MAX_FIELD_BYTES) {
            return Err(format!("{name} is longer than {MAX_FIELD_BYTES} bytes"));
        }
    }
    if c.body.len() > MAX_BODY_BYTES {
        return Err(format!("body is longer than {MAX_BODY_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_shrink_split_and_grow() {
        // Nothing held, a batch 5..=7 arrives: 1..=4 is missing.
        assert_eq!(remaining_gaps(&[], 0, 7, &[5, 6, 7]), vec![(1, 4)]);
        // The hole is filled in the middle.
        assert_eq!(
            remaining_gaps(&[(1, 4)], 7, 7, &[2, 3]),
            vec![(1, 1), (4, 4)]
        );
        // Filled completely.
        assert_eq!(remaining_gaps(&[(1, 4)], 7, 7, &[1, 2, 3, 4]), vec![]);
        // A contiguous continuation leaves nothing.
        assert_eq!(remaining_gaps(&[], 7, 10, &[8, 9, 10]), vec![]);
        // A record inside the new range was not stored.
        assert_eq!(remaining_gaps(&[], 7, 10, &[8, 10]), vec![(9, 9)]);
        // A rejected range above the max.
        assert_eq!(remaining_gaps(&[], 7, 9, &[]), vec![(8, 9)]);
    }
}
