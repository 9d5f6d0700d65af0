//! The customer's side: opening sealed log entries and licensed-user UPNs with the tenant's
//! private key. Used by `groupmgr logs decrypt` and `groupmgr users list`, and a reference for
//! customers writing their own tools. Every failure is a per-record `OpenError`, never a
//! crash and never garbage.
//!
//! Each opened entry says how far it can be trusted: its `Sender` (whether GroupMgr's
//! publisher key sealed its data key, HPKE Auth mode) and its `LogForm` (whether its time,
//! level, event and template are bound to the ciphertext). An entry re-dated or re-worded in
//! the database fails to open; one sealed by someone else is `ForeignSender` or
//! `Unauthenticated`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::crypto::seal::{LICENSED_UPN, LOG_RECORD, LOG_RECORD_V2, log_record, open_data_key};
use crate::crypto::{OpenError, OpeningKey, TenantPrivateKey, TenantPublicKey};
use crate::domain::TenantId;
use crate::store::{LicensedUser, LogKeyRecord, LogRecord};
use crate::telemetry::catalog;

/// Who sealed an entry's data key, as far as the reader can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// Sealed in HPKE Auth mode by the publisher key the reader trusts: GroupMgr wrote it.
    GroupMgr,
    /// Sealed in Auth mode by the key with this id; the reader gave no publisher key to check
    /// it against.
    Unverified(String),
    /// Sealed in Base mode: entries from before GroupMgr had a publisher key (or a deployment
    /// without one). Anyone holding the tenant's public key could have written it.
    Unauthenticated,
}

impl Sender {
    /// Its name in `logs decrypt` output.
    pub fn label(&self) -> String {
        match self {
            Sender::GroupMgr => "groupmgr".into(),
            Sender::Unverified(id) => format!("unverified:{id}"),
            Sender::Unauthenticated => "unauthenticated".into(),
        }
    }
}

/// Which form an entry was sealed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogForm {
    /// The first form: only the entry id is bound; its time, level, event and template could
    /// have been changed in the database without detection.
    V1,
    /// Id, time, level, event and template are all bound.
    V2,
}

impl LogForm {
    pub fn label(self) -> &'static str {
        match self {
            LogForm::V1 => "v1",
            LogForm::V2 => "v2",
        }
    }
}

/// An opened log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedLog {
    pub id: uuid::Uuid,
    pub time: DateTime<Utc>,
    pub level: String,
    pub event: String,
    /// The template with the entry's fields filled in.
    pub message: String,
    pub fields: Map<String, Value>,
    pub form: LogForm,
    pub sender: Sender,
}

impl OpenedLog {
    /// Entirely vouched for: GroupMgr sealed it and every column is bound.
    pub fn authenticated(&self) -> bool {
        self.sender == Sender::GroupMgr && self.form == LogForm::V2
    }
}

/// The data keys of one tenant, opened with its private key.
pub struct Opener {
    tenant: TenantId,
    keys: HashMap<uuid::Uuid, Result<(OpeningKey, Sender), OpenError>>,
}

impl Opener {
    /// Opens the tenant's data keys. `publishers` are GroupMgr's publisher public keys as the
    /// reader knows them (`groupmgr keys publisher`; the current one and any earlier one, after
    /// a rotation): with them, a key sealed by any other sender is reported as forged; without,
    /// senders are named but not vouched for.
    pub fn new(
        sk: &TenantPrivateKey,
        tenant: TenantId,
        key_records: &[LogKeyRecord],
        publishers: &[TenantPublicKey],
    ) -> Self {
        let keys = key_records
            .iter()
            .filter(|k| k.tenant_id == tenant)
            .map(|k| (k.key_id, open_key(sk, tenant, k, publishers)))
            .collect();
        Self { tenant, keys }
    }

    fn key(&self, id: &uuid::Uuid) -> Result<&(OpeningKey, Sender), OpenError> {
        match self.keys.get(id) {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(e.clone()),
            None => Err(OpenError::MissingDataKey),
        }
    }

