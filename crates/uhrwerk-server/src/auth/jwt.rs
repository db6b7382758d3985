//! JWT authentication: bearer tokens signed by a key of a JWKS (a file, or an http(s) URL),
//! RS256 (and the other RSA algorithms) or ES256/ES384; `exp` required, `nbf` honoured, `aud`
//! and `iss` checked when configured. The claims are Temporal's default claim mapper's: the
//! `permissions` claim (its name is configurable) holds `namespace:role` entries, `sub` names
//! the caller.
//!
//! The key set is read at start, then again when the file changes, every five minutes from a
//! URL, and when a token names a key id not known yet (at most once per ten seconds, so that
//! tokens with made-up ids cannot make the server hammer the key server). A fetch that fails
//! keeps the keys in use.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::watch;

use super::Claims;
use crate::clock::Stopwatch;

/// How often a key file is checked for changes.
const FILE_CHECK: Duration = Duration::from_secs(2);
/// How often a key URL is fetched again.
const URL_REFRESH: Duration = Duration::from_secs(300);
/// The shortest time between two reads caused by unknown key ids.
const UNKNOWN_KID_BACKOFF: Duration = Duration::from_secs(10);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;

/// Where the keys come from and what a token must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtConfig {
    /// A JWKS file path, or an `http://`/`https://` URL.
    pub jwks: String,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// The claim that holds the permissions (Temporal's default: `permissions`).
    pub permissions_claim: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read the JWKS {source_name}: {detail}")]
    Read { source_name: String, detail: String },
    #[error("the JWKS {source_name} is not valid: {detail}")]
    Invalid { source_name: String, detail: String },
}

/// A verification key of the set.
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    /// The algorithms a token signed with this key may name.
    algorithms: &'static [Algorithm],
}

const RSA: &[Algorithm] =
    &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];
const EC: &[Algorithm] = &[Algorithm::ES256, Algorithm::ES384];

/// The verifier; shared by every connection.
pub struct Jwt {
    config: JwtConfig,
    keys: RwLock<Vec<Key>>,
    /// The file's (modified, length) when last read.
    stamp: Mutex<crate::reload::Stamp>,
    /// When the set was last read because of an unknown key id.
    last_unknown: Mutex<Option<Stopwatch>>,
    http: reqwest::Client,
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

fn parse(source_name: &str, text: &[u8]) -> Result<Vec<Key>, JwksError> {
    let invalid = |detail: String| JwksError::Invalid { source_name: source_name.to_string(), detail };
    let set: JwkSet = serde_json::from_slice(text).map_err(|e| invalid(e.to_string()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithms = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => RSA,
            AlgorithmParameters::EllipticCurve(_) => EC,
            // Symmetric and Edwards keys are not used for tokens from an identity provider;
            // an `oct` key in a public set would be a secret in the open.
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| invalid(format!("key {:?}: {e}", jwk.common.key_id.as_deref().unwrap_or("(no kid)"))))?;
        keys.push(Key { kid: jwk.common.key_id.clone(), key, algorithms });
    }
    if keys.is_empty() {
        return Err(invalid("it holds no RSA or EC key".to_string()));
    }
    Ok(keys)
}

impl Jwt {
    /// Reads the key set. A file that cannot be read fails the start; a URL that cannot be
    /// fetched is logged and tried again (no token is accepted until it is).
    pub async fn load(config: JwtConfig) -> Result<Arc<Self>, JwksError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| JwksError::Read { source_name: config.jwks.clone(), detail: e.to_string() })?;
        let jwt = Arc::new(Self {
            config,
            keys: RwLock::new(Vec::new()),
            stamp: Mutex::new(None),
            last_unknown: Mutex::new(None),
            http,
        });
        match jwt.refresh().await {
            Ok(()) => {}
            Err(e) if is_url(&jwt.config.jwks) => tracing::warn!("JWT: {e}; tried again every few seconds"),
            Err(e) => return Err(e),
        }
        Ok(jwt)
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    fn key_count(&self) -> usize {
        self.keys.read().expect("jwks lock").len()
    }

    /// Reads the set again; on failure the keys in use stay.
    async fn refresh(&self) -> Result<(), JwksError> {
        let source = &self.config.jwks;
        let read_err = |detail: String| JwksError::Read { source_name: source.clone(), detail };
        let (keys, stamp) = if is_url(source) {
            let response = self.http.get(source).send().await.map_err(|e| read_err(e.to_string()))?;
            let response = response.error_for_status().map_err(|e| read_err(e.to_string()))?;
            let body = response.bytes().await.map_err(|e| read_err(e.to_string()))?;
            (parse(source, &body)?, None)
        } else {
            let stamp = crate::reload::stamp(std::path::Path::new(source));
            let text = std::fs::read(PathBuf::from(source)).map_err(|e| read_err(e.to_string()))?;
            (parse(source, &text)?, stamp)
        };
        let count = keys.len();
        *self.keys.write().expect("jwks lock") = keys;
        *self.stamp.lock().expect("jwks stamp lock") = stamp;
        tracing::debug!(keys = count, source = %source, "JWT: key set read");
        Ok(())
    }

