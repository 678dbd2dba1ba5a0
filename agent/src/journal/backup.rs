//! Online backup of a live journal through SQLite's backup API.
//!
//! The copy is a consistent snapshot even while the writer commits (never `cp` a live
//! database and its WAL). It is written to a temporary name, fsynced, and renamed into
//! place, so a crash mid-backup never leaves a half-written file under the final name.

use super::JournalError;
use rusqlite::backup::StepResult;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Copies the journal at `src` to `out`.
pub fn backup(src: &Path, out: &Path) -> Result<(), JournalError> {
    if !src.exists() {
        return Err(JournalError::missing(src));
    }
    let source = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.execute_batch("PRAGMA busy_timeout = 5000;")?;
    let tmp = PathBuf::from(format!("{}.partial", out.display()));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut dest = Connection::open(&tmp)?;
        let b = rusqlite::backup::Backup::new(&source, &mut dest)?;
        // All pages in one step: a stepwise copy restarts whenever the writer commits, and
        // on a busy journal might never finish. One step holds a read snapshot instead,
        // which WAL lets the writer work beside.
        loop {
            match b.step(-1)? {
                StepResult::Done => break,
                StepResult::More => continue,
                // Busy or Locked: the writer holds a lock for a moment; try again shortly.
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    super::install_file(&tmp, out)
}
