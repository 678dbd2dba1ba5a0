//! Recomputes the hash chain (DESIGN invariant 4, DG-4.2.2, DG-7.7).
//!
//! [`ChainCheck`] is the pure part: fed records in order, it reports the first one that was
//! altered, unlinked, or missing. [`verify`] walks a database with it, streaming.

use super::{JournalError, JournalReader};
use bobbin_sync::record::{JournalId, Record, RecordHash, GENESIS_HASH};
use std::fmt;

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ChainProblem {
    /// The record's content no longer matches its hash.
    Altered {
        /// The journal.
        journal_id: JournalId,
        /// The altered record's sequence number.
        seq: u64,
    },
    /// The record's stored previous hash is not its predecessor's hash.
    Unlinked {
        /// The journal.
        journal_id: JournalId,
        /// The record whose link is wrong.
        seq: u64,
    },
    /// Sequence numbers `from..=to` are absent.
    Missing {
        /// The journal.
        journal_id: JournalId,
        /// The first missing sequence number.
        from: u64,
        /// The last missing sequence number.
        to: u64,
    },
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainProblem::Altered { journal_id, seq } => write!(
                f,
                "journal {journal_id}: record {seq} was altered (its content does not match its hash)"
            ),
            ChainProblem::Unlinked { journal_id, seq } => write!(
                f,
                "journal {journal_id}: record {seq} does not follow record {} (previous hash differs): one of them was altered",
                seq.saturating_sub(1)
            ),
            ChainProblem::Missing {
                journal_id,
                from,
                to,
            } if from == to => write!(f, "journal {journal_id}: record {from} is missing"),
            ChainProblem::Missing {
                journal_id,
                from,
                to,
            } => write!(f, "journal {journal_id}: records {from} to {to} are missing"),
        }
    }
}

/// Checks one journal's records, fed in sequence order.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    journal_id: JournalId,
    expected_seq: u64,
    prev: RecordHash,
    /// Records checked so far.
    pub records: u64,
}

impl ChainCheck {
    /// A check for a journal whose first remaining record is `first_seq`, following `prev`.
    pub fn new(journal_id: JournalId, first_seq: u64, prev: RecordHash) -> Self {
        ChainCheck {
            journal_id,
            expected_seq: first_seq,
            prev,
            records: 0,
        }
    }

    /// A check for a journal that starts at sequence 1 from the genesis hash.
    pub fn from_genesis(journal_id: JournalId) -> Self {
        Self::new(journal_id, 1, GENESIS_HASH)
    }

    /// Checks the next record.
    pub fn push(&mut self, r: &Record) -> Result<(), ChainProblem> {
        let journal_id = self.journal_id;
        if r.seq != self.expected_seq {
            return Err(if r.seq > self.expected_seq {
                ChainProblem::Missing {
                    journal_id,
                    from: self.expected_seq,
                    to: r.seq - 1,
                }
            } else {
                // Out of order or repeated: the row at expected_seq is not what it should be.
                ChainProblem::Altered {
                    journal_id,
                    seq: r.seq,
                }
            });
        }
        if !r.hash_is_valid() {
            return Err(ChainProblem::Altered {
                journal_id,
                seq: r.seq,
            });
        }
        if r.prev_hash != self.prev {
            return Err(ChainProblem::Unlinked {
                journal_id,
                seq: r.seq,
            });
        }
        self.prev = r.hash;
        self.expected_seq += 1;
        self.records += 1;
        Ok(())
    }

    /// The last sequence number checked (or the pruned point when none were).
    pub fn last_seq(&self) -> u64 {
        self.expected_seq - 1
    }
}

/// What `verify` found for one journal.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalSummary {
    /// The journal.
    pub journal_id: JournalId,
    /// Records present and checked.
    pub records: u64,
    /// The last sequence number.
    pub last_seq: u64,
    /// Records pruned after upload (not checkable locally any more).
    pub pruned_through: u64,
}

impl fmt::Display for JournalSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal {}: {} records, last sequence {}",
            self.journal_id, self.records, self.last_seq
        )?;
        if self.pruned_through > 0 {
            write!(f, " (1 to {} pruned after upload)", self.pruned_through)?;
        }
        write!(f, ", chain intact")
    }
}

/// The result of a full walk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    /// Journals that checked out, oldest first.
    pub intact: Vec<JournalSummary>,
    /// The first problem, if any (checking stops there).
    pub problem: Option<ChainProblem>,
}

/// Walks every journal in the file and recomputes its chain.
pub fn verify(reader: &JournalReader) -> Result<VerifyReport, JournalError> {
    let mut intact = Vec::new();
    for j in reader.journals()? {
        let prev = j.pruned_hash.unwrap_or(GENESIS_HASH);
        let mut check = ChainCheck::new(j.journal_id, j.pruned_through + 1, prev);
        let mut problem = None;
        reader.for_each_record(&j, |r| match check.push(&r) {
            Ok(()) => true,
            Err(p) => {
                problem = Some(p);
                false
            }
        })?;
        if problem.is_some() {
            return Ok(VerifyReport { intact, problem });
        }
        intact.push(JournalSummary {
            journal_id: j.journal_id,
            records: check.records,
            last_seq: check.last_seq(),
            pruned_through: j.pruned_through,
        });
    }
    Ok(VerifyReport {
        intact,
        problem: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bobbin_sync::record::RecordContent;

    fn chain(n: u64) -> Vec<Record> {
        let id = JournalId([1; 16]);
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let r = Record::seal(
                    id,
                    seq,
                    RecordContent {
                        kind: "scan".into(),
                        time_ms: seq as i64,
                        body: format!("{{\"n\":{seq}}}"),
                        ..Default::default()
                    },
                    prev,
                );
                prev = r.hash;
                r
            })
            .collect()
    }

    fn check(records: &[Record]) -> Result<u64, ChainProblem> {
        let mut c = ChainCheck::from_genesis(JournalId([1; 16]));
        for r in records {
            c.push(r)?;
        }
        Ok(c.last_seq())
    }

    #[test]
    fn an_intact_chain_passes() {
        assert_eq!(check(&chain(10)), Ok(10));
        assert_eq!(check(&[]), Ok(0));
    }

    #[test]
    fn an_altered_body_is_named() {
        let mut c = chain(10);
        c[4].content.body = "{\"n\":500}".into();
        assert!(matches!(
            check(&c),
            Err(ChainProblem::Altered { seq: 5, .. })
        ));
    }

    #[test]
    fn a_rehashed_record_breaks_the_next_link() {
        let mut c = chain(10);
        c[4].content.body = "{\"n\":500}".into();
        c[4].hash = Record::compute_hash(&c[4].journal_id, 5, &c[4].content, &c[4].prev_hash);
        assert!(matches!(
            check(&c),
            Err(ChainProblem::Unlinked { seq: 6, .. })
        ));
    }

    #[test]
    fn a_gap_is_reported_with_its_range() {
        let mut c = chain(10);
        c.drain(3..6);
        let p = check(&c).unwrap_err();
        assert!(matches!(p, ChainProblem::Missing { from: 4, to: 6, .. }));
        assert!(p.to_string().contains("records 4 to 6 are missing"));
    }

    #[test]
    fn a_missing_first_record_is_reported() {
        let c = chain(3);
        assert!(matches!(
            check(&c[1..]),
            Err(ChainProblem::Missing { from: 1, to: 1, .. })
        ));
    }
}
