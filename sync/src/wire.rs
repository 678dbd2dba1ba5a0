//! The batch format on the wire (version 1) and the receiver's answer.
//!
//! A batch carries a contiguous run `first..=last` of one journal's records. To keep the wire
//! small (the target is at most 60 bytes per record after gzip) it does **not** carry each
//! record's sequence number, previous hash or hash: the sequence numbers are implied by
//! `first..=last`, and the receiver recomputes every hash with [`Record::compute_hash`],
//! chaining from the batch's `prev` hash. The batch's `last_hash` is the sender's stored hash
//! of its last record, so a recomputation that does not end there proves that a record was
//! altered after it was hashed (or that the batch was built wrongly). Times are sent as
//! deltas from the previous record, which gzip compresses far better than absolute times.
//!
//! ```json
//! {"v":1,"agent":"ws-0001","journal":"<32 hex>","first":1,"last":2,
//!  "prev":"<64 hex>","last_hash":"<64 hex>","t0":1763900000000,
//!  "r":[[0,"work","sew-01","W0042","AB1234567825112344190012AB3CK","PO-7","collar","{\"pieces\":20}"],
//!       [1250,"scan","sew-01",null,"AB1234567825112344190012AB3CK",null,null,"{}"]]}
//! ```
//!
//! Each element of `r` is `[dt, kind, station, worker, trace_code, order, process, body]`,
//! where `dt` is milliseconds since the previous record (the first record's is since `t0`),
//! absent optional fields are `null` and `body` is the record's JSON text as a string, byte
//! for byte (it is hashed as text).

use crate::record::{JournalId, Record, RecordContent, RecordHash};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The batch format version this crate writes and reads.
pub const WIRE_VERSION: u32 = 1;

/// The media type of a batch body (before `Content-Encoding: gzip`).
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.bobbin.batch+json";

/// Why a batch could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The records given to the encoder are not one journal's contiguous run.
    #[error("records are not a contiguous run of one journal: {0}")]
    NotContiguous(String),
    /// A batch must carry at least one record.
    #[error("a batch must carry at least one record")]
    Empty,
    /// The body is not gzip, or decompresses to more than the allowed size.
    #[error("body is not valid gzip within {limit} bytes: {reason}")]
    Gzip {
        /// The decompressed size limit.
        limit: usize,
        /// What went wrong.
        reason: String,
    },
    /// The body is not a valid batch document.
    #[error("malformed batch: {0}")]
    Malformed(String),
    /// The batch is of a version this receiver does not read.
    #[error("unsupported batch version {0} (this side reads version {WIRE_VERSION})")]
    Version(u32),
}

/// A decoded batch: one journal's records `first_seq..=last_seq` without their hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The sending agent's id.
    pub agent_id: String,
    /// The journal the records belong to.
    pub journal_id: JournalId,
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// Sequence number of the last record.
    pub last_seq: u64,
    /// The previous hash of the first record.
    pub prev_hash: RecordHash,
    /// The sender's stored hash of the last record.
    pub last_hash: RecordHash,
    /// The records' contents, in sequence order.
    pub records: Vec<RecordContent>,
}

/// The first record whose recomputed hash chain does not reach the batch's `last_hash`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recomputed hash of seq {last_seq} is {computed}, the batch says {claimed}")]
pub struct ChainMismatch {
    /// The batch's last sequence number.
    pub last_seq: u64,
    /// What the receiver computed.
    pub computed: RecordHash,
    /// What the batch claims.
    pub claimed: RecordHash,
}

impl Batch {
    /// The idempotency key of this batch: journal id and sequence range.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(&self.journal_id, self.first_seq, self.last_seq)
    }

    /// Recomputes every record's hash from `prev_hash`; returns them in order when the chain
    /// ends at `last_hash`.
    pub fn verify_chain(&self) -> Result<Vec<RecordHash>, ChainMismatch> {
        let mut hashes = Vec::with_capacity(self.records.len());
        let mut prev = self.prev_hash;
        for (i, content) in self.records.iter().enumerate() {
            let h =
                Record::compute_hash(&self.journal_id, self.first_seq + i as u64, content, &prev);
            hashes.push(h);
            prev = h;
        }
        if prev == self.last_hash {
            Ok(hashes)
        } else {
            Err(ChainMismatch {
                last_seq: self.last_seq,
                computed: prev,
                claimed: self.last_hash,
            })
        }
    }
}

