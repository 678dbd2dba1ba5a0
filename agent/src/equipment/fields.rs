//! JSON payload → readings: named readings with canonical units, found by field paths with
//! per-machine overrides and unit conversion. Pure.
//!
//! Default payload (domain brief §5.4/§5.5; no vendor publishes a wire format, so gateways
//! are configured to this or mapped with `fields`):
//! - sewing: `{"seq": 42, "ts": 1700000000000, "stitches": 120345, "trims": 812,
//!   "run_s": 5230, "needle_stops": 911, "speed_spm": 3200}` — counters are cumulative and
//!   reset on power-up; summaries compute deltas.
//! - iron: `{"seq": 7, "ts": …, "temp_c": 152.5, "steam_bar": 4.1, "dwell_s": 8.5}`.

use super::config::MachineKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A reading Bobbin understands, in its canonical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reading {
    /// Sewing: cumulative stitch (needle revolution) counter.
    Stitches,
    /// Sewing: cumulative thread-trim counter.
    Trims,
    /// Sewing: cumulative motor-on seconds.
    RunS,
    /// Sewing: cumulative needle-stop counter.
    NeedleStops,
    /// Sewing: current speed, stitches per minute.
    SpeedSpm,
    /// Iron: soleplate/platen temperature, °C.
    TempC,
    /// Iron: steam pressure, bar.
    SteamBar,
    /// Iron: head-closed dwell time of the last press cycle, seconds.
    DwellS,
}

const ALL: [Reading; 8] = [
    Reading::Stitches,
    Reading::Trims,
    Reading::RunS,
    Reading::NeedleStops,
    Reading::SpeedSpm,
    Reading::TempC,
    Reading::SteamBar,
    Reading::DwellS,
];

/// What a reading measures, for unit conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    Count,
    Seconds,
    Rate,
    Temperature,
    Pressure,
}

impl Reading {
    /// Its name in payloads, configs and stored metrics.
    pub fn name(self) -> &'static str {
        match self {
            Reading::Stitches => "stitches",
            Reading::Trims => "trims",
            Reading::RunS => "run_s",
            Reading::NeedleStops => "needle_stops",
            Reading::SpeedSpm => "speed_spm",
            Reading::TempC => "temp_c",
            Reading::SteamBar => "steam_bar",
            Reading::DwellS => "dwell_s",
        }
    }

    /// Its canonical unit.
    pub fn unit(self) -> &'static str {
        match self.dim() {
            Dim::Count => "count",
            Dim::Seconds => "s",
            Dim::Rate => "1/min",
            Dim::Temperature => "°C",
            Dim::Pressure => "bar",
        }
    }

    fn dim(self) -> Dim {
        match self {
            Reading::Stitches | Reading::Trims | Reading::NeedleStops => Dim::Count,
            Reading::RunS | Reading::DwellS => Dim::Seconds,
            Reading::SpeedSpm => Dim::Rate,
            Reading::TempC => Dim::Temperature,
            Reading::SteamBar => Dim::Pressure,
        }
    }

    /// The machine kind that has it.
    pub fn kind(self) -> MachineKind {
        match self {
            Reading::TempC | Reading::SteamBar | Reading::DwellS => MachineKind::Iron,
            _ => MachineKind::Sewing,
        }
    }

    /// Looks a reading up by name.
    pub fn by_name(name: &str) -> Option<Reading> {
        ALL.into_iter().find(|r| r.name() == name)
    }

    /// Every reading name, for error messages.
    pub fn names() -> String {
        ALL.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")
    }

    /// The readings of a machine kind.
    pub fn of_kind(kind: MachineKind) -> impl Iterator<Item = Reading> {
        ALL.into_iter().filter(move |r| r.kind() == kind)
    }
}

/// How a configured field's unit converts to the canonical one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnitConv {
    /// Already canonical.
    Identity,
    /// Multiply by a factor.
    Scale(f64),
    /// °F → °C.
    FahrenheitToC,
    /// K → °C.
    KelvinToC,
}

