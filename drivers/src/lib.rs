//! Device I/O for Bobbin: turns serial scanners, USB-HID scanners (keyboard wedge and
//! HID POS) and UHF RFID readers into [`Reading`]s. Decoding of what was read lives in
//! `bobbin-codes`; this crate only frames bytes and keeps devices connected.
//!
//! Pure parts (framers, report decoders, M100 parser, repeat filter, backoff) are plain
//! types with unit tests; the I/O loops ([`spawn_device`]) are thin around them.
#![warn(missing_docs)]

pub mod backoff;
pub mod config;
pub mod device;
pub mod hex;
pub mod hid;
pub mod list;
pub mod mqtt;
pub mod reading;
pub mod rfid;
pub mod serial;
pub mod sim;
pub mod status;

pub use config::{DeviceConfig, DeviceKind, HidConfig, RfidSerialConfig, SerialConfig};
pub use device::{spawn_device, spawn_device_with_rejects, DeviceHandle, Feedback};
pub use hid::source::{
    spawn_hid_with, spawn_hid_with_rejects, OpenError, ReportOpener, ReportSource, SourceError,
};
pub use list::{list_devices, DeviceList};
pub use reading::{DecodeEvent, FrameReject, Reading, HINT_EPC};
pub use status::{DeviceState, DeviceStatus, RejectReason, StatusCell};
