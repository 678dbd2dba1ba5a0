//! The `[sync]` section of the agent's configuration.
//!
//! Every key has a default except `url`, `agent_id` and the token; `validate()` names the
//! offending key so `bobbin config validate` can point at it. `config-snippet.toml` next to
//! this crate documents each key.

use crate::policy::{BatchPlan, RetryPolicy};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// A configuration value that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sync.{key}: {message}")]
pub struct ConfigError {
    /// The key, e.g. `batch_max_records`.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Why the bearer token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("sync.token_file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The token is empty or has characters a header cannot carry.
    #[error("sync token is empty or not printable ASCII")]
    Invalid,
}

/// Settings of the uploader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Base URL of the platform; batches go to `{url}/v1/batches`.
    pub url: String,
    /// The bearer token, inline. Exactly one of `token` and `token_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding the bearer token (first line). Exactly one of `token` and `token_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// This agent's id at the platform.
    pub agent_id: String,
    /// The Ed25519 key file, created (mode 0600) at first start.
    #[serde(default = "defaults::key_file")]
    pub key_file: PathBuf,
    /// Most records in one batch.
    #[serde(default = "defaults::batch_max_records")]
    pub batch_max_records: usize,
    /// Most bytes of (uncompressed) batch document in one batch.
    #[serde(default = "defaults::batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// Batches in flight at once.
    #[serde(default = "defaults::in_flight")]
    pub in_flight: usize,
    /// Total deadline of one request, from connect to the last byte of the answer.
    #[serde(default = "defaults::request_timeout", with = "duration")]
    pub request_timeout: Duration,
    /// Deadline of the TCP/TLS connect.
    #[serde(default = "defaults::connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// First backoff window.
    #[serde(default = "defaults::backoff_base", with = "duration")]
    pub backoff_base: Duration,
    /// Largest backoff window: how long after the platform returns uploads may still wait.
    #[serde(default = "defaults::backoff_max", with = "duration")]
    pub backoff_max: Duration,
    /// Longest `Retry-After` obeyed; longer ones are cut to this and reported.
    #[serde(default = "defaults::retry_after_max", with = "duration")]
    pub retry_after_max: Duration,
    /// How often an idle uploader looks for new records when not woken.
    #[serde(default = "defaults::poll_interval", with = "duration")]
    pub poll_interval: Duration,
    /// gzip level 1 (fast) to 9 (small).
    #[serde(default = "defaults::gzip_level")]
    pub gzip_level: u32,
}

mod defaults {
    use super::*;
    pub fn key_file() -> PathBuf {
        PathBuf::from("/var/lib/bobbin/agent.key")
    }
    pub fn batch_max_records() -> usize {
        1000
    }
    pub fn batch_max_bytes() -> usize {
        1 << 20
    }
    pub fn in_flight() -> usize {
        2
    }
    pub fn request_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn backoff_base() -> Duration {
        Duration::from_millis(500)
    }
    pub fn backoff_max() -> Duration {
        Duration::from_secs(8)
    }
    pub fn retry_after_max() -> Duration {
        Duration::from_secs(900)
    }
    pub fn poll_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub fn gzip_level() -> u32 {
        6
    }
}

