//! The supervisor page in a real browser against the real `bobbin` binary: two stations with
//! a pty scanner each; headless Chromium, driven by Playwright from
//! `tests/browser/supervisor.mjs`, checks that the page loads, shows both stations, updates
//! live after scans (no reload), switches language, and says "offline" when the agent stops.
//! Screenshots are kept in `<target>/test-artifacts/`.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `$BOBBIN_CHROMIUM`), Node.js and `npm ci` in
//! `tests/browser`. Without them it prints a notice and passes — unless
//! `BOBBIN_REQUIRE_BROWSER=1`, as CI sets, where a missing piece fails it.

mod common;

use bobbin_tests::{free_port, http_get, wait_until, PtyScanner};
use common::{run_agent, Watched};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// Where screenshots are kept: `<target>/test-artifacts`.
fn artifact_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir holds tmp/")
        .join("test-artifacts")
}

/// The browser tooling, or why it is not there.
fn tooling() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("BOBBIN_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.is_file() {
        return Err(format!(
            "no Chromium at {} (apt-get install chromium, or set BOBBIN_CHROMIUM)",
            chromium.display()
        ));
    }
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok {
        return Err("no `node` on PATH (apt-get install nodejs)".into());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Err(format!(
            "playwright-core is not installed: run `npm ci` in {}",
            dir.display()
        ));
    }
    Ok((chromium, dir.join("supervisor.mjs")))
}

/// Waits for the node script to print `step NAME`; fails at once, with all it printed, if
/// the script exits first.
fn wait_step(mut node: Watched, name: &str) -> Watched {
    let line = format!("step {name}");
    let deadline = Instant::now() + LIMIT;
    loop {
        if node.stdout.lock().expect("lines").contains(&line) {
            return node;
        }
        if node.child.try_wait().expect("try_wait").is_some() {
            // wait() joins the output readers, so the report has the script's last words.
            let (status, out, err) = node.wait(LIMIT);
            panic!(
                "the browser script exited ({status}) before `{line}`:\n{}\n{}",
                out.join("\n"),
                err.join("\n")
            );
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for `{line}` from the browser script; stderr:\n{}",
            node.stderr.lock().expect("lines").join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops the agent and the browser script if the test panics half-way (on success both
/// have already exited and been waited for). SIGTERM: the agent shuts down cleanly, and
/// Playwright closes Chromium on it.
struct StopOnPanic(Vec<u32>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for &pid in &self.0 {
                // SAFETY: kill(2) on a child of this process; no memory is involved.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
        }
    }
}

#[test]
fn supervisor_page_in_a_browser() {
    let (chromium, script) = match tooling() {
        Ok(t) => t,
        Err(why) if std::env::var("BOBBIN_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("BOBBIN_REQUIRE_BROWSER=1 but {why}")
        }
        Err(why) => {
            eprintln!("NOTICE: supervisor page browser test skipped: {why}");
            return;
        }
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut scan1 = PtyScanner::open(&dir.path().join("scanner-1"));
    let mut scan2 = PtyScanner::open(&dir.path().join("scanner-2"));
    let port = free_port();
    let config = dir.path().join("bobbin.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
id = "page-agent"
data_dir = "data"

[status]
listen = "127.0.0.1:{port}"

[[devices]]
id = "scan-1"
kind = "serial"
path = "{}"
[devices.feedback]
good = "06"
bad = "15"

[[devices]]
id = "scan-2"
kind = "serial"
path = "{}"
[devices.feedback]
good = "06"
bad = "15"

[[stations]]
id = "sew-01"
kind = "sewing"
team = "A"
process = "attach-collar"
devices = ["scan-1"]

[[stations]]
id = "sew-02"
kind = "sewing"
team = "B"
process = "hem"
devices = ["scan-2"]
"#,
            scan1.link.display(),
            scan2.link.display()
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("path");

    // Master data: the badge W:E1042 is W0042, and one bundle of 12 pieces.
    let code = common::new_trace_code();
    common::import_csv(
        dir.path(),
        cfg,
        "workers",
        "id,name,team,badge\nW0042,李娜,A,W:E1042\n",
    );
    common::import_csv(
        dir.path(),
        cfg,
        "bundles",
        &format!("trace_code,order,style,colour,size,quantity\n{code},PO-7,T100,red,M,12\n"),
    );

    let agent = run_agent(&config);
    let mut guard = StopOnPanic(vec![agent.child.id()]);
    let addr = format!("127.0.0.1:{port}");
    wait_until("the status API to answer", LIMIT, || {
        http_get(&addr, "/api/status", None).is_ok_and(|(code, body)| {
            code == 200 && body.matches(r#""state":"connected""#).count() == 2
        })
    });

    // The page is opened with a token, as a tablet would be; the page must pass it on as a
    // bearer header (on loopback the agent does not demand it).
    let artifacts = artifact_dir();
    let mut node_cmd = Command::new("node");
    node_cmd
        .arg(&script)
        .arg(format!("http://{addr}/?token=page-test-token-0123456789"))
        .arg(&artifacts)
        .env("BOBBIN_CHROMIUM", &chromium)
        .current_dir(script.parent().expect("dir"));
    let node = Watched::spawn(node_cmd);
    guard.0.push(node.child.id());

    let node = wait_step(node, "ready");
    // W0042 badges in at sew-01 and finishes the bundle; an unknown badge at sew-02 is refused.
    scan1.scan("W:E1042");
    assert_eq!(
        scan1.read_feedback(1, LIMIT),
        vec![0x06],
        "login acknowledged"
    );
    scan1.scan(&code);
    assert_eq!(scan1.read_feedback(1, LIMIT), vec![0x06], "bundle counted");
    scan2.scan("W:E9999");
    assert_eq!(
        scan2.read_feedback(1, LIMIT),
        vec![0x15],
        "unknown badge refused"
    );

    let node = wait_step(node, "stop-agent");
    agent.signal(libc::SIGTERM);
    let (status, _, err) = agent.wait(LIMIT);
    assert!(status.success(), "agent exit: {err:?}");

    let (status, out, err) = node.wait(LIMIT);
    assert!(
        status.success() && out.iter().any(|l| l == "step done"),
        "browser checks failed ({status}):\n{}\n{}",
        out.join("\n"),
        err.join("\n")
    );
    let shot = artifacts.join("supervisor.png");
    let png = std::fs::read(&shot).expect("the screenshot is kept");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} is not a real screenshot",
        shot.display()
    );
    eprintln!(
        "supervisor page checked in {:.1?}; screenshots in {}",
        started.elapsed(),
        artifacts.display()
    );
}
