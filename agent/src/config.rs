//! The agent's TOML configuration: typed, unknown keys refused, validated at load.
//!
//! Every error names the key it is about, as a path (`stations[2].devices[0]: no device
//! named "scan-9"`), on one line, so a technician can fix the file without reading code.
//! Each key is documented beside its default in `config.example.toml`, which a test checks
//! against this module.

use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who this agent is and where it keeps its data.
    pub agent: AgentSection,
    /// The local journal.
    #[serde(default)]
    pub journal: JournalSection,
    /// How scans are decoded.
    #[serde(default)]
    pub codes: bobbin_codes::DecodeConfig,
    /// Scanners and readers.
    #[serde(default)]
    pub devices: Vec<bobbin_drivers::DeviceConfig>,
    /// The stations of this workshop.
    #[serde(default)]
    pub stations: Vec<StationConfig>,
    /// Equipment ingest over MQTT (sewing machines, irons).
    #[serde(default)]
    pub mqtt: crate::equipment::MqttConfig,
    /// The machines that report over MQTT.
    #[serde(default)]
    pub machines: Vec<crate::equipment::MachineConfig>,
    /// The status server (supervisor page, API, metrics).
    #[serde(default)]
    pub status: crate::status::StatusConfig,
    /// Upload to the central platform; without it the agent keeps everything locally.
    #[serde(default)]
    pub sync: Option<bobbin_sync::SyncConfig>,
}

/// `[agent]`: identity, data directory, logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// This agent's id, unique across the platform (letters, digits, `.`, `_`, `-`).
    pub id: String,
    /// Directory for the journal, keys and backups.
    pub data_dir: PathBuf,
    /// Log output: `plain` for people, `json` for log collectors.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Default log filter when `RUST_LOG` is not set.
    #[serde(default = "default_log_filter")]
    pub log_filter: String,
    /// The workshop's offset from UTC in minutes (China: 480): decides the local date of
    /// work records and when "pieces today" resets. Records themselves carry UTC.
    #[serde(default = "default_utc_offset")]
    pub utc_offset_minutes: i32,
}

fn default_utc_offset() -> i32 {
    480
}

