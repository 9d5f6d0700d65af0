//! Timer and queue functions: scheduling and per-tenant sync.

pub mod activity_sync;
pub mod group_sync;
pub mod local_schedule;
pub mod on_demand;
pub mod scheduler;
pub mod tenant_sync;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::TenantId;

/// The name of the `tenant-sync` queue output binding in `functions/SyncScheduler`.
pub const TENANT_SYNC_OUTPUT: &str = "tenantSync";

/// One message on the `tenant-sync` queue: sync this tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSyncMessage {
    pub tenant_id: TenantId,
    pub scheduled_at: DateTime<Utc>,
    /// Ignore checkpoints and delta links (a full resync).
    #[serde(default)]
    pub full: bool,
}
