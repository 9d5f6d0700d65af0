//! The custom-handler protocol: readiness, health, invocation envelopes, and the JSON error
//! shape for unrouted requests.

mod common;

use common::*;
use groupmgr::domain::TenantStatus;
use groupmgr::jobs::TenantSyncMessage;
use serde_json::{Value, json};

#[tokio::test]
async fn readiness_probe_answers_get_slash() {
    let app = spawn_app().await;
    let resp = app.get("/", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn health_is_anonymous_and_carries_no_tenant_data() {
    let app = spawn_app().await;
    let resp = app.get("/api/health", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    app.stop().await;
}

/// The timer request as the host sends it (functions-custom-handler.md §2, "Timer trigger
/// specifics"): TimerInfo under the binding name, `sys` in Metadata.
fn timer_envelope() -> Value {
    json!({
        "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "ScheduleStatus": {"Last": "2026-11-27T10:15:00+00:00", "LastUpdated": "2026-11-27T10:16:00+00:00", "Next": "2026-11-27T10:30:00+00:00"}, "IsPastDue": false}},
        "Metadata": {"sys": {"MethodName": "SyncScheduler", "UtcNow": "2026-11-27T10:30:00.0012345Z", "RandGuid": "24ad4c06-24ad-4e5b-8294-3da9714877e9"}}
    })
}

#[tokio::test]
async fn timer_invocation_is_answered_in_the_documented_shape() {
    let app = spawn_app().await;
    app.store
        .set_status(&fabrikam(), TenantStatus::Suspended)
        .await
        .unwrap();
    let resp = app
        .http
        .post(app.url("/SyncScheduler"))
        .header("x-azure-functions-invocationid", "0f0e0d0c-0b0a-4909-8807-060504030201")
        .json(&timer_envelope())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["Logs", "Outputs", "ReturnValue"]);
    assert!(body["Logs"].as_array().unwrap().iter().all(Value::is_string));
    assert_eq!(body["ReturnValue"], Value::Null);
    // One queue message per active tenant: Contoso, not the suspended Fabrikam. Each is a
    // JSON string (the queue output binding's message text).
    let messages = body["Outputs"]["tenantSync"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    let msg: TenantSyncMessage = serde_json::from_str(messages[0].as_str().unwrap()).unwrap();
    assert_eq!(msg.tenant_id, contoso());
    assert!(!msg.full);
    app.stop().await;
}

#[tokio::test]
async fn bad_envelopes_and_unknown_routes_get_json_errors() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url("/SyncScheduler"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (400, "invalid_invocation".into()));
    assert_eq!(
        error_code(app.get("/api/nothing-here", None).await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(app.get("/NoSuchFunction", None).await).await,
        (404, "not_found".into())
    );
    let resp = app.http.put(app.url("/api/health")).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET");
    assert_eq!(error_code(resp).await, (405, "method_not_allowed".into()));
    let big = vec![b'x'; 2 * 1024 * 1024];
    let resp = app.http.post(app.url("/api/groups")).body(big).send().await.unwrap();
    assert_eq!(error_code(resp).await, (413, "body_too_large".into()));
    app.stop().await;
}

#[tokio::test]
async fn every_route_but_health_is_gated() {
    let app = spawn_app().await;
    for f in groupmgr::host::router::HTTP_FUNCTIONS {
        let path = format!(
            "/api/{}",
            f.route
                .replace("{id}", "0b3b3f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f")
                .replace("{userId}", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
        );
        for (method, operation) in f.methods {
            if *operation == groupmgr::host::router::Operation::Health {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let anon = app.http.request(m.clone(), app.url(&path)).send().await.unwrap();
            assert_eq!(anon.status().as_u16(), 401, "{method} {path} without a token");
            assert_eq!(error_code(anon).await, (401, "missing_token".into()), "{method} {path}");
        }
    }
    app.stop().await;
}
