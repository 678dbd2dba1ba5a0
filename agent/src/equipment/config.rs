//! The `[mqtt]` section and the `[[machines]]` list: typed, unknown keys refused, checked by
//! `validate()` with the key path in every message.

use super::fields::{FieldSpec, Reading, UnitConv};
use super::topic::TopicPattern;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

/// `[mqtt]`: where equipment messages come from and how they are handled.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Turns equipment ingest on.
    pub enabled: bool,
    /// External broker as `mqtt://host:port`; when absent the agent runs its own broker.
    pub broker: Option<String>,
    /// Listen address of the embedded broker (used only when `broker` is absent).
    pub listen: SocketAddr,
    /// Client id of the agent's session on the broker; keep it stable across restarts.
    pub client_id: String,
    /// MQTT keep-alive in seconds.
    pub keep_alive_s: u64,
    /// Largest payload accepted (bytes); bigger ones are stored as rejects and acknowledged.
    pub max_payload_bytes: usize,
    /// Raw readings older than this many days are pruned from the local database.
    pub retention_days: u32,
    /// Cap of the reconnect backoff, in seconds.
    pub reconnect_max_s: u64,
    /// Topic patterns that name the machine in one level, e.g. `factory/+machine/data`.
    pub patterns: Vec<PatternConfig>,
    /// Sparkplug B group ids to subscribe to (`spBv1.0/<group>/#`); empty for none.
    pub sparkplug_groups: Vec<String>,
    /// Hysteresis (°C) before a temperature excursion counts as over.
    pub alert_hysteresis_c: f64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            broker: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            client_id: "bobbin-equipment".into(),
            keep_alive_s: 30,
            max_payload_bytes: 64 * 1024,
            retention_days: 7,
            reconnect_max_s: 30,
            patterns: Vec::new(),
            sparkplug_groups: Vec::new(),
            alert_hysteresis_c: 2.0,
        }
    }
}

/// `[[mqtt.patterns]]`: a topic pattern whose `+machine` level names the machine.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// MQTT filter with one `+machine` level, e.g. `factory/+machine/data`.
    pub pattern: String,
    /// Kind for machines found by this pattern but not listed in `[[machines]]`; without it
    /// such messages are rejects ("unknown machine").
    #[serde(default)]
    pub kind: Option<MachineKind>,
}

/// What a machine is; decides its default fields and its summary.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MachineKind {
    /// A sewing machine: stitches, trims, run time, needle stops.
    Sewing,
    /// An iron or pressing machine: temperature, steam pressure, dwell time.
    Iron,
}

/// `[[machines]]`: one sewing machine or iron.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// Machine id (letters, digits, `.`, `_`, `-`), as it appears in topics.
    pub id: String,
    /// `sewing` or `iron`.
    pub kind: MachineKind,
    /// The station it stands at; its readings attach to that station's open work unit.
    #[serde(default)]
    pub station: Option<String>,
    /// Its own topic (exact, or a filter with `+`/`#`), when no pattern names it.
    #[serde(default)]
    pub topic: Option<String>,
    /// Its Sparkplug B identity, when it speaks Sparkplug instead of JSON.
    #[serde(default)]
    pub sparkplug: Option<SparkplugId>,
    /// Overrides of the default field paths: reading name → `"path.to.field"` or
    /// `{ path = "…", unit = "F" }`; also `seq` and `ts`.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    /// Iron: allowed temperature range in °C, `[min, max]`; outside it raises an alert.
    #[serde(default)]
    pub temp_range_c: Option<[f64; 2]>,
    /// Iron: ranges per process id, used in unit summaries, e.g. `{ "P-07" = [140, 160] }`.
    #[serde(default)]
    pub process_temp_range_c: BTreeMap<String, [f64; 2]>,
}

/// A Sparkplug B edge node, or a device behind it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct SparkplugId {
    /// Sparkplug group id.
    pub group: String,
    /// Edge node id.
    pub node: String,
    /// Device id; absent when the node itself is the machine.
    #[serde(default)]
    pub device: Option<String>,
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_range(key: &str, r: &[f64; 2]) -> Result<(), String> {
    if !(r[0].is_finite() && r[1].is_finite() && r[0] < r[1]) {
        return Err(format!("{key}: must be [min, max] with min < max"));
    }
    Ok(())
}

