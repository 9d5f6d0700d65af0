//! The customer's side: opening sealed log entries and licensed-user UPNs with the tenant's
//! private key. Used by `groupmgr logs decrypt` and `groupmgr users list`, and a reference for
//! customers writing their own tools. Every failure is a per-record `OpenError`, never a
//! crash and never garbage.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::crypto::seal::{LICENSED_UPN, LOG_RECORD, open_data_key};
use crate::crypto::{OpenError, OpeningKey, TenantPrivateKey};
use crate::domain::TenantId;
use crate::store::{LicensedUser, LogKeyRecord, LogRecord};
use crate::telemetry::catalog;

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
}

/// The data keys of one tenant, opened with its private key.
pub struct Opener {
    tenant: TenantId,
    keys: HashMap<uuid::Uuid, Result<OpeningKey, OpenError>>,
}

impl Opener {
    pub fn new(sk: &TenantPrivateKey, tenant: TenantId, key_records: &[LogKeyRecord]) -> Self {
        let keys = key_records
            .iter()
            .filter(|k| k.tenant_id == tenant)
            .map(|k| {
                let opened = if k.public_key_id != sk.public().id() {
                    Err(OpenError::WrongKey(k.public_key_id.clone()))
                } else {
                    open_data_key(sk, &tenant, &k.key_id, &k.enc, &k.sealed_key)
                        .map(|bytes| OpeningKey::from_bytes(k.key_id, tenant, &bytes))
                };
                (k.key_id, opened)
            })
            .collect();
        Self { tenant, keys }
    }

    fn key(&self, id: &uuid::Uuid) -> Result<&OpeningKey, OpenError> {
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
        let plain = self
            .key(&rec.sealed.key_id)?
            .open(LOG_RECORD, rec.id.as_bytes(), &rec.sealed)?;
        let fields: Map<String, Value> =
            serde_json::from_slice(&plain).map_err(|_| OpenError::Malformed("sealed fields are not a JSON object"))?;
        Ok(OpenedLog {
            id: rec.id,
            time: rec.time,
            level: rec.level.clone(),
            event: rec.event.clone(),
            message: catalog::render(&rec.message, &fields),
            fields,
        })
    }

    /// The UPN of a licensed user (`Ok(None)` when no sealed copy exists yet).
    pub fn open_upn(&self, user: &LicensedUser) -> Result<Option<String>, OpenError> {
        let Some(sealed) = &user.sealed_upn else {
            return Ok(None);
        };
        let plain = self
            .key(&sealed.key_id)?
            .open(LICENSED_UPN, &user.upn_index.0, sealed)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| OpenError::Malformed("UPN is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }
    const A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const B: &str = "11111111-2222-3333-4444-555555555555";

    fn setup(sk: &TenantPrivateKey, t: TenantId) -> (DataKey, LogKeyRecord) {
        let (key, enc, sealed_key) = DataKey::generate(t, sk.public());
        let rec = LogKeyRecord {
            key_id: key.key_id,
            tenant_id: t,
            public_key_id: sk.public().id().to_string(),
            enc,
            sealed_key,
            created_at: Utc::now(),
        };
        (key, rec)
    }

    fn entry(key: &DataKey, t: TenantId, fields: &str) -> LogRecord {
        let id = uuid::Uuid::now_v7();
        LogRecord {
            id,
            tenant_id: t,
            time: Utc::now(),
            level: "INFO".into(),
            event: "user_admitted".into(),
            message: "{user} took a licensed seat".into(),
            sealed: key.seal(LOG_RECORD, id.as_bytes(), fields.as_bytes()).unwrap(),
        }
    }

    #[test]
    fn opens_and_renders() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let (key, key_rec) = setup(&sk, t);
        let e = entry(&key, t, r#"{"user":"adele@contoso.com"}"#);
        let opened = Opener::new(&sk, t, &[key_rec]).open_log(&e).unwrap();
        assert_eq!(opened.message, "adele@contoso.com took a licensed seat");
    }

    #[test]
    fn wrong_key_tampering_and_missing_keys_are_per_record_errors() {
        let sk = TenantPrivateKey::generate();
        let t = tenant(A);
        let (key, key_rec) = setup(&sk, t);
        let e = entry(&key, t, r#"{"user":"x"}"#);

        let other = TenantPrivateKey::generate();
        assert!(matches!(
            Opener::new(&other, t, std::slice::from_ref(&key_rec)).open_log(&e),
            Err(OpenError::WrongKey(_))
        ));
        assert_eq!(Opener::new(&sk, t, &[]).open_log(&e), Err(OpenError::MissingDataKey));

        let opener = Opener::new(&sk, t, std::slice::from_ref(&key_rec));
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
            Opener::new(&sk, tenant(B), &[moved_key]).open_log(&other_tenant),
            Err(OpenError::Tampered)
        );

        // A sealed key whose bytes were altered.
        let mut bad_key = key_rec.clone();
        bad_key.sealed_key[0] ^= 1;
        assert_eq!(Opener::new(&sk, t, &[bad_key]).open_log(&e), Err(OpenError::Tampered));

        // Content that authenticates but is not a JSON object is reported, not shown.
        let junk = LogRecord {
            sealed: key.seal(LOG_RECORD, e.id.as_bytes(), b"not json").unwrap(),
            ..e.clone()
        };
        assert!(matches!(opener.open_log(&junk), Err(OpenError::Malformed(_))));
    }
}
