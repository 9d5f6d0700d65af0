//! `TenantSync`: one tenant's sync — the group sync (`group_sync.rs`), then the activity
//! sync (`activity_sync.rs`: Teams report when due, audit feed since its checkpoint), each
//! writing the tenant's SharePoint list before advancing its own state.
//!
//! One invocation (`invoke`) works to a time budget (`GROUPMGR_SYNC_BUDGET`), holding the
//! tenant's lease so that no other run works on the tenant meanwhile, saving its progress as
//! it goes; when the budget is spent it ends with `Continue`, and the next invocation resumes
//! where this one stopped. Under a Functions host the continuation is a `tenant-sync` queue
//! message (`host::functions`); standalone `serve`, `dev` and `groupmgr sync` continue in
//! process (`run_to_completion`). Conditions only the tenant can fix (consent revoked, a
//! permission removed, the list deleted) end the invocation cleanly and are recorded, with a
//! growing retry interval (`conditions.rs`).

use std::fmt;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::activity_sync::{ActivityError, ActivityReport, ActivitySync};
use super::conditions::{self, Condition, ConditionKind};
use super::group_sync::{GroupSync, GroupSyncError, GroupSyncReport};
use super::lease::Lease;
use super::pending::Pending;
use super::status::{self, RunOutcome, RunRecord};
use super::{Budget, TenantSyncMessage};
use crate::app::App;
use crate::auth::AcquireError;
use crate::customer_list::{self, ListLocation};
use crate::domain::{TenantId, TenantStatus};
use crate::microsoft::graph::{Graph, GraphError};
use crate::microsoft::management::{Management, ManagementError};

/// The longest one invocation works whatever the budget setting: its access tokens (valid
/// 60–90 minutes) are acquired at its start and must outlive it.
const LONGEST_INVOCATION: Duration = Duration::from_secs(45 * 60);
/// The wait before continuing when the budget ran out without Microsoft asking for one.
const NO_WAIT: Duration = Duration::ZERO;

/// What a sync did (one invocation, or every invocation of a run to completion).
#[derive(Debug, Clone, Default)]
pub struct TenantSyncSummary {
    pub groups: GroupSyncReport,
    pub activity: ActivityReport,
    /// Invocations it took.
    pub invocations: u32,
    /// HTTP requests to Graph and the Management Activity API.
    pub requests: u64,
    pub seconds: f64,
}

impl TenantSyncSummary {
    /// Adds a later invocation's counts.
    fn add(&mut self, next: TenantSyncSummary) {
        let (g, a) = (&mut self.groups, &mut self.activity);
        g.full |= next.groups.full;
        g.restarted |= next.groups.restarted;
        g.finished = next.groups.finished;
        g.pages += next.groups.pages;
        g.groups += next.groups.groups;
        g.written += next.groups.written;
        g.refused += next.groups.refused;
        g.deferred = next.groups.deferred;
        g.requests += next.groups.requests;
        a.blobs += next.activity.blobs;
        a.records += next.activity.records;
        a.duplicates += next.activity.duplicates;
        a.matched += next.activity.matched;
        a.lost += next.activity.lost;
        a.deferred += next.activity.deferred;
        a.rows_written += next.activity.rows_written;
        a.refused += next.activity.refused;
        a.deferred_writes = next.activity.deferred_writes;
        a.retry_after = next.activity.retry_after;
        if next.activity.teams_report != "not due" || a.teams_report.is_empty() {
            a.teams_report = next.activity.teams_report;
        }
        a.audit_feed |= next.activity.audit_feed;
        a.finished = next.activity.finished;
        self.invocations += next.invocations;
        self.requests += next.requests;
        self.seconds += next.seconds;
    }
}

impl fmt::Display for TenantSyncSummary {
    /// One line: what was read and written, and what it cost.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (g, a) = (&self.groups, &self.activity);
        write!(
            f,
            "{} sync, {} groups, {} rows written; activity: {} audit blobs, {} records ({} about groups, {} repeats skipped), {} blobs lost, {} rows written, Teams report {}{}; {} requests, {} invocation(s), {:.1} s",
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
            self.invocations,
            self.seconds
        )?;
        let refused = g.refused + a.refused;
        if refused > 0 {
            write!(f, "; {refused} rows refused by SharePoint (kept, tried again next run)")?;
        }
        Ok(())
    }
}

