//! Device configuration, embedded by the agent as `[[devices]]` tables in its TOML config.
//!
//! Shape: `DeviceConfig { id, kind }` with `kind` flattened and internally tagged, so a
//! device is one flat table: `id = "..."`, `kind = "serial"`, then that kind's keys.
//! serde cannot combine `flatten` with `deny_unknown_fields` on the *outer* struct, so the
//! refusal of unknown keys lives on each kind's struct (they receive every key except `id`
//! and `kind`), which refuses them just the same — see the tests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hex::HexBytes;
use crate::rfid::m100;

/// Largest `max_len` accepted anywhere.
pub const MAX_FRAME_LIMIT: usize = 65536;

/// One configured device.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DeviceConfig {
    /// Stable id used in readings, records and the status API (letters, digits, `-_.`).
    pub id: String,
    /// The device kind and its settings (`kind = "serial" | "hid" | "rfid-serial"`).
    #[serde(flatten)]
    pub kind: DeviceKind,
}

/// The kinds of device a driver exists for.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DeviceKind {
    /// A barcode scanner on a serial port (RS-232, USB CDC-ACM, USB-serial bridge).
    Serial(SerialConfig),
    /// A USB-HID barcode scanner (keyboard wedge or HID POS) read through hidraw.
    Hid(HidConfig),
    /// A UHF RFID reader on a serial port.
    RfidSerial(RfidSerialConfig),
}

impl DeviceConfig {
    /// The kind as written in config (`serial`, `hid`, `rfid-serial`).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            DeviceKind::Serial(_) => "serial",
            DeviceKind::Hid(_) => "hid",
            DeviceKind::RfidSerial(_) => "rfid-serial",
        }
    }

    /// Checks value ranges and combinations; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "id: {:?} must be 1 to 64 characters from A-Z a-z 0-9 - _ .",
                self.id
            ));
        }
        match &self.kind {
            DeviceKind::Serial(c) => c.validate(),
            DeviceKind::Hid(c) => c.validate(),
            DeviceKind::RfidSerial(c) => c.validate(),
        }
    }
}

/// Checks that device ids are unique and each device is valid.
pub fn validate_all(devices: &[DeviceConfig]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, d) in devices.iter().enumerate() {
        d.validate().map_err(|e| format!("devices[{i}].{e}"))?;
        if !seen.insert(d.id.as_str()) {
            return Err(format!("devices[{i}].id: duplicate id {:?}", d.id));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Serial line settings
// ---------------------------------------------------------------------------------------

/// A USB device match `VID:PID[:SERIAL]` (hex VID/PID), e.g. `"0c2e:0b61"` or
/// `"1a86:7523:A1B2C3"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbMatch {
    /// USB vendor id.
    pub vid: u16,
    /// USB product id.
    pub pid: u16,
    /// USB serial number string, when several identical devices are attached.
    pub serial: Option<String>,
}

impl FromStr for UsbMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let hex16 = |p: Option<&str>| -> Result<u16, String> {
            let p = p.unwrap_or("").trim();
            let p = p.strip_prefix("0x").unwrap_or(p);
            if p.is_empty() || p.len() > 4 {
                return Err(format!("{s:?} is not VID:PID[:SERIAL] in hex"));
            }
            u16::from_str_radix(p, 16).map_err(|_| format!("{s:?} is not VID:PID[:SERIAL] in hex"))
        };
        let vid = hex16(parts.next())?;
        let pid = hex16(parts.next())?;
        let serial = parts.next().map(str::to_owned).filter(|s| !s.is_empty());
        Ok(UsbMatch { vid, pid, serial })
    }
}

impl fmt::Display for UsbMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)?;
        if let Some(s) = &self.serial {
            write!(f, ":{s}")?;
        }
        Ok(())
    }
}