impl MqttConfig {
    /// The external broker's host and port, if one is configured.
    pub fn external_broker(&self) -> Result<Option<(String, u16)>, String> {
        let Some(url) = &self.broker else {
            return Ok(None);
        };
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| format!("mqtt.broker: {url:?} must start with mqtt://"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("mqtt.broker: bad port in {url:?}"))?,
            ),
            None => (rest, 1883),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(format!("mqtt.broker: no host or port in {url:?}"));
        }
        Ok(Some((host.to_string(), port)))
    }

    /// Checks this section and the machine list together; the error names the key.
    pub fn validate(&self, machines: &[MachineConfig]) -> Result<(), String> {
        self.external_broker()?;
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            return Err("mqtt.client_id: must be 1-64 characters".into());
        }
        if self.keep_alive_s == 0 || self.keep_alive_s > 3600 {
            return Err("mqtt.keep_alive_s: must be 1-3600".into());
        }
        if !(256..=16 * 1024 * 1024).contains(&self.max_payload_bytes) {
            return Err("mqtt.max_payload_bytes: must be 256 to 16777216".into());
        }
        if self.retention_days == 0 {
            return Err("mqtt.retention_days: must be at least 1".into());
        }
        if self.reconnect_max_s == 0 || self.reconnect_max_s > 600 {
            return Err("mqtt.reconnect_max_s: must be 1-600".into());
        }
        if !(self.alert_hysteresis_c.is_finite() && self.alert_hysteresis_c >= 0.0) {
            return Err("mqtt.alert_hysteresis_c: must be a number >= 0".into());
        }
        for (i, p) in self.patterns.iter().enumerate() {
            let pat = TopicPattern::parse(&p.pattern)
                .map_err(|e| format!("mqtt.patterns[{i}].pattern: {e}"))?;
            if !pat.captures_machine() {
                return Err(format!(
                    "mqtt.patterns[{i}].pattern: needs a `+machine` level naming the machine"
                ));
            }
            if p.pattern.starts_with("spBv1.0/") {
                return Err(format!(
                    "mqtt.patterns[{i}].pattern: Sparkplug topics are configured with sparkplug_groups"
                ));
            }
        }
        for (i, g) in self.sparkplug_groups.iter().enumerate() {
            if g.is_empty() || g.contains(['/', '+', '#']) {
                return Err(format!(
                    "mqtt.sparkplug_groups[{i}]: {g:?} is not a Sparkplug group id"
                ));
            }
        }
        let mut ids = HashSet::new();
        let mut sp = HashSet::new();
        for (i, m) in machines.iter().enumerate() {
            let at = format!("machines[{i}]");
            if !valid_id(&m.id) {
                return Err(format!(
                    "{at}.id: {:?} must be 1-64 letters, digits, '.', '_' or '-'",
                    m.id
                ));
            }
            if !ids.insert(m.id.as_str()) {
                return Err(format!("{at}.id: {:?} is listed twice", m.id));
            }
            if let Some(t) = &m.topic {
                let pat = TopicPattern::parse(t).map_err(|e| format!("{at}.topic: {e}"))?;
                if pat.captures_machine() {
                    return Err(format!(
                        "{at}.topic: `+machine` belongs in mqtt.patterns; use a plain topic here"
                    ));
                }
            }
            if let Some(s) = &m.sparkplug {
                if m.topic.is_some() {
                    return Err(format!(
                        "{at}.sparkplug: a machine has a topic or a Sparkplug id, not both"
                    ));
                }
                if !self.sparkplug_groups.contains(&s.group) {
                    return Err(format!(
                        "{at}.sparkplug.group: {:?} is not in mqtt.sparkplug_groups",
                        s.group
                    ));
                }
                if s.node.is_empty() || s.node.contains(['/', '+', '#']) {
                    return Err(format!("{at}.sparkplug.node: not a Sparkplug edge node id"));
                }
                if let Some(d) = &s.device {
                    if d.is_empty() || d.contains(['/', '+', '#']) {
                        return Err(format!("{at}.sparkplug.device: not a Sparkplug device id"));
                    }
                }
                if !sp.insert(s.clone()) {
                    return Err(format!("{at}.sparkplug: used by two machines"));
                }
            }
            for (name, spec) in &m.fields {
                let key = format!("{at}.fields.{name}");
                if name == "seq" || name == "ts" {
                    if spec.unit().is_some() {
                        return Err(format!("{key}: takes no unit"));
                    }
                } else {
                    let reading = Reading::by_name(name).ok_or_else(|| {
                        format!("{key}: unknown reading (known: {})", Reading::names())
                    })?;
                    if reading.kind() != m.kind {
                        return Err(format!("{key}: not a reading of a {:?} machine", m.kind));
                    }
                    if let Some(u) = spec.unit() {
                        UnitConv::parse(reading, u).map_err(|e| format!("{key}.unit: {e}"))?;
                    }
                }
                if spec.path().is_empty() {
                    return Err(format!("{key}: empty path"));
                }
            }
            if let Some(r) = &m.temp_range_c {
                if m.kind != MachineKind::Iron {
                    return Err(format!(
                        "{at}.temp_range_c: only irons have a temperature range"
                    ));
                }
                check_range(&format!("{at}.temp_range_c"), r)?;
            }
            for (p, r) in &m.process_temp_range_c {
                if m.kind != MachineKind::Iron {
                    return Err(format!(
                        "{at}.process_temp_range_c: only irons have a temperature range"
                    ));
                }
                check_range(&format!("{at}.process_temp_range_c.{p}"), r)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (MqttConfig, Vec<MachineConfig>) {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct F {
            #[serde(default)]
            mqtt: MqttConfig,
            #[serde(default)]
            machines: Vec<MachineConfig>,
        }
        let f: F = toml::from_str(s).expect("parses");
        (f.mqtt, f.machines)
    }

    #[test]
    fn snippet_parses_and_validates() {
        let (m, machines) = parse(include_str!("config-snippet.toml"));
        m.validate(&machines).expect("valid");
        assert!(m.enabled);
        assert_eq!(machines.len(), 3);
    }

    #[test]
    fn errors_name_the_key() {
        let (m, machines) = parse(
            r#"
            [[machines]]
            id = "s1"
            kind = "sewing"
            [[machines]]
            id = "i1"
            kind = "iron"
            topic = "a/+/b"
            temp_range_c = [160, 140]
            "#,
        );
        let e = m.validate(&machines).unwrap_err();
        assert!(e.starts_with("machines[1].temp_range_c:"), "{e}");
        let (m, machines) = parse(
            r#"
            [[machines]]
            id = "s1"
            kind = "sewing"
            fields = { temp_c = "t" }
            "#,
        );
        let e = m.validate(&machines).unwrap_err();
        assert!(e.starts_with("machines[0].fields.temp_c:"), "{e}");
        let (m, machines) = parse("[mqtt]\nbroker = \"http://x\"\n");
        assert!(m
            .validate(&machines)
            .unwrap_err()
            .starts_with("mqtt.broker:"));
        let (m, machines) = parse("[[mqtt.patterns]]\npattern = \"a/+/b\"\n");
        assert!(m
            .validate(&machines)
            .unwrap_err()
            .starts_with("mqtt.patterns[0].pattern:"));
    }

    #[test]
    fn unknown_keys_refused() {
        assert!(toml::from_str::<MqttConfig>("nope = 1").is_err());
    }

    #[test]
    fn broker_url() {
        let mut m = MqttConfig {
            broker: Some("mqtt://10.0.0.5:1884".into()),
            ..Default::default()
        };
        assert_eq!(
            m.external_broker().unwrap(),
            Some(("10.0.0.5".into(), 1884))
        );
        m.broker = Some("mqtt://broker.local".into());
        assert_eq!(
            m.external_broker().unwrap(),
            Some(("broker.local".into(), 1883))
        );
    }
}