/// How one invocation ended.
#[derive(Debug)]
pub enum SyncOutcome {
    /// Everything due was read and written.
    Finished(TenantSyncSummary),
    /// The budget was spent (or Microsoft asked to wait): the next invocation continues,
    /// after `after` when given.
    Continue {
        summary: TenantSyncSummary,
        after: Option<Duration>,
    },
    /// Another worker holds the tenant's lease: that run does the work.
    AlreadyRunning,
    /// A recorded condition stops the sync until its next attempt.
    Deferred(Condition),
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
    #[error("job state unavailable: {0}")]
    State(#[from] super::state::StateError),
    /// Another worker took the tenant's lease while this one worked (it stopped writing).
    #[error("the tenant's sync lease was lost")]
    LeaseLost,
    /// The list's site cannot be reached or the list cannot be made there.
    #[error("the GroupMgr list cannot be found or made: {0}")]
    ListUnavailable(String),
    /// The tenant's consent lacks application permissions GroupMgr needs (their names).
    #[error("consent incomplete: {0} missing")]
    ConsentIncomplete(String),
    /// Another worker is syncing the tenant.
    #[error("a sync of tenant {0} is already running")]
    AlreadyRunning(TenantId),
    /// A recorded condition stops the tenant's sync.
    #[error("tenant {0}: sync deferred ({1})")]
    Deferred(TenantId, &'static str),
}

/// Progress callback: (audit blobs done, records so far).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// What stopped an invocation short of an error.
enum Stop {
    Condition(ConditionKind, String),
    /// Microsoft is throttling: continue after this wait.
    Throttled(Duration),
}

/// The wait before continuing when Microsoft throttled or was unavailable without saying how
/// long to wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Classifies a failure: a condition only the tenant can fix, throttling to wait out, or an
/// error (retried by the host).
fn stop_of(e: &TenantSyncError) -> Option<Stop> {
    let graph = |g: &GraphError| match g {
        GraphError::Service { status: 403, code, .. } => {
            Some(Stop::Condition(ConditionKind::PermissionMissing, code.clone()))
        }
        // Throttling: 429, or SharePoint's 503 with `Retry-After` ("Avoid getting throttled
        // or blocked in SharePoint Online"). A 503 without it is an outage: an error, which
        // the host retries with its own backoff.
        GraphError::Service {
            status: 429,
            retry_after,
            ..
        } => Some(Stop::Throttled(retry_after.unwrap_or(DEFAULT_WAIT))),
        GraphError::Service {
            status: 503,
            retry_after: Some(after),
            ..
        } => Some(Stop::Throttled(*after)),
        _ => None,
    };
    match e {
        TenantSyncError::Token(AcquireError::ConsentRequired(code)) => {
            Some(Stop::Condition(ConditionKind::ConsentRevoked, code.clone()))
        }
        TenantSyncError::ListUnavailable(detail) => Some(Stop::Condition(ConditionKind::ListMissing, detail.clone())),
        TenantSyncError::ConsentIncomplete(_) => Some(Stop::Condition(ConditionKind::PermissionMissing, e.to_string())),
        TenantSyncError::Groups(GroupSyncError::Graph(g)) | TenantSyncError::Activity(ActivityError::Graph(g)) => {
            graph(g)
        }
        // The Management API's permission and tenant codes (AF10001, AF20010–AF20013).
        TenantSyncError::Activity(ActivityError::Management(ManagementError::Refused { code, .. }))
            if code == "AF10001" || ("AF20010"..="AF20013").contains(&code.as_str()) =>
        {
            Some(Stop::Condition(ConditionKind::PermissionMissing, code.clone()))
        }
        TenantSyncError::Activity(ActivityError::Management(ManagementError::Unavailable { retry_after, .. })) => {
            Some(Stop::Throttled(retry_after.unwrap_or(DEFAULT_WAIT)))
        }
        _ => None,
    }
}

/// One invocation of the tenant's sync, to `budget`.
pub async fn invoke(
    app: &App,
    tenant: &TenantId,
    request: &TenantSyncMessage,
    budget: Duration,
    progress: Option<Progress<'_>>,
) -> Result<SyncOutcome, TenantSyncError> {
    let record = app
        .store
        .tenant(tenant)
        .await?
        .ok_or(TenantSyncError::UnknownTenant(*tenant))?;
    if record.status != TenantStatus::Active {
        return Err(TenantSyncError::Inactive(*tenant));
    }
    let state = app.state.as_ref();
    if let Some(c) = conditions::current(state, tenant).await?
        && !request.manual
        && app.clock.now() < c.next_attempt
    {
        return Ok(SyncOutcome::Deferred(c));
    }
    let Some(lease) = Lease::acquire(app.state.clone(), *tenant, app.settings.sync_lease).await? else {
        return Ok(SyncOutcome::AlreadyRunning);
    };
    let started_at = Utc::now();
    let budget = Budget::new(budget.min(LONGEST_INVOCATION)).until_lost(lease.lost_flag());
    let result = work(app, tenant, request.full, &budget, &lease, progress).await;
    let outcome = match result {
        Ok(o) => Ok(o),
        Err(e) => match stop_of(&e) {
            Some(Stop::Throttled(after)) => Ok(SyncOutcome::Continue {
                summary: TenantSyncSummary::default(),
                after: Some(after),
            }),
            Some(Stop::Condition(kind, detail)) => {
                let (c, new) = conditions::record(state, tenant, kind, &detail, app.clock.now()).await?;
                if new {
                    tracing::warn!(event = "sync_condition", tenant_id = %tenant, condition = kind.as_str(), error = %detail);
                }
                Ok(SyncOutcome::Deferred(c))
            }
            None => Err(e),
        },
    };
    let _ = status::record(state, tenant, &run_record(started_at, &outcome)).await;
    lease.release().await;
    // Offboarded while this run worked: what it saved since must not outlive the offboarding
    // (which deleted the tenant's job state when it ran). Offboarding first deletes the keys,
    // then the state; a run that ends after that finds the tenant offboarded here.
    if let Ok(Some(r)) = app.store.tenant(tenant).await
        && r.status == TenantStatus::Offboarded
    {
        match state.forget_tenant(tenant).await {
            Ok(n) => tracing::info!(event = "offboarded_state_forgotten", tenant_id = %tenant, count = n),
            Err(e) => tracing::warn!(event = "offboarded_state_left", tenant_id = %tenant, error = %e),
        }
        return Err(TenantSyncError::Inactive(*tenant));
    }
    outcome
}

/// The work of one invocation, under the lease.
async fn work(
    app: &App,
    tenant: &TenantId,
    full: bool,
    budget: &Budget,
    lease: &Lease,
    progress: Option<Progress<'_>>,
) -> Result<SyncOutcome, TenantSyncError> {
    let started = Instant::now();
    let state = app.state.as_ref();
    let token = app.tokens.app_token(tenant, &app.graph_resource).await?;
    consented(&token, crate::microsoft::graph::APP_ROLES)?;
    let graph = app.graph.session_until(token, budget.deadline());
    let mut pending = Pending::load_sealed(state, tenant, Some(app.pseudonyms.seal(tenant))).await?;
    let list = list(app, tenant, &graph).await?;
    let groups = GroupSync {
        graph: &graph,
        state,
        tenant: *tenant,
        list: &list,
        force_full: full,
        budget,
        pending: &mut pending,
        now: app.clock.now(),
    }
    .run()
    .await;
    pending.save(state, tenant).await?;
    let groups = match groups {
        Err(GroupSyncError::Graph(e)) if e.is_not_found() && list_deleted(app, tenant, &graph, &list).await? => {
            // The customer deleted the list: the next invocation makes it again, fully synced.
            return Ok(SyncOutcome::Continue {
                summary: TenantSyncSummary::default(),
                after: Some(NO_WAIT),
            });
        }
        other => other?,
    };
    tracing::info!(
        event = "group_sync_finished",
        tenant_id = %tenant,
        groups = groups.groups,
        written = groups.written,
        requests = graph.requests_sent(),
        mode = if groups.full { "full" } else { "incremental" },
    );
    if lease.lost() {
        return Err(TenantSyncError::LeaseLost);
    }
    let management = management_session(app, tenant, budget).await?;
    let mut activity = ActivityReport::default();
    // Activity is mapped through the rows: only once the round has written them all.
    if groups.finished && !budget.exhausted() {
        let read = ActivitySync {
            graph: &graph,
            management: management.as_ref(),
            state,
            tenant: *tenant,
            list: &list,
            now: app.clock.now(),
            budget,
            pending: &mut pending,
            teams_report_offered: app.settings.cloud.has_teams_report(),
            progress,
            people: Some(std::sync::Mutex::new(app.pseudonyms.tenant(tenant))),
        }
        .run()
        .await;
        // On an error the pending work stays as last saved: activity it took to write (and
        // did not) is still there for the next run.
        if read.is_ok() {
            pending.save(state, tenant).await?;
        }
        if pending.people_dropped > 0 {
            tracing::warn!(event = "people_days_not_kept", tenant_id = %tenant, count = pending.people_dropped);
        }
        if pending.counts_dropped > 0 {
            tracing::warn!(event = "report_counts_not_kept", tenant_id = %tenant, count = pending.counts_dropped);
        }
        activity = match read {
            Err(ActivityError::Graph(e)) if e.is_not_found() && list_deleted(app, tenant, &graph, &list).await? => {
                return Ok(SyncOutcome::Continue {
                    summary: TenantSyncSummary::default(),
                    after: Some(NO_WAIT),
                });
            }
            other => other?,
        };
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
            groups_report = activity.groups_report,
        );
    }
    if lease.lost() {
        // Another run holds the tenant now: it carries on from the last durable step.
        return Err(TenantSyncError::LeaseLost);
    }
    // Reviews that fell due: their owners did not answer in time (`review.due`). A failure
    // here is said and retried by the next sync; it never fails this one.
    match crate::lifecycle::due::notify_due(
        &graph,
        state,
        &app.pseudonyms.outbox_seal(tenant),
        tenant,
        &list.site_id,
        app.clock.now(),
    )
    .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(event = "reviews_due", tenant_id = %tenant, count = n),
        Err(e) => tracing::warn!(event = "reviews_due_failed", tenant_id = %tenant, error = %e),
    }
    // `automatic` execution: reviews nobody answered are acted on as the policy says. Like
    // the step above, a failure is said and retried; it never fails the sync.
    // Only once a round has written every group (its rows are what is judged), and with time
    // left.
    let automatic = if groups.finished && !budget.exhausted() {
        automatic_actions(app, &graph, state, tenant, &list).await
    } else {
        Ok(None)
    };
    match automatic {
        Ok(Some(r)) => tracing::info!(
            event = "lifecycle_automatic_done",
            tenant_id = %tenant,
            opened = r.opened,
            archived = r.archived,
            deleted = r.deleted,
            underway = r.underway,
            no_team = r.no_team,
            no_owner = r.no_owner,
            active_again = r.active_again,
            waiting = r.waiting,
            failed = r.failed,
            backing_off = r.backing_off,
            capped = r.capped,
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(event = "lifecycle_automatic_failed", tenant_id = %tenant, error = %e),
    }
    // Ownerless groups, judged once a round has stored every group's owners. Like the step
    // above, a failure is said and retried; it never fails the sync.
    let mut verdicts_deferred = false;
    if groups.finished {
        match crate::lifecycle::ownership::check(
            &graph,
            state,
            &app.pseudonyms.outbox_seal(tenant),
            tenant,
            &list,
            app.clock.now(),
        )
        .await
        {
            Ok(r) => {
                verdicts_deferred = r.deferred > 0;
                tracing::info!(
                    event = "ownership_checked",
                    tenant_id = %tenant,
                    written = r.written,
                    refused = r.refused,
                    events = r.events,
                    disabled_known = r.disabled_known,
                );
            }
            Err(e) => tracing::warn!(event = "ownership_check_failed", tenant_id = %tenant, error = %e),
        }
    }
    if let Some(c) = conditions::clear(state, tenant).await? {
        tracing::info!(event = "sync_condition_cleared", tenant_id = %tenant, condition = c.kind.as_str());
    }
    let summary = TenantSyncSummary {
        requests: graph.requests_sent() + management.as_ref().map_or(0, Management::requests_sent),
        seconds: started.elapsed().as_secs_f64(),
        invocations: 1,
        groups,
        activity,
    };
    // Rows throttled at the end of the budget are pending, and throttled verdicts are judged
    // again: the next invocation writes them.
    let writes_done = summary.groups.deferred == 0 && !verdicts_deferred;
    Ok(if summary.groups.finished && summary.activity.finished && writes_done {
        SyncOutcome::Finished(summary)
    } else {
        // After the wait the audit feed asked for, if it stopped the pass.
        let after = summary.activity.retry_after.or(Some(NO_WAIT));
        SyncOutcome::Continue { summary, after }
    })
}

/// The tenant's list: found or made on the configured site.
async fn list(app: &App, tenant: &TenantId, graph: &Graph<'_>) -> Result<ListLocation, TenantSyncError> {
    match customer_list::ensure(graph, app.state.as_ref(), tenant, &app.settings.sharepoint_site).await {
        Ok(loc) => Ok(loc),
        // The site is gone (or never was at GROUPMGR_SHAREPOINT_SITE): only the tenant can
        // fix that, a condition like revoked consent.
        Err(customer_list::ListError::Graph(e)) if e.is_not_found() => Err(TenantSyncError::ListUnavailable(format!(
            "{} {}",
            e.status().unwrap_or(0),
            e.code()
        ))),
        Err(e) => Err(TenantSyncError::Groups(e.into())),
    }
}

/// After a 404: whether the list itself is gone. If it is, it is forgotten (the next
/// invocation creates it and starts a full round), and that is said in the tenant log.
async fn list_deleted(
    app: &App,
    tenant: &TenantId,
    graph: &Graph<'_>,
    list: &ListLocation,
) -> Result<bool, TenantSyncError> {
    let gone = match graph.find_list(&list.site_id, customer_list::LIST_NAME).await {
        Ok(found) => found.is_none_or(|l| l.id != list.list_id),
        Err(e) if e.is_not_found() => true,
        Err(e) => return Err(TenantSyncError::Groups(e.into())),
    };
    if gone {
        tracing::warn!(event = "list_missing", tenant_id = %tenant);
        customer_list::forget(app.state.as_ref(), tenant).await?;
        super::group_sync::forget_round(app.state.as_ref(), tenant).await?;
        super::activity_sync::forget(app.state.as_ref(), tenant).await?;
    }
    Ok(gone)
}

/// A Management Activity API session for the tenant, when the audit feed is configured.
async fn management_session<'a>(
    app: &'a App,
    tenant: &TenantId,
    budget: &Budget,
) -> Result<Option<Management<'a>>, TenantSyncError> {
    let Some(client) = &app.management else {
        return Ok(None);
    };
    let token = app.tokens.app_token(tenant, &app.management_resource).await?;
    consented(&token, crate::microsoft::management::APP_ROLES)?;
    Ok(Some(client.session(token, *tenant).until(budget.deadline())))
}