impl Serialize for UsbMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UsbMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parity {
    /// No parity bit (the usual 8N1).
    #[default]
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowControl {
    /// None (most scanners).
    #[default]
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

/// Where a serial device is and how its line is set up (shared by serial scanners and
/// RFID readers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSettings {
    /// Device path (may be a symlink such as `/dev/serial/by-id/...`).
    pub path: Option<String>,
    /// USB match, resolved to a tty at each (re)connect.
    pub usb: Option<UsbMatch>,
    /// Baud rate.
    pub baud: u32,
    /// Data bits (5-8).
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
    /// Flow control.
    pub flow_control: FlowControl,
}

impl PortSettings {
    fn validate(&self) -> Result<(), String> {
        match (&self.path, &self.usb) {
            (None, None) => return Err("path: one of `path` or `usb` is required".into()),
            (Some(_), Some(_)) => return Err("usb: set either `path` or `usb`, not both".into()),
            (Some(p), None) if p.trim().is_empty() => return Err("path: must not be empty".into()),
            _ => {}
        }
        if !(50..=4_000_000).contains(&self.baud) {
            return Err("baud: must be between 50 and 4000000".into());
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err("data_bits: must be 5, 6, 7 or 8".into());
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Err("stop_bits: must be 1 or 2".into());
        }
        Ok(())
    }

    /// Human description of where the port is (for logs and status).
    pub fn describe(&self) -> String {
        match (&self.path, &self.usb) {
            (Some(p), _) => p.clone(),
            (None, Some(u)) => format!("usb {u}"),
            (None, None) => "(no port)".into(),
        }
    }
}

fn default_baud_scanner() -> u32 {
    9600
}
fn default_baud_rfid() -> u32 {
    115_200
}
fn default_data_bits() -> u8 {
    8
}
fn default_stop_bits() -> u8 {
    1
}

// ---------------------------------------------------------------------------------------
// Serial scanner
// ---------------------------------------------------------------------------------------

/// A serial barcode scanner.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    /// Device path, e.g. `/dev/serial/by-id/usb-Honeywell_...-if00` (stable) or `/dev/ttyACM0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Instead of `path`: USB `VID:PID[:SERIAL]` in hex, resolved at every (re)connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb: Option<UsbMatch>,
    /// Baud rate (ignored by CDC-ACM devices, required by RS-232 ones).
    #[serde(default = "default_baud_scanner")]
    pub baud: u32,
    /// Data bits, 5-8.
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// Parity: `none`, `odd`, `even`.
    #[serde(default)]
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Flow control: `none`, `software`, `hardware`.
    #[serde(default)]
    pub flow_control: FlowControl,
    /// How scans are delimited in the byte stream.
    #[serde(default)]
    pub framing: FramingConfig,
    /// Bytes written back to the scanner for good/bad feedback (beep, LED).
    #[serde(default)]
    pub feedback: FeedbackConfig,
}

impl SerialConfig {
    /// A config for `path` with every other key at its default.
    pub fn with_path(path: &str) -> Self {
        SerialConfig {
            path: Some(path.to_owned()),
            usb: None,
            baud: default_baud_scanner(),
            data_bits: default_data_bits(),
            parity: Parity::None,
            stop_bits: default_stop_bits(),
            flow_control: FlowControl::None,
            framing: FramingConfig::default(),
            feedback: FeedbackConfig::default(),
        }
    }

    /// The port part of this config.
    pub fn port_settings(&self) -> PortSettings {
        PortSettings {
            path: self.path.clone(),
            usb: self.usb.clone(),
            baud: self.baud,
            data_bits: self.data_bits,
            parity: self.parity,
            stop_bits: self.stop_bits,
            flow_control: self.flow_control,
        }
    }

    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.port_settings().validate()?;
        self.framing
            .validate()
            .map_err(|e| format!("framing.{e}"))?;
        self.feedback
            .validate()
            .map_err(|e| format!("feedback.{e}"))
    }
}

/// How the serial framer splits the byte stream into scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FramingMode {
    /// A scan ends with a line terminator (`terminator`).
    #[default]
    Line,
    /// A scan is the bytes between `stx` and `etx`; bytes outside are discarded and counted
    /// (CR/LF after ETX are ignored silently).
    StxEtx,
    /// Every `length` bytes are one scan.
    Fixed,
    /// A scan ends when the line is quiet for `idle_gap_ms`.
    Idle,
}

