//! `automatic` execution (issue 16, item 2): what each sync of a tenant that chose it does for
//! reviews whose owners did not answer. With the policy's `onNoAnswer` `archive`, a review
//! past its due date archives the group's team; with `deleteAfterDays`, a team GroupMgr
//! archived so is deleted (soft: restorable for 30 days) that many days after. Every action
//! goes through the same `Decider` as an owner's decision — recorded as intended before it is
//! sent and as done after, under the daily cap — with GroupMgr's application permissions,
//! which only tenants that choose `automatic` grant (`ROLES`).
//!
//! A review that cannot be acted on (a group without a team has nothing to archive; Graph
//! refused) is counted and said in the tenant log, and stays for an owner or administrator;
//! it never stops the others. One that failed at Microsoft (or has no team) is tried again
//! later, each time after twice the wait (an hour first, a week at most: `Refused`), not on
//! every sync. The cap reached
//! ends the step for the day.

use chrono::{DateTime, TimeDelta, Utc};

use super::decide::{DecideError, Decider, Decision};
use super::no_answer::{self, Step, Verdict};
use super::policy::{Execution, LifecyclePolicy};
use super::reviews::{Review, Reviews};
use super::{evaluate, facts};
use crate::crypto::PeopleSeal;
use crate::customer_list;
use crate::domain::TenantId;
use crate::jobs::state::TenantState;
use crate::microsoft::graph::Graph;

/// The application permissions `automatic` execution needs: archiving a team
/// (`POST /teams/{id}/archive`, "team: archive": `TeamSettings.ReadWrite.All`) and deleting
/// and restoring a group (`DELETE /groups/{id}`, `POST /directory/deletedItems/{id}/restore`:
/// `Group.ReadWrite.All`).
pub const ROLES: [&str; 2] = ["TeamSettings.ReadWrite.All", "Group.ReadWrite.All"];

/// Who decided, on a review GroupMgr acted on by itself (where an owner's or administrator's
/// object id stands otherwise).
pub const WHO: &str = super::no_answer::AUTOMATIC;

/// What one step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AutomaticReport {
    /// Reviews opened for candidates (`open_reviews`).
    pub opened: usize,
    pub archived: usize,
    pub deleted: usize,
    /// Sent, and still being carried out at Microsoft (a team archive is an async operation).
    pub underway: usize,
    /// Due reviews of groups without a team: nothing to archive; left to their owners.
    pub no_team: usize,
    /// Due reviews of teams with no owner, which Teams does not archive ("team: archive": "the
    /// team and group must have an owner"); left to an administrator (see the ownerless
    /// groups).
    pub no_owner: usize,
    /// Refused or failed at Microsoft (a permission missing, say); tried again next sync.
    pub failed: usize,
    /// Used again since their review opened: kept (decided by `automatic`), so a new review
    /// is needed before anything is done to them.
    pub active_again: usize,
    /// Due, but not acted on now: excluded since, the data does not allow judging it, or its
    /// team's archive state was changed by someone else (archived by its owner: not ours to
    /// delete; unarchived: not deleted).
    pub waiting: usize,
    /// Refused before and not due to be tried again yet (`Backoff`).
    pub backing_off: usize,
    /// The day's actions were taken (`maxActionsPerDay`): the rest waits for tomorrow.
    pub capped: bool,
}

/// The job state's record of the groups whose action Graph refused: how often in a row, and
/// when to try again (an hour after the first refusal, twice as long after each next, a week
/// at most). Group ids only, as the rest of the job state.
const BACKOFF_KEY: &str = "lifecycle_automatic_backoff";
const FIRST_WAIT_HOURS: i64 = 1;
const LONGEST_WAIT: TimeDelta = TimeDelta::days(7);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Refused {
    failures: u32,
    next: DateTime<Utc>,
}

impl Refused {
    /// After one more refusal at `now`.
    fn again(previous: Option<&Refused>, now: DateTime<Utc>) -> Self {
        let failures = previous.map_or(0, |p| p.failures).saturating_add(1);
        let wait = TimeDelta::hours(FIRST_WAIT_HOURS << failures.saturating_sub(1).min(16)).min(LONGEST_WAIT);
        Self {
            failures,
            next: now + wait,
        }
    }
}

pub use super::no_answer::Data;