/// Fails with the application permissions the tenant's consent left out, if the token says.
fn consented(token: &crate::secret::AccessToken, required: &[&str]) -> Result<(), TenantSyncError> {
    let missing = crate::auth::missing_app_roles(token, required);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TenantSyncError::ConsentIncomplete(missing.join(", ")))
    }
}

fn run_record(started_at: chrono::DateTime<Utc>, outcome: &Result<SyncOutcome, TenantSyncError>) -> RunRecord {
    let empty = TenantSyncSummary::default();
    let (kind, summary, error) = match outcome {
        Ok(SyncOutcome::Finished(s)) => (RunOutcome::Finished, s, None),
        Ok(SyncOutcome::Continue { summary, .. }) => (RunOutcome::Continues, summary, None),
        Ok(SyncOutcome::Deferred(c)) => (RunOutcome::Deferred, &empty, Some(c.kind.as_str().to_string())),
        Ok(SyncOutcome::AlreadyRunning) => (RunOutcome::Continues, &empty, None),
        Err(e) => (RunOutcome::Failed, &empty, Some(e.to_string())),
    };
    RunRecord {
        started_at,
        ended_at: Utc::now(),
        outcome: kind,
        groups: summary.groups.groups as u64,
        rows_written: (summary.groups.written + summary.activity.rows_written) as u64,
        rows_refused: (summary.groups.refused + summary.activity.refused) as u64,
        audit_blobs: summary.activity.blobs,
        audit_records: summary.activity.records,
        audit_blobs_lost: summary.activity.lost,
        requests: summary.requests,
        error,
    }
}

