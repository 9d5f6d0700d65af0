//! The tenant-log sink in-process: events reach the store sealed, batching, data-key rotation,
//! a full buffer degrading to counted drops (never blocking, never plaintext), and the stdout
//! format's redaction.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use groupmgr::crypto::TenantPrivateKey;
use groupmgr::decrypt::Opener;
use groupmgr::domain::{Seats, TenantId};
use groupmgr::store::{LogQuery, NewTenant, Store, sqlite::SqliteStore};
use groupmgr::telemetry::{SinkOptions, TenantLogLayer, TenantLogSink};
use tracing_subscriber::layer::SubscriberExt as _;

const TENANT: &str = "6f1c2b4a-3d5e-4f70-8a9b-0c1d2e3f4a5b";

async fn setup(with_key: bool) -> (Arc<dyn Store>, TenantId, TenantPrivateKey) {
    setup_on(Arc::new(SqliteStore::in_memory().unwrap()), with_key).await
}

/// Registers the tenant on `store` (with a log key if asked).
async fn setup_on(store: Arc<dyn Store>, with_key: bool) -> (Arc<dyn Store>, TenantId, TenantPrivateKey) {
    let tenant = TenantId::parse(TENANT).unwrap();
    store
        .add_tenant(&NewTenant {
            tenant_id: tenant,
            seats: Seats::new(5).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
    let key = TenantPrivateKey::generate();
    if with_key {
        store.set_log_public_key(&tenant, key.public()).await.unwrap();
    }
    (store, tenant, key)
}

/// Every stored (sealed) entry of the tenant, oldest first.
async fn stored_logs(store: &Arc<dyn Store>, tenant: &TenantId) -> Vec<groupmgr::store::LogRecord> {
    store
        .logs(
            tenant,
            &LogQuery {
                limit: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

async fn read_all(
    store: &Arc<dyn Store>,
    tenant: &TenantId,
    key: &TenantPrivateKey,
) -> Vec<groupmgr::decrypt::OpenedLog> {
    let keys = store.log_keys(tenant).await.unwrap();
    let opener = Opener::new(key, *tenant, &keys, &[]);
    stored_logs(store, tenant)
        .await
        .iter()
        .map(|r| opener.open_log(r).expect("every entry opens"))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn tenant_scoped_events_are_sealed_into_the_store() {
    let (store, tenant, key) = setup(true).await;
    let (sink, _w) = TenantLogSink::start(store.clone(), SinkOptions::default());
    let subscriber = tracing_subscriber::registry().with(TenantLogLayer(sink.clone()));
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::info!(event = "user_admitted", tenant_id = TENANT, user = "lee@contoso.com");
        tracing::info!(event = "user_admitted", user = "no-tenant@contoso.com");
        tracing::info!(event = "not_catalogued", tenant_id = TENANT, user = "x@contoso.com");
        tracing::info!(tenant_id = TENANT, user = "no-code@contoso.com", "free text");
    }
    sink.flush().await;
    let logs = read_all(&store, &tenant, &key).await;
    assert_eq!(logs.len(), 1, "only catalogued, tenant-scoped events: {logs:?}");
    assert_eq!(logs[0].message, "lee@contoso.com took a licensed seat");
    assert_eq!(logs[0].event, "user_admitted");
    let raw = stored_logs(&store, &tenant).await;
    assert_eq!(
        raw[0].message, "{user} took a licensed seat",
        "the template is stored, not the rendered text"
    );
    assert!(!String::from_utf8_lossy(&raw[0].sealed.ciphertext).contains("lee@"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_keys_rotate_and_old_records_still_open() {
    let (store, tenant, key) = setup(true).await;
    // A zero lifetime forces a new data key for every batch.
    let options = SinkOptions {
        key_max_age: Duration::ZERO,
        ..Default::default()
    };
    let (sink, _w) = TenantLogSink::start(store.clone(), options);
    let subscriber = Arc::new(tracing_subscriber::registry().with(TenantLogLayer(sink.clone())));
    for batch in 0..3 {
        tracing::subscriber::with_default(subscriber.clone(), || {
            for i in 0..10 {
                tracing::info!(
                    event = "user_admitted",
                    tenant_id = TENANT,
                    user = format!("u{batch}-{i}@contoso.com")
                );
            }
        });
        sink.flush().await;
    }
    assert!(store.log_keys(&tenant).await.unwrap().len() >= 3);
    assert_eq!(
        sink.stats().data_keys_created.load(Ordering::Relaxed),
        store.log_keys(&tenant).await.unwrap().len() as u64
    );
    let logs = read_all(&store, &tenant, &key).await;
    assert_eq!(logs.len(), 30);

    // A new tenant key takes over at once; records under the old one keep opening with it.
    let key2 = TenantPrivateKey::generate();
    store.set_log_public_key(&tenant, key2.public()).await.unwrap();
    tracing::subscriber::with_default(subscriber.clone(), || {
        tracing::info!(event = "user_admitted", tenant_id = TENANT, user = "after@contoso.com");
    });
    sink.flush().await;
    let keys = store.log_keys(&tenant).await.unwrap();
    let entries = stored_logs(&store, &tenant).await;
    let old = Opener::new(&key, tenant, &keys, &[]);
    let new = Opener::new(&key2, tenant, &keys, &[]);
    assert_eq!(entries.iter().filter(|e| old.open_log(e).is_ok()).count(), 30);
    assert_eq!(entries.iter().filter(|e| new.open_log(e).is_ok()).count(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_buffer_drops_and_counts_without_blocking() {
    let (store, tenant, key) = setup(true).await;
    let options = SinkOptions {
        capacity: 4,
        ..Default::default()
    };
    let (sink, _w) = TenantLogSink::start(store.clone(), options);
    let subscriber = tracing_subscriber::registry().with(TenantLogLayer(sink.clone()));
    let started = std::time::Instant::now();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        // On a current-thread runtime the writer cannot run during this loop: the buffer fills.
        for i in 0..1000 {
            tracing::info!(
                event = "user_admitted",
                tenant_id = TENANT,
                user = format!("u{i}@contoso.com")
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "logging never waits for the writer"
    );
    let dropped = sink.stats().dropped_full.load(Ordering::Relaxed);
    assert_eq!(dropped, 996);
    sink.flush().await;
    assert_eq!(read_all(&store, &tenant, &key).await.len(), 4);
    assert_eq!(sink.stats().written.load(Ordering::Relaxed), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_key_nothing_is_written_and_the_drop_is_counted() {
    let (store, tenant, _key) = setup(false).await;
    let (sink, _w) = TenantLogSink::start(store.clone(), SinkOptions::default());
    let subscriber = tracing_subscriber::registry().with(TenantLogLayer(sink.clone()));
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::info!(event = "user_admitted", tenant_id = TENANT, user = "lee@contoso.com");
    }
    sink.flush().await;
    assert_eq!(sink.stats().dropped_no_key.load(Ordering::Relaxed), 1);
    assert!(stored_logs(&store, &tenant).await.is_empty());
    assert!(store.log_keys(&tenant).await.unwrap().is_empty());
}

#[test]
fn stdout_lines_redact_everything_not_on_the_clear_list() {
    use std::sync::Mutex;
    // Capture what the stdout formatter produces for a few events.
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0
                .lock()
                .unwrap()
                .push(groupmgr::telemetry::stdout::format_event(e, chrono::Utc::now()));
        }
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(
            event = "request",
            tenant_id = TENANT,
            method = "GET",
            function = "Groups",
            status = 200u16,
            duration_ms = 1.5,
            user = "lee@contoso.com",
            client_ip = "203.0.113.7"
        );
        tracing::info!(
            event = "user_admitted",
            tenant_id = TENANT,
            user = "lee@contoso.com",
            group_name = "Secret Project"
        );
    });
    let lines = lines.lock().unwrap();
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["status"], 200);
    assert_eq!(first["function"], "Groups");
    assert_eq!(first["user"], "[redacted]");
    assert_eq!(first["client_ip"], "[redacted]");
    assert_eq!(
        first["message"],
        "{method} {function} answered {status} in {duration_ms} ms for {user} from {client_ip}"
    );
    let all = lines.join("\n");
    for secret in ["lee@contoso.com", "203.0.113.7", "Secret Project"] {
        assert!(!all.contains(secret), "{secret} reached stdout");
    }
}

/// Someone with write access to the database (and the tenant's public key, which is public)
/// re-dates, re-levels or forges entries: `logs decrypt`, given GroupMgr's publisher key,
/// reports each for what it is; genuine entries are vouched for; first-form entries (sealed
/// before clear columns were bound) still open and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_and_forged_entries_are_reported_and_genuine_ones_vouched_for() {
    use base64::Engine as _;
    use groupmgr::cli::logs::{Format, decrypt_from_store};
    use groupmgr::crypto::seal::{LOG_RECORD, LOG_RECORD_V2, log_record};
    use groupmgr::crypto::{DataKey, PublisherKey};
    use groupmgr::store::{LogKeyRecord, LogRecord};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groupmgr.db");
    let (store, tenant, key) = setup_on(Arc::new(SqliteStore::open(&path).await.unwrap()), true).await;
    let raw = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let publisher = Arc::new(PublisherKey::parse(&raw).unwrap());
    let options = SinkOptions {
        publisher: Some(publisher.clone()),
        ..Default::default()
    };
    let (sink, _w) = TenantLogSink::start(store.clone(), options);
    let subscriber = Arc::new(tracing_subscriber::registry().with(TenantLogLayer(sink.clone())));
    tracing::subscriber::with_default(subscriber, || {
        for user in ["a@contoso.com", "b@contoso.com", "c@contoso.com"] {
            tracing::info!(event = "user_admitted", tenant_id = TENANT, user);
        }
    });
    sink.flush().await;
    let genuine = stored_logs(&store, &tenant).await;
    assert_eq!(genuine.len(), 3);

    // The attacker re-dates the first entry and raises the second's level, in SQL.
    let db = rusqlite::Connection::open(&path).unwrap();
    let day = 86_400_000_000_i64;
    db.execute(
        "UPDATE logs SET time = time - ?1 WHERE id = ?2",
        rusqlite::params![day, genuine[0].id.to_string()],
    )
    .unwrap();
    db.execute(
        "UPDATE logs SET level = 'ERROR' WHERE id = ?1",
        [genuine[1].id.to_string()],
    )
    .unwrap();
    // And seals entries of its own, with a key pair of its own (HPKE Auth mode) and without
    // (Base mode, as entries were sealed before the publisher key).
    let mallory = PublisherKey::parse(&base64::engine::general_purpose::STANDARD.encode([66u8; 32])).unwrap();
    let forge = |sender: Option<&PublisherKey>, first_form: bool| {
        let (data_key, enc, sealed_key) = DataKey::generate(tenant, key.public(), sender);
        let id = uuid::Uuid::now_v7();
        let time = chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
        let (level, event, message) = ("INFO", "user_admitted", "{user} took a licensed seat");
        let fields = br#"{"user":"mallory@contoso.com"}"#;
        let sealed = if first_form {
            data_key.seal(LOG_RECORD, id.as_bytes(), fields)
        } else {
            data_key.seal(LOG_RECORD_V2, &log_record(&id, time, level, event, message), fields)
        };
        let key_record = LogKeyRecord {
            key_id: data_key.key_id,
            tenant_id: tenant,
            public_key_id: key.public().id().to_string(),
            enc,
            sealed_key,
            created_at: chrono::Utc::now(),
            sender_public_key: sender.map(|s| s.public().as_bytes().to_vec()),
        };
        let entry = LogRecord {
            id,
            tenant_id: tenant,
            time,
            level: level.into(),
            event: event.into(),
            message: message.into(),
            sealed: sealed.unwrap(),
        };
        (key_record, entry)
    };
    for (k, e) in [forge(Some(&mallory), false), forge(None, false), forge(None, true)] {
        store.put_log_key(&k).await.unwrap();
        store.append_logs(&[e]).await.unwrap();
    }

    let mut lines = Vec::new();
    let tally = decrypt_from_store(
        store.as_ref(),
        &key,
        std::slice::from_ref(publisher.public()),
        Some(tenant),
        None,
        None,
        Format::Json,
        &mut |l| lines.push(serde_json::from_str::<serde_json::Value>(&l).unwrap()),
    )
    .await
    .unwrap();
    let by_id = |id: uuid::Uuid| lines.iter().find(|l| l["id"] == id.to_string()).unwrap().clone();
    // Edited in SQL: neither form opens.
    for edited in [&genuine[0], &genuine[1]] {
        let line = by_id(edited.id);
        assert!(
            line["error"].as_str().unwrap().contains("integrity check failed"),
            "{line}"
        );
    }
    // Untouched: opened, sealed by GroupMgr, every column bound.
    let line = by_id(genuine[2].id);
    assert_eq!(
        (line["sender"].as_str(), line["form"].as_str()),
        (Some("groupmgr"), Some("v2")),
        "{line}"
    );
    assert_eq!(line["message"], "c@contoso.com took a licensed seat");
    // Forged: named as such, or opened but unauthenticated.
    let forged: Vec<&serde_json::Value> = lines.iter().filter(|l| l["sender"] != "groupmgr").collect();
    assert_eq!(forged.len(), 5, "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["error"].as_str().is_some_and(|e| e.starts_with("forged")))
            .count(),
        1,
        "{lines:?}"
    );
    let unauthenticated: Vec<_> = lines.iter().filter(|l| l["sender"] == "unauthenticated").collect();
    assert_eq!(unauthenticated.len(), 2);
    assert_eq!(
        unauthenticated
            .iter()
            .map(|l| l["form"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["v2", "v1"],
        "a first-form entry still opens and says which form it has"
    );
    assert_eq!(
        (tally.opened, tally.unauthenticated, tally.failed),
        (3, 2, 3),
        "{lines:?}"
    );

    // After a rotation the reader names both publisher keys: entries sealed under the earlier
    // one are still GroupMgr's.
    let rotated = PublisherKey::parse(&base64::engine::general_purpose::STANDARD.encode([8u8; 32])).unwrap();
    let both = [rotated.public().clone(), publisher.public().clone()];
    let mut lines = Vec::new();
    decrypt_from_store(
        store.as_ref(),
        &key,
        &both,
        Some(tenant),
        None,
        None,
        Format::Json,
        &mut |l| lines.push(serde_json::from_str::<serde_json::Value>(&l).unwrap()),
    )
    .await
    .unwrap();
    let after_rotation = lines.iter().find(|l| l["id"] == genuine[2].id.to_string()).unwrap();
    assert_eq!(after_rotation["sender"], "groupmgr", "{after_rotation}");

    // A saved response names its own `publisherKey`; whoever holds the file could change it
    // along with the entries, so it vouches for nothing: Mallory's entry in a file claiming
    // Mallory's key as the publisher's is named, not vouched for.
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let all = stored_logs(&store, &tenant).await;
    let keys = store.log_keys(&tenant).await.unwrap();
    let page = serde_json::json!({
        "tenantId": tenant.to_string(),
        "publisherKey": mallory.public().to_text(),
        "value": all.iter().map(|e| serde_json::json!({
            "id": e.id, "time": e.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": e.level, "event": e.event, "message": e.message,
            "keyId": e.sealed.key_id, "nonce": b64(&e.sealed.nonce), "sealed": b64(&e.sealed.ciphertext),
        })).collect::<Vec<_>>(),
        "keys": keys.iter().map(|k| serde_json::json!({
            "keyId": k.key_id, "publicKeyId": k.public_key_id, "enc": b64(&k.enc),
            "sealedKey": b64(&k.sealed_key), "senderPublicKey": k.sender_public_key.as_deref().map(b64),
        })).collect::<Vec<_>>(),
        "nextCursor": null,
    });
    let mut lines = Vec::new();
    groupmgr::cli::logs::decrypt_saved(&page.to_string(), &key, &[], None, Format::Json, &mut |l| {
        lines.push(serde_json::from_str::<serde_json::Value>(&l).unwrap())
    })
    .unwrap();
    assert!(lines.iter().all(|l| l["sender"] != "groupmgr"), "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["sender"] == format!("unverified:{}", mallory.public().id()))
            .count(),
        1
    );
    // With GroupMgr's key named, the saved response reads as the database did.
    let mut lines = Vec::new();
    let tally = groupmgr::cli::logs::decrypt_saved(
        &page.to_string(),
        &key,
        std::slice::from_ref(publisher.public()),
        None,
        Format::Json,
        &mut |l| lines.push(serde_json::from_str::<serde_json::Value>(&l).unwrap()),
    )
    .unwrap();
    assert_eq!(
        (tally.opened, tally.unauthenticated, tally.failed),
        (3, 2, 3),
        "{lines:?}"
    );
}
