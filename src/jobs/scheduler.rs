//! `SyncScheduler` (timer, every 15 minutes): one `tenant-sync` queue message per tenant that
//! may use the product now (active, licence valid). The messages go out through the
//! function's queue output binding, so the host writes them with its own identity.

use chrono::Utc;
use serde_json::Value;

use super::{TENANT_SYNC_OUTPUT, TenantSyncMessage};
use crate::api::ApiError;
use crate::app::App;
use crate::domain::TenantStatus;
use crate::host::invocation::{InvocationRequest, InvocationResponse};
use crate::store::OFFBOARDED_LOG_RETENTION;

/// Runs one scheduler tick.
pub async fn run(app: &App, req: &InvocationRequest) -> Result<InvocationResponse, ApiError> {
    let tenants = app.store.tenants().await.map_err(|_| ApiError::store_unavailable())?;
    let now = Utc::now();
    let today = now.date_naive();
    let messages: Vec<Value> = tenants
        .iter()
        .filter(|t| t.status == TenantStatus::Active && t.licence_valid_on(today))
        .map(|t| {
            let msg = TenantSyncMessage {
                tenant_id: t.tenant_id,
                scheduled_at: now,
                full: false,
            };
            // Sent as a JSON string. The host base64-decodes output strings that happen to be
            // valid base64 (functions-custom-handler.md §3); JSON text never is (`{`, `"`).
            Value::String(serde_json::to_string(&msg).expect("the message is plain JSON"))
        })
        .collect();
    let past_due = req
        .data
        .get("timer")
        .and_then(|t| t.get("IsPastDue"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut logs = vec![format!("queued {} tenant sync(s)", messages.len())];
    if past_due {
        logs.push("timer was past due".to_string());
    }
    tracing::info!(event = "sync_scheduled", tenants = messages.len(), past_due);
    // Housekeeping on the same tick: logs of tenants offboarded longer ago than the retention
    // period are unreadable already (their keys are gone); delete them. A failure here does
    // not fail the tick; the next one tries again.
    match app.store.purge_offboarded_logs(now - OFFBOARDED_LOG_RETENTION).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(event = "offboarded_logs_purged", count = n);
            logs.push(format!("purged {n} log entries of offboarded tenants"));
        }
        Err(e) => tracing::warn!(event = "tenant_log_error", error = %e),
    }
    let mut resp = InvocationResponse {
        logs,
        ..Default::default()
    };
    resp.outputs
        .insert(TENANT_SYNC_OUTPUT.to_string(), Value::Array(messages));
    Ok(resp)
}