/// How a run to completion ended.
#[derive(Debug)]
pub enum Completion {
    Finished(TenantSyncSummary),
    AlreadyRunning,
    Deferred(Condition),
}

/// Invocations one after the other until the sync is done (standalone `serve` and `dev`,
/// `groupmgr sync`): what a Functions host does with continuation messages, in process.
pub async fn run_to_completion(
    app: &App,
    tenant: &TenantId,
    request: &TenantSyncMessage,
    progress: Option<Progress<'_>>,
) -> Result<Completion, TenantSyncError> {
    let mut total = TenantSyncSummary::default();
    let mut request = request.clone();
    // Set once this run has held the lease: a continuation that then finds it held waits up to
    // a lease period (our own release may not have landed — a busy store — and the lease then
    // runs out by itself) before concluding that another worker has taken over.
    let mut continuing_since: Option<std::time::Instant> = None;
    loop {
        match invoke(app, tenant, &request, app.settings.sync_budget, progress).await? {
            SyncOutcome::AlreadyRunning
                if continuing_since.is_some_and(|t| t.elapsed() < app.settings.sync_lease + Duration::from_secs(1)) =>
            {
                tokio::time::sleep(app.settings.sync_lease / 4).await;
                continue;
            }
            SyncOutcome::Finished(s) => {
                total.add(s);
                return Ok(Completion::Finished(total));
            }
            SyncOutcome::Continue { summary, after } => {
                total.add(summary);
                continuing_since = Some(std::time::Instant::now());
                // A continuation resumes the round under way; it does not start another.
                request.full = false;
                if let Some(wait) = after.filter(|w| !w.is_zero()) {
                    tokio::time::sleep(wait).await;
                }
            }
            SyncOutcome::AlreadyRunning => return Ok(Completion::AlreadyRunning),
            SyncOutcome::Deferred(c) => return Ok(Completion::Deferred(c)),
        }
    }
}

