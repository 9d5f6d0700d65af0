//! Deciding a review, and the action it takes (issue 16, items 4 and 5). The action runs with
//! the rights of whoever decided (`manual` execution: on behalf of that owner or
//! administrator, no application permission); the review item is written with GroupMgr's
//! grant on its own site.
//!
//! Crash-safe and idempotent: the action is recorded as intended (conditional on the item's
//! version) before it is sent, and as done after. A decision that finds an action intended
//! but not done asks Microsoft first — is the team archived, is the group gone — and only
//! sends again what did not happen; an archive or unarchive sent recently is given time to
//! complete (Teams runs it as an async operation) rather than sent twice.

use chrono::{DateTime, TimeDelta, Utc};

use super::cap;
use super::reviews::{Action, ActionState, Review, ReviewState, Reviews, WriteError};
use super::webhooks;
use crate::domain::TenantId;
use crate::jobs::state::{StateError, TenantState};
use crate::microsoft::graph::{Graph, GraphError, OperationStatus, TeamArchival};

/// How long an archive or unarchive may take before an intended one that has not shown
/// its effect is sent again. Teams archives in seconds to minutes.
pub const RESEND_AFTER: TimeDelta = TimeDelta::minutes(15);

/// What an owner or administrator decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    /// Keep the group: an attestation that holds it out of review for the policy's period.
    Keep,
    /// Archive its team.
    Archive,
    /// Delete it (soft: restorable for 30 days).
    Delete,
    /// Bring back an archived or deleted group (restore, then unarchive its team).
    Restore,
}

/// Why a decision was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("the group has no review")]
    NoReview,
    #[error("the review is {0}; this decision does not apply to it")]
    NotApplicable(&'static str),
    #[error("another action ({0}) is in progress for this group")]
    OtherActionInProgress(&'static str),
    #[error("the group has no team to archive")]
    NoTeam,
    #[error("the tenant's {0} lifecycle actions for today are taken (maxActionsPerDay)")]
    CapReached(u32),
    #[error("the review changed meanwhile; read it again")]
    Changed,
    /// Microsoft ran the action and it failed (a Teams operation ended `failed`): nothing
    /// happened, nothing is intended any more.
    #[error("{0}; nothing was done, and deciding again tries again")]
    Failed(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<WriteError> for DecideError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Changed | WriteError::Exists => DecideError::Changed,
            WriteError::Graph(g) => DecideError::Graph(g),
        }
    }
}

/// The outcome: the review as it now stands, and whether its action is done (`false`: it
/// was sent and is still in progress at Microsoft).
#[derive(Debug)]
pub struct Decided {
    pub review: Review,
    pub done: bool,
    /// This decision recorded its action as done (a repeat that found it done already did
    /// not).
    pub newly_done: bool,
}

/// Everything a decision needs.
pub struct Decider<'a> {
    /// The decider's own rights: the action runs with them.
    pub acting: &'a Graph<'a>,
    /// GroupMgr's grant on its site: the review item is written with it.
    pub site: &'a Graph<'a>,
    pub reviews: &'a Reviews,
    pub state: &'a dyn TenantState,
    pub tenant: TenantId,
    pub now: DateTime<Utc>,
    pub max_actions_per_day: u32,
    /// The decider's object id.
    pub who: String,
    /// Whether `acting` is GroupMgr itself (application permissions): Teams then archives
    /// without making the site read-only for members ("team: archive":
    /// `shouldSetSpoSiteReadOnlyForMembers` is not supported in the application context).
    pub app_only: bool,
    /// The decision carries out the policy's `onNoAnswer` (the owners did not answer by the
    /// due date), not an owner's choice: its action is marked so (`Review::no_answer`).
    pub for_no_answer: bool,
    /// Seals the events the decision queues (the tenant's `PseudonymKey::outbox_seal`).
    pub seal: &'a crate::crypto::PeopleSeal,
}

fn state_name(s: ReviewState) -> &'static str {
    match s {
        ReviewState::Pending => "pending",
        ReviewState::Kept => "kept",
        ReviewState::Archived => "archived",
        ReviewState::Deleted => "deleted",
        ReviewState::Restored => "restored",
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Archive => "archive",
        Action::Delete => "delete",
        Action::Restore => "restore",
    }
}

/// Whether a Graph failure leaves the action's outcome unknown (it may have happened).
fn outcome_unknown(e: &GraphError) -> bool {
    matches!(e, GraphError::Transport(_) | GraphError::Timeout) || e.status().is_some_and(|s| s >= 500)
}

