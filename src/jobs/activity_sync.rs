//! Activity sync for one tenant: the usage reports (Teams team activity, Microsoft 365 groups
//! activity; once a day) and the Office 365 audit feed since its checkpoint become each
//! group's last Teams, SharePoint, mail and overall activity in the tenant's GroupMgr list.
//!
//! Audit feed, per content type (`Audit.SharePoint`, `Audit.General`): content is listed in
//! windows of at most 24 hours from an hour before the checkpoint's bookmark (late content)
//! to now, never older than 7 days; blobs already processed (their ids are kept while they
//! can still be listed) are skipped; each blob is read with a size cap and a deadline, then
//! parsed record by record. Nothing written is a sum: a group's activity is a maximum of
//! times, and rows only ever move forward, so a window read twice, a blob fetched again after
//! a crash, or a duplicate record changes nothing.
//!
//! Progress is saved as it goes: every million records (or 200 blobs), when the budget ends
//! the pass, when a step fails, and at the end, the rows they changed are written, then the
//! checkpoint (the blobs done; the bookmark of each window done). A run stopped by its budget
//! or a failure loses nothing; one killed repeats at most the blobs since the last save. A blob that
//! cannot be read is tried again on the next runs; after three runs it is counted as lost and
//! said in the tenant log, as is content that expired before it could be read.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::Budget;
use super::pending::Pending;
use super::state::{StateError, TenantState, Version, load_doc, save_doc};
use crate::activity::ReportedCounts;
use crate::activity::mapping::GroupIndex;
use crate::activity::reported::Reported;
use crate::activity::{ActivityMap, LastActivity, SeenIds, process_blob, usage_reports};
use crate::customer_list::{self, ActivityRow, ListLocation};
use crate::domain::TenantId;
use crate::microsoft::graph::{Graph, GraphError, Period};
use crate::microsoft::management::{ContentBlob, ContentType, Management, ManagementError};

/// How far back content can be listed and fetched.
const RETENTION: TimeDelta = TimeDelta::days(7);
/// A margin inside the 7 days, so a window start is never refused for being just too old.
const RETENTION_MARGIN: TimeDelta = TimeDelta::minutes(10);
/// Rows written between two looks at the budget (10 `$batch` requests).
const FLUSH_ROWS: usize = 200;
/// The wait after AF429 without `Retry-After` (the Management API documents none).
const THROTTLE_WAIT: Duration = Duration::from_secs(60);
/// Re-read this much before the bookmark: content may become available late.
const OVERLAP: TimeDelta = TimeDelta::hours(1);
/// The feed is listed (and repeats are recognised) a window at a time. Six hours, not the 24
/// the API allows: the ids of the current and the previous window are kept, and at a million
/// records a day two 24-hour windows held a million ids (the largest part of the sync's peak
/// memory at 100,000 groups; `benches/activity.rs`).
const WINDOW: TimeDelta = TimeDelta::hours(6);
/// Rows and checkpoint are saved once this many records or blobs were read since the last
/// save (and when the budget ends the pass, and at its end). Activity is a maximum: each save
/// writes every row whose activity rose since the last, so each save of a large tenant writes
/// most of its rows (saving by the window wrote 100,000 groups' rows about ten times over 7
/// million records); a run killed between saves reads those blobs again (about 45 s of
/// reading at a million records).
const RECORDS_PER_SAVE: u64 = 1_000_000;
const BLOBS_PER_SAVE: usize = 200;
/// Runs a blob may fail to read before it is counted as lost.
const BLOB_ATTEMPTS: u32 = 3;
const REPORT_DAY_KEY: &str = "teams_report_day";
/// The last day each report was read successfully (a failing report must not look current).
const TEAMS_LAST_KEY: &str = "teams_report_last";
const GROUPS_LAST_KEY: &str = "groups_report_last";
/// How many daily reads of a report may fail before its source counts as unavailable.
const REPORT_FAILURES_TOLERATED: i64 = 2;
/// How far back a report's first read reaches (its period, `D90`).
const HISTORY_DAYS: i64 = 90;
/// Set once a report was read over its longest period with names shown (its history is known
/// from then on: `observed_since`). Removed while names are concealed.
const TEAMS_HISTORY_KEY: &str = "teams_report_history";
const GROUPS_HISTORY_KEY: &str = "groups_report_history";
const CONCEALED_KEY: &str = "teams_report_concealed";
/// The `Report Refresh Date` of the reads whose counts the rows hold (absent: no counts to
/// show, as when names are concealed or a count column is missing).
pub const TEAMS_REFRESHED_KEY: &str = "teams_report_refreshed";
/// The earlier refresh date of the reports last read: their data ends with it.
const REPORTS_DATA_UNTIL_KEY: &str = "reports_data_until";
pub const GROUPS_REFRESHED_KEY: &str = "groups_report_refreshed";
/// The periods each report is read over (`activity::reported::PERIODS`); the longest also
/// gives the last activity days.
const REPORT_PERIODS: [Period; 3] = [Period::D7, Period::D30, Period::D90];