/// The sync of one tenant to completion (no progress display).
pub async fn run(app: &App, tenant: &TenantId, full: bool) -> Result<TenantSyncSummary, TenantSyncError> {
    let request = TenantSyncMessage {
        tenant_id: *tenant,
        scheduled_at: Utc::now(),
        full,
        manual: true,
    };
    match run_to_completion(app, tenant, &request, None).await? {
        Completion::Finished(s) => Ok(s),
        Completion::AlreadyRunning => Err(TenantSyncError::AlreadyRunning(*tenant)),
        Completion::Deferred(c) => Err(TenantSyncError::Deferred(*tenant, c.kind.as_str())),
    }
}

/// Runs `automatic` execution if the tenant's policy chose it (`None` otherwise).
async fn automatic_actions(
    app: &App,
    graph: &Graph<'_>,
    state: &dyn super::state::TenantState,
    tenant: &TenantId,
    list: &ListLocation,
) -> anyhow::Result<Option<crate::lifecycle::automatic::AutomaticReport>> {
    use crate::lifecycle::automatic;
    let policy = crate::lifecycle::site::load_policy(graph, state, tenant, &app.settings.sharepoint_site).await?;
    let data = automatic::Data {
        list,
        teams_report_offered: app.settings.cloud.has_teams_report(),
        audit_feed: app.management.is_some(),
    };
    match policy {
        Some(p) if p.execution == crate::lifecycle::Execution::Automatic => {
            // Due reviews first: opening new ones is for later days.
            let seal = app.pseudonyms.outbox_seal(tenant);
            let mut report = automatic::run(graph, state, &seal, tenant, &data, &p, app.clock.now()).await?;
            // A failure to open reviews is said; what was done above is still reported.
            match automatic::open_reviews(graph, state, &seal, tenant, &data, &p, app.clock.now()).await {
                Ok(n) => report.opened = n,
                Err(e) => tracing::warn!(event = "lifecycle_automatic_failed", tenant_id = %tenant, error = %e),
            }
            Ok(Some(report))
        }
        _ => Ok(None),
    }
}