/// The `Idempotency-Key` for a journal's range: `"<journal hex>:<first>-<last>"`.
///
/// Deterministic, so a retry after a crash (with no key persisted) still sends the same key.
pub fn idempotency_key(journal: &JournalId, first: u64, last: u64) -> String {
    format!("{journal}:{first}-{last}")
}

/// An upper bound of a record's size in the uncompressed batch document, for batch limits.
pub fn estimated_size(r: &Record) -> usize {
    let c = &r.content;
    let opt = |s: &Option<String>| s.as_ref().map_or(4, |s| s.len() + 3);
    // Brackets, commas, quotes and a 20-digit delta; escapes may add up to one byte in six
    // for ordinary JSON bodies, which the last term covers.
    32 + c.kind.len()
        + opt(&c.station)
        + opt(&c.worker)
        + opt(&c.trace_code)
        + opt(&c.order)
        + opt(&c.process)
        + c.body.len()
        + c.body.len() / 3
}

struct RecordsOut<'a> {
    records: &'a [Record],
    t0: i64,
}

impl Serialize for RecordsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.records.len()))?;
        let mut last = self.t0;
        for r in self.records {
            let c = &r.content;
            let dt = c.time_ms.wrapping_sub(last);
            last = c.time_ms;
            seq.serialize_element(&(
                dt,
                &c.kind,
                &c.station,
                &c.worker,
                &c.trace_code,
                &c.order,
                &c.process,
                &c.body,
            ))?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct BatchOut<'a> {
    v: u32,
    agent: &'a str,
    journal: JournalId,
    first: u64,
    last: u64,
    prev: RecordHash,
    last_hash: RecordHash,
    t0: i64,
    r: RecordsOut<'a>,
}