impl SyncConfig {
    /// A configuration with every default, for `url` and `agent_id` with an inline token.
    pub fn new(
        url: impl Into<String>,
        agent_id: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        SyncConfig {
            url: url.into(),
            token: Some(token.into()),
            token_file: None,
            agent_id: agent_id.into(),
            key_file: defaults::key_file(),
            batch_max_records: defaults::batch_max_records(),
            batch_max_bytes: defaults::batch_max_bytes(),
            in_flight: defaults::in_flight(),
            request_timeout: defaults::request_timeout(),
            connect_timeout: defaults::connect_timeout(),
            backoff_base: defaults::backoff_base(),
            backoff_max: defaults::backoff_max(),
            retry_after_max: defaults::retry_after_max(),
            poll_interval: defaults::poll_interval(),
            gzip_level: defaults::gzip_level(),
        }
    }

    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, message: String| Err(ConfigError { key, message });
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => {
                return err(
                    "url",
                    format!(
                        "{:?}: expected an http:// or https:// URL with a host",
                        u.as_str()
                    ),
                )
            }
            Err(e) => return err("url", format!("{:?}: {e}", self.url)),
        }
        match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => {
                return err("token", "set either token or token_file, not both".into())
            }
            (None, None) => return err("token", "set token or token_file".into()),
            (Some(t), None) if !valid_token(t) => {
                return err(
                    "token",
                    "must be non-empty printable ASCII without spaces".into(),
                )
            }
            _ => {}
        }
        if self.agent_id.is_empty()
            || self.agent_id.len() > 64
            || !self
                .agent_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return err(
                "agent_id",
                format!("{:?}: use 1-64 of A-Z a-z 0-9 - _ .", self.agent_id),
            );
        }
        if self.key_file.as_os_str().is_empty() {
            return err("key_file", "must not be empty".into());
        }
        if !(1..=100_000).contains(&self.batch_max_records) {
            return err(
                "batch_max_records",
                format!("{} is not within 1..=100000", self.batch_max_records),
            );
        }
        if !(1024..=64 << 20).contains(&self.batch_max_bytes) {
            return err(
                "batch_max_bytes",
                format!("{} is not within 1024..=67108864", self.batch_max_bytes),
            );
        }
        if !(1..=16).contains(&self.in_flight) {
            return err(
                "in_flight",
                format!("{} is not within 1..=16", self.in_flight),
            );
        }
        if self.request_timeout < Duration::from_millis(100) {
            return err("request_timeout", "must be at least 100ms".into());
        }
        if self.connect_timeout < Duration::from_millis(100) {
            return err("connect_timeout", "must be at least 100ms".into());
        }
        if self.backoff_base.is_zero() {
            return err("backoff_base", "must be more than 0".into());
        }
        if self.backoff_max < self.backoff_base {
            return err("backoff_max", "must be at least backoff_base".into());
        }
        if self.backoff_max > Duration::from_secs(600) {
            return err(
                "backoff_max",
                "must be at most 10m (the default 8s resumes uploads within 10 s)".into(),
            );
        }
        if self.retry_after_max < self.backoff_max {
            return err("retry_after_max", "must be at least backoff_max".into());
        }
        if self.poll_interval < Duration::from_millis(10)
            || self.poll_interval > Duration::from_secs(600)
        {
            return err("poll_interval", "must be within 10ms..=10m".into());
        }
        if !(1..=9).contains(&self.gzip_level) {
            return err(
                "gzip_level",
                format!("{} is not within 1..=9", self.gzip_level),
            );
        }
        Ok(())
    }

    /// The bearer token: inline, or the first line of `token_file` (read now, so a changed
    /// file takes effect at the next read).
    pub fn read_token(&self) -> Result<String, TokenError> {
        let t = match (&self.token, &self.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| TokenError::Io {
                    path: path.clone(),
                    source,
                })?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
            (None, None) => String::new(),
        };
        if valid_token(&t) {
            Ok(t)
        } else {
            Err(TokenError::Invalid)
        }
    }

    /// The retry policy these settings describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.backoff_base,
            cap: self.backoff_max,
            retry_after_max: self.retry_after_max,
        }
    }

    /// The batch limits these settings describe.
    pub fn batch_plan(&self) -> BatchPlan {
        BatchPlan {
            max_records: self.batch_max_records,
            max_bytes: self.batch_max_bytes,
        }
    }

    /// The batch endpoint: `{url}/v1/batches`.
    pub fn batches_url(&self) -> String {
        format!("{}/v1/batches", self.url.trim_end_matches('/'))
    }
}

fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
}

/// Parses a duration such as `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with a unit, e.g. 500ms, 30s, 2m"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        u => return Err(format!("{text:?}: unknown unit {u:?} (use ms, s, m or h)")),
    };
    Ok(d)
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// Serde adapter for durations written as `"30s"` or a number of seconds.
pub mod duration {
    use super::*;

