//! Restoring a journal from a backup.
//!
//! A restored file starts a new journal id (DESIGN invariant 3): the lost disk may have
//! held, and uploaded, records after the backup under the old id; new records under that id
//! would collide with them. The old journal's records stay in the file under their own id
//! (re-uploading them is harmless: the receiver answers duplicate), and the new journal's
//! first record says where it came from.

use super::{
    now_ms, schema, start_journal, verify, writer, JournalError, JournalReader, WriterLock,
};
use bobbin_sync::record::{JournalId, RecordContent};
use std::path::{Path, PathBuf};

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The id new records will carry.
    pub new_journal: JournalId,
    /// Where a journal that was at the target path went.
    pub moved_aside: Option<PathBuf>,
}

/// Restores `backup` to `db`. Refuses while an agent holds the journal.
pub fn restore(backup: &Path, db: &Path) -> Result<Restored, JournalError> {
    // Checked before anything moves: a broken backup must not replace a journal.
    let report = verify::verify(&JournalReader::open(backup)?)?;
    if let Some(p) = report.problem {
        return Err(JournalError::Damaged(format!(
            "backup {}: {p}",
            backup.display()
        )));
    }
    let _lock = WriterLock::acquire(db)?;
    let moved_aside = if db.exists() {
        let to = PathBuf::from(format!(
            "{}.replaced-{}",
            db.display(),
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", db.display()));
            if from.exists() {
                std::fs::rename(&from, format!("{}{suffix}", to.display()))
                    .map_err(JournalError::io("moving aside", &from))?;
            }
        }
        Some(to)
    } else {
        None
    };
    let tmp = PathBuf::from(format!("{}.restoring", db.display()));
    std::fs::copy(backup, &tmp).map_err(JournalError::io("copying backup to", &tmp))?;
    super::install_file(&tmp, db)?;

    let mut conn = super::connect(db)?;
    schema::migrate(&mut conn)?;
    let tx = conn.transaction()?;
    let origin = format!(
        "restored from {} at {}",
        backup.display(),
        chrono::Utc::now().to_rfc3339()
    );
    let mut head = start_journal(&tx, &origin)?;
    let body = serde_json::json!({ "backup": backup.display().to_string(), "origin": origin });
    writer::append_in_tx(
        &tx,
        &mut head,
        &RecordContent {
            kind: "journal.restored".into(),
            time_ms: now_ms(),
            body: body.to_string(),
            ..Default::default()
        },
    )?;
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(Restored {
        new_journal: head.journal_id,
        moved_aside,
    })
}
