//! `groupmgr logs decrypt` and `groupmgr users list`: the customer opens its sealed logs and
//! licensed-user list with its private key, from GroupMgr's store (for an operator the customer
//! handed the key to) or from a saved `GET /api/logs` response.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::CommandError;
use crate::crypto::SealedValue;
use crate::crypto::{TenantPrivateKey, TenantPublicKey};
use crate::decrypt::{LogForm, OpenedLog, Opener, Sender};
use crate::domain::TenantId;
use crate::store::{LogKeyRecord, LogQuery, LogRecord, Store};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// One human-readable line per entry.
    Text,
}

/// What was opened, for the summary and the exit status.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub opened: u64,
    /// Of those opened, entries not entirely vouched for (not sealed by GroupMgr's publisher
    /// key as checked, or of the first form, whose clear columns are not bound).
    pub unauthenticated: u64,
    pub failed: u64,
}

/// How far an opened entry can be trusted, for the text form (empty when entirely).
fn caveat(o: &OpenedLog) -> String {
    let mut notes = Vec::new();
    match &o.sender {
        Sender::GroupMgr => {}
        Sender::Unverified(id) => notes.push(format!("sealed by key {id}, not checked: pass --publisher")),
        Sender::Unauthenticated => {
            notes.push("unauthenticated: anyone holding the tenant's public key could have written it".into())
        }
    }
    if o.form == LogForm::V1 {
        notes.push("v1: its time, level and event are not sealed".into());
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", notes.join("; "))
    }
}

fn line(format: Format, rec: &LogRecord, opener: &Opener, tally: &mut Tally) -> String {
    let time = rec.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    match (opener.open_log(rec), format) {
        (Ok(o), format) => {
            tally.opened += 1;
            if !o.authenticated() {
                tally.unauthenticated += 1;
            }
            match format {
                Format::Json => json!({
                    "id": o.id, "time": time, "level": o.level, "event": o.event, "message": o.message,
                    "fields": o.fields, "form": o.form.label(), "sender": o.sender.label(),
                })
                .to_string(),
                Format::Text => format!("{time} {:<5} {}: {}{}", o.level, o.event, o.message, caveat(&o)),
            }
        }
        (Err(e), Format::Json) => {
            tally.failed += 1;
            json!({"id": rec.id, "time": time, "event": rec.event, "error": e.to_string()}).to_string()
        }
        (Err(e), Format::Text) => {
            tally.failed += 1;
            format!("{time} ERROR {} (entry {}): cannot open: {e}", rec.event, rec.id)
        }
    }
}

/// The tenants whose logs this key can open (some data key sealed to it), or the one asked for.
pub async fn tenants_for_key(
    store: &dyn Store,
    key: &TenantPrivateKey,
    tenant: Option<TenantId>,
) -> Result<Vec<TenantId>, CommandError> {
    if let Some(t) = tenant {
        return Ok(vec![t]);
    }
    let mut out = Vec::new();
    for t in store.tenants().await.map_err(CommandError::Store)? {
        let keys = store.log_keys(&t.tenant_id).await.map_err(CommandError::Store)?;
        if keys.iter().any(|k| k.public_key_id == key.public().id())
            || t.log_key.as_ref().is_some_and(|k| k.id() == key.public().id())
        {
            out.push(t.tenant_id);
        }
    }
    if out.is_empty() {
        return Err(CommandError::Other(format!(
            "no tenant has data sealed to key {}; pass --tenant to read one anyway",
            key.public().id()
        )));
    }
    Ok(out)
}

