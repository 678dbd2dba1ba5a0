//! The Bobbin agent: configuration, the durable journal, and the daemon behind the `bobbin`
//! CLI. See `ARCHITECTURE.md` at the repository root for the map.

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod equipment;
pub mod feedback;
pub mod journal;
pub mod logging;
pub mod maintenance;
pub mod masterdata;
pub mod station;
pub mod status;
pub mod systemd;
pub mod upload;
pub mod workflow;