impl UnitConv {
    /// The conversion from unit `u` to `reading`'s canonical unit.
    pub fn parse(reading: Reading, u: &str) -> Result<UnitConv, String> {
        let conv = match (reading.dim(), u) {
            (Dim::Count, "count") => UnitConv::Identity,
            (Dim::Seconds, "s") => UnitConv::Identity,
            (Dim::Seconds, "ms") => UnitConv::Scale(0.001),
            (Dim::Seconds, "min") => UnitConv::Scale(60.0),
            (Dim::Seconds, "h") => UnitConv::Scale(3600.0),
            (Dim::Rate, "1/min" | "spm" | "rpm") => UnitConv::Identity,
            (Dim::Temperature, "C" | "°C") => UnitConv::Identity,
            (Dim::Temperature, "F" | "°F") => UnitConv::FahrenheitToC,
            (Dim::Temperature, "K") => UnitConv::KelvinToC,
            (Dim::Pressure, "bar") => UnitConv::Identity,
            (Dim::Pressure, "kPa") => UnitConv::Scale(0.01),
            (Dim::Pressure, "MPa") => UnitConv::Scale(10.0),
            (Dim::Pressure, "psi") => UnitConv::Scale(0.068_947_572_9),
            _ => {
                let known = match reading.dim() {
                    Dim::Count => "count",
                    Dim::Seconds => "s, ms, min, h",
                    Dim::Rate => "1/min, spm, rpm",
                    Dim::Temperature => "C, F, K",
                    Dim::Pressure => "bar, kPa, MPa, psi",
                };
                return Err(format!(
                    "{u:?} is not a unit for {} (known: {known})",
                    reading.name()
                ));
            }
        };
        Ok(conv)
    }

    /// Converts a value.
    pub fn apply(self, v: f64) -> f64 {
        match self {
            UnitConv::Identity => v,
            UnitConv::Scale(f) => v * f,
            UnitConv::FahrenheitToC => (v - 32.0) * 5.0 / 9.0,
            UnitConv::KelvinToC => v - 273.15,
        }
    }
}

/// A configured field: a path, or a path with a unit.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum FieldSpec {
    /// `"path.to.field"` in the canonical unit.
    Path(String),
    /// `{ path = "…", unit = "F" }`.
    WithUnit {
        /// Dot-separated path; numeric parts index arrays.
        path: String,
        /// The unit the payload uses.
        #[serde(default)]
        unit: Option<String>,
    },
}

impl FieldSpec {
    /// The path.
    pub fn path(&self) -> &str {
        match self {
            FieldSpec::Path(p) => p,
            FieldSpec::WithUnit { path, .. } => path,
        }
    }
    /// The unit, if given.
    pub fn unit(&self) -> Option<&str> {
        match self {
            FieldSpec::Path(_) => None,
            FieldSpec::WithUnit { unit, .. } => unit.as_deref(),
        }
    }
}

/// The compiled mapping of one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMap {
    readings: Vec<(Reading, Vec<String>, UnitConv)>,
    seq: Vec<String>,
    ts: Vec<String>,
    /// When every path is a top-level key: those keys, for `extract_json`'s fast path.
    flat_keys: Option<Vec<String>>,
}

fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_string).collect()
}

impl FieldMap {
    /// Defaults for `kind` with `overrides` applied. Overrides were validated with the config;
    /// an invalid unit here falls back to the canonical unit.
    pub fn new(kind: MachineKind, overrides: &BTreeMap<String, FieldSpec>) -> FieldMap {
        let readings: Vec<(Reading, Vec<String>, UnitConv)> = Reading::of_kind(kind)
            .map(|r| match overrides.get(r.name()) {
                Some(spec) => {
                    let conv = spec
                        .unit()
                        .and_then(|u| UnitConv::parse(r, u).ok())
                        .unwrap_or(UnitConv::Identity);
                    (r, split(spec.path()), conv)
                }
                None => (r, vec![r.name().to_string()], UnitConv::Identity),
            })
            .collect();
        let path_of = |k: &str| {
            overrides
                .get(k)
                .map_or_else(|| vec![k.to_string()], |s| split(s.path()))
        };
        let (seq, ts) = (path_of("seq"), path_of("ts"));
        let paths = || readings.iter().map(|(_, p, _)| p).chain([&seq, &ts]);
        let flat_keys = paths()
            .all(|p| p.len() == 1)
            .then(|| paths().map(|p| p[0].clone()).collect());
        FieldMap {
            readings,
            seq,
            ts,
            flat_keys,
        }
    }

    /// The name (last path part) a reading is published under, for Sparkplug metric names.
    pub fn metric_name(&self, r: Reading) -> Option<(String, UnitConv)> {
        self.readings
            .iter()
            .find(|(x, _, _)| *x == r)
            .map(|(_, p, c)| (p.join("."), *c))
    }

