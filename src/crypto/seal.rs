//! Sealing: data keys to a tenant's public key with HPKE (RFC 9180), and records under a data
//! key with AES-256-GCM.
//!
//! A data key is 32 random bytes, sealed with `info` = "groupmgr/log-data-key/v1" and
//! `aad` = tenant id ‖ key id, so a sealed key moved to another tenant or row fails to open.
//! With GroupMgr's publisher key (`PublisherKey`) it is sealed in HPKE's Auth mode: it then
//! opens only with the publisher's public key, which proves GroupMgr sealed it (Base mode,
//! without it, proves nothing: the tenant's public key is public).
//!
//! A record is one AES-256-GCM ciphertext whose AAD binds a purpose label, the tenant id, the
//! data key id and the record: a licensed user's blind index, or a log entry's id, time, level,
//! event and template (`log_record`; entries before v2 bound the id only). A ciphertext
//! swapped between tenants, keys or rows, or a clear column changed, fails authentication.

use std::sync::atomic::{AtomicU64, Ordering};

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::publisher::PublisherKey;
use super::tenant_key::{TenantPrivateKey, TenantPublicKey};
use crate::domain::TenantId;

const DATA_KEY_INFO: &[u8] = b"groupmgr/log-data-key/v1";

/// An AES-256-GCM ciphertext with the data key and nonce it was made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub key_id: uuid::Uuid,
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

/// Purpose labels that start every record AAD. `LOG_RECORD` is the first form of log entries
/// (the record is the entry id only), still read; new entries are `LOG_RECORD_V2`.
pub const LOG_RECORD: &[u8] = b"groupmgr/log/v1";
pub const LOG_RECORD_V2: &[u8] = b"groupmgr/log/v2";
pub const LICENSED_UPN: &[u8] = b"groupmgr/upn/v1";

/// Most records sealed under one data key (nonces are a per-key counter).
pub const MAX_RECORDS_PER_KEY: u64 = 1 << 20;

/// Why something could not be opened. Each is a per-record outcome, never a crash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed to a different key (public key {0})")]
    WrongKey(String),
    #[error("integrity check failed (tampered, or moved to another tenant, key or record)")]
    Tampered,
    #[error("its data key is missing (deleted at offboarding, or not included)")]
    MissingDataKey,
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// Its data key was sealed by another sender than the publisher key the reader trusts:
    /// not written by GroupMgr.
    #[error("forged: its data key was sealed by key {0}, not by GroupMgr's publisher key")]
    ForeignSender(String),
}

/// The AAD of one record.
pub fn record_aad(purpose: &[u8], tenant: &TenantId, key_id: &uuid::Uuid, record: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(purpose.len() + 32 + record.len());
    aad.extend_from_slice(purpose);
    aad.extend_from_slice(tenant.as_uuid().as_bytes());
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(record);
    aad
}

/// The record of a v2 log entry: its id, its time (Unix microseconds, as both stores keep it)
/// and its clear columns, each length-prefixed so that no two entries share a record.
pub fn log_record(
    id: &uuid::Uuid,
    time: chrono::DateTime<chrono::Utc>,
    level: &str,
    event: &str,
    message: &str,
) -> Vec<u8> {
    let mut r = Vec::with_capacity(16 + 8 + 12 + level.len() + event.len() + message.len());
    r.extend_from_slice(id.as_bytes());
    r.extend_from_slice(&time.timestamp_micros().to_be_bytes());
    for field in [level, event, message] {
        // Clear columns are short catalog strings; a length past u32 cannot occur.
        r.extend_from_slice(&(field.len() as u32).to_be_bytes());
        r.extend_from_slice(field.as_bytes());
    }
    r
}

fn data_key_aad(tenant: &TenantId, key_id: &uuid::Uuid) -> Vec<u8> {
    let mut aad = tenant.as_uuid().as_bytes().to_vec();
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

/// HPKE-seals a data key to the tenant's public key: in Auth mode as `sender` when given, else
/// in Base mode. Returns (enc, sealed key).
pub fn seal_data_key(
    pk: &TenantPublicKey,
    tenant: &TenantId,
    key_id: &uuid::Uuid,
    data_key: &[u8; 32],
    sender: Option<&PublisherKey>,
) -> (Vec<u8>, Vec<u8>) {
    let mode = match sender {
        Some(s) => OpModeS::Auth((s.private().hpke().clone(), s.public().hpke())),
        None => OpModeS::Base,
    };
    let (enc, sealed) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &mode,
        &pk.hpke(),
        DATA_KEY_INFO,
        data_key,
        &data_key_aad(tenant, key_id),
    )
    .expect("HPKE sealing to a validated X25519 key cannot fail");
    (enc.to_bytes().to_vec(), sealed)
}

