//! Bobbin's upload protocol: the canonical record form and its hash chain (shared by the
//! agent's journal and the receiver), the batch wire format and signature, the uploader,
//! and the reference receiver. The protocol is described in `PROTOCOL.md`.
//!
//! The agent uses: [`SyncConfig`] (its `[sync]` section), [`AgentKey`] (`bobbin key show`),
//! [`UploadSource`] (implemented on its journal), and [`Uploader`] / [`UploaderHandle`]
//! (run the loop, read [`SyncStatus`] for the status API).

#![warn(missing_docs)]

pub mod config;
pub mod policy;
pub mod receiver;
pub mod record;
pub mod signing;
pub mod source;
pub mod testing;
pub mod uploader;
pub mod wire;

pub use config::{ConfigError, SyncConfig};
pub use record::{JournalId, Record, RecordContent, RecordHash, GENESIS_HASH};
pub use signing::{AgentKey, KeyError, PublicKey};
pub use source::{Backlog, RecordOutcome, SourceError, UploadSource};
pub use uploader::{
    install_crypto_provider, SyncError, SyncState, SyncStatus, Uploader, UploaderHandle,
};
pub use wire::RecordStatus;
