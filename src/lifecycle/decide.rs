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
use crate::domain::TenantId;
use crate::jobs::state::{StateError, TenantState};
use crate::microsoft::graph::{Graph, GraphError, TeamArchival};

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
        review.action_state = Some(ActionState::Intended);
        review.action_at = Some(self.whole_seconds());
        review.action_done_at = None;
        review.operation = None;
        // Recorded before anything is sent; if another request got there first, it acts.
        self.reviews.update(self.site, &mut review).await?;
        tracing::info!(event = "lifecycle_action_intended", tenant_id = %self.tenant, group_id = %group, action = action_name(action));
        self.perform(group, review).await
    }

    /// Sends the intended action, then records it as done.
    async fn perform(&self, group: &str, mut review: Review) -> Result<Decided, DecideError> {
        let Some(action) = review.action else {
            return Ok(Decided {
                review,
                done: true,
                newly_done: false,
            });
        };
        let sent = match action {
            Action::Archive => self
                .acting
                .set_team_archived(
                    group,
                    TeamArchival::Archive {
                        read_only_for_members: true,
                    },
                )
                .await
                .map(Some),
            Action::Delete => match self.acting.delete_group_once(group).await {
                // Gone already: what was intended is so.
                Err(e) if e.is_not_found() => Ok(None),
                other => other.map(|()| None),
            },
            Action::Restore => self.restore(group).await,
        };
        match sent {
            Ok(operation) => {
                if operation.is_some() {
                    review.operation = operation;
                }
                self.done(group, review).await
            }
            // It may have happened: the intent stays, and the next decision asks Microsoft.
            Err(e) if outcome_unknown(&e) => Err(e.into()),
            // Refused: nothing happened, so nothing is intended any more.
            Err(e) => {
                review.action = None;
                review.action_state = None;
                review.action_at = None;
                if let Err(also) = self.reviews.update(self.site, &mut review).await {
                    tracing::warn!(event = "lifecycle_intent_not_cleared", tenant_id = %self.tenant, group_id = %group, error = %also);
                }
                Err(e.into())
            }
        }
    }

    /// Restores the group if it is deleted, then unarchives its team if it is archived.
    async fn restore(&self, group: &str) -> Result<Option<String>, GraphError> {
        match self.acting.get_group(group).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                self.acting.restore_group(group).await?;
            }
            Err(e) => return Err(e),
        }
        match self.acting.team_is_archived(group).await? {
            Some(true) => self
                .acting
                .set_team_archived(group, TeamArchival::Unarchive)
                .await
                .map(Some),
            _ => Ok(None),
        }
    }

    async fn done(&self, group: &str, mut review: Review) -> Result<Decided, DecideError> {
        let Some(action) = review.action else {
            return Ok(Decided {
                review,
                done: true,
                newly_done: false,
            });
        };
        review.action_state = Some(ActionState::Done);
        review.action_done_at = Some(self.whole_seconds());
        review.state = match action {
            Action::Archive => ReviewState::Archived,
            Action::Delete => ReviewState::Deleted,
            Action::Restore => ReviewState::Restored,
        };
        self.reviews.update(self.site, &mut review).await?;
        tracing::info!(event = "lifecycle_action_done", tenant_id = %self.tenant, group_id = %group, action = action_name(action));
        Ok(Decided {
            review,
            done: true,
            newly_done: true,
        })
    }

    /// An action intended but not recorded as done: did it happen?
    async fn resume(&self, group: &str, review: Review) -> Result<Decided, DecideError> {
        let Some(action) = review.action else {
            return Ok(Decided {
                review,
                done: true,
                newly_done: false,
            });
        };
        let recent = review.action_at.is_some_and(|t| self.now - t < RESEND_AFTER);
        match action {
            Action::Archive => match self.acting.team_is_archived(group).await? {
                Some(true) => self.done(group, review).await,
                // Sent a moment ago: Teams may still be archiving. Not sent twice.
                Some(false) if recent => Ok(Decided {
                    review,
                    done: false,
                    newly_done: false,
                }),
                Some(false) => self.perform(group, review).await,
                None => Err(DecideError::NoTeam),
            },
            Action::Delete => match self.acting.get_group(group).await {
                Err(e) if e.is_not_found() => self.done(group, review).await,
                Err(e) => Err(e.into()),
                // Still there: the delete did not happen (it is synchronous).
                Ok(_) => self.perform(group, review).await,
            },
            Action::Restore => match self.acting.get_group(group).await {
                Err(e) if e.is_not_found() => self.perform(group, review).await,
                Err(e) => Err(e.into()),
                Ok(_) => match self.acting.team_is_archived(group).await? {
                    Some(true) if recent => Ok(Decided {
                        review,
                        done: false,
                        newly_done: false,
                    }),
                    Some(true) => self.perform(group, review).await,
                    _ => self.done(group, review).await,
                },
            },
        }
    }
}
