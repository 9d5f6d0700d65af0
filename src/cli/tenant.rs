//! `groupmgr tenant …`: the operator's commands on registered tenants and their licences.
//! Each returns the text to print on success, or an error whose one line goes to stderr.

use chrono::NaiveDate;

use super::{CommandError, store_err};
use crate::crypto::TenantPublicKey;
use crate::domain::{InvalidInput, Seats, TenantId, TenantStatus};
use crate::jobs::state::TenantState;
use crate::store::{NewTenant, Store};

pub async fn add(
    store: &dyn Store,
    tenant_id: TenantId,
    seats: Seats,
    licence_expires: Option<NaiveDate>,
) -> Result<String, CommandError> {
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

pub async fn list(store: &dyn Store) -> Result<String, CommandError> {
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

pub async fn suspend(store: &dyn Store, tenant_id: TenantId) -> Result<String, CommandError> {
    store
        .set_status(&tenant_id, TenantStatus::Suspended)
        .await
        .map_err(store_err(tenant_id))?;
    Ok(format!("suspended tenant {tenant_id}"))
}

pub async fn activate(store: &dyn Store, tenant_id: TenantId) -> Result<String, CommandError> {
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

pub async fn set_seats(store: &dyn Store, tenant_id: TenantId, seats: Seats) -> Result<String, CommandError> {
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

pub async fn set_expiry(
    store: &dyn Store,
    tenant_id: TenantId,
    date: Option<NaiveDate>,
) -> Result<String, CommandError> {
    store
        .set_licence_expiry(&tenant_id, date)
        .await
        .map_err(store_err(tenant_id))?;
    Ok(match date {
        Some(d) => format!("tenant {tenant_id} licence valid until {d}"),
        None => format!("tenant {tenant_id} licence has no expiry"),
    })
}

pub async fn set_log_key(store: &dyn Store, tenant_id: TenantId, public_key: &str) -> Result<String, CommandError> {
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

/// Offboards a tenant: its data keys, licensed users, licence and log key go from the database
/// (its logs can no longer be opened by anyone and are purged after the retention), and its
/// job state goes from wherever it lives (Blob Storage or the database). Run again after a
/// partial failure, it deletes what is left and keeps the first offboarding date.
pub async fn offboard(store: &dyn Store, state: &dyn TenantState, tenant_id: TenantId) -> Result<String, CommandError> {
    let record = store
        .tenant(&tenant_id)
        .await
        .map_err(CommandError::Store)?
        .ok_or(CommandError::UnknownTenant(tenant_id))?;
    let retention = crate::store::OFFBOARDED_LOG_RETENTION;
    let keys = match (record.status, record.offboarded_at) {
        (TenantStatus::Offboarded, Some(at)) => format!(
            "was offboarded on {}; its logs are purged from {}",
            at.date_naive(),
            (at + retention).date_naive()
        ),
        _ => {
            let now = chrono::Utc::now();
            let remaining = store.offboard(&tenant_id, now).await.map_err(store_err(tenant_id))?;
            format!(
                "its data keys and licensed users are deleted, so its {remaining} remaining log entries can no longer be decrypted by anyone; they are purged after {} days (from {})",
                retention.num_days(),
                (now + retention).date_naive()
            )
        }
    };
    let forgotten = state.forget_tenant(&tenant_id).await.map_err(|e| {
        CommandError::Other(format!(
            "tenant {tenant_id}: {keys}, but its job state could not be deleted ({e}); run the command again"
        ))
    })?;
    Ok(format!(
        "offboarded tenant {tenant_id}: {keys}; {forgotten} pieces of its job state deleted"
    ))
}