    pub fn open_log(&self, rec: &LogRecord) -> Result<OpenedLog, OpenError> {
        if rec.tenant_id != self.tenant {
            return Err(OpenError::Tampered);
        }
        let (key, sender) = self.key(&rec.sealed.key_id)?;
        let bound = log_record(&rec.id, rec.time, &rec.level, &rec.event, &rec.message);
        let (plain, form) = match key.open(LOG_RECORD_V2, &bound, &rec.sealed) {
            Ok(p) => (p, LogForm::V2),
            // An entry of the first form; a v2 entry whose clear columns were changed opens
            // as neither.
            Err(OpenError::Tampered) => (key.open(LOG_RECORD, rec.id.as_bytes(), &rec.sealed)?, LogForm::V1),
            Err(e) => return Err(e),
        };
        let fields: Map<String, Value> =
            serde_json::from_slice(&plain).map_err(|_| OpenError::Malformed("sealed fields are not a JSON object"))?;
        Ok(OpenedLog {
            id: rec.id,
            time: rec.time,
            level: rec.level.clone(),
            event: rec.event.clone(),
            message: catalog::render(&rec.message, &fields),
            fields,
            form,
            sender: sender.clone(),
        })
    }

    /// The UPN of a licensed user (`Ok(None)` when no sealed copy exists yet).
    pub fn open_upn(&self, user: &LicensedUser) -> Result<Option<String>, OpenError> {
        let Some(sealed) = &user.sealed_upn else {
            return Ok(None);
        };
        let plain = self
            .key(&sealed.key_id)?
            .0
            .open(LICENSED_UPN, &user.upn_index.0, sealed)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| OpenError::Malformed("UPN is not UTF-8"))
    }
}

