//! `DecodeConfig`: the `[codes]` section of the agent's TOML configuration.

use serde::{Deserialize, Serialize};

pub use crate::control::{ControlCodes, UidFormat};
pub use crate::trace::{TraceField, TraceFieldKind, TraceLayout};

/// GS1 parsing options (the `[codes.gs1]` section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gs1Config {
    /// Text a wedge scanner types for FNC1/GS (byte 0x1D is always accepted).
    pub fnc1_substitutes: Vec<String>,
    /// Accept GS1 element strings that arrive with no AIM identifier or leading FNC1.
    pub unprefixed: bool,
    /// Accept a bare 12- or 13-digit UPC-A/EAN-13 with no AIM identifier as (01).
    pub bare_gtin: bool,
    /// In Digital Link paths accept GTIN-8/12/13 and left-pad them to 14 digits.
    pub dl_zero_suppressed_gtin: bool,
}

impl Default for Gs1Config {
    fn default() -> Self {
        Self {
            fnc1_substitutes: vec!["^".to_owned(), "~".to_owned(), "<GS>".to_owned()],
            unprefixed: true,
            bare_gtin: true,
            dl_zero_suppressed_gtin: true,
        }
    }
}

impl Gs1Config {
    /// Check the section; `prefix` is its TOML path (e.g. `gs1`).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        for (i, s) in self.fnc1_substitutes.iter().enumerate() {
            let key = format!("{prefix}.fnc1_substitutes[{i}]");
            match s.as_bytes().first() {
                None => return Err(format!("{key}: must not be empty")),
                Some(c) if c.is_ascii_alphanumeric() => {
                    return Err(format!(
                        "{key}: must not start with a letter or digit (it would be read as data)"
                    ))
                }
                _ if !s.is_ascii() => return Err(format!("{key}: must be ASCII")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Decoder configuration (the `[codes]` section of the agent's TOML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// DG trace-code layout.
    pub trace: TraceLayout,
    /// GS1 element string / Digital Link options.
    pub gs1: Gs1Config,
    /// Station control codes.
    pub control: ControlCodes,
    /// Accept printable text that matches no scheme as `opaque` (key = the text) instead of an error.
    pub opaque: bool,
    /// Longest input accepted, in bytes.
    pub max_len: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            trace: TraceLayout::default(),
            gs1: Gs1Config::default(),
            control: ControlCodes::default(),
            opaque: false,
            max_len: 4096,
        }
    }
}

impl DecodeConfig {
    /// Check the whole configuration; the error names the offending key, e.g.
    /// `trace.fields[1].width: must be > 0`.
    pub fn validate(&self) -> Result<(), String> {
        self.trace.validate("trace")?;
        self.gs1.validate("gs1")?;
        self.control.validate("control")?;
        if self.max_len == 0 {
            return Err("max_len: must be > 0".to_owned());
        }
        let trace_len = self.trace.len();
        if let Some((name, _)) = [
            ("control.result_pass", &self.control.result_pass),
            ("control.result_fail", &self.control.result_fail),
            ("control.logout", &self.control.logout),
        ]
        .into_iter()
        .find(|(_, v)| v.len() == trace_len && self.trace.looks_like(v.as_bytes()))
        {
            return Err(format!("{name}: has the shape of a trace code"));
        }
        Ok(())
    }
}
