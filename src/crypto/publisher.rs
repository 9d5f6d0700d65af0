//! GroupMgr's own X25519 key pair (`GROUPMGR_PUBLISHER_KEY`), the sender identity of HPKE's
//! Auth mode (RFC 9180 §5.1.3): data keys sealed with it open only with its public half, so a
//! tenant's reader can tell entries GroupMgr wrote from entries sealed by anyone else who holds
//! the tenant's (public) key. The setting is the X25519 private key: 32 random bytes in base64
//! (`openssl rand -base64 32`, kept in Key Vault; RFC 7748 makes any 32 bytes a private key).
//! Its public half is printed by `groupmgr keys publisher` and served with every
//! `GET /api/logs`.

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
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        TenantPrivateKey::from_private_bytes(&key)
            .map(Self)
            .ok_or("is not a usable X25519 private key")
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
        Self(TenantPrivateKey::from_private_bytes(&[seed; 32]).expect("a usable key"))
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

    #[test]
    fn the_setting_is_the_x25519_private_key_itself() {
        // RFC 7748 §6.1: Alice's private key and the public key it gives.
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let private = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let key = PublisherKey::parse(&base64::engine::general_purpose::STANDARD.encode(&private)).unwrap();
        assert_eq!(key.public().as_bytes().to_vec(), public);
    }
}
