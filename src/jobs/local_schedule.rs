//! The schedule when no Functions host runs us (standalone `serve`, and `dev`): the same
//! `SyncScheduler` → `TenantSync` work, in process, every 15 minutes, with at most a few
//! tenants syncing at once and no Azure Storage needed (state lives in the embedded store).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::app::App;
use crate::domain::TenantStatus;

/// How often, as `functions/SyncScheduler` (`0 */15 * * * *`).
pub const EVERY: Duration = Duration::from_secs(15 * 60);
/// Tenants synced at the same time.
pub const CONCURRENCY: usize = 4;

/// Whether a Functions host started us (it sets the worker id; functions-custom-handler.md §1).
pub fn under_functions_host() -> bool {
    std::env::var_os("FUNCTIONS_CUSTOMHANDLER_WORKER_ID").is_some()
        || std::env::var_os("FUNCTIONS_HTTPWORKER_ID").is_some()
}

/// One tick: every active, licensed tenant, a few at a time. Failures are logged and wait
/// for the next tick, as a failed queue message would.
pub async fn tick(app: &App) {
    let today = chrono::Utc::now().date_naive();
    let tenants = match app.store.tenants().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(event = "tenant_log_error", error = %e);
            return;
        }
    };
    let due: Vec<_> = tenants
        .into_iter()
        .filter(|t| t.status == TenantStatus::Active && t.licence_valid_on(today))
        .collect();
    tracing::info!(event = "sync_scheduled", tenants = due.len(), past_due = false);
    futures_util::stream::iter(due)
        .for_each_concurrent(CONCURRENCY, |t| async move {
            if let Err(e) = super::tenant_sync::run(app, &t.tenant_id, false).await {
                tracing::warn!(event = "tenant_sync_failed", tenant_id = %t.tenant_id, error = %e);
            }
        })
        .await;
}

/// Runs the schedule until the process ends: a first tick right away, then every 15 minutes.
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            tick(&app).await;
        }
    })
}