/// Line terminator for `mode = "line"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Terminator {
    /// CR (0x0D).
    Cr,
    /// LF (0x0A).
    Lf,
    /// CR LF: ends at LF, and one CR just before it is dropped.
    Crlf,
    /// Either CR or LF; empty lines (the LF of a CR LF pair) are skipped.
    #[default]
    Any,
}

/// What to do with an unfinished frame when the line goes idle for `idle_gap_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdleAction {
    /// Deliver it as a scan (a scanner with a lost suffix).
    Emit,
    /// Reject and count it as incomplete.
    Reject,
}

fn default_stx() -> u8 {
    0x02
}
fn default_etx() -> u8 {
    0x03
}
fn default_max_len() -> usize {
    4096
}

/// Framing of a serial scanner's byte stream (`[devices.framing]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FramingConfig {
    /// `line`, `stx-etx`, `fixed` or `idle`.
    #[serde(default)]
    pub mode: FramingMode,
    /// For `line`: `cr`, `lf`, `crlf` or `any`.
    #[serde(default)]
    pub terminator: Terminator,
    /// For `stx-etx`: the start byte (default 0x02).
    #[serde(default = "default_stx")]
    pub stx: u8,
    /// For `stx-etx`: the end byte (default 0x03).
    #[serde(default = "default_etx")]
    pub etx: u8,
    /// For `fixed`: bytes per scan.
    #[serde(default)]
    pub length: usize,
    /// Quiet time in ms that ends (`idle`) or flushes (other modes) a frame; 0 = off.
    #[serde(default)]
    pub idle_gap_ms: u64,
    /// What an idle gap does to an unfinished frame: `emit` or `reject`
    /// (default: `emit` for `line`/`idle`, `reject` for `stx-etx`/`fixed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_on_idle: Option<IdleAction>,
    /// Longest accepted scan in bytes (1-65536); longer ones are rejected and counted.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
}

impl Default for FramingConfig {
    fn default() -> Self {
        FramingConfig {
            mode: FramingMode::Line,
            terminator: Terminator::Any,
            stx: default_stx(),
            etx: default_etx(),
            length: 0,
            idle_gap_ms: 0,
            partial_on_idle: None,
            max_len: default_max_len(),
        }
    }
}

impl FramingConfig {
    /// Checks ranges; the error names the key (without the `framing.` prefix).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_FRAME_LIMIT).contains(&self.max_len) {
            return Err(format!("max_len: must be between 1 and {MAX_FRAME_LIMIT}"));
        }
        if self.idle_gap_ms > 60_000 {
            return Err("idle_gap_ms: must be at most 60000".into());
        }
        match self.mode {
            FramingMode::StxEtx if self.stx == self.etx => Err("etx: must differ from stx".into()),
            FramingMode::Fixed if self.length == 0 || self.length > self.max_len => Err(format!(
                "length: must be between 1 and max_len ({}) for mode \"fixed\"",
                self.max_len
            )),
            FramingMode::Idle if self.idle_gap_ms == 0 => {
                Err("idle_gap_ms: must be at least 1 for mode \"idle\"".into())
            }
            _ => Ok(()),
        }
    }

    /// The effective idle action (explicit, or the mode's default).
    pub fn idle_action(&self) -> IdleAction {
        self.partial_on_idle.unwrap_or(match self.mode {
            FramingMode::Line | FramingMode::Idle => IdleAction::Emit,
            FramingMode::StxEtx | FramingMode::Fixed => IdleAction::Reject,
        })
    }
}

/// Bytes written back to a serial scanner after a scan is accepted or refused
/// (`[devices.feedback]`); what they do (beep, LED) is scanner-specific.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    /// Written on `Feedback::Good`, hex (e.g. `"07"` = BEL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good: Option<HexBytes>,
    /// Written on `Feedback::Bad`, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad: Option<HexBytes>,
}

