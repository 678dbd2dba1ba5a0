//! The one-shot subcommands (everything but the daemon loop, which is in `daemon`).

use crate::cli::{Command, ConfigFile};
use crate::config::{Config, LogFormat};
use crate::journal::{self, verify, JournalConfig, JournalReader};
use anyhow::Context;
use bobbin_sync::record::{Record, RecordContent};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Runs a subcommand. `Ok` carries the exit code for outcomes the command itself judged
/// (e.g. a broken chain is exit 1); `Err` is a failure to run at all (exit 2).
pub fn dispatch(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Run {
            config: ConfigFile { path: config },
        } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            crate::logging::init(
                match cfg.agent.log_format {
                    LogFormat::Plain => crate::logging::Format::Plain,
                    LogFormat::Json => crate::logging::Format::Json,
                },
                &cfg.agent.log_filter,
            );
            crate::daemon::run(cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig {
            config: ConfigFile { path: config },
        } => Ok(check_config(&config)),
        Command::Demo {
            dir,
            port,
            duration,
            rate,
        } => {
            crate::logging::init(
                crate::logging::Format::Plain,
                "error,rumqttd=off,bobbin_agent::status=info",
            );
            crate::demo::run(&crate::demo::DemoOptions {
                dir,
                port,
                duration: duration.map(std::time::Duration::from_secs),
                rate,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { db } => verify_cmd(&db),
        Command::Trace { code, db } => trace_cmd(&code, &db),
        Command::Backup {
            db,
            out,
            out_dir,
            keep,
        } => match (out, out_dir) {
            (Some(out), _) => backup_cmd(&db, &out),
            (None, Some(dir)) => rotated_backup(&db, &dir, keep),
            (None, None) => anyhow::bail!("give --out FILE or --out-dir DIR"),
        },
        Command::Restore { from, db } => {
            let r = journal::restore::restore(&from, &db)?;
            println!(
                "restored {} to {}; new records go to new journal {} (previous file moved to {})",
                from.display(),
                db.display(),
                r.new_journal,
                r.moved_aside
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "-: there was none".into())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Decode {
            text,
            hex,
            hint,
            config,
        } => decode_cmd(text, hex, hint, config.as_deref()),
        Command::GenCode {
            node,
            region,
            date,
            attribute,
            count,
            config,
        } => gen_code_cmd(&node, &region, date, attribute, count, config.as_deref()),
        Command::Import {
            kind,
            file,
            config: ConfigFile { path: config },
        } => import_cmd(kind, &file, &config),
        Command::Status {
            config: ConfigFile { path: config },
            json,
        } => status_cmd(&config, json),
        Command::Key {
            action:
                crate::cli::KeyAction::Show {
                    config: ConfigFile { path: config },
                },
        } => {
            let cfg = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(sync) = cfg.sync else {
                anyhow::bail!("{}: no [sync] section, so no signing key", config.display());
            };
            let key = bobbin_sync::AgentKey::load_or_create(&sync.key_file)
                .with_context(|| format!("key file {}", sync.key_file.display()))?;
            println!("agent:      {}", cfg.agent.id);
            println!("key file:   {}", sync.key_file.display());
            println!("public key: {}", key.public_key_base64());
            println!("hex:        {}", key.public_key_hex());
            Ok(ExitCode::SUCCESS)
        }
        Command::Devices { json } => {
            let list = bobbin_drivers::list_devices();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{list}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::StressAppend {
            db,
            count,
            in_flight,
        } => stress_append(&db, count, in_flight),
    }
}

/// The `[codes]` settings of a config file, or the defaults without one.
fn codes_config(config: Option<&Path>) -> anyhow::Result<bobbin_codes::DecodeConfig> {
    match config {
        Some(p) => Ok(Config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?.codes),
        None => Ok(bobbin_codes::DecodeConfig::default()),
    }
}

fn decode_cmd(
    text: Option<String>,
    hex: Option<String>,
    hint: Option<String>,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let cfg = codes_config(config)?;
    let raw = match (text, hex) {
        (_, Some(h)) => {
            let cleaned: String = h.chars().filter(|c| !c.is_whitespace()).collect();
            match hex::decode(&cleaned) {
                Ok(b) => b,
                Err(e) => {
                    println!("{}", serde_json::json!({ "error": format!("--hex: {e}") }));
                    return Ok(ExitCode::from(1));
                }
            }
        }
        (Some(t), None) => t.into_bytes(),
        (None, None) => anyhow::bail!("give the scanned TEXT or --hex HEX"),
    };
    match bobbin_codes::decode(&raw, hint.as_deref(), &cfg) {
        Ok(d) => {
            println!("{}", serde_json::to_string(&d)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
            Ok(ExitCode::from(1))
        }
    }
}

fn gen_code_cmd(
    node: &str,
    region: &str,
    date: Option<String>,
    attribute: Option<String>,
    count: usize,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let cfg = codes_config(config)?;
    let date = date.unwrap_or_else(|| chrono::Utc::now().format("%y%m%d").to_string());
    match bobbin_codes::generate_trace_codes(
        &cfg.trace,
        attribute.as_deref(),
        node,
        region,
        &date,
        count,
    ) {
        Ok(codes) => {
            let mut out = std::io::stdout().lock();
            for c in codes {
                writeln!(out, "{c}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn import_cmd(
    kind: crate::masterdata::Kind,
    file: &Path,
    config: &Path,
) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let rows = match crate::masterdata::parse(kind, &text, &cfg.codes) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("{}: {e} (nothing imported)", file.display());
            return Ok(ExitCode::from(1));
        }
    };
    let db = cfg.journal_path();
    let n = crate::masterdata::import_into(&db, &rows)?;
    println!(
        "imported {n} {} rows from {} into {}",
        format!("{kind:?}").to_lowercase(),
        file.display(),
        db.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: ok (agent {}, {} stations, {} devices, journal {})",
                path.display(),
                cfg.agent.id,
                cfg.stations.len(),
                cfg.devices.len(),
                cfg.journal_path().display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn verify_cmd(db: &Path) -> anyhow::Result<ExitCode> {
    let reader = JournalReader::open(db)?;
    let report = verify::verify(&reader)?;
    for j in &report.intact {
        println!("{j}");
    }
    match report.problem {
        None => Ok(ExitCode::SUCCESS),
        Some(p) => {
            println!("BROKEN: {p}");
            Ok(ExitCode::from(1))
        }
    }
}

/// A record as `bobbin trace` prints it: the body inline as JSON, and a readable time.
pub fn record_json(r: &Record) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        if let Ok(body) = serde_json::from_str::<serde_json::Value>(&r.content.body) {
            obj.insert("body".into(), body);
        }
        if let Some(t) = chrono::DateTime::from_timestamp_millis(r.content.time_ms) {
            obj.insert(
                "time".into(),
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .into(),
            );
        }
    }
    v
}

fn trace_cmd(code: &str, db: &Path) -> anyhow::Result<ExitCode> {
    let reader = JournalReader::open(db)?;
    let records = reader.trace(code)?;
    let mut out = std::io::stdout().lock();
    for r in &records {
        writeln!(out, "{}", record_json(r))?;
    }
    if records.is_empty() {
        eprintln!("no records carry trace code {code:?}");
    }
    Ok(ExitCode::SUCCESS)
}

fn backup_cmd(db: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    journal::backup::backup(db, out)
        .with_context(|| format!("backing up {} to {}", db.display(), out.display()))?;
    let report = verify::verify(&JournalReader::open(out)?)?;
    match report.problem {
        None => {
            for j in &report.intact {
                println!("{}: {j}", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(p) => {
            // The source itself is damaged: the copy is faithful, and says so.
            println!("{}: copied, but BROKEN: {p}", out.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn status_cmd(config: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut addr = cfg.status.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/api/status");
    bobbin_sync::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let text = rt
        .block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?;
            let mut req = client.get(&url);
            if let Some(t) = &cfg.status.token {
                req = req.bearer_auth(t);
            }
            req.send().await?.error_for_status()?.text().await
        })
        .with_context(|| format!("asking the agent at {url} (is `bobbin run` running?)"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{url} answered no JSON"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", crate::status::table::render(&v));
    }
    Ok(ExitCode::SUCCESS)
}

fn rotated_backup(db: &Path, dir: &Path, keep: usize) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = format!("journal-{}.db", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let code = backup_cmd(db, &dir.join(name))?;
    // Rotation only after a good copy: a failing backup never deletes the old ones.
    if code == ExitCode::SUCCESS {
        let mut copies: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".db"))
            })
            .collect();
        copies.sort();
        let excess = copies.len().saturating_sub(keep.max(1));
        for old in &copies[..excess] {
            std::fs::remove_file(old).with_context(|| format!("removing {}", old.display()))?;
            println!("removed old backup {}", old.display());
        }
    }
    Ok(code)
}

fn stress_append(db: &Path, count: u64, in_flight: usize) -> anyhow::Result<ExitCode> {
    let journal = journal::Journal::open(&JournalConfig::at(db))?;
    let handle = journal.handle();
    let in_flight = in_flight.max(1);
    let mut pending = std::collections::VecDeque::with_capacity(in_flight);
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    loop {
        while pending.len() < in_flight && (count == 0 || n < count) {
            n += 1;
            let content = RecordContent {
                kind: "scan".into(),
                time_ms: journal::now_ms(),
                station: Some(format!("st-{:02}", n % 16)),
                worker: Some(format!("W{:04}", n % 200)),
                trace_code: Some(format!("STRESS{n:08}")),
                order: Some("PO-STRESS".into()),
                process: Some("stress".into()),
                body: format!("{{\"n\":{n}}}"),
            };
            pending.push_back(handle.blocking_enqueue(content)?);
        }
        let Some(p) = pending.pop_front() else { break };
        let c = p.blocking_wait()?;
        // One line per durable record; the crash test trusts exactly these lines.
        writeln!(out, "committed {} {}", c.seq, c.hash)?;
        out.flush()?;
    }
    drop(out);
    journal.close()?;
    Ok(ExitCode::SUCCESS)
}
