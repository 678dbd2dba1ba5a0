//! The agent's Ed25519 key and the batch signature.
//!
//! The signature covers `SIGNATURE_DOMAIN || SHA-256(body)`, where `body` is the request body
//! exactly as sent (gzip bytes). Signing the compressed bytes lets the receiver check the
//! signature before it decompresses anything.
//!
//! The key file holds one line, `bobbin-ed25519-v1 <64 hex digits of the secret seed>`, and
//! is created with mode 0600; a key file that others can read is refused (like ssh does),
//! since anyone who reads it can sign batches in the agent's name.

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix of the signed message, so a batch signature can never be replayed as another kind.
pub const SIGNATURE_DOMAIN: &[u8] = b"bobbin-batch-v1\0";

const KEY_FILE_TAG: &str = "bobbin-ed25519-v1";

/// Why the agent key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, writing or creating the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file is not in the expected format.
    #[error("key file {path} is malformed: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file can be read by other users.
    #[error(
        "key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Why a signature or public key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key text is not 32 bytes of base64 or hex, or not a valid point.
    #[error("bad public key: {0}")]
    BadKey(String),
    /// The signature text is not 64 bytes of base64.
    #[error("bad signature encoding: {0}")]
    BadEncoding(String),
    /// The signature does not verify.
    #[error("signature does not match the body")]
    Mismatch,
}

/// The agent's signing key.
pub struct AgentKey {
    signing: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "AgentKey(public {})", self.public_key_base64())
    }
}

/// SHA-256 of a request body.
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

fn signed_message(body: &[u8]) -> [u8; 48] {
    let mut m = [0u8; 48];
    m[..16].copy_from_slice(SIGNATURE_DOMAIN);
    m[16..].copy_from_slice(&body_digest(body));
    m
}

/// The `Content-Digest` header value (RFC 9530) for a body.
pub fn content_digest_header(body: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(body_digest(body))
    )
}

impl AgentKey {
    /// A new random key.
    pub fn generate() -> Self {
        AgentKey::from_seed(rand::random())
    }

    /// The key with this 32-byte secret seed (tests and fixtures).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        AgentKey {
            signing: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// Loads the key at `path`, creating it (mode 0600) when the file does not exist.
    ///
    /// Creation is atomic: the key is written to a temporary file, synced, and linked into
    /// place only if no other process created one first — in which case that one is loaded.
    pub fn load_or_create(path: &Path) -> Result<AgentKey, KeyError> {
        match AgentKey::load(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let key = AgentKey::generate();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("agent-key"),
            std::process::id()
        ));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            let line = format!("{KEY_FILE_TAG} {}\n", hex::encode(key.signing.to_bytes()));
            f.write_all(line.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                // Make the new directory entry durable too.
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => AgentKey::load(path),
            Err(e) => Err(io(e)),
        }
    }

    /// Loads an existing key file.
    pub fn load(path: &Path) -> Result<AgentKey, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let malformed = |reason: &str| KeyError::Malformed {
            path: path.to_path_buf(),
            reason: reason.into(),
        };
        let mut parts = text.split_whitespace();
        if parts.next() != Some(KEY_FILE_TAG) {
            return Err(malformed("expected it to start with `bobbin-ed25519-v1`"));
        }
        let seed = parts
            .next()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| malformed("expected 64 hex digits after the tag"))?;
        if parts.next().is_some() {
            return Err(malformed("unexpected text after the key"));
        }
        Ok(AgentKey::from_seed(seed))
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The public key as standard base64 (what the receiver's agents file holds).
    pub fn public_key_base64(&self) -> String {
        self.public_key().to_base64()
    }

    /// The public key as 64 hex digits.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().to_bytes())
    }

    /// The `Bobbin-Signature` header value for `body`: base64 of the Ed25519 signature.
    pub fn sign_body(&self, body: &[u8]) -> String {
        let sig = self.signing.sign(&signed_message(body));
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
    }
}

/// An agent's public key, as the receiver holds it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl PublicKey {
    /// Parses 32 bytes given as standard base64 or as 64 hex digits.
    pub fn parse(text: &str) -> Result<PublicKey, SignatureError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| SignatureError::BadKey(e.to_string()))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|e| SignatureError::BadKey(e.to_string()))?
        };
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            SignatureError::BadKey(format!("{} bytes, expected 32", b.len()))
        })?;
        ed25519_dalek::VerifyingKey::from_bytes(&arr)
            .map(PublicKey)
            .map_err(|e| SignatureError::BadKey(e.to_string()))
    }

    /// Standard base64 of the 32 key bytes.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.to_bytes())
    }

    /// Checks a `Bobbin-Signature` header value against `body`.
    pub fn verify_body(&self, body: &[u8], signature_b64: &str) -> Result<(), SignatureError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|e| SignatureError::BadEncoding(e.to_string()))?;
        let arr: [u8; 64] = bytes.try_into().map_err(|b: Vec<u8>| {
            SignatureError::BadEncoding(format!("{} bytes, expected 64", b.len()))
        })?;
        let sig = ed25519_dalek::Signature::from_bytes(&arr);
        self.0
            .verify_strict(&signed_message(body), &sig)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_then_load_gives_the_same_key_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.key");
        let a = AgentKey::load_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = AgentKey::load_or_create(&path).expect("load");
        assert_eq!(a.public_key_base64(), b.public_key_base64());
        assert_eq!(a.public_key_hex().len(), 64);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn a_readable_or_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.key");
        AgentKey::load_or_create(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            AgentKey::load_or_create(&path),
            Err(KeyError::Permissions { .. })
        ));
        std::fs::write(&path, "garbage\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(
            AgentKey::load_or_create(&path),
            Err(KeyError::Malformed { .. })
        ));
        let missing_dir = dir.path().join("nope").join("agent.key");
        assert!(matches!(
            AgentKey::load_or_create(&missing_dir),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn signatures_verify_and_detect_changes() {
        let key = AgentKey::from_seed([5; 32]);
        let body = b"some gzip bytes";
        let sig = key.sign_body(body);
        let pk = PublicKey::parse(&key.public_key_base64()).expect("b64");
        assert_eq!(PublicKey::parse(&key.public_key_hex()).expect("hex"), pk);
        assert_eq!(pk.verify_body(body, &sig), Ok(()));
        assert_eq!(
            pk.verify_body(b"other bytes", &sig),
            Err(SignatureError::Mismatch)
        );
        let other = AgentKey::from_seed([6; 32]).public_key();
        assert_eq!(other.verify_body(body, &sig), Err(SignatureError::Mismatch));
        assert!(matches!(
            pk.verify_body(body, "!!"),
            Err(SignatureError::BadEncoding(_))
        ));
        assert!(PublicKey::parse("AAAA").is_err());
        assert!(format!("{key:?}").contains(&key.public_key_base64()));
        assert!(content_digest_header(body).starts_with("sha-256=:"));
    }
}