impl FeedbackConfig {
    fn validate(&self) -> Result<(), String> {
        for (key, v) in [("good", &self.good), ("bad", &self.bad)] {
            if let Some(b) = v {
                if b.0.is_empty() || b.0.len() > 256 {
                    return Err(format!("{key}: must be 1 to 256 bytes"));
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// HID
// ---------------------------------------------------------------------------------------

/// How a HID scanner reports scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HidMode {
    /// Keyboard wedge: boot-keyboard reports, one key per character.
    #[default]
    Wedge,
    /// HID POS (usage page 0x8C): whole scans in scanned-data reports.
    Pos,
}

/// A USB-HID scanner, matched by VID/PID/serial/usage page or by hidraw path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HidConfig {
    /// USB vendor id (write it as hex: `vid = 0x0c2e`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vid: Option<u16>,
    /// USB product id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u16>,
    /// USB serial number, to tell identical scanners apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// HID usage page of the interface to open (0x01 keyboard, 0x8C HID POS); a composite
    /// scanner exposes several interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_page: Option<u16>,
    /// Instead of a USB match: the hidraw path (e.g. `/dev/hidraw3`; not stable across replug).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `wedge` or `pos`.
    #[serde(default)]
    pub mode: HidMode,
    /// Keyboard-wedge decoding settings (`[devices.wedge]`).
    #[serde(default)]
    pub wedge: WedgeConfig,
    /// HID POS decoding settings (`[devices.pos]`).
    #[serde(default)]
    pub pos: PosConfig,
}

impl HidConfig {
    /// A config matching `vid:pid` with every other key at its default.
    pub fn with_ids(vid: u16, pid: u16) -> Self {
        HidConfig {
            vid: Some(vid),
            pid: Some(pid),
            serial: None,
            usage_page: None,
            path: None,
            mode: HidMode::Wedge,
            wedge: WedgeConfig::default(),
            pos: PosConfig::default(),
        }
    }

    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.vid.is_none() && self.path.is_none() {
            return Err(
                "vid: one of `vid` (with optional pid/serial/usage_page) or `path` is required"
                    .into(),
            );
        }
        if self.vid.is_none() && (self.pid.is_some() || self.serial.is_some()) {
            return Err("vid: `pid`/`serial` need `vid`".into());
        }
        if let Some(p) = &self.path {
            if p.trim().is_empty() {
                return Err("path: must not be empty".into());
            }
        }
        self.wedge.validate().map_err(|e| format!("wedge.{e}"))?;
        self.pos.validate().map_err(|e| format!("pos.{e}"))
    }

    /// Human description of the match (for logs and status).
    pub fn describe(&self) -> String {
        if let Some(p) = &self.path {
            return p.clone();
        }
        let mut s = String::from("hid");
        if let Some(v) = self.vid {
            s.push_str(&format!(" {v:04x}"));
        }
        if let Some(p) = self.pid {
            s.push_str(&format!(":{p:04x}"));
        }
        if let Some(sn) = &self.serial {
            s.push_str(&format!(" serial {sn}"));
        }
        if let Some(u) = self.usage_page {
            s.push_str(&format!(" usage page 0x{u:02x}"));
        }
        s
    }
}

/// Keyboard layout the scanner is set to (the usage → character table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyboardLayout {
    /// US English.
    #[default]
    Us,
}

/// The key that ends a wedge scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WedgeTerminator {
    /// Enter or keypad Enter.
    #[default]
    Enter,
    /// Tab.
    Tab,
    /// No terminator key: scans end on the inter-report gap only.
    None,
}

/// A special key that a scanner sends instead of GS (0x1D), per its keyboard function-code
/// table (Ctrl+] and Alt+0029 are always understood and need no setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum GsKey {
    DownArrow,
    UpArrow,
    LeftArrow,
    RightArrow,
    Insert,
    Home,
    End,
    PageUp,
    PageDown,
    F1,
    F2,
    F3,
    F4,
    F5,
    F6,
    F7,
    F8,
    F9,
    F10,
    F11,
    F12,
}

