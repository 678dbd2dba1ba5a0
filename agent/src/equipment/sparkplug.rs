//! Eclipse Sparkplug B: topics, the Tahu protobuf payload (hand-written `prost` structs
//! mirroring `eclipse/tahu:sparkplug_b/sparkplug_b.proto`, no protoc), and the per-edge-node
//! session state: BIRTH alias tables and the 0–255 `seq` that exposes lost QoS 0 messages.
//! Pure: the ingest task publishes the rebirth requests this module asks for.

use prost::Message as _;
use std::collections::HashMap;

/// `org.eclipse.tahu.protobuf.Payload` (proto2), the fields Bobbin uses. Fields not listed
/// (metadata, properties, datasets, templates, extensions) are skipped by the decoder.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// Publish time, UTC ms.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// Message sequence number, 0–255.
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
    /// Optional UUID.
    #[prost(string, optional, tag = "4")]
    pub uuid: Option<String>,
    /// Optional opaque body.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub body: Option<Vec<u8>>,
}

/// `Payload.Metric`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Name (always in BIRTHs; DATA may carry only the alias).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Alias defined by the BIRTH.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// Sample time, UTC ms.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// Datatype code (Int8 1 … UInt64 8, Float 9, Double 10, Boolean 11, String 12, …).
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// Historical (not live) value.
    #[prost(bool, optional, tag = "5")]
    pub is_historical: Option<bool>,
    /// Transient value (not to be stored by hosts).
    #[prost(bool, optional, tag = "6")]
    pub is_transient: Option<bool>,
    /// Null value.
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// The value.
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16")]
    pub value: Option<MetricValue>,
}

/// `Metric.value` (the scalar cases; datasets, templates and extensions are skipped).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetricValue {
    /// Int8/16/32 (two's complement in 32 bits) and UInt8/16/32.
    #[prost(uint32, tag = "10")]
    IntValue(u32),
    /// Int64 (two's complement), UInt64, DateTime.
    #[prost(uint64, tag = "11")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "12")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "13")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "14")]
    BooleanValue(bool),
    /// String, Text, UUID.
    #[prost(string, tag = "15")]
    StringValue(String),
    /// Bytes, File.
    #[prost(bytes = "vec", tag = "16")]
    BytesValue(Vec<u8>),
}

impl Metric {
    /// The value as a number, by datatype (signed types reinterpret the two's complement).
    pub fn number(&self) -> Option<f64> {
        if self.is_null == Some(true) {
            return None;
        }
        let dt = self.datatype.unwrap_or(0);
        match self.value.as_ref()? {
            MetricValue::IntValue(v) => Some(match dt {
                1 => *v as i8 as f64,
                2 => *v as i16 as f64,
                3 => *v as i32 as f64,
                _ => *v as f64,
            }),
            MetricValue::LongValue(v) => Some(match dt {
                4 => *v as i64 as f64,
                _ => *v as f64,
            }),
            MetricValue::FloatValue(v) => Some(*v as f64),
            MetricValue::DoubleValue(v) => Some(*v),
            MetricValue::BooleanValue(b) => Some(if *b { 1.0 } else { 0.0 }),
            MetricValue::StringValue(_) | MetricValue::BytesValue(_) => None,
        }
    }
}

/// Decodes a Sparkplug B payload.
pub fn decode(bytes: &[u8]) -> Result<Payload, String> {
    Payload::decode(bytes).map_err(|e| format!("not a Sparkplug B payload: {e}"))
}

