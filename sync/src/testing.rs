//! Helpers for tests and benchmarks (here and in the agent): a small SQLite journal that
//! implements [`UploadSource`], and a generator of realistic records.
//!
//! [`SqliteJournal`] is a reference for the agent's real implementation of the trait (cursor
//! and outcomes in one transaction), not a production journal: it has no group commit and
//! runs with `synchronous=NORMAL` for speed.

use crate::record::{JournalId, Record, RecordContent, RecordHash, GENESIS_HASH};
use crate::source::{Backlog, RecordOutcome, SourceError, UploadSource};
use crate::wire::RecordStatus;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

/// A minimal append-only journal in SQLite with an upload cursor and an outcomes table.
pub struct SqliteJournal {
    conn: Mutex<Connection>,
    journal: JournalId,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL, time_ms INTEGER NOT NULL,
    station TEXT, worker TEXT, trace_code TEXT, order_no TEXT, process TEXT,
    body TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes(
    seq INTEGER PRIMARY KEY, status TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL
);
";

fn src_err(e: rusqlite::Error) -> SourceError {
    SourceError::new(e)
}

impl SqliteJournal {
    /// Opens the journal at `path`, creating it (with a fresh random journal id) if needed.
    pub fn open(path: &Path) -> Result<SqliteJournal, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let existing: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'journal_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let journal = match existing.and_then(|s| s.parse::<JournalId>().ok()) {
            Some(j) => j,
            None => {
                let j = JournalId::random();
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('journal_id', ?1), ('cursor', '0')",
                    [j.to_string()],
                )?;
                j
            }
        };
        Ok(SqliteJournal {
            conn: Mutex::new(conn),
            journal,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `contents` in one transaction, chaining hashes; returns the last seq.
    pub fn append(
        &self,
        contents: impl IntoIterator<Item = RecordContent>,
    ) -> Result<u64, rusqlite::Error> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let (mut seq, mut prev): (u64, RecordHash) = tx
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?
            .map_or((0, GENESIS_HASH), |(s, h)| {
                (s, RecordHash(h.try_into().unwrap_or([0; 32])))
            });
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO records(seq, kind, time_ms, station, worker, trace_code, order_no, process, body, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for c in contents {
                seq += 1;
                let r = Record::seal(self.journal, seq, c, prev);
                prev = r.hash;
                let c = &r.content;
                st.execute(params![
                    seq as i64,
                    c.kind,
                    c.time_ms,
                    c.station,
                    c.worker,
                    c.trace_code,
                    c.order,
                    c.process,
                    c.body,
                    &r.prev_hash.0[..],
                    &r.hash.0[..]
                ])?;
            }
        }
        tx.commit()?;
        Ok(seq)
    }

    /// The highest seq in the journal (0 when empty).
    pub fn last_seq(&self) -> Result<u64, rusqlite::Error> {
        self.lock()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM records", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
    }

    /// The conflicts and rejects committed so far, by seq.
    pub fn outcomes(&self) -> Result<Vec<RecordOutcome>, rusqlite::Error> {
        let conn = self.lock();
        let mut st =
            conn.prepare("SELECT seq, status, reason, message FROM outcomes ORDER BY seq")?;
        let rows = st.query_map([], |r| {
            let status: String = r.get(1)?;
            Ok(RecordOutcome {
                journal_id: self.journal,
                seq: r.get::<_, i64>(0)? as u64,
                status: if status == "conflict" {
                    RecordStatus::Conflict
                } else {
                    RecordStatus::Rejected
                },
                reason: r.get(2)?,
                message: r.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// Runs SQL on the journal's connection (tests use it to damage a journal on purpose).
    pub fn execute(&self, sql: &str) -> Result<usize, rusqlite::Error> {
        self.lock().execute(sql, [])
    }
}

impl UploadSource for SqliteJournal {
    fn journal_id(&self) -> JournalId {
        self.journal
    }

    fn read_after(&self, after: u64, max: usize) -> Result<Vec<Record>, SourceError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT seq, kind, time_ms, station, worker, trace_code, order_no, process, body, prev_hash, hash
                 FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(src_err)?;
        let rows = st
            .query_map(
                params![
                    after.min(i64::MAX as u64) as i64,
                    max.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(Record {
                        journal_id: self.journal,
                        seq: r.get::<_, i64>(0)? as u64,
                        content: RecordContent {
                            kind: r.get(1)?,
                            time_ms: r.get(2)?,
                            station: r.get(3)?,
                            worker: r.get(4)?,
                            trace_code: r.get(5)?,
                            order: r.get(6)?,
                            process: r.get(7)?,
                            body: r.get(8)?,
                        },
                        prev_hash: RecordHash(
                            r.get::<_, Vec<u8>>(9)?.try_into().unwrap_or([0; 32]),
                        ),
                        hash: RecordHash(r.get::<_, Vec<u8>>(10)?.try_into().unwrap_or([0; 32])),
                    })
                },
            )
            .map_err(src_err)?;
        rows.collect::<Result<_, _>>().map_err(src_err)
    }

    fn cursor(&self) -> Result<u64, SourceError> {
        let v: String = self
            .lock()
            .query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |r| {
                r.get(0)
            })
            .map_err(src_err)?;
        v.parse()
            .map_err(|_| SourceError::msg(format!("bad cursor {v:?}")))
    }

    fn commit_results(&self, up_to: u64, outcomes: &[RecordOutcome]) -> Result<(), SourceError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(src_err)?;
        for o in outcomes {
            tx.execute(
                "INSERT OR REPLACE INTO outcomes(seq, status, reason, message) VALUES (?1, ?2, ?3, ?4)",
                params![o.seq as i64, o.status.as_str(), o.reason, o.message],
            )
            .map_err(src_err)?;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'cursor'",
            [up_to.to_string()],
        )
        .map_err(src_err)?;
        tx.commit().map_err(src_err)
    }

    fn backlog(&self) -> Result<Backlog, SourceError> {
        let cursor = self.cursor()?;
        let conn = self.lock();
        // O(log n): a journal's sequence has no holes in normal operation, so the count is
        // the distance from the cursor to the end.
        let (max, oldest): (i64, Option<i64>) = conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0), (SELECT time_ms FROM records WHERE seq > ?1 ORDER BY seq LIMIT 1) FROM records",
                [cursor as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(src_err)?;
        Ok(Backlog {
            unsent: (max as u64).saturating_sub(cursor),
            oldest_unsent_ms: oldest,
        })
    }
}

const PROCESSES: [&str; 6] = [
    "cut-check",
    "collar",
    "sleeve-set",
    "side-seam",
    "hem",
    "press",
];
const ALNUM: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The ISO/IEC 7064 MOD 37,36 check character of an upper-case alphanumeric string.
pub fn mod37_36_check(s: &str) -> char {
    let (m, r) = (36u32, 37u32);
    let mut p = m;
    for b in s.bytes() {
        let v = ALNUM.iter().position(|&c| c == b).unwrap_or(0) as u32;
        let mut x = (p + v) % m;
        if x == 0 {
            x = m;
        }
        p = (x * 2) % r;
    }
    let c = (m + 1 - p % m) % m;
    ALNUM[c as usize] as char
}

/// A 29-character trace code: attribute `AB` + node `12345678` + date `251123` + region
/// `441900` + 6 "random" characters + check character. `n` picks the random part through a
/// bijection, so distinct `n` give distinct codes.
pub fn trace_code(n: u64) -> String {
    let space = 36u64.pow(6);
    let mut v = (n.wrapping_mul(1_103_515_245).wrapping_add(12_345)) % space;
    let mut rnd = [b'0'; 6];
    for slot in rnd.iter_mut().rev() {
        *slot = ALNUM[(v % 36) as usize];
        v /= 36;
    }
    let mut code = String::with_capacity(29);
    code.push_str("AB12345678251123441900");
    code.push_str(std::str::from_utf8(&rnd).unwrap_or("000000"));
    let check = mod37_36_check(&code);
    code.push(check);
    code
}

struct Bundle {
    code: String,
    order: String,
    next_process: usize,
    pieces: u32,
}

/// Deterministic, realistic shop-floor records: bundles moving through six processes at
/// 40 stations (`work` claims, each (code, process) once), interleaved with `scan` records.
pub struct RecordGen {
    rng: StdRng,
    time_ms: i64,
    bundles: Vec<Bundle>,
    next_bundle: u64,
    salt: u64,
}

impl RecordGen {
    /// A generator; the same `seed` gives the same records. Different seeds give different
    /// trace codes (claims from two generators never collide).
    pub fn new(seed: u64) -> Self {
        let mut g = RecordGen {
            rng: StdRng::seed_from_u64(seed),
            time_ms: 1_763_880_000_000,
            bundles: Vec::new(),
            next_bundle: 0,
            salt: seed.wrapping_mul(1_000_000_007),
        };
        for _ in 0..24 {
            let b = g.new_bundle();
            g.bundles.push(b);
        }
        g
    }

    fn new_bundle(&mut self) -> Bundle {
        self.next_bundle += 1;
        let n = self.next_bundle.wrapping_add(self.salt);
        Bundle {
            code: trace_code(n),
            order: format!("PO25-{:05}", 1000 + (self.next_bundle / 50) % 90_000),
            next_process: 0,
            pieces: [10, 12, 20, 24, 30][self.rng.random_range(0..5)],
        }
    }

    /// The next record.
    pub fn next_content(&mut self) -> RecordContent {
        self.time_ms += self.rng.random_range(0..2000);
        let station = format!("sew-{:02}", self.rng.random_range(1..=40));
        let worker = format!("W{:04}", self.rng.random_range(1..=300));
        let i = self.rng.random_range(0..self.bundles.len());
        if self.rng.random_bool(0.25) {
            let b = &self.bundles[i];
            return RecordContent {
                kind: "scan".into(),
                time_ms: self.time_ms,
                station: Some(station),
                worker: None,
                trace_code: Some(b.code.clone()),
                order: Some(b.order.clone()),
                process: None,
                body: r#"{"reader":"hid-1","sym":"QR"}"#.into(),
            };
        }
        let b = &mut self.bundles[i];
        let process = PROCESSES[b.next_process];
        b.next_process += 1;
        let content = RecordContent {
            kind: "work".into(),
            time_ms: self.time_ms,
            station: Some(station),
            worker: Some(worker),
            trace_code: Some(b.code.clone()),
            order: Some(b.order.clone()),
            process: Some(process.into()),
            body: format!(r#"{{"pieces":{},"size":"M"}}"#, b.pieces),
        };
        if b.next_process == PROCESSES.len() {
            self.bundles[i] = self.new_bundle();
        }
        content
    }

    /// `n` records.
    pub fn take(&mut self, n: usize) -> Vec<RecordContent> {
        (0..n).map(|_| self.next_content()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_codes_are_29_chars_unique_and_checked() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..10_000 {
            let c = trace_code(n);
            assert_eq!(c.len(), 29);
            assert!(seen.insert(c.clone()));
            assert!(c.bytes().all(|b| ALNUM.contains(&b)));
        }
        // The check makes the whole code verify: re-running the MOD 37,36 recursion over
        // all 29 characters leaves 1.
        let c = trace_code(42);
        let (m, r) = (36u32, 37u32);
        let mut p = m;
        for (i, b) in c.bytes().enumerate() {
            let v = ALNUM.iter().position(|&x| x == b).unwrap_or(0) as u32;
            let mut x = (p + v) % m;
            if x == 0 {
                x = m;
            }
            if i == 28 {
                assert_eq!(x % m, 1);
            }
            p = (x * 2) % r;
        }
    }

    #[test]
    fn journal_round_trip_and_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.db");
        let j = SqliteJournal::open(&path).expect("open");
        let mut g = RecordGen::new(1);
        assert_eq!(j.append(g.take(10)).expect("append"), 10);
        assert_eq!(j.append(g.take(5)).expect("append"), 15);
        let recs = j.read_after(3, 4).expect("read");
        assert_eq!(
            recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        assert!(recs.iter().all(Record::hash_is_valid));
        assert_eq!(recs[1].prev_hash, recs[0].hash);
        assert_eq!(j.backlog().expect("backlog").unsent, 15);
        j.commit_results(
            6,
            &[RecordOutcome {
                journal_id: j.journal_id(),
                seq: 5,
                status: RecordStatus::Conflict,
                reason: "claim_conflict".into(),
                message: "m".into(),
            }],
        )
        .expect("commit");
        assert_eq!(j.cursor().expect("cursor"), 6);
        assert_eq!(j.backlog().expect("backlog").unsent, 9);
        assert_eq!(j.outcomes().expect("outcomes").len(), 1);
        let id = j.journal_id();
        drop(j);
        let again = SqliteJournal::open(&path).expect("reopen");
        assert_eq!(again.journal_id(), id);
        assert_eq!(again.cursor().expect("cursor"), 6);
    }

    #[test]
    fn generated_claims_never_repeat() {
        let mut g = RecordGen::new(9);
        let mut claims = std::collections::HashSet::new();
        for c in g.take(50_000) {
            if c.kind == "work" {
                assert!(claims.insert((c.trace_code.clone(), c.process.clone())));
            }
        }
    }
}
