//! A tenant's log key pair: X25519, in the HPKE suite DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM (RFC 9180). The customer generates it (`groupmgr keys generate`),
//! keeps the private key, and registers the public key with us; we can then seal data keys to
//! it but never open them.
//!
//! The private key file is text, versioned and self-describing, so that a customer's own tools
//! can read it years later:
//!
//! ```text
//! # GroupMgr tenant log key — keep this file secret; …
//! groupmgr-tenant-key: v1
//! suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
//! key-id: 3f2a9c1b0d4e5f67
//! public-key: <base64url, 32 bytes>
//! private-key: <base64url, 32 bytes>
//! created: 2026-11-27T19:00:00Z
//! ```

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, Serializable};

use crate::domain::InvalidInput;

pub const SUITE: &str = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM";
const FILE_VERSION: &str = "v1";

/// A tenant's registered public key, with its id (16 hex characters of its SHA-256).
#[derive(Clone, PartialEq, Eq)]
pub struct TenantPublicKey {
    bytes: [u8; 32],
    id: String,
}

impl TenantPublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, InvalidInput> {
        // Reject keys hpke would refuse (and the all-zero point) up front.
        <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&bytes)
            .map_err(|_| InvalidInput::new("publicKey", "is not a valid X25519 public key"))?;
        if bytes == [0u8; 32] {
            return Err(InvalidInput::new("publicKey", "is not a valid X25519 public key"));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let id = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { bytes, id })
    }

    /// Parses the text form printed by `keys generate` (base64url, 43 characters).
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let raw = B64URL.decode(text.trim().trim_end_matches('=')).map_err(|_| {
            InvalidInput::new(
                "publicKey",
                "must be the base64url text printed by `groupmgr keys generate`",
            )
        })?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| InvalidInput::new("publicKey", "must decode to 32 bytes"))?;
        Self::from_bytes(bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn to_text(&self) -> String {
        B64URL.encode(self.bytes)
    }

    pub(crate) fn hpke(&self) -> <X25519HkdfSha256 as hpke::Kem>::PublicKey {
        <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&self.bytes)
            .expect("validated when the key was constructed")
    }
}

impl fmt::Debug for TenantPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantPublicKey({})", self.id)
    }
}

