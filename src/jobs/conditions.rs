//! What stops a tenant's sync for reasons only the tenant can fix — consent revoked, an app
//! role removed, the GroupMgr list deleted — recorded per tenant in the job state, so that
//! the sync does not fail, retry five times and poison the queue every 15 minutes. A recorded
//! condition is said once in the tenant log, retried after a growing interval (1 hour,
//! doubling, at most 24 hours) and cleared by the first sync that gets past it. A sync an
//! administrator starts (`POST /api/sync`) tries at once, whatever the interval.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::state::{StateError, TenantState, load_doc, save_doc};
use crate::domain::TenantId;

const NAME: &str = "sync_conditions";
const FIRST_RETRY: TimeDelta = TimeDelta::hours(1);
const LONGEST_RETRY: TimeDelta = TimeDelta::hours(24);

/// A reason the tenant's sync cannot proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConditionKind {
    /// The tenant's admin consent to GroupMgr is gone (AADSTS65001 / 7000229).
    ConsentRevoked,
    /// An application permission GroupMgr needs was removed (Graph or the Management API
    /// answers 403 to GroupMgr's own token).
    PermissionMissing,
    /// The "GroupMgr Groups" list was deleted and could not be created again.
    ListMissing,
}

impl ConditionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConditionKind::ConsentRevoked => "consent_revoked",
            ConditionKind::PermissionMissing => "permission_missing",
            ConditionKind::ListMissing => "list_missing",
        }
    }
}

/// A recorded condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub kind: ConditionKind,
    /// What Microsoft said (an AADSTS or Graph error code), for the administrator.
    pub detail: String,
    pub since: DateTime<Utc>,
    /// Syncs that met it.
    pub attempts: u32,
    /// When the schedule tries again.
    pub next_attempt: DateTime<Utc>,
}

/// The tenant's recorded condition, if any.
pub async fn current(state: &dyn TenantState, tenant: &TenantId) -> Result<Option<Condition>, StateError> {
    Ok(load_doc::<Option<Condition>>(state, tenant, NAME)
        .await?
        .and_then(|(c, _)| c))
}

/// Records that a sync met `kind` now: the first time it is new (the caller says it in the
/// tenant log); after that the retry interval doubles. Returns the condition as recorded and
/// whether it is new.
pub async fn record(
    state: &dyn TenantState,
    tenant: &TenantId,
    kind: ConditionKind,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(Condition, bool), StateError> {
    loop {
        let stored = load_doc::<Option<Condition>>(state, tenant, NAME).await?;
        let (previous, version) = match stored {
            Some((c, v)) => (c, Some(v)),
            None => (None, None),
        };
        let condition = match previous.filter(|p| p.kind == kind) {
            Some(p) => {
                let attempts = p.attempts + 1;
                let wait = FIRST_RETRY * 2i32.saturating_pow(attempts.saturating_sub(1).min(16));
                Condition {
                    detail: detail.to_string(),
                    attempts,
                    next_attempt: now + wait.min(LONGEST_RETRY),
                    ..p
                }
            }
            None => Condition {
                kind,
                detail: detail.to_string(),
                since: now,
                attempts: 1,
                next_attempt: now + FIRST_RETRY,
            },
        };
        let new = condition.attempts == 1;
        match save_doc(state, tenant, NAME, &Some(&condition), version.as_ref()).await {
            Ok(_) => return Ok((condition, new)),
            Err(StateError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Clears the tenant's condition: a sync got past it.
pub async fn clear(state: &dyn TenantState, tenant: &TenantId) -> Result<Option<Condition>, StateError> {
    let previous = current(state, tenant).await?;
    if previous.is_some() {
        state.delete(tenant, NAME).await?;
    }
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::state::EmbeddedState;

    #[tokio::test]
    async fn retries_back_off_from_an_hour_to_a_day_and_clear() {
        let (state, tenant) = EmbeddedState::for_test().await;
        let now = Utc::now();
        let mut waits = Vec::new();
        for i in 0..8 {
            let (c, new) = record(&state, &tenant, ConditionKind::ConsentRevoked, "AADSTS65001", now)
                .await
                .unwrap();
            assert_eq!(new, i == 0, "new only the first time");
            waits.push((c.next_attempt - now).num_hours());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 24, 24, 24]);
        // Another kind starts over.
        let (c, new) = record(&state, &tenant, ConditionKind::ListMissing, "itemNotFound", now)
            .await
            .unwrap();
        assert!(new && c.attempts == 1);
        assert_eq!(
            clear(&state, &tenant).await.unwrap().map(|c| c.kind),
            Some(ConditionKind::ListMissing)
        );
        assert_eq!(current(&state, &tenant).await.unwrap(), None);
    }
}
