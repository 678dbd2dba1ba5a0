//! The reference receiver: what a central platform runs (or copies) to accept Bobbin
//! batches. Binary `bobbin-receiver`; in-process with [`serve`] for tests.
//!
//! It checks the bearer token and the Ed25519 signature of every batch, recomputes the hash
//! chain, deduplicates by record id (journal id, seq), keeps claims unique across all agents
//! by (trace code, process), reports gaps and forks per journal, and serves trace queries.
//! See `PROTOCOL.md`.

mod http;
pub mod store;

use crate::signing::{PublicKey, SignatureError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use store::{AgentSummary, ConflictRow, JournalSummary, Store, StoreError, StoredRecord};

/// Why the receiver could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The agents file could not be read.
    #[error("agents file {path}: {source}")]
    AgentsIo {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The agents file is not valid.
    #[error("agents file: {0}")]
    Agents(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// A registered agent.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    /// Its id (must match the batches' `agent`).
    pub id: String,
    /// Its public key.
    pub public_key: PublicKey,
}

/// Who may talk to the receiver: agents (token and public key) and readers (token only, for
/// the query endpoints). Tokens are kept as SHA-256 digests.
#[derive(Debug, Clone, Default)]
pub struct AgentRegistry {
    agents: HashMap<[u8; 32], Arc<AgentEntry>>,
    readers: HashMap<[u8; 32], String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    #[serde(default)]
    agent: Vec<AgentLine>,
    #[serde(default)]
    reader: Vec<ReaderLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentLine {
    id: String,
    token: Option<String>,
    token_sha256: Option<String>,
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderLine {
    name: String,
    token: Option<String>,
    token_sha256: Option<String>,
}

/// SHA-256 of a token, as the agents file's `token_sha256` holds it (hex).
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn digest_of(
    what: &str,
    token: &Option<String>,
    sha: &Option<String>,
) -> Result<[u8; 32], ReceiverError> {
    match (token, sha) {
        (Some(t), None) if !t.is_empty() => Ok(token_digest(t)),
        (None, Some(h)) => hex::decode(h.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                ReceiverError::Agents(format!("{what}: token_sha256 must be 64 hex digits"))
            }),
        _ => Err(ReceiverError::Agents(format!(
            "{what}: set exactly one of token and token_sha256"
        ))),
    }
}

impl AgentRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an agent with its plain token.
    pub fn add_agent(&mut self, id: &str, token: &str, public_key: PublicKey) {
        self.agents.insert(
            token_digest(token),
            Arc::new(AgentEntry {
                id: id.into(),
                public_key,
            }),
        );
    }

    /// Adds a reader (query endpoints only) with its plain token.
    pub fn add_reader(&mut self, name: &str, token: &str) {
        self.readers.insert(token_digest(token), name.into());
    }

    /// Parses an agents file:
    ///
    /// ```toml
    /// [[agent]]
    /// id = "ws-0001"
    /// token_sha256 = "<64 hex: sha256 of the token>"   # or token = "..."
    /// public_key = "<base64 from `bobbin key show`>"
    ///
    /// [[reader]]
    /// name = "platform"
    /// token_sha256 = "<64 hex>"
    /// ```
    pub fn from_toml(text: &str) -> Result<AgentRegistry, ReceiverError> {
        let f: AgentsFile =
            toml::from_str(text).map_err(|e| ReceiverError::Agents(e.to_string()))?;
        let mut reg = AgentRegistry::new();
        let mut ids = std::collections::HashSet::new();
        for a in f.agent {
            let what = format!("agent {:?}", a.id);
            if a.id.is_empty() || !ids.insert(a.id.clone()) {
                return Err(ReceiverError::Agents(format!(
                    "{what}: ids must be non-empty and unique"
                )));
            }
            let digest = digest_of(&what, &a.token, &a.token_sha256)?;
            let public_key = PublicKey::parse(&a.public_key)
                .map_err(|e: SignatureError| ReceiverError::Agents(format!("{what}: {e}")))?;
            if reg
                .agents
                .insert(
                    digest,
                    Arc::new(AgentEntry {
                        id: a.id,
                        public_key,
                    }),
                )
                .is_some()
            {
                return Err(ReceiverError::Agents(format!(
                    "{what}: token already used by another agent"
                )));
            }
        }
        for r in f.reader {
            let what = format!("reader {:?}", r.name);
            let digest = digest_of(&what, &r.token, &r.token_sha256)?;
            if reg.agents.contains_key(&digest) {
                return Err(ReceiverError::Agents(format!(
                    "{what}: token already used by an agent"
                )));
            }
            reg.readers.insert(digest, r.name);
        }
        Ok(reg)
    }

    /// Reads and parses an agents file.
    pub fn load(path: &Path) -> Result<AgentRegistry, ReceiverError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReceiverError::AgentsIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The agent with this token.
    pub fn agent_by_token(&self, token: &str) -> Option<Arc<AgentEntry>> {
        self.agents.get(&token_digest(token)).cloned()
    }

    /// True when `token` belongs to a reader.
    pub fn is_reader(&self, token: &str) -> bool {
        self.readers.contains_key(&token_digest(token))
    }

    /// How many agents are registered.
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }
}

/// Settings of the receiver.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// The SQLite database file.
    pub db_path: PathBuf,
    /// Tokens and keys.
    pub agents: AgentRegistry,
    /// Largest request body (gzip bytes) accepted; larger gets 413.
    pub max_body_bytes: usize,
    /// Largest decompressed batch document; larger gets 413.
    pub max_document_bytes: usize,
    /// Most records in one batch; more gets 413.
    pub max_records: usize,
}