#[derive(Deserialize)]
struct WireRecord(
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

#[derive(Deserialize)]
struct BatchIn {
    agent: String,
    journal: JournalId,
    first: u64,
    last: u64,
    prev: RecordHash,
    last_hash: RecordHash,
    t0: i64,
    r: Vec<WireRecord>,
}

/// Checks that `records` are one journal's contiguous run; returns it for the header.
fn check_run(records: &[Record]) -> Result<(&Record, &Record), WireError> {
    let (first, last) = match (records.first(), records.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(WireError::Empty),
    };
    for (i, r) in records.iter().enumerate() {
        if r.journal_id != first.journal_id || r.seq != first.seq + i as u64 {
            return Err(WireError::NotContiguous(format!(
                "record {i} is {}:{}, expected {}:{}",
                r.journal_id,
                r.seq,
                first.journal_id,
                first.seq + i as u64
            )));
        }
    }
    Ok((first, last))
}

/// Encodes `records` (a contiguous run of one journal) as an uncompressed batch document.
pub fn encode_batch(agent_id: &str, records: &[Record]) -> Result<Vec<u8>, WireError> {
    let (first, last) = check_run(records)?;
    let doc = BatchOut {
        v: WIRE_VERSION,
        agent: agent_id,
        journal: first.journal_id,
        first: first.seq,
        last: last.seq,
        prev: first.prev_hash,
        last_hash: last.hash,
        t0: first.content.time_ms,
        r: RecordsOut {
            records,
            t0: first.content.time_ms,
        },
    };
    let mut out = Vec::with_capacity(records.iter().map(estimated_size).sum::<usize>() + 256);
    serde_json::to_writer(&mut out, &doc).map_err(|e| WireError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Decodes an uncompressed batch document and checks its shape (not its hashes).
pub fn decode_batch(json: &[u8]) -> Result<Batch, WireError> {
    // Read the version first so an old receiver names the problem instead of a missing field.
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let v: Version =
        serde_json::from_slice(json).map_err(|e| WireError::Malformed(e.to_string()))?;
    if v.v != WIRE_VERSION {
        return Err(WireError::Version(v.v));
    }
    let b: BatchIn =
        serde_json::from_slice(json).map_err(|e| WireError::Malformed(e.to_string()))?;
    if b.first == 0 || b.last < b.first {
        return Err(WireError::Malformed(format!(
            "bad range {}..={} (sequences start at 1)",
            b.first, b.last
        )));
    }
    let expected = b.last - b.first + 1;
    if b.r.len() as u64 != expected {
        return Err(WireError::Malformed(format!(
            "range {}..={} needs {expected} records, got {}",
            b.first,
            b.last,
            b.r.len()
        )));
    }
    let mut time = b.t0;
    let mut records = Vec::with_capacity(b.r.len());
    for w in b.r {
        time = time
            .checked_add(w.0)
            .ok_or_else(|| WireError::Malformed("time delta overflows".into()))?;
        records.push(RecordContent {
            kind: w.1,
            time_ms: time,
            station: w.2,
            worker: w.3,
            trace_code: w.4,
            order: w.5,
            process: w.6,
            body: w.7,
        });
    }
    Ok(Batch {
        agent_id: b.agent,
        journal_id: b.journal,
        first_seq: b.first,
        last_seq: b.last,
        prev_hash: b.prev,
        last_hash: b.last_hash,
        records,
    })
}

/// Gzips `data` at `level` (0–9).
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(level.min(9)),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Gunzips `data`, refusing output larger than `limit` bytes (a guard against gzip bombs).
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity((data.len() * 4).min(limit));
    let dec = flate2::read::GzDecoder::new(data);
    dec.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| WireError::Gzip {
            limit,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(WireError::Gzip {
            limit,
            reason: "decompressed body is too large".into(),
        });
    }
    Ok(out)
}

/// What the receiver decided for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Stored now for the first time.
    Accepted,
    /// Already held with the same hash (a retry): delivered, not counted again.
    Duplicate,
    /// Held in a way that contradicts it: same id with another hash, a fork of the chain, or
    /// a claim on a coupon someone else claimed first. See the reason.
    Conflict,
    /// Not stored: the record is invalid (see the reason). Retrying will not help.
    Rejected,
}

impl RecordStatus {
    /// The one-letter code used in [`BatchResponse::statuses`].
    pub fn code(self) -> char {
        match self {
            RecordStatus::Accepted => 'a',
            RecordStatus::Duplicate => 'd',
            RecordStatus::Conflict => 'c',
            RecordStatus::Rejected => 'r',
        }
    }

    /// The status for a one-letter code.
    pub fn from_code(c: char) -> Option<Self> {
        Some(match c {
            'a' => RecordStatus::Accepted,
            'd' => RecordStatus::Duplicate,
            'c' => RecordStatus::Conflict,
            'r' => RecordStatus::Rejected,
            _ => return None,
        })
    }

    /// The status as a lower-case word, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Accepted => "accepted",
            RecordStatus::Duplicate => "duplicate",
            RecordStatus::Conflict => "conflict",
            RecordStatus::Rejected => "rejected",
        }
    }
}

/// Why a record was a conflict or was rejected: the `reason` codes of the protocol.
pub mod reason {
    /// Same (journal, seq) already held with another hash.
    pub const ID_CONFLICT: &str = "id_conflict";
    /// The record's previous hash is not the hash held for the record before it.
    pub const FORK: &str = "fork";
    /// Another record claimed the same (trace code, process) first.
    pub const CLAIM_CONFLICT: &str = "claim_conflict";
    /// The record's content does not match its hash (altered after it was journaled).
    pub const HASH_MISMATCH: &str = "hash_mismatch";
    /// The record breaks a rule of the receiver (empty kind, oversize field...).
    pub const INVALID: &str = "invalid";
    /// The record alone is larger than the receiver accepts (decided by the uploader on 413).
    pub const TOO_LARGE: &str = "too_large";
    /// The receiver refused the record alone with a 422 (decided by the uploader).
    pub const UNPROCESSABLE: &str = "unprocessable";
}

