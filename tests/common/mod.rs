//! The one helper integration tests use: spawn m365-sim and the real app on random ports,
//! on a fresh SQLite file, and talk to it over HTTP.
#![allow(dead_code)]

pub mod azurite;
pub mod binary;
pub mod rows;
pub mod skip;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use groupmgr::app::{App, AppOptions};
use groupmgr::auth::JwksOptions;
use groupmgr::config::Settings;
use groupmgr::domain::{Seats, TenantId};
use groupmgr::startup::{Application, StartOptions};
use groupmgr::store::{NewTenant, Store, sqlite::SqliteStore};
use groupmgr::telemetry::TenantLogSink;
use m365_sim::Sim;
use m365_sim::directory::{CONTOSO, FABRIKAM, GROUPMGR_CLIENT_ID, GROUPMGR_CLIENT_SECRET};
use serde_json::Value;
use tokio::sync::oneshot;

pub const INDEX_KEY: [u8; 32] = [42u8; 32];
/// The test deployment's `GROUPMGR_PUBLISHER_KEY` (the X25519 private key's 32 bytes).
pub const PUBLISHER_KEY: [u8; 32] = [77u8; 32];

/// The test deployment's publisher key pair.
pub fn publisher_key() -> groupmgr::crypto::PublisherKey {
    groupmgr::crypto::PublisherKey::parse(&base64::engine::general_purpose::STANDARD.encode(PUBLISHER_KEY)).unwrap()
}

pub fn contoso() -> TenantId {
    TenantId::parse(&CONTOSO.to_string()).unwrap()
}

pub fn fabrikam() -> TenantId {
    TenantId::parse(&FABRIKAM.to_string()).unwrap()
}

/// The environment `serve` would get, pointing at `sim` and a SQLite file.
pub fn settings_map(sim_url: &str, db: &std::path::Path) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("GROUPMGR_CLIENT_ID".into(), GROUPMGR_CLIENT_ID.to_string());
    env.insert("GROUPMGR_CLIENT_SECRET".into(), GROUPMGR_CLIENT_SECRET.into());
    env.insert("GROUPMGR_AUTHORITY_HOST".into(), sim_url.into());
    env.insert("GROUPMGR_GRAPH_ENDPOINT".into(), sim_url.into());
    env.insert("GROUPMGR_MANAGEMENT_ENDPOINT".into(), sim_url.into());
    env.insert("GROUPMGR_DATABASE".into(), format!("sqlite:{}", db.display()));
    env.insert(
        "GROUPMGR_INDEX_KEY".into(),
        base64::engine::general_purpose::STANDARD.encode(INDEX_KEY),
    );
    env.insert(
        "GROUPMGR_PUBLISHER_KEY".into(),
        base64::engine::general_purpose::STANDARD.encode(PUBLISHER_KEY),
    );
    env.insert(
        "GROUPMGR_ALLOWED_CLIENTS".into(),
        m365_sim::directory::UI_CLIENT_ID.to_string(),
    );
    env.insert("FUNCTIONS_CUSTOMHANDLER_PORT".into(), "0".into());
    env
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub sim: Sim,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    pub db_path: PathBuf,
    pub sink: TenantLogSink,
    pub app: Arc<App>,
    _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// How the test app starts.
