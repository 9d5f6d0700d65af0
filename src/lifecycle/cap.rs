//! The daily cap on lifecycle actions (`maxActionsPerDay`), held across instances: each action
//! takes one of the day's places in a counter kept in the tenant's job state, and takes it
//! with a version-conditional write, so two workers can never both take the last one. Only
//! the count is kept — not which group, not who.

use chrono::{DateTime, Utc};

use crate::domain::TenantId;
use crate::jobs::state::{StateError, TenantState, load_doc, save_doc};

fn key(day: DateTime<Utc>) -> String {
    format!("lifecycle_actions_{}", day.format("%Y-%m-%d"))
}

/// How many conditional writes one reservation tries before it reports the store busy.
const ATTEMPTS: usize = 20;

/// Takes one of the day's `max` places (the day is `now`'s, UTC). `false`: none left.
pub async fn reserve(
    state: &dyn TenantState,
    tenant: &TenantId,
    now: DateTime<Utc>,
    max: u32,
) -> Result<bool, StateError> {
    let key = key(now);
    for _ in 0..ATTEMPTS {
        let (taken, version) = match load_doc::<u32>(state, tenant, &key).await? {
            Some((n, v)) => (n, Some(v)),
            None => (0, None),
        };
        if taken >= max {
            return Ok(false);
        }
        match save_doc(state, tenant, &key, &(taken + 1), version.as_ref()).await {
            Ok(_) => return Ok(true),
            // Another worker took a place meanwhile: count again.
            Err(StateError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StateError::Conflict)
}

/// Gives back a place taken on `now`'s day by an action Microsoft refused (nothing was done,
/// so it did not use the day's allowance). Best effort: a place not given back only makes the
/// day's cap stricter.
pub async fn release(state: &dyn TenantState, tenant: &TenantId, now: DateTime<Utc>) -> Result<(), StateError> {
    let key = key(now);
    for _ in 0..ATTEMPTS {
        let Some((taken, version)) = load_doc::<u32>(state, tenant, &key).await? else {
            return Ok(());
        };
        if taken == 0 {
            return Ok(());
        }
        match save_doc(state, tenant, &key, &(taken - 1), Some(&version)).await {
            Ok(_) => return Ok(()),
            Err(StateError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StateError::Conflict)
}

/// The places taken on `now`'s day.
pub async fn taken(state: &dyn TenantState, tenant: &TenantId, now: DateTime<Utc>) -> Result<u32, StateError> {
    Ok(load_doc::<u32>(state, tenant, &key(now)).await?.map_or(0, |(n, _)| n))
}