    /// Re-reads the set while the server runs: a file when it changes, a URL every five minutes
    /// (every few seconds while it has never been read).
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_fetch = Stopwatch::start();
        loop {
            tokio::select! {
                _ = crate::clock::sleep(FILE_CHECK) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let due = if is_url(&self.config.jwks) {
                last_fetch.elapsed() >= URL_REFRESH || self.key_count() == 0
            } else {
                *self.stamp.lock().expect("jwks stamp lock")
                    != crate::reload::stamp(std::path::Path::new(&self.config.jwks))
            };
            if !due {
                continue;
            }
            last_fetch = Stopwatch::start();
            match self.refresh().await {
                Ok(()) => tracing::info!(source = %self.config.jwks, keys = self.key_count(), "JWT: key set reloaded"),
                Err(e) => {
                    tracing::warn!("JWT: key set not reloaded, the previous keys stay in use: {e}");
                    *self.stamp.lock().expect("jwks stamp lock") =
                        crate::reload::stamp(std::path::Path::new(&self.config.jwks));
                }
            }
        }
    }

    /// The claims of a valid token; `None` for anything else (the reason is logged at debug
    /// level, never the token).
    pub async fn verify(&self, token: &str) -> Option<Claims> {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            Err(e) => {
                tracing::debug!("JWT refused: header: {e}");
                return None;
            }
        };
        if !self.knows(header.kid.as_deref())
            && self.may_refresh_for_unknown_kid()
            && let Err(e) = self.refresh().await
        {
            tracing::warn!("JWT: key set not read for an unknown key id: {e}");
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        // A configured audience or issuer must be in the token, not only right when present.
        let mut required = vec!["exp"];
        required.extend(self.config.audience.as_ref().map(|_| "aud"));
        required.extend(self.config.issuer.as_ref().map(|_| "iss"));
        validation.set_required_spec_claims(&required);
        match &self.config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
        }
        let keys = self.keys.read().expect("jwks lock");
        let candidates = keys.iter().filter(|k| {
            k.algorithms.contains(&header.alg) && (header.kid.is_none() || k.kid.as_deref() == header.kid.as_deref())
        });
        let mut last_error = None;
        for key in candidates {
            match jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation) {
                Ok(data) => return Some(self.claims_of(&data.claims)),
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) => tracing::debug!("JWT refused: {e}"),
            None => tracing::debug!(alg = ?header.alg, kid = ?header.kid, "JWT refused: no key of the set fits"),
        }
        None
    }

    fn knows(&self, kid: Option<&str>) -> bool {
        let keys = self.keys.read().expect("jwks lock");
        match kid {
            Some(kid) => keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => !keys.is_empty(),
        }
    }

    fn may_refresh_for_unknown_kid(&self) -> bool {
        let mut last = self.last_unknown.lock().expect("jwks lock");
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_BACKOFF) {
            return false;
        }
        *last = Some(Stopwatch::start());
        true
    }

    /// Temporal's default claim mapper: `sub` is the subject, the permissions claim a list of
    /// `namespace:role` entries; entries that do not parse are skipped, as Temporal skips them.
    fn claims_of(&self, claims: &serde_json::Value) -> Claims {
        let subject = claims.get("sub").and_then(|s| s.as_str()).unwrap_or("").to_string();
        let permissions: Vec<String> = match claims.get(&self.config.permissions_claim) {
            Some(serde_json::Value::Array(entries)) => {
                entries.iter().filter_map(|e| e.as_str().map(str::to_string)).collect()
            }
            Some(serde_json::Value::String(entries)) => entries.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        Claims::from_permissions_lenient(&subject, &permissions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_set_needs_an_asymmetric_key() {
        let rsa = r#"{"keys":[{"kty":"RSA","kid":"r1","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#;
        let keys = parse("t", rsa.as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("r1"));
        assert!(keys[0].algorithms.contains(&Algorithm::RS256) && !keys[0].algorithms.contains(&Algorithm::HS256));
        let oct = r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#;
        assert!(parse("t", oct.as_bytes()).is_err(), "a symmetric key is never trusted");
        assert!(parse("t", b"{}").is_err());
        assert!(parse("t", b"not json").is_err());
    }
}