/// Decrypts logs from the store, writing lines through `emit`.
#[allow(clippy::too_many_arguments)]
pub async fn decrypt_from_store(
    store: &dyn Store,
    key: &TenantPrivateKey,
    publishers: &[TenantPublicKey],
    tenant: Option<TenantId>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    format: Format,
    emit: &mut dyn FnMut(String),
) -> Result<Tally, CommandError> {
    let mut tally = Tally::default();
    for t in tenants_for_key(store, key, tenant).await? {
        let keys = store.log_keys(&t).await.map_err(CommandError::Store)?;
        let opener = Opener::new(key, t, &keys, publishers);
        let mut after = None;
        loop {
            let page = store
                .logs(
                    &t,
                    &LogQuery {
                        since,
                        until,
                        after,
                        limit: 1000,
                    },
                )
                .await
                .map_err(CommandError::Store)?;
            let Some(last) = page.last() else { break };
            after = Some((last.time, last.id));
            for rec in &page {
                emit(line(format, rec, &opener, &mut tally));
            }
        }
    }
    Ok(tally)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedPage {
    tenant_id: Option<String>,
    value: Vec<SavedEntry>,
    #[serde(default)]
    keys: Vec<SavedKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedEntry {
    id: uuid::Uuid,
    time: DateTime<Utc>,
    level: String,
    event: String,
    message: String,
    key_id: uuid::Uuid,
    nonce: String,
    sealed: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedKey {
    key_id: uuid::Uuid,
    public_key_id: String,
    enc: String,
    sealed_key: String,
    sender_public_key: Option<String>,
}

fn b64(field: &str, v: &str) -> Result<Vec<u8>, CommandError> {
    B64.decode(v)
        .map_err(|_| CommandError::Other(format!("saved response: {field} is not base64")))
}

/// Decrypts a saved `GET /api/logs` response (one JSON object, or several, one per line, for
/// several pages).
pub fn decrypt_saved(
    text: &str,
    key: &TenantPrivateKey,
    publishers: &[TenantPublicKey],
    tenant: Option<TenantId>,
    format: Format,
    emit: &mut dyn FnMut(String),
) -> Result<Tally, CommandError> {
    let mut tally = Tally::default();
    let pages: Vec<SavedPage> = serde_json::Deserializer::from_str(text)
        .into_iter::<SavedPage>()
        .collect::<Result<_, _>>()
        .map_err(|e| CommandError::Other(format!("saved response is not a GET /api/logs body: {e}")))?;
    for page in pages {
        let t = match (tenant, page.tenant_id.as_deref()) {
            (Some(t), _) => t,
            (None, Some(raw)) => TenantId::parse(raw)?,
            (None, None) => {
                return Err(CommandError::Other(
                    "saved response names no tenant; pass --tenant".into(),
                ));
            }
        };
        let keys = page
            .keys
            .iter()
            .map(|k| {
                Ok(LogKeyRecord {
                    key_id: k.key_id,
                    tenant_id: t,
                    public_key_id: k.public_key_id.clone(),
                    enc: b64("enc", &k.enc)?,
                    sealed_key: b64("sealedKey", &k.sealed_key)?,
                    created_at: Utc::now(),
                    sender_public_key: k
                        .sender_public_key
                        .as_deref()
                        .map(|v| b64("senderPublicKey", v))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, CommandError>>()?;
        // The response's own `publisherKey` is not trusted: whoever holds the file could have
        // changed it along with the entries. Only the keys the reader names vouch.
        let opener = Opener::new(key, t, &keys, publishers);
        for e in page.value {
            let nonce: [u8; 12] = b64("nonce", &e.nonce)?
                .try_into()
                .map_err(|_| CommandError::Other("saved response: nonce is not 12 bytes".into()))?;
            let rec = LogRecord {
                id: e.id,
                tenant_id: t,
                time: e.time,
                level: e.level,
                event: e.event,
                message: e.message,
                sealed: SealedValue {
                    key_id: e.key_id,
                    nonce,
                    ciphertext: b64("sealed", &e.sealed)?,
                },
            };
            emit(line(format, &rec, &opener, &mut tally));
        }
    }
    Ok(tally)
}

pub fn read_key(path: &Path) -> Result<TenantPrivateKey, CommandError> {
    Ok(TenantPrivateKey::read(path)?)
}

/// `users list`: the licensed users of the key's tenants, with their UPNs opened.
pub async fn users_list(
    store: &dyn Store,
    key: &TenantPrivateKey,
    publishers: &[TenantPublicKey],
    tenant: Option<TenantId>,
    emit: &mut dyn FnMut(String),
) -> Result<Tally, CommandError> {
    let mut tally = Tally::default();
    for t in tenants_for_key(store, key, tenant).await? {
        let keys = store.log_keys(&t).await.map_err(CommandError::Store)?;
        let opener = Opener::new(key, t, &keys, publishers);
        for user in store.licensed_users(&t).await.map_err(CommandError::Store)? {
            let upn = match opener.open_upn(&user) {
                Ok(Some(upn)) => {
                    tally.opened += 1;
                    upn
                }
                Ok(None) => {
                    tally.failed += 1;
                    "(no sealed copy yet: counted before the tenant registered its key)".to_string()
                }
                Err(e) => {
                    tally.failed += 1;
                    format!("(cannot open: {e})")
                }
            };
            emit(format!(
                "{t}  {upn}  first seen {}  last seen {}",
                user.first_seen.format("%Y-%m-%d %H:%M"),
                user.last_seen.format("%Y-%m-%d %H:%M")
            ));
        }
    }
    Ok(tally)
}
