//! Lifecycle notifications (issue 16, item 7) to a test receiver that verifies each delivery
//! as the Standard Webhooks specification says a receiver must (its own HMAC, not GroupMgr's
//! code): the receiver down for an hour of the sim's time loses nothing; every event arrives,
//! each under one id whatever the attempts, none delivered twice.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::TimeDelta;
use common::*;
use groupmgr::jobs::tenant_sync;
use m365_sim::SimOptions;
use m365_sim::audit::AuditOptions;
use m365_sim::directory::CONTOSO;
use serde_json::{Value, json};
use warp::Filter;

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: i64,
    body: Value,
    /// The signature verified, independently of GroupMgr's code, and the timestamp within the
    /// specification's tolerance of the receiver's clock.
    verified: bool,
    /// The receiver's clock (the sim's) when it arrived, Unix seconds.
    received_at: i64,
    /// What the receiver answered.
    status: u16,
    raw: bytes::Bytes,
    signature: String,
}

/// A receiver on loopback that answers `status` (503 while "down") and records every POST.
struct Receiver {
    url: String,
    status: Arc<std::sync::atomic::AtomicU16>,
    got: Arc<Mutex<Vec<Delivery>>>,
    secret: Arc<Mutex<Vec<u8>>>,
}

/// Standard Webhooks, "Verifying webhooks": the key is the secret after `whsec_`,
/// base64-decoded; the signed content is `id.timestamp.body`; `webhook-signature` holds
/// space-delimited `v1,<base64 HMAC-SHA256>` entries, one of which must match.
fn verify(key: &[u8], id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let content = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
    signatures.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|sig| ring::hmac::verify(&key, &content, &sig).is_ok())
    })
}

/// Standard Webhooks, "Verifying webhooks": receivers reject a `webhook-timestamp` too far from
/// their own clock (the reference libraries allow five minutes either way), so that a captured
/// delivery cannot be replayed later.
const TOLERANCE_SECONDS: i64 = 5 * 60;

fn fresh(timestamp: i64, now: i64) -> bool {
    (timestamp - now).abs() <= TOLERANCE_SECONDS
}

impl Receiver {
    /// `now`: the receiver's clock, Unix seconds.
    async fn start(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        let now = Arc::new(now);
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let got = Arc::new(Mutex::new(Vec::new()));
        let secret = Arc::new(Mutex::new(Vec::new()));
        let (s, g, k) = (status.clone(), got.clone(), secret.clone());
        let route = warp::post()
            .and(warp::path("hook"))
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(move |h: warp::http::HeaderMap, body: bytes::Bytes| {
                let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let (id, ts, sig) = (
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                );
                let status = s.load(std::sync::atomic::Ordering::SeqCst);
                let received_at = now();
                let timestamp: i64 = ts.parse().unwrap_or_default();
                g.lock().unwrap().push(Delivery {
                    verified: fresh(timestamp, received_at) && verify(&k.lock().unwrap(), &id, &ts, &body, &sig),
                    received_at,
                    raw: body.clone(),
                    signature: sig.clone(),
                    id,
                    timestamp,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    status,
                });
                warp::reply::with_status("", warp::http::StatusCode::from_u16(status).unwrap())
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Receiver {
            url: format!("http://127.0.0.1:{}/hook", addr.port()),
            status,
            got,
            secret,
        }
    }

    fn set_secret(&self, whsec: &str) {
        let b64 = whsec.strip_prefix("whsec_").expect("a whsec_ secret");
        *self.secret.lock().unwrap() = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    }

    fn set_status(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }
}

async fn waiting(app: &TestApp) -> usize {
    groupmgr::lifecycle::webhooks::waiting(app.app.state.as_ref(), &contoso())
        .await
        .unwrap()
}

async fn dispatch(app: &TestApp) -> Value {
    let envelope = json!({
        "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": false}},
        "Metadata": {"sys": {"MethodName": "WebhookDispatch"}}
    });
    let resp = app.post_invocation("WebhookDispatch", &envelope).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Registered, then an hour with the receiver down while reviews open and a group is
/// deleted: afterwards every event arrives exactly once with a verified signature, under the
/// id it had from its first attempt.
#[tokio::test]
async fn a_receiver_down_for_an_hour_loses_nothing() {
    let app = spawn_with(Spawn {
        audit: true,
        sim: SimOptions {
            reports_concealed: false,
            audit: AuditOptions {
                records_per_blob: 4,
                page_size: 50,
                ..Default::default()
            },
            ..small_pages()
        },
        ..Default::default()
    })
    .await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    // The sync announced the tenant's ownerless groups; with no endpoint registered the next
    // dispatch discards them (nobody to tell), so what follows counts lifecycle events only.
    assert!(waiting(&app).await > 0);
    dispatch(&app).await;
    assert_eq!(waiting(&app).await, 0);
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(
            json!({"inactivityDays": 30, "signals": ["teams", "mail"], "reviewWindowDays": 14,
                    "onNoAnswer": {"action": "nothing"}, "maxActionsPerDay": 10}),
        ),
    )
    .await;
    let sim = app.sim.state.clone();
    let receiver = Receiver::start(move || sim.now().timestamp()).await;