    /// Writes a duration as text such as `"30s"`.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Reads `"500ms"`, `"30s"`, `"2m"`, `"1h"` or an integer number of seconds.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
            Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SyncConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn the_snippet_parses_and_validates() {
        let snippet = include_str!("../config-snippet.toml");
        #[derive(Deserialize)]
        struct Outer {
            sync: SyncConfig,
        }
        let outer: Outer = toml::from_str(snippet).expect("snippet parses");
        outer.sync.validate().expect("snippet validates");
        // The snippet shows the defaults.
        let mut d = SyncConfig::new(outer.sync.url.clone(), outer.sync.agent_id.clone(), "x");
        d.token = outer.sync.token.clone();
        d.token_file = outer.sync.token_file.clone();
        d.key_file = outer.sync.key_file.clone();
        assert_eq!(outer.sync, d);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("url = \"https://p.example/\"\nagent_id = \"ws-1\"\ntoken = \"abc\"\n")
            .expect("parse");
        c.validate().expect("valid");
        assert_eq!(c.batch_max_records, 1000);
        assert_eq!(c.backoff_max, Duration::from_secs(8));
        assert_eq!(c.batches_url(), "https://p.example/v1/batches");
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_refused() {
        assert!(
            parse("url = \"http://x\"\nagent_id = \"a\"\ntoken = \"t\"\nbatch_size = 3\n").is_err()
        );
        assert!(parse(
            "url = \"http://x\"\nagent_id = \"a\"\ntoken = \"t\"\nbackoff_max = \"8 parsecs\"\n"
        )
        .is_err());
        let c = parse("url = \"http://x\"\nagent_id = \"a\"\ntoken = \"t\"\nbackoff_max = 9\nrequest_timeout = \"1500ms\"\n")
            .expect("parse");
        assert_eq!(c.backoff_max, Duration::from_secs(9));
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn validate_names_the_key() {
        let ok = SyncConfig::new("https://p.example", "ws-1", "tok");
        ok.validate().expect("valid");
        type Change = Box<dyn Fn(&mut SyncConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("url", Box::new(|c| c.url = "ftp://x".into())),
            ("url", Box::new(|c| c.url = "not a url".into())),
            ("token", Box::new(|c| c.token = None)),
            ("token", Box::new(|c| c.token_file = Some("/x".into()))),
            ("token", Box::new(|c| c.token = Some("a b".into()))),
            ("agent_id", Box::new(|c| c.agent_id = "ws 1".into())),
            ("batch_max_records", Box::new(|c| c.batch_max_records = 0)),
            ("batch_max_bytes", Box::new(|c| c.batch_max_bytes = 10)),
            ("in_flight", Box::new(|c| c.in_flight = 0)),
            (
                "request_timeout",
                Box::new(|c| c.request_timeout = Duration::ZERO),
            ),
            (
                "backoff_max",
                Box::new(|c| c.backoff_max = Duration::from_millis(1)),
            ),
            (
                "backoff_max",
                Box::new(|c| c.backoff_max = Duration::from_secs(3600)),
            ),
            ("gzip_level", Box::new(|c| c.gzip_level = 0)),
        ];
        for (key, change) in cases {
            let mut c = ok.clone();
            change(&mut c);
            let e = c.validate().expect_err(key);
            assert_eq!(e.key, key, "{e}");
            assert!(e.to_string().starts_with(&format!("sync.{key}:")));
        }
    }

    #[test]
    fn token_file_is_read_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").expect("write");
        let mut c = SyncConfig::new("http://x", "a", "t");
        c.token = None;
        c.token_file = Some(path.clone());
        c.validate().expect("valid");
        assert_eq!(c.read_token().expect("token"), "first");
        std::fs::write(&path, "second\n").expect("write");
        assert_eq!(c.read_token().expect("token"), "second");
        std::fs::write(&path, "\n").expect("write");
        assert!(matches!(c.read_token(), Err(TokenError::Invalid)));
        c.token_file = Some(dir.path().join("missing"));
        assert!(matches!(c.read_token(), Err(TokenError::Io { .. })));
    }

    #[test]
    fn durations_round_trip() {
        for (t, d) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(t), Ok(d));
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
