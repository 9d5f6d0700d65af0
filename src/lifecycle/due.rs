//! What each sync of the tenant does for its reviews: records actions that happened but were
//! never recorded as done (their requester went away between sending and recording), and
//! sends `review.due` once for reviews that fell due without an answer (the event's id is
//! derived from the review and its due date, so a step repeated after a crash queues the
//! same event again, never a second one under another id), recording on the item that it did.

use chrono::{DateTime, TimeDelta, Utc};

use super::decide::Decider;
use super::reviews::{ActionState, Review, ReviewState, Reviews};
use super::webhooks;
use crate::crypto::PeopleSeal;
use crate::domain::TenantId;
use crate::jobs::state::TenantState;
use crate::microsoft::graph::Graph;

/// How long after its review opened a `review.created` not recorded as queued is still sent by
/// a sync (the opening request stopped between writing the review and queueing its event).
/// Reviews older than that — opened before GroupMgr recorded it — are not announced late.
pub const CREATED_CATCH_UP: TimeDelta = TimeDelta::days(1);

/// The `review.created` event of a review: an id made of the group and when the review
/// opened, so the event queued by the request and the one a sync queues after it stopped are
/// one event; and its data.
pub fn created_event(review: &Review) -> (String, serde_json::Value) {
    let mut data = event_data(review);
    data["decidedBy"] = serde_json::json!(review.decided_by);
    (event_id("created", review, review.opened_at), data)
}

/// An event's id: its kind, the group and the time that makes it this event.
fn event_id(kind: &str, review: &Review, at: DateTime<Utc>) -> String {
    format!("msg_{kind}_{}_{}", review.group_id.replace('-', ""), at.timestamp())
}

/// What every review event says of its review.
fn event_data(review: &Review) -> serde_json::Value {
    serde_json::json!({
        "groupId": review.group_id,
        "displayName": review.display_name,
        "state": review.state,
        "dueAt": review.due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "reason": review.reason,
    })
}

/// Opens a review — a new item, or the group's ended one (kept, restored) opened again: one
/// item per group — then announces it (`review.created`). Written first, then announced: a
/// run stopped in between leaves the event to the next sync (`notify_due`), under the same id.
/// A failure to announce is said, not returned.
pub async fn open_review(
    graph: &Graph<'_>,
    list: &Reviews,
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    review: Review,
    now: DateTime<Utc>,
) -> Result<Review, super::reviews::WriteError> {
    use super::reviews::{ReviewState, WriteError};
    match list.create(graph, &review).await {
        Ok(()) => {}
        Err(WriteError::Exists) => {
            let Some(old) = list.get(graph, &review.group_id).await? else {
                return Err(WriteError::Changed);
            };
            if matches!(
                old.state,
                ReviewState::Pending | ReviewState::Archived | ReviewState::Deleted
            ) {
                return Err(WriteError::Exists);
            }
            let mut again = Review {
                item: old.item,
                etag: old.etag,
                no_answer_stored: old.no_answer_stored,
                ..review.clone()
            };
            list.update(graph, &mut again).await?;
        }
        Err(e) => return Err(e),
    }
    tracing::info!(event = "lifecycle_review_opened", tenant_id = %tenant, group_id = %review.group_id);
    let mut review = match list.get(graph, &review.group_id).await {
        Ok(Some(r)) => r,
        _ => review,
    };
    if let Err(e) = announce_created(graph, list, state, seal, tenant, &mut review, now).await {
        tracing::warn!(event = "webhook_not_queued", tenant_id = %tenant, webhook_type = "review.created", error = %e);
    }
    Ok(review)
}

/// Queues `review.created` for a review just written, then records on the item that it did.
/// A failure to record is said, not returned: the next sync queues the same event again.
pub async fn announce_created(
    graph: &Graph<'_>,
    list: &Reviews,
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    review: &mut Review,
    now: DateTime<Utc>,
) -> Result<(), crate::jobs::state::StateError> {
    let (id, data) = created_event(review);
    webhooks::enqueue_with_id(state, seal, tenant, &id, "review.created", data, now).await?;
    review.created_notified_at = Some(DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now));
    if let Err(e) = list.update(graph, review).await {
        tracing::warn!(event = "review_created_not_recorded", tenant_id = %tenant, group_id = %review.group_id, error = %e);
    }
    Ok(())
}

/// The `review.due` event of a review: its id and its data.
pub fn due_event(review: &Review) -> (String, serde_json::Value) {
    (event_id("due", review, review.due_at), event_data(review))
}

/// Sends `review.due` for every pending review past its due date not yet notified. Returns
/// how many it sent. With GroupMgr's grant on its site (`graph`); no list yet: nothing due.
pub async fn notify_due(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    site: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let Some(list) = Reviews::find(graph, site).await? else {
        return Ok(0);
    };
    // A list made by an older version lacks the columns written below.
    graph
        .add_missing_columns(site, &list.list, &super::reviews::reviews_list().columns)
        .await?;
    let mut reviews = list.all(graph).await?;
    // Read only: the decider's rights are not ours, so nothing is sent, only what happened
    // is recorded.
    let settler = Decider {
        acting: graph,
        site: graph,
        reviews: &list,
        state,
        tenant: *tenant,
        now,
        max_actions_per_day: 0,
        who: String::new(),
        app_only: true,
        seal,
        for_no_answer: false,
    };
    for review in reviews.iter().filter(|r| r.action_state == Some(ActionState::Intended)) {
        match settler.settle(review.clone()).await {
            Ok(true) => {
                tracing::info!(event = "lifecycle_action_settled", tenant_id = %tenant, group_id = %review.group_id)
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(event = "lifecycle_action_unsettled", tenant_id = %tenant, group_id = %review.group_id, error = %e)
            }
        }
    }
    let mut sent = 0;
    // Reviews whose opening request stopped before it queued `review.created`.
    for review in reviews.iter_mut() {
        if review.state == ReviewState::Pending
            && review.created_notified_at.is_none()
            && review.opened_at + CREATED_CATCH_UP > now
        {
            announce_created(graph, &list, state, seal, tenant, review, now).await?;
            tracing::info!(event = "review_created_caught_up", tenant_id = %tenant, group_id = %review.group_id);
        }
    }
    for mut review in reviews {
        if review.state != ReviewState::Pending
            || review.action_state == Some(ActionState::Intended)
            || review.due_at > now
            || review.due_notified_at.is_some()
        {
            continue;
        }
        let (id, data) = due_event(&review);
        webhooks::enqueue_with_id(state, seal, tenant, &id, "review.due", data, now).await?;
        review.due_notified_at = Some(DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now));
        // Changed meanwhile (decided, say): the next sync looks again; the event is queued
        // once whatever happens.
        if let Err(e) = list.update(graph, &mut review).await {
            tracing::warn!(event = "review_due_not_recorded", tenant_id = %tenant, group_id = %review.group_id, error = %e);
        }
        sent += 1;
    }
    Ok(sent)
}
