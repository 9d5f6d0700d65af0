//! What the policy's `onNoAnswer` calls for (issue 16, items 2 and 5), whoever carries it out:
//! an administrator confirming a batch (`manual` execution: `GET`/`POST
//! /api/lifecycle/actions`, on behalf of that administrator) or each sync (`automatic`
//! execution, with GroupMgr's application permissions: `automatic.rs`).
//!
//! A pending review past its due date calls for archiving the group's team; a team archived
//! so (`Review::no_answer`), `deleteAfterDays` later, for deleting the group. An owner who
//! chose to archive chose that, not a deletion. Before anything is done the group is judged
//! again as the dry run judges it: one used again since its review opened is kept instead
//! (the review ends; a new one opens if it goes quiet again), one the data no longer shows
//! as inactive — or whose data is withheld — waits.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};

use super::decide::{DecideError, Decided, Decider, Decision};
use super::evaluate::DataState;
use super::policy::{LifecyclePolicy, NoAnswer};
use super::reviews::{Action, ActionState, Review, ReviewState};
use super::{evaluate, facts};
use crate::customer_list::{self, ListLocation, StoredRow};
use crate::domain::TenantId;
use crate::jobs::state::TenantState;
use crate::microsoft::graph::{Graph, GraphError};

/// Who decided, on a review GroupMgr acted on by itself (`automatic` execution), where an
/// owner's or administrator's object id stands otherwise.
pub const AUTOMATIC: &str = "automatic";

/// The action a review calls for now under the policy's `onNoAnswer`, if any.
pub fn due_action(review: &Review, policy: &LifecyclePolicy, now: DateTime<Utc>) -> Option<Decision> {
    let NoAnswer::Archive { delete_after_days } = policy.on_no_answer else {
        return None;
    };
    // Reviews decided by `automatic` before the mark existed count as marked.
    let for_no_answer = review.no_answer || review.decided_by.as_deref() == Some(AUTOMATIC);
    if review.action_state == Some(ActionState::Intended) {
        // An action for want of an answer under way (sent, its answer lost): finished by
        // whoever carries out the policy next. Anyone's own choice is theirs to finish, and a
        // restore is never for want of an answer.
        return match review.action? {
            Action::Archive if for_no_answer => Some(Decision::Archive),
            Action::Delete if for_no_answer => Some(Decision::Delete),
            _ => None,
        };
    }
    match review.state {
        ReviewState::Pending if review.due_at <= now => Some(Decision::Archive),
        ReviewState::Archived if for_no_answer => {
            let days = delete_after_days?;
            let archived = review.action_done_at?;
            (archived + TimeDelta::days(i64::from(days)) <= now).then_some(Decision::Delete)
        }
        _ => None,
    }
}

/// Since when the review's action has been due (`None`: not due).
pub fn due_since(review: &Review, policy: &LifecyclePolicy) -> Option<DateTime<Utc>> {
    match (review.state, policy.on_no_answer) {
        (
            ReviewState::Archived,
            NoAnswer::Archive {
                delete_after_days: Some(days),
            },
        ) => review.action_done_at.map(|t| t + TimeDelta::days(i64::from(days))),
        _ => Some(review.due_at),
    }
}

/// The reviews that call for an action now, longest overdue first (so that a cap spread over
/// days serves them in order).
pub fn due(reviews: &[Review], policy: &LifecyclePolicy, now: DateTime<Utc>) -> Vec<(Review, Decision)> {
    let mut due: Vec<(Review, Decision)> = reviews
        .iter()
        .filter_map(|r| Some((r.clone(), due_action(r, policy, now)?)))
        .collect();
    due.sort_by(|(a, _), (b, _)| {
        due_since(a, policy)
            .cmp(&due_since(b, policy))
            .then_with(|| a.group_id.cmp(&b.group_id))
    });
    due
}

/// Where the data stands (the dry run's inputs).
pub struct Data<'a> {
    pub list: &'a ListLocation,
    pub teams_report_offered: bool,
    pub audit_feed: bool,
}