impl Decider<'_> {
    fn whole_seconds(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.now.timestamp(), 0).unwrap_or(self.now)
    }

    pub async fn decide(&self, group: &str, decision: Decision) -> Result<Decided, DecideError> {
        let mut review = self.reviews.get(self.site, group).await?.ok_or(DecideError::NoReview)?;
        let wanted = match decision {
            Decision::Keep => None,
            Decision::Archive => Some(Action::Archive),
            Decision::Delete => Some(Action::Delete),
            Decision::Restore => Some(Action::Restore),
        };
        // An action recorded as intended and not done: finish that one (the same decision
        // repeated), or refuse another.
        if review.action_state == Some(ActionState::Intended)
            && let Some(intended) = review.action
        {
            if wanted != Some(intended) {
                return Err(DecideError::OtherActionInProgress(action_name(intended)));
            }
            return self.resume(group, review).await;
        }
        let applies = match decision {
            Decision::Keep | Decision::Archive => review.state == ReviewState::Pending,
            Decision::Delete => matches!(review.state, ReviewState::Pending | ReviewState::Archived),
            Decision::Restore => matches!(review.state, ReviewState::Archived | ReviewState::Deleted),
        };
        if !applies {
            return Err(DecideError::NotApplicable(state_name(review.state)));
        }
        review.decided_by = Some(self.who.clone());
        review.decided_at = Some(self.whole_seconds());
        let Some(action) = wanted else {
            review.state = ReviewState::Kept;
            self.reviews.update(self.site, &mut review).await?;
            tracing::info!(event = "lifecycle_review_decided", tenant_id = %self.tenant, group_id = %group, decision = "keep");
            return Ok(Decided {
                review,
                done: true,
                newly_done: false,
            });
        };
        if action == Action::Archive && self.acting.team_is_archived(group).await?.is_none() {
            return Err(DecideError::NoTeam);
        }
        // Archive and delete take one of the day's places; bringing a group back does not.
        if action != Action::Restore
            && !cap::reserve(self.state, &self.tenant, self.now, self.max_actions_per_day).await?
        {
            return Err(DecideError::CapReached(self.max_actions_per_day));
        }
        review.action = Some(action);
        // The intent's basis: for want of an answer, or someone's own choice; the done
        // action's mark is kept aside until this one is done (a review `automatic` archived
        // before the mark existed counts as marked).
        review.prior_no_answer = review.no_answer
            || (review.state != ReviewState::Pending
                && review.decided_by.as_deref() == Some(super::no_answer::AUTOMATIC));
        review.no_answer = self.for_no_answer;
        review.action_state = Some(ActionState::Intended);
        review.action_at = Some(self.whole_seconds());
        // `action_done_at` keeps the previous action's time until this one is done (an
        // archive's, which a deletion after `deleteAfterDays` counts from, must survive a
        // deletion that is refused).
        review.operation = None;
        // Recorded before anything is sent; if another request got there first, it acts.
        if let Err(e) = self.reviews.update(self.site, &mut review).await {
            // Nothing was sent: the place goes back.
            if action != Action::Restore {
                self.release_place().await;
            }
            return Err(e.into());
        }
        tracing::info!(event = "lifecycle_action_intended", tenant_id = %self.tenant, group_id = %group, action = action_name(action));
        self.perform(group, review).await
    }

    /// Sends the intended action. An archive or unarchive is an async operation at Teams: it
    /// stays intended (its operation's location recorded) until the team shows it; a delete
    /// or a restore is done when Graph answers.
    async fn perform(&self, group: &str, mut review: Review) -> Result<Decided, DecideError> {
        let Some(action) = review.action else {
            return Ok(Decided::unchanged(review, true));
        };
        let sent = match action {
            Action::Archive => self
                .acting
                .set_team_archived(
                    group,
                    TeamArchival::Archive {
                        read_only_for_members: !self.app_only,
                    },
                )
                .await
                .map(Sent::Operation),
            Action::Delete => match self.acting.delete_group_once(group).await {
                // Gone already: what was intended is so.
                Err(e) if e.is_not_found() => Ok(Sent::Done),
                other => other.map(|()| Sent::Done),
            },
            Action::Restore => self.restore(group).await,
        };
        match sent {
            Ok(Sent::Done) => self.done(group, review).await,
            Ok(Sent::Operation(location)) => {
                review.operation = Some(location);
                self.reviews.update(self.site, &mut review).await?;
                Ok(Decided::unchanged(review, false))
            }
            Ok(Sent::Pending) => Ok(Decided::unchanged(review, false)),
            // It may have happened: the intent stays, and the next decision asks Microsoft.
            Err(e) if outcome_unknown(&e) => Err(e.into()),
            // Refused: nothing happened, so nothing is intended any more, and the day's place
            // it took is given back.
            Err(e) => {
                self.give_up(group, &mut review, action).await;
                Err(e.into())
            }
        }
    }

    /// An action that did not happen: nothing is intended any more, and the place it took
    /// today is given back — only once the intent is cleared (an intent still recorded would
    /// be sent again today without taking one).
    async fn give_up(&self, group: &str, review: &mut Review, action: Action) {
        let intended_today = review
            .action_at
            .is_some_and(|t| t.date_naive() == self.now.date_naive());
        if self.clear_intent(group, review).await && intended_today && action != Action::Restore {
            self.release_place().await;
        }
    }

    /// Gives back a place of today's cap (best effort: kept, it only makes the day stricter).
    async fn release_place(&self) {
        if let Err(e) = cap::release(self.state, &self.tenant, self.now).await {
            tracing::warn!(event = "lifecycle_cap_not_released", tenant_id = %self.tenant, error = %e);
        }
    }

    /// Clears the intent, putting back the action the review's state records as done (an
    /// archived review's archive, with its time and its mark); `false` when the review could
    /// not be written.
    async fn clear_intent(&self, group: &str, review: &mut Review) -> bool {
        review.action = match review.state {
            ReviewState::Pending | ReviewState::Kept => None,
            ReviewState::Archived => Some(Action::Archive),
            ReviewState::Deleted => Some(Action::Delete),
            ReviewState::Restored => Some(Action::Restore),
        };
        review.action_state = review.action.map(|_| ActionState::Done);
        review.no_answer = review.action.is_some() && review.prior_no_answer;
        review.prior_no_answer = false;
        if review.action.is_none() {
            review.action_done_at = None;
        }
        review.action_at = None;
        review.operation = None;
        match self.reviews.update(self.site, review).await {
            Ok(()) => true,
            Err(also) => {
                tracing::warn!(event = "lifecycle_intent_not_cleared", tenant_id = %self.tenant, group_id = %group, error = %also);
                false
            }
        }
    }

    /// Restores the group if it is deleted, then unarchives its team if it is archived.
    async fn restore(&self, group: &str) -> Result<Sent, GraphError> {
        let g = match self.acting.get_group(group).await {
            Ok(g) => g,
            Err(e) if e.is_not_found() => match self.acting.restore_group(group).await {
                Ok(g) => g,
                // A restore whose first answer was lost is retried, and the retry finds
                // nothing left to restore: is the group back?
                Err(e) if e.is_not_found() => self.acting.get_group(group).await?,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        match self.acting.team_is_archived(group).await? {
            Some(true) => self
                .acting
                .set_team_archived(group, TeamArchival::Unarchive)
                .await
                .map(Sent::Operation),
            // A team comes back a while after its group: not there yet is not "no team".
            None if g.teams_enabled() => Ok(Sent::Pending),
            _ => Ok(Sent::Done),
        }
    }

    /// Records the action as done; its event is queued first, under an id of the action
    /// (so a repeat after a lost write queues the same event, never a second one).
    async fn done(&self, group: &str, mut review: Review) -> Result<Decided, DecideError> {
        let Some(action) = review.action else {
            return Ok(Decided::unchanged(review, true));
        };
        review.action_state = Some(ActionState::Done);
        review.action_done_at = Some(self.whole_seconds());
        review.prior_no_answer = false;
        review.state = match action {
            Action::Archive => ReviewState::Archived,
            Action::Delete => ReviewState::Deleted,
            Action::Restore => ReviewState::Restored,
        };
        let (id, kind, data) = action_event(&review, action);
        if let Err(e) = webhooks::enqueue_with_id(self.state, self.seal, &self.tenant, &id, kind, data, self.now).await
        {
            tracing::warn!(event = "webhook_not_queued", tenant_id = %self.tenant, webhook_type = kind, error = %e);
        }
        self.reviews.update(self.site, &mut review).await?;
        tracing::info!(event = "lifecycle_action_done", tenant_id = %self.tenant, group_id = %group, action = action_name(action));
        Ok(Decided {
            review,
            done: true,
            newly_done: true,
        })
    }

    /// An action intended but not recorded as done: did it happen? What did is recorded; what
    /// is under way is left to finish; what did not happen is sent again — once, by whoever
    /// claims it (a conditional write of a new intent time), and only after `RESEND_AFTER`,
    /// so that a request still in flight is never doubled.
    async fn resume(&self, group: &str, mut review: Review) -> Result<Decided, DecideError> {
        let Some(action) = review.action else {
            return Ok(Decided::unchanged(review, true));
        };
        match self.effect(group, &review, action).await? {
            Effect::Happened => return self.done(group, review).await,
            Effect::Failed(why) => {
                self.give_up(group, &mut review, action).await;
                return Err(DecideError::Failed(why));
            }
            Effect::Underway => return Ok(Decided::unchanged(review, false)),
            Effect::NotYet => {}
        }
        if review.action_at.is_some_and(|t| self.now - t < RESEND_AFTER) {
            return Ok(Decided::unchanged(review, false));
        }
        // Sent again on another day: it takes one of that day's places (on the same day it
        // still holds the one it took).
        let same_day = review
            .action_at
            .is_some_and(|t| t.date_naive() == self.now.date_naive());
        let reserve = action != Action::Restore && !same_day;
        if reserve && !cap::reserve(self.state, &self.tenant, self.now, self.max_actions_per_day).await? {
            return Err(DecideError::CapReached(self.max_actions_per_day));
        }
        review.action_at = Some(self.whole_seconds());
        review.operation = None;
        // Claimed by a conditional write; one that lost sends nothing and keeps no place.
        if let Err(e) = self.reviews.update(self.site, &mut review).await {
            if reserve {
                self.release_place().await;
            }
            return Err(e.into());
        }
        self.perform(group, review).await
    }

    /// Records an intended action as done if Microsoft shows it happened; never sends
    /// anything (the sync does this with GroupMgr's own read-only rights, so that an action
    /// whose requester went away is still recorded and announced). `true`: recorded.
    pub async fn settle(&self, review: Review) -> Result<bool, DecideError> {
        let (Some(action), Some(ActionState::Intended)) = (review.action, review.action_state) else {
            return Ok(false);
        };
        let group = review.group_id.clone();
        match self.effect(&group, &review, action).await? {
            Effect::Happened => Ok(self.done(&group, review).await?.newly_done),
            _ => Ok(false),
        }
    }

    /// What Microsoft shows of an intended action.
    async fn effect(&self, group: &str, review: &Review, action: Action) -> Result<Effect, DecideError> {
        let operation = || async {
            let Some(location) = &review.operation else {
                return Ok(Effect::NotYet);
            };
            let op = self.acting.teams_operation(location).await?;
            Ok::<_, DecideError>(match op.status {
                OperationStatus::Failed | OperationStatus::Invalid => Effect::Failed(format!(
                    "Teams could not carry out the {}: {}",
                    action_name(action),
                    op.error
                        .and_then(|e| e.message)
                        .unwrap_or_else(|| "no reason given".into())
                )),
                // Succeeded but not yet shown on the team, or still running.
                _ => Effect::Underway,
            })
        };
        Ok(match action {
            Action::Archive => match self.acting.team_is_archived(group).await? {
                Some(true) => Effect::Happened,
                Some(false) => operation().await?,
                None => Effect::Failed("the group has no team any more".into()),
            },
            Action::Delete => match self.acting.get_group(group).await {
                Err(e) if e.is_not_found() => Effect::Happened,
                Err(e) => return Err(e.into()),
                Ok(_) => Effect::NotYet,
            },
            Action::Restore => match self.acting.get_group(group).await {
                Err(e) if e.is_not_found() => Effect::NotYet,
                Err(e) => return Err(e.into()),
                Ok(g) => match self.acting.team_is_archived(group).await? {
                    Some(false) => Effect::Happened,
                    None if !g.teams_enabled() => Effect::Happened,
                    None => Effect::Underway,
                    Some(true) => match operation().await? {
                        // Restored, the unarchive not sent (or refused): send it.
                        Effect::NotYet | Effect::Failed(_) => Effect::NotYet,
                        other => other,
                    },
                },
            },
        })
    }
}

/// What sending an action did.
enum Sent {
    /// Done (Graph answered).
    Done,
    /// An async operation was started at this location.
    Operation(String),
    /// Nothing could be sent yet (a restored group's team is not back yet).
    Pending,
}

/// What Microsoft shows of an intended action.
enum Effect {
    Happened,
    /// Sent and still being carried out.
    Underway,
    /// Failed at Microsoft: nothing happened.
    Failed(String),
    /// No sign of it.
    NotYet,
}

impl Decided {
    fn unchanged(review: Review, done: bool) -> Self {
        Decided {
            review,
            done,
            newly_done: false,
        }
    }
}

/// The event of a done action: an id made of the action, the group and when it was
/// intended, so the same action's event is the same event however often it is queued.
pub fn action_event(review: &Review, action: Action) -> (String, &'static str, serde_json::Value) {
    let kind = match action {
        Action::Archive => "group.archived",
        Action::Delete => "group.deleted",
        Action::Restore => "group.restored",
    };
    let at = review.action_at.map_or(0, |t| t.timestamp());
    let id = format!("msg_{}_{}_{at}", action_name(action), review.group_id.replace('-', ""));
    let data = serde_json::json!({
        "groupId": review.group_id,
        "displayName": review.display_name,
        "state": review.state,
        "action": action,
        "decidedBy": review.decided_by,
        "decidedAt": review.decided_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    });
    (id, kind, data)
}
