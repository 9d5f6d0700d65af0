//! Group sync cost and request overhead.
//!
//! 1. For 1,000 and 10,000 groups in m365-sim: Graph requests and wall time of a full and of
//!    an incremental (no change) sync into the customer's SharePoint list.
//! 2. `GET /api/groups/{id}` through the app (OBO token, group, two counts, list row), side by
//!    side with a gated request that makes no Microsoft call (HTTP, routing, the gate, JSON):
//!    the latter is GroupMgr's own request-handling overhead, Graph time excluded.
//!
//! Run: `cargo bench --bench group_sync`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use criterion::Criterion;
use groupmgr::app::App;
use groupmgr::config::Settings;
use groupmgr::domain::{Seats, TenantId};
use groupmgr::startup::{Application, StartOptions};
use groupmgr::store::{NewTenant, Store, sqlite::SqliteStore};
use m365_sim::directory::{CONTOSO, GROUPMGR_CLIENT_ID, GROUPMGR_CLIENT_SECRET};
use m365_sim::{Sim, SimOptions};

struct World {
    sim: Sim,
    app: Arc<App>,
    /// The server, built (bound to a free port) but not yet serving.
    server: Option<Application>,
    _dir: tempfile::TempDir,
}

async fn world(groups: usize) -> World {
    let sim = Sim::start_with(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SimOptions {
            groups,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let env: Vec<(&str, String)> = vec![
        ("GROUPMGR_CLIENT_ID", GROUPMGR_CLIENT_ID.to_string()),
        ("GROUPMGR_CLIENT_SECRET", GROUPMGR_CLIENT_SECRET.to_string()),
        ("GROUPMGR_AUTHORITY_HOST", sim.url()),
        ("GROUPMGR_GRAPH_ENDPOINT", sim.url()),
        ("GROUPMGR_DATABASE", format!("sqlite:{}", db.display())),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "0".to_string()),
        (
            "GROUPMGR_INDEX_KEY",
            base64::engine::general_purpose::STANDARD.encode([5u8; 32]),
        ),
    ];
    let settings = Settings::from_source(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    store
        .add_tenant(&NewTenant {
            tenant_id: tenant(),
            seats: Seats::new(100).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
    let options = StartOptions {
        schedule: Some(false),
        ..Default::default()
    };
    let server = Application::build_with_store(settings, store, options).await.unwrap();
    World {
        sim,
        app: server.app().clone(),
        server: Some(server),
        _dir: dir,
    }
}

fn tenant() -> TenantId {
    TenantId::parse(&CONTOSO.to_string()).unwrap()
}

fn sync_figures(rt: &tokio::runtime::Runtime) {
    for n in [1_000usize, 10_000] {
        rt.block_on(async {
            let w = world(n).await;
            let before = w.sim.graph_requests();
            let started = Instant::now();
            let full = groupmgr::jobs::tenant_sync::run(&w.app, &tenant(), false).await.unwrap();
            let full_time = started.elapsed();
            let full_requests = w.sim.graph_requests() - before;
            let before = w.sim.graph_requests();
            let started = Instant::now();
            let inc = groupmgr::jobs::tenant_sync::run(&w.app, &tenant(), false).await.unwrap();
            let inc_time = started.elapsed();
            let inc_requests = w.sim.graph_requests() - before;
            let teams = w.sim.state.with_graph(&CONTOSO, |t| t.groups.values().filter(|g| g.team.is_some()).count()).unwrap();
            let delta_pages = w.sim.requests_where(|p| p == "/v1.0/groups/delta");
            let batches = w.sim.requests_where(|p| p == "/v1.0/$batch");
            println!(
                "groups={n:>6}: full sync {:>4} Graph requests ({} delta pages, {} $batch: {} Teams lookups for {teams} teams + {} row writes), {:.2} s, {} rows written; \
                 incremental (no change) {} request(s), {:.3} s; target full ≤ ⌈N/999⌉ + ⌈N/20⌉ = {}",
                full_requests,
                delta_pages.saturating_sub(1),
                batches,
                teams.div_ceil(20),
                n.div_ceil(20),
                full_time.as_secs_f64(),
                full.groups.written,
                inc_requests,
                inc_time.as_secs_f64(),
                n.div_ceil(999) + n.div_ceil(20),
            );
            assert_eq!(inc.requests, 1);
        });
    }
}

fn get_overhead(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let (w, addr, id) = rt.block_on(async {
        let mut w = world(300).await;
        groupmgr::jobs::tenant_sync::run(&w.app, &tenant(), false)
            .await
            .unwrap();
        let server = w.server.take().unwrap();
        let addr = server.address();
        tokio::spawn(server.run_until_stopped(std::future::pending()));
        let id = w
            .sim
            .state
            .with_graph(&CONTOSO, |t| {
                t.groups.values().find(|g| g.is_unified()).unwrap().id.to_string()
            })
            .unwrap();
        (w, addr, id)
    });
    let user_token = w.sim.user_token(CONTOSO, "admin");
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/groups/{id}");
    // Warm: JWKS fetched, user admitted.
    rt.block_on(async {
        assert!(
            http.get(&url)
                .bearer_auth(&user_token)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        )
    });
    let mut g = c.benchmark_group("get_group");
    g.bench_function("through_groupmgr_api", |b| {
        b.to_async(rt).iter(|| async {
            http.get(&url)
                .bearer_auth(&user_token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        })
    });
    // The same path through GroupMgr without any Microsoft call: HTTP, routing, the gate
    // (token validation, tenant, seat) and a JSON answer. This is the request-handling
    // overhead that `GET /api/groups/{id}` adds to its Microsoft calls.
    let gated = format!("http://{addr}/api/activity");
    g.bench_function("groupmgr_overhead_without_microsoft", |b| {
        b.to_async(rt).iter(|| async {
            http.get(&gated)
                .bearer_auth(&user_token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        })
    });
    let health = format!("http://{addr}/api/health");
    g.bench_function("http_round_trip_health", |b| {
        b.to_async(rt)
            .iter(|| async { http.get(&health).send().await.unwrap().bytes().await.unwrap() })
    });
    g.finish();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("group_sync bench: skipped outside `cargo bench`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    sync_figures(&rt);
    let mut c = Criterion::default().configure_from_args();
    get_overhead(&mut c, &rt);
    c.final_summary();
}
