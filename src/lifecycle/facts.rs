//! What the syncs know, as the lifecycle evaluation reads it: the tenant's data state (how
//! complete, which sources, observed since when) from the job state, and each group's facts
//! from its row in the customer's list.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::evaluate::{DataState, GroupFacts};
use super::policy::Signal;
use super::reviews::{ActionState, Review, ReviewState};
use crate::customer_list::{GroupRow, Lifecycle};
use crate::domain::TenantId;
use crate::jobs::activity_sync::{self, Source};
use crate::jobs::state::{StateError, TenantState};

/// The SharePoint signals (all from the audit feed's SharePoint records).
const SHAREPOINT: [Signal; 4] = [
    Signal::SharePointFileEdit,
    Signal::SharePointFileView,
    Signal::SharePointPage,
    Signal::SharePointList,
];

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// How complete the tenant's activity data is, per signal.
///
/// - `teams` is seen by the Teams report (when names are shown) and the audit feed's Teams
///   records: unavailable only when neither is; observed since the earlier of the two.
/// - The SharePoint kinds come from the audit feed's SharePoint records alone.
/// - `mail` comes from the Microsoft 365 groups activity report alone.
pub async fn data_state(
    state: &dyn TenantState,
    tenant: &TenantId,
    teams_report_offered: bool,
    audit_feed: bool,
) -> Result<DataState, StateError> {
    let complete_until = activity_sync::data_complete_until(state, tenant, audit_feed).await?;
    let sources = activity_sync::sources(state, tenant, teams_report_offered, audit_feed).await?;
    let available = |s: Source| sources.iter().any(|x| x.source == s && x.available);
    let since = activity_sync::observed_since(state, tenant, audit_feed).await?;
    let mut data = DataState {
        complete_until,
        ..Default::default()
    };
    let teams_report = since.teams_report.filter(|_| available(Source::TeamsReport));
    let teams_audit = since.teams_audit.filter(|_| available(Source::TeamsAudit));
    data.observed_since[Signal::Teams as usize] = earliest(teams_report, teams_audit);
    if !available(Source::TeamsReport) && !available(Source::TeamsAudit) {
        data.unavailable.insert(Signal::Teams);
    }
    for (signal, source, since) in [
        (Signal::TeamsReport, Source::TeamsReport, teams_report),
        (Signal::TeamsAudit, Source::TeamsAudit, teams_audit),
    ] {
        data.observed_since[signal as usize] = since;
        if !available(source) {
            data.unavailable.insert(signal);
        }
    }
    for s in SHAREPOINT {
        if available(Source::SharePointAudit) {
            data.observed_since[s as usize] = since.sharepoint_audit;
        } else {
            data.unavailable.insert(s);
        }
    }
    if available(Source::GroupMailbox) {
        data.observed_since[Signal::Mail as usize] = since.groups_report;
    } else {
        data.unavailable.insert(Signal::Mail);
    }
    Ok(data)
}

/// The facts of every row of the list, each with its group's review applied (`apply_review`)
/// but for the groups `judged_apart` names (judged as if they had none).
pub fn of_rows<'a>(
    rows: impl Iterator<Item = &'a GroupRow>,
    reviews: &[Review],
    judged_apart: impl Fn(&str) -> bool,
) -> Vec<GroupFacts> {
    let by_group: std::collections::HashMap<&str, &Review> = reviews.iter().map(|r| (r.group_id.as_str(), r)).collect();
    rows.filter_map(|row| {
        let mut f = of_row(row)?;
        let id = row.group_id.as_str();
        if let Some(review) = by_group.get(id).filter(|_| !judged_apart(id)) {
            apply_review(&mut f, review);
        }
        Some(f)
    })
    .collect()
}

/// What a group's review says of it: one with a review open, an action under way, or that
/// is archived or deleted is in the lifecycle already (not a new candidate); a kept or
/// restored one was kept when it was decided.
pub fn apply_review(facts: &mut GroupFacts, review: &Review) {
    use ReviewState::*;
    if matches!(review.state, Pending | Archived | Deleted) || review.action_state == Some(ActionState::Intended) {
        facts.in_lifecycle = true;
    }
    if matches!(review.state, Kept | Restored) {
        facts.kept_at = review.decided_at.or(Some(review.opened_at));
    }
}

/// A row's facts, or `None` for a row of a deleted group or one whose id is not a GUID.
pub fn of_row(row: &GroupRow) -> Option<GroupFacts> {
    if row.lifecycle != Lifecycle::Active {
        return None;
    }
    let id = uuid::Uuid::parse_str(&row.group_id).ok()?;
    let k = row.last_sharepoint_kinds;
    let mut unobservable = BTreeSet::new();
    // Without its site, no SharePoint record can be matched to the group.
    if row.site_url.is_none() {
        unobservable.extend(SHAREPOINT);
    }
    // A team's audit records name its thread; until the thread id is known only the Teams
    // report (and records naming the group itself) can be matched.
    if row.teams_enabled && row.teams_thread_id.is_none() {
        unobservable.insert(Signal::Teams);
        unobservable.insert(Signal::TeamsAudit);
    }
    // Teams activity the row holds but neither source's column does (written before GroupMgr
    // kept the two apart): either source may have seen it, so each source alone counts it too
    // (a bound that can only hold a group back, never make it a candidate early).
    let by = row.last_teams_by;
    let (report, audit) = if by.report.max(by.audit) < row.last_teams_activity {
        (
            by.report.max(row.last_teams_activity),
            by.audit.max(row.last_teams_activity),
        )
    } else {
        (by.report, by.audit)
    };
    Some(GroupFacts {
        id,
        name: row.name.clone(),
        created: row.created,
        // Unknown (a row not yet synced with its labels, or a label id that is not a GUID)
        // holds the group out of a policy that excludes by label rather than act on it.
        labels: row
            .labels
            .as_ref()
            .and_then(|ls| ls.iter().map(|l| uuid::Uuid::parse_str(&l.label_id).ok()).collect()),
        last: [
            row.last_teams_activity,
            k.file_edit,
            k.file_view,
            k.page,
            k.list,
            row.last_mail_activity,
            report,
            audit,
        ],
        kept_at: None,
        in_lifecycle: false,
        unobservable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    /// A row written before the Teams sources had their own columns holds Teams activity
    /// neither column shows: each source alone counts it (never a candidate early), and a row
    /// whose sources are known counts each its own.
    #[test]
    fn teams_sources_of_rows_that_predate_their_columns() {
        let at = |d: i64| DateTime::from_timestamp(1_800_000_000 + d * 86_400, 0);
        let mut row = GroupRow::new("6f1c2b4a-3d5e-4f70-8a9b-0c1d2e3f4a5b");
        row.last_teams_activity = at(10);
        let f = of_row(&row).unwrap();
        assert_eq!(
            (f.last(Signal::TeamsReport), f.last(Signal::TeamsAudit)),
            (at(10), at(10))
        );
        // The report rewrote its day (midnight of day 9); the audit's later time that day is
        // still only in the combined column.
        row.last_teams_by.report = at(9).map(|t| t - TimeDelta::hours(1));
        let f = of_row(&row).unwrap();
        assert_eq!(
            (f.last(Signal::TeamsReport), f.last(Signal::TeamsAudit)),
            (at(10), at(10))
        );
        row.last_teams_by.audit = at(10);
        let f = of_row(&row).unwrap();
        assert_eq!(
            (f.last(Signal::TeamsReport), f.last(Signal::TeamsAudit)),
            (at(9).map(|t| t - TimeDelta::hours(1)), at(10))
        );
        assert_eq!(f.last(Signal::Teams), at(10));
    }
}
