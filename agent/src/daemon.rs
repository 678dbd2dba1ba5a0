//! `bobbin run`: the daemon. Opens the journal, starts the device, workflow and upload
//! tasks, and on SIGTERM/SIGINT stops them in order — inputs first, then the workflow
//! (which commits what it already read), then the uploader, then the journal (which commits
//! everything queued and checkpoints).

use crate::config::Config;
use crate::journal::{Journal, JournalConfig};
use crate::upload::JournalSource;
use crate::workflow::{self, NoFeedback, StationsView};
use anyhow::Context;
use bobbin_sync::UploadSource;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How many readings may wait for the workflow before devices stop reading (back-pressure).
const READINGS_QUEUE: usize = 256;

/// Runs the agent until a shutdown signal or a fatal error.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    run_until(cfg, None)
}

/// Runs the agent until a shutdown signal, `stop` turning true (for `bobbin demo`), or a
/// fatal error.
pub fn run_until(cfg: Config, stop: Option<watch::Receiver<bool>>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.agent.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.agent.data_dir.display()))?;
    let jcfg = JournalConfig {
        path: cfg.journal_path(),
        max_batch: cfg.journal.max_batch,
        queue: cfg.journal.queue,
        checkpoint_interval: Duration::from_millis(cfg.journal.checkpoint_interval_ms),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Handlers go in before anything can take a while or announce "running": a SIGTERM
    // that lands during start-up is then a clean stop once start-up ends, not the default
    // action killing the process half-way.
    let signals = {
        let _in_runtime = rt.enter();
        StopSignals::install()?
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
    let outcome = rt.block_on(run_tasks(&cfg, &journal, signals, stop));
    rt.shutdown_timeout(Duration::from_secs(5));
    let closed = journal.close();
    outcome?;
    closed.context("closing the journal")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn run_tasks(
    cfg: &Config,
    journal: &Journal,
    signals: StopSignals,
    external_stop: Option<watch::Receiver<bool>>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);

    // Devices feed one bounded channel; a full channel makes them stop reading.
    // Refused frames travel beside them, to be kept as reject rows.
    let (readings_tx, readings_rx) = mpsc::channel(READINGS_QUEUE);
    let (rejects_tx, rejects_rx) = mpsc::channel(READINGS_QUEUE);
    let mut devices = HashMap::new();
    for d in &cfg.devices {
        let h = bobbin_drivers::spawn_device_with_rejects(
            d.clone(),
            readings_tx.clone(),
            Some(rejects_tx.clone()),
            stop_rx.clone(),
        );
        devices.insert(d.id.clone(), h);
    }
    drop(rejects_tx);
    let device_cells = cfg
        .devices
        .iter()
        .filter_map(|d| devices.get(&d.id).map(|h| h.status_cell()))
        .collect();
    drop(readings_tx);

    // Equipment over MQTT (and the embedded broker unless an external one is named).
    let equipment = if cfg.mqtt.enabled {
        Some(
            crate::equipment::spawn(
                cfg.mqtt.clone(),
                cfg.machines.clone(),
                journal.handle(),
                stop_rx.clone(),
            )
            .context("starting equipment ingest")?,
        )
    } else {
        None
    }
    .map(Arc::new);
    let announce: Arc<dyn workflow::FeedbackSink> = if cfg.mqtt.enabled {
        let (host, port) = match cfg.mqtt.external_broker() {
            Ok(Some((h, p))) => (h, p),
            _ => (cfg.mqtt.listen.ip().to_string(), cfg.mqtt.listen.port()),
        };
        Arc::new(crate::feedback::MqttFeedback::start(
            &host,
            port,
            &cfg.mqtt.client_id,
            stop_rx.clone(),
        ))
    } else {
        Arc::new(NoFeedback)
    };

    let view: StationsView = Arc::new(Mutex::new(Vec::new()));
    let workflow = {
        let cfg = cfg.clone();
        let handle = journal.handle();
        let path = journal.path().to_owned();
        let view = view.clone();
        tokio::spawn(async move {
            workflow::run(
                &cfg,
                path,
                handle,
                workflow::Inputs {
                    readings: readings_rx,
                    rejects: rejects_rx,
                    devices,
                },
                announce,
                view,
            )
            .await
        })
    };

    let uploader = match &cfg.sync {
        None => None,
        Some(sync) => {
            bobbin_sync::install_crypto_provider();
            let key = bobbin_sync::AgentKey::load_or_create(&sync.key_file)
                .with_context(|| format!("signing key {}", sync.key_file.display()))?;
            let sources: Vec<Arc<dyn UploadSource>> =
                JournalSource::all(journal.path(), &journal.handle())?
                    .into_iter()
                    .map(|s| Arc::new(s) as Arc<dyn UploadSource>)
                    .collect();
            let (up, handle) = bobbin_sync::Uploader::new(sync.clone(), key, sources)
                .context("starting the uploader")?;
            tracing::info!(url = %sync.url, "uploading to the platform");
            Some((tokio::spawn(up.run()), handle))
        }
    };

    let disk = Arc::new(Mutex::new(crate::journal::retention::DiskState::Ok));
    let maintenance = tokio::spawn(crate::maintenance::run(
        cfg.journal.clone(),
        journal.path().to_owned(),
        journal.handle(),
        disk.clone(),
        stop_rx.clone(),
    ));

    let sources = Arc::new(crate::status::Sources {
        agent_id: cfg.agent.id.clone(),
        journal_id: journal.report().journal_id.to_string(),
        started: chrono::Utc::now(),
        stations: view.clone(),
        devices: device_cells,
        sync: uploader.as_ref().map(|(_, h)| h.clone()),
        disk: disk.clone(),
        reader: Mutex::new(journal.reader()?),
        db_path: journal.path().to_owned(),
        writer_alive: Box::new(journal.liveness()),
        journal: journal.handle(),
        machines: equipment.clone(),
        inspection: crate::station::WorkshopOptions {
            utc_offset_minutes: cfg.agent.utc_offset_minutes,
            ..Default::default()
        },
    });
    // A taken port must not stop the workshop from recording scans: the page is a view,
    // the journal is the job. Say so loudly and run on without it.
    let status = match tokio::net::TcpListener::bind(cfg.status.listen).await {
        Ok(listener) => Some(tokio::spawn(crate::status::serve(
            listener,
            cfg.status.clone(),
            sources,
            stop_rx.clone(),
        ))),
        Err(e) => {
            tracing::error!(listen = %cfg.status.listen, error = %e, "status server disabled: cannot bind");
            None
        }
    };

    announce_waiting(cfg);
    crate::systemd::ready(&format!(
        "journal {} open; running",
        journal.report().journal_id
    ));
    let stopped = wait_for_stop(journal, &uploader, signals, external_stop).await;
    crate::systemd::stopping();

    tracing::info!("shutting down: stopping inputs, committing pending records");
    let _ = stop_tx.send(true);
    match workflow.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "station workflow stopped with an error"),
        Err(e) => tracing::error!(error = %e, "station workflow task failed"),
    }
    let _ = maintenance.await;
    if let Some(eq) = equipment.and_then(|e| Arc::try_unwrap(e).ok()) {
        if let Err(e) = eq.join().await {
            tracing::error!(error = %e, "equipment ingest stopped with an error");
        }
    }
    if let Some(status) = status {
        match status.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "status server failed"),
            Err(e) => tracing::error!(error = %e, "status server task failed"),
        }
    }
    if let Some((task, handle)) = uploader {
        handle.shutdown();
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "uploader stopped with an error"),
            Err(e) => tracing::error!(error = %e, "uploader task failed"),
        }
    }
    stopped
}

