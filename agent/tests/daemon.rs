//! `bobbin run`: starts on the example config with nothing attached, says what it waits
//! for, and stops cleanly on SIGTERM and SIGINT.

mod common;

use bobbin_agent::journal::{verify, JournalReader};
use common::{bobbin, wait_until, Watched};
use std::time::Duration;

/// Runs `bobbin run` on `config`, sends `signal` as soon as a stderr line contains
/// `on_line`, and returns stderr once the agent has exited successfully.
fn run_then_signal(config: &std::path::Path, on_line: &str, signal: i32) -> Vec<String> {
    let mut cmd = bobbin();
    cmd.args(["run", "--config"])
        .arg(config)
        .env_remove("RUST_LOG");
    let agent = Watched::spawn(cmd);
    wait_until(on_line, Duration::from_secs(20), || {
        agent.stderr_has(on_line)
    });
    agent.signal(signal);
    let (status, _, err) = agent.wait(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}; stderr {err:?}");
    err
}

fn run_example_and_stop(signal: i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The example as shipped, beside a fresh data directory.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.example.toml");
    let config = dir.path().join("config.toml");
    // The example as shipped, but on a free status port so tests can run side by side.
    let text = std::fs::read_to_string(example).expect("read example");
    assert!(text.contains("listen = \"127.0.0.1:8088\""));
    std::fs::write(
        &config,
        text.replace("listen = \"127.0.0.1:8088\"", "listen = \"127.0.0.1:0\""),
    )
    .expect("write config");
    let err = run_then_signal(&config, "running; waiting for scans", signal);
    assert!(err.iter().any(|l| l.contains("journal open")), "{err:?}");
    assert!(err.iter().any(|l| l.contains("stopped cleanly")), "{err:?}");
    let db = dir.path().join("bobbin-data/journal.db");
    let reader = JournalReader::open(&db).expect("journal created under data_dir");
    assert!(verify::verify(&reader).expect("verify").problem.is_none());
    // A clean stop checkpoints and truncates the WAL.
    let wal = dir.path().join("bobbin-data/journal.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0);
}

#[test]
fn runs_on_the_example_config_and_stops_on_sigterm() {
    run_example_and_stop(libc::SIGTERM);
}

#[test]
fn stops_on_sigint_too() {
    run_example_and_stop(libc::SIGINT);
}

#[test]
fn a_bad_config_stops_run_with_the_key_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_config(dir.path(), "[journal]\nqueue = 0\n");
    let (code, _, err) = common::run(&["run", "--config", config.to_str().expect("path")]);
    assert_eq!(code, 2);
    assert!(err.contains("journal.queue: must be between"), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("[status]", "[status]\n")
        .replace(
            "data_dir = \"data\"\n",
            "data_dir = \"data\"\nlog_format = \"json\"\n",
        );
    std::fs::write(&config, text).expect("config");
    let err = run_then_signal(&config, "running;", libc::SIGTERM);
    assert!(!err.is_empty());
    for line in &err {
        let v: serde_json::Value = serde_json::from_str(line).expect("each log line is JSON");
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
}

#[test]
fn a_sigterm_during_start_up_is_a_clean_stop() {
    // "journal open" is logged while the tasks are still starting. The handlers must be in
    // place by then, or SIGTERM's default action kills the agent half-way (CI saw exactly
    // that once, when the handlers went in after "running").
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::write_config(dir.path(), "");
    let err = run_then_signal(&config, "journal open", libc::SIGTERM);
    assert!(err.iter().any(|l| l.contains("stopped cleanly")), "{err:?}");
}
