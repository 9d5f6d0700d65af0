//! Entra's signing keys, fetched from `{authority}/common/discovery/v2.0/keys` and cached.
//!
//! Keys are looked up by `kid`. A cached key set is used for up to a day (Entra rotates keys
//! with weeks of overlap); an unknown `kid` triggers a refresh, at most once per
//! `min_refresh_interval`, so a flood of forged `kid`s cannot turn us into a JWKS
//! amplifier. Concurrent refreshes are coalesced behind one mutex. A failed fetch with no
//! usable cached key is an availability problem (503), not the caller's fault (401).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

/// Tuning for the cache; the defaults suit production.
#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// How long a fetched key set is trusted before it is refreshed on next use.
    pub max_age: Duration,
    /// Minimum time between refreshes triggered by unknown `kid`s.
    pub min_refresh_interval: Duration,
    /// Timeout of one JWKS fetch.
    pub fetch_timeout: Duration,
    /// How long a failed fetch is remembered: meanwhile requests the cache cannot answer get
    /// their 503 at once instead of each waiting for another fetch behind the lock (a cold
    /// start during an Entra outage).
    pub failure_ttl: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 3600),
            min_refresh_interval: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(5),
            failure_ttl: Duration::from_secs(5),
        }
    }
}

/// A verification key and the issuer (template) Entra publishes with it.
pub struct VerificationKey {
    pub decoding: DecodingKey,
    /// e.g. `https://login.microsoftonline.com/{tenantid}/v2.0`; `None` when not published.
    pub issuer: Option<String>,
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    /// The key set was fetched and has no such `kid`: the token is not Entra's.
    #[error("signing key not found")]
    UnknownKey,
    /// The key set could not be fetched: we cannot tell.
    #[error("signing keys unavailable: {0}")]
    Unavailable(String),
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    fetched_at: Option<Instant>,
}

/// Cached JWKS of one authority. Share it behind an `Arc`.
pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    options: JwksOptions,
    keys: RwLock<KeySet>,
    /// Serialises refreshes; holds the time of the last fetch attempt.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// The last fetch's failure, while it is remembered (`failure_ttl`).
    failed: RwLock<Option<(Instant, String)>>,
}

#[derive(Deserialize)]
struct JwkSetDoc {
    keys: Vec<JwkDoc>,
}

#[derive(Deserialize)]
struct JwkDoc {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    issuer: Option<String>,
}

impl JwksCache {
    /// `authority` is the login host origin, e.g. `https://login.microsoftonline.com`.
    pub fn new(authority: &str, http: reqwest::Client, options: JwksOptions) -> Self {
        Self {
            url: format!("{}/common/discovery/v2.0/keys", authority.trim_end_matches('/')),
            http,
            options,
            keys: RwLock::new(KeySet::default()),
            refresh: tokio::sync::Mutex::new(None),
            failed: RwLock::new(None),
        }
    }

    /// The failure of a fetch made within `failure_ttl`, if any.
    fn recent_failure(&self) -> Option<String> {
        let failed = self.failed.read().unwrap_or_else(|p| p.into_inner());
        failed
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.options.failure_ttl)
            .map(|(_, e)| e.clone())
    }

    fn cached(&self, kid: &str) -> (Option<Arc<VerificationKey>>, bool) {
        let set = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let fresh = set.fetched_at.is_some_and(|t| t.elapsed() < self.options.max_age);
        (set.keys.get(kid).cloned(), fresh)
    }

    /// The key with this `kid`, fetching or refreshing the key set when needed.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerificationKey>, KeyLookupError> {
        let (cached, fresh) = self.cached(kid);
        if let (Some(key), true) = (&cached, fresh) {
            return Ok(key.clone());
        }
        // Entra just failed us: no new fetch yet (a stale key still serves).
        if let Some(e) = self.recent_failure() {
            return cached.ok_or(KeyLookupError::Unavailable(e));
        }
        let mut last_attempt = self.refresh.lock().await;
        // Another request may have refreshed (or failed to) while we waited.
        let (cached, fresh) = self.cached(kid);
        if let (Some(key), true) = (&cached, fresh) {
            return Ok(key.clone());
        }
        if let Some(e) = self.recent_failure() {
            return cached.ok_or(KeyLookupError::Unavailable(e));
        }
        let have_any = self.keys.read().unwrap_or_else(|p| p.into_inner()).fetched_at.is_some();
        let throttled = last_attempt.is_some_and(|t| t.elapsed() < self.options.min_refresh_interval);
        if throttled && have_any {
            // Unknown kid (or stale set) within the refresh interval: answer from the cache.
            return cached.ok_or(KeyLookupError::UnknownKey);
        }
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                let found = set.keys.get(kid).cloned();
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = set;
                *self.failed.write().unwrap_or_else(|p| p.into_inner()) = None;
                found.ok_or(KeyLookupError::UnknownKey)
            }
            // A stale but known key keeps working while the authority is unreachable.
            Err(e) => {
                *self.failed.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), e.clone()));
                cached.ok_or(KeyLookupError::Unavailable(e))
            }
        }
    }

    /// Fetches the key set now (used to warm the cache after start-up).
    pub async fn prefetch(&self) -> Result<usize, String> {
        let mut last_attempt = self.refresh.lock().await;
        *last_attempt = Some(Instant::now());
        let set = self.fetch().await.inspect_err(|e| {
            *self.failed.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), e.clone()));
        })?;
        let n = set.keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = set;
        *self.failed.write().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(n)
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let resp = self
            .http
            .get(&self.url)
            .timeout(self.options.fetch_timeout)
            .send()
            .await
            .map_err(|e| format!("JWKS request failed: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("JWKS request answered {}", resp.status()));
        }
        let doc: JwkSetDoc = resp
            .json()
            .await
            .map_err(|e| format!("JWKS document unreadable: {}", e.without_url()))?;
        let mut keys = HashMap::new();
        for jwk in doc.keys {
            if jwk.kty != "RSA" || jwk.use_.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
                continue;
            };
            // A malformed key is skipped, not fatal: the others may still be fine.
            if let Ok(decoding) = DecodingKey::from_rsa_components(&n, &e) {
                keys.insert(
                    kid,
                    Arc::new(VerificationKey {
                        decoding,
                        issuer: jwk.issuer,
                    }),
                );
            }
        }
        if keys.is_empty() {
            return Err("JWKS document has no usable RSA signing keys".into());
        }
        Ok(KeySet {
            keys,
            fetched_at: Some(Instant::now()),
        })
    }
}