/// What one activity sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityReport {
    pub blobs: u64,
    /// Distinct records (by `Id`) read in this run.
    pub records: u64,
    /// Records read again: Microsoft repeats records across blobs.
    pub duplicates: u64,
    /// Distinct records that concerned a group.
    pub matched: u64,
    /// Blobs that had expired or vanished before they could be read, or failed three runs.
    pub lost: u64,
    /// Blobs that could not be read this time (tried again next run).
    pub deferred: u64,
    pub rows_written: usize,
    /// Rows SharePoint refused (kept, and tried again on the next run).
    pub refused: usize,
    /// Of those, rows not written for lack of time (throttled at the end of the budget).
    pub deferred_writes: usize,
    /// Teams report: "read", "concealed", "not due" or "unavailable".
    pub teams_report: &'static str,
    /// Microsoft 365 groups activity report (mail): "read", "unavailable" or "" (not asked).
    pub groups_report: &'static str,
    /// Whether the audit feed was read (it needs `GROUPMGR_PUBLISHER_ID`).
    pub audit_feed: bool,
    /// Everything due was read (else the sync continues in the next invocation).
    pub finished: bool,
    /// The wait the audit feed asked for when it stopped the pass (throttling).
    pub retry_after: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("audit feed: {0}")]
    Management(#[from] ManagementError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A blob that could not be read, tried again on the next runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailingBlob {
    pub content_uri: String,
    pub created: DateTime<Utc>,
    pub failures: u32,
}

/// The checkpoint of one content type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Content created before this time has been processed (but see `processed`).
    pub bookmark: Option<DateTime<Utc>>,
    /// Content ids processed, with when they were created, kept while they can be listed.
    #[serde(default)]
    pub processed: BTreeMap<String, DateTime<Utc>>,
    /// Content that could not be read yet, by id.
    #[serde(default)]
    pub failing: BTreeMap<String, FailingBlob>,
    /// Since when this content type has been read without a gap, and with SharePoint's
    /// records split by kind: the start of the first window read, moved forward past any
    /// content lost (expired before it could be read, or a gap longer than the feed keeps).
    /// "No activity seen" means "none" only after this time.
    #[serde(default, rename = "observedSince")]
    pub observed_since: Option<DateTime<Utc>>,
}

fn checkpoint_key(ct: ContentType) -> String {
    format!("audit_{}", ct.as_str())
}

/// Forgets how far the activity sync read (the list it wrote to was deleted): the next pass
/// reads the audit feed's 7 days and the Teams report's 90 again, so the new list gets all
/// the activity Microsoft still has.
pub async fn forget(state: &dyn TenantState, tenant: &TenantId) -> Result<(), StateError> {
    for ct in ContentType::ALL {
        state.delete(tenant, &checkpoint_key(ct)).await?;
    }
    // A new list has no counts yet: none are shown until a read has written them all.
    for key in [TEAMS_REFRESHED_KEY, GROUPS_REFRESHED_KEY] {
        state.delete(tenant, key).await?;
    }
    state.delete(tenant, REPORT_DAY_KEY).await
}

/// The time up to which the tenant's activity is complete: the older of the audit
/// checkpoints (when the feed is read) and the end of the last day the Teams report covered
/// (when it is read and names groups). `None`: nothing is known to be complete.
pub async fn data_complete_until(
    state: &dyn TenantState,
    tenant: &TenantId,
    audit_feed: bool,
) -> Result<Option<DateTime<Utc>>, StateError> {
    let mut marks = Vec::new();
    if audit_feed {
        for ct in ContentType::ALL {
            let Some((cp, _)) = load_doc::<Checkpoint>(state, tenant, &checkpoint_key(ct)).await? else {
                return Ok(None);
            };
            let Some(bookmark) = cp.bookmark else {
                return Ok(None);
            };
            // Content can still arrive for the last hour before the bookmark (it is read
            // again), and a blob not read yet holds back everything after it was created.
            let failing = cp.failing.values().map(|f| f.created).min();
            marks.push(failing.map_or(bookmark - OVERLAP, |f| f.min(bookmark - OVERLAP)));
        }
    }
    let concealed = state.load(tenant, CONCEALED_KEY).await?.is_some();
    if !concealed && let Some((day, _)) = state.load(tenant, REPORT_DAY_KEY).await? {
        // The report read on `day` covers up to the end of the day before at best, and up to
        // the end of its refresh date (Microsoft's data is a day or two behind).
        if let Ok(d) = NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
            let mut until = d;
            if let Some((r, _)) = state.load(tenant, REPORTS_DATA_UNTIL_KEY).await?
                && let Ok(r) = NaiveDate::parse_from_str(&r, "%Y-%m-%d")
            {
                until = until.min(r + chrono::Days::new(1));
            }
            marks.push(crate::activity::days::midnight(until));
        }
    }
    Ok(marks.into_iter().min())
}

/// Since when each source has been observed without a gap (`None`: not yet, or not read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedSince {
    /// Teams records of the audit feed.
    pub teams_audit: Option<DateTime<Utc>>,
    /// SharePoint records of the audit feed, split by kind.
    pub sharepoint_audit: Option<DateTime<Utc>>,
    /// The Teams team activity report, first read over its 90 days.
    pub teams_report: Option<DateTime<Utc>>,
    /// The Microsoft 365 groups activity report (group mailboxes), first read over 90 days.
    pub groups_report: Option<DateTime<Utc>>,
}

