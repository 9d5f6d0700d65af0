//! `POST /api/sync`: in process when standalone (one at a time per tenant), through the
//! `tenant-sync` queue (Azurite) as under a Functions host.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Spawn, error_code, spawn_app, spawn_with};
use groupmgr::jobs::TenantSyncMessage;
use m365_sim::directory::CONTOSO;
use m365_sim::{FaultKind, FaultRule, Hold};
use serde_json::Value;

async fn post_sync(app: &common::TestApp, token: &str, query: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/sync{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn standalone_sync_runs_in_process_once_per_tenant() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let tenant = groupmgr::domain::TenantId::parse(&CONTOSO.to_string()).unwrap();

    // Only GroupMgr admins; `full` must be a boolean.
    let adele = app.sim.user_token(CONTOSO, "adelev");
    assert_eq!(
        error_code(post_sync(&app, &adele, "").await).await,
        (403, "role_required".into())
    );
    assert_eq!(
        error_code(post_sync(&app, &admin, "?full=yes").await).await,
        (400, "invalid_input".into())
    );

    // Hold the sync's group delta at the sim, so that it is running when asked again.
    let hold = Hold::new();
    app.sim
        .state
        .faults
        .arm(FaultRule::new("/groups/delta", FaultKind::Hold(hold.clone())).times(1));
    let resp = post_sync(&app, &admin, "?full=true").await;
    assert_eq!(resp.status().as_u16(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "started");
    assert_eq!(body["tenantId"], CONTOSO.to_string());
    assert_eq!(body["full"], true);
    tokio::time::timeout(Duration::from_secs(20), hold.arrived())
        .await
        .expect("the sync reached Graph");
    assert_eq!(
        error_code(post_sync(&app, &admin, "").await).await,
        (409, "sync_in_progress".into())
    );
    hold.release();

    // The sync completes (its delta link is saved) and the tenant may be synced again.
    let started = Instant::now();
    while app.store.get_state(&tenant, "groups_delta_v2").await.unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "the sync did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    loop {
        let resp = post_sync(&app, &admin, "").await;
        if resp.status().as_u16() == 202 {
            break;
        }
        // Between the delta link and the end of the activity sync it may still be running.
        assert_eq!(error_code(resp).await.1, "sync_in_progress");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the guard was not released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn under_a_host_a_sync_is_a_tenant_sync_queue_message() {
    let Some(azurite) = common::azurite::Azurite::start("under_a_host_a_sync_is_a_tenant_sync_queue_message") else {
        return;
    };
    let app = spawn_with(Spawn {
        storage: Some(azurite.connection_string()),
        queue_syncs: true,
        ..Default::default()
    })
    .await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    // Twice: the first creates the queue, the second finds it.
    for full in [false, true] {
        let resp = post_sync(&app, &admin, &format!("?full={full}")).await;
        assert_eq!(resp.status().as_u16(), 202);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "queued");
    }

    // Read the queue as the host's queue trigger would: base64 message text holding the
    // JSON that `TenantSync` parses.
    let conn = azurite.connection_string();
    let access = groupmgr::storage::parse_storage(&groupmgr::storage::StorageSettings {
        connection_string: Some(&conn),
        ..Default::default()
    })
    .unwrap()
    .unwrap();
    let url = access.signed(&access.queue_endpoint, "tenant-sync").unwrap();
    let queue = azure_storage_queue::QueueClient::new(url, None, None).unwrap();
    let options = azure_storage_queue::models::QueueClientPeekMessagesOptions {
        number_of_messages: Some(32),
        ..Default::default()
    };
    let peeked = queue.peek_messages(Some(options)).await.unwrap().into_model().unwrap();
    let messages: Vec<TenantSyncMessage> = peeked
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let text = base64::engine::general_purpose::STANDARD
                .decode(m.message_text.unwrap())
                .unwrap();
            serde_json::from_slice(&text).unwrap()
        })
        .collect();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.tenant_id.to_string() == CONTOSO.to_string()));
    assert_eq!(messages.iter().map(|m| m.full).collect::<Vec<_>>(), [false, true]);
    app.stop().await;
}

