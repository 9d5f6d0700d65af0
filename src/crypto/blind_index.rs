//! The UPN blind index: lets us count a tenant's unique users without storing who they are.
//!
//! index = HMAC-SHA256(K_tenant, lowercase(NFC(upn))), where K_tenant = HKDF-SHA256(
//! ikm = GROUPMGR_INDEX_KEY, salt = "groupmgr/upn-blind-index/v1", info = tenant id).
//! A per-tenant key means the same person in two tenants has unrelated indexes, and a leaked
//! database without the master key cannot be tested against a list of guessed UPNs.

use std::fmt;

use ring::{hkdf, hmac};
use unicode_normalization::UnicodeNormalization;

use crate::domain::TenantId;

/// The 32-byte master key of the UPN blind index (`GROUPMGR_INDEX_KEY`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexKey(pub(crate) [u8; 32]);

impl IndexKey {
    /// Parses the setting's value: base64 of 32 bytes, not all zero. The error says what is
    /// wrong without repeating the value.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| "must be base64 (standard alphabet)")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "must decode to exactly 32 bytes")?;
        if key.iter().all(|b| *b == 0) {
            return Err("must not be all zero bytes");
        }
        Ok(Self(key))
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }
}

/// The master key leaves no copy behind in freed memory.
impl Drop for IndexKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(<redacted>)")
    }
}

const SALT: &[u8] = b"groupmgr/upn-blind-index/v1";

/// A 32-byte blind index of one UPN in one tenant.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub [u8; 32]);

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secret (it is what the database stores) but long; a prefix identifies it.
        write!(
            f,
            "BlindIndex({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// An HMAC-SHA256 key derived from the index key (HKDF-SHA256, a salt of its own per use),
/// so that what it signs is authenticated without another secret: the API's cursors
/// (`CursorKey`) and the operators' trail (`derive_operator_trail`).
pub struct MacKey(hmac::Key);

/// The key of the API's cursors.
pub type CursorKey = MacKey;

const CURSOR_SALT: &[u8] = b"groupmgr/api-cursor/v1";
const OPERATOR_TRAIL_SALT: &[u8] = b"groupmgr/operator-audit/v1";

impl MacKey {
    /// The cursor key.
    pub fn derive(master: &IndexKey) -> Self {
        Self::derive_with(master, CURSOR_SALT, b"cursor")
    }

    /// The key that chains the operators' trail.
    pub fn derive_operator_trail(master: &IndexKey) -> Self {
        Self::derive_with(master, OPERATOR_TRAIL_SALT, b"operator-trail")
    }

    fn derive_with(master: &IndexKey, salt: &[u8], info: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&master.0);
        let info = [info];
        let okm = prk
            .expand(&info, hmac::HMAC_SHA256)
            // ring refuses only outputs longer than 255 × hash length; 32 bytes is far below.
            .expect("HKDF output length is valid");
        Self(hmac::Key::from(okm))
    }

    /// The tag of `parts` (each length-prefixed, so no two different lists sign alike).
    pub fn sign(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        ctx.sign()
    }

    /// Whether `tag` is `parts`' tag (in constant time).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut msg = Vec::new();
        for p in parts {
            msg.extend_from_slice(&(p.len() as u64).to_be_bytes());
            msg.extend_from_slice(p);
        }
        hmac::verify(&self.0, &msg, tag).is_ok()
    }
}

/// People's pseudonyms in the activity GroupMgr keeps in a customer's list (who was active in
/// a group on which days): HMAC-SHA256 of the normalised user principal name under a key of
/// the tenant (HKDF of the index key, a salt of its own, the tenant id as info), cut to 9
/// bytes. Unrelated to the blind index in our database (another key), so the two cannot be
/// joined; without the master key nobody can test a name against them.
#[derive(Clone)]
pub struct PseudonymKey {
    prk: hkdf::Prk,
    seal_prk: hkdf::Prk,
    outbox_prk: hkdf::Prk,
}

const PSEUDONYM_SALT: &[u8] = b"groupmgr/member-activity/v1";
const PEOPLE_SEAL_SALT: &[u8] = b"groupmgr/pending-people/v1";
const OUTBOX_SEAL_SALT: &[u8] = b"groupmgr/webhook-outbox/v1";

impl PseudonymKey {
    pub fn new(master: &IndexKey) -> Self {
        Self {
            prk: hkdf::Salt::new(hkdf::HKDF_SHA256, PSEUDONYM_SALT).extract(&master.0),
            seal_prk: hkdf::Salt::new(hkdf::HKDF_SHA256, PEOPLE_SEAL_SALT).extract(&master.0),
            outbox_prk: hkdf::Salt::new(hkdf::HKDF_SHA256, OUTBOX_SEAL_SALT).extract(&master.0),
        }
    }

