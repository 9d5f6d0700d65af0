//! Reviews that fell due without an answer: each sync of the tenant sends `review.due` for
//! them once (the event's id is derived from the review and its due date, so a step repeated
//! after a crash queues the same event again, never a second one under another id), then
//! records on the item that it did.

use chrono::{DateTime, Utc};

use super::reviews::{Review, ReviewState, Reviews};
use super::webhooks;
use crate::domain::TenantId;
use crate::jobs::state::TenantState;
use crate::microsoft::graph::Graph;

/// The `review.due` event of a review: its id and its data.
pub fn due_event(review: &Review) -> (String, serde_json::Value) {
    let id = format!(
        "msg_due_{}_{}",
        review.group_id.replace('-', ""),
        review.due_at.timestamp()
    );
    let data = serde_json::json!({
        "groupId": review.group_id,
        "displayName": review.display_name,
        "state": review.state,
        "dueAt": review.due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "reason": review.reason,
    });
    (id, data)
}

/// Sends `review.due` for every pending review past its due date not yet notified. Returns
/// how many it sent. With GroupMgr's grant on its site (`graph`); no list yet: nothing due.
pub async fn notify_due(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let Some(list) = Reviews::find(graph, site).await? else {
        return Ok(0);
    };
    let mut sent = 0;
    for mut review in list.all(graph).await? {
        if review.state != ReviewState::Pending || review.due_at > now || review.due_notified_at.is_some() {
            continue;
        }
        let (id, data) = due_event(&review);
        webhooks::enqueue_with_id(state, tenant, &id, "review.due", data, now).await?;
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