    // Only https to public addresses (the test app allows loopback http for its receiver).
    for bad in [
        "http://hooks.example.com/x",
        "https://u:p@hooks.example.com/x",
        "hooks",
        // Names and addresses inside private networks or Azure's metadata endpoint.
        "https://10.1.2.3/x",
        "https://169.254.169.254/metadata",
        "https://[fd00::1]/x",
    ] {
        let resp = app
            .call("PUT", "/api/lifecycle/webhook", &admin, Some(json!({"url": bad})))
            .await;
        assert_eq!(error_code(resp).await, (400, "invalid_input".into()), "{bad}");
    }
    let resp = app.call("GET", "/api/lifecycle/webhook", &admin, None).await;
    assert_eq!(error_code(resp).await, (404, "not_found".into()));
    let registered = app
        .json_ok(
            "PUT",
            "/api/lifecycle/webhook",
            &admin,
            Some(json!({"url": receiver.url})),
        )
        .await;
    let secret = registered["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    receiver.set_secret(secret);
    let read = app.json_ok("GET", "/api/lifecycle/webhook", &admin, None).await;
    assert_eq!(
        (read["url"].as_str(), read["secret"].clone()),
        (Some(receiver.url.as_str()), Value::Null)
    );

    // Down.
    receiver.set_status(503);
    let page = app.json_ok("GET", "/api/lifecycle/candidates", &admin, None).await;
    let ids: Vec<String> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|c| c["groupId"].as_str().unwrap().to_string())
        .collect();
    app.json_ok("POST", "/api/lifecycle/reviews", &admin, Some(json!({"groupIds": ids})))
        .await;
    let resp = app
        .call(
            "POST",
            &format!("/api/groups/{}/review", ids[0]),
            &admin,
            Some(json!({"decision": "delete"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let start = app.sim.state.now();
    while app.sim.state.now() < start + TimeDelta::hours(1) {
        dispatch(&app).await;
        app.sim.state.advance_clock(TimeDelta::minutes(5));
    }
    let down = receiver.deliveries();
    assert!(down.len() >= 3 && down.iter().all(|d| d.status == 503), "{down:?}");
    // While they wait, our database holds what they say sealed: no group's name, nobody who
    // decided, no data at all in clear. (Each event's id and type stay readable: the id names
    // its group, as the rest of the job state does by group id.)
    let raw = app
        .app
        .state
        .load(&contoso(), "webhook_outbox")
        .await
        .unwrap()
        .expect("events waiting")
        .0;
    let names: Vec<&str> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|c| c["displayName"].as_str().unwrap())
        .collect();
    assert!(raw.contains("\"sealed\""), "{raw}");
    for secret in names
        .iter()
        .copied()
        .chain(["groupId", "decidedBy", "displayName", "\"data\""])
    {
        assert!(!raw.contains(secret), "{secret} in the outbox: {raw}");
    }
    let queued = groupmgr::lifecycle::webhooks::queued(
        app.app.state.as_ref(),
        &app.app.pseudonyms.outbox_seal(&contoso()),
        &contoso(),
    )
    .await
    .unwrap();
    assert!(
        queued.iter().any(|e| e.data["groupId"] == ids[0].as_str()),
        "opened with the tenant's key"
    );

    // Up again: within the next retries everything arrives.
    receiver.set_status(200);
    for _ in 0..30 {
        dispatch(&app).await;
        app.sim.state.advance_clock(TimeDelta::minutes(10));
    }
    let all = receiver.deliveries();
    assert!(all.iter().all(|d| d.verified), "every signature verifies");
    // …and the check is a real one: another key, another body or another id fail it.
    let d = &all[0];
    let key = receiver.secret.lock().unwrap().clone();
    let ts = d.timestamp.to_string();
    assert!(verify(&key, &d.id, &ts, &d.raw, &d.signature));
    assert!(!verify(b"another key", &d.id, &ts, &d.raw, &d.signature));
    assert!(!verify(&key, &d.id, &ts, b"{\"type\":\"forged\"}", &d.signature));
    assert!(!verify(&key, "msg_other", &ts, &d.raw, &d.signature));
    // Each attempt is stamped when it is sent: fresh on arrival, stale if replayed later.
    assert!(all.iter().all(|d| fresh(d.timestamp, d.received_at)));
    assert!(!fresh(d.timestamp, d.received_at + TOLERANCE_SECONDS + 60));
    let mut by_id: BTreeMap<&str, Vec<&Delivery>> = BTreeMap::new();
    for d in &all {
        by_id.entry(d.id.as_str()).or_default().push(d);
    }
    assert_eq!(by_id.len(), 3, "two reviews opened, one group deleted: {by_id:#?}");
    let mut types = Vec::new();
    for (id, attempts) in &by_id {
        assert_eq!(
            attempts.iter().filter(|d| d.status == 200).count(),
            1,
            "{id}: delivered once"
        );
        assert!(attempts.len() >= 2, "{id}: retried while down");
        // The same event every time: same body, a timestamp of each attempt.
        assert!(attempts.iter().all(|d| d.body == attempts[0].body), "{id}");
        assert!(attempts.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        types.push(attempts[0].body["type"].as_str().unwrap().to_string());
    }
    types.sort();
    assert_eq!(types, ["group.deleted", "review.created", "review.created"]);
    let deleted = all.iter().find(|d| d.body["type"] == "group.deleted").unwrap();
    assert_eq!(deleted.body["data"]["groupId"], ids[0].as_str());
    assert_eq!(deleted.body["data"]["state"], "deleted");
    // Nothing left to send.
    let before = receiver.deliveries().len();
    app.sim.state.advance_clock(TimeDelta::hours(12));
    dispatch(&app).await;
    assert_eq!(receiver.deliveries().len(), before);

    // The other review falls due unanswered: the next sync sends `review.due`, once.
    app.sim.state.advance_clock(TimeDelta::days(15));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    dispatch(&app).await;
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    dispatch(&app).await;
    let due: Vec<Delivery> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d.body["type"] == "review.due")
        .collect();
    assert_eq!(due.len(), 1, "{due:?}");
    assert!(due[0].verified && due[0].status == 200);
    assert_eq!(due[0].body["data"]["groupId"], ids[1].as_str());
    let before = receiver.deliveries().len();

    // Removed: later events are not sent.
    let resp = app.call("DELETE", "/api/lifecycle/webhook", &admin, None).await;
    assert_eq!(resp.status(), 204);
    let resp = app
        .call(
            "POST",
            &format!("/api/groups/{}/review", ids[1]),
            &admin,
            Some(json!({"decision": "delete"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    dispatch(&app).await;
    assert_eq!(receiver.deliveries().len(), before);
    app.stop().await;
}
