//! The schedule, once for both ways it runs: the `SyncScheduler` timer under a Functions host
//! (which turns a `Plan` into `tenant-sync` queue messages) and the in-process schedule of
//! standalone `serve` and `dev` (which runs the syncs itself, a few tenants at a time). Both
//! sync the same tenants (`due_tenants`) and do the same housekeeping (`housekeeping`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::TenantSyncMessage;
use crate::app::App;
use crate::domain::{TenantRecord, TenantStatus};
use crate::store::{OFFBOARDED_LOG_RETENTION, Store, StoreError};

/// How often, as `functions/SyncScheduler` (`0 */15 * * * *`).
pub const EVERY: Duration = Duration::from_secs(15 * 60);
/// Tenants synced at the same time by the in-process schedule.
pub const CONCURRENCY: usize = 4;

/// The first tick of the schedule at or after `t` (ticks are on the quarter hour, as
/// `0 */15 * * * *`; the in-process schedule runs on the same period from its start).
pub fn next_tick(t: DateTime<Utc>) -> DateTime<Utc> {
    let every = EVERY.as_secs() as i64;
    let secs = t.timestamp();
    let next = secs.div_euclid(every) * every
        + if secs.rem_euclid(every) == 0 && t.timestamp_subsec_nanos() == 0 {
            0
        } else {
            every
        };
    DateTime::from_timestamp(next, 0).unwrap_or(t)
}

/// The tenants to sync now: active, with a licence valid today.
pub async fn due_tenants(store: &dyn Store, now: DateTime<Utc>) -> Result<Vec<TenantRecord>, StoreError> {
    let today = now.date_naive();
    Ok(store
        .tenants()
        .await?
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active && t.licence_valid_on(today))
        .collect())
}

/// Work that is due whatever the tenants: the logs of tenants offboarded longer ago than the
/// retention period are unreadable already (their keys are gone), so they are deleted.
/// Returns how many entries were purged.
pub async fn housekeeping(store: &dyn Store, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let purged = store.purge_offboarded_logs(now - OFFBOARDED_LOG_RETENTION).await?;
    if purged > 0 {
        tracing::info!(event = "offboarded_logs_purged", count = purged);
    }
    Ok(purged)
}

/// What one tick decided: the syncs to start, and the housekeeping done.
#[derive(Debug)]
pub struct Plan {
    pub syncs: Vec<TenantSyncMessage>,
    /// Log entries of long-offboarded tenants deleted; `None` if housekeeping failed this
    /// time (it does not fail the tick; the next one tries again).
    pub purged: Option<u64>,
}

/// One tick of the schedule: which tenants to sync, and the housekeeping. `past_due`: the
/// tick comes late (the timer says so when the host missed its schedule).
pub async fn plan(store: &dyn Store, now: DateTime<Utc>, past_due: bool) -> Result<Plan, StoreError> {
    let syncs: Vec<TenantSyncMessage> = due_tenants(store, now)
        .await?
        .iter()
        .map(|t| TenantSyncMessage {
            tenant_id: t.tenant_id,
            scheduled_at: now,
            full: false,
            manual: false,
        })
        .collect();
    tracing::info!(event = "sync_scheduled", tenants = syncs.len(), past_due);
    let purged = match housekeeping(store, now).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(event = "tenant_log_error", error = %e);
            None
        }
    };
    Ok(Plan { syncs, purged })
}

/// One in-process tick: the plan, then every sync in it, a few at a time. Failures are
/// logged and wait for the next tick, as a failed queue message would.
pub async fn tick(app: &App) {
    let plan = match plan(app.store.as_ref(), Utc::now(), false).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(event = "tenant_log_error", error = %e);
            return;
        }
    };
    futures_util::stream::iter(plan.syncs)
        .for_each_concurrent(CONCURRENCY, |msg| async move {
            // Already running (another instance, `POST /api/sync`, `groupmgr sync`) or
            // deferred by a recorded condition: both fine, the next tick tries again.
            if let Err(e) = super::tenant_sync::run_to_completion(app, &msg.tenant_id, &msg, None).await {
                tracing::warn!(event = "tenant_sync_failed", tenant_id = %msg.tenant_id, error = %e);
            }
        })
        .await;
}

/// Runs the in-process schedule until the process ends: a first tick right away, then every
/// 15 minutes; and, as `functions/WebhookDispatch` (`0 * * * * *`), the lifecycle webhooks
/// every minute.
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let webhooks = app.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = crate::lifecycle::webhooks::run(&webhooks).await {
                tracing::warn!(event = "webhook_dispatch_failed", error = %e);
            }
        }
    });
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            tick(&app).await;
        }
    })
}
