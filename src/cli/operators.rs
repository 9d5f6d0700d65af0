//! The operators' trail. The security policy limits access to customer data to a few
//! employees; this makes it checkable. Every operator command that changes or reads a tenant's
//! data (`tenant …`, `logs decrypt` from the database, `users list`, `sync`) first appends an
//! entry — who, what, which tenant, when — to the `operator_audit` table, and refuses to run if
//! it cannot. Entries are chained: each `hash` is an HMAC-SHA256, under a key derived from
//! `GROUPMGR_INDEX_KEY` (Key Vault), over the previous entry's hash and this entry's fields.
//! `groupmgr operators log --verify` finds an entry altered or deleted anywhere before the
//! newest one; someone with write access to the database but not that key cannot recompute
//! the chain to hide it. (Removing the newest entries leaves a shorter valid chain: compare
//! the head `--verify` prints with one recorded elsewhere to detect that.)
//!
//! Who: the operator's Entra identity when signed in with Azure CLI (`entra:<tenant>/<object
//! id>`, from the claims of `az account get-access-token`), else the OS account
//! (`os:<user>@<host>`). Never a UPN: the trail names our own staff by id.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::CommandError;
use crate::crypto::MacKey;
use crate::domain::TenantId;
use crate::store::{OperatorEntry, Store, StoreError};

/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

const DOMAIN: &[u8] = b"groupmgr/operator-audit/v1";

/// How long `az` may take to name the signed-in operator.
const AZ_TIMEOUT: Duration = Duration::from_secs(20);

/// The hash of an entry: HMAC-SHA256 under the trail key over a label, the previous hash,
/// the sequence number, the time (Unix microseconds) and the text fields, each
/// length-prefixed.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    key: &MacKey,
    prev: &[u8; 32],
    seq: i64,
    at: DateTime<Utc>,
    operator: &str,
    command: &str,
    tenant: Option<&TenantId>,
    detail: &str,
) -> [u8; 32] {
    let tenant = tenant.map(|t| t.to_string()).unwrap_or_default();
    let (seq, at) = (seq.to_be_bytes(), at.timestamp_micros().to_be_bytes());
    let tag = key.sign(&[
        DOMAIN,
        prev,
        &seq,
        &at,
        operator.as_bytes(),
        command.as_bytes(),
        tenant.as_bytes(),
        detail.as_bytes(),
    ]);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

fn hash_of(key: &MacKey, e: &OperatorEntry) -> [u8; 32] {
    entry_hash(
        key,
        &e.prev_hash,
        e.seq,
        e.at,
        &e.operator,
        &e.command,
        e.tenant_id.as_ref(),
        &e.detail,
    )
}

/// Appends an entry after the newest one. Two operators appending at once both land: the one
/// that loses the sequence number reads the new head and tries again.
pub async fn record(
    store: &dyn Store,
    key: &MacKey,
    operator: &str,
    command: &str,
    tenant: Option<TenantId>,
    detail: &str,
) -> Result<OperatorEntry, CommandError> {
    let failed =
        |e: StoreError| CommandError::Other(format!("cannot write the operators' trail, so nothing was done: {e}"));
    for _ in 0..20 {
        let last = store.last_operator_entry().await.map_err(failed)?;
        let (seq, prev_hash) = last.map_or((1, GENESIS), |l| (l.seq + 1, l.hash));
        // Whole microseconds: what both stores keep.
        let at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now);
        let entry = OperatorEntry {
            seq,
            at,
            operator: operator.to_string(),
            command: command.to_string(),
            tenant_id: tenant,
            detail: detail.to_string(),
            prev_hash,
            hash: entry_hash(key, &prev_hash, seq, at, operator, command, tenant.as_ref(), detail),
        };
        match store.insert_operator_entry(&entry).await {
            Ok(()) => return Ok(entry),
            Err(StoreError::Duplicate) => continue,
            Err(e) => return Err(failed(e)),
        }
    }
    Err(CommandError::Other(
        "cannot write the operators' trail (too many concurrent writers), so nothing was done".into(),
    ))
}

/// The trail as one command writes it: its key and the operator, each found once.
pub struct Trail {
    key: MacKey,
    operator: String,
}

impl Trail {
    /// The key from the settings (`GROUPMGR_INDEX_KEY`) and the operator running this process.
    pub async fn open(settings: &crate::config::Settings) -> Result<Self, CommandError> {
        Ok(Self {
            key: key(settings)?,
            operator: identity().await,
        })
    }

    /// Appends an entry for this command; the command must not run if this fails.
    pub async fn append(
        &self,
        store: &dyn Store,
        command: &str,
        tenant: Option<TenantId>,
        detail: &str,
    ) -> Result<OperatorEntry, CommandError> {
        record(store, &self.key, &self.operator, command, tenant, detail).await
    }
}

/// The key that chains the trail, derived from `GROUPMGR_INDEX_KEY`.
pub fn key(settings: &crate::config::Settings) -> Result<MacKey, CommandError> {
    let index = settings.index_key.as_ref().ok_or_else(|| {
        CommandError::Other(
            "GROUPMGR_INDEX_KEY: required for operator commands (it keys the operators' trail); use the deployment's, from Key Vault".into(),
        )
    })?;
    Ok(MacKey::derive_operator_trail(index))
}

