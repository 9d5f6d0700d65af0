//! The timer and queue functions as the Functions host sees them: invocation envelopes in,
//! invocation envelopes out. The work is the jobs' (`crate::jobs`); this module only reads
//! the bindings of `functions/*/function.json` and says the outcome in the host's terms — a
//! 2xx answer completes the invocation, anything else fails it (and the host retries a queue
//! message, then poisons it).

use serde_json::Value;
use warp::http::StatusCode;

use super::invocation::{InvocationFailure, InvocationRequest, InvocationResponse};
use crate::app::App;
use crate::domain::TenantId;
use std::sync::Arc;

use crate::jobs::tenant_sync::{self, SyncOutcome, TenantSyncError};
use crate::jobs::{TenantSyncMessage, schedule};

/// The queue output binding of `functions/SyncScheduler`: where its messages go.
pub const TENANT_SYNC_OUTPUT: &str = "tenantSync";
/// The queue trigger binding of `functions/TenantSync`: where its message comes from.
pub const TENANT_SYNC_MESSAGE: &str = "message";

/// `SyncScheduler` (timer, every 15 minutes): one `tenant-sync` message per due tenant,
/// through the output binding (so the host writes them with its own identity).
pub async fn sync_scheduler(app: &App, req: &InvocationRequest) -> Result<InvocationResponse, InvocationFailure> {
    let past_due = req
        .data
        .get("timer")
        .and_then(|t| t.get("IsPastDue"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let plan = schedule::plan(app.store.as_ref(), chrono::Utc::now(), past_due)
        .await
        .map_err(|e| InvocationFailure::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string()))?;
    let mut logs = vec![format!("queued {} tenant sync(s)", plan.syncs.len())];
    if past_due {
        logs.push("timer was past due".to_string());
    }
    if let Some(n) = plan.purged.filter(|n| *n > 0) {
        logs.push(format!("purged {n} log entries of offboarded tenants"));
    }
    // Each message is a JSON string. The host base64-decodes output strings that happen to be
    // valid base64 (functions-custom-handler.md §3); JSON text never is (`{`, `"`).
    let messages: Vec<Value> = plan
        .syncs
        .iter()
        .map(|m| Value::String(serde_json::to_string(m).expect("the message is plain JSON")))
        .collect();
    let mut resp = InvocationResponse {
        logs,
        ..Default::default()
    };
    resp.outputs
        .insert(TENANT_SYNC_OUTPUT.to_string(), Value::Array(messages));
    Ok(resp)
}

/// `WebhookDispatch` (timer, every minute): the tenants' waiting lifecycle webhooks.
pub async fn webhook_dispatch(app: &App) -> Result<InvocationResponse, InvocationFailure> {
    let s = crate::lifecycle::webhooks::run(app)
        .await
        .map_err(|e| InvocationFailure::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string()))?;
    Ok(InvocationResponse::logged(format!(
        "webhooks: {} delivered, {} failed (to be retried), {} dropped, for {} tenants; {} tenants without an endpoint discarded theirs",
        s.delivered, s.failed, s.dropped, s.tenants, s.discarded
    )))
}

/// The tenant a `TenantSync` invocation is for, when its message says (for the request log).
pub fn tenant_sync_tenant(req: &InvocationRequest) -> Option<TenantId> {
    message(req).ok().map(|m| m.tenant_id)
}

fn message(req: &InvocationRequest) -> Result<TenantSyncMessage, serde_json::Error> {
    serde_json::from_str(&req.queue_message(TENANT_SYNC_MESSAGE).unwrap_or_default())
}

/// `TenantSync` (queue `tenant-sync`): one tenant's sync. A message that is not a sync
/// request, or names a tenant that is not registered or not active, completes with a log
/// line (retrying cannot help; it would only end in the poison queue after five tries);
/// failures that may pass fail the invocation so that the host retries the message.
pub async fn tenant_sync(app: &Arc<App>, req: &InvocationRequest) -> Result<InvocationResponse, InvocationFailure> {
    let Ok(msg) = message(req) else {
        return Ok(InvocationResponse::logged(
            "discarded a tenant-sync message that is not a sync request",
        ));
    };
    let tenant = msg.tenant_id;
    match tenant_sync::invoke(app, &tenant, &msg, app.settings.sync_budget, None).await {
        Ok(SyncOutcome::Finished(summary)) => {
            Ok(InvocationResponse::logged(format!("tenant {tenant} synced: {summary}")))
        }
        Ok(SyncOutcome::Continue { summary, after }) => {
            // The next invocation resumes where this one stopped: a continuation message.
            let next = TenantSyncMessage {
                full: false,
                scheduled_at: chrono::Utc::now(),
                ..msg
            };
            app.sync
                .continue_later(app, next, after)
                .await
                .map_err(|e| InvocationFailure::new(StatusCode::SERVICE_UNAVAILABLE, "sync_failed", e.to_string()))?;
            let wait = after.map_or(String::new(), |a| format!(" in {} s", a.as_secs()));
            Ok(InvocationResponse::logged(format!(
                "tenant {tenant} sync continues{wait}: {summary}"
            )))
        }
        Ok(SyncOutcome::AlreadyRunning) => Ok(InvocationResponse::logged(format!(
            "tenant {tenant}: a sync is already running"
        ))),
        Ok(SyncOutcome::Deferred(c)) => Ok(InvocationResponse::logged(format!(
            "tenant {tenant} sync deferred until {}: {} ({})",
            c.next_attempt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            c.kind.as_str(),
            c.detail
        ))),
        Err(TenantSyncError::UnknownTenant(_) | TenantSyncError::Inactive(_)) => Ok(InvocationResponse::logged(
            format!("tenant {tenant} skipped: not registered or not active"),
        )),
        Err(e) => Err(InvocationFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sync_failed",
            e.to_string(),
        )),
    }
}