    /// Every configured reading with its dotted path and conversion.
    pub fn entries(&self) -> impl Iterator<Item = (Reading, String, UnitConv)> + '_ {
        self.readings.iter().map(|(r, p, c)| (*r, p.join("."), *c))
    }
}

/// What one payload said.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// The publisher's sequence number, if the payload has one.
    pub seq: Option<u64>,
    /// The publisher's timestamp (UTC ms), if the payload has one.
    pub ts_ms: Option<i64>,
    /// The readings found, canonical units.
    pub values: Vec<(Reading, f64)>,
}

fn lookup<'v>(v: &'v serde_json::Value, path: &[String]) -> Option<&'v serde_json::Value> {
    let mut cur = v;
    for p in path {
        cur = match cur {
            serde_json::Value::Object(m) => m.get(p)?,
            serde_json::Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Parses a payload timestamp: epoch ms (numbers below 10^11 are taken as seconds) or an
/// RFC 3339 string.
pub fn parse_ts(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => {
            let f = n.as_f64()?;
            if !f.is_finite() || f < 0.0 {
                return None;
            }
            Some(if f < 1e11 {
                (f * 1000.0) as i64
            } else {
                f as i64
            })
        }
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis()),
        _ => None,
    }
}

/// Extracts seq, ts and readings from a payload's text: [`extract`] on the parsed JSON,
/// with the same results and errors.
///
/// Fast path, for mappings whose paths are all top-level keys (the defaults): only the
/// mapped keys' values are built, without a map of owned keys. A full `serde_json::Value`
/// and its drop were a sixth of the ingest's CPU. Anything the fast path does not accept
/// (not an object, bad JSON) goes the full way, which produces the error.
pub fn extract_json(map: &FieldMap, text: &str) -> Result<Extracted, String> {
    if let Some(keys) = &map.flat_keys {
        let mut de = serde_json::Deserializer::from_str(text);
        let picked = serde::de::DeserializeSeed::deserialize(TopLevel(keys), &mut de)
            .and_then(|v| de.end().map(|_| v));
        if let Ok(picked) = picked {
            // A repeated key keeps its last value, as in a parsed map.
            let get = |path: &[String]| {
                let i = keys.iter().position(|k| path.first() == Some(k))?;
                picked.iter().rev().find(|(k, _)| *k == i).map(|(_, v)| v)
            };
            return extract_by(map, get);
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("payload is not JSON: {e}"))?;
    extract(map, &v)
}

/// Deserialises a JSON object keeping only the values of `.0`'s keys, by key index.
struct TopLevel<'k>(&'k [String]);

impl<'de> serde::de::DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Vec<(usize, serde_json::Value)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TopLevel<'_> {
    type Value = Vec<(usize, serde_json::Value)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(self.0.len());
        while let Some(key) = a.next_key_seed(KeyIndex(self.0))? {
            match key {
                Some(i) => out.push((i, a.next_value()?)),
                None => {
                    a.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A map key as its index among the wanted keys, compared without allocating.
struct KeyIndex<'k>(&'k [String]);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIndex<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|w| w == k))
    }
}

/// Extracts seq, ts and readings. Missing readings are fine as long as one is present; a
/// present field of the wrong type is an error naming it.
pub fn extract(map: &FieldMap, v: &serde_json::Value) -> Result<Extracted, String> {
    if !v.is_object() {
        return Err("payload is not a JSON object".into());
    }
    extract_by(map, |path| lookup(v, path))
}

/// [`extract`] over any way of finding a path's value in a JSON object.
fn extract_by<'v>(
    map: &FieldMap,
    lookup: impl Fn(&[String]) -> Option<&'v serde_json::Value>,
) -> Result<Extracted, String> {
    let seq =
        match lookup(&map.seq) {
            None | Some(serde_json::Value::Null) => None,
            Some(s) => Some(s.as_u64().ok_or_else(|| {
                format!("field {}: not a non-negative integer", map.seq.join("."))
            })?),
        };
    let ts_ms = match lookup(&map.ts) {
        None | Some(serde_json::Value::Null) => None,
        Some(t) => Some(parse_ts(t).ok_or_else(|| {
            format!(
                "field {}: not epoch ms or an RFC 3339 time",
                map.ts.join(".")
            )
        })?),
    };
    let mut values = Vec::with_capacity(map.readings.len());
    for (r, path, conv) in &map.readings {
        match lookup(path) {
            None | Some(serde_json::Value::Null) => {}
            Some(x) => {
                let f = x
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| format!("field {}: not a number", path.join(".")))?;
                values.push((*r, conv.apply(f)));
            }
        }
    }
    if values.is_empty() {
        let expected: Vec<String> = map.readings.iter().map(|(_, p, _)| p.join(".")).collect();
        return Err(format!(
            "no known field (expected one of {})",
            expected.join(", ")
        ));
    }
    Ok(Extracted { seq, ts_ms, values })
}