impl GsKey {
    /// The keyboard-page usage id of this key.
    pub fn usage(self) -> u8 {
        match self {
            GsKey::DownArrow => 0x51,
            GsKey::UpArrow => 0x52,
            GsKey::LeftArrow => 0x50,
            GsKey::RightArrow => 0x4F,
            GsKey::Insert => 0x49,
            GsKey::Home => 0x4A,
            GsKey::End => 0x4D,
            GsKey::PageUp => 0x4B,
            GsKey::PageDown => 0x4E,
            GsKey::F1 => 0x3A,
            GsKey::F2 => 0x3B,
            GsKey::F3 => 0x3C,
            GsKey::F4 => 0x3D,
            GsKey::F5 => 0x3E,
            GsKey::F6 => 0x3F,
            GsKey::F7 => 0x40,
            GsKey::F8 => 0x41,
            GsKey::F9 => 0x42,
            GsKey::F10 => 0x43,
            GsKey::F11 => 0x44,
            GsKey::F12 => 0x45,
        }
    }
}

fn default_wedge_gap_ms() -> u64 {
    100
}

/// Keyboard-wedge decoding (`[devices.wedge]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WedgeConfig {
    /// Keyboard layout configured in the scanner (`us`).
    #[serde(default)]
    pub layout: KeyboardLayout,
    /// Key that ends a scan: `enter`, `tab` or `none`.
    #[serde(default)]
    pub terminator: WedgeTerminator,
    /// Special key the scanner sends for GS, e.g. `down-arrow` (unset: only Ctrl+] / Alt+0029).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gs_key: Option<GsKey>,
    /// Report ID prefixed to each report when the keyboard collection uses numbered reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<u8>,
    /// Quiet time in ms after which an unterminated scan is delivered; 0 = off.
    #[serde(default = "default_wedge_gap_ms")]
    pub gap_ms: u64,
    /// Longest accepted scan in characters (1-65536).
    #[serde(default = "default_max_len")]
    pub max_len: usize,
}

impl Default for WedgeConfig {
    fn default() -> Self {
        WedgeConfig {
            layout: KeyboardLayout::Us,
            terminator: WedgeTerminator::Enter,
            gs_key: None,
            report_id: None,
            gap_ms: default_wedge_gap_ms(),
            max_len: default_max_len(),
        }
    }
}

impl WedgeConfig {
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_FRAME_LIMIT).contains(&self.max_len) {
            return Err(format!("max_len: must be between 1 and {MAX_FRAME_LIMIT}"));
        }
        if self.gap_ms > 10_000 {
            return Err("gap_ms: must be at most 10000".into());
        }
        if self.terminator == WedgeTerminator::None && self.gap_ms == 0 {
            return Err("gap_ms: must be at least 1 when terminator = \"none\"".into());
        }
        Ok(())
    }
}

/// HID POS report layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PosLayout {
    /// Honeywell / Access-IS / Zebra / Datalogic: ID, length, 3-byte AIM, 56 data, code id,
    /// reserved, continued flag (64 bytes).
    #[default]
    Honeywell,
    /// Newland (VID 0x1EAB): ID, length, 56 data, reserved, symbology byte, continued flag;
    /// no AIM id in the report.
    Newland,
}

fn default_pos_timeout_ms() -> u64 {
    500
}
fn default_pos_max_len() -> usize {
    8192
}

/// HID POS decoding (`[devices.pos]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PosConfig {
    /// Report layout: `honeywell` or `newland`.
    #[serde(default)]
    pub layout: PosLayout,
    /// A suffix some scanners append even in POS mode (e.g. `"0D"`), stripped from the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_suffix: Option<HexBytes>,
    /// How long to wait for the next report of a multi-report scan, in ms.
    #[serde(default = "default_pos_timeout_ms")]
    pub reassembly_timeout_ms: u64,
    /// Longest accepted scan in bytes after reassembly (1-65536).
    #[serde(default = "default_pos_max_len")]
    pub max_len: usize,
}

