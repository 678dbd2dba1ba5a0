//! `bobbin demo`: a whole workshop on one PC, at accelerated speed.
//!
//! It writes a config into a demo directory, creates a simulated serial scanner (a pty) per
//! station, imports workers and bundle tickets, starts the reference receiver on loopback
//! and the agent itself, and then plays a shift: workers badge in, claim bundles, scan a
//! wrong ticket now and then, inspect at QC. Everything flows through the real paths —
//! tokio-serial, the decoders, the journal, the uploader, the receiver — so what the page
//! shows is what a workshop would see.

use crate::config::Config;
use crate::masterdata::{self, Kind};
use anyhow::Context;
use bobbin_drivers::sim::PtyScanner;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The demo's stations: id, kind, process.
const STATIONS: &[(&str, &str, Option<&str>)] = &[
    ("sew-01", "sewing", Some("attach-collar")),
    ("sew-02", "sewing", Some("set-sleeve")),
    ("sew-03", "sewing", Some("side-seam")),
    ("sew-04", "sewing", Some("hem")),
    ("iron-01", "ironing", Some("press")),
    ("qc-01", "qc", None),
    ("pack-01", "packing", Some("pack")),
];

/// Options of `bobbin demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the config, journal and receiver database go (emptied first).
    pub dir: PathBuf,
    /// Port of the supervisor page.
    pub port: u16,
    /// Stop after this long; `None` runs until Ctrl-C.
    pub duration: Option<Duration>,
    /// Scans per second across the workshop.
    pub rate: f64,
}

