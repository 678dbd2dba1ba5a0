//! `bobbin run`: the daemon. Opens the journal, starts the tasks, and shuts down cleanly on
//! SIGTERM/SIGINT, committing everything pending first.

use crate::config::Config;
use crate::journal::{Journal, JournalConfig};
use anyhow::Context;
use std::time::Duration;

/// Runs the agent until a shutdown signal or a fatal journal error.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.agent.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.agent.data_dir.display()))?;
    let jcfg = JournalConfig {
        path: cfg.journal_path(),
        max_batch: cfg.journal.max_batch,
        queue: cfg.journal.queue,
        checkpoint_interval: Duration::from_millis(cfg.journal.checkpoint_interval_ms),
    };
    let journal =
        Journal::open(&jcfg).with_context(|| format!("opening journal {}", jcfg.path.display()))?;
    let report = journal.report();
    tracing::info!(
        agent = %cfg.agent.id,
        journal = %report.journal_id,
        path = %jcfg.path.display(),
        next_seq = report.next_seq,
        created = report.created,
        "journal open"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(async {
        announce_waiting(&cfg);
        wait_for_stop(&journal).await
    });
    tracing::info!("shutting down: committing pending records");
    rt.shutdown_timeout(Duration::from_secs(5));
    let closed = journal.close();
    outcome?;
    closed.context("closing the journal")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Says, once, what the agent is waiting for, so a fresh install does not look dead.
fn announce_waiting(cfg: &Config) {
    if cfg.devices.is_empty() {
        tracing::info!("no devices configured: add [[devices]] to read scanners");
    }
    if cfg.stations.is_empty() {
        tracing::info!("no stations configured: add [[stations]] to turn scans into records");
    }
    tracing::info!("running; waiting for scans (SIGTERM or Ctrl-C to stop)");
}

/// Resolves on SIGTERM/SIGINT (Ok) or when the journal writer dies (Err).
async fn wait_for_stop(journal: &Journal) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); return Ok(()); }
            _ = int.recv() => { tracing::info!("SIGINT received"); return Ok(()); }
            _ = tick.tick() => {
                if !journal.writer_alive() {
                    anyhow::bail!("journal writer stopped; exiting so the service manager restarts the agent");
                }
            }
        }
    }
}
