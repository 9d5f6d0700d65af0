//! Token validation with a warm JWKS (target: median ≤ 50 µs), and the whole gate (validation
//! + tenant lookup + seat check on SQLite) for an existing user.
//!
//! Run: `cargo bench --bench token_validation`

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use groupmgr::auth::{Gate, JwksCache, JwksOptions, TokenValidator, bearer_from_header};
use groupmgr::crypto::IndexKey;
use groupmgr::crypto::UpnIndexer;
use groupmgr::domain::{Seats, TenantId};
use groupmgr::store::{NewTenant, Store, sqlite::SqliteStore};
use m365_sim::Sim;
use m365_sim::directory::{CONTOSO, GROUPMGR_CLIENT_ID};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (sim, validator, gate, token, _dir) = rt.block_on(async {
        let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let http = groupmgr::microsoft::http_client();
        let jwks = Arc::new(JwksCache::new(&sim.url(), http.clone(), JwksOptions::default()));
        jwks.prefetch().await.unwrap();
        let validator = TokenValidator::new(&sim.url(), GROUPMGR_CLIENT_ID, jwks.clone());
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("b.db")).await.unwrap());
        let tenant = TenantId::parse(&CONTOSO.to_string()).unwrap();
        store
            .add_tenant(&NewTenant {
                tenant_id: tenant,
                seats: Seats::new(10).unwrap(),
                licence_expires: None,
            })
            .await
            .unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let gate = Gate::new(
            TokenValidator::new(&sim.url(), GROUPMGR_CLIENT_ID, jwks),
            store,
            UpnIndexer::new(IndexKey::parse(&key).unwrap()),
            None,
        )
        .allowing(vec![m365_sim::directory::UI_CLIENT_ID]);
        let token = sim.user_token(CONTOSO, "admin");
        (sim, validator, gate, token, dir)
    });
    let header = format!("Bearer {token}");
    rt.block_on(async { gate.admit(Some(&header)).await.map(|_| ()).unwrap() });

    c.bench_function("token_validation_warm_jwks", |b| {
        b.to_async(&rt).iter(|| async {
            let t = bearer_from_header(Some(&header)).unwrap();
            validator.validate(&t).await.unwrap()
        })
    });
    c.bench_function("gate_admit_existing_user_sqlite", |b| {
        b.to_async(&rt)
            .iter(|| async { gate.admit(Some(&header)).await.map(|c| c.principal.tenant).unwrap() })
    });
    let tenant = TenantId::parse(&CONTOSO.to_string()).unwrap();
    let store = rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        s.add_tenant(&NewTenant {
            tenant_id: tenant,
            seats: Seats::new(10).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
        (s, dir)
    });
    c.bench_function("sqlite_tenant_lookup", |b| {
        b.to_async(&rt)
            .iter(|| async { store.0.tenant(&tenant).await.unwrap().unwrap() })
    });
    drop(sim);
}

criterion_group!(benches, bench);
criterion_main!(benches);
