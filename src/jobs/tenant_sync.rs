//! `TenantSync` (queue `tenant-sync`): one tenant's sync — the group sync (`group_sync.rs`),
//! then the activity sync (`activity_sync.rs`: Teams report when due, audit feed since its
//! checkpoint), each writing the tenant's SharePoint list before advancing its own state.
//! Also run by hand with `groupmgr sync <tenant-id> [--full]`.

use std::time::Instant;

use serde_json::Value;
use warp::http::StatusCode;

use super::TenantSyncMessage;
use super::activity_sync::{ActivityError, ActivityReport, ActivitySync};
use super::group_sync::{SyncError, SyncReport, sync_groups};
use crate::api::{ApiError, ErrorCode};
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
    pub activity: ActivityReport,
    /// HTTP requests to Graph and the Management Activity API.
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
    #[error("activity sync failed: {0}")]
    Activity(#[from] ActivityError),
    #[error("database unavailable: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Runs the sync of one tenant with an app-only token.
pub async fn run(app: &App, tenant: &TenantId, full: bool) -> Result<TenantSyncSummary, TenantSyncError> {
    run_with_progress(app, tenant, full, None).await
}

/// `run`, reporting (audit blobs, records) as the audit feed is read.
pub async fn run_with_progress(
    app: &App,
    tenant: &TenantId,
    full: bool,
    progress: Option<&(dyn Fn(u64, u64) + Send + Sync)>,
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
        app.state.as_ref(),
        tenant,
        &app.settings.sharepoint_site,
        full,
    )
    .await?;
    tracing::info!(
        event = "group_sync_finished",
        tenant_id = %tenant,
        groups = groups.groups,
        written = groups.written,
        requests = graph.requests_sent(),
        mode = if groups.full { "full" } else { "incremental" },
    );

    let list = crate::customer_list::location(app.store.as_ref(), tenant)
        .await?
        .ok_or(TenantSyncError::Sync(SyncError::Graph(
            crate::microsoft::graph::GraphError::Protocol("the GroupMgr list is not set up".into()),
        )))?;
    let manage_token = match (&app.management, app.settings.management_endpoint.as_ref()) {
        (Some(_), Some(endpoint)) => {
            let resource = app
                .settings
                .cloud
                .management_endpoint()
                .map_or_else(|| endpoint.origin(), str::to_string);
            Some(app.tokens.app_token(tenant, &resource).await?)
        }
        _ => None,
    };
    let mgmt = match (&app.management, &manage_token) {
        (Some(client), Some(token)) => Some(client.session(token, *tenant)),
        _ => None,
    };
    let activity = ActivitySync {
        graph: &graph,
        management: mgmt.as_ref(),
        state: app.state.as_ref(),
        tenant: *tenant,
        list: &list,
        now: chrono::Utc::now(),
        progress,
    }
    .run()
    .await?;
    tracing::info!(
        event = "activity_sync_finished",
        tenant_id = %tenant,
        blobs = activity.blobs,
        records = activity.records,
        duplicates = activity.duplicates,
        matched = activity.matched,
        lost = activity.lost,
        written = activity.rows_written,
        teams_report = activity.teams_report,
    );
    let summary = TenantSyncSummary {
        requests: graph.requests_sent() + mgmt.as_ref().map_or(0, |m| m.requests_sent()),
        seconds: started.elapsed().as_secs_f64(),
        groups,
        activity,
    };
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
                "tenant {} synced: {} groups, {} rows written, {} audit records, {} requests, {:.1} s",
                msg.tenant_id,
                s.groups.groups,
                s.groups.written + s.activity.rows_written,
                s.activity.records,
                s.requests,
                s.seconds
            )],
            return_value: Value::Null,
            ..Default::default()
        }),
        Err(TenantSyncError::UnknownTenant(_) | TenantSyncError::Inactive(_)) => Ok(InvocationResponse {
            logs: vec![format!(
                "tenant {} skipped: not registered or not active",
                msg.tenant_id
            )],
            ..Default::default()
        }),
        Err(TenantSyncError::Token(e)) => Err(ApiError::from(e)),
        Err(TenantSyncError::Sync(SyncError::Graph(e))) | Err(TenantSyncError::Activity(ActivityError::Graph(e))) => {
            Err(ApiError::from(e))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::SyncFailed,
            e.to_string(),
        )),
    }
}