pub struct Spawn {
    /// Seats of Contoso (registered active); `None` leaves it unregistered.
    pub contoso_seats: Option<u32>,
    pub fabrikam_seats: Option<u32>,
    pub jwks: JwksOptions,
    /// Faults armed on the sim before the app starts (so even its first JWKS fetch meets them).
    pub sim_faults: Vec<m365_sim::FaultRule>,
    /// Graph retry policy (tests shorten the waits).
    pub graph_retry: groupmgr::microsoft::retry::RetryPolicy,
    /// Seeding of the sim.
    pub sim: m365_sim::SimOptions,
    /// Read the audit feed (sets `GROUPMGR_PUBLISHER_ID`).
    pub audit: bool,
    /// `AzureWebJobsStorage` (job state in Blob Storage instead of the embedded store).
    pub storage: Option<String>,
    /// On-demand syncs through the `tenant-sync` queue, as under a Functions host.
    pub queue_syncs: bool,
    /// GroupMgr proves itself with this certificate and key (PEM text, written to the file
    /// `GROUPMGR_CLIENT_CERTIFICATE` names) instead of its client secret.
    pub certificate: Option<String>,
    /// More settings, e.g. `("GROUPMGR_SYNC_BUDGET", "1")`.
    pub env: Vec<(&'static str, String)>,
}

impl Default for Spawn {
    fn default() -> Self {
        Self {
            contoso_seats: Some(25),
            fabrikam_seats: Some(5),
            jwks: JwksOptions::default(),
            sim_faults: Vec::new(),
            graph_retry: groupmgr::microsoft::retry::RetryPolicy {
                base_delay: std::time::Duration::from_millis(20),
                max_delay: std::time::Duration::from_secs(3),
                ..Default::default()
            },
            sim: small_pages(),
            audit: false,
            storage: None,
            queue_syncs: false,
            certificate: None,
            env: Vec::new(),
        }
    }
}

/// The sim's seeding with small pages everywhere: every pager of the product follows several
/// links (delta pages that repeat a group to carry the rest of its members, list pages of a
/// few items, audit content pages of 5).
pub fn small_pages() -> m365_sim::SimOptions {
    m365_sim::SimOptions {
        paging: m365_sim::Paging::small(),
        audit: m365_sim::audit::AuditOptions {
            page_size: 5,
            ..Default::default()
        },
        ..Default::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Spawn::default()).await
}

pub async fn spawn_with(opts: Spawn) -> TestApp {
    ask_each_event();
    let sim = Sim::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), opts.sim)
        .await
        .expect("sim starts");
    for rule in opts.sim_faults {
        sim.state.faults.arm(rule);
    }
    // The sim's content holds still: a test and its oracle see the same audit feed and report
    // rows even when the test crosses the hour (new blobs) or the UTC day (report dates).
    sim.state.set_clock(chrono::Utc::now());
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("groupmgr.db");
    let mut env = settings_map(&sim.url(), &db_path);
    if opts.audit {
        env.insert(
            "GROUPMGR_PUBLISHER_ID".into(),
            "11111111-2222-3333-4444-555555555555".into(),
        );
    }
    if let Some(storage) = &opts.storage {
        env.insert("AzureWebJobsStorage".into(), storage.clone());
    }
    if let Some(certificate) = &opts.certificate {
        let pem = dir.path().join("groupmgr-client.pem");
        std::fs::write(&pem, certificate).unwrap();
        env.remove("GROUPMGR_CLIENT_SECRET");
        env.insert("GROUPMGR_CLIENT_CERTIFICATE".into(), pem.display().to_string());
    }
    for (k, v) in &opts.env {
        env.insert(k.to_string(), v.clone());
    }
    let settings = Settings::from_source(|k| env.get(k).cloned()).expect("test settings are valid");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db_path).await.unwrap());
    for (tenant, seats) in [(contoso(), opts.contoso_seats), (fabrikam(), opts.fabrikam_seats)] {
        if let Some(seats) = seats {
            store
                .add_tenant(&NewTenant {
                    tenant_id: tenant,
                    seats: Seats::new(seats).unwrap(),
                    licence_expires: None,
                })
                .await
                .unwrap();
        }
    }
    // The app starts as `serve` starts it, on this store, without the process-wide logging
    // (many apps share one test process) and without the in-process schedule (tests run the
    // syncs they mean to).
    let application = Application::build_with_store(
        settings,
        store.clone(),
        StartOptions {
            app: AppOptions {
                jwks: opts.jwks,
                retry: opts.graph_retry,
                queue_syncs: Some(opts.queue_syncs),
                // The jobs live in the sim's time: a test that moves the sim's clock on moves
                // theirs.
                clock: {
                    let sim = sim.state.clone();
                    groupmgr::jobs::Clock::from_fn(move || sim.now())
                },
                // Test receivers listen on loopback.
                webhook_loopback: true,
            },
            logging: false,
            schedule: Some(false),
        },
    )
    .await
    .unwrap();
    let addr = application.address();
    let handle = application.app().clone();
    let sink = handle.tenant_log.clone().expect("the server writes a tenant log");
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        sim,
        store,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        db_path,
        sink,
        app: handle,
        _dir: dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request reaches the app")
    }

    /// GET with a raw Authorization header value (or none).
    pub async fn get_with_auth(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.expect("request reaches the app")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    }
}

/// The `{"error":{"code"}}` of a response, asserting the JSON error shape.
pub async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("error bodies are JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code is a string")
        .to_string();
    assert!(body["error"]["message"].is_string(), "error.message missing: {body}");
    (status, code)
}