/// Opens a sealed data key with the tenant's private key: in Auth mode when it names its
/// `sender` (then it opens only if that key sealed it), else in Base mode.
pub fn open_data_key(
    sk: &TenantPrivateKey,
    tenant: &TenantId,
    key_id: &uuid::Uuid,
    enc: &[u8],
    sealed: &[u8],
    sender: Option<&TenantPublicKey>,
) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| OpenError::Malformed("encapsulated key"))?;
    let mode = match sender {
        Some(pk) => OpModeR::Auth(pk.hpke()),
        None => OpModeR::Base,
    };
    let plain = hpke::single_shot_open::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &mode,
        sk.hpke(),
        &enc,
        DATA_KEY_INFO,
        sealed,
        &data_key_aad(tenant, key_id),
    )
    .map_err(|_| OpenError::Tampered)?;
    let plain = Zeroizing::new(plain);
    let mut key = Zeroizing::new([0u8; 32]);
    if plain.len() != key.len() {
        return Err(OpenError::Malformed("data key length"));
    }
    key.copy_from_slice(&plain);
    Ok(key)
}

/// A data key in memory, sealing records with counter nonces. Never leaves the process, and
/// only `generate` makes one: a key reopened from the store is an `OpeningKey`, which cannot
/// seal, so a counter nonce is never used twice under one key. Its bytes are zeroed as soon
/// as ring has expanded them (ring's own key schedule is not zeroed on drop).
pub struct DataKey {
    pub key_id: uuid::Uuid,
    pub tenant: TenantId,
    pub public_key_id: String,
    aead: LessSafeKey,
    counter: AtomicU64,
}

/// The key has sealed its maximum number of records; a new one is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("data key exhausted")]
pub struct Exhausted;

impl DataKey {
    /// A new random data key for `tenant`, and its sealed form for the store (sealed as
    /// `publisher` when given: HPKE Auth mode).
    pub fn generate(
        tenant: TenantId,
        pk: &TenantPublicKey,
        publisher: Option<&PublisherKey>,
    ) -> (Self, Vec<u8>, Vec<u8>) {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .expect("the OS random source is available");
        let key_id = uuid::Uuid::new_v4();
        let (enc, sealed) = seal_data_key(pk, &tenant, &key_id, &bytes, publisher);
        let key = Self {
            key_id,
            tenant,
            public_key_id: pk.id().to_string(),
            aead: aes_key(&bytes),
            counter: AtomicU64::new(0),
        };
        (key, enc, sealed)
    }

    /// How many records this key has sealed.
    pub fn used(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    /// Seals `plaintext` for record `record` under `purpose`.
    pub fn seal(&self, purpose: &[u8], record: &[u8], plaintext: &[u8]) -> Result<SealedValue, Exhausted> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_RECORDS_PER_KEY {
            return Err(Exhausted);
        }
        // 4 zero bytes ‖ 64-bit counter: unique per key, and each key is fresh and used by
        // this process only.
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        let aad = record_aad(purpose, &self.tenant, &self.key_id, record);
        let mut buf = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut buf)
            .expect("AES-GCM sealing of a bounded buffer cannot fail");
        Ok(SealedValue {
            key_id: self.key_id,
            nonce,
            ciphertext: buf,
        })
    }
}

/// ring's AES-256-GCM key from 32 bytes.
fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key"))
}

/// A data key reopened to read what it sealed (from the store, with the tenant's private
/// key). It has no way to seal: its counter is unknown here, and reusing a nonce would break
/// AES-GCM.
///
/// ```compile_fail
/// // A reopened key cannot seal.
/// fn seal_with(k: &groupmgr::crypto::OpeningKey) {
///     let _ = k.seal(b"purpose", b"record", b"plaintext");
/// }
/// ```
pub struct OpeningKey {
    pub key_id: uuid::Uuid,
    pub tenant: TenantId,
    aead: LessSafeKey,
}

impl OpeningKey {
    pub fn from_bytes(key_id: uuid::Uuid, tenant: TenantId, bytes: &[u8; 32]) -> Self {
        Self {
            key_id,
            tenant,
            aead: aes_key(bytes),
        }
    }