fn default_log_filter() -> String {
    "info".into()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[journal]`: the SQLite journal's tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSection {
    /// The journal file; default `<data_dir>/journal.db`.
    pub path: Option<PathBuf>,
    /// Most records one transaction commits.
    pub max_batch: usize,
    /// Records that may wait for the writer before inputs are slowed down.
    pub queue: usize,
    /// Milliseconds between background WAL checkpoints.
    pub checkpoint_interval_ms: u64,
    /// Days an uploaded record is kept locally before it is pruned (DG-7.5: at least 730).
    /// Records not yet uploaded are never pruned.
    pub retention_days: u32,
    /// Raise the disk alarm when the journal's filesystem has less free space (MB).
    pub min_free_mb: u64,
    /// Raise the disk alarm when the journal file grows past this size (MB); 0 = no budget.
    pub budget_mb: u64,
}

impl Default for JournalSection {
    fn default() -> Self {
        JournalSection {
            path: None,
            max_batch: 4096,
            queue: 16_384,
            checkpoint_interval_ms: 1000,
            retention_days: 730,
            min_free_mb: 500,
            budget_mb: 0,
        }
    }
}

/// What a station does (DG-6.2 participants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StationKind {
    /// Cut-piece inspection (DG-A2).
    CutInspection,
    /// Sewing.
    Sewing,
    /// Finished-garment inspection (DG-A3).
    Qc,
    /// Ironing and pressing.
    Ironing,
    /// Packing.
    Packing,
}

/// `[[stations]]`: one work place.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    /// Station id, unique in this workshop.
    pub id: String,
    /// What the station does.
    pub kind: StationKind,
    /// Team (组别) the station belongs to.
    #[serde(default)]
    pub team: Option<String>,
    /// Ids of the `[[devices]]` that scan at this station.
    #[serde(default)]
    pub devices: Vec<String>,
    /// A fixed process; without one, a worker chooses by scanning a process card.
    #[serde(default)]
    pub process: Option<String>,
    /// Ids of MQTT machines (sewing machines, irons) bound to this station.
    #[serde(default)]
    pub machines: Vec<String>,
    /// Where a work record's start and end come from.
    #[serde(default)]
    pub timing: crate::station::Timing,
    /// What to do with a bundle that is not in the imported master data.
    #[serde(default)]
    pub unknown_bundles: crate::station::UnknownBundlePolicy,
}

/// A configuration error: the key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when loaded from one.
    pub file: Option<PathBuf>,
    /// The key path, e.g. `stations[2].devices[0]`; empty for whole-file problems.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        file: None,
        key: key.into(),
        problem: problem.into(),
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_owned()),
            key: String::new(),
            problem: format!("cannot read: {e}"),
        })?;
        let mut cfg = Config::parse(&text).map_err(|mut e| {
            e.file = Some(path.to_owned());
            e
        })?;
        cfg.bind_machines();
        // Relative paths in the file are relative to the file, not to wherever the agent
        // happens to be started from.
        if let Some(dir) = path.parent() {
            let rebase = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            };
            rebase(&mut cfg.agent.data_dir);
            if let Some(sync) = &mut cfg.sync {
                rebase(&mut sync.key_file);
                if let Some(t) = &mut sync.token_file {
                    rebase(t);
                }
            }
        }
        Ok(cfg)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| err("", located(text, &e)))?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            err(key, located(text, e.inner()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what types alone cannot: ids, cross references, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_id("agent.id", &self.agent.id)?;
        if !(-14 * 60..=14 * 60).contains(&self.agent.utc_offset_minutes) {
            return Err(err(
                "agent.utc_offset_minutes",
                "must be between -840 and 840",
            ));
        }
        let j = &self.journal;
        if !(1..=100_000).contains(&j.max_batch) {
            return Err(err("journal.max_batch", "must be between 1 and 100000"));
        }
        if !(1..=1_000_000).contains(&j.queue) {
            return Err(err("journal.queue", "must be between 1 and 1000000"));
        }
        if !(10..=600_000).contains(&j.checkpoint_interval_ms) {
            return Err(err(
                "journal.checkpoint_interval_ms",
                "must be between 10 and 600000",
            ));
        }
        if j.retention_days == 0 {
            return Err(err("journal.retention_days", "must be at least 1"));
        }
        self.codes.validate().map_err(|e| prefixed("codes", e))?;
        let mut device_ids = HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            let key = format!("devices[{i}]");
            check_id(&format!("{key}.id"), &d.id)?;
            if !device_ids.insert(d.id.as_str()) {
                return Err(err(
                    format!("{key}.id"),
                    format!("duplicate device id {:?}", d.id),
                ));
            }
            d.validate().map_err(|e| prefixed(&key, e))?;
        }
        self.status.validate().map_err(|e| prefixed("status", e))?;
        if let Some(sync) = &self.sync {
            sync.validate()
                .map_err(|e| err(format!("sync.{}", e.key), e.message))?;
            if sync.agent_id != self.agent.id {
                return Err(err(
                    "sync.agent_id",
                    format!(
                        "{:?} differs from agent.id {:?}; they must match",
                        sync.agent_id, self.agent.id
                    ),
                ));
            }
        }
        if self.mqtt.enabled || !self.machines.is_empty() {
            // Machine problems name `machines[i]…` themselves; the rest is under `mqtt.`.
            self.mqtt.validate(&self.machines).map_err(|e| {
                if e.starts_with("machines[") {
                    prefixed("", e)
                } else {
                    prefixed("mqtt", e)
                }
            })?;
        }
        let mut station_ids = HashSet::new();
        let mut device_owner: std::collections::HashMap<&str, &str> = Default::default();
        for (i, s) in self.stations.iter().enumerate() {
            let key = format!("stations[{i}]");
            check_id(&format!("{key}.id"), &s.id)?;
            if !station_ids.insert(s.id.as_str()) {
                return Err(err(
                    format!("{key}.id"),
                    format!("duplicate station id {:?}", s.id),
                ));
            }
            for (k, dev) in s.devices.iter().enumerate() {
                let dkey = format!("{key}.devices[{k}]");
                if !device_ids.contains(dev.as_str()) {
                    return Err(err(dkey, format!("no device named {dev:?}")));
                }
                if let Some(other) = device_owner.insert(dev, &s.id) {
                    return Err(err(
                        dkey,
                        format!("device {dev:?} is already used by station {other:?}"),
                    ));
                }
            }
            if let Some(p) = &s.process {
                if p.trim().is_empty() {
                    return Err(err(format!("{key}.process"), "must not be empty"));
                }
            }
            for (k, mid) in s.machines.iter().enumerate() {
                let mkey = format!("{key}.machines[{k}]");
                match self.machines.iter().find(|m| &m.id == mid) {
                    None => return Err(err(mkey, format!("no machine named {mid:?} in [[machines]]"))),
                    Some(m) if m.station.as_deref().is_some_and(|st| st != s.id) => {
                        return Err(err(
                            mkey,
                            format!(
                                "machine {mid:?} says station = {:?}; a machine stands at one station",
                                m.station.as_deref().unwrap_or_default()
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        for (i, m) in self.machines.iter().enumerate() {
            if let Some(st) = &m.station {
                if !station_ids.contains(st.as_str()) {
                    return Err(err(
                        format!("machines[{i}].station"),
                        format!("no station named {st:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Makes each machine's station explicit: a machine listed in `stations[].machines`
    /// gets that station (validation already checked the two agree).
    fn bind_machines(&mut self) {
        for s in &self.stations {
            for id in &s.machines {
                if let Some(m) = self.machines.iter_mut().find(|m| &m.id == id) {
                    m.station.get_or_insert_with(|| s.id.clone());
                }
            }
        }
    }

    /// The journal file this config points at.
    pub fn journal_path(&self) -> PathBuf {
        match &self.journal.path {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => self.agent.data_dir.join(p),
            None => self.agent.data_dir.join("journal.db"),
        }
    }
}

/// A sub-validator's `key: problem` text, placed under `section`.
fn prefixed(section: &str, e: String) -> ConfigError {
    match e.split_once(": ") {
        Some((key, problem)) if !key.contains(' ') && section.is_empty() => err(key, problem),
        Some((key, problem)) if !key.contains(' ') => err(format!("{section}.{key}"), problem),
        _ => err(section, e),
    }
}

fn check_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(err(
            key,
            format!("{id:?} is not a valid id (1-64 letters, digits, '.', '_' or '-')"),
        ))
    }
}

/// The parser's message on one line, with the line number it points at.
fn located(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |t| t.matches('\n').count())
                + 1;
            format!("{message} (line {line})")
        }
        None => message,
    }
}