/// Acts on the tenant's due reviews when its policy's execution is `automatic`; `graph` holds
/// GroupMgr's application rights (the actions, the rows and the review items all use it).
///
/// Nothing is done that the data does not still support: each group is judged again as the
/// dry run judges it (its own review aside), and acted on only if it is a candidate now — the
/// data complete and fresh, every counted source available, no counted activity for the
/// threshold, not excluded. A group used again during its review, or whose data is withheld,
/// is left as it is (counted as `waiting`) and judged again by the next sync.
pub async fn run(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    data: &Data<'_>,
    policy: &LifecyclePolicy,
    now: DateTime<Utc>,
) -> anyhow::Result<AutomaticReport> {
    let mut report = AutomaticReport::default();
    if policy.execution != Execution::Automatic {
        return Ok(report);
    }
    let Some(list) = Reviews::find(graph, &data.list.site_id).await? else {
        return Ok(report);
    };
    // A list made by an older version lacks columns the actions write (`NoAnswer`).
    graph
        .add_missing_columns(&list.site, &list.list, &super::reviews::reviews_list().columns)
        .await?;
    let reviews = list.all(graph).await?;
    let due = no_answer::due(&reviews, policy, now);
    if due.is_empty() {
        // Nothing calls for an action: what was refused before is forgotten.
        if crate::jobs::state::load_doc::<serde_json::Value>(state, tenant, BACKOFF_KEY)
            .await?
            .is_some()
        {
            state.delete(tenant, BACKOFF_KEY).await?;
        }
        return Ok(report);
    }
    let judged = no_answer::read_and_judge(graph, state, tenant, data, policy, &reviews, &due, now).await?;
    let decider = Decider {
        acting: graph,
        site: graph,
        reviews: &list,
        state,
        tenant: *tenant,
        now,
        max_actions_per_day: policy.max_actions_per_day,
        who: WHO.to_string(),
        app_only: true,
        for_no_answer: true,
        seal,
    };
    let (mut refused, refused_version) =
        match crate::jobs::state::load_doc::<std::collections::BTreeMap<String, Refused>>(state, tenant, BACKOFF_KEY)
            .await?
        {
            Some((r, v)) => (r, Some(v)),
            None => (Default::default(), None),
        };
    let before = refused.clone();
    for (review, decision) in &due {
        let group = review.group_id.as_str();
        // A failure waits its turn, an action of ours whose outcome was unknown too (asked
        // again later, not every sync).
        if refused.get(group).is_some_and(|r| r.next > now) {
            report.backing_off += 1;
            continue;
        }
        let outcome = match no_answer::carry_out(&decider, review, *decision, &judged).await {
            // Alive again: the review ends, kept; a new one is opened if it goes quiet again.
            Step::Kept(Ok(_)) => {
                report.active_again += 1;
                continue;
            }
            Step::Kept(Err(e)) => {
                tracing::warn!(event = "lifecycle_automatic_failed", tenant_id = %tenant, group_id = %group, error = %e);
                continue;
            }
            Step::NotActed(Verdict::NoTeam) => {
                report.no_team += 1;
                tracing::info!(event = "lifecycle_automatic_skipped", tenant_id = %tenant, group_id = %group, reason = "no team to archive");
                continue;
            }
            Step::NotActed(Verdict::NoOwner) => {
                report.no_owner += 1;
                tracing::info!(event = "lifecycle_automatic_skipped", tenant_id = %tenant, group_id = %group, reason = "no owner: Teams archives only a team with an owner");
                continue;
            }
            Step::NotActed(_) | Step::TeamChanged => {
                report.waiting += 1;
                continue;
            }
            Step::Unreadable(e) => {
                report.failed += 1;
                tracing::warn!(event = "lifecycle_automatic_failed", tenant_id = %tenant, group_id = %group, error = %e);
                continue;
            }
            Step::Acted(outcome) => outcome,
        };
        match &outcome {
            // Refused or failed at Microsoft (but for a missing permission, which stops the
            // step), or a group with no team to archive: asked again later.
            Err(DecideError::Graph(g)) if g.status() != Some(403) => {
                let next = Refused::again(refused.get(group), now);
                refused.insert(group.to_string(), next);
            }
            Err(DecideError::NoTeam | DecideError::Failed(_)) => {
                let next = Refused::again(refused.get(group), now);
                refused.insert(group.to_string(), next);
            }
            Ok(_) => {
                refused.remove(group);
            }
            Err(_) => {}
        }
        match outcome {
            Ok(d) if !d.done => report.underway += 1,
            Ok(d) if d.newly_done && *decision == Decision::Archive => report.archived += 1,
            Ok(d) if d.newly_done && *decision == Decision::Delete => report.deleted += 1,
            Ok(_) => {}
            Err(DecideError::NoTeam) => {
                report.no_team += 1;
                tracing::info!(event = "lifecycle_automatic_skipped", tenant_id = %tenant, group_id = %group, reason = "no team to archive");
            }
            Err(DecideError::CapReached(_)) => {
                report.capped = true;
                break;
            }
            // Decided meanwhile by an owner or administrator, or changed: theirs stands.
            Err(DecideError::Changed | DecideError::NotApplicable(_) | DecideError::OtherActionInProgress(_)) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(event = "lifecycle_automatic_failed", tenant_id = %tenant, group_id = %group, error = %e);
                // A permission missing (revoked since the policy was set) refuses the others
                // too: they wait for the next sync rather than each being refused.
                if matches!(&e, DecideError::Graph(g) if g.status() == Some(403)) {
                    break;
                }
            }
        }
    }
    // Forgotten once their review no longer calls for an action (decided, excluded).
    refused.retain(|g, _| due.iter().any(|(r, _)| r.group_id == *g));
    if refused != before {
        let saved = crate::jobs::state::save_doc(state, tenant, BACKOFF_KEY, &refused, refused_version.as_ref()).await;
        // Another sync saved it meanwhile: its record stands; this one's waits are redone.
        if let Err(e) = saved
            && !matches!(e, crate::jobs::state::StateError::Conflict)
        {
            return Err(e.into());
        }
    }
    Ok(report)
}

