//! Activity sync for one tenant: the Teams team activity report (once a day) and the Office
//! 365 audit feed since its checkpoint become each group's last Teams, SharePoint and overall
//! activity in the tenant's GroupMgr list.
//!
//! Audit feed, per content type (`Audit.SharePoint`, `Audit.General`): content is listed in
//! windows of at most 24 hours from an hour before the checkpoint's bookmark (late content)
//! to now, never older than 7 days; blobs already processed (their ids are kept while they
//! can still be listed) are skipped; each blob is streamed record by record. Nothing that
//! is written is a sum: a group's activity is a maximum of times, so a window read twice, a
//! blob fetched again after a crash, or a duplicate record changes nothing. The checkpoint
//! (CAS on its version) is written only after the rows are, so a run killed anywhere
//! repeats its work when restarted, skips no window, and ends with the same rows.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::state::{StateError, TenantState, Version};
use crate::activity::mapping::GroupIndex;
use crate::activity::{ActivityMap, LastActivity, SeenIds, process_blob, teams_report};
use crate::customer_list::{self, GroupRow, ListLocation};
use crate::domain::TenantId;
use crate::microsoft::graph::{Graph, GraphError, Period};
use crate::microsoft::management::{ContentBlob, ContentType, Management, ManagementError};

/// How far back content can be listed and fetched.
const RETENTION: TimeDelta = TimeDelta::days(7);
/// A margin inside the 7 days, so a window start is never refused for being just too old.
const RETENTION_MARGIN: TimeDelta = TimeDelta::minutes(10);
/// Re-read this much before the bookmark: content may become available late.
const OVERLAP: TimeDelta = TimeDelta::hours(1);
const WINDOW: TimeDelta = TimeDelta::hours(24);
const REPORT_DAY_KEY: &str = "teams_report_day";
const CONCEALED_KEY: &str = "teams_report_concealed";

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
    /// Blobs that had expired or vanished before they could be read.
    pub lost: u64,
    pub rows_written: usize,
    /// Teams report: "read", "concealed", "not due" or "unavailable".
    pub teams_report: &'static str,
    /// Whether the audit feed was read (it needs `GROUPMGR_PUBLISHER_ID`).
    pub audit_feed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("audit feed: {0}")]
    Management(#[from] ManagementError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("audit blob {0}: {1}")]
    Blob(String, String),
}

/// The checkpoint of one content type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Content created before this time has been processed (but see `processed`).
    pub bookmark: Option<DateTime<Utc>>,
    /// Content ids processed, with when they were created, kept while they can be listed.
    #[serde(default)]
    pub processed: BTreeMap<String, DateTime<Utc>>,
}

fn checkpoint_key(ct: ContentType) -> String {
    format!("audit_{}", ct.as_str())
}

/// The inputs of one activity sync.
pub struct ActivitySync<'a> {
    pub graph: &'a Graph<'a>,
    pub management: Option<&'a Management<'a>>,
    pub state: &'a dyn TenantState,
    pub tenant: TenantId,
    pub list: &'a ListLocation,
    pub now: DateTime<Utc>,
    /// Called after each blob with (blobs done, records so far), for progress displays.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Send + Sync)>,
}