/// Details for a record whose status is conflict or rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The record's sequence number.
    pub seq: u64,
    /// Conflict or rejected.
    pub status: RecordStatus,
    /// A code from [`reason`].
    pub reason: String,
    /// Human-readable detail (for a claim conflict: who claimed first).
    pub message: String,
}

/// The receiver's answer to a batch (HTTP 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The batch's journal.
    pub journal: JournalId,
    /// The batch's first sequence number.
    pub first: u64,
    /// The batch's last sequence number.
    pub last: u64,
    /// One letter per record, in order: `a` accepted, `d` duplicate, `c` conflict,
    /// `r` rejected.
    pub statuses: String,
    /// A detail for every `c` and `r`.
    pub problems: Vec<Problem>,
    /// The highest sequence number the receiver holds for this journal.
    pub highest_seq: u64,
    /// The highest `n` such that the receiver holds every record `1..=n` of this journal.
    pub contiguous_seq: u64,
}

impl BatchResponse {
    /// Checks that the answer is for this range and complete: one status per record and a
    /// problem for every conflict or reject. A malformed answer is an unknown outcome.
    pub fn validate(&self, journal: &JournalId, first: u64, last: u64) -> Result<(), String> {
        if self.journal != *journal || self.first != first || self.last != last {
            return Err(format!(
                "answer is for {}:{}-{}, the batch was {}:{}-{}",
                self.journal, self.first, self.last, journal, first, last
            ));
        }
        let n = (last - first + 1) as usize;
        if self.statuses.len() != n {
            return Err(format!("{} statuses for {n} records", self.statuses.len()));
        }
        let mut need = 0usize;
        for c in self.statuses.chars() {
            match RecordStatus::from_code(c) {
                Some(RecordStatus::Conflict | RecordStatus::Rejected) => need += 1,
                Some(_) => {}
                None => return Err(format!("unknown status letter {c:?}")),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.problems {
            let idx = p.seq.checked_sub(first).map(|i| i as usize);
            let letter = idx.and_then(|i| self.statuses.as_bytes().get(i)).copied();
            if letter.map(char::from) != Some(p.status.code()) || !seen.insert(p.seq) {
                return Err(format!(
                    "problem for seq {} does not match the statuses",
                    p.seq
                ));
            }
        }
        if seen.len() != need {
            return Err(format!(
                "{need} conflicts/rejects but {} problems",
                seen.len()
            ));
        }
        Ok(())
    }
}

/// The body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A machine-readable code, e.g. `chain_mismatch`, `bad_signature`, `too_large`.
    pub error: String,
    /// Human-readable detail.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::GENESIS_HASH;

    fn chain(n: u64) -> Vec<Record> {
        let j = JournalId([3; 16]);
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let r = Record::seal(
                    j,
                    seq,
                    RecordContent {
                        kind: if seq % 2 == 0 {
                            "scan".into()
                        } else {
                            "work".into()
                        },
                        time_ms: 1_763_900_000_000 + seq as i64 * 1000 - (seq as i64 % 3) * 7,
                        station: Some("sew-01".into()),
                        worker: (seq % 3 != 0).then(|| "W0042".into()),
                        trace_code: Some(format!("AB1234567825112344190000{seq:04}K")),
                        order: Some("PO-7".into()),
                        process: (seq % 2 == 1).then(|| "collar".into()),
                        body: format!(r#"{{"pieces":{seq},"note":"a \"quoted\" ü"}}"#),
                    },
                    prev,
                );
                prev = r.hash;
                r
            })
            .collect()
    }

