//! One contract for every `Store`: SQLite always; SQL Server / Azure SQL when
//! `GROUPMGR_TEST_MSSQL` holds a connection string (otherwise that test says SKIPPED).
//! Tenant ids are random per run, so the suite can run against a shared database.

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use groupmgr::crypto::{BlindIndex, SealedValue};
use groupmgr::domain::{Seats, TenantId, TenantStatus};
use groupmgr::store::{
    Admission, LogKeyRecord, LogQuery, LogRecord, NewTenant, Store, StoreError, mssql::MssqlStore, sqlite::SqliteStore,
};

fn random_tenant() -> TenantId {
    TenantId::parse(&uuid::Uuid::new_v4().to_string()).unwrap()
}

fn index(n: u8) -> BlindIndex {
    BlindIndex([n; 32])
}

/// A time with microsecond precision (what both stores keep).
fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + secs, 123_456_000).unwrap()
}

fn sealed(key: uuid::Uuid, byte: u8) -> SealedValue {
    SealedValue {
        key_id: key,
        nonce: [byte; 12],
        ciphertext: vec![byte; 40],
    }
}

async fn new_tenant(store: &dyn Store, seats: u32) -> TenantId {
    let id = random_tenant();
    store
        .add_tenant(&NewTenant {
            tenant_id: id,
            seats: Seats::new(seats).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
    id
}

async fn tenants_contract(store: &dyn Store) {
    let id = random_tenant();
    let expires = chrono::NaiveDate::from_ymd_opt(2027, 6, 30);
    let rec = store
        .add_tenant(&NewTenant {
            tenant_id: id,
            seats: Seats::new(10).unwrap(),
            licence_expires: expires,
        })
        .await
        .unwrap();
    assert_eq!(rec.status, TenantStatus::Active);
    let got = store.tenant(&id).await.unwrap().unwrap();
    assert_eq!(got, rec, "a tenant reads back exactly as registered");
    assert!(matches!(
        store
            .add_tenant(&NewTenant {
                tenant_id: id,
                seats: Seats::new(1).unwrap(),
                licence_expires: None
            })
            .await,
        Err(StoreError::Duplicate)
    ));
    assert!(store.tenant(&random_tenant()).await.unwrap().is_none());

    store.set_status(&id, TenantStatus::Suspended).await.unwrap();
    store.set_seats(&id, Seats::new(3).unwrap()).await.unwrap();
    store.set_licence_expiry(&id, None).await.unwrap();
    let got = store.tenant(&id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.seats.get(), got.licence_expires),
        (TenantStatus::Suspended, 3, None)
    );

    let unknown = random_tenant();
    assert!(matches!(
        store.set_status(&unknown, TenantStatus::Active).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_seats(&unknown, Seats::new(1).unwrap()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_licence_expiry(&unknown, None).await,
        Err(StoreError::NotFound)
    ));

    let other = new_tenant(store, 1).await;
    let listed: Vec<TenantId> = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.tenant_id)
        .collect();
    assert!(listed.contains(&id) && listed.contains(&other));
    let mut sorted = listed.clone();
    sorted.sort_by_key(|t| t.to_string());
    assert_eq!(listed, sorted, "tenants are listed in tenant id order");
}

async fn users_contract(store: &dyn Store) {
    let tenant = new_tenant(store, 2).await;
    let seats = Seats::new(2).unwrap();
    assert_eq!(
        store.admit_user(&tenant, &index(1), seats, t(0)).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        store.admit_user(&tenant, &index(1), seats, t(10)).await.unwrap(),
        Admission::Existing { upn_sealed: false }
    );
    assert_eq!(
        store.admit_user(&tenant, &index(2), seats, t(20)).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        store.admit_user(&tenant, &index(3), seats, t(30)).await.unwrap(),
        Admission::SeatsExhausted
    );
    assert_eq!(
        store.admit_user(&tenant, &index(2), seats, t(40)).await.unwrap(),
        Admission::Existing { upn_sealed: false }
    );
    assert_eq!(store.licensed_user_count(&tenant).await.unwrap(), 2);

    // last_seen moves only when it is more than an hour old.
    let two_hours = 7200;
    store.admit_user(&tenant, &index(1), seats, t(two_hours)).await.unwrap();
    let users = store.licensed_users(&tenant).await.unwrap();
    assert_eq!(users.len(), 2);
    let u1 = users.iter().find(|u| u.upn_index == index(1)).unwrap();
    let u2 = users.iter().find(|u| u.upn_index == index(2)).unwrap();
    assert_eq!((u1.first_seen, u1.last_seen), (t(0), t(two_hours)));
    assert_eq!((u2.first_seen, u2.last_seen), (t(20), t(20)));
    assert!(u1.sealed_upn.is_none());

    let key = uuid::Uuid::new_v4();
    store.set_sealed_upn(&tenant, &index(1), &sealed(key, 7)).await.unwrap();
    let users = store.licensed_users(&tenant).await.unwrap();
    assert_eq!(
        users.iter().find(|u| u.upn_index == index(1)).unwrap().sealed_upn,
        Some(sealed(key, 7))
    );
    assert!(matches!(
        store.set_sealed_upn(&tenant, &index(9), &sealed(key, 7)).await,
        Err(StoreError::NotFound)
    ));

    // Once sealed, admissions say so, on the fast path and on the refreshing path.
    assert_eq!(
        store
            .admit_user(&tenant, &index(1), seats, t(two_hours + 1))
            .await
            .unwrap(),
        Admission::Existing { upn_sealed: true }
    );
    assert_eq!(
        store
            .admit_user(&tenant, &index(1), seats, t(3 * two_hours))
            .await
            .unwrap(),
        Admission::Existing { upn_sealed: true }
    );
    assert_eq!(
        store
            .admit_user(&tenant, &index(2), seats, t(3 * two_hours))
            .await
            .unwrap(),
        Admission::Existing { upn_sealed: false }
    );

    // Seats are per tenant.
    let other = new_tenant(store, 1).await;
    assert_eq!(
        store
            .admit_user(&other, &index(1), Seats::new(1).unwrap(), t(0))
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(store.licensed_user_count(&tenant).await.unwrap(), 2);
    assert_eq!(store.licensed_users(&other).await.unwrap().len(), 1);
}

async fn concurrent_admissions_contract(store: Arc<dyn Store>) {
    let tenant = new_tenant(store.as_ref(), 5).await;
    let seats = Seats::new(5).unwrap();
    let handles: Vec<_> = (0..20u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.admit_user(&tenant, &index(100 + i), seats, t(0)).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for h in handles {
        if h.await.unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(store.licensed_user_count(&tenant).await.unwrap(), 5);
}

fn log(tenant: TenantId, key: uuid::Uuid, secs: i64, n: u8) -> LogRecord {
    LogRecord {
        id: uuid::Uuid::new_v4(),
        tenant_id: tenant,
        time: t(secs),
        level: "INFO".into(),
        event: "group_created".into(),
        message: "group {group} created by {user}".into(),
        sealed: sealed(key, n),
    }
}

async fn logs_contract(store: &dyn Store) {
    let tenant = new_tenant(store, 1).await;
    let other = new_tenant(store, 1).await;
    let key = LogKeyRecord {
        key_id: uuid::Uuid::new_v4(),
        tenant_id: tenant,
        public_key_id: "pk-1".into(),
        enc: vec![1; 32],
        sealed_key: vec![2; 48],
        created_at: t(0),
        sender_public_key: None,
    };
    // Sealed in HPKE Auth mode: the sender's public key round-trips.
    let key2 = LogKeyRecord {
        key_id: uuid::Uuid::new_v4(),
        public_key_id: "pk-2".into(),
        created_at: t(100),
        sender_public_key: Some(vec![9; 32]),
        ..key.clone()
    };
    store.put_log_key(&key2).await.unwrap();
    store.put_log_key(&key).await.unwrap();
    assert!(matches!(store.put_log_key(&key).await, Err(StoreError::Duplicate)));
    assert_eq!(
        store.log_keys(&tenant).await.unwrap(),
        vec![key.clone(), key2.clone()],
        "oldest first"
    );
    assert!(store.log_keys(&other).await.unwrap().is_empty());

    // 250 entries (more than one SQL Server INSERT statement), two at each second.
    let entries: Vec<LogRecord> = (0..250)
        .map(|i| log(tenant, key.key_id, i / 2, (i % 250) as u8))
        .collect();
    store.append_logs(&entries).await.unwrap();
    store.append_logs(&[log(other, key.key_id, 5, 1)]).await.unwrap();

    let all = store
        .logs(
            &tenant,
            &LogQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    // Read back exactly, oldest first, ties in time ordered by id.
    let mut expected = entries.clone();
    expected.sort_by_key(|e| (e.time, e.id));
    assert_eq!(all, expected);

    // Paging with the (time, id) cursor visits every entry once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .logs(
                &tenant,
                &LogQuery {
                    after,
                    limit: 37,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| (e.time, e.id));
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(seen, all.iter().map(|e| e.id).collect::<Vec<_>>());

    let window = store
        .logs(
            &tenant,
            &LogQuery {
                since: Some(t(10)),
                until: Some(t(20)),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(window.len(), 20, "since is inclusive, until exclusive");
    assert!(window.iter().all(|e| e.time >= t(10) && e.time < t(20)));

    assert_eq!(
        store
            .logs(
                &other,
                &LogQuery {
                    limit: 1000,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn offboard_contract(store: &dyn Store) {
    let tenant = new_tenant(store, 3).await;
    let seats = Seats::new(3).unwrap();
    store.admit_user(&tenant, &index(1), seats, t(0)).await.unwrap();
    let key = LogKeyRecord {
        key_id: uuid::Uuid::new_v4(),
        tenant_id: tenant,
        public_key_id: "pk".into(),
        enc: vec![1; 32],
        sealed_key: vec![2; 48],
        created_at: t(0),
        sender_public_key: None,
    };
    store.put_log_key(&key).await.unwrap();
    store
        .append_logs(&[log(tenant, key.key_id, 1, 1), log(tenant, key.key_id, 2, 2)])
        .await
        .unwrap();

    assert_eq!(store.offboard(&tenant, t(100)).await.unwrap(), 2);
    assert_eq!(
        store.tenant(&tenant).await.unwrap().unwrap().status,
        TenantStatus::Offboarded
    );
    assert!(store.log_keys(&tenant).await.unwrap().is_empty());
    assert_eq!(store.licensed_user_count(&tenant).await.unwrap(), 0);
    assert!(matches!(
        store.offboard(&random_tenant(), t(0)).await,
        Err(StoreError::NotFound)
    ));

    // The retention boundary: 29 days after offboarding the (unreadable) logs are kept, 31
    // days after they are purged — with the cutoff the schedule uses.
    let remaining = || async {
        store
            .logs(
                &tenant,
                &LogQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .len()
    };
    let retention = groupmgr::store::OFFBOARDED_LOG_RETENTION;
    store
        .purge_offboarded_logs(t(100) + TimeDelta::days(29) - retention)
        .await
        .unwrap();
    assert_eq!(remaining().await, 2, "29 days: kept");
    assert!(
        store
            .purge_offboarded_logs(t(100) + TimeDelta::days(31) - retention)
            .await
            .unwrap()
            >= 2
    );
    assert_eq!(remaining().await, 0, "31 days: purged");
}

async fn state_contract(store: &dyn Store) {
    let tenant = new_tenant(store, 1).await;
    assert_eq!(store.get_state(&tenant, "delta").await.unwrap(), None);
    assert_eq!(store.put_state(&tenant, "delta", "link-1", None).await.unwrap(), 1);
    assert!(
        matches!(
            store.put_state(&tenant, "delta", "again", None).await,
            Err(StoreError::Conflict)
        ),
        "create only if absent"
    );
    assert_eq!(
        store.get_state(&tenant, "delta").await.unwrap(),
        Some(("link-1".into(), 1))
    );
    assert_eq!(store.put_state(&tenant, "delta", "link-2", Some(1)).await.unwrap(), 2);
    assert!(
        matches!(
            store.put_state(&tenant, "delta", "stale", Some(1)).await,
            Err(StoreError::Conflict)
        ),
        "compare-and-swap"
    );
    assert_eq!(
        store.get_state(&tenant, "delta").await.unwrap(),
        Some(("link-2".into(), 2))
    );
    let other = new_tenant(store, 1).await;
    assert_eq!(store.get_state(&other, "delta").await.unwrap(), None, "per tenant");
    store.delete_state(&tenant, "delta").await.unwrap();
    assert_eq!(store.get_state(&tenant, "delta").await.unwrap(), None);
    // Forgetting a tenant's state takes all of it, and nobody else's.
    store.put_state(&tenant, "a", "1", None).await.unwrap();
    store.put_state(&tenant, "b", "2", None).await.unwrap();
    store.put_state(&other, "a", "3", None).await.unwrap();
    assert_eq!(store.forget_state(&tenant).await.unwrap(), 2);
    assert_eq!(store.get_state(&tenant, "a").await.unwrap(), None);
    assert_eq!(store.get_state(&tenant, "b").await.unwrap(), None);
    assert_eq!(store.get_state(&other, "a").await.unwrap(), Some(("3".into(), 1)));
    store.put_state(&tenant, "list", "x", None).await.unwrap();
    store.offboard(&tenant, Utc::now()).await.unwrap();
    assert_eq!(
        store.get_state(&tenant, "list").await.unwrap(),
        None,
        "offboarding forgets state"
    );
}

async fn operator_trail_contract(store: &dyn Store) {
    let tenant = new_tenant(store, 1).await;
    let first_seq = store.last_operator_entry().await.unwrap().map_or(1, |e| e.seq + 1);
    let entry = |seq: i64, tenant_id: Option<TenantId>| groupmgr::store::OperatorEntry {
        seq,
        at: t(seq),
        operator: "entra:0f0e0d0c-0b0a-4908-8706-050403020100/11112222-3333-4444-8555-666677778888".into(),
        command: "tenant offboard".into(),
        tenant_id,
        detail: "seats=5 expires=none".into(),
        prev_hash: [seq as u8; 32],
        hash: [seq as u8 + 1; 32],
    };
    let a = entry(first_seq, Some(tenant));
    let b = entry(first_seq + 1, None);
    store.insert_operator_entry(&a).await.unwrap();
    store.insert_operator_entry(&b).await.unwrap();
    assert!(
        matches!(
            store.insert_operator_entry(&entry(first_seq, None)).await,
            Err(StoreError::Duplicate)
        ),
        "a sequence number is taken once"
    );
    assert_eq!(store.last_operator_entry().await.unwrap(), Some(b.clone()));
    assert_eq!(
        store.operator_entries(first_seq - 1, 10).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.operator_entries(first_seq, 10).await.unwrap(), vec![b]);
    assert_eq!(store.operator_entries(first_seq - 1, 1).await.unwrap(), vec![a]);
}

async fn run_contract(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    tenants_contract(store.as_ref()).await;
    users_contract(store.as_ref()).await;
    concurrent_admissions_contract(store.clone()).await;
    logs_contract(store.as_ref()).await;
    offboard_contract(store.as_ref()).await;
    state_contract(store.as_ref()).await;
    operator_trail_contract(store.as_ref()).await;
}

#[tokio::test]
async fn store_contract_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contract.db");
    run_contract(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
    // Reopening applies no migration twice and keeps the data.
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert!(!reopened.tenants().await.unwrap().is_empty());
}

#[tokio::test]
async fn store_contract_sql_server() {
    let Some(conn) = std::env::var("GROUPMGR_TEST_MSSQL").ok().filter(|s| !s.is_empty()) else {
        common::skip::skip(
            "store_contract_sql_server",
            "set GROUPMGR_TEST_MSSQL to a SQL Server connection string to run it",
            common::skip::OnCi::MayLack,
        );
        return;
    };
    let store = MssqlStore::connect(&conn).await.expect("GROUPMGR_TEST_MSSQL connects");
    run_contract(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_survives_a_second_process_writing_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let tenant = new_tenant(a.as_ref(), 4).await;
    let seats = Seats::new(4).unwrap();
    let mut handles = Vec::new();
    for i in 0..8u8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(tokio::spawn(async move {
            s.admit_user(&tenant, &index(i), seats, t(0) + TimeDelta::seconds(i.into()))
                .await
                .unwrap()
        }));
    }
    let admitted = futures_util::future::join_all(handles)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap() == Admission::Admitted)
        .count();
    assert_eq!(admitted, 4);
}