/// `automatic` execution opens the reviews itself: each sync, the dry run's candidates with no
/// review get one, longest inactive first, at most `maxActionsPerDay` opened a day (reviews
/// lead to actions, which the cap paces; opening more would only announce reviews that wait,
/// and switching the policy on must not tell every owner at once). Nothing is opened while the
/// dry run withholds its candidates (data stale or incomplete, a counted source unavailable).
/// Returns how many were opened.
pub async fn open_reviews(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    data: &Data<'_>,
    policy: &LifecyclePolicy,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    if policy.execution != Execution::Automatic {
        return Ok(0);
    }
    let list = Reviews::ensure(graph, &data.list.site_id).await?;
    let reviews = list.all(graph).await?;
    let today = crate::activity::days::midnight(now.date_naive());
    let opened_today = reviews.iter().filter(|r| r.opened_at >= today).count();
    let room = (policy.max_actions_per_day as usize).saturating_sub(opened_today);
    if room == 0 {
        return Ok(0);
    }
    let data_state = facts::data_state(state, tenant, data.teams_report_offered, data.audit_feed).await?;
    let rows = customer_list::all_rows(graph, data.list).await?;
    let groups = facts::of_rows(rows.values().map(|r| &r.row), &reviews, |_| false);
    let Ok(mut candidates) = evaluate::candidates(policy, &data_state, &groups, now) else {
        return Ok(0);
    };
    candidates.sort_by(|a, b| {
        a.inactive_since
            .cmp(&b.inactive_since)
            .then_with(|| a.group_id.cmp(&b.group_id))
    });
    let due = now + TimeDelta::days(i64::from(policy.review_window_days));
    let mut opened = 0;
    for c in candidates.iter().take(room) {
        let id = c.group_id.to_string();
        let name = rows.get(&id).map(|r| r.row.name.clone()).unwrap_or_default();
        let review = Review::open(id, name, evaluate::reason_of(c, data_state.complete_until), now, due);
        match super::due::open_review(graph, &list, state, seal, tenant, review, now).await {
            Ok(_) => opened += 1,
            // Opened meanwhile by an administrator or another sync: theirs stands.
            Err(super::reviews::WriteError::Changed | super::reviews::WriteError::Exists) => {}
            Err(super::reviews::WriteError::Graph(e)) => return Err(e.into()),
        }
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn t(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + day * 86_400, 0).unwrap()
    }

    #[test]
    fn a_refused_action_waits_twice_as_long_each_time_and_a_week_at_most() {
        let now = t(10);
        let waits: Vec<i64> = (0..12)
            .scan(None, |prev: &mut Option<Refused>, _| {
                let next = Refused::again(prev.as_ref(), now);
                *prev = Some(next.clone());
                Some((next.next - now).num_hours())
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 168, 168, 168, 168]);
        let huge = Refused {
            failures: u32::MAX,
            next: now,
        };
        assert_eq!(Refused::again(Some(&huge), now).next, now + LONGEST_WAIT);
    }
}