    #[test]
    fn round_trip_recomputes_every_hash() {
        let recs = chain(50);
        let doc = encode_batch("ws-1", &recs[9..30]).expect("encode");
        let back = decode_batch(&gunzip(&gzip(&doc, 6), 1 << 20).expect("gunzip")).expect("decode");
        assert_eq!(back.first_seq, 10);
        assert_eq!(back.last_seq, 30);
        assert_eq!(
            back.idempotency_key(),
            format!("{}:10-30", recs[0].journal_id)
        );
        let hashes = back.verify_chain().expect("chain holds");
        let expected: Vec<_> = recs[9..30].iter().map(|r| r.hash).collect();
        assert_eq!(hashes, expected);
        let contents: Vec<_> = recs[9..30].iter().map(|r| r.content.clone()).collect();
        assert_eq!(back.records, contents);
    }

    #[test]
    fn an_altered_record_breaks_the_chain() {
        let mut recs = chain(10);
        recs[4].content.body = r#"{"pieces":999}"#.into();
        let doc = encode_batch("ws-1", &recs).expect("encode");
        let back = decode_batch(&doc).expect("decode");
        assert!(back.verify_chain().is_err());
    }

    #[test]
    fn encoder_refuses_gaps_and_mixed_journals() {
        let recs = chain(5);
        let gap = vec![recs[0].clone(), recs[2].clone()];
        assert!(matches!(
            encode_batch("a", &gap),
            Err(WireError::NotContiguous(_))
        ));
        assert!(matches!(encode_batch("a", &[]), Err(WireError::Empty)));
        let mut other = recs[1].clone();
        other.journal_id = JournalId([4; 16]);
        assert!(encode_batch("a", &[recs[0].clone(), other]).is_err());
    }

    #[test]
    fn decoder_checks_range_and_version() {
        let recs = chain(3);
        let doc = String::from_utf8(encode_batch("a", &recs).expect("encode")).expect("utf8");
        let wrong_count = doc.replace("\"last\":3", "\"last\":4");
        assert!(matches!(
            decode_batch(wrong_count.as_bytes()),
            Err(WireError::Malformed(_))
        ));
        let v2 = doc.replace("\"v\":1", "\"v\":2");
        assert!(matches!(
            decode_batch(v2.as_bytes()),
            Err(WireError::Version(2))
        ));
        assert!(decode_batch(b"{}").is_err());
    }

    #[test]
    fn gunzip_limits_output() {
        let big = vec![b'x'; 100_000];
        let z = gzip(&big, 6);
        assert!(z.len() < 1000);
        assert!(gunzip(&z, 99_999).is_err());
        assert_eq!(gunzip(&z, 100_000).expect("fits").len(), 100_000);
        assert!(gunzip(b"not gzip", 10).is_err());
    }

    #[test]
    fn estimated_size_bounds_the_encoding() {
        for r in chain(20) {
            let doc = encode_batch("a", std::slice::from_ref(&r)).expect("encode");
            // The header is about 250 bytes; the record part must fit the estimate.
            assert!(
                doc.len() < 260 + estimated_size(&r),
                "{} vs {}",
                doc.len(),
                estimated_size(&r)
            );
        }
    }

    #[test]
    fn response_validation_catches_incomplete_answers() {
        let j = JournalId([1; 16]);
        let ok = BatchResponse {
            journal: j,
            first: 5,
            last: 7,
            statuses: "adc".into(),
            problems: vec![Problem {
                seq: 7,
                status: RecordStatus::Conflict,
                reason: reason::CLAIM_CONFLICT.into(),
                message: "x".into(),
            }],
            highest_seq: 7,
            contiguous_seq: 7,
        };
        assert!(ok.validate(&j, 5, 7).is_ok());
        assert!(ok.validate(&j, 5, 8).is_err());
        let mut short = ok.clone();
        short.statuses = "ad".into();
        assert!(short.validate(&j, 5, 7).is_err());
        let mut missing = ok.clone();
        missing.problems.clear();
        assert!(missing.validate(&j, 5, 7).is_err());
        let mut wrong = ok.clone();
        wrong.problems[0].seq = 6;
        assert!(wrong.validate(&j, 5, 7).is_err());
        let mut bad_letter = ok;
        bad_letter.statuses = "axc".into();
        assert!(bad_letter.validate(&j, 5, 7).is_err());
    }
}
