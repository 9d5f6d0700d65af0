//! The operator and customer commands on the configured store: `tenant …` here, `keys` and
//! `logs`/`users` in their modules. Each returns the text to print on success, or an error
//! whose one-line message goes to stderr.

pub mod keys;
pub mod logs;

use chrono::NaiveDate;

use crate::crypto::TenantPublicKey;
use crate::domain::{InvalidInput, Seats, TenantId, TenantStatus};
use crate::store::{NewTenant, Store, StoreError};

/// An operator command's failure: one line, no secrets.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Input(#[from] InvalidInput),
    #[error("tenant {0} is not registered")]
    UnknownTenant(TenantId),
    #[error("tenant {0} is already registered")]
    Duplicate(TenantId),
    #[error("database error: {0}")]
    Store(StoreError),
    #[error("{0}")]
    KeyFile(#[from] crate::crypto::KeyFileError),
    #[error("{0}")]
    Other(String),
}

fn store_err(tenant: TenantId) -> impl Fn(StoreError) -> CommandError {
    move |e| match e {
        StoreError::NotFound => CommandError::UnknownTenant(tenant),
        StoreError::Duplicate => CommandError::Duplicate(tenant),
        other => CommandError::Store(other),
    }
}

/// Parses `--expires YYYY-MM-DD`.
pub fn parse_expiry(raw: &str) -> Result<NaiveDate, InvalidInput> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| InvalidInput::new("expires", "must be a date like 2027-12-31"))
}

pub async fn tenant_add(
    store: &dyn Store,
    tenant: &str,
    seats: &str,
    expires: Option<&str>,
) -> Result<String, CommandError> {
    let tenant_id = TenantId::parse(tenant)?;
    let seats = Seats::parse(seats)?;
    let licence_expires = expires.map(parse_expiry).transpose()?;
    let rec = store
        .add_tenant(&NewTenant {
            tenant_id,
            seats,
            licence_expires,
        })
        .await
        .map_err(store_err(tenant_id))?;
    Ok(format!(
        "registered tenant {} (active, {} seats, licence {})",
        rec.tenant_id,
        rec.seats.get(),
        rec.licence_expires
            .map_or("without expiry".to_string(), |d| format!("until {d}"))
    ))
}

pub async fn tenant_list(store: &dyn Store) -> Result<String, CommandError> {
    let tenants = store.tenants().await.map_err(CommandError::Store)?;
    let mut out = format!(
        "{:<36}  {:<10}  {:>8}  {:>6}  {:<10}\n",
        "TENANT", "STATUS", "SEATS", "USED", "EXPIRES"
    );
    for t in tenants {
        let used = store
            .licensed_user_count(&t.tenant_id)
            .await
            .map_err(CommandError::Store)?;
        out.push_str(&format!(
            "{:<36}  {:<10}  {:>8}  {:>6}  {:<10}\n",
            t.tenant_id,
            t.status.as_str(),
            t.seats.get(),
            used,
            t.licence_expires.map_or("-".to_string(), |d| d.to_string())
        ));
    }
    Ok(out.trim_end().to_string())
}

pub async fn tenant_suspend(store: &dyn Store, tenant: &str) -> Result<String, CommandError> {
    let tenant_id = TenantId::parse(tenant)?;
    store
        .set_status(&tenant_id, TenantStatus::Suspended)
        .await
        .map_err(store_err(tenant_id))?;
    Ok(format!("suspended tenant {tenant_id}"))
}

pub async fn tenant_activate(store: &dyn Store, tenant: &str) -> Result<String, CommandError> {
    let tenant_id = TenantId::parse(tenant)?;
    let rec = store.tenant(&tenant_id).await.map_err(store_err(tenant_id))?;
    match rec {
        None => Err(CommandError::UnknownTenant(tenant_id)),
        Some(r) if r.status == TenantStatus::Offboarded => Err(CommandError::Input(InvalidInput::new(
            "tenant",
            "an offboarded tenant cannot be reactivated (its keys are gone); register it again under a new licence",
        ))),
        Some(_) => {
            store
                .set_status(&tenant_id, TenantStatus::Active)
                .await
                .map_err(store_err(tenant_id))?;
            Ok(format!("activated tenant {tenant_id}"))
        }
    }
}

pub async fn tenant_set_seats(store: &dyn Store, tenant: &str, seats: &str) -> Result<String, CommandError> {
    let tenant_id = TenantId::parse(tenant)?;
    let seats = Seats::parse(seats)?;
    store.set_seats(&tenant_id, seats).await.map_err(store_err(tenant_id))?;
    let used = store
        .licensed_user_count(&tenant_id)
        .await
        .map_err(CommandError::Store)?;
    let mut msg = format!("tenant {tenant_id} now has {} seats ({used} in use)", seats.get());
    if used > u64::from(seats.get()) {
        msg.push_str("; existing users keep access, new users are refused until usage falls below the seat count");
    }
    Ok(msg)
}

pub async fn tenant_set_expiry(store: &dyn Store, tenant: &str, expires: Option<&str>) -> Result<String, CommandError> {
    let tenant_id = TenantId::parse(tenant)?;
    let date = expires.map(parse_expiry).transpose()?;
    store
        .set_licence_expiry(&tenant_id, date)
        .await
        .map_err(store_err(tenant_id))?;
    Ok(match date {
        Some(d) => format!("tenant {tenant_id} licence valid until {d}"),
        None => format!("tenant {tenant_id} licence has no expiry"),
    })
}

pub async fn tenant_set_log_key(store: &dyn Store, tenant: &str, public_key: &str) -> Result<String, CommandError> {
    let tenant_id = TenantId::parse(tenant)?;
    let key = TenantPublicKey::parse(public_key)?;
    store
        .set_log_public_key(&tenant_id, &key)
        .await
        .map_err(store_err(tenant_id))?;
    Ok(format!(
        "tenant {tenant_id}: log key {} registered; new log entries and licensed-user UPNs are sealed to it (older ones still open with the keys they were sealed to)",
        key.id()
    ))
}

pub async fn tenant_offboard(store: &dyn Store, tenant: &str) -> Result<String, CommandError> {
    let tenant_id = TenantId::parse(tenant)?;
    let now = chrono::Utc::now();
    let remaining = store.offboard(&tenant_id, now).await.map_err(store_err(tenant_id))?;
    let retention = crate::store::OFFBOARDED_LOG_RETENTION;
    let purge_on = (now + retention).date_naive();
    Ok(format!(
        "offboarded tenant {tenant_id}: its data keys and licensed users are deleted, so its {remaining} remaining log entries can no longer be decrypted by anyone; they are purged after {} days (from {purge_on})",
        retention.num_days()
    ))
}