/// The NCMD payload asking an edge node to publish its births again.
pub fn rebirth_payload(now_ms: i64) -> Vec<u8> {
    Payload {
        timestamp: Some(now_ms.max(0) as u64),
        metrics: vec![Metric {
            name: Some("Node Control/Rebirth".into()),
            datatype: Some(11),
            value: Some(MetricValue::BooleanValue(true)),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec()
}

/// Sparkplug message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// Node birth.
    NBirth,
    /// Node death (the node's MQTT will).
    NDeath,
    /// Device birth.
    DBirth,
    /// Device death.
    DDeath,
    /// Node data.
    NData,
    /// Device data.
    DData,
    /// Node command (from a host).
    NCmd,
    /// Device command (from a host).
    DCmd,
}

/// A parsed `spBv1.0/…` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpTopic<'a> {
    /// An edge node or device message.
    Edge {
        /// Group id.
        group: &'a str,
        /// Message type.
        kind: MsgType,
        /// Edge node id.
        node: &'a str,
        /// Device id (D* messages only).
        device: Option<&'a str>,
    },
    /// Host application state `spBv1.0/STATE/{host}`.
    State(&'a str),
}

/// Parses a Sparkplug topic; `Err` for a malformed one, `Ok(None)` when not Sparkplug.
pub fn parse_topic(topic: &str) -> Result<Option<SpTopic<'_>>, String> {
    let Some(rest) = topic.strip_prefix("spBv1.0/") else {
        return Ok(None);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() == 2 && parts[0] == "STATE" && !parts[1].is_empty() {
        return Ok(Some(SpTopic::State(parts[1])));
    }
    if parts.len() < 3 || parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return Err(format!("malformed Sparkplug topic {topic:?}"));
    }
    let kind = match parts[1] {
        "NBIRTH" => MsgType::NBirth,
        "NDEATH" => MsgType::NDeath,
        "DBIRTH" => MsgType::DBirth,
        "DDEATH" => MsgType::DDeath,
        "NDATA" => MsgType::NData,
        "DDATA" => MsgType::DData,
        "NCMD" => MsgType::NCmd,
        "DCMD" => MsgType::DCmd,
        t => return Err(format!("unknown Sparkplug message type {t:?}")),
    };
    let device_msg = matches!(
        kind,
        MsgType::DBirth | MsgType::DDeath | MsgType::DData | MsgType::DCmd
    );
    let device = parts.get(3).copied();
    if device_msg != device.is_some() {
        return Err(format!(
            "{topic:?}: {} messages {} a device id",
            parts[1],
            if device_msg { "need" } else { "carry no" }
        ));
    }
    Ok(Some(SpTopic::Edge {
        group: parts[0],
        kind,
        node: parts[2],
        device,
    }))
}

/// The NCMD topic of an edge node.
pub fn ncmd_topic(group: &str, node: &str) -> String {
    format!("spBv1.0/{group}/NCMD/{node}")
}

/// One numeric metric of a message, with its resolved name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedValue {
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Sample time, UTC ms, if given.
    pub ts_ms: Option<i64>,
}

/// A break in an edge node's sequence: messages were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The seq that was due.
    pub expected: u8,
    /// The seq that came.
    pub got: u8,
}

/// What the state machine made of one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Numeric metrics (BIRTH and DATA).
    pub values: Vec<NamedValue>,
    /// A sequence gap to record.
    pub gap: Option<Gap>,
    /// Ask the node to rebirth (send NCMD `Node Control/Rebirth`).
    pub rebirth: bool,
    /// A protocol violation worth a log line (not a reject).
    pub violation: Option<String>,
    /// The message cannot be used; store it as a reject with this reason.
    pub reject: Option<String>,
}

#[derive(Debug, Default)]
struct NodeState {
    next_seq: Option<u8>,
    bd_seq: Option<u64>,
    aliases: HashMap<u64, String>,
    devices: HashMap<String, HashMap<u64, String>>,
    last_rebirth_ms: Option<i64>,
}

/// Most edge nodes tracked; beyond it the least useful state is dropped (bounded memory).
const MAX_NODES: usize = 4096;
/// Rebirth requests to one node are at most this often.
const REBIRTH_EVERY_MS: i64 = 5_000;

/// Session state of every edge node seen: aliases and sequence numbers.
#[derive(Debug, Default)]
pub struct SparkplugState {
    nodes: HashMap<(String, String), NodeState>,
}

fn bd_seq(p: &Payload) -> Option<u64> {
    p.metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("bdSeq"))
        .and_then(|m| match m.value {
            Some(MetricValue::LongValue(v)) => Some(v),
            Some(MetricValue::IntValue(v)) => Some(v as u64),
            _ => None,
        })
}