/// How far back the tenant's sources have been observed.
pub async fn observed_since(
    state: &dyn TenantState,
    tenant: &TenantId,
    audit_feed: bool,
) -> Result<ObservedSince, StateError> {
    let mut out = ObservedSince::default();
    if audit_feed {
        for (ct, slot) in [
            (ContentType::General, &mut out.teams_audit),
            (ContentType::SharePoint, &mut out.sharepoint_audit),
        ] {
            if let Some((cp, _)) = load_doc::<Checkpoint>(state, tenant, &checkpoint_key(ct)).await? {
                *slot = cp.observed_since.filter(|_| cp.bookmark.is_some());
            }
        }
    }
    // The report history is the day the report was first read over its whole period.
    let concealed = state.load(tenant, CONCEALED_KEY).await?.is_some();
    for (key, slot) in [
        (TEAMS_HISTORY_KEY, &mut out.teams_report),
        (GROUPS_HISTORY_KEY, &mut out.groups_report),
    ] {
        if concealed {
            continue;
        }
        if let Some((day, _)) = state.load(tenant, key).await?
            && let Ok(d) = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            && let Some(t) = d.and_hms_opt(0, 0, 0)
        {
            *slot = Some(t.and_utc() - TimeDelta::days(HISTORY_DAYS));
        }
    }
    Ok(out)
}

/// A source GroupMgr reads activity from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The Teams team activity report (Graph usage reports): each team's last activity day,
    /// up to 180 days back.
    TeamsReport,
    /// Teams records of the audit feed (Office 365 Management Activity API), 7 days back.
    TeamsAudit,
    /// SharePoint records of the audit feed.
    SharePointAudit,
    /// The group mailbox (the Microsoft 365 groups activity report): mail received, up to 180
    /// days back.
    GroupMailbox,
}

/// Whether a source informs the tenant's activity, and if not, why.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceState {
    pub source: Source,
    pub available: bool,
    /// Why the source is not available (`null` when it is).
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// The tenant's activity sources as the last syncs found them.
pub async fn sources(
    state: &dyn TenantState,
    tenant: &TenantId,
    teams_report_offered: bool,
    audit_feed: bool,
) -> Result<Vec<SourceState>, StateError> {
    let state_of = |source, reason: Option<&str>| SourceState {
        source,
        available: reason.is_none(),
        reason: reason.map(str::to_string),
    };
    let concealed = state.load(tenant, CONCEALED_KEY).await?.is_some();
    let mut out = Vec::new();
    // Both usage reports are read together, and concealment hides both.
    let day = |v: Option<(String, Version)>| v.and_then(|(d, _)| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let attempted = day(state.load(tenant, REPORT_DAY_KEY).await?);
    for (source, history, last) in [
        (Source::TeamsReport, TEAMS_HISTORY_KEY, TEAMS_LAST_KEY),
        (Source::GroupMailbox, GROUPS_HISTORY_KEY, GROUPS_LAST_KEY),
    ] {
        // Read on earlier days but failing since: what it said is getting old.
        let failing_since = match (day(state.load(tenant, last).await?), attempted) {
            (Some(ok), Some(tried)) if (tried - ok).num_days() > REPORT_FAILURES_TOLERATED => Some(ok),
            _ => None,
        };
        let reason = if !teams_report_offered {
            Some("the usage reports are not offered in this Microsoft cloud (GCC High, DoD, China)")
        } else if concealed {
            Some(
                "the tenant conceals user, group and site names in usage reports, so they cannot be matched \
                 to groups (Microsoft 365 admin center: Settings > Org settings > Reports)",
            )
        } else if state.load(tenant, history).await?.is_none() {
            Some("not read yet")
        } else if failing_since.is_some() {
            Some("its daily reads have failed for days; the last successful one is getting old")
        } else {
            None
        };
        out.push(state_of(source, reason));
    }
    for (source, ct) in [
        (Source::TeamsAudit, ContentType::General),
        (Source::SharePointAudit, ContentType::SharePoint),
    ] {
        let reason = if !audit_feed {
            Some("the audit feed is not configured for this GroupMgr deployment")
        } else if load_doc::<Checkpoint>(state, tenant, &checkpoint_key(ct))
            .await?
            .is_none_or(|(cp, _)| cp.bookmark.is_none())
        {
            Some("not read yet")
        } else {
            None
        };
        out.push(state_of(source, reason));
    }
    Ok(out)
}

/// The sources a group's activity rests on: those available to the tenant that apply to the
/// group (Teams sources to a team, SharePoint's to a group whose site is known).
pub fn sources_of(row: &crate::customer_list::GroupRow, tenant: &[SourceState]) -> Vec<Source> {
    tenant
        .iter()
        .filter(|s| s.available)
        .map(|s| s.source)
        .filter(|s| match s {
            Source::TeamsReport | Source::TeamsAudit => row.teams_enabled,
            Source::SharePointAudit => row.site_url.is_some(),
            Source::GroupMailbox => true,
        })
        .collect()
}

/// The inputs of one activity sync.
pub struct ActivitySync<'a> {
    pub graph: &'a Graph<'a>,
    pub management: Option<&'a Management<'a>>,
    pub state: &'a dyn TenantState,
    pub tenant: TenantId,
    pub list: &'a ListLocation,
    pub now: DateTime<Utc>,
    pub budget: &'a Budget,
    pub pending: &'a mut Pending,
    /// Whether this cloud offers the Teams activity report (`Cloud::has_teams_report`).
    pub teams_report_offered: bool,
    /// Called after each blob with (blobs done, records so far), for progress displays.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Send + Sync)>,
    /// The tenant's people's pseudonyms, for the days each was active in a group (`None`:
    /// the groups' activity only).
    pub people: Option<std::sync::Mutex<crate::crypto::TenantPseudonyms>>,
}

/// The rows of the list and what maps audit records to them.
struct Rows {
    rows: HashMap<uuid::Uuid, ActivityRow>,
    index: GroupIndex,
}

