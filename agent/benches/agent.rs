//! Whole-agent benchmarks on the real `bobbin` binary:
//!
//! - scan-to-feedback latency: a pty scanner sends bundle scans one at a time; the time from
//!   writing the scan to reading the scanner's good/bad feedback byte back, with the journal
//!   on disk (decode, claim check, commit with synchronous=FULL, feedback);
//! - start to READY (systemd notify) with a 1,000,000-record journal;
//! - idle RSS with 50 configured stations.
//!
//! Run: `cargo bench -p bobbin-agent --bench agent` (add `-- --quick` for a short run).

use bobbin_tests::PtyScanner;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BOBBIN: &str = env!("CARGO_BIN_EXE_bobbin");

fn spawn(config: &Path, notify: Option<&Path>) -> Child {
    let mut cmd = Command::new(BOBBIN);
    cmd.args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(n) = notify {
        cmd.env("NOTIFY_SOCKET", n);
    }
    cmd.spawn().expect("spawn bobbin")
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default().as_secs_f64() * 1e3
}

fn scan_to_feedback(scans: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let mut scanner = PtyScanner::open(&dir.path().join("scanner"));
    let config = dir.path().join("bobbin.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"bench\"\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:0\"\n\
             [[devices]]\nid = \"scan-1\"\nkind = \"serial\"\npath = \"{}\"\n[devices.feedback]\ngood = \"06\"\nbad = \"15\"\n\
             [[stations]]\nid = \"sew-01\"\nkind = \"sewing\"\nprocess = \"collar\"\ndevices = [\"scan-1\"]\n",
            scanner.link.display()
        ),
    )
    .expect("config");
    let workers = dir.path().join("w.csv");
    std::fs::write(&workers, "id,name,team,badge\nW1,A,A,W:E1\n").expect("csv");
    let ok = Command::new(BOBBIN)
        .args(["import", "workers"])
        .arg(&workers)
        .arg("--config")
        .arg(&config)
        .status()
        .expect("import");
    assert!(ok.success());
    let codes = Command::new(BOBBIN)
        .args([
            "gen-code", "--node", "WS000001", "--region", "441900", "--count",
        ])
        .arg(scans.to_string())
        .output()
        .expect("gen-code");
    let codes: Vec<String> = String::from_utf8_lossy(&codes.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut child = spawn(&config, None);
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    // Until the agent opens the port, the pty echoes what we write: wait for the device.
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("connected") => break,
            Some(Ok(_)) => {}
            _ => panic!("the agent exited before the scanner connected"),
        }
    }
    std::thread::spawn(move || while let Some(Ok(_)) = lines.next() {});
    scanner.scan("W:E1");
    assert_eq!(
        scanner.read_feedback(1, Duration::from_secs(10)),
        vec![0x06],
        "login"
    );
    let mut lat = Vec::with_capacity(scans);
    for code in &codes {
        let t = Instant::now();
        scanner.scan(code);
        let b = scanner.read_feedback(1, Duration::from_secs(10));
        lat.push(t.elapsed());
        assert_eq!(b, vec![0x06], "every claim counts");
    }
    stop(child);
    lat.sort();
    println!(
        "scan-to-feedback, {} bundle claims, journal on disk: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

fn start_to_ready(records: u64, runs: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let t = Instant::now();
    let ok = Command::new(BOBBIN)
        .args([
            "stress-append",
            "--count",
            &records.to_string(),
            "--in-flight",
            "4096",
            "--db",
        ])
        .arg(data.join("journal.db"))
        .stdout(Stdio::null())
        .status()
        .expect("fill");
    assert!(ok.success());
    let size = std::fs::metadata(data.join("journal.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "filled a {records}-record journal ({:.0} MB) in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let config = dir.path().join("bobbin.toml");
    std::fs::write(&config, "[agent]\nid = \"bench\"\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:0\"\n[[stations]]\nid = \"s\"\nkind = \"sewing\"\n").expect("config");
    let mut times = Vec::new();
    for i in 0..runs {
        let sock_path = dir.path().join(format!("notify-{i}.sock"));
        let sock = UnixDatagram::bind(&sock_path).expect("socket");
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let t = Instant::now();
        let child = spawn(&config, Some(&sock_path));
        let mut buf = [0u8; 512];
        loop {
            let n = sock.recv(&mut buf).expect("READY within 30 s");
            if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
                break;
            }
        }
        times.push(t.elapsed());
        stop(child);
    }
    times.sort();
    println!(
        "start to READY with a {records}-record journal, {runs} runs: median {:.0} ms, max {:.0} ms",
        pct(&times, 0.5),
        pct(&times, 1.0)
    );
}

fn idle_rss(stations: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let mut cfg = String::from(
        "[agent]\nid = \"bench\"\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:0\"\n",
    );
    for i in 0..stations {
        cfg.push_str(&format!(
            "[[devices]]\nid = \"scan-{i}\"\nkind = \"serial\"\npath = \"/dev/serial/by-id/missing-{i}\"\n\
             [[stations]]\nid = \"st-{i:02}\"\nkind = \"sewing\"\nprocess = \"p{i}\"\ndevices = [\"scan-{i}\"]\n"
        ));
    }
    let config = dir.path().join("bobbin.toml");
    std::fs::write(&config, cfg).expect("config");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("socket");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let child = spawn(&config, Some(&sock_path));
    let mut buf = [0u8; 512];
    loop {
        let n = sock.recv(&mut buf).expect("READY");
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            break;
        }
    }
    // Let devices go through a few retries and the status cells settle.
    std::thread::sleep(Duration::from_secs(3));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    println!(
        "idle with {stations} stations and {stations} (missing) serial devices: RSS {:.1} MB, peak {:.1} MB",
        field("VmRSS:"),
        field("VmHWM:")
    );
    stop(child);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    scan_to_feedback(if quick { 200 } else { 1000 });
    idle_rss(50);
    start_to_ready(if quick { 100_000 } else { 1_000_000 }, 5);
}