impl ActivitySync<'_> {
    pub async fn run(&self) -> Result<ActivityReport, ActivityError> {
        let mut report = ActivityReport {
            teams_report: "not due",
            ..Default::default()
        };
        let report_due = self
            .state
            .load(&self.tenant, REPORT_DAY_KEY)
            .await?
            .is_none_or(|(d, _)| d != self.now.format("%Y-%m-%d").to_string());
        if self.management.is_none() && !report_due {
            // Nothing to read: no audit feed configured, today's report already merged.
            return Ok(report);
        }
        let rows = customer_list::all_rows(self.graph, self.list).await?;
        let mut index = GroupIndex::default();
        for (id, (_, row)) in &rows {
            index.add_group(id, row.site_url.as_deref(), row.teams_thread_id.as_deref());
        }
        let mut activity = ActivityMap::default();
        let report_day = self.teams_report(&mut activity, &mut report).await?;

        // Audit feed: read everything new, keep the new checkpoints to write at the end.
        let mut checkpoints: Vec<(ContentType, Checkpoint, Option<Version>)> = Vec::new();
        if let Some(mgmt) = self.management {
            report.audit_feed = true;
            for ct in ContentType::ALL {
                // A record belongs to one content type: its repeats are in blobs of that type.
                let mut seen = SeenIds::default();
                let (cp, version) = self
                    .feed(mgmt, ct, &index, &mut activity, &mut seen, &mut report)
                    .await?;
                checkpoints.push((ct, cp, version));
            }
        }

        // Rows first…
        let mut changes: Vec<(Option<String>, GroupRow)> = Vec::new();
        for (group, seen) in &activity.0 {
            let Some((item, row)) = rows.get(group) else { continue };
            let mut merged = LastActivity {
                teams: row.last_teams_activity,
                sharepoint: row.last_sharepoint_activity,
            };
            merged.merge(*seen);
            let mut new = row.clone();
            new.last_teams_activity = merged.teams;
            new.last_sharepoint_activity = merged.sharepoint;
            new.last_activity = merged.overall();
            if !new.same_data(row) {
                changes.push((Some(item.clone()), new));
            }
        }
        report.rows_written = customer_list::write_rows(self.graph, self.list, changes).await?;

        // …then checkpoints: a run stopped before here repeats its work.
        for (ct, cp, version) in checkpoints {
            let text = serde_json::to_string(&cp).expect("plain JSON");
            self.state
                .save(&self.tenant, &checkpoint_key(ct), &text, version.as_ref())
                .await?;
        }
        if let Some((day, version)) = report_day {
            self.state
                .save(&self.tenant, REPORT_DAY_KEY, &day, version.as_ref())
                .await?;
        }
        Ok(report)
    }

    /// Reads the Teams report if today's has not been read. Returns the day marker to save.
    async fn teams_report(
        &self,
        activity: &mut ActivityMap,
        report: &mut ActivityReport,
    ) -> Result<Option<(String, Option<Version>)>, ActivityError> {
        let today = self.now.format("%Y-%m-%d").to_string();
        let stored = self.state.load(&self.tenant, REPORT_DAY_KEY).await?;
        if stored.as_ref().is_some_and(|(d, _)| *d == today) {
            return Ok(None);
        }
        let first = stored.is_none();
        let version = stored.map(|(_, v)| v);
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
                return Ok(Some((today, version)));
            }
            Ok(false) => {}
            // Without report permissions the audit feed still works.
            Err(e) if matches!(e.status(), Some(403 | 404)) => {
                report.teams_report = "unavailable";
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let csv = self
            .graph
            .teams_activity_report(if first { Period::D90 } else { Period::D7 })
            .await?;
        match teams_report::parse(&csv) {
            Ok(teams) => {
                for (group, seen) in teams {
                    activity.record(&group, seen);
                }
                report.teams_report = "read";
            }
            Err(e) => {
                tracing::warn!(event = "teams_report_unreadable", tenant_id = %self.tenant, error = %e);
                report.teams_report = "unavailable";
            }
        }
        Ok(Some((today, version)))
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
                let floor = Utc::now() - RETENTION + RETENTION_MARGIN * 2;
                Ok(mgmt
                    .list_content(ct, start.max(floor), end.max(floor + TimeDelta::minutes(1)))
                    .await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn feed(
        &self,
        mgmt: &Management<'_>,
        ct: ContentType,
        index: &GroupIndex,
        activity: &mut ActivityMap,
        seen: &mut SeenIds,
        report: &mut ActivityReport,
    ) -> Result<(Checkpoint, Option<Version>), ActivityError> {
        let key = checkpoint_key(ct);
        let (mut cp, version) = match self.state.load(&self.tenant, &key).await? {
            Some((text, v)) => (serde_json::from_str(&text).unwrap_or_default(), Some(v)),
            None => (Checkpoint::default(), None),
        };
        let floor = self.now - RETENTION + RETENTION_MARGIN;
        let mut start = cp.bookmark.map_or(floor, |b| (b - OVERLAP).max(floor));
        while start < self.now {
            let end = (start + WINDOW).min(self.now);
            let mut blobs = self.list(mgmt, ct, start, end).await?;
            blobs.sort_by(|a, b| {
                a.content_created
                    .cmp(&b.content_created)
                    .then_with(|| a.content_id.cmp(&b.content_id))
            });
            for blob in blobs {
                if cp.processed.contains_key(&blob.content_id) {
                    continue;
                }
                match mgmt.fetch(&blob).await {
                    Ok(bytes) => {
                        let counts = process_blob(&bytes, index, seen, activity)
                            .map_err(|e| ActivityError::Blob(blob.content_id.clone(), e.to_string()))?;
                        report.records += counts.records;
                        report.duplicates += counts.duplicates;
                        report.matched += counts.matched;
                        report.blobs += 1;
                    }
                    Err(ManagementError::ContentGone(code)) => {
                        report.lost += 1;
                        tracing::warn!(event = "audit_content_lost", tenant_id = %self.tenant, content_type = ct.as_str(), error = %code);
                    }
                    Err(e) => return Err(e.into()),
                }
                cp.processed.insert(blob.content_id.clone(), blob.content_created);
                if let Some(p) = self.progress {
                    p(report.blobs, report.records);
                }
            }
            start = end;
        }
        cp.bookmark = Some(self.now);
        cp.processed
            .retain(|_, created| *created >= self.now - RETENTION - OVERLAP);
        Ok((cp, version))
    }
}
