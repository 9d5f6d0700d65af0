//! `GET /api/sync`: where the caller's tenant's sync stands (role `GroupMgr.Admin`): the last
//! run, whether one is running, the next one due, any recorded condition, the time up to
//! which activity is complete, and which activity sources inform it (or why not).
//!
//! `POST /api/sync?full=`: sync the caller's tenant now (role `GroupMgr.Admin`). 202 with
//! `queued` (a `tenant-sync` message, under a Functions host) or `started` (in process,
//! standalone); 409 `sync_in_progress` when this process is syncing the tenant already.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use warp::http::{Response, StatusCode};

use super::model::{SyncCondition, SyncQueued, SyncState, SyncStatus};
use super::{ApiError, ErrorCode, Request};
use crate::app::App;
use crate::auth::Caller;
use crate::jobs::TenantSyncMessage;
use crate::jobs::on_demand::Launched;

pub async fn get(app: &Arc<App>, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    super::require_admin(caller)?;
    let tenant = caller.tenant.tenant_id;
    let s = crate::jobs::status::snapshot(app.state.as_ref(), &tenant, app.management.is_some(), app.clock.now())
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let body = SyncState {
        last_run: s.last_run,
        running: s.running_until.is_some(),
        running_until: s.running_until,
        next_due: s.next_due,
        condition: s.condition.map(|c| SyncCondition {
            kind: c.kind,
            detail: c.detail,
            since: c.since,
            attempts: c.attempts,
            next_attempt: c.next_attempt,
        }),
        data_complete_until: s.data_complete_until,
        sources: crate::jobs::activity_sync::sources(
            app.state.as_ref(),
            &tenant,
            app.settings.cloud.has_teams_report(),
            app.management.is_some(),
        )
        .await
        .map_err(|_| ApiError::store_unavailable())?,
    };
    Ok(super::json(StatusCode::OK, &body))
}

pub async fn post(app: &Arc<App>, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    super::require_admin(caller)?;
    let mut full = false;
    for (k, v) in req.query_pairs() {
        if k == "full" {
            full = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::bad_request(
                        ErrorCode::InvalidInput,
                        "full: must be true or false",
                    ));
                }
            };
        }
    }
    let tenant = caller.tenant.tenant_id;
    let msg = TenantSyncMessage {
        tenant_id: tenant,
        scheduled_at: Utc::now(),
        full,
        manual: true,
    };
    let status = match app.sync.launch(app, msg).await {
        Ok(Launched::Queued) => SyncStatus::Queued,
        Ok(Launched::Started) => SyncStatus::Started,
        Ok(Launched::AlreadyRunning) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SyncInProgress,
                "a sync of this tenant is running; try again when it has finished",
            ));
        }
        Err(e) => {
            tracing::warn!(event = "sync_queue_unavailable", tenant_id = %tenant, error = %e);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                "the sync queue is unavailable; retry shortly",
            )
            .with_header("retry-after", "5"));
        }
    };
    tracing::info!(event = "sync_requested", tenant_id = %tenant, full);
    let body = SyncQueued {
        tenant_id: tenant.to_string(),
        status,
        full,
    };
    Ok(super::json(StatusCode::ACCEPTED, &body))
}
