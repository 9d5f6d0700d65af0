//! `TenantSync` (queue `tenant-sync`): one tenant's sync. Today that is the group sync
//! (`group_sync.rs`); the Teams report and the audit feed join it with the activity work.
//! Also run by hand with `groupmgr sync <tenant-id> [--full]`.

use std::time::Instant;

use serde_json::Value;
use warp::http::StatusCode;

use super::TenantSyncMessage;
use super::group_sync::{SyncError, SyncReport, sync_groups};
use crate::api::ApiError;
use crate::app::App;
use crate::auth::AcquireError;
use crate::domain::{TenantId, TenantStatus};
use crate::host::invocation::{InvocationRequest, InvocationResponse};

/// The queue trigger's binding name in `functions/TenantSync/function.json`.
pub const MESSAGE_BINDING: &str = "message";

/// What one tenant sync did.
#[derive(Debug, Clone, Default)]
pub struct TenantSyncSummary {
    pub groups: SyncReport,
    pub requests: u64,
    pub seconds: f64,
}

/// Why a tenant sync failed.
#[derive(Debug, thiserror::Error)]
pub enum TenantSyncError {
    #[error("tenant {0} is not registered")]
    UnknownTenant(TenantId),
    #[error("tenant {0} is not active")]
    Inactive(TenantId),
    #[error("no app token: {0}")]
    Token(#[from] AcquireError),
    #[error("sync failed: {0}")]
    Sync(#[from] SyncError),
    #[error("database unavailable: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Runs the sync of one tenant with an app-only token.
pub async fn run(
    app: &App,
    tenant: &TenantId,
    full: bool,
) -> Result<TenantSyncSummary, TenantSyncError> {
    let started = Instant::now();
    let record = app
        .store
        .tenant(tenant)
        .await?
        .ok_or(TenantSyncError::UnknownTenant(*tenant))?;
    if record.status != TenantStatus::Active {
        return Err(TenantSyncError::Inactive(*tenant));
    }
    let token = app.tokens.app_token(tenant, &app.graph_resource).await?;
    let graph = app.graph.session(&token);
    let groups = sync_groups(
        &graph,
        app.store.as_ref(),
        tenant,
        &app.settings.sharepoint_site,
        full,
    )
    .await?;
    let summary = TenantSyncSummary {
        requests: graph.requests_sent(),
        seconds: started.elapsed().as_secs_f64(),
        groups,
    };
    tracing::info!(
        event = "group_sync_finished",
        tenant_id = %tenant,
        groups = summary.groups.groups,
        written = summary.groups.written,
        requests = summary.requests,
        mode = if summary.groups.full { "full" } else { "incremental" },
    );
    Ok(summary)
}

/// The queue invocation. A malformed message is answered 200 with a log line (retrying it
/// cannot help; it would only end in the poison queue after five tries); failures that may
/// pass answer non-2xx so that the host retries the message.
pub async fn invoke(app: &App, req: &InvocationRequest) -> Result<InvocationResponse, ApiError> {
    let raw = req.queue_message(MESSAGE_BINDING).unwrap_or_default();
    let msg: TenantSyncMessage = match serde_json::from_str(&raw) {
        Ok(m) => m,
        Err(_) => {
            return Ok(InvocationResponse {
                logs: vec!["discarded a tenant-sync message that is not a sync request".into()],
                ..Default::default()
            });
        }
    };
    match run(app, &msg.tenant_id, msg.full).await {
        Ok(s) => Ok(InvocationResponse {
            logs: vec![format!(
                "tenant {} synced: {} groups, {} rows written, {} Graph requests, {:.1} s",
                msg.tenant_id, s.groups.groups, s.groups.written, s.requests, s.seconds
            )],
            return_value: Value::Null,
            ..Default::default()
        }),
        Err(TenantSyncError::UnknownTenant(_) | TenantSyncError::Inactive(_)) => {
            Ok(InvocationResponse {
                logs: vec![format!(
                    "tenant {} skipped: not registered or not active",
                    msg.tenant_id
                )],
                ..Default::default()
            })
        }
        Err(TenantSyncError::Token(e)) => Err(ApiError::from(e)),
        Err(TenantSyncError::Sync(SyncError::Graph(e))) => Err(ApiError::from(e)),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sync_failed",
            e.to_string(),
        )),
    }
}