/// Runs the demo.
pub fn run(opts: &DemoOptions) -> anyhow::Result<()> {
    let dir = &opts.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("data"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;

    // A receiver on loopback, registered with this agent's key and token.
    let key_file = dir.join("data/agent.key");
    let key = bobbin_sync::AgentKey::load_or_create(&key_file)?;
    let registry = bobbin_sync::receiver::AgentRegistry::from_toml(&format!(
        "[[agent]]\nid = \"demo-workshop\"\ntoken = \"demo-token\"\npublic_key = \"{}\"\n",
        key.public_key_base64()
    ))?;
    let receiver_db = dir.join("receiver.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let receiver_port = listener.local_addr()?.port();
    rt.spawn(bobbin_sync::receiver::serve(
        listener,
        bobbin_sync::receiver::ReceiverConfig::new(&receiver_db, registry),
    ));

    // One simulated scanner per station.
    let mut scanners = Vec::new();
    let mut devices = String::new();
    let mut stations = String::new();
    for (id, kind, process) in STATIONS {
        let link = dir.join(format!("scanner-{id}"));
        scanners.push(PtyScanner::try_open(&link).context("creating a simulated scanner")?);
        devices.push_str(&format!(
            "[[devices]]\nid = \"scan-{id}\"\nkind = \"serial\"\npath = \"{}\"\n[devices.feedback]\ngood = \"06\"\nbad = \"15\"\n\n",
            link.display()
        ));
        stations.push_str(&format!(
            "[[stations]]\nid = \"{id}\"\nkind = \"{kind}\"\nteam = \"{}\"\ndevices = [\"scan-{id}\"]\n{}\n",
            if id.starts_with("sew-0") && id < &"sew-03" { "A" } else { "B" },
            process.map(|p| format!("process = \"{p}\"\n")).unwrap_or_default()
        ));
    }
    // Machines: a sewing machine at each sewing station, an iron at the ironing station,
    // publishing to the agent's embedded broker.
    let mqtt_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut machines = String::new();
    for (id, kind, _) in STATIONS {
        let m = match *kind {
            "sewing" => format!("sm-{}", &id[4..]),
            "ironing" => format!("ir-{}", &id[5..]),
            _ => continue,
        };
        let mkind = if m.starts_with("sm") {
            "sewing"
        } else {
            "iron"
        };
        machines.push_str(&format!(
            "[[machines]]\nid = \"{m}\"\nkind = \"{mkind}\"\nstation = \"{id}\"\ntopic = \"machines/{m}/data\"\n{}\n",
            if mkind == "iron" { "temp_range_c = [140.0, 170.0]\n" } else { "" }
        ));
    }
    let config_text = format!(
        "# Written by `bobbin demo`.\n[agent]\nid = \"demo-workshop\"\ndata_dir = \"data\"\n\n\
         [status]\nlisten = \"127.0.0.1:{}\"\n\n\
         [mqtt]\nenabled = true\nlisten = \"127.0.0.1:{mqtt_port}\"\n\n{machines}\
         [sync]\nurl = \"http://127.0.0.1:{receiver_port}\"\ntoken = \"demo-token\"\nagent_id = \"demo-workshop\"\n\
         key_file = \"data/agent.key\"\nbackoff_max = \"2s\"\nbatch_max_records = 200\n\n{devices}{stations}",
        opts.port
    );
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, &config_text)?;
    let cfg = Config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;

    // Master data: workers with badges, bundles with DG trace codes.
    let workers: Vec<(String, String)> = (1..=STATIONS.len() + 1)
        .map(|i| (format!("W{:04}", i), format!("W:E{}", 1000 + i)))
        .collect();
    let mut csv = String::from("id,name,team,badge\n");
    for (i, (id, badge)) in workers.iter().enumerate() {
        csv.push_str(&format!("{id},Worker {i},A,{badge}\n"));
    }
    let rows = masterdata::parse(Kind::Workers, &csv, &cfg.codes)?;
    masterdata::import_into(&cfg.journal_path(), &rows)?;
    let today = chrono::Utc::now().format("%y%m%d").to_string();
    let codes = bobbin_codes::generate_trace_codes(
        &cfg.codes.trace,
        None,
        "DEMO0001",
        "441900",
        &today,
        400,
    )?;
    let mut csv = String::from("trace_code,order,style,colour,size,quantity\n");
    for (i, c) in codes.iter().enumerate() {
        let size = ["S", "M", "L", "XL"][i % 4];
        csv.push_str(&format!(
            "{c},PO-DEMO-{},T-100,navy,{size},12\n",
            1 + i / 200
        ));
    }
    let rows = masterdata::parse(Kind::Bundles, &csv, &cfg.codes)?;
    masterdata::import_into(&cfg.journal_path(), &rows)?;

    // The agent, in this process, until the demo ends.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = {
        let cfg = cfg.clone();
        std::thread::spawn(move || crate::daemon::run_until(cfg, Some(stop_rx)))
    };
    println!(
        "Bobbin demo: {} stations, simulated scanners, a reference receiver",
        STATIONS.len()
    );
    println!("  supervisor page:  http://127.0.0.1:{}/", opts.port);
    println!(
        "  receiver:         http://127.0.0.1:{receiver_port}/  (database {})",
        receiver_db.display()
    );
    println!("  config:           {}", config_path.display());
    match opts.duration {
        Some(d) => println!("  running for {} s (Ctrl-C stops earlier)", d.as_secs()),
        None => println!("  running until Ctrl-C"),
    }

    // The machines start publishing once the agent's broker is up.
    let (machines_stop_tx, machines_stop) = tokio::sync::watch::channel(false);
    let machine_ids: Vec<String> = cfg.machines.iter().map(|m| m.id.clone()).collect();
    rt.spawn(publish_machines(mqtt_port, machine_ids, machines_stop));
    println!("  machines:         mqtt://127.0.0.1:{mqtt_port} (topics machines/<id>/data)");

    let shift = Shift::new(&workers, &codes);
    let played = play(shift, &mut scanners, opts, &agent);
    let _ = machines_stop_tx.send(true);
    // Let the uploader catch up, so the receiver holds what the journal holds.
    wait_for_upload(&cfg.journal_path(), &receiver_db, Duration::from_secs(20));
    let _ = stop_tx.send(true);
    let outcome = agent
        .join()
        .map_err(|_| anyhow::anyhow!("the agent thread panicked"))?;
    outcome?;
    println!("\nDemo over: {played} scans played.");
    summarise(&receiver_db)?;
    Ok(())
}

/// The simulated shift: who works where, and the bundles still to do.
struct Shift {
    workers: Vec<(String, String)>,
    codes: Vec<String>,
    next_bundle: Vec<usize>,
    logged_in: Vec<bool>,
    rng: rand::rngs::StdRng,
}

impl Shift {
    fn new(workers: &[(String, String)], codes: &[String]) -> Self {
        Shift {
            workers: workers.to_vec(),
            codes: codes.to_vec(),
            next_bundle: vec![0; STATIONS.len()],
            logged_in: vec![false; STATIONS.len()],
            rng: rand::rngs::StdRng::from_os_rng(),
        }
    }