/// The groups of due reviews as the data shows them now.
#[derive(Debug, Default)]
pub struct Judged {
    /// Those the dry run would name as candidates, were they not in review.
    pub still: HashSet<String>,
    /// Those with counted activity after their review opened.
    pub active_again: HashSet<String>,
    /// Those whose last sync found no owner.
    pub ownerless: HashSet<String>,
    /// Those whose last sync found no team: nothing to archive.
    pub teamless: HashSet<String>,
}

/// Judges the groups of `due` as the dry run would, were they not in review (every other
/// review counts as it does in the dry run): from the data's state and the customer's list.
pub fn judge(
    policy: &LifecyclePolicy,
    data_state: &DataState,
    rows: &HashMap<String, StoredRow>,
    reviews: &[Review],
    due: &[(Review, Decision)],
    now: DateTime<Utc>,
) -> Judged {
    let judged: HashSet<&str> = due.iter().map(|(r, _)| r.group_id.as_str()).collect();
    let of_due = || rows.values().filter(|r| judged.contains(r.row.group_id.as_str()));
    let ownerless = of_due()
        .filter(|r| r.row.owner_ids.as_ref().is_some_and(Vec::is_empty))
        .map(|r| r.row.group_id.clone())
        .collect();
    let teamless = of_due()
        .filter(|r| !r.row.teams_enabled)
        .map(|r| r.row.group_id.clone())
        .collect();
    let groups = facts::of_rows(rows.values().map(|r| &r.row), reviews, |id| judged.contains(id));
    let opened: HashMap<&str, DateTime<Utc>> = due.iter().map(|(r, _)| (r.group_id.as_str(), r.opened_at)).collect();
    let active_again = groups
        .iter()
        .filter_map(|f| {
            let id = f.id.to_string();
            let opened = *opened.get(id.as_str())?;
            let last = policy.signals.iter().filter_map(|s| f.last(*s)).max()?;
            (last > opened).then_some(id)
        })
        .collect();
    let still = match evaluate::candidates(policy, data_state, &groups, now) {
        Ok(found) => found
            .into_iter()
            .map(|c| c.group_id.to_string())
            .filter(|g| judged.contains(g.as_str()))
            .collect(),
        // Withheld (stale data, a source unavailable, too little history): nothing moves.
        Err(_) => HashSet::new(),
    };
    Judged {
        still,
        active_again,
        ownerless,
        teamless,
    }
}

#[allow(clippy::too_many_arguments)]
/// Reads what `judge` needs — the data's state and the customer's list (with `graph`) — and
/// judges. Nothing is read when nothing is due.
pub async fn read_and_judge(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    data: &Data<'_>,
    policy: &LifecyclePolicy,
    reviews: &[Review],
    due: &[(Review, Decision)],
    now: DateTime<Utc>,
) -> Result<Judged, JudgeError> {
    if due.is_empty() {
        return Ok(Judged::default());
    }
    let data_state = facts::data_state(state, tenant, data.teams_report_offered, data.audit_feed).await?;
    let rows = customer_list::all_rows(graph, data.list).await?;
    Ok(judge(policy, &data_state, &rows, reviews, due, now))
}

/// Why the judgement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error(transparent)]
    State(#[from] crate::jobs::state::StateError),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// What the judgement makes of one due review, before Teams is asked anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The action is carried out.
    Act,
    /// Used again since its review opened: the review ends, kept.
    Keep,
    /// Not a candidate of the policy now (excluded since, or the data does not allow judging
    /// it): nothing is done; judged again later.
    Wait,
    /// The group has no team: nothing to archive (left to its owners).
    NoTeam,
    /// Its team has no owner, and Teams archives only a team with an owner ("team: archive":
    /// "the team and group must have an owner"): left to an administrator.
    NoOwner,
}