/// `GET /api/groups/{group}/successors`: (id, active days) of each successor, in order, and
/// the whole answer.
pub async fn successors(app: &TestApp, token: &str, group: impl std::fmt::Display) -> (Vec<(uuid::Uuid, u32)>, Value) {
    let got = app
        .json_ok("GET", &format!("/api/groups/{group}/successors"), token, None)
        .await;
    let listed = got["successors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().parse().unwrap(),
                s["activeDays"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    (listed, got)
}

impl TestApp {
    /// A request with a bearer token and an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request reaches the app")
    }

    /// `call`, asserting a 2xx answer; its JSON body (`null` when empty).
    pub async fn json_ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let resp = self.call(method, path, token, body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// POSTs a timer or queue invocation envelope to `/<function>`.
    pub async fn post_invocation(&self, function: &str, envelope: &Value) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/{function}")))
            .json(envelope)
            .send()
            .await
            .expect("request reaches the app")
    }
}

/// Gives Contoso a log key and returns it, so that its tenant log can be read back.
pub async fn contoso_log_key(app: &TestApp) -> groupmgr::crypto::TenantPrivateKey {
    let key = groupmgr::crypto::TenantPrivateKey::generate();
    app.store.set_log_public_key(&contoso(), key.public()).await.unwrap();
    key
}

/// `f` with the app's tenant log as its subscriber (what the process-wide logging does in
/// `serve`): its tenant events reach the tenant log.
pub fn tenant_logged<F: std::future::Future>(app: &TestApp, f: F) -> tracing::instrument::WithDispatch<F> {
    use tracing::instrument::WithSubscriber as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    ask_each_event();
    f.with_subscriber(tracing_subscriber::registry().with(groupmgr::telemetry::TenantLogLayer(app.sink.clone())))
}

/// The events of Contoso's tenant log so far, oldest first, opened with its key.
pub async fn contoso_log_events(app: &TestApp, key: &groupmgr::crypto::TenantPrivateKey) -> Vec<String> {
    app.sink.flush().await;
    let keys = app.store.log_keys(&contoso()).await.unwrap();
    let publisher = publisher_key();
    let opener = groupmgr::decrypt::Opener::new(key, contoso(), &keys, std::slice::from_ref(publisher.public()));
    let query = groupmgr::store::LogQuery {
        limit: 10_000,
        ..Default::default()
    };
    app.store
        .logs(&contoso(), &query)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let opened = opener.open_log(r).expect("every entry opens");
            assert!(
                opened.authenticated(),
                "sealed by GroupMgr, every column bound: {opened:?}"
            );
            opened.event
        })
        .collect()
}

/// Makes every `tracing` call site ask the current subscriber about each event.
///
/// tracing-core caches per call site whether any subscriber wants it. While only one
/// subscriber is registered, a call site first reached on a thread without it (another test's
/// server task, say) is cached from that thread's default, "none", as never wanted, and the
/// test's scoped subscriber then misses it for the life of the process. A process default that
/// answers "sometimes" (and takes nothing itself) keeps the answer per event.
pub fn ask_each_event() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only if a default is set already, which then decides: nothing to do.
        let _ = tracing::subscriber::set_global_default(AskEachEvent);
    });
}

struct AskEachEvent;

impl tracing::Subscriber for AskEachEvent {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Whether the team of `group` (a Contoso group) is archived, once every teams async operation
/// due by the sim's clock has been applied.
pub fn team_archived(app: &TestApp, group: &str) -> bool {
    app.sim
        .state
        .with_graph(&m365_sim::directory::CONTOSO, |t| {
            m365_sim::graph::teams::settle(t, app.sim.state.now());
            t.groups
                .values()
                .find(|g| g.id.to_string() == group)
                .map(|g| g.archived)
        })
        .flatten()
        .expect("the group exists")
}

/// The events of type `kind` waiting in the Contoso tenant's webhook outbox, in queue order:
/// (event id, the group its data names).
pub async fn queued_events(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    let seal = app.app.pseudonyms.outbox_seal(&contoso());
    groupmgr::lifecycle::webhooks::queued(app.app.state.as_ref(), &seal, &contoso())
        .await
        .expect("job state readable")
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.id, e.data["groupId"].as_str().unwrap_or_default().to_string()))
        .collect()
}