/// One data key: opened in the mode it names, its sender checked against `publishers`.
fn open_key(
    sk: &TenantPrivateKey,
    tenant: TenantId,
    k: &LogKeyRecord,
    publishers: &[TenantPublicKey],
) -> Result<(OpeningKey, Sender), OpenError> {
    if k.public_key_id != sk.public().id() {
        return Err(OpenError::WrongKey(k.public_key_id.clone()));
    }
    let sender_key = match &k.sender_public_key {
        None => None,
        Some(bytes) => {
            let bytes: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| OpenError::Malformed("sender public key"))?;
            Some(TenantPublicKey::from_bytes(bytes).map_err(|_| OpenError::Malformed("sender public key"))?)
        }
    };
    let sender = match &sender_key {
        None => Sender::Unauthenticated,
        Some(s) if publishers.contains(s) => Sender::GroupMgr,
        Some(s) if !publishers.is_empty() => return Err(OpenError::ForeignSender(s.id().to_string())),
        Some(s) => Sender::Unverified(s.id().to_string()),
    };
    let bytes = open_data_key(sk, &tenant, &k.key_id, &k.enc, &k.sealed_key, sender_key.as_ref())?;
    Ok((OpeningKey::from_bytes(k.key_id, tenant, &bytes), sender))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal::LOG_RECORD_V2;
    use crate::crypto::{DataKey, PublisherKey};

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }
    const A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const B: &str = "11111111-2222-3333-4444-555555555555";

    /// A data key and its stored record, sealed as `sender` (Base mode when `None`).
    fn setup_as(sk: &TenantPrivateKey, t: TenantId, sender: Option<&PublisherKey>) -> (DataKey, LogKeyRecord) {
        let (key, enc, sealed_key) = DataKey::generate(t, sk.public(), sender);
        let rec = LogKeyRecord {
            key_id: key.key_id,
            tenant_id: t,
            public_key_id: sk.public().id().to_string(),
            enc,
            sealed_key,
            created_at: Utc::now(),
            sender_public_key: sender.map(|s| s.public().as_bytes().to_vec()),
        };
        (key, rec)
    }

    fn setup(sk: &TenantPrivateKey, t: TenantId) -> (DataKey, LogKeyRecord) {
        setup_as(sk, t, None)
    }

    /// An entry as the tenant log writes it (v2: every clear column bound).
    fn entry(key: &DataKey, t: TenantId, fields: &str) -> LogRecord {
        let id = uuid::Uuid::now_v7();
        let time = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        let (level, event, message) = ("INFO", "user_admitted", "{user} took a licensed seat");
        LogRecord {
            id,
            tenant_id: t,
            time,
            level: level.into(),
            event: event.into(),
            message: message.into(),
            sealed: key
                .seal(
                    LOG_RECORD_V2,
                    &log_record(&id, time, level, event, message),
                    fields.as_bytes(),
                )
                .unwrap(),
        }
    }

    #[test]
    fn opens_and_renders() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let ours = PublisherKey::for_test(1);
        let (key, key_rec) = setup_as(&sk, t, Some(&ours));
        let e = entry(&key, t, r#"{"user":"adele@contoso.com"}"#);
        let opened = Opener::new(&sk, t, &[key_rec], std::slice::from_ref(ours.public()))
            .open_log(&e)
            .unwrap();
        assert_eq!(opened.message, "adele@contoso.com took a licensed seat");
        assert_eq!((opened.form, opened.sender.clone()), (LogForm::V2, Sender::GroupMgr));
        assert!(opened.authenticated());
    }

    #[test]
    fn a_changed_clear_column_fails_to_open() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let (key, key_rec) = setup(&sk, t);
        let opener = Opener::new(&sk, t, &[key_rec], &[]);
        let e = entry(&key, t, r#"{"user":"x"}"#);
        assert!(opener.open_log(&e).is_ok());
        let edits: [&dyn Fn(&mut LogRecord); 4] = [
            &|r| r.time -= chrono::TimeDelta::days(3),
            &|r| r.level = "DEBUG".into(),
            &|r| r.event = "group_deleted".into(),
            &|r| r.message = "{user} deleted every group".into(),
        ];
        for edit in edits {
            let mut changed = e.clone();
            edit(&mut changed);
            assert_eq!(opener.open_log(&changed), Err(OpenError::Tampered), "{changed:?}");
        }
    }

    #[test]
    fn first_form_entries_stay_readable_and_say_so() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let (key, key_rec) = setup(&sk, t);
        let id = uuid::Uuid::now_v7();
        let old = LogRecord {
            id,
            tenant_id: t,
            time: Utc::now(),
            level: "INFO".into(),
            event: "user_admitted".into(),
            message: "{user} took a licensed seat".into(),
            sealed: key.seal(LOG_RECORD, id.as_bytes(), br#"{"user":"x"}"#).unwrap(),
        };
        let opened = Opener::new(&sk, t, &[key_rec], &[]).open_log(&old).unwrap();
        assert_eq!(
            (opened.form, opened.sender.clone()),
            (LogForm::V1, Sender::Unauthenticated)
        );
        assert!(!opened.authenticated());
    }

    #[test]
    fn entries_sealed_by_anyone_else_are_reported() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let ours = PublisherKey::for_test(1);
        // Someone with write access to the database and the tenant's public key (public):
        // with a key pair of their own (Auth mode), or with none (Base mode).
        let mallory = PublisherKey::for_test(66);
        let (forged_key, forged_rec) = setup_as(&sk, t, Some(&mallory));
        let forged = entry(&forged_key, t, r#"{"user":"x"}"#);
        assert_eq!(
            Opener::new(
                &sk,
                t,
                std::slice::from_ref(&forged_rec),
                std::slice::from_ref(ours.public())
            )
            .open_log(&forged),
            Err(OpenError::ForeignSender(mallory.public().id().to_string()))
        );
        // Without the publisher key to check against, the sender is named, not vouched for.
        let unchecked = Opener::new(&sk, t, std::slice::from_ref(&forged_rec), &[])
            .open_log(&forged)
            .unwrap();
        assert_eq!(unchecked.sender, Sender::Unverified(mallory.public().id().to_string()));
        let (base_key, base_rec) = setup_as(&sk, t, None);
        let unauthenticated = Opener::new(&sk, t, &[base_rec], std::slice::from_ref(ours.public()))
            .open_log(&entry(&base_key, t, "{}"))
            .unwrap();
        assert_eq!(unauthenticated.sender, Sender::Unauthenticated);
        assert!(!unauthenticated.authenticated());
        // Claiming GroupMgr as the sender of a key it did not seal fails (Auth mode binds the
        // sender); stripping the sender from a genuine key fails too.
        let mut claimed = forged_rec.clone();
        claimed.sender_public_key = Some(ours.public().as_bytes().to_vec());
        assert_eq!(
            Opener::new(&sk, t, &[claimed], std::slice::from_ref(ours.public())).open_log(&forged),
            Err(OpenError::Tampered)
        );
        let (genuine_key, genuine_rec) = setup_as(&sk, t, Some(&ours));
        let mut stripped = genuine_rec.clone();
        stripped.sender_public_key = None;
        assert_eq!(
            Opener::new(&sk, t, &[stripped], std::slice::from_ref(ours.public())).open_log(&entry(
                &genuine_key,
                t,
                "{}"
            )),
            Err(OpenError::Tampered)
        );
        let mut junk = genuine_rec;
        junk.sender_public_key = Some(vec![1, 2, 3]);
        assert!(matches!(
            Opener::new(&sk, t, &[junk], std::slice::from_ref(ours.public())).open_log(&entry(&genuine_key, t, "{}")),
            Err(OpenError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_key_tampering_and_missing_keys_are_per_record_errors() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let (key, key_rec) = setup(&sk, t);
        let e = entry(&key, t, r#"{"user":"x"}"#);

        let other = TenantPrivateKey::generate();
        assert!(matches!(
            Opener::new(&other, t, std::slice::from_ref(&key_rec), &[]).open_log(&e),
            Err(OpenError::WrongKey(_))
        ));
        assert_eq!(
            Opener::new(&sk, t, &[], &[]).open_log(&e),
            Err(OpenError::MissingDataKey)
        );

        let opener = Opener::new(&sk, t, std::slice::from_ref(&key_rec), &[]);
        let mut tampered = e.clone();
        tampered.sealed.ciphertext[3] ^= 0x40;
        assert_eq!(opener.open_log(&tampered), Err(OpenError::Tampered));
        let mut moved = e.clone();
        moved.id = uuid::Uuid::now_v7();
        assert_eq!(opener.open_log(&moved), Err(OpenError::Tampered), "row id is bound");
        // Moved to another tenant (with its key record moved along): the AADs no longer match.
        let mut other_tenant = e.clone();
        other_tenant.tenant_id = tenant(B);
        let mut moved_key = key_rec.clone();
        moved_key.tenant_id = tenant(B);
        assert_eq!(
            Opener::new(&sk, tenant(B), &[moved_key], &[]).open_log(&other_tenant),
            Err(OpenError::Tampered)
        );

        // A sealed key whose bytes were altered.
        let mut bad_key = key_rec.clone();
        bad_key.sealed_key[0] ^= 1;
        assert_eq!(
            Opener::new(&sk, t, &[bad_key], &[]).open_log(&e),
            Err(OpenError::Tampered)
        );

        // Content that authenticates but is not a JSON object is reported, not shown.
        let junk = LogRecord {
            sealed: key
                .seal(
                    LOG_RECORD_V2,
                    &log_record(&e.id, e.time, &e.level, &e.event, &e.message),
                    b"not json",
                )
                .unwrap(),
            ..e.clone()
        };
        assert!(matches!(opener.open_log(&junk), Err(OpenError::Malformed(_))));
    }
}
