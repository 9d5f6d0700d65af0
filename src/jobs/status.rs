//! What the tenant's last sync run did, kept in its job state for `GET /api/sync`: when it
//! started and ended, how it ended, and what it counted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::state::{StateError, TenantState, load_doc, save_doc};
use crate::domain::TenantId;

const NAME: &str = "sync_status";

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Everything due was read and written.
    Finished,
    /// The invocation's time was up (or Microsoft asked to wait): the sync continues.
    Continues,
    /// A recorded condition stopped it (see the conditions).
    Deferred,
    Failed,
}

/// One invocation of the tenant's sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub ended_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    /// Microsoft 365 groups seen.
    pub groups: u64,
    pub rows_written: u64,
    /// Rows SharePoint refused, kept for the next run.
    pub rows_refused: u64,
    pub audit_blobs: u64,
    pub audit_records: u64,
    /// Audit content lost (expired before it could be read, or unreadable three times).
    pub audit_blobs_lost: u64,
    pub requests: u64,
    /// Why it failed (`failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The tenant's last run.
pub async fn last_run(state: &dyn TenantState, tenant: &TenantId) -> Result<Option<RunRecord>, StateError> {
    Ok(load_doc(state, tenant, NAME).await?.map(|(r, _)| r))
}

/// Records a run (replacing the previous record; the caller holds the tenant's lease).
pub async fn record(state: &dyn TenantState, tenant: &TenantId, run: &RunRecord) -> Result<(), StateError> {
    for _ in 0..2 {
        let version = state.load(tenant, NAME).await?.map(|(_, v)| v);
        match save_doc(state, tenant, NAME, run, version.as_ref()).await {
            Err(StateError::Conflict) => continue,
            other => return other.map(|_| ()),
        }
    }
    Err(StateError::Conflict)
}

/// Where a tenant's sync stands, for `GET /api/sync`.
#[derive(Debug, Clone)]
pub struct SyncSnapshot {
    pub last_run: Option<RunRecord>,
    /// Until when the run under way holds the tenant (`None`: none is running).
    pub running_until: Option<DateTime<Utc>>,
    /// When the schedule next syncs the tenant: the next tick, or the first tick after a
    /// recorded condition's retry time.
    pub next_due: DateTime<Utc>,
    pub condition: Option<Condition>,
    /// Activity is complete up to here (see `activity_sync::data_complete_until`).
    pub data_complete_until: Option<DateTime<Utc>>,
}

/// Reads the tenant's sync status from its job state. `audit_feed`: whether activity comes
/// from the audit feed (the Management Activity API is configured); `now`: the jobs' clock
/// (the lease is read by the real one, as it is kept).
pub async fn snapshot(
    state: &dyn TenantState,
    tenant: &TenantId,
    audit_feed: bool,
    now: DateTime<Utc>,
) -> Result<SyncSnapshot, StateError> {
    let condition = conditions::current(state, tenant).await?;
    let after = condition.as_ref().map_or(now, |c| c.next_attempt.max(now));
    Ok(SyncSnapshot {
        last_run: last_run(state, tenant).await?,
        running_until: super::lease::held_until(state, tenant, Utc::now()).await?,
        next_due: super::schedule::next_tick(after),
        condition,
        data_complete_until: super::activity_sync::data_complete_until(state, tenant, audit_feed).await?,
    })
}
