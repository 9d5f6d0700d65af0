//! Timer and queue work: the schedule (`schedule.rs`), one tenant's sync (`tenant_sync.rs`:
//! groups, then activity) and on-demand syncs (`on_demand.rs`), with the per-tenant job state
//! they keep between runs (`state.rs`). Jobs speak their own language — summaries and errors
//! of their own; `host::functions` turns them into invocation envelopes.

pub mod activity_sync;
pub mod group_sync;
pub mod on_demand;
pub mod schedule;
pub mod state;
pub mod tenant_sync;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::TenantId;

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
