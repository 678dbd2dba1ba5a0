//! `bobbin devices`: the serial ports and HID devices present, to help write the config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Serialize, Serializer};

/// Serial ports and HID devices found on this machine.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceList {
    /// Serial ports (ttyACM, ttyUSB, hardware UARTs).
    pub serial: Vec<SerialPortEntry>,
    /// HID interfaces (one physical scanner may expose several).
    pub hid: Vec<HidEntry>,
    /// Problems met while listing (missing sysfs, hidapi failure); listing continues.
    pub errors: Vec<String>,
}

fn hex16<S: Serializer>(v: &Option<u16>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("{v:04x}")),
        None => s.serialize_none(),
    }
}

fn hex16_req<S: Serializer>(v: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:04x}"))
}

/// One serial port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SerialPortEntry {
    /// Device node, e.g. `/dev/ttyACM0`.
    pub path: String,
    /// Stable `/dev/serial/by-id/...` links pointing at it (use these in config).
    pub by_id: Vec<String>,
    /// `usb`, `pci`, `bluetooth` or `unknown`.
    pub port_type: String,
    /// USB vendor id (hex), when a USB device.
    #[serde(serialize_with = "hex16")]
    pub vid: Option<u16>,
    /// USB product id (hex).
    #[serde(serialize_with = "hex16")]
    pub pid: Option<u16>,
    /// USB serial number string.
    pub serial_number: Option<String>,
    /// USB manufacturer string.
    pub manufacturer: Option<String>,
    /// USB product string.
    pub product: Option<String>,
}

/// One HID interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HidEntry {
    /// hidraw node, e.g. `/dev/hidraw2`.
    pub path: String,
    /// USB vendor id (hex).
    #[serde(serialize_with = "hex16_req")]
    pub vid: u16,
    /// USB product id (hex).
    #[serde(serialize_with = "hex16_req")]
    pub pid: u16,
    /// Serial number string.
    pub serial_number: Option<String>,
    /// Top-level usage page (0x01 generic desktop, 0x8C bar code scanner).
    pub usage_page: u16,
    /// Top-level usage (0x06 keyboard, 0x02 bar code scanner).
    pub usage: u16,
    /// USB interface number.
    pub interface: i32,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// What it looks like: `keyboard` (wedge), `hid-pos` (scanner page 0x8C), `other`.
    pub role: String,
}

/// Lists serial ports (with USB ids where the port is on USB) and HID devices.
/// Never fails: problems go to [`DeviceList::errors`].
pub fn list_devices() -> DeviceList {
    let (serial, mut errors) = serial_ports();
    let (hid, hid_errors) = hid_devices();
    errors.extend(hid_errors);
    DeviceList {
        serial,
        hid,
        errors,
    }
}

/// Serial ports via `serialport::available_ports` (sysfs-based without libudev, USB info
/// included), plus the `/dev/serial/by-id` links pointing at each.
pub fn serial_ports() -> (Vec<SerialPortEntry>, Vec<String>) {
    let mut errors = Vec::new();
    // serialport's sysfs enumeration panics if /sys/class/tty is absent (containers).
    if !Path::new("/sys/class/tty").is_dir() {
        errors.push("serial: /sys/class/tty not found; cannot list serial ports".into());
        return (Vec::new(), errors);
    }
    let ports = match serialport::available_ports() {
        Ok(p) => p,
        Err(e) => {
            errors.push(format!("serial: {e}"));
            return (Vec::new(), errors);
        }
    };
    let by_id = by_id_links("/dev/serial/by-id");
    let mut out: Vec<SerialPortEntry> = ports
        .into_iter()
        .map(|p| {
            let canon = std::fs::canonicalize(&p.port_name)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_else(|_| p.port_name.clone());
            let links = by_id.get(&canon).cloned().unwrap_or_default();
            let mut e = SerialPortEntry {
                path: p.port_name,
                by_id: links,
                port_type: "unknown".into(),
                vid: None,
                pid: None,
                serial_number: None,
                manufacturer: None,
                product: None,
            };
            match p.port_type {
                serialport::SerialPortType::UsbPort(u) => {
                    e.port_type = "usb".into();
                    e.vid = Some(u.vid);
                    e.pid = Some(u.pid);
                    e.serial_number = u.serial_number;
                    e.manufacturer = u.manufacturer;
                    e.product = u.product;
                }
                serialport::SerialPortType::PciPort => e.port_type = "pci".into(),
                serialport::SerialPortType::BluetoothPort => e.port_type = "bluetooth".into(),
                serialport::SerialPortType::Unknown => {}
            }
            e
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    (out, errors)
}

/// Maps canonical device paths to the symlinks in `dir` that point at them.
fn by_id_links(dir: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return map;
    };
    for entry in entries.flatten() {
        let link = entry.path();
        if let Ok(target) = std::fs::canonicalize(&link) {
            map.entry(target.to_string_lossy().into_owned())
                .or_default()
                .push(link.to_string_lossy().into_owned());
        }
    }
    for v in map.values_mut() {
        v.sort();
    }
    map
}

fn hid_devices() -> (Vec<HidEntry>, Vec<String>) {
    let api = match hidapi::HidApi::new() {
        Ok(a) => a,
        Err(e) => return (Vec::new(), vec![format!("hid: {e}")]),
    };
    let mut out: Vec<HidEntry> = api
        .device_list()
        .map(|d| HidEntry {
            path: d.path().to_string_lossy().into_owned(),
            vid: d.vendor_id(),
            pid: d.product_id(),
            serial_number: d
                .serial_number()
                .map(str::to_owned)
                .filter(|s| !s.is_empty()),
            usage_page: d.usage_page(),
            usage: d.usage(),
            interface: d.interface_number(),
            manufacturer: d.manufacturer_string().map(str::to_owned),
            product: d.product_string().map(str::to_owned),
            role: role(d.usage_page(), d.usage()).into(),
        })
        .collect();
    out.sort_by(|a, b| (&a.path, a.usage_page, a.usage).cmp(&(&b.path, b.usage_page, b.usage)));
    (out, Vec::new())
}

fn role(page: u16, usage: u16) -> &'static str {
    match (page, usage) {
        (0x8C, _) => "hid-pos",
        (0x01, 0x06) => "keyboard",
        _ => "other",
    }
}