impl SparkplugState {
    /// Edge nodes currently tracked.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Feeds one message of an edge node or device; `now_ms` is the arrival time.
    pub fn on_message(
        &mut self,
        group: &str,
        kind: MsgType,
        node: &str,
        device: Option<&str>,
        p: &Payload,
        now_ms: i64,
    ) -> Outcome {
        let mut out = Outcome::default();
        if matches!(kind, MsgType::NCmd | MsgType::DCmd) {
            return out; // commands (including our own rebirth requests) carry no data
        }
        let key = (group.to_string(), node.to_string());
        if !self.nodes.contains_key(&key) && self.nodes.len() >= MAX_NODES {
            // Drop an arbitrary other node; it is asked to rebirth when it speaks again.
            if let Some(k) = self.nodes.keys().next().cloned() {
                self.nodes.remove(&k);
            }
        }
        let st = self.nodes.entry(key).or_default();
        let seq = p.seq.map(|s| (s & 0xff) as u8);
        if p.seq.is_some_and(|s| s > 255) {
            out.violation = Some(format!("seq {} out of 0-255", p.seq.unwrap_or(0)));
        }
        match kind {
            MsgType::NBirth => {
                if seq != Some(0) {
                    out.violation = Some(format!("NBIRTH with seq {seq:?}, expected 0"));
                }
                st.aliases.clear();
                st.devices.clear();
                st.bd_seq = bd_seq(p);
                st.next_seq = seq.map(|s| s.wrapping_add(1));
                for m in &p.metrics {
                    if let (Some(n), Some(a)) = (&m.name, m.alias) {
                        st.aliases.insert(a, n.clone());
                    }
                }
            }
            MsgType::NDeath => {
                // A death whose bdSeq is not the current birth's is stale (the node already
                // reconnected); deciding by bdSeq, not arrival order (domain brief §5.6).
                let d = bd_seq(p);
                if d.is_some() && d == st.bd_seq {
                    st.next_seq = None;
                    st.devices.clear();
                }
                return out;
            }
            _ => {
                match (st.next_seq, seq) {
                    (None, _) => {
                        // No birth seen (we started after it, or lost it): ask for one.
                        out.rebirth = true;
                        st.next_seq = seq.map(|s| s.wrapping_add(1));
                    }
                    (Some(_), None) => {
                        out.violation = Some("message without seq".into());
                    }
                    (Some(expected), Some(got)) => {
                        if expected != got {
                            out.gap = Some(Gap { expected, got });
                            out.rebirth = true;
                        }
                        st.next_seq = Some(got.wrapping_add(1));
                    }
                }
                if kind == MsgType::DBirth {
                    let table = st
                        .devices
                        .entry(device.unwrap_or_default().to_string())
                        .or_default();
                    table.clear();
                    for m in &p.metrics {
                        if let (Some(n), Some(a)) = (&m.name, m.alias) {
                            table.insert(a, n.clone());
                        }
                    }
                }
                if kind == MsgType::DDeath {
                    if let Some(d) = device {
                        st.devices.remove(d);
                    }
                    return finish(st, out, now_ms);
                }
            }
        }
        let table = match device {
            Some(d) => st.devices.get(d),
            None => Some(&st.aliases),
        };
        for m in &p.metrics {
            let name = match (&m.name, m.alias) {
                (Some(n), _) => n.clone(),
                (None, Some(a)) => match table.and_then(|t| t.get(&a)) {
                    Some(n) => n.clone(),
                    None => {
                        out.reject =
                            Some(format!("unknown metric alias {a} (no BIRTH defines it)"));
                        out.rebirth = true;
                        continue;
                    }
                },
                (None, None) => continue,
            };
            if let Some(v) = m.number() {
                out.values.push(NamedValue {
                    name,
                    value: v,
                    ts_ms: m.timestamp.or(p.timestamp).map(|t| t as i64),
                });
            }
        }
        finish(st, out, now_ms)
    }
}

