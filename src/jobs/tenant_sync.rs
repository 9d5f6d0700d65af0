//! `TenantSync`: one tenant's sync — the group sync (`group_sync.rs`), then the activity
//! sync (`activity_sync.rs`: Teams report when due, audit feed since its checkpoint), each
//! writing the tenant's SharePoint list before advancing its own state. Run by the
//! `tenant-sync` queue function (`host::functions`), the in-process schedule, `POST
//! /api/sync` standalone, and `groupmgr sync <tenant-id> [--full]`.

use std::fmt;
use std::time::Instant;

use super::activity_sync::{ActivityError, ActivityReport, ActivitySync};
use super::group_sync::{GroupSyncError, GroupSyncReport, sync_groups};
use crate::app::App;
use crate::auth::AcquireError;
use crate::customer_list;
use crate::domain::{TenantId, TenantStatus};
use crate::microsoft::graph::Graph;
use crate::microsoft::management::Management;

/// What one tenant sync did.
#[derive(Debug, Clone, Default)]
pub struct TenantSyncSummary {
    pub groups: GroupSyncReport,
    pub activity: ActivityReport,
    /// HTTP requests to Graph and the Management Activity API.
    pub requests: u64,
    pub seconds: f64,
}

impl fmt::Display for TenantSyncSummary {
    /// One line: what was read and written, and what it cost.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (g, a) = (&self.groups, &self.activity);
        write!(
            f,
            "{} sync, {} groups, {} rows written; activity: {} audit blobs, {} records ({} about groups, {} repeats skipped), {} blobs lost, {} rows written, Teams report {}{}; {} requests, {:.1} s",
            if g.full { "full" } else { "incremental" },
            g.groups,
            g.written,
            a.blobs,
            a.records,
            a.matched,
            a.duplicates,
            a.lost,
            a.rows_written,
            a.teams_report,
            if a.audit_feed {
                ""
            } else {
                " (audit feed off: GROUPMGR_PUBLISHER_ID is not set)"
            },
            self.requests,
            self.seconds
        )
    }
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
    #[error("group sync failed: {0}")]
    Groups(#[from] GroupSyncError),
    #[error("activity sync failed: {0}")]
    Activity(#[from] ActivityError),
    #[error("database unavailable: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The group sync left no list behind (it finds or creates it, so this is a bug or a
    /// concurrent change): the activity has nowhere to go.
    #[error("the tenant's GroupMgr list is not set up")]
    ListNotSetUp,
}

/// Progress callback: (audit blobs done, records so far).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Runs the sync of one tenant with an app-only token.
pub async fn run(app: &App, tenant: &TenantId, full: bool) -> Result<TenantSyncSummary, TenantSyncError> {
    run_with_progress(app, tenant, full, None).await
}

/// `run`, reporting progress as the audit feed is read.
pub async fn run_with_progress(
    app: &App,
    tenant: &TenantId,
    full: bool,
    progress: Option<Progress<'_>>,
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
    let graph = app
        .graph
        .session(app.tokens.app_token(tenant, &app.graph_resource).await?);
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
    let management = management_session(app, tenant).await?;
    let activity = sync_activity(app, tenant, &graph, management.as_ref(), progress).await?;
    Ok(TenantSyncSummary {
        requests: graph.requests_sent() + management.as_ref().map_or(0, Management::requests_sent),
        seconds: started.elapsed().as_secs_f64(),
        groups,
        activity,
    })
}

/// A Management Activity API session for the tenant, when the audit feed is configured.
async fn management_session<'a>(app: &'a App, tenant: &TenantId) -> Result<Option<Management<'a>>, TenantSyncError> {
    let Some(client) = &app.management else {
        return Ok(None);
    };
    let token = app.tokens.app_token(tenant, &app.management_resource).await?;
    Ok(Some(client.session(token, *tenant)))
}

/// The activity part, on the list the group sync found or made.
async fn sync_activity(
    app: &App,
    tenant: &TenantId,
    graph: &Graph<'_>,
    management: Option<&Management<'_>>,
    progress: Option<Progress<'_>>,
) -> Result<ActivityReport, TenantSyncError> {
    let list = customer_list::location(app.store.as_ref(), tenant)
        .await?
        .ok_or(TenantSyncError::ListNotSetUp)?;
    let activity = ActivitySync {
        graph,
        management,
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
    Ok(activity)
}