impl Verdict {
    pub fn of(review: &Review, decision: Decision, judged: &Judged) -> Self {
        let group = review.group_id.as_str();
        // An action already sent is finished whatever the data says now.
        if review.action_state == Some(ActionState::Intended) {
            return Verdict::Act;
        }
        if decision == Decision::Archive && judged.active_again.contains(group) {
            return Verdict::Keep;
        }
        if !judged.still.contains(group) {
            return Verdict::Wait;
        }
        if decision == Decision::Archive && judged.teamless.contains(group) {
            return Verdict::NoTeam;
        }
        if decision == Decision::Archive && judged.ownerless.contains(group) {
            return Verdict::NoOwner;
        }
        Verdict::Act
    }

    /// Why nothing is done, said to an administrator.
    pub fn why_not(self) -> Option<&'static str> {
        match self {
            Verdict::Act | Verdict::Keep => None,
            Verdict::Wait => Some(
                "not a candidate of the policy now (excluded since, or its data does not allow \
                 judging it: see GET /api/lifecycle/candidates)",
            ),
            Verdict::NoTeam => Some("the group has no team to archive"),
            Verdict::NoOwner => Some("its team has no owner, and Teams archives only a team with an owner"),
        }
    }
}

/// What carrying out one due review did.
#[derive(Debug)]
pub enum Step {
    /// Used again: kept (or the keep failed).
    Kept(Result<Decided, DecideError>),
    /// Nothing done: the verdict says why.
    NotActed(Verdict),
    /// Its team's archive state was changed by someone else (archived by its owner: not ours
    /// to claim; unarchived since: not deleted).
    TeamChanged,
    /// Teams could not be asked about the team.
    Unreadable(GraphError),
    /// The action, as the decider carried it out.
    Acted(Result<Decided, DecideError>),
}