fn finish(st: &mut NodeState, mut out: Outcome, now_ms: i64) -> Outcome {
    if out.rebirth {
        let due = st
            .last_rebirth_ms
            .is_none_or(|t| now_ms - t >= REBIRTH_EVERY_MS || now_ms < t);
        if due {
            st.last_rebirth_ms = Some(now_ms);
        } else {
            out.rebirth = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: Option<&str>, alias: Option<u64>, v: f64) -> Metric {
        Metric {
            name: name.map(str::to_string),
            alias,
            datatype: Some(10),
            value: Some(MetricValue::DoubleValue(v)),
            ..Default::default()
        }
    }

    fn payload(seq: u64, metrics: Vec<Metric>) -> Payload {
        Payload {
            timestamp: Some(1_700_000_000_000),
            metrics,
            seq: Some(seq),
            ..Default::default()
        }
    }

    #[test]
    fn vector_from_test_vectors_more_section_6() {
        let bytes = [
            0x08, 0x80, 0xD0, 0x95, 0xFF, 0xBC, 0x31, 0x12, 0x0E, 0x10, 0x05, 0x20, 0x08, 0x58,
            0xB9, 0x60, 0x18, 0x80, 0xD0, 0x95, 0xFF, 0xBC, 0x31, 0x18, 0x05,
        ];
        let p = decode(&bytes).unwrap();
        assert_eq!(p.timestamp, Some(1_700_000_000_000));
        assert_eq!(p.seq, Some(5));
        assert_eq!(p.metrics.len(), 1);
        let m = &p.metrics[0];
        assert_eq!(m.alias, Some(5));
        assert_eq!(m.datatype, Some(8));
        assert_eq!(m.value, Some(MetricValue::LongValue(12345)));
        assert_eq!(m.timestamp, Some(1_700_000_000_000));
        assert_eq!(m.number(), Some(12345.0));
        // prost writes fields in tag order, so compare by round trip, not bytes.
        assert_eq!(decode(&p.encode_to_vec()).unwrap(), p);
    }

    #[test]
    fn topics() {
        assert_eq!(
            parse_topic("spBv1.0/Plant1/NBIRTH/Edge7").unwrap(),
            Some(SpTopic::Edge {
                group: "Plant1",
                kind: MsgType::NBirth,
                node: "Edge7",
                device: None
            })
        );
        assert_eq!(
            parse_topic("spBv1.0/Plant1/DDATA/Edge7/Sew-012").unwrap(),
            Some(SpTopic::Edge {
                group: "Plant1",
                kind: MsgType::DData,
                node: "Edge7",
                device: Some("Sew-012")
            })
        );
        assert_eq!(
            parse_topic("spBv1.0/STATE/scada-host").unwrap(),
            Some(SpTopic::State("scada-host"))
        );
        assert!(parse_topic("spBv1.0/Plant1/NDATA/Edge7/Sew-012").is_err());
        assert!(parse_topic("spBv1.0/Plant1/DDATA/Edge7").is_err());
        assert!(parse_topic("spBv1.0/Plant1/XDATA/Edge7").is_err());
        assert_eq!(parse_topic("factory/x").unwrap(), None);
    }

    #[test]
    fn signed_datatypes() {
        let m = Metric {
            datatype: Some(3),
            value: Some(MetricValue::IntValue((-5i32) as u32)),
            ..Default::default()
        };
        assert_eq!(m.number(), Some(-5.0));
        let m = Metric {
            datatype: Some(4),
            value: Some(MetricValue::LongValue((-7i64) as u64)),
            ..Default::default()
        };
        assert_eq!(m.number(), Some(-7.0));
    }

    #[test]
    fn births_define_aliases_and_data_resolves_them() {
        let mut s = SparkplugState::default();
        let o = s.on_message(
            "G",
            MsgType::NBirth,
            "E",
            None,
            &payload(0, vec![metric(Some("bdSeq"), None, 0.0)]),
            0,
        );
        assert_eq!(o.gap, None);
        assert!(!o.rebirth);
        let o = s.on_message(
            "G",
            MsgType::DBirth,
            "E",
            Some("iron-1"),
            &payload(1, vec![metric(Some("temp_c"), Some(7), 150.0)]),
            0,
        );
        assert_eq!(o.values[0].name, "temp_c");
        let o = s.on_message(
            "G",
            MsgType::DData,
            "E",
            Some("iron-1"),
            &payload(2, vec![metric(None, Some(7), 151.5)]),
            0,
        );
        assert_eq!(
            o.values,
            vec![NamedValue {
                name: "temp_c".into(),
                value: 151.5,
                ts_ms: Some(1_700_000_000_000)
            }]
        );
        assert_eq!(o.reject, None);
        // Unknown alias: reject and ask for a rebirth.
        let o = s.on_message(
            "G",
            MsgType::DData,
            "E",
            Some("iron-1"),
            &payload(3, vec![metric(None, Some(99), 1.0)]),
            0,
        );
        assert!(o.reject.is_some());
        assert!(o.rebirth);
    }

    #[test]
    fn seq_wraps_and_gaps_ask_for_rebirth() {
        let mut s = SparkplugState::default();
        s.on_message("G", MsgType::NBirth, "E", None, &payload(0, vec![]), 0);
        for seq in 1..=255u64 {
            let o = s.on_message("G", MsgType::NData, "E", None, &payload(seq, vec![]), 0);
            assert_eq!(o.gap, None, "seq {seq}");
        }
        let o = s.on_message("G", MsgType::NData, "E", None, &payload(0, vec![]), 0);
        assert_eq!(o.gap, None, "254, 255, 0 is in order");
        let o = s.on_message("G", MsgType::NData, "E", None, &payload(1, vec![]), 0);
        assert_eq!(o.gap, None);
        // SP-7: 10 then 12.
        s.on_message("G", MsgType::NBirth, "E", None, &payload(0, vec![]), 0);
        for seq in 1..=10 {
            s.on_message("G", MsgType::NData, "E", None, &payload(seq, vec![]), 0);
        }
        let o = s.on_message("G", MsgType::NData, "E", None, &payload(12, vec![]), 10_000);
        assert_eq!(
            o.gap,
            Some(Gap {
                expected: 11,
                got: 12
            })
        );
        assert!(o.rebirth);
        // Rate-limited: a second gap right after asks again only after 5 s.
        let o = s.on_message("G", MsgType::NData, "E", None, &payload(20, vec![]), 10_001);
        assert!(o.gap.is_some());
        assert!(!o.rebirth);
    }

    #[test]
    fn birth_with_nonzero_seq_is_a_violation_and_stale_death_ignored() {
        let mut s = SparkplugState::default();
        let o = s.on_message(
            "G",
            MsgType::NBirth,
            "E",
            None,
            &payload(3, vec![metric(Some("bdSeq"), None, 0.0)]),
            0,
        );
        assert!(o.violation.is_some());
        let mut birth = payload(0, vec![]);
        birth.metrics.push(Metric {
            name: Some("bdSeq".into()),
            datatype: Some(4),
            value: Some(MetricValue::LongValue(2)),
            ..Default::default()
        });
        s.on_message("G", MsgType::NBirth, "E", None, &birth, 0);
        let mut death = Payload::default();
        death.metrics.push(Metric {
            name: Some("bdSeq".into()),
            datatype: Some(4),
            value: Some(MetricValue::LongValue(1)),
            ..Default::default()
        });
        s.on_message("G", MsgType::NDeath, "E", None, &death, 0);
        // Stale death ignored: the next data continues the sequence without a rebirth.
        let o = s.on_message("G", MsgType::NData, "E", None, &payload(1, vec![]), 0);
        assert!(!o.rebirth);
        assert_eq!(o.gap, None);
    }

    #[test]
    fn rebirth_payload_decodes() {
        let p = decode(&rebirth_payload(5)).unwrap();
        assert_eq!(p.metrics[0].name.as_deref(), Some("Node Control/Rebirth"));
        assert_eq!(p.metrics[0].value, Some(MetricValue::BooleanValue(true)));
    }
}