fn table(f: &mut fmt::Formatter<'_>, header: &[&str], rows: &[Vec<String>]) -> fmt::Result {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |f: &mut fmt::Formatter<'_>, cells: &mut dyn Iterator<Item = &str>| -> fmt::Result {
        let mut s = String::from("  ");
        for (i, c) in cells.enumerate() {
            if i + 1 < widths.len() {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                s.push_str(c);
            }
        }
        writeln!(f, "{}", s.trim_end())
    };
    line(f, &mut header.iter().copied())?;
    for r in rows {
        line(f, &mut r.iter().map(String::as_str))?;
    }
    Ok(())
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

impl fmt::Display for DeviceList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Serial ports:")?;
        if self.serial.is_empty() {
            writeln!(
                f,
                "  (none found) Plug the scanner or reader in; a USB scanner must be in USB serial\n  \
                 (CDC/\"USB COM\") mode to appear here. Access needs group `dialout`."
            )?;
        } else {
            let rows: Vec<Vec<String>> = self
                .serial
                .iter()
                .map(|p| {
                    vec![
                        p.path.clone(),
                        match (p.vid, p.pid) {
                            (Some(v), Some(d)) => format!("{v:04x}:{d:04x}"),
                            _ => p.port_type.clone(),
                        },
                        opt(&p.serial_number),
                        [p.manufacturer.as_deref(), p.product.as_deref()]
                            .iter()
                            .flatten()
                            .copied()
                            .collect::<Vec<_>>()
                            .join(" "),
                        p.by_id.first().cloned().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            table(f, &["PATH", "USB ID", "SERIAL", "PRODUCT", "BY-ID"], &rows)?;
            writeln!(
                f,
                "  config: kind = \"serial\" (or \"rfid-serial\") with path = \"<BY-ID link>\" or usb = \"<USB ID>\""
            )?;
        }
        writeln!(f)?;
        writeln!(f, "HID devices:")?;
        if self.hid.is_empty() {
            writeln!(
                f,
                "  (none found) Plug the scanner in. If it is plugged in, check that /dev/hidraw* exists\n  \
                 and is readable by this user (see the udev rule in drivers/README.md)."
            )?;
        } else {
            let rows: Vec<Vec<String>> = self
                .hid
                .iter()
                .map(|d| {
                    vec![
                        d.path.clone(),
                        format!("{:04x}:{:04x}", d.vid, d.pid),
                        format!("0x{:02x}/0x{:02x}", d.usage_page, d.usage),
                        d.role.clone(),
                        d.interface.to_string(),
                        opt(&d.serial_number),
                        [d.manufacturer.as_deref(), d.product.as_deref()]
                            .iter()
                            .flatten()
                            .copied()
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                })
                .collect();
            table(
                f,
                &[
                    "PATH",
                    "USB ID",
                    "PAGE/USAGE",
                    "ROLE",
                    "IF",
                    "SERIAL",
                    "PRODUCT",
                ],
                &rows,
            )?;
            writeln!(
                f,
                "  config: kind = \"hid\", vid = 0x..., pid = 0x..., usage_page = 0x8c (mode = \"pos\") or 0x01 (mode = \"wedge\")"
            )?;
        }
        for e in &self.errors {
            writeln!(f, "note: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_prints_hints() {
        let s = DeviceList::default().to_string();
        assert!(s.contains("Serial ports:\n  (none found)"));
        assert!(s.contains("HID devices:\n  (none found)"));
    }

    #[test]
    fn table_and_json() {
        let l = DeviceList {
            serial: vec![SerialPortEntry {
                path: "/dev/ttyACM0".into(),
                by_id: vec!["/dev/serial/by-id/usb-Honeywell_1900-if00".into()],
                port_type: "usb".into(),
                vid: Some(0x0c2e),
                pid: Some(0x0b61),
                serial_number: Some("17080B1234".into()),
                manufacturer: Some("Honeywell".into()),
                product: Some("1900".into()),
            }],
            hid: vec![HidEntry {
                path: "/dev/hidraw1".into(),
                vid: 0x0c2e,
                pid: 0x0b87,
                serial_number: None,
                usage_page: 0x8c,
                usage: 0x02,
                interface: 0,
                manufacturer: Some("Honeywell".into()),
                product: None,
                role: "hid-pos".into(),
            }],
            errors: vec!["hid: test".into()],
        };
        let s = l.to_string();
        assert!(
            s.contains("/dev/ttyACM0  0c2e:0b61  17080B1234  Honeywell 1900"),
            "{s}"
        );
        assert!(s.contains("0x8c/0x02"), "{s}");
        assert!(s.contains("note: hid: test"));
        let j = serde_json::to_value(&l).unwrap();
        assert_eq!(j["serial"][0]["vid"], "0c2e");
        assert_eq!(j["hid"][0]["pid"], "0b87");
    }

    #[test]
    fn listing_here_does_not_fail() {
        // This machine has no USB bus: the call must still return (possibly empty).
        let l = list_devices();
        let _ = l.to_string();
    }
}