async fn sync_state(app: &common::TestApp, token: &str) -> Value {
    let resp = app
        .http
        .get(app.url("/api/sync"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .to_utc()
}

/// Polls `GET /api/sync` until no sync is running and the last run ended after `after`.
async fn settled(app: &common::TestApp, token: &str, after: chrono::DateTime<chrono::Utc>) -> Value {
    let started = Instant::now();
    loop {
        let s = sync_state(app, token).await;
        if s["running"] == false && !s["lastRun"].is_null() && time(&s["lastRun"]["endedAt"]) >= after {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the sync did not end: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sync_status_tells_the_ui_where_the_sync_stands() {
    // Report names shown (this app reads the Teams report, not the audit feed).
    let app = spawn_with(common::Spawn {
        sim: m365_sim::SimOptions {
            reports_concealed: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let adele = app.sim.user_token(CONTOSO, "adelev");
    let resp = app
        .http
        .get(app.url("/api/sync"))
        .bearer_auth(&adele)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "role_required".into()));

    // Nothing yet: no run, nothing running, nothing known complete; due at the next tick (of
    // the jobs' clock, which tests hold at the sim's).
    let before = app.sim.state.now();
    let s = sync_state(&app, &admin).await;
    assert_eq!(s["lastRun"], Value::Null);
    assert_eq!(
        (s["running"].clone(), s["runningUntil"].clone()),
        (Value::Bool(false), Value::Null)
    );
    assert_eq!(s["condition"], Value::Null);
    assert_eq!(s["dataCompleteUntil"], Value::Null);
    let due = time(&s["nextDue"]);
    assert!(due > before && due <= before + chrono::TimeDelta::minutes(15), "{due}");
    assert_eq!(due.timestamp() % 900, 0, "on the quarter hour");

    // Running: held at the sim's delta.
    let hold = Hold::new();
    app.sim
        .state
        .faults
        .arm(FaultRule::new("/groups/delta", FaultKind::Hold(hold.clone())).times(1));
    let asked = chrono::Utc::now();
    assert_eq!(post_sync(&app, &admin, "").await.status().as_u16(), 202);
    tokio::time::timeout(Duration::from_secs(20), hold.arrived())
        .await
        .unwrap();
    let s = sync_state(&app, &admin).await;
    assert_eq!(s["running"], true);
    assert!(time(&s["runningUntil"]) > chrono::Utc::now());
    hold.release();

    // Finished: what it did, and activity complete up to the older of its marks.
    let s = settled(&app, &admin, asked).await;
    let run = &s["lastRun"];
    assert_eq!(run["outcome"], "finished", "{s}");
    // Its sources: the Teams report read; no audit feed in this deployment, and it says so.
    let sources = s["sources"].as_array().unwrap();
    assert!(
        sources
            .iter()
            .any(|x| x["source"] == "teamsReport" && x["available"] == true),
        "{s}"
    );
    assert!(
        sources
            .iter()
            .any(|x| x["source"] == "teamsAudit" && x["reason"].as_str().is_some_and(|r| r.contains("not configured"))),
        "{s}"
    );
    let unified = app
        .sim
        .state
        .with_graph(&CONTOSO, |g| {
            g.groups
                .values()
                .filter(|g| g.is_unified() && g.deleted.is_none())
                .count()
        })
        .unwrap() as u64;
    assert_eq!(run["groups"], unified);
    // A first sync writes every row, then the activity of each group it found active (this
    // app reads the Teams report, not the audit feed).
    let active = app
        .sim
        .state
        .with_graph(&CONTOSO, |g| {
            g.lists
                .values()
                .flatten()
                .flat_map(|l| l.items.values())
                .filter(|f| f.contains_key("LastActivity"))
                .count()
        })
        .unwrap() as u64;
    assert!(active > 0);
    assert_eq!(run["auditBlobs"], 0);
    assert_eq!(run["rowsWritten"], unified + active, "{run}");
    assert_eq!(run["rowsRefused"], 0);
    assert!(run["requests"].as_u64().unwrap() > 0);
    assert!(time(&run["startedAt"]) >= asked && time(&run["endedAt"]) >= time(&run["startedAt"]));
    let complete = time(&s["dataCompleteUntil"]);
    assert!(complete <= app.sim.state.now(), "{complete}");
    let activity: Value = app
        .http
        .get(app.url("/api/activity"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(activity["dataCompleteUntil"], s["dataCompleteUntil"]);

    // Consent revoked: recorded with its retry time, and the next due tick after it.
    app.sim.state.update_tenant(&CONTOSO, |t| t.consented = false);
    let asked = chrono::Utc::now();
    assert_eq!(post_sync(&app, &admin, "").await.status().as_u16(), 202);
    let mut s = settled(&app, &admin, asked).await;
    // The run's record and the condition it met are two writes: a poll between them sees the
    // run ended and no condition yet (seen on a loaded CI machine). Wait for the condition.
    let waited = Instant::now();
    while s["condition"].is_null() && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s = sync_state(&app, &admin).await;
    }
    assert_eq!(s["lastRun"]["outcome"], "deferred", "{s}");
    let c = &s["condition"];
    assert_eq!(c["kind"], "consent_revoked");
    assert!(c["detail"].as_str().unwrap().starts_with("AADSTS"), "{c}");
    assert_eq!(c["attempts"], 1);
    let retry = time(&c["nextAttempt"]);
    assert!(
        (retry - time(&c["since"]) - chrono::TimeDelta::hours(1))
            .num_seconds()
            .abs()
            <= 1
    );
    assert!(time(&s["nextDue"]) >= retry);
    app.stop().await;
}