    /// Opens a record sealed under this key.
    pub fn open(&self, purpose: &[u8], record: &[u8], sealed: &SealedValue) -> Result<Vec<u8>, OpenError> {
        if sealed.key_id != self.key_id {
            return Err(OpenError::MissingDataKey);
        }
        let aad = record_aad(purpose, &self.tenant, &self.key_id, record);
        let mut buf = sealed.ciphertext.clone();
        let plain = self
            .aead
            .open_in_place(Nonce::assume_unique_for_key(sealed.nonce), Aad::from(&aad), &mut buf)
            .map_err(|_| OpenError::Tampered)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }
    const A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const B: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn data_key_round_trip_and_binding() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let key_id = uuid::Uuid::new_v4();
        let secret = [7u8; 32];
        let (enc, sealed) = seal_data_key(sk.public(), &t, &key_id, &secret, None);
        assert_eq!(*open_data_key(&sk, &t, &key_id, &enc, &sealed, None).unwrap(), secret);
        // Another tenant, another key id, another private key: all refused.
        assert_eq!(
            open_data_key(&sk, &tenant(B), &key_id, &enc, &sealed, None).err(),
            Some(OpenError::Tampered)
        );
        assert_eq!(
            open_data_key(&sk, &t, &uuid::Uuid::new_v4(), &enc, &sealed, None).err(),
            Some(OpenError::Tampered)
        );
        assert_eq!(
            open_data_key(&TenantPrivateKey::generate(), &t, &key_id, &enc, &sealed, None).err(),
            Some(OpenError::Tampered)
        );
        assert!(open_data_key(&sk, &t, &key_id, &enc[..10], &sealed, None).is_err());
    }

    #[test]
    fn records_are_bound_to_tenant_key_and_record() {
        let sk = TenantPrivateKey::generate();
        let (sealer, enc, sealed_key) = DataKey::generate(tenant(A), sk.public(), None);
        let sealed = sealer.seal(LOG_RECORD, b"record-1", b"{\"user\":\"u@x.com\"}").unwrap();
        // Read back as a reader does: the data key opened from its sealed form.
        let bytes = open_data_key(&sk, &tenant(A), &sealer.key_id, &enc, &sealed_key, None).unwrap();
        let key = OpeningKey::from_bytes(sealer.key_id, tenant(A), &bytes);
        assert_eq!(
            key.open(LOG_RECORD, b"record-1", &sealed).unwrap(),
            b"{\"user\":\"u@x.com\"}"
        );
        assert_eq!(key.open(LOG_RECORD, b"record-2", &sealed), Err(OpenError::Tampered));
        assert_eq!(key.open(LICENSED_UPN, b"record-1", &sealed), Err(OpenError::Tampered));
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(key.open(LOG_RECORD, b"record-1", &flipped), Err(OpenError::Tampered));
        // Same key bytes but presented for another tenant: the AAD differs.
        let other = OpeningKey::from_bytes(key.key_id, tenant(B), &bytes);
        assert!(other.open(LOG_RECORD, b"record-1", &sealed).is_err());
    }

    #[test]
    fn auth_mode_keys_open_only_with_their_senders_public_key() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let key_id = uuid::Uuid::new_v4();
        let secret = [5u8; 32];
        let ours = PublisherKey::for_test(1);
        let (enc, sealed) = seal_data_key(sk.public(), &t, &key_id, &secret, Some(&ours));
        assert_eq!(
            *open_data_key(&sk, &t, &key_id, &enc, &sealed, Some(ours.public())).unwrap(),
            secret
        );
        // Not as Base mode, not as another sender: the sender is part of the key schedule.
        assert_eq!(
            open_data_key(&sk, &t, &key_id, &enc, &sealed, None).err(),
            Some(OpenError::Tampered)
        );
        let theirs = PublisherKey::for_test(2);
        assert_eq!(
            open_data_key(&sk, &t, &key_id, &enc, &sealed, Some(theirs.public())).err(),
            Some(OpenError::Tampered)
        );
        // And a Base-mode key does not open as if GroupMgr had sealed it.
        let (enc, sealed) = seal_data_key(sk.public(), &t, &key_id, &secret, None);
        assert!(open_data_key(&sk, &t, &key_id, &enc, &sealed, Some(ours.public())).is_err());
    }

    #[test]
    fn log_records_bind_every_clear_column() {
        let id = uuid::Uuid::now_v7();
        let at = chrono::DateTime::from_timestamp_micros(1_800_000_000_000_001).unwrap();
        let base = log_record(&id, at, "INFO", "user_admitted", "{user} took a seat");
        for other in [
            log_record(&uuid::Uuid::now_v7(), at, "INFO", "user_admitted", "{user} took a seat"),
            log_record(
                &id,
                at + chrono::TimeDelta::microseconds(1),
                "INFO",
                "user_admitted",
                "{user} took a seat",
            ),
            log_record(&id, at, "WARN", "user_admitted", "{user} took a seat"),
            log_record(&id, at, "INFO", "user_refused", "{user} took a seat"),
            log_record(&id, at, "INFO", "user_admitted", "{user} took no seat"),
            // Moving bytes between columns changes the record too.
            log_record(&id, at, "INFOu", "ser_admitted", "{user} took a seat"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn nonces_never_repeat_and_keys_exhaust() {
        let sk = TenantPrivateKey::generate();
        let (key, _, _) = DataKey::generate(tenant(A), sk.public(), None);
        let a = key.seal(LOG_RECORD, b"r", b"x").unwrap();
        let b = key.seal(LOG_RECORD, b"r", b"x").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        key.counter.store(MAX_RECORDS_PER_KEY, Ordering::Relaxed);
        assert_eq!(key.seal(LOG_RECORD, b"r", b"x"), Err(Exhausted));
    }
}
