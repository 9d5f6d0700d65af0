//! GroupMgr's own X25519 key pair (`GROUPMGR_PUBLISHER_KEY`), the sender identity of HPKE's
//! Auth mode (RFC 9180 §5.1.3): data keys sealed with it open only with its public half, so a
//! tenant's reader can tell entries GroupMgr wrote from entries sealed by anyone else who holds
//! the tenant's (public) key. The setting is 32 random bytes in base64 (`openssl rand -base64
//! 32`, kept in Key Vault); the key pair is derived from them with RFC 9180 DeriveKeyPair. Its
//! public half is printed by `groupmgr keys publisher` and served with every `GET /api/logs`.

use std::fmt;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{TenantPrivateKey, TenantPublicKey};

/// The publisher key pair. Not `Clone` (shared as `Arc`); its `Debug` shows the key id only.
pub struct PublisherKey(TenantPrivateKey);

impl PublisherKey {
    /// Parses the setting's value. The error says what is wrong, never the value.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(raw.trim())
                .map_err(|_| "must be base64 (standard alphabet) of 32 random bytes")?,
        );
        if bytes.len() != 32 {
            return Err("must decode to exactly 32 bytes");
        }
        if bytes.iter().all(|b| *b == 0) {
            return Err("must not be all zero bytes");
        }
        Ok(Self(TenantPrivateKey::from_ikm(&bytes)))
    }

    /// The public half: what a reader checks entries against.
    pub fn public(&self) -> &TenantPublicKey {
        self.0.public()
    }

    pub(crate) fn private(&self) -> &TenantPrivateKey {
        &self.0
    }

    #[cfg(test)]
    pub fn for_test(seed: u8) -> Self {
        Self(TenantPrivateKey::from_ikm(&[seed; 32]))
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherKey({})", self.public().id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_32_random_bytes_and_never_shows_them() {
        let raw = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let key = PublisherKey::parse(&raw).unwrap();
        assert_eq!(
            key.public(),
            PublisherKey::parse(&raw).unwrap().public(),
            "deterministic"
        );
        assert!(!format!("{key:?}").contains(&raw));
        assert!(PublisherKey::parse("c2hvcnQ=").is_err());
        assert!(PublisherKey::parse("not base64!").is_err());
        let zero = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        assert!(PublisherKey::parse(&zero).is_err());
    }
}
