//! The schedule is one schedule: the `SyncScheduler` timer under a Functions host, and
//! standalone `serve` (no host) in process, both do the housekeeping — the purge of offboarded
//! tenants' logs once the 30-day retention has passed — and keep what is younger.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::binary::serve;
use common::{settings_map, spawn_app};
use groupmgr::crypto::SealedValue;
use groupmgr::domain::{Seats, TenantId};
use groupmgr::store::{LogQuery, LogRecord, NewTenant, Store, sqlite::SqliteStore};
use m365_sim::Sim;
use serde_json::{Value, json};

async fn offboarded_with_logs(store: &dyn Store, days_ago: i64) -> TenantId {
    let tenant = TenantId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    store
        .add_tenant(&NewTenant {
            tenant_id: tenant,
            seats: Seats::new(1).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
    let offboarded = Utc::now() - TimeDelta::days(days_ago);
    let logs: Vec<LogRecord> = (0..3u8)
        .map(|n| LogRecord {
            id: uuid::Uuid::new_v4(),
            tenant_id: tenant,
            time: offboarded - TimeDelta::minutes(i64::from(n) + 1),
            level: "INFO".into(),
            event: "group_created".into(),
            message: "group {group} created by {user}".into(),
            sealed: SealedValue {
                key_id: uuid::Uuid::new_v4(),
                nonce: [n; 12],
                ciphertext: vec![n; 40],
            },
        })
        .collect();
    store.append_logs(&logs).await.unwrap();
    store.offboard(&tenant, offboarded).await.unwrap();
    tenant
}

async fn log_count(store: &dyn Store, tenant: &TenantId) -> usize {
    store
        .logs(
            tenant,
            &LogQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_serve_purges_offboarded_tenants_logs_after_30_days_as_the_timer_does() {
    let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("schedule.db");
    let store = SqliteStore::open(&db).await.unwrap();
    let expired = offboarded_with_logs(&store, 31).await;
    let recent = offboarded_with_logs(&store, 29).await;
    assert_eq!(log_count(&store, &expired).await, 3);

    // No FUNCTIONS_CUSTOMHANDLER_WORKER_ID: no host runs the timer, so serve runs the schedule,
    // whose first tick is at start-up.
    let served = serve(&settings_map(&sim.url(), &db));
    let deadline = Instant::now() + Duration::from_secs(20);
    while log_count(&store, &expired).await > 0 {
        assert!(Instant::now() < deadline, "the in-process schedule did not purge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        log_count(&store, &recent).await,
        3,
        "logs of a tenant offboarded 29 days ago are kept"
    );
    let (stdout, _) = served.stop();
    assert!(stdout.contains("\"event\":\"offboarded_logs_purged\""), "{stdout}");
}

#[tokio::test]
async fn the_sync_scheduler_timer_purges_offboarded_tenants_logs_after_30_days() {
    let app = spawn_app().await;
    let expired = offboarded_with_logs(app.store.as_ref(), 31).await;
    let recent = offboarded_with_logs(app.store.as_ref(), 29).await;
    let envelope = json!({
        "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": false}},
        "Metadata": {"sys": {"MethodName": "SyncScheduler", "UtcNow": "2026-11-27T10:30:00Z", "RandGuid": "24ad4c06-24ad-4e5b-8294-3da9714877e9"}}
    });
    let resp = app.post_invocation("SyncScheduler", &envelope).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["Logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "purged 3 log entries of offboarded tenants"),
        "{body}"
    );
    assert_eq!(log_count(app.store.as_ref(), &expired).await, 0);
    assert_eq!(log_count(app.store.as_ref(), &recent).await, 3, "29 days: kept");
    // The offboarded tenants get no sync message; the two registered active ones do.
    assert_eq!(body["Outputs"]["tenantSync"].as_array().unwrap().len(), 2, "{body}");
    app.stop().await;
}

async fn add_tenant(store: &dyn Store, expires: Option<chrono::NaiveDate>) -> TenantId {
    let tenant = TenantId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    store
        .add_tenant(&NewTenant {
            tenant_id: tenant,
            seats: Seats::new(1).unwrap(),
            licence_expires: expires,
        })
        .await
        .unwrap();
    tenant
}

#[tokio::test]
async fn the_timer_queues_exactly_the_tenants_that_may_sync_now() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let today = Utc::now().date_naive();
    let last_day_today = add_tenant(store, Some(today)).await;
    let expired = add_tenant(store, Some(today - TimeDelta::days(1))).await;
    let suspended = add_tenant(store, None).await;
    store
        .set_status(&suspended, groupmgr::domain::TenantStatus::Suspended)
        .await
        .unwrap();
    let offboarded = add_tenant(store, None).await;
    store.offboard(&offboarded, Utc::now()).await.unwrap();
    let envelope = |past_due: bool| {
        json!({
            "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": past_due}},
            "Metadata": {"sys": {"MethodName": "SyncScheduler", "UtcNow": "2026-11-27T10:30:00Z", "RandGuid": "24ad4c06-24ad-4e5b-8294-3da9714877e9"}}
        })
    };
    let body: Value = app
        .post_invocation("SyncScheduler", &envelope(true))
        .await
        .json()
        .await
        .unwrap();
    let queued: std::collections::BTreeSet<TenantId> = body["Outputs"]["tenantSync"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            serde_json::from_str::<groupmgr::jobs::TenantSyncMessage>(m.as_str().unwrap())
                .unwrap()
                .tenant_id
        })
        .collect();
    // Contoso and Fabrikam (active, no expiry) and the licence whose last day is today.
    let want: std::collections::BTreeSet<TenantId> = [common::contoso(), common::fabrikam(), last_day_today]
        .into_iter()
        .collect();
    assert_eq!(queued, want, "not {expired}, {suspended} or {offboarded}");
    assert!(
        body["Logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "timer was past due"),
        "{body}"
    );
    let on_time: Value = app
        .post_invocation("SyncScheduler", &envelope(false))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !on_time["Logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "timer was past due")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_sync_message_for_a_tenant_that_may_not_sync_completes_without_a_sync() {
    let app = spawn_app().await;
    app.store
        .set_status(&common::contoso(), groupmgr::domain::TenantStatus::Suspended)
        .await
        .unwrap();
    let message = format!(
        "{{\"tenantId\":\"{}\",\"scheduledAt\":\"2026-11-27T10:30:00Z\"}}",
        common::contoso()
    );
    let envelope = json!({"Data": {"message": message}, "Metadata": {"DequeueCount": 1}});
    let resp = app.post_invocation("TenantSync", &envelope).await;
    assert_eq!(resp.status().as_u16(), 200, "completed: retrying cannot help");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["Logs"][0],
        format!("tenant {} skipped: not registered or not active", common::contoso())
    );
    assert_eq!(app.sim.requests_where(|p| p.starts_with("/v1.0/")), 0, "no Graph call");
    app.stop().await;
}
