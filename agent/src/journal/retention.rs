//! Retention: records that were uploaded and are past the retention period (DG-7.5: at
//! least two years) are pruned; unsent records never are. And the disk watch that raises
//! an alarm before the disk fills.
//!
//! Pruning removes a *prefix* of a journal's chain and remembers where it ends
//! (`journals.pruned_through`, `pruned_hash`), so `verify` still checks everything that is
//! left from a known hash. Each step deletes a bounded chunk in its own writer transaction,
//! so pruning a year of records never stalls the writer.

use super::{JournalError, JournalHandle};
use rusqlite::{params, OptionalExtension};
use std::path::Path;

/// Most records one pruning transaction deletes.
pub const PRUNE_CHUNK: u64 = 10_000;

/// What one pruning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Records deleted.
    pub records: u64,
}

/// Prunes every journal's uploaded records older than `cutoff_ms`, chunk by chunk.
pub async fn prune(journal: &JournalHandle, cutoff_ms: i64) -> Result<Pruned, JournalError> {
    let mut total = Pruned::default();
    loop {
        let n = journal
            .exec(move |ctx| prune_chunk(ctx.tx, cutoff_ms, PRUNE_CHUNK))
            .await?;
        total.records += n;
        if n < PRUNE_CHUNK {
            return Ok(total);
        }
    }
}

/// One chunk: for each journal, deletes up to `max` records that are uploaded (at or below
/// the cursor) and older than the cutoff, as a prefix of the chain. Returns how many.
fn prune_chunk(
    tx: &rusqlite::Transaction<'_>,
    cutoff_ms: i64,
    max: u64,
) -> Result<u64, JournalError> {
    let journals: Vec<(i64, i64, i64)> = tx
        .prepare(
            "SELECT j.id, j.pruned_through, COALESCE(c.seq, 0) FROM journals j \
             LEFT JOIN upload_cursors c ON c.journal = j.id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut deleted = 0u64;
    for (journal, pruned_through, cursor) in journals {
        if deleted >= max || cursor <= pruned_through {
            continue;
        }
        let limit = (pruned_through + (max - deleted) as i64).min(cursor);
        // The prefix ends before the first record that is too young (clocks jump, so time
        // is not monotonic in seq) or past the bound.
        let first_kept: Option<i64> = tx
            .query_row(
                "SELECT MIN(seq) FROM records WHERE journal = ?1 AND seq > ?2 AND seq <= ?3 \
                 AND time_ms >= ?4",
                params![journal, pruned_through, limit, cutoff_ms],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let upto = first_kept.map_or(limit, |s| s - 1);
        if upto <= pruned_through {
            continue;
        }
        let hash: Option<Vec<u8>> = tx
            .query_row(
                "SELECT hash FROM records WHERE journal = ?1 AND seq = ?2",
                params![journal, upto],
                |r| r.get(0),
            )
            .optional()?;
        let Some(hash) = hash else {
            // A hole where the prefix should end: leave it for verify to report.
            continue;
        };
        tx.execute("UPDATE prune_gate SET open = 1", [])?;
        let n = tx.execute(
            "DELETE FROM records WHERE journal = ?1 AND seq > ?2 AND seq <= ?3",
            params![journal, pruned_through, upto],
        )?;
        tx.execute("UPDATE prune_gate SET open = 0", [])?;
        tx.execute(
            "UPDATE journals SET pruned_through = ?2, pruned_hash = ?3 WHERE id = ?1",
            params![journal, upto, hash],
        )?;
        deleted += n as u64;
    }
    Ok(deleted)
}

/// Free and total bytes of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct we pass; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let unit = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

/// The disk watch's verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DiskState {
    /// Enough room.
    Ok,
    /// Below the configured free-space floor or over the journal budget.
    Alarm {
        /// What is wrong, for the log and the status page.
        message: String,
    },
}

/// Judges free space and journal size against the configured limits (pure).
pub fn judge_disk(free: u64, journal_bytes: u64, min_free: u64, budget: u64) -> DiskState {
    const MB: u64 = 1 << 20;
    if free < min_free {
        return DiskState::Alarm {
            message: format!(
                "only {} MB free on the journal's disk (alarm below {} MB): unsent records will stop being accepted when it is full",
                free / MB,
                min_free / MB
            ),
        };
    }
    if budget > 0 && journal_bytes > budget {
        return DiskState::Alarm {
            message: format!(
                "journal is {} MB, over its budget of {} MB: check that uploads are flowing",
                journal_bytes / MB,
                budget / MB
            ),
        };
    }
    DiskState::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_alarm_names_the_limit_it_crossed() {
        const MB: u64 = 1 << 20;
        assert_eq!(judge_disk(900 * MB, 10 * MB, 500 * MB, 0), DiskState::Ok);
        let DiskState::Alarm { message } = judge_disk(100 * MB, 10 * MB, 500 * MB, 0) else {
            panic!("low disk must alarm")
        };
        assert!(message.contains("only 100 MB free"), "{message}");
        let DiskState::Alarm { message } = judge_disk(900 * MB, 300 * MB, 500 * MB, 200 * MB)
        else {
            panic!("over budget must alarm")
        };
        assert!(message.contains("over its budget of 200 MB"), "{message}");
    }

    #[test]
    fn disk_space_reads_the_filesystem() {
        let (free, total) = disk_space(Path::new(".")).expect("statvfs");
        assert!(total > 0 && free <= total);
        assert!(disk_space(Path::new("/no/such/dir")).is_err());
    }
}