/// Carries out one due review with `decider` (whose `acting` rights send the action and read
/// the team), as its verdict says.
pub async fn carry_out(decider: &Decider<'_>, review: &Review, decision: Decision, judged: &Judged) -> Step {
    let group = review.group_id.as_str();
    let verdict = Verdict::of(review, decision, judged);
    match verdict {
        Verdict::Keep => return Step::Kept(decider.decide(group, Decision::Keep).await),
        Verdict::Wait | Verdict::NoTeam | Verdict::NoOwner => return Step::NotActed(verdict),
        Verdict::Act => {}
    }
    if review.action_state != Some(ActionState::Intended) {
        // The team as Teams shows it now: archived by someone else before we acted is theirs
        // (never claimed, so never deleted for want of an answer); a team archived for want
        // of an answer and unarchived since is not deleted.
        let ours = match (decision, decider.acting.team_is_archived(group).await) {
            (_, Err(e)) => return Step::Unreadable(e),
            (Decision::Archive, Ok(Some(true))) => false,
            (Decision::Delete, Ok(a)) => a == Some(true),
            _ => true,
        };
        if !ours {
            return Step::TeamChanged;
        }
    }
    Step::Acted(decider.decide(group, decision).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(delete_after_days: Option<u32>) -> LifecyclePolicy {
        serde_json::from_value(serde_json::json!({
            "inactivityDays": 90, "signals": ["teams"], "reviewWindowDays": 14,
            "onNoAnswer": {"action": "archive", "deleteAfterDays": delete_after_days},
            "maxActionsPerDay": 10
        }))
        .unwrap()
    }

    fn t(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + day * 86_400, 0).unwrap()
    }

    #[test]
    fn what_a_review_calls_for() {
        let p = policy(Some(30));
        let review = Review::open("g".into(), "G".into(), "r".into(), t(0), t(14));
        assert_eq!(due_action(&review, &p, t(13)), None, "not due yet");
        assert_eq!(due_action(&review, &p, t(14)), Some(Decision::Archive));
        let nothing: LifecyclePolicy = serde_json::from_value(serde_json::json!({
            "inactivityDays": 90, "signals": ["teams"], "reviewWindowDays": 14,
            "onNoAnswer": {"action": "nothing"}, "maxActionsPerDay": 10
        }))
        .unwrap();
        assert_eq!(due_action(&review, &nothing, t(100)), None);

        let mut archived = review.clone();
        archived.state = ReviewState::Archived;
        archived.action = Some(Action::Archive);
        archived.action_state = Some(ActionState::Done);
        archived.action_done_at = Some(t(15));
        // Archived by an owner's choice: never deleted for want of an answer.
        archived.decided_by = Some("5f1c0000-0000-0000-0000-000000000001".into());
        assert_eq!(due_action(&archived, &p, t(100)), None);
        // Archived for want of an answer, confirmed by that administrator: deleted later.
        archived.no_answer = true;
        assert_eq!(due_action(&archived, &p, t(44)), None);
        assert_eq!(due_action(&archived, &p, t(45)), Some(Decision::Delete));
        assert_eq!(due_since(&archived, &p), Some(t(45)));
        assert_eq!(due_action(&archived, &policy(None), t(400)), None, "archive only");
        // By `automatic`, before the mark existed: the same.
        archived.no_answer = false;
        archived.decided_by = Some(AUTOMATIC.into());
        assert_eq!(due_action(&archived, &p, t(45)), Some(Decision::Delete));

        // For want of an answer, intended and not done: finished; an owner's is theirs.
        let mut intended = archived.clone();
        intended.action = Some(Action::Delete);
        intended.action_state = Some(ActionState::Intended);
        assert_eq!(due_action(&intended, &p, t(45)), Some(Decision::Delete));
        intended.decided_by = Some("someone".into());
        assert_eq!(due_action(&intended, &p, t(45)), None);
        intended.no_answer = true;
        assert_eq!(due_action(&intended, &p, t(45)), Some(Decision::Delete));
    }

    #[test]
    fn the_longest_overdue_come_first() {
        let p = policy(Some(10));
        let late = Review::open("b".into(), "B".into(), "r".into(), t(0), t(5));
        let later = Review::open("a".into(), "A".into(), "r".into(), t(0), t(8));
        let mut archived = Review::open("c".into(), "C".into(), "r".into(), t(-40), t(-30));
        archived.state = ReviewState::Archived;
        archived.no_answer = true;
        archived.action = Some(Action::Archive);
        archived.action_state = Some(ActionState::Done);
        archived.action_done_at = Some(t(-4)); // delete due at t(6)
        let order: Vec<(String, Decision)> = due(&[later, archived, late], &p, t(20))
            .into_iter()
            .map(|(r, d)| (r.group_id, d))
            .collect();
        assert_eq!(
            order,
            [
                ("b".to_string(), Decision::Archive),
                ("c".to_string(), Decision::Delete),
                ("a".to_string(), Decision::Archive)
            ]
        );
    }

    #[test]
    fn the_verdict_follows_the_judgement() {
        let review = Review::open("g".into(), "G".into(), "r".into(), t(0), t(14));
        let mut judged = Judged::default();
        assert_eq!(Verdict::of(&review, Decision::Archive, &judged), Verdict::Wait);
        judged.still.insert("g".into());
        assert_eq!(Verdict::of(&review, Decision::Archive, &judged), Verdict::Act);
        judged.ownerless.insert("g".into());
        assert_eq!(Verdict::of(&review, Decision::Archive, &judged), Verdict::NoOwner);
        judged.teamless.insert("g".into());
        assert_eq!(Verdict::of(&review, Decision::Archive, &judged), Verdict::NoTeam);
        assert_eq!(
            Verdict::of(&review, Decision::Delete, &judged),
            Verdict::Act,
            "a delete needs no owner"
        );
        judged.active_again.insert("g".into());
        assert_eq!(Verdict::of(&review, Decision::Archive, &judged), Verdict::Keep);
        let mut sent = review.clone();
        sent.action = Some(Action::Archive);
        sent.action_state = Some(ActionState::Intended);
        assert_eq!(
            Verdict::of(&sent, Decision::Archive, &Judged::default()),
            Verdict::Act,
            "what was sent is finished"
        );
    }
}