/// The stored metrics JSON: `{"stitches":120345,"temp_c":152.5}` (whole numbers as integers).
/// Keys in name order, a repeated reading keeps its last value (what a JSON map built from
/// `values` serialises to). Written directly: this runs for every equipment message, and
/// building a `serde_json::Map` only to print it was a tenth of the ingest's CPU.
pub fn metrics_json(values: &[(Reading, f64)]) -> String {
    use std::fmt::Write as _;
    let mut sorted: Vec<(&str, f64)> = values.iter().map(|(r, v)| (r.name(), *v)).collect();
    sorted.sort_by_key(|(name, _)| *name); // stable: repeats keep their order
    let mut out = String::with_capacity(16 + 24 * sorted.len());
    out.push('{');
    for (i, (name, v)) in sorted.iter().enumerate() {
        if sorted.get(i + 1).is_some_and(|(next, _)| next == name) {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        // Reading names are plain ASCII identifiers: nothing to escape. Numbers as
        // `number` prints them, whole ones without building a Value.
        let _ = match whole(*v) {
            Some(n) => write!(out, "\"{name}\":{n}"),
            None => write!(out, "\"{name}\":{}", number(*v)),
        };
    }
    out.push('}');
    out
}

/// A JSON number, integral when the value is whole.
pub fn number(v: f64) -> serde_json::Value {
    match whole(v) {
        Some(n) => serde_json::Value::from(n),
        None => serde_json::Number::from_f64(v)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
    }
}

/// `v` as an integer when it is whole and exactly representable.
fn whole(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The reference for `extract_json`: a full parse, then `extract`.
    fn full_parse(map: &FieldMap, text: &str) -> Result<Extracted, String> {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| format!("payload is not JSON: {e}"))
            .and_then(|v| extract(map, &v))
    }

    #[test]
    fn extract_json_agrees_with_extract_on_the_parsed_value() {
        let flat = FieldMap::new(MachineKind::Sewing, &BTreeMap::new());
        assert!(flat.flat_keys.is_some());
        let mut o = BTreeMap::new();
        o.insert(
            "temp_c".to_string(),
            FieldSpec::WithUnit {
                path: "sensors.platen.t".into(),
                unit: Some("F".into()),
            },
        );
        let nested = FieldMap::new(MachineKind::Iron, &o);
        assert!(nested.flat_keys.is_none());
        let payloads = [
            r#"{"seq":42,"ts":1700000000000,"stitches":120345,"trims":812,"run_s":5230,"needle_stops":9,"speed_spm":3200}"#,
            r#"{"stitches": 1, "other": {"deep": [1, 2, {"x": "y"}]}, "trims": 2.5}"#,
            r#"{"stitches": 1, "stitches": 2}"#,
            r#"{"stitches": 7, "seq": null}"#,
            r#"{"stitches": "many"}"#,
            r#"{"seq": -1, "stitches": 1}"#,
            r#"{"ts": "2026-11-23T10:00:00Z", "trims": 3}"#,
            r#"{"ts": "yesterday", "trims": 3}"#,
            r#"{"speed": 1}"#,
            r#"{}"#,
            r#"[1, 2]"#,
            r#""stitches""#,
            r#"null"#,
            r#"{"stitches": 1} trailing"#,
            r#"{"stitches": 1"#,
            r#"{"sensors": {"platen": {"t": 302}}, "temp_c": 150}"#,
        ];
        for map in [&flat, &nested] {
            for p in payloads {
                assert_eq!(extract_json(map, p), full_parse(map, p), "{p}");
            }
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Random objects over mapped and unmapped keys, values of every JSON type, and
        /// random damage: the fast path answers exactly as the full parse does.
        #[test]
        fn extract_json_agrees_on_random_payloads(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["seq", "ts", "stitches", "trims", "run_s", "x", "temp_c"]),
                    proptest::prop_oneof![
                        proptest::num::i64::ANY.prop_map(|n| n.to_string()),
                        proptest::num::f64::NORMAL.prop_map(|f| f.to_string()),
                        proptest::strategy::Just("null".to_string()),
                        proptest::strategy::Just("true".to_string()),
                        "[a-z0-9:-]{0,12}".prop_map(|t| format!("{t:?}")),
                        proptest::strategy::Just(r#"{"a":[1,{"b":null}]}"#.to_string()),
                    ],
                ),
                0..8,
            ),
            cut in proptest::option::of(0usize..200),
        ) {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            let mut text = format!("{{{}}}", body.join(","));
            if let Some(c) = cut {
                text.truncate(c.min(text.len()));
            }
            let map = FieldMap::new(MachineKind::Sewing, &BTreeMap::new());
            proptest::prop_assert_eq!(extract_json(&map, &text), full_parse(&map, &text));
        }
    }

    #[test]
    fn metrics_json_matches_a_serialised_map() {
        let via_map = |values: &[(Reading, f64)]| {
            let mut m = serde_json::Map::new();
            for (r, v) in values {
                m.insert(r.name().to_string(), number(*v));
            }
            serde_json::Value::Object(m).to_string()
        };
        let cases: Vec<Vec<(Reading, f64)>> = vec![
            vec![],
            vec![(Reading::TempC, 151.0)],
            vec![(Reading::TempC, 152.5), (Reading::SteamBar, 4.1)],
            vec![
                (Reading::Trims, 812.0),
                (Reading::Stitches, 120_345.0),
                (Reading::RunS, 0.25),
                (Reading::NeedleStops, -3.0),
                (Reading::SpeedSpm, 1e20),
            ],
            vec![(Reading::DwellS, f64::NAN), (Reading::TempC, f64::INFINITY)],
            vec![
                (Reading::Trims, 1.0),
                (Reading::Stitches, 2.0),
                (Reading::Trims, 3.0),
            ],
        ];
        for values in cases {
            assert_eq!(metrics_json(&values), via_map(&values), "{values:?}");
        }
        assert_eq!(
            metrics_json(&[(Reading::TempC, 151.0)]),
            r#"{"temp_c":151}"#
        );
    }

    #[test]
    fn defaults_for_sewing() {
        let m = FieldMap::new(MachineKind::Sewing, &BTreeMap::new());
        let e = extract(
            &m,
            &json!({"seq": 42, "ts": 1700000000000i64, "stitches": 120345, "trims": 812, "run_s": 5230, "needle_stops": 9}),
        )
        .unwrap();
        assert_eq!(e.seq, Some(42));
        assert_eq!(e.ts_ms, Some(1_700_000_000_000));
        assert_eq!(e.values.len(), 4);
        assert_eq!(
            metrics_json(&e.values),
            r#"{"needle_stops":9,"run_s":5230,"stitches":120345,"trims":812}"#
        );
    }

    #[test]
    fn overrides_with_units_and_arrays() {
        let mut o = BTreeMap::new();
        o.insert(
            "temp_c".to_string(),
            FieldSpec::WithUnit {
                path: "sensors.0.t".into(),
                unit: Some("F".into()),
            },
        );
        o.insert(
            "steam_bar".into(),
            FieldSpec::WithUnit {
                path: "p".into(),
                unit: Some("kPa".into()),
            },
        );
        o.insert("seq".into(), FieldSpec::Path("hdr.n".into()));
        let m = FieldMap::new(MachineKind::Iron, &o);
        let e = extract(
            &m,
            &json!({"hdr": {"n": 3}, "sensors": [{"t": 212.0}], "p": 410, "ts": "2024-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert_eq!(e.seq, Some(3));
        assert_eq!(e.ts_ms, Some(1_704_067_200_000));
        assert_eq!(
            e.values,
            vec![(Reading::TempC, 100.0), (Reading::SteamBar, 4.1)]
        );
    }

    #[test]
    fn mistyped_and_missing_fields_are_errors() {
        let m = FieldMap::new(MachineKind::Iron, &BTreeMap::new());
        assert!(extract(&m, &json!({"temp_c": "hot"}))
            .unwrap_err()
            .contains("temp_c"));
        assert!(extract(&m, &json!({"seq": -1, "temp_c": 1}))
            .unwrap_err()
            .contains("seq"));
        assert!(extract(&m, &json!({"other": 1}))
            .unwrap_err()
            .contains("no known field"));
        assert!(extract(&m, &json!([1, 2])).is_err());
        assert!(extract(&m, &json!({"ts": true, "temp_c": 1})).is_err());
    }

    #[test]
    fn seconds_timestamps_are_scaled() {
        assert_eq!(parse_ts(&json!(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(parse_ts(&json!(-5)), None);
    }
}
