//! Equipment ingest over MQTT: sewing machines and irons (issue 6).
//!
//! ```text
//! broker ─▶ drivers::mqtt client ─▶ Processor (route topic, decode JSON / Sparkplug B,
//!   (embedded      (QoS 1, manual acks,     map fields and units, track Sparkplug seq)
//!    or external)   persistent session)            │ items, in batches
//!                                                  ▼
//!                          JournalHandle::exec: readings (dedup per machine+seq), rejects,
//!                          quality.alert records (debounced), gap records ── commit ──▶ ack
//! ```
//!
//! Pure parts: [`topic`], [`fields`], [`sparkplug`], [`alerts`], [`summary`], the config
//! checks; SQL in [`store`]; the I/O loop in [`ingest`].
//!
//! Record kinds written here: `quality.alert`, `quality.alert.end`, `equipment.gap`
//! (Sparkplug sequence gap or lost MQTT session), and `equipment.summary` (built by
//! [`store::unit_summaries`] when the station workflow closes a unit).

pub mod alerts;
pub mod config;
pub mod fields;
pub mod ingest;
pub mod sparkplug;
pub mod status;
pub mod store;
pub mod summary;
pub mod topic;

pub use config::{MachineConfig, MachineKind, MqttConfig, PatternConfig, SparkplugId};
pub use ingest::{run, spawn, Equipment, EquipmentError};
pub use status::{EquipmentStatus, MachineStatus};
pub use store::{machines_at, unit_summaries, UnitWindow};