/// Says, once, what the agent is waiting for, so a fresh install does not look dead.
fn announce_waiting(cfg: &Config) {
    if cfg.devices.is_empty() {
        tracing::info!("no devices configured: add [[devices]] to read scanners");
    } else {
        let ids: Vec<&str> = cfg.devices.iter().map(|d| d.id.as_str()).collect();
        tracing::info!(devices = ?ids, "waiting for devices (a missing one is retried)");
    }
    if cfg.stations.is_empty() {
        tracing::info!("no stations configured: add [[stations]] to turn scans into records");
    }
    if cfg.sync.is_none() {
        tracing::info!("no [sync] section: records stay on this PC until one is added");
    }
    tracing::info!("running; waiting for scans (SIGTERM or Ctrl-C to stop)");
}

type UploaderTask = (
    tokio::task::JoinHandle<Result<(), bobbin_sync::SyncError>>,
    bobbin_sync::UploaderHandle,
);

/// The SIGTERM and SIGINT streams, installed once at start-up.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Replaces the default (kill) action; must run inside the runtime.
    fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
        })
    }
}

/// Resolves on SIGTERM/SIGINT (Ok) or when the journal writer or the uploader dies (Err).
async fn wait_for_stop(
    journal: &Journal,
    uploader: &Option<UploaderTask>,
    signals: StopSignals,
    external: Option<watch::Receiver<bool>>,
) -> anyhow::Result<()> {
    let StopSignals { mut term, mut int } = signals;
    let external = async move {
        match external {
            Some(mut rx) => {
                let _ = rx.wait_for(|s| *s).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(external);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let watchdog_every = crate::systemd::watchdog_interval();
    let mut last_ping = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); return Ok(()); }
            _ = int.recv() => { tracing::info!("SIGINT received"); return Ok(()); }
            _ = &mut external => { tracing::info!("stop requested"); return Ok(()); }
            _ = tick.tick() => {
                if !journal.writer_alive() {
                    anyhow::bail!("journal writer stopped; exiting so the service manager restarts the agent");
                }
                if uploader.as_ref().is_some_and(|(t, _)| t.is_finished()) {
                    anyhow::bail!("uploader stopped on a storage error; exiting so the service manager restarts the agent");
                }
                // Reaching here means the runtime schedules timers and the writer is alive:
                // the liveness the watchdog stands for.
                if let Some(every) = watchdog_every {
                    if last_ping.elapsed() >= every {
                        crate::systemd::watchdog();
                        last_ping = std::time::Instant::now();
                    }
                }
            }
        }
    }
}
