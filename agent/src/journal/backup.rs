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
        return Err(JournalError::Io {
            what: "opening journal",
            path: src.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
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
                // The writer holds a lock for a moment; try again shortly.
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| JournalError::Io { what, path, source }
    };
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", &tmp))?;
    std::fs::rename(&tmp, out).map_err(io("renaming backup to", out))?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing directory", dir))?;
    Ok(())
}