impl ActivitySync<'_> {
    pub async fn run(mut self) -> Result<ActivityReport, ActivityError> {
        let mut report = ActivityReport {
            teams_report: if self.teams_report_offered {
                "not due"
            } else {
                "not offered in this cloud"
            },
            audit_feed: self.management.is_some(),
            ..Default::default()
        };
        let report_due = self.teams_report_offered
            && self
                .state
                .load(&self.tenant, REPORT_DAY_KEY)
                .await?
                .is_none_or(|(d, _)| d != self.now.format("%Y-%m-%d").to_string());
        if self.management.is_none() && !report_due && self.pending.doc.activity.is_empty() {
            // Nothing to read: no audit feed configured, today's report already merged.
            report.finished = true;
            return Ok(report);
        }
        let mut index = GroupIndex::default();
        let mut add = |r: &crate::customer_list::GroupRow| {
            index.add_group(&r.group_id, r.site_url.as_deref(), r.teams_thread_id.as_deref());
            for site in &r.channel_sites {
                index.add_site(&r.group_id, site);
            }
        };
        let rows = customer_list::activity_rows(self.graph, self.list, &mut add).await?;
        // Groups whose row SharePoint refused so far: their activity is kept for them.
        for r in self.pending.rows_to_retry() {
            if !uuid::Uuid::parse_str(&r.group_id).is_ok_and(|g| rows.contains_key(&g)) {
                add(&r);
            }
        }
        let mut rows = Rows { rows, index };
        // Activity an earlier run could not write.
        let earlier = self.pending.take_activity();
        let mut map = ActivityMap::default();
        for (g, a) in earlier {
            map.record_id(&g, a);
        }
        self.flush(&mut rows, &mut map, &mut report).await?;
        if report_due {
            self.teams_report(&mut rows, &mut report).await?;
        }
        report.finished = true;
        if let Some(mgmt) = self.management {
            for ct in ContentType::ALL {
                if !self.feed(mgmt, ct, &mut rows, &mut report).await? {
                    report.finished = false;
                    break;
                }
            }
        }
        // Activity not written for lack of time is pending: the next invocation writes it.
        if report.deferred_writes > 0 {
            report.finished = false;
        }
        Ok(report)
    }

    /// Writes the activity gathered in `map` to the rows (forward only), and empties it,
    /// `FLUSH_ROWS` rows at a time while the budget lasts; what the budget leaves unwritten
    /// is kept in the pending work (durable before the caller moves any checkpoint on) and
    /// the sync goes on in the next invocation.
    async fn flush(
        &mut self,
        rows: &mut Rows,
        map: &mut ActivityMap,
        report: &mut ActivityReport,
    ) -> Result<(), ActivityError> {
        // A chunk of rows at a time: the rows are copied for writing only `FLUSH_ROWS` at once.
        // A record dated after tomorrow (a wrong clock somewhere) adds no day: kept, it would
        // push every real day out of the sets.
        let tomorrow = crate::activity::days::day_of(self.now) + 1;
        for a in map.0.values_mut() {
            a.days.forget_after(tomorrow);
        }
        let mut rest = std::mem::take(&mut map.0).into_iter();
        loop {
            let mut chunk: Vec<(ActivityRow, LastActivity)> = Vec::with_capacity(FLUSH_ROWS);
            for (g, a) in rest.by_ref() {
                match rows.rows.get(&g) {
                    Some(r) => chunk.push((r.clone(), a)),
                    None if self.pending.row_pending(&g.to_string()) => self.pending.keep_activity(&g.to_string(), a),
                    // Not a group of the list (a security group in the Teams report, a group
                    // deleted before its first sync).
                    None => {}
                }
                if chunk.len() == FLUSH_ROWS {
                    break;
                }
            }
            if chunk.is_empty() {
                break;
            }
            if self.budget.exhausted() {
                for (r, a) in chunk {
                    self.pending.keep_activity(&r.group(), a);
                    report.deferred_writes += 1;
                }
                for (g, a) in rest.by_ref() {
                    let id = g.to_string();
                    if rows.rows.contains_key(&g) {
                        report.deferred_writes += 1;
                        self.pending.keep_activity(&id, a);
                    } else if self.pending.row_pending(&id) {
                        self.pending.keep_activity(&id, a);
                    }
                }
                break;
            }
            self.write_chunk(rows, chunk, report).await?;
        }
        // What SharePoint refused or the budget left is durable in the pending work before
        // any checkpoint or report day moves past the content it came from.
        self.pending.save(self.state, &self.tenant).await?;
        Ok(())
    }

    async fn write_chunk(
        &mut self,
        rows: &mut Rows,
        mut seen: Vec<(ActivityRow, LastActivity)>,
        report: &mut ActivityReport,
    ) -> Result<(), ActivityError> {
        // Rows written earlier in this run whose new version Graph did not give: read again,
        // so that every write is conditional on the version it merged with.
        let stale: Vec<String> = seen
            .iter()
            .filter(|(r, _)| r.etag.is_none())
            .map(|(r, _)| r.group())
            .collect();
        if !stale.is_empty() {
            let fresh = customer_list::rows_for(self.graph, self.list, &stale).await?;
            for (r, _) in seen.iter_mut() {
                if let Some(f) = fresh.get(&r.group()).and_then(ActivityRow::of) {
                    *r = f;
                    rows.rows.insert(r.group_id, r.clone());
                }
            }
        }
        let outcome = customer_list::write_activity(self.graph, self.list, seen.clone()).await?;
        report.rows_written += outcome.written;
        report.refused += outcome.refused.len();
        report.deferred_writes += super::group_sync::deferred(&outcome, self.budget);
        let refused: Vec<_> = outcome
            .refused
            .iter()
            .filter_map(|r| {
                seen.iter()
                    .find(|(s, _)| s.group() == r.group_id)
                    .map(|(_, a)| (r.clone(), a.clone()))
            })
            .collect();
        self.pending.refused_activity(&self.tenant, refused);
        // What was written is now the rows' activity, at the version the write made (when
        // Graph said it; else the row is read again before its next write).
        for (stored, a) in seen {
            if let Some(r) = rows.rows.get_mut(&stored.group_id) {
                // What the row holds now: a write that met a newer row (412) merged with it,
                // and a later write of this run must start from that, not from our older copy.
                match outcome.activity.get(&stored.group()) {
                    Some(written) => r.activity = written.clone(),
                    None => r.activity.merge(a),
                }
                r.etag = outcome
                    .etags
                    .get(&stored.group())
                    .cloned()
                    .flatten()
                    .map(String::into_boxed_str);
            }
        }
        Ok(())
    }

    /// Reads the Teams report if today's has not been read, writes what it says, then marks
    /// the day as read.
    async fn teams_report(&mut self, rows: &mut Rows, report: &mut ActivityReport) -> Result<(), ActivityError> {
        let today = self.now.format("%Y-%m-%d").to_string();
        let version = self.state.load(&self.tenant, REPORT_DAY_KEY).await?.map(|(_, v)| v);
        match self.graph.reports_conceal_names().await {
            Ok(true) => {
                report.teams_report = "concealed";
                // Said once in the tenant's log, not every day.
                if self.state.load(&self.tenant, CONCEALED_KEY).await?.is_none() {
                    tracing::warn!(event = "teams_report_concealed", tenant_id = %self.tenant);
                    match self.state.save(&self.tenant, CONCEALED_KEY, "1", None).await {
                        Ok(_) | Err(StateError::Conflict) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                for key in [
                    TEAMS_HISTORY_KEY,
                    GROUPS_HISTORY_KEY,
                    TEAMS_REFRESHED_KEY,
                    GROUPS_REFRESHED_KEY,
                ] {
                    if self.state.load(&self.tenant, key).await?.is_some() {
                        self.state.delete(&self.tenant, key).await?;
                    }
                }
                return self.mark_report_day(&today, version.as_ref()).await;
            }
            Ok(false) => {
                // Names are shown again: the report joins by name again.
                if self.state.load(&self.tenant, CONCEALED_KEY).await?.is_some() {
                    self.state.delete(&self.tenant, CONCEALED_KEY).await?;
                }
            }
            // Without report permissions the audit feed still works.
            Err(e) if matches!(e.status(), Some(403 | 404)) => {
                report.teams_report = "unavailable";
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let mut map = ActivityMap::default();
        // Each report over 7, 30 and 90 days: Microsoft's counts per period, and the last
        // activity days from the longest.
        let mut teams = Vec::with_capacity(3);
        for period in REPORT_PERIODS {
            let csv = self.graph.teams_activity_report(period).await?;
            match usage_reports::teams_report(&csv) {
                Ok(r) => teams.push(r),
                Err(e) => {
                    tracing::warn!(event = "teams_report_unreadable", tenant_id = %self.tenant, error = %e);
                    break;
                }
            }
        }
        let mut refreshed = [None, None];
        // The reports' data ends with the earlier of their refresh dates (unknown: not said).
        let mut data_until: Option<Option<NaiveDate>> = None;
        let mut ends = |r: Option<NaiveDate>| data_until = Some(data_until.unwrap_or(r).min(r));
        if let Ok(teams) = <[_; 3]>::try_from(teams) {
            ends(teams[2].refreshed);
            for (group, (day, _)) in &teams[2].groups {
                map.record_id(group, LastActivity::teams_report_day(*day));
            }
            if let Some((day, counts)) = usage_reports::per_period(&teams) {
                refreshed[0] = self.record_counts(
                    rows,
                    &mut map,
                    day,
                    counts,
                    |c| c.teams,
                    |c| ReportedCounts {
                        teams: Some(c),
                        mail: None,
                    },
                );
            }
            report.teams_report = "read";
        } else {
            report.teams_report = "unavailable";
        }
        // The group mailboxes: groups used by mail alone would otherwise look dead.
        let mut groups = Vec::with_capacity(3);
        for period in REPORT_PERIODS {
            let read = match self.graph.groups_activity_report(period).await {
                Ok(csv) => usage_reports::groups_report(&csv).map_err(|e| e.to_string()),
                Err(e) if matches!(e.status(), Some(403 | 404)) => Err(e.to_string()),
                Err(e) => return Err(e.into()),
            };
            match read {
                Ok(r) => groups.push(r),
                Err(e) => {
                    tracing::warn!(event = "groups_report_unreadable", tenant_id = %self.tenant, error = %e);
                    break;
                }
            }
        }
        if let Ok(groups) = <[_; 3]>::try_from(groups) {
            ends(groups[2].refreshed);
            for (group, day) in usage_reports::last_mail(&groups) {
                map.record_id(&group, LastActivity::mail_report_day(day));
            }
            if let Some((day, counts)) = usage_reports::per_period(&groups) {
                refreshed[1] = self.record_counts(
                    rows,
                    &mut map,
                    day,
                    counts,
                    |c| c.mail,
                    |c| ReportedCounts {
                        teams: None,
                        mail: Some(c),
                    },
                );
            }
            report.groups_report = "read";
        } else {
            report.groups_report = "unavailable";
        }
        self.flush(rows, &mut map, report).await?;
        if let Some(until) = data_until {
            self.set_day(REPORTS_DATA_UNTIL_KEY, until).await?;
        }
        // The counts are current as of a report's refresh date, but for those still waiting in
        // the pending work (refused, or the budget ran out), whose rows keep their own date.
        // Counts that cannot be read today are not shown as today's.
        for (day, key) in refreshed.iter().zip([TEAMS_REFRESHED_KEY, GROUPS_REFRESHED_KEY]) {
            self.set_day(key, *day).await?;
        }
        for (read, key, last) in [
            (report.teams_report == "read", TEAMS_HISTORY_KEY, TEAMS_LAST_KEY),
            (report.groups_report == "read", GROUPS_HISTORY_KEY, GROUPS_LAST_KEY),
        ] {
            if read {
                match self.state.save(&self.tenant, key, &today, None).await {
                    Ok(_) | Err(StateError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
                let version = self.state.load(&self.tenant, last).await?.map(|(_, v)| v);
                match self.state.save(&self.tenant, last, &today, version.as_ref()).await {
                    Ok(_) | Err(StateError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.mark_report_day(&today, version.as_ref()).await
    }

    /// Records one report's counts of `day` for the groups that have them, and zeros for
    /// the groups that had counts and have none now (by their row, or by what of theirs waits
    /// in the pending work, which is brought up to date as well). Returns the day, or `None`
    /// when the report matches none of the tenant's groups though it names some (ids that are
    /// hashes: names concealed meanwhile), which must not zero every group's counts.
    fn record_counts<T: Copy + Default + PartialEq>(
        &mut self,
        rows: &Rows,
        map: &mut ActivityMap,
        day: NaiveDate,
        counts: HashMap<String, Reported<T>>,
        part: impl Fn(&ReportedCounts) -> Option<Reported<T>>,
        whole: impl Fn(Reported<T>) -> ReportedCounts,
    ) -> Option<NaiveDate> {
        let known = |g: &String| uuid::Uuid::parse_str(g).is_ok_and(|g| rows.rows.contains_key(&g));
        if !counts.is_empty() && !counts.keys().any(known) {
            tracing::warn!(
                event = "report_counts_unmatched",
                tenant_id = %self.tenant,
                groups = counts.len(),
            );
            return None;
        }
        let had = |c: &ReportedCounts| part(c).is_some_and(|r| !r.is_zero());
        let seen = |c: Reported<T>| LastActivity {
            reported: whole(c),
            ..Default::default()
        };
        for r in rows.rows.values() {
            if had(&r.activity.reported) && !counts.contains_key(&r.group()) {
                map.record(r.group_id, seen(Reported::zero(day)));
            }
        }
        for (group, waiting) in self.pending.counts() {
            match counts.get(&group) {
                Some(c) => self.pending.merge_counts(&group, whole(*c)),
                None if had(&waiting) => self.pending.merge_counts(&group, whole(Reported::zero(day))),
                None => {}
            }
        }
        for (group, c) in counts {
            map.record_id(&group, seen(c));
        }
        Some(day)
    }

    /// Sets a day kept in the job state, or removes it (`None`); another run's write meanwhile
    /// stands.
    async fn set_day(&self, key: &str, day: Option<NaiveDate>) -> Result<(), ActivityError> {
        match day {
            Some(d) => {
                let version = self.state.load(&self.tenant, key).await?.map(|(_, v)| v);
                match self
                    .state
                    .save(&self.tenant, key, &d.to_string(), version.as_ref())
                    .await
                {
                    Ok(_) | Err(StateError::Conflict) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            None if self.state.load(&self.tenant, key).await?.is_some() => {
                Ok(self.state.delete(&self.tenant, key).await?)
            }
            None => Ok(()),
        }
    }

    async fn mark_report_day(&self, today: &str, version: Option<&Version>) -> Result<(), ActivityError> {
        match self.state.save(&self.tenant, REPORT_DAY_KEY, today, version).await {
            // Another run marked it meanwhile: the day is read either way.
            Ok(_) | Err(StateError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists content, starting the subscription if needed (AF20022) and clamping a refused
    /// window once (AF20030).
    async fn list(
        &self,
        mgmt: &Management<'_>,
        ct: ContentType,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<ContentBlob>, ActivityError> {
        match mgmt.list_content(ct, start, end).await {
            Ok(list) => Ok(list),
            Err(ManagementError::NoSubscription) => {
                mgmt.start_subscription(ct).await?;
                Ok(mgmt.list_content(ct, start, end).await?)
            }
            Err(ManagementError::BadWindow(_)) => {
                let floor = self.now - RETENTION + RETENTION_MARGIN * 2;
                Ok(mgmt
                    .list_content(ct, start.max(floor), end.max(floor + TimeDelta::minutes(1)))
                    .await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one content type from its checkpoint to now. Returns whether it got to now
    /// (`false`: the budget ran out first; the checkpoint says where to go on).
    async fn feed(
        &mut self,
        mgmt: &Management<'_>,
        ct: ContentType,
        rows: &mut Rows,
        report: &mut ActivityReport,
    ) -> Result<bool, ActivityError> {
        let key = checkpoint_key(ct);
        let (mut cp, mut version) = match load_doc::<Checkpoint>(self.state, &self.tenant, &key).await? {
            Some((c, v)) => (c, Some(v)),
            None => (Checkpoint::default(), None),
        };
        // A record belongs to one content type: its repeats are in blobs of that type.
        let mut seen = SeenIds::default();
        let mut map = ActivityMap::default();
        let mut since_save = 0;
        let mut records_at_save = report.records;
        // A failure keeps what was read before it (rows first, then the checkpoint), so a
        // window that keeps failing never throws away the windows done before it.
        macro_rules! or_save {
            ($step:expr) => {
                match $step {
                    Ok(v) => v,
                    Err(e) => {
                        if let Err(also) = self.save_feed(&key, &mut cp, &mut version, rows, &mut map, report).await {
                            tracing::warn!(event = "activity_save_failed", tenant_id = %self.tenant, error = %also);
                        }
                        return Err(e);
                    }
                }
            };
        }
        // Blobs that failed on earlier runs first.
        let failing: Vec<(String, FailingBlob)> = cp.failing.clone().into_iter().collect();
        for (id, f) in failing {
            if self.budget.exhausted() {
                break;
            }
            let done = self
                .read_blob(
                    mgmt,
                    ct,
                    &id,
                    &f.content_uri,
                    f.created,
                    &mut cp,
                    &rows.index,
                    &mut seen,
                    &mut map,
                    report,
                )
                .await;
            let done = or_save!(done);
            if !done {
                self.save_feed(&key, &mut cp, &mut version, rows, &mut map, report)
                    .await?;
                return Ok(false);
            }
        }
        let floor = self.now - RETENTION + RETENTION_MARGIN;
        let mut start = cp.bookmark.map_or(floor, |b| (b - OVERLAP).max(floor));
        // Unread longer than the feed keeps content: what happened in between is unknown.
        let gap = cp.bookmark.is_some_and(|b| b - OVERLAP < floor);
        if cp.observed_since.is_none() || gap {
            cp.observed_since = Some(start);
        }
        while start < self.now {
            let end = (start + WINDOW).min(self.now);
            seen.next_window();
            let listed = self.list(mgmt, ct, start, end).await;
            let mut blobs = or_save!(listed);
            blobs.sort_by(|a, b| {
                a.content_created
                    .cmp(&b.content_created)
                    .then_with(|| a.content_id.cmp(&b.content_id))
            });
            for blob in blobs {
                if cp.processed.contains_key(&blob.content_id) || cp.failing.contains_key(&blob.content_id) {
                    continue;
                }
                if self.budget.exhausted() {
                    self.save_feed(&key, &mut cp, &mut version, rows, &mut map, report)
                        .await?;
                    return Ok(false);
                }
                let done = self
                    .read_blob(
                        mgmt,
                        ct,
                        &blob.content_id,
                        &blob.content_uri,
                        blob.content_created,
                        &mut cp,
                        &rows.index,
                        &mut seen,
                        &mut map,
                        report,
                    )
                    .await;
                let done = or_save!(done);
                if !done {
                    // The budget ran out on this blob: the window stays open (its bookmark
                    // does not move past a blob not yet read).
                    self.save_feed(&key, &mut cp, &mut version, rows, &mut map, report)
                        .await?;
                    return Ok(false);
                }
                since_save += 1;
                if since_save >= BLOBS_PER_SAVE || report.records - records_at_save >= RECORDS_PER_SAVE {
                    self.save_feed(&key, &mut cp, &mut version, rows, &mut map, report)
                        .await?;
                    since_save = 0;
                    records_at_save = report.records;
                }
            }
            // The window is done: content created before its end has been processed (saved
            // with the next save, after the rows it fed).
            cp.bookmark = Some(end.max(cp.bookmark.unwrap_or(end)));
            cp.processed
                .retain(|_, created| *created >= self.now - RETENTION - OVERLAP);
            start = end;
        }
        self.save_feed(&key, &mut cp, &mut version, rows, &mut map, report)
            .await?;
        Ok(true)
    }

    /// `process_blob` with the tenant's pseudonyms (held for the parsing only).
    fn process(
        &self,
        bytes: &[u8],
        index: &GroupIndex,
        seen: &mut SeenIds,
        map: &mut ActivityMap,
    ) -> Result<crate::activity::BlobCounts, crate::activity::records::BlobError> {
        let mut people = self
            .people
            .as_ref()
            .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()));
        process_blob(bytes, index, seen, map, people.as_deref_mut())
    }

    /// Reads one blob into `map`, or notes why it could not be read. `false`: the budget ran
    /// out before it could be read (nothing noted; the next invocation reads it).
    #[allow(clippy::too_many_arguments)]
    async fn read_blob(
        &self,
        mgmt: &Management<'_>,
        ct: ContentType,
        id: &str,
        uri: &str,
        created: DateTime<Utc>,
        cp: &mut Checkpoint,
        index: &GroupIndex,
        seen: &mut SeenIds,
        map: &mut ActivityMap,
        report: &mut ActivityReport,
    ) -> Result<bool, ActivityError> {
        match mgmt.fetch(uri).await {
            Ok(bytes) => match self.process(&bytes, index, seen, map) {
                Ok(counts) => {
                    report.records += counts.records;
                    report.duplicates += counts.duplicates;
                    report.matched += counts.matched;
                    report.blobs += 1;
                    cp.failing.remove(id);
                    cp.processed.insert(id.to_string(), created);
                }
                Err(e) => {
                    if !self.blob_failed(ct, id, uri, created, &e.to_string(), cp, report) {
                        return Ok(false);
                    }
                }
            },
            Err(ManagementError::ContentGone(code)) => self.blob_lost(ct, id, created, &code, cp, report),
            Err(e @ ManagementError::TooLarge(_)) => self.blob_lost(ct, id, created, &e.to_string(), cp, report),
            // Throttled past what the budget could wait: nothing wrong with the blob. The
            // invocation stops here and the next one, after the wait asked for, reads it.
            Err(ManagementError::Unavailable { code, retry_after }) if code == "AF429" || retry_after.is_some() => {
                report.retry_after = report.retry_after.max(retry_after.or(Some(THROTTLE_WAIT)));
                return Ok(false);
            }
            Err(
                e
                @ (ManagementError::Unavailable { .. } | ManagementError::Transport(_) | ManagementError::Protocol(_)),
            ) => {
                if !self.blob_failed(ct, id, uri, created, &e.to_string(), cp, report) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(p) = self.progress {
            p(report.blobs, report.records);
        }
        Ok(true)
    }

    /// A blob that cannot be read now: tried again next run, lost after three. A failure the
    /// budget cut short (no time left to retry it) does not count: the blob is simply not
    /// processed, and the next invocation reads it.
    #[allow(clippy::too_many_arguments)]
    fn blob_failed(
        &self,
        ct: ContentType,
        id: &str,
        uri: &str,
        created: DateTime<Utc>,
        error: &str,
        cp: &mut Checkpoint,
        report: &mut ActivityReport,
    ) -> bool {
        if self.budget.exhausted() {
            return false;
        }
        let failures = cp.failing.get(id).map_or(0, |f| f.failures) + 1;
        if failures >= BLOB_ATTEMPTS {
            self.blob_lost(ct, id, created, error, cp, report);
            return true;
        }
        report.deferred += 1;
        cp.failing.insert(
            id.to_string(),
            FailingBlob {
                content_uri: uri.to_string(),
                created,
                failures,
            },
        );
        true
    }

    fn blob_lost(
        &self,
        ct: ContentType,
        id: &str,
        created: DateTime<Utc>,
        error: &str,
        cp: &mut Checkpoint,
        report: &mut ActivityReport,
    ) {
        report.lost += 1;
        tracing::warn!(event = "audit_content_lost", tenant_id = %self.tenant, content_type = ct.as_str(), error = %error);
        // Its records are gone: nothing before the next hour is known to be complete.
        let after = created + TimeDelta::hours(1);
        cp.observed_since = Some(cp.observed_since.map_or(after, |s| s.max(after)));
        cp.failing.remove(id);
        cp.processed.insert(id.to_string(), created);
    }

    /// Rows first, then the checkpoint: a run stopped between the two repeats the blobs.
    async fn save_feed(
        &mut self,
        key: &str,
        cp: &mut Checkpoint,
        version: &mut Option<Version>,
        rows: &mut Rows,
        map: &mut ActivityMap,
        report: &mut ActivityReport,
    ) -> Result<(), ActivityError> {
        self.flush(rows, map, report).await?;
        *version = Some(save_doc(self.state, &self.tenant, key, cp, version.as_ref()).await?);
        Ok(())
    }
}

#[cfg(test)]
mod source_tests {

    use super::*;
    use crate::jobs::state::EmbeddedState;

    fn reason(s: &[SourceState], source: Source) -> Option<String> {
        s.iter().find(|x| x.source == source).and_then(|x| x.reason.clone())
    }

    /// Each source says why it does not inform the tenant's activity: no report in this
    /// cloud, names concealed, no audit feed, nothing read yet.
    #[tokio::test]
    async fn sources_say_why_they_are_unavailable() {
        let (state, tenant) = EmbeddedState::for_test().await;
        let s = sources(&state, &tenant, false, false).await.unwrap();
        assert!(
            reason(&s, Source::TeamsReport)
                .unwrap()
                .contains("not offered in this Microsoft cloud")
        );
        assert!(reason(&s, Source::TeamsAudit).unwrap().contains("not configured"));
        let s = sources(&state, &tenant, true, true).await.unwrap();
        assert_eq!(reason(&s, Source::TeamsReport).as_deref(), Some("not read yet"));
        assert_eq!(reason(&s, Source::SharePointAudit).as_deref(), Some("not read yet"));
        state
            .save(&tenant, TEAMS_HISTORY_KEY, "2026-12-01", None)
            .await
            .unwrap();
        let s = sources(&state, &tenant, true, true).await.unwrap();
        assert!(s.iter().any(|x| x.source == Source::TeamsReport && x.available));
        assert_eq!(reason(&s, Source::GroupMailbox).as_deref(), Some("not read yet"));
        // Read successfully on the 1st, tried daily since and failing: current for two more
        // days, then unavailable (a group used by mail alone must not look inactive).
        state.save(&tenant, TEAMS_LAST_KEY, "2026-12-01", None).await.unwrap();
        let v = state.save(&tenant, REPORT_DAY_KEY, "2026-12-03", None).await.unwrap();
        let s = sources(&state, &tenant, true, true).await.unwrap();
        assert!(s.iter().any(|x| x.source == Source::TeamsReport && x.available));
        state
            .save(&tenant, REPORT_DAY_KEY, "2026-12-04", Some(&v))
            .await
            .unwrap();
        let s = sources(&state, &tenant, true, true).await.unwrap();
        assert!(reason(&s, Source::TeamsReport).unwrap().contains("failed for days"));
        state.save(&tenant, CONCEALED_KEY, "1", None).await.unwrap();
        let s = sources(&state, &tenant, true, true).await.unwrap();
        assert!(reason(&s, Source::TeamsReport).unwrap().contains("conceals"));
    }
}