    /// The next scan at station `i`.
    fn next_scan(&mut self, i: usize) -> String {
        if !self.logged_in[i] {
            self.logged_in[i] = true;
            return self.workers[i].1.clone();
        }
        let n = self.next_bundle[i];
        let code = self.codes[n % self.codes.len()].clone();
        let roll: f64 = self.rng.random();
        if STATIONS[i].1 == "qc" && n > 0 && roll < 0.6 {
            // Inspection steps on the open bundle: a quantity and a result.
            return if roll < 0.2 {
                "R:FAIL".into()
            } else {
                "R:PASS".into()
            };
        }
        if roll < 0.04 {
            // A torn ticket: one character wrong; the check character catches it.
            let mut b = code.into_bytes();
            b[10] = if b[10] == b'7' { b'8' } else { b'7' };
            return String::from_utf8_lossy(&b).into_owned();
        }
        if roll < 0.07 && n > 0 {
            // The same coupon twice: acknowledged as a duplicate, counted once.
            return self.codes[(n - 1) % self.codes.len()].clone();
        }
        self.next_bundle[i] += 1;
        code
    }
}

fn play(
    mut shift: Shift,
    scanners: &mut [PtyScanner],
    opts: &DemoOptions,
    agent: &std::thread::JoinHandle<anyhow::Result<()>>,
) -> u64 {
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / opts.rate.max(0.1));
    // Give the agent a moment to open the ports (before that, a pty echoes what is written).
    std::thread::sleep(Duration::from_millis(1500));
    let mut played = 0u64;
    let mut i = 0usize;
    while opts.duration.is_none_or(|d| start.elapsed() < d) && !agent.is_finished() {
        let scan = shift.next_scan(i);
        if scanners[i].send(&scan).is_ok() {
            played += 1;
        }
        for s in scanners.iter_mut() {
            s.drain();
        }
        i = (i + 1) % scanners.len();
        std::thread::sleep(every);
    }
    played
}

/// Sewing machines report cumulative stitch and trim counters; the iron its soleplate
/// temperature, now and then overheating past its 170 °C limit.
async fn publish_machines(
    port: u16,
    machines: Vec<String>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let cfg = bobbin_drivers::mqtt::ClientConfig::new("127.0.0.1", port, "demo-machines");
    let (handle, mut events, _task) = bobbin_drivers::mqtt::spawn_client(cfg, stop.clone());
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut seq = 0u64;
    let mut stitches = vec![0u64; machines.len()];
    while !*stop.borrow() {
        tick.tick().await;
        seq += 1;
        let ts = chrono::Utc::now().timestamp_millis();
        for (i, m) in machines.iter().enumerate() {
            let payload = if m.starts_with("sm") {
                stitches[i] += rng.random_range(200..600);
                serde_json::json!({"seq": seq, "ts": ts, "stitches": stitches[i],
                    "trims": stitches[i] / 150, "run_s": seq / 2, "needle_stops": stitches[i] / 90})
            } else {
                let hot = rng.random::<f64>() < 0.08;
                let temp = if hot {
                    rng.random_range(172.0..185.0)
                } else {
                    rng.random_range(148.0..162.0)
                };
                serde_json::json!({"seq": seq, "ts": ts, "temp_c": temp, "steam_bar": 4.2, "dwell_s": 8})
            };
            // Before the agent's broker is up this fails; the next tick tries again.
            let _ = handle.publish(
                &format!("machines/{m}/data"),
                1,
                false,
                payload.to_string().into_bytes(),
            );
        }
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(-1)
}

fn wait_for_upload(journal: &Path, receiver: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let local = count(journal, "SELECT COALESCE(MAX(seq), 0) FROM records");
        let remote = count(
            receiver,
            "SELECT COALESCE(MAX(contiguous_seq), 0) FROM journals",
        );
        if local > 0 && local == remote {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("the receiver had not caught up after {} s", limit.as_secs());
}

fn summarise(receiver: &Path) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(receiver)?;
    let mut stmt = conn.prepare(
        "SELECT COALESCE(station, '-'), kind, count(*) FROM records GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    println!("The receiver holds:");
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (station, kind, n) = row?;
        println!("  {station:<8} {kind:<20} {n}");
    }
    Ok(())
}
