//! Helpers shared by the agent's process-level tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `bobbin` binary under test.
pub fn bobbin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bobbin"))
}

/// Starts `bobbin run --config CONFIG`, its output collected.
pub fn run_agent(config: &Path) -> Watched {
    let mut cmd = bobbin();
    cmd.args(["run", "--config"]).arg(config);
    Watched::spawn(cmd)
}

/// Runs `bobbin ARGS`, returning (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = bobbin().args(args).output().expect("run bobbin");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `cond` until it holds or `limit` passes; panics with `what` on timeout.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process whose output lines are collected in the background.
pub struct Watched {
    pub child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    src: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(src).lines() {
            let Ok(line) = line else { break };
            into.lock().expect("lines").push(line);
        }
    })
}

impl Watched {
    /// Spawns `cmd` with piped output.
    pub fn spawn(mut cmd: Command) -> Watched {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Watched {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// True once some stderr line contains `needle`.
    pub fn stderr_has(&self, needle: &str) -> bool {
        self.stderr
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Sends `sig` to the child.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for exit (with a deadline) and for the output readers to drain.
    pub fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "process did not exit within {limit:?}; stderr: {:?}",
                    self.stderr.lock().expect("lines")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.stdout.lock().expect("lines").clone();
        let err = self.stderr.lock().expect("lines").clone();
        (status, out, err)
    }
}

impl Drop for Watched {
    /// A test that fails half-way must not leave its agent running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A config file in `dir` with a data dir inside it, plus `extra` TOML appended.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("bobbin.toml");
    std::fs::write(
        &path,
        format!("[agent]\nid = \"test-agent\"\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:0\"\n{extra}"),
    )
    .expect("write config");
    path
}

/// A new, valid DG trace code for a bundle ticket, from `bobbin gen-code`.
pub fn new_trace_code() -> String {
    let (rc, out, err) = run(&[
        "gen-code", "--node", "WS000001", "--region", "441900", "--date", "261123",
    ]);
    assert_eq!(rc, 0, "gen-code failed: {err}");
    out.trim().to_string()
}

/// Writes `csv` to `<dir>/<kind>.csv` and loads it with `bobbin import KIND`.
pub fn import_csv(dir: &Path, config: &str, kind: &str, csv: &str) {
    let file = dir.join(format!("{kind}.csv"));
    std::fs::write(&file, csv).expect("write csv");
    let (rc, _, err) = run(&[
        "import",
        kind,
        file.to_str().expect("utf-8 path"),
        "--config",
        config,
    ]);
    assert_eq!(rc, 0, "import {kind} failed: {err}");
}
