//! The schedule is one schedule: standalone `serve` (no Functions host) runs in process what
//! the `SyncScheduler` timer does under a host — including its housekeeping, the purge of
//! offboarded tenants' logs once the 30-day retention has passed.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::binary::serve;
use common::settings_map;
use groupmgr::crypto::SealedValue;
use groupmgr::domain::{Seats, TenantId};
use groupmgr::store::{LogQuery, LogRecord, NewTenant, Store, sqlite::SqliteStore};
use m365_sim::Sim;

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
