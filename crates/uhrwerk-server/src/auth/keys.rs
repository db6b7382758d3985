//! Static API keys from a YAML file, stored hashed (SHA-256, hex) with Temporal permissions each,
//! and the permissions of mTLS client certificates by their subject's common name:
//!
//! ```yaml
//! keys:
//!   - name: orders-service
//!     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     permissions: ["orders:write"]
//! certificates:
//!   - common_name: orders-worker
//!     permissions: ["orders:worker"]
//! ```
//!
//! A presented key is hashed and compared with every stored hash in constant time (no early
//! exit, no length leak). The file is read again when it changes and on SIGHUP (`KeyFile`), so
//! a key removed from it is refused without a restart; a file that does not parse keeps the
//! keys in use and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Claims;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the API key file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("API key file {path}: {detail}")]
    Invalid { path: String, detail: String },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    keys: Vec<Entry>,
    #[serde(default)]
    certificates: Vec<CertificateEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateEntry {
    common_name: String,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    #[serde(default)]
    permissions: Vec<String>,
}

struct Key {
    hash: [u8; 32],
    claims: Claims,
}

/// The keys and certificate subjects of a file.
pub struct ApiKeys {
    keys: Vec<Key>,
    certificates: std::collections::HashMap<String, Claims>,
}

/// The SHA-256 of a key, as the file stores it (lowercase hex).
pub fn hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ApiKeys {
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Read { path: path.display().to_string(), detail: e.to_string() })?;
        Self::parse(&text).map_err(|detail| KeyError::Invalid { path: path.display().to_string(), detail })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut keys = Vec::new();
        for entry in file.keys {
            let hash = parse_hash(&entry.sha256)
                .ok_or_else(|| format!("key {:?}: sha256 must be 64 hex digits", entry.name))?;
            let claims = Claims::from_permissions(&entry.name, &entry.permissions)
                .map_err(|e| format!("key {:?}: {e}", entry.name))?;
            keys.push(Key { hash, claims });
        }
        let mut certificates = std::collections::HashMap::new();
        for entry in file.certificates {
            let claims = Claims::from_permissions(&format!("CN={}", entry.common_name), &entry.permissions)
                .map_err(|e| format!("certificate {:?}: {e}", entry.common_name))?;
            if certificates.insert(entry.common_name.clone(), claims).is_some() {
                return Err(format!("certificate {:?} is listed twice", entry.common_name));
            }
        }
        Ok(Self { keys, certificates })
    }

    /// How many certificate subjects the file maps.
    pub fn certificate_count(&self) -> usize {
        self.certificates.len()
    }

    /// The claims of a client certificate by its subject common name.
    pub fn certificate_claims(&self, common_name: &str) -> Option<Claims> {
        self.certificates.get(common_name).cloned()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The claims of a presented key; `None` for a key the file does not hold.
    pub fn claims(&self, presented: &str) -> Option<Claims> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            // Every entry is compared, whichever matches.
            if bool::from(key.hash.ct_eq(&hash)) {
                found = Some(key.claims.clone());
            }
        }
        found
    }
}

use crate::reload::{Stamp, stamp};

/// The key file in use, read again when it changes.
pub struct KeyFile {
    path: PathBuf,
    current: RwLock<(Arc<ApiKeys>, Stamp)>,
}

impl KeyFile {
    pub fn load(path: &Path) -> Result<Arc<Self>, KeyError> {
        let before = stamp(path);
        let keys = ApiKeys::load(path)?;
        Ok(Arc::new(Self { path: path.to_path_buf(), current: RwLock::new((Arc::new(keys), before)) }))
    }

    /// The keys in use.
    pub fn keys(&self) -> Arc<ApiKeys> {
        self.current.read().expect("key file lock").0.clone()
    }

    /// Reads the file again when it changed or on SIGHUP, until shutdown.
    pub async fn watch(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut reloads = crate::reload::Reloads::default();
        let changed = || self.current.read().expect("key file lock").1 != stamp(&self.path);
        while reloads.next(changed, &mut shutdown).await.is_some() {
            let before = stamp(&self.path);
            match ApiKeys::load(&self.path) {
                Ok(keys) => {
                    tracing::info!(path = %self.path.display(), keys = keys.len(), certificates = keys.certificate_count(), "API keys reloaded");
                    *self.current.write().expect("key file lock") = (Arc::new(keys), before);
                }
                Err(e) => {
                    tracing::warn!("API keys not reloaded, the previous ones stay in use: {e}");
                    self.current.write().expect("key file lock").1 = before;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_their_hash_only() {
        let text = format!(
            "keys:\n  - name: orders\n    sha256: {}\n    permissions: [\"orders:write\"]\n",
            hash_hex("secret-1")
        );
        let keys = ApiKeys::parse(&text).unwrap();
        let claims = keys.claims("secret-1").expect("the key is known");
        assert_eq!(claims.subject, "orders");
        assert!(claims.allows("StartWorkflowExecution", "orders"));
        assert!(keys.claims("secret-2").is_none());
        assert!(keys.claims("").is_none());
        assert_eq!(hash_hex("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
        assert!(ApiKeys::parse("keys:\n  - name: x\n    sha256: abc\n").is_err(), "a short hash");
        assert!(ApiKeys::parse("keys:\n  - name: x\n    key: plain\n    sha256: 00\n").is_err(), "unknown field");
    }

    #[test]
    fn certificate_subjects_map_to_claims() {
        let keys =
            ApiKeys::parse("certificates:\n  - common_name: orders-worker\n    permissions: [\"orders:worker\"]\n")
                .unwrap();
        assert!(keys.is_empty());
        let claims = keys.certificate_claims("orders-worker").expect("mapped");
        assert_eq!(claims.subject, "CN=orders-worker");
        assert!(claims.allows("PollActivityTaskQueue", "orders") && !claims.allows("StartWorkflowExecution", "orders"));
        assert!(keys.certificate_claims("ORDERS-WORKER").is_none(), "common names are compared exactly");
        let twice = "certificates:\n  - common_name: a\n  - common_name: a\n";
        assert!(ApiKeys::parse(twice).is_err());
        assert!(ApiKeys::parse("kees: []\n").is_err(), "a misspelt section is an error, not an open door");
    }
}
