//! Timer and queue work: the schedule (`schedule.rs`), one tenant's sync (`tenant_sync.rs`:
//! groups, then activity) and on-demand syncs (`on_demand.rs`), with the per-tenant job state
//! they keep between runs (`state.rs`). Jobs speak their own language — summaries and errors
//! of their own; `host::functions` turns them into invocation envelopes.

pub mod activity_sync;
pub mod conditions;
pub mod group_sync;
pub mod lease;
pub mod on_demand;
pub mod pending;
pub mod schedule;
pub mod state;
pub mod status;
pub mod tenant_sync;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::TenantId;

/// The time the tenant's Microsoft data lives in, as the jobs see it: when audit content is
/// due, which day's Teams report to read, when a condition is retried. The system clock in
/// production; tests set it to m365-sim's clock so that time can pass for both together.
/// Leases and budgets keep the real clock (they measure this process's own work).
#[derive(Clone, Default)]
pub struct Clock(Option<std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>>);

impl Clock {
    pub fn from_fn(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Some(std::sync::Arc::new(f)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.as_ref().map_or_else(Utc::now, |f| f())
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(set)"
        } else {
            "Clock(system)"
        })
    }
}

/// How long one invocation may work: it saves its progress and stops once the budget is
/// spent (between steps: a page of groups, a batch of audit content), and the sync continues
/// in the next invocation. A budget tied to a lease is spent at once when the lease is lost:
/// the run stops at its next step, writing nothing more.
#[derive(Debug, Clone)]
pub struct Budget {
    deadline: Instant,
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Budget {
    pub fn new(duration: Duration) -> Self {
        Self {
            deadline: Instant::now() + duration,
            stop: None,
        }
    }

    /// The same budget, spent as soon as `stop` turns true (a lease lost).
    pub fn until_lost(mut self, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// When the work must stop.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn exhausted(&self) -> bool {
        Instant::now() >= self.deadline
            || self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
    }

    pub fn remaining(&self) -> Duration {
        if self.exhausted() {
            return Duration::ZERO;
        }
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// One message on the `tenant-sync` queue: sync this tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSyncMessage {
    pub tenant_id: TenantId,
    pub scheduled_at: DateTime<Utc>,
    /// Ignore checkpoints and delta links (a full resync).
    #[serde(default)]
    pub full: bool,
    /// Asked for by an administrator (`POST /api/sync`): tried now, even while a recorded
    /// condition (revoked consent, …) would otherwise wait for its next attempt.
    #[serde(default)]
    pub manual: bool,
}