impl Default for PosConfig {
    fn default() -> Self {
        PosConfig {
            layout: PosLayout::Honeywell,
            strip_suffix: None,
            reassembly_timeout_ms: default_pos_timeout_ms(),
            max_len: default_pos_max_len(),
        }
    }
}

impl PosConfig {
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_FRAME_LIMIT).contains(&self.max_len) {
            return Err(format!("max_len: must be between 1 and {MAX_FRAME_LIMIT}"));
        }
        if !(1..=60_000).contains(&self.reassembly_timeout_ms) {
            return Err("reassembly_timeout_ms: must be between 1 and 60000".into());
        }
        if let Some(s) = &self.strip_suffix {
            if s.0.is_empty() || s.0.len() > 16 {
                return Err("strip_suffix: must be 1 to 16 bytes".into());
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// RFID on serial
// ---------------------------------------------------------------------------------------

/// The wire protocol of a serial RFID reader (never auto-detected: two protocols share the
/// 0xBB/0x7E markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RfidProtocol {
    /// MagicRF M100/QM100 binary frames `BB type cmd PL(2) payload checksum 7E`.
    #[default]
    M100,
    /// ASCII output mode: one hex EPC per line (CR and/or LF).
    Ascii,
}

fn default_repeat_window_ms() -> u64 {
    2000
}
fn default_repeat_capacity() -> usize {
    4096
}
fn default_true() -> bool {
    true
}
fn default_rfid_max_len() -> usize {
    1024
}

/// A UHF RFID reader on a serial port.
///
/// The port keys repeat [`SerialConfig`]'s rather than flatten a shared struct: a
/// flattened struct would make serde accept unknown keys (it cannot combine `flatten`
/// with `deny_unknown_fields`), and the default baud differs. [`PortSettings`] is where
/// both meet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RfidSerialConfig {
    /// Device path (a `/dev/serial/by-id/...` link is stable across replug).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Instead of `path`: USB `VID:PID[:SERIAL]` in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb: Option<UsbMatch>,
    /// Baud rate (M100 modules default to 115200).
    #[serde(default = "default_baud_rfid")]
    pub baud: u32,
    /// Data bits, 5-8.
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// Parity: `none`, `odd`, `even`.
    #[serde(default)]
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Flow control: `none`, `software`, `hardware`.
    #[serde(default)]
    pub flow_control: FlowControl,
    /// `m100` (binary) or `ascii` (hex EPC per line).
    #[serde(default)]
    pub protocol: RfidProtocol,
    /// Reads of the same EPC closer together than this (ms) are one reading; 0 = off.
    #[serde(default = "default_repeat_window_ms")]
    pub repeat_window_ms: u64,
    /// How many distinct EPCs the repeat filter remembers (bounds its memory).
    #[serde(default = "default_repeat_capacity")]
    pub repeat_capacity: usize,
    /// Check the tag's Gen2 CRC-16 carried in M100 notifications.
    #[serde(default = "default_true")]
    pub verify_tag_crc: bool,
    /// Bytes written after each connect to start reading, hex (e.g. M100 multiple
    /// inventory `"BB 00 27 00 03 22 27 10 83 7E"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_command: Option<HexBytes>,
    /// Re-send `start_command` every this many ms (0 = only once per connect).
    #[serde(default)]
    pub command_interval_ms: u64,
    /// Longest accepted frame or line in bytes (1-65536).
    #[serde(default = "default_rfid_max_len")]
    pub max_len: usize,
}

impl RfidSerialConfig {
    /// A config for `path` with every other key at its default.
    pub fn with_path(path: &str, protocol: RfidProtocol) -> Self {
        RfidSerialConfig {
            path: Some(path.to_owned()),
            usb: None,
            baud: default_baud_rfid(),
            data_bits: default_data_bits(),
            parity: Parity::None,
            stop_bits: default_stop_bits(),
            flow_control: FlowControl::None,
            protocol,
            repeat_window_ms: default_repeat_window_ms(),
            repeat_capacity: default_repeat_capacity(),
            verify_tag_crc: true,
            start_command: None,
            command_interval_ms: 0,
            max_len: default_rfid_max_len(),
        }
    }

