//! Sealing costs (target: ≥ 200,000 records/s on one core for a 200-byte sensitive payload
//! with a warm data key), HPKE sealing of a data key, the UPN blind index, and end-to-end tenant
//! logging into SQLite (tracing event → channel → seal → batched insert).
//!
//! Run: `cargo bench --bench sealing`

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use groupmgr::crypto::IndexKey;
use groupmgr::crypto::seal::{LOG_RECORD_V2, log_record, seal_data_key};
use groupmgr::crypto::{DataKey, PublisherKey, TenantPrivateKey, UpnIndexer};
use groupmgr::domain::{Seats, TenantId};
use groupmgr::store::{NewTenant, Store, sqlite::SqliteStore};
use groupmgr::telemetry::{SinkOptions, TenantLogLayer, TenantLogSink};
use tracing_subscriber::layer::SubscriberExt as _;

const TENANT: &str = "6f1c2b4a-3d5e-4f70-8a9b-0c1d2e3f4a5b";

fn bench(c: &mut Criterion) {
    let tenant = TenantId::parse(TENANT).unwrap();
    let sk = TenantPrivateKey::generate();

    let mut g = c.benchmark_group("seal_log_record_200B");
    g.throughput(Throughput::Elements(1));
    let payload = br#"{"user":"adele.vance@contoso.onmicrosoft.com","client_ip":"203.0.113.7","group_name":"Contoso Marketing Team","method":"GET","function":"Group","status":200,"duration_ms":12.5,"note":"x"}"#;
    let padding = "x".repeat(200 - payload.len());
    let payload = String::from_utf8_lossy(payload).replace("\"note\":\"x\"", &format!("\"note\":\"x{padding}\""));
    let payload = payload.as_bytes();
    assert_eq!(payload.len(), 200);
    let id = uuid::Uuid::now_v7();
    let publisher = PublisherKey::parse(&base64::engine::general_purpose::STANDARD.encode([8u8; 32])).unwrap();
    g.bench_function("warm_data_key", |b| {
        b.iter_custom(|iters| {
            let (mut key, _, _) = DataKey::generate(tenant, sk.public(), Some(&publisher));
            let start = Instant::now();
            for _ in 0..iters {
                // A key seals at most 2^20 records; the rotation (one HPKE seal) is counted,
                // as it would be in production.
                // The record binds the entry's clear columns, as the tenant log seals it.
                let record = log_record(&id, Utc::now(), "INFO", "user_admitted", "{user} took a licensed seat");
                let sealed = match key.seal(LOG_RECORD_V2, &record, payload) {
                    Ok(s) => s,
                    Err(_) => {
                        key = DataKey::generate(tenant, sk.public(), Some(&publisher)).0;
                        key.seal(LOG_RECORD_V2, &record, payload).unwrap()
                    }
                };
                std::hint::black_box(sealed);
            }
            start.elapsed()
        })
    });
    g.finish();

    c.bench_function("hpke_seal_data_key", |b| {
        let key_id = uuid::Uuid::new_v4();
        b.iter(|| seal_data_key(sk.public(), &tenant, &key_id, &[7u8; 32], None))
    });
    c.bench_function("hpke_seal_data_key_auth_mode", |b| {
        let key_id = uuid::Uuid::new_v4();
        b.iter(|| seal_data_key(sk.public(), &tenant, &key_id, &[7u8; 32], Some(&publisher)))
    });

    let indexer =
        UpnIndexer::new(IndexKey::parse(&base64::engine::general_purpose::STANDARD.encode([3u8; 32])).unwrap());
    c.bench_function("upn_blind_index", |b| {
        b.iter(|| indexer.index(&tenant, "Adele.Vance@Contoso.onmicrosoft.com"))
    });

    // End to end: events through the tracing layer into SQLite, measured until flushed.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = rt.block_on(async {
        let s: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).await.unwrap());
        s.add_tenant(&NewTenant {
            tenant_id: tenant,
            seats: Seats::new(10).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
        s.set_log_public_key(&tenant, sk.public()).await.unwrap();
        s
    });
    let (sink, _writer) = rt.block_on(async { TenantLogSink::start(store.clone(), SinkOptions::default()) });
    let subscriber = Arc::new(tracing_subscriber::registry().with(TenantLogLayer(sink.clone())));
    let mut g = c.benchmark_group("tenant_log_end_to_end_sqlite");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("event_to_committed_row", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut sent = 0;
            while sent < iters {
                // Bursts below the buffer size, so nothing is dropped and every row is written.
                let burst = (iters - sent).min(8_000);
                tracing::subscriber::with_default(subscriber.clone(), || {
                    for i in 0..burst {
                        tracing::info!(
                            event = "request",
                            tenant_id = TENANT,
                            method = "GET",
                            function = "Group",
                            status = 200u16,
                            duration_ms = 3.2,
                            user = "adele.vance@contoso.onmicrosoft.com",
                            client_ip = "203.0.113.7",
                            seq = i
                        );
                    }
                });
                rt.block_on(sink.flush());
                sent += burst;
            }
            start.elapsed()
        })
    });
    g.finish();
    assert_eq!(
        sink.stats().dropped_full.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the benchmark dropped entries"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
