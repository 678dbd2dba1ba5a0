//! Housekeeping while the agent runs: pruning past retention, and the disk watch.

use crate::config::JournalSection;
use crate::journal::retention::{self, DiskState};
use crate::journal::{now_ms, JournalHandle};
use bobbin_sync::record::RecordContent;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the disk is looked at.
const DISK_EVERY: Duration = Duration::from_secs(60);
/// How often pruning runs (it is cheap when there is nothing to prune).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The disk watch's latest verdict, shared with the status API.
pub type DiskView = Arc<Mutex<DiskState>>;

/// Runs until `stop` turns true.
pub async fn run(
    cfg: JournalSection,
    db: PathBuf,
    journal: JournalHandle,
    disk: DiskView,
    mut stop: watch::Receiver<bool>,
) {
    let mut disk_tick = tokio::time::interval(DISK_EVERY);
    let mut prune_tick = tokio::time::interval(PRUNE_EVERY);
    let retention_ms = i64::from(cfg.retention_days) * 86_400_000;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = disk_tick.tick() => check_disk(&cfg, &db, &journal, &disk).await,
            _ = prune_tick.tick() => {
                match retention::prune(&journal, now_ms() - retention_ms).await {
                    Ok(p) if p.records > 0 => tracing::info!(records = p.records, "pruned uploaded records past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "pruning failed"),
                }
            }
        }
    }
}

async fn check_disk(
    cfg: &JournalSection,
    db: &std::path::Path,
    journal: &JournalHandle,
    view: &DiskView,
) {
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let free = match retention::disk_space(dir) {
        Ok((free, _)) => free,
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot read free disk space");
            return;
        }
    };
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    let state = retention::judge_disk(free, size, cfg.min_free_mb << 20, cfg.budget_mb << 20);
    let changed = match view.lock() {
        Ok(mut v) => {
            let changed = *v != state;
            *v = state.clone();
            changed
        }
        Err(_) => false,
    };
    if !changed {
        return;
    }
    // Logged and recorded once per change of state, not once a minute.
    match &state {
        DiskState::Ok => tracing::info!("disk alarm cleared"),
        DiskState::Alarm { message } => tracing::warn!(%message, "disk alarm"),
    }
    let body = serde_json::to_string(&state).unwrap_or_default();
    let record = RecordContent {
        kind: "alarm.disk".into(),
        time_ms: now_ms(),
        body,
        ..Default::default()
    };
    if let Err(e) = journal.append(record).await {
        tracing::error!(error = %e, "could not record the disk alarm");
    }
}