/// A tenant's private key, as read from its key file. Only ever on the customer's side (or
/// ours, if the customer hands it over). Not `Debug`.
pub struct TenantPrivateKey {
    sk: <X25519HkdfSha256 as hpke::Kem>::PrivateKey,
    public: TenantPublicKey,
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write key file {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(String),
    #[error("not a GroupMgr tenant key file: {0}")]
    Format(&'static str),
}

impl TenantPrivateKey {
    /// A new random key pair.
    pub fn generate() -> Self {
        let mut ikm = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut ikm)
            .expect("the OS random source is available");
        Self::from_ikm(&ikm)
    }

    /// Deterministic derivation (RFC 9180 DeriveKeyPair), used by tests.
    pub fn from_ikm(ikm: &[u8]) -> Self {
        let (sk, pk) = X25519HkdfSha256::derive_keypair(ikm);
        let public = TenantPublicKey::from_bytes(pk.to_bytes().into()).expect("derived keys are valid");
        Self { sk, public }
    }

    pub fn public(&self) -> &TenantPublicKey {
        &self.public
    }

    /// The key whose X25519 private scalar is these 32 bytes (RFC 7748: any 32 bytes are one,
    /// once clamped). `None` for bytes whose public key is not usable (the all-zero point).
    pub fn from_private_bytes(bytes: &[u8; 32]) -> Option<Self> {
        let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(bytes).ok()?;
        let pk = X25519HkdfSha256::sk_to_pk(&sk);
        let public = TenantPublicKey::from_bytes(pk.to_bytes().into()).ok()?;
        Some(Self { sk, public })
    }

    pub(crate) fn hpke(&self) -> &<X25519HkdfSha256 as hpke::Kem>::PrivateKey {
        &self.sk
    }

    /// The file text.
    pub fn to_file_text(&self, created: chrono::DateTime<chrono::Utc>) -> String {
        format!(
            "# GroupMgr tenant log key. Keep this file secret: it decrypts your tenant's GroupMgr logs\n\
             # and licensed-user list. Register only the public key: groupmgr tenant set-log-key <tenant> <public-key>\n\
             groupmgr-tenant-key: {FILE_VERSION}\n\
             suite: {SUITE}\n\
             key-id: {}\n\
             public-key: {}\n\
             private-key: {}\n\
             created: {}\n",
            self.public.id(),
            self.public.to_text(),
            B64URL.encode(self.sk.to_bytes()),
            created.format("%Y-%m-%dT%H:%M:%SZ"),
        )
    }

    /// Writes a new key file readable by its owner only (0600), refusing to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyFileError> {
        let display = path.display().to_string();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyFileError::Exists(display.clone()),
            _ => KeyFileError::Write {
                path: display.clone(),
                source: e,
            },
        })?;
        file.write_all(self.to_file_text(chrono::Utc::now()).as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| KeyFileError::Write {
                path: display,
                source: e,
            })
    }

    /// Parses key file text; the public key and id in the file must match the private key.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut fields = std::collections::HashMap::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = line
                .split_once(':')
                .ok_or(KeyFileError::Format("a line is not `name: value`"))?;
            fields.insert(k.trim().to_string(), v.trim().to_string());
        }
        match fields.get("groupmgr-tenant-key").map(String::as_str) {
            Some(FILE_VERSION) => {}
            Some(_) => {
                return Err(KeyFileError::Format("unsupported version (this groupmgr reads v1)"));
            }
            None => return Err(KeyFileError::Format("missing `groupmgr-tenant-key: v1`")),
        }
        if fields.get("suite").map(String::as_str) != Some(SUITE) {
            return Err(KeyFileError::Format("unsupported suite"));
        }
        let sk_bytes = fields
            .get("private-key")
            .and_then(|v| B64URL.decode(v).ok())
            .ok_or(KeyFileError::Format("private-key is missing or not base64url"))?;
        let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&sk_bytes)
            .map_err(|_| KeyFileError::Format("private-key is not an X25519 key"))?;
        let pk = X25519HkdfSha256::sk_to_pk(&sk);
        let public = TenantPublicKey::from_bytes(pk.to_bytes().into())
            .map_err(|_| KeyFileError::Format("private-key is not an X25519 key"))?;
        if fields.get("public-key").map(String::as_str) != Some(public.to_text().as_str()) {
            return Err(KeyFileError::Format("public-key does not belong to private-key"));
        }
        if fields.get("key-id").map(String::as_str) != Some(public.id()) {
            return Err(KeyFileError::Format("key-id does not match the key"));
        }
        Ok(Self { sk, public })
    }

    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyFileError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenant.key");
        let key = TenantPrivateKey::generate();
        key.write_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let back = TenantPrivateKey::read(&path).unwrap();
        assert_eq!(back.public(), key.public());
        assert!(
            matches!(key.write_new(&path), Err(KeyFileError::Exists(_))),
            "never overwrites"
        );
    }

    #[test]
    fn tampered_files_are_refused() {
        let key = TenantPrivateKey::generate();
        let other = TenantPrivateKey::generate();
        let text = key.to_file_text(chrono::Utc::now());
        let swapped = text.replace(&key.public().to_text(), &other.public().to_text());
        assert!(TenantPrivateKey::parse(&swapped).is_err());
        assert!(TenantPrivateKey::parse(&text.replace("v1", "v9")).is_err());
        assert!(TenantPrivateKey::parse(&text.replace(key.public().id(), "0000000000000000")).is_err());
        assert!(TenantPrivateKey::parse("hello").is_err());
    }

    #[test]
    fn public_key_text_forms() {
        let key = TenantPrivateKey::generate();
        let text = key.public().to_text();
        assert_eq!(text.len(), 43);
        assert_eq!(TenantPublicKey::parse(&text).unwrap(), *key.public());
        assert!(TenantPublicKey::parse("AAAA").is_err());
        assert!(TenantPublicKey::parse(&B64URL.encode([0u8; 32])).is_err());
        assert!(TenantPublicKey::parse("not base64!").is_err());
    }
}