/// Who runs this process: the Entra identity Azure CLI is signed in with, else the OS account.
pub async fn identity() -> String {
    match entra_identity().await {
        Some(id) => id,
        None => os_identity(),
    }
}

/// `entra:<tenant>/<object id>` from the claims of the token Azure CLI hands out, if it is
/// installed and signed in.
async fn entra_identity() -> Option<String> {
    let run = tokio::process::Command::new("az")
        .args(["account", "get-access-token", "--output", "json"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(AZ_TIMEOUT, run).await.ok()?.ok()?;
    if !out.status.success() {
        return None;
    }
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    entra_claims(reply.get("accessToken")?.as_str()?)
}

/// The operator named by an access token's claims (its payload is read, not verified: this
/// is the operator's own machine telling who is signed in, as `az account show` would).
pub fn entra_claims(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let id = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_str())
            .and_then(|v| uuid::Uuid::parse_str(v).ok())
    };
    Some(format!("entra:{}/{}", id("tid")?, id("oid")?))
}

fn os_identity() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    format!("os:{user}@{host}")
}

/// What `--verify` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    /// One line per break in the chain (empty: intact).
    pub breaks: Vec<String>,
    /// The newest entry's sequence number and hash (hex): record it elsewhere to detect the
    /// newest entries being removed.
    pub head: Option<(i64, String)>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Prints the trail through `emit` and, with `verify`, checks the chain.
pub async fn log(
    store: &dyn Store,
    key: &MacKey,
    verify: bool,
    emit: &mut dyn FnMut(String),
) -> Result<Verification, CommandError> {
    let mut v = Verification::default();
    let (mut expected_seq, mut expected_prev) = (1_i64, GENESIS);
    let mut after = 0;
    loop {
        let page = store.operator_entries(after, 1000).await.map_err(CommandError::Store)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            v.entries += 1;
            emit(format!(
                "{:>6}  {}  {}  {}  {}  {}",
                e.seq,
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                e.operator,
                e.command,
                e.tenant_id.map_or_else(|| "-".to_string(), |t| t.to_string()),
                e.detail
            ));
            if verify {
                if e.seq != expected_seq {
                    v.breaks
                        .push(format!("entries {expected_seq}..{} are missing (deleted)", e.seq - 1));
                }
                if e.prev_hash != expected_prev {
                    v.breaks.push(format!(
                        "entry {} does not follow the entry before it (an entry before it was deleted or altered)",
                        e.seq
                    ));
                }
                if hash_of(key, e) != e.hash {
                    v.breaks.push(format!(
                        "entry {} was altered (its hash does not match its content)",
                        e.seq
                    ));
                }
            }
            expected_seq = e.seq + 1;
            expected_prev = e.hash;
            v.head = Some((e.seq, hex(&e.hash)));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_the_key_every_field_and_the_link() {
        let at = DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap();
        let t = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        let k = MacKey::derive_operator_trail(&crate::crypto::IndexKey::from_bytes([1; 32]));
        let other_key = MacKey::derive_operator_trail(&crate::crypto::IndexKey::from_bytes([2; 32]));
        let h = |key: &MacKey,
                 prev: &[u8; 32],
                 seq: i64,
                 at: DateTime<Utc>,
                 op: &str,
                 cmd: &str,
                 tenant: Option<&TenantId>,
                 detail: &str| { entry_hash(key, prev, seq, at, op, cmd, tenant, detail) };
        let base = h(&k, &GENESIS, 1, at, "os:a@h", "tenant offboard", Some(&t), "x");
        for other in [
            h(&other_key, &GENESIS, 1, at, "os:a@h", "tenant offboard", Some(&t), "x"),
            h(&k, &[1; 32], 1, at, "os:a@h", "tenant offboard", Some(&t), "x"),
            h(&k, &GENESIS, 2, at, "os:a@h", "tenant offboard", Some(&t), "x"),
            h(
                &k,
                &GENESIS,
                1,
                at + chrono::TimeDelta::microseconds(1),
                "os:a@h",
                "tenant offboard",
                Some(&t),
                "x",
            ),
            h(&k, &GENESIS, 1, at, "os:b@h", "tenant offboard", Some(&t), "x"),
            h(&k, &GENESIS, 1, at, "os:a@h", "tenant add", Some(&t), "x"),
            h(&k, &GENESIS, 1, at, "os:a@h", "tenant offboard", None, "x"),
            h(&k, &GENESIS, 1, at, "os:a@h", "tenant offboard", Some(&t), "y"),
            h(&k, &GENESIS, 1, at, "os:a@ht", "enant offboard", Some(&t), "x"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn an_azure_cli_token_names_the_operator_by_object_id() {
        let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = serde_json::json!({
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "oid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            "upn": "operator@groupmgr.example",
        });
        let token = format!("{}.{}.sig", b64(&serde_json::json!({"alg": "RS256"})), b64(&claims));
        let id = entra_claims(&token).unwrap();
        assert_eq!(
            id,
            "entra:72f988bf-86f1-41af-91ab-2d7cd011db47/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
        );
        assert!(!id.contains('@'), "never the UPN");
        assert_eq!(entra_claims("not a token"), None);
        assert!(os_identity().starts_with("os:"));
    }
}