    /// The key that seals one tenant's people's activity while it waits in the job state.
    pub fn seal(&self, tenant: &TenantId) -> PeopleSeal {
        Self::seal_of(&self.seal_prk, tenant)
    }

    /// The key that seals one tenant's webhook events (group names, who decided) while they
    /// wait in the job state to be delivered: another key than `seal`'s.
    pub fn outbox_seal(&self, tenant: &TenantId) -> PeopleSeal {
        Self::seal_of(&self.outbox_prk, tenant)
    }

    fn seal_of(prk: &hkdf::Prk, tenant: &TenantId) -> PeopleSeal {
        let info = [tenant.as_uuid().as_bytes().as_slice()];
        let mut key = [0u8; 32];
        prk.expand(&info, &ring::aead::AES_256_GCM)
            .and_then(|okm| okm.fill(&mut key))
            // ring refuses only outputs longer than 255 × hash length; 32 bytes is far below.
            .expect("HKDF output of an AES-256 key length is always valid");
        let unbound =
            ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).expect("32 bytes is an AES-256-GCM key");
        zeroize::Zeroize::zeroize(&mut key);
        PeopleSeal {
            key: ring::aead::LessSafeKey::new(unbound),
            tenant: *tenant.as_uuid().as_bytes(),
        }
    }

    /// The pseudonyms of one tenant's people.
    pub fn tenant(&self, tenant: &TenantId) -> TenantPseudonyms {
        let info = [tenant.as_uuid().as_bytes().as_slice()];
        let okm = self
            .prk
            .expand(&info, hmac::HMAC_SHA256)
            // ring refuses only outputs longer than 255 × hash length; 32 bytes is far below.
            .expect("HKDF output of one hash length is always valid");
        TenantPseudonyms {
            key: hmac::Key::from(okm),
            cache: std::collections::HashMap::new(),
        }
    }
}

/// Seals who was active in a group (pseudonyms and days) while it waits in GroupMgr's job
/// state for its row to be written: AES-256-GCM under a per-tenant key derived from the index
/// key (which is not in the database), the tenant and group as associated data. The database
/// holds ciphertext only.
pub struct PeopleSeal {
    key: ring::aead::LessSafeKey,
    tenant: [u8; 16],
}

impl fmt::Debug for PeopleSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeopleSeal(<redacted>)")
    }
}

impl PeopleSeal {
    fn aad(&self, group: &str) -> Vec<u8> {
        let mut aad = self.tenant.to_vec();
        aad.extend_from_slice(group.as_bytes());
        aad
    }

    /// `base64url(nonce || ciphertext || tag)` of `plain`, bound to `group`.
    pub fn seal(&self, group: &str, plain: &[u8]) -> String {
        use base64::Engine as _;
        use ring::rand::SecureRandom as _;
        let mut nonce = [0u8; 12];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            // The system's random source does not fail once the process runs.
            .expect("system random source");
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(self.aad(group)),
                &mut data,
            )
            // Fails only for inputs over 64 GiB.
            .expect("AES-GCM seals any input of this size");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    /// What `seal` sealed for `group`, or `None` (another key, another group, tampered).
    pub fn open(&self, group: &str, sealed: &str) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, rest) = bytes.split_at(12);
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(
                ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?,
                ring::aead::Aad::from(self.aad(group)),
                &mut data,
            )
            .ok()?;
        Some(plain.to_vec())
    }
}

/// One tenant's pseudonym key, with the pseudonyms computed so far (an audit feed names the
/// same few thousand people over and over).
pub struct TenantPseudonyms {
    key: hmac::Key,
    cache: std::collections::HashMap<Box<str>, [u8; 9]>,
}

/// Names remembered at most (a bound on memory, not a limit on people).
const PSEUDONYM_CACHE: usize = 100_000;

impl TenantPseudonyms {
    /// The pseudonym of `upn` (normalised to NFC, lower-cased, as the blind index is).
    pub fn of(&mut self, upn: &str) -> [u8; 9] {
        if let Some(p) = self.cache.get(upn) {
            return *p;
        }
        let p = self.compute(upn);
        if self.cache.len() >= PSEUDONYM_CACHE {
            self.cache.clear();
        }
        self.cache.insert(upn.into(), p);
        p
    }

    pub fn compute(&self, upn: &str) -> [u8; 9] {
        let normalised: String = upn.nfc().collect::<String>().to_lowercase();
        let tag = hmac::sign(&self.key, normalised.as_bytes());
        let mut out = [0u8; 9];
        out.copy_from_slice(&tag.as_ref()[..9]);
        out
    }
}

/// Computes blind indexes from the master key. Cheap to clone and share.
#[derive(Clone)]
pub struct UpnIndexer {
    /// HKDF-Extract of the master key, done once; per-tenant keys are Expand steps.
    prk: hkdf::Prk,
}