    /// The port part of this config.
    pub fn port_settings(&self) -> PortSettings {
        PortSettings {
            path: self.path.clone(),
            usb: self.usb.clone(),
            baud: self.baud,
            data_bits: self.data_bits,
            parity: self.parity,
            stop_bits: self.stop_bits,
            flow_control: self.flow_control,
        }
    }

    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.port_settings().validate()?;
        if self.repeat_window_ms > 3_600_000 {
            return Err("repeat_window_ms: must be at most 3600000".into());
        }
        if !(1..=1_000_000).contains(&self.repeat_capacity) {
            return Err("repeat_capacity: must be between 1 and 1000000".into());
        }
        if !(8..=MAX_FRAME_LIMIT).contains(&self.max_len) {
            return Err(format!("max_len: must be between 8 and {MAX_FRAME_LIMIT}"));
        }
        if let Some(cmd) = &self.start_command {
            if cmd.0.is_empty() || cmd.0.len() > 1024 {
                return Err("start_command: must be 1 to 1024 bytes".into());
            }
            if self.protocol == RfidProtocol::M100 {
                m100::check_frame(&cmd.0).map_err(|e| format!("start_command: {e}"))?;
            }
        }
        if self.command_interval_ms != 0 && self.command_interval_ms < 10 {
            return Err("command_interval_ms: must be 0 or at least 10".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        devices: Vec<DeviceConfig>,
    }

    fn parse(s: &str) -> Result<Vec<DeviceConfig>, String> {
        toml::from_str::<File>(s)
            .map(|f| f.devices)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn snippet_parses_and_validates() {
        let text = include_str!("../config-snippet.toml");
        let devices = parse(text).expect("config-snippet.toml parses");
        assert_eq!(devices.len(), 5);
        validate_all(&devices).expect("snippet validates");
        let kinds: Vec<&str> = devices.iter().map(|d| d.kind_name()).collect();
        assert_eq!(kinds, ["serial", "serial", "hid", "hid", "rfid-serial"]);
    }

    #[test]
    fn minimal_serial_gets_defaults() {
        let d = parse("[[devices]]\nid = \"s1\"\nkind = \"serial\"\npath = \"/dev/ttyACM0\"\n")
            .unwrap();
        let DeviceKind::Serial(c) = &d[0].kind else {
            panic!("not serial")
        };
        assert_eq!(c, &SerialConfig::with_path("/dev/ttyACM0"));
        assert_eq!(c.framing.idle_action(), IdleAction::Emit);
        d[0].validate().unwrap();
    }

    #[test]
    fn unknown_key_at_device_level_is_refused() {
        let e = parse(
            "[[devices]]\nid = \"s1\"\nkind = \"serial\"\npath = \"/dev/x\"\nbaud_rate = 9600\n",
        )
        .unwrap_err();
        assert!(e.contains("baud_rate"), "{e}");
        let e = parse("[[devices]]\nid = \"h1\"\nkind = \"hid\"\nvid = 1\nusagepage = 2\n")
            .unwrap_err();
        assert!(e.contains("usagepage"), "{e}");
        let e = parse(
            "[[devices]]\nid = \"r1\"\nkind = \"rfid-serial\"\npath = \"/dev/x\"\nwindow = 1\n",
        )
        .unwrap_err();
        assert!(e.contains("window"), "{e}");
    }

    #[test]
    fn unknown_key_in_sub_table_is_refused() {
        let e = parse(
            "[[devices]]\nid = \"s1\"\nkind = \"serial\"\npath = \"/dev/x\"\n[devices.framing]\nmaxlen = 5\n",
        )
        .unwrap_err();
        assert!(e.contains("maxlen"), "{e}");
        let e = parse(
            "[[devices]]\nid = \"h1\"\nkind = \"hid\"\nvid = 1\n[devices.wedge]\nterm = \"tab\"\n",
        )
        .unwrap_err();
        assert!(e.contains("term"), "{e}");
    }

    #[test]
    fn unknown_kind_and_missing_kind_are_refused() {
        assert!(parse("[[devices]]\nid = \"x\"\nkind = \"usb\"\n").is_err());
        assert!(parse("[[devices]]\nid = \"x\"\npath = \"/dev/x\"\n").is_err());
    }

    #[test]
    fn validate_names_the_key() {
        let mut c = SerialConfig::with_path("/dev/x");
        c.framing.max_len = 0;
        let d = DeviceConfig {
            id: "s1".into(),
            kind: DeviceKind::Serial(c.clone()),
        };
        assert_eq!(
            d.validate().unwrap_err(),
            "framing.max_len: must be between 1 and 65536"
        );
        c.framing.max_len = 10;
        c.framing.mode = FramingMode::Fixed;
        assert!(c.validate().unwrap_err().starts_with("framing.length:"));
        c.framing.mode = FramingMode::Idle;
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("framing.idle_gap_ms:"));
        let mut c = SerialConfig::with_path("/dev/x");
        c.path = None;
        assert!(c.validate().unwrap_err().starts_with("path:"));
        c.usb = Some("0c2e:0b61".parse().unwrap());
        c.validate().unwrap();
        c.path = Some("/dev/x".into());
        assert!(c.validate().unwrap_err().starts_with("usb:"));

        let mut r = RfidSerialConfig::with_path("/dev/x", RfidProtocol::M100);
        r.start_command = Some(HexBytes(vec![0xBB, 0x00, 0x22, 0x00, 0x00, 0x23, 0x7E]));
        assert!(r.validate().unwrap_err().starts_with("start_command:"));
        r.start_command = Some(HexBytes(vec![0xBB, 0x00, 0x22, 0x00, 0x00, 0x22, 0x7E]));
        r.validate().unwrap();

        let mut h = HidConfig::with_ids(0x0c2e, 0x0b61);
        h.pos.reassembly_timeout_ms = 0;
        assert!(h
            .validate()
            .unwrap_err()
            .starts_with("pos.reassembly_timeout_ms:"));

        let bad_id = DeviceConfig {
            id: "a b".into(),
            kind: DeviceKind::Hid(HidConfig::with_ids(1, 2)),
        };
        assert!(bad_id.validate().unwrap_err().starts_with("id:"));
        let dup = vec![
            DeviceConfig {
                id: "a".into(),
                kind: DeviceKind::Hid(HidConfig::with_ids(1, 2)),
            },
            DeviceConfig {
                id: "a".into(),
                kind: DeviceKind::Hid(HidConfig::with_ids(1, 3)),
            },
        ];
        assert_eq!(
            validate_all(&dup).unwrap_err(),
            "devices[1].id: duplicate id \"a\""
        );
    }

    #[test]
    fn usb_match_parses() {
        let u: UsbMatch = "0c2e:0B61".parse().unwrap();
        assert_eq!((u.vid, u.pid, u.serial.as_deref()), (0x0c2e, 0x0b61, None));
        let u: UsbMatch = "1a86:7523:A1:B2".parse().unwrap();
        assert_eq!(u.serial.as_deref(), Some("A1:B2"));
        assert_eq!(u.to_string(), "1a86:7523:A1:B2");
        assert!("1a86".parse::<UsbMatch>().is_err());
        assert!("xyz:1".parse::<UsbMatch>().is_err());
        assert!("12345:1".parse::<UsbMatch>().is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        let text = include_str!("../config-snippet.toml");
        let devices = parse(text).unwrap();
        #[derive(Serialize)]
        struct Out<'a> {
            devices: &'a [DeviceConfig],
        }
        let again = toml::to_string(&Out { devices: &devices }).unwrap();
        assert_eq!(parse(&again).unwrap(), devices);
    }
}