impl ReceiverConfig {
    /// Defaults: 16 MiB bodies, 128 MiB documents, 100 000 records.
    pub fn new(db_path: impl Into<PathBuf>, agents: AgentRegistry) -> Self {
        ReceiverConfig {
            db_path: db_path.into(),
            agents,
            max_body_bytes: 16 << 20,
            max_document_bytes: 128 << 20,
            max_records: 100_000,
        }
    }
}

/// Serves the receiver on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ReceiverConfig,
) -> Result<(), ReceiverError> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves the receiver on `listener` until `shutdown` completes (then finishes the
/// requests in progress and returns).
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    config: ReceiverConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let app = http::router(config)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::AgentKey;

    #[test]
    fn agents_file_parses_and_checks() {
        let key = AgentKey::from_seed([1; 32]);
        let text = format!(
            "[[agent]]\nid = \"ws-1\"\ntoken = \"t1\"\npublic_key = \"{}\"\n\n[[agent]]\nid = \"ws-2\"\ntoken_sha256 = \"{}\"\npublic_key = \"{}\"\n\n[[reader]]\nname = \"p\"\ntoken = \"r\"\n",
            key.public_key_base64(),
            hex::encode(token_digest("t2")),
            key.public_key_hex()
        );
        let reg = AgentRegistry::from_toml(&text).expect("parse");
        assert_eq!(reg.agent_by_token("t1").expect("t1").id, "ws-1");
        assert_eq!(reg.agent_by_token("t2").expect("t2").id, "ws-2");
        assert!(reg.agent_by_token("r").is_none());
        assert!(reg.is_reader("r"));
        assert!(!reg.is_reader("t1"));
        assert_eq!(reg.agent_count(), 2);

        let dup = text.replace("ws-2", "ws-1");
        assert!(AgentRegistry::from_toml(&dup).is_err());
        let both =
            "[[agent]]\nid = \"a\"\ntoken = \"x\"\ntoken_sha256 = \"00\"\npublic_key = \"AAAA\"\n";
        assert!(AgentRegistry::from_toml(both).is_err());
        let bad_key = "[[agent]]\nid = \"a\"\ntoken = \"x\"\npublic_key = \"AAAA\"\n";
        assert!(AgentRegistry::from_toml(bad_key).is_err());
        assert!(AgentRegistry::from_toml("[[agents]]\n").is_err());
    }
}