impl UpnIndexer {
    pub fn new(master: IndexKey) -> Self {
        Self {
            prk: hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(&master.0),
        }
    }

    /// The HMAC key for one tenant.
    fn tenant_key(&self, tenant: &TenantId) -> hmac::Key {
        let info = [tenant.as_uuid().as_bytes().as_slice()];
        let okm = self
            .prk
            .expand(&info, hmac::HMAC_SHA256)
            // ring refuses only outputs longer than 255 × hash length; 32 bytes is far below.
            .expect("HKDF output of one hash length is always valid");
        hmac::Key::from(okm)
    }

    /// The index of `upn` in `tenant`: the UPN is normalised to NFC, then lower-cased, so
    /// `Åsa@X.com` written with a combining ring and with `Å` count as one user.
    pub fn index(&self, tenant: &TenantId, upn: &str) -> BlindIndex {
        let normalised: String = upn.nfc().collect::<String>().to_lowercase();
        let tag = hmac::sign(&self.tenant_key(tenant), normalised.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        BlindIndex(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexer(byte: u8) -> UpnIndexer {
        UpnIndexer::new(IndexKey::from_bytes([byte; 32]))
    }

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    const A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const B: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn people_seals_open_only_for_their_tenant_and_group() {
        let key = PseudonymKey::new(&IndexKey::from_bytes([9; 32]));
        let a = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        let b = TenantId::parse("11111111-86f1-41af-91ab-2d7cd011db47").unwrap();
        let sealed = key.seal(&a).seal("g1", b"who did what");
        assert!(!sealed.contains("who"));
        assert_eq!(key.seal(&a).open("g1", &sealed).as_deref(), Some(&b"who did what"[..]));
        assert_eq!(key.seal(&a).open("g2", &sealed), None);
        assert_eq!(key.seal(&b).open("g1", &sealed), None);
        assert_ne!(
            key.seal(&a).seal("g1", b"who did what"),
            sealed,
            "a fresh nonce each time"
        );
        let other = PseudonymKey::new(&IndexKey::from_bytes([8; 32]));
        assert_eq!(other.seal(&a).open("g1", &sealed), None);
        assert_eq!(key.seal(&a).open("g1", "not base64!"), None);
        assert_eq!(key.seal(&a).open("g1", "AAAA"), None);
    }

    #[test]
    fn pseudonyms_are_per_tenant_case_blind_and_not_the_blind_index() {
        let key = IndexKey::from_bytes([9; 32]);
        let a = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        let b = TenantId::parse("11111111-86f1-41af-91ab-2d7cd011db47").unwrap();
        let mut pa = PseudonymKey::new(&key).tenant(&a);
        let pb = PseudonymKey::new(&key).tenant(&b);
        assert_eq!(pa.of("Ada@Contoso.com"), pa.of("ada@contoso.com"));
        assert_eq!(pa.of("Ada@Contoso.com"), pa.compute("ADA@CONTOSO.COM"));
        assert_ne!(pa.of("ada@contoso.com"), pb.compute("ada@contoso.com"));
        assert_ne!(pa.of("ada@contoso.com"), pa.of("bob@contoso.com"));
        let index = UpnIndexer::new(key).index(&a, "ada@contoso.com");
        assert_ne!(&index.0[..9], &pa.of("ada@contoso.com")[..]);
    }

    #[test]
    fn case_and_normalisation_do_not_split_a_user() {
        let ix = indexer(7);
        let t = tenant(A);
        let composed = ix.index(&t, "\u{c5}sa@Contoso.com");
        let decomposed = ix.index(&t, "A\u{30a}SA@contoso.COM");
        assert_eq!(composed, decomposed);
    }

    #[test]
    fn tenants_and_master_keys_separate_indexes() {
        let ix = indexer(7);
        assert_ne!(ix.index(&tenant(A), "u@x.com"), ix.index(&tenant(B), "u@x.com"));
        assert_ne!(
            indexer(7).index(&tenant(A), "u@x.com"),
            indexer(8).index(&tenant(A), "u@x.com")
        );
        assert_ne!(ix.index(&tenant(A), "u@x.com"), ix.index(&tenant(A), "v@x.com"));
    }

    #[test]
    fn matches_an_independent_hkdf_hmac_computation() {
        // Recompute with ring's primitives spelled out step by step (RFC 5869 extract+expand).
        let master = [9u8; 32];
        let t = tenant(A);
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SALT), &master);
        let mut t1_input = t.as_uuid().as_bytes().to_vec();
        t1_input.push(1);
        let okm = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &t1_input);
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, okm.as_ref()), b"user@contoso.com");
        let got = indexer(9).index(&t, "User@Contoso.com");
        assert_eq!(got.0.as_slice(), expected.as_ref());
    }
}
