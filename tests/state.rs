//! Per-tenant job state with compare-and-swap writes, on both backends: Azure Blob Storage
//! (against Azurite) and the embedded store.

mod common;

use std::sync::Arc;

use common::azurite::Azurite;
use common::contoso;
use groupmgr::jobs::state::{EmbeddedState, StateError, TenantState};
use groupmgr::storage::{BlobState, parse_storage};
use groupmgr::store::{NewTenant, Store, sqlite::SqliteStore};

async fn contract(state: &dyn TenantState) {
    let t = contoso();
    assert!(state.load(&t, "audit/Audit.General").await.unwrap().is_none());
    let v1 = state
        .save(&t, "audit/Audit.General", "{\"bookmark\":1}", None)
        .await
        .unwrap();
    assert!(
        matches!(
            state.save(&t, "audit/Audit.General", "{}", None).await,
            Err(StateError::Conflict)
        ),
        "create only once"
    );
    let (text, v) = state.load(&t, "audit/Audit.General").await.unwrap().unwrap();
    assert_eq!((text.as_str(), &v), ("{\"bookmark\":1}", &v1));
    let v2 = state
        .save(&t, "audit/Audit.General", "{\"bookmark\":2}", Some(&v1))
        .await
        .unwrap();
    assert_ne!(v1, v2);
    // A second worker still holding v1 cannot advance it again.
    assert!(matches!(
        state
            .save(&t, "audit/Audit.General", "{\"bookmark\":3}", Some(&v1))
            .await,
        Err(StateError::Conflict)
    ));
    assert_eq!(
        state.load(&t, "audit/Audit.General").await.unwrap().unwrap().0,
        "{\"bookmark\":2}"
    );
    // Names are independent.
    assert!(state.load(&t, "audit/Audit.SharePoint").await.unwrap().is_none());

    // Offboarding forgets every piece of the tenant's state, and nobody else's.
    state.save(&t, "customer_list", "{}", None).await.unwrap();
    let other = common::fabrikam();
    state.save(&other, "customer_list", "{}", None).await.unwrap();
    assert_eq!(state.forget_tenant(&t).await.unwrap(), 2);
    assert!(state.load(&t, "audit/Audit.General").await.unwrap().is_none());
    assert!(state.load(&t, "customer_list").await.unwrap().is_none());
    assert!(state.load(&other, "customer_list").await.unwrap().is_some());
    assert_eq!(state.forget_tenant(&t).await.unwrap(), 0, "nothing left");
}

#[tokio::test]
async fn blob_state_on_azurite() {
    let Some(azurite) = Azurite::start("blob_state_on_azurite") else {
        return;
    };
    let conn = azurite.connection_string();
    let access = parse_storage(&groupmgr::storage::StorageSettings {
        connection_string: Some(&conn),
        ..Default::default()
    })
    .unwrap()
    .unwrap();
    let state = BlobState::new(access).unwrap();
    // A fresh account has no `groupmgr-state` container (infra creates it in Azure; a local
    // Azurite does not): the first write creates it.
    contract(&state).await;
    state.ensure_container().await.unwrap();
}

#[tokio::test]
async fn embedded_state() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    store
        .add_tenant(&NewTenant {
            tenant_id: contoso(),
            seats: groupmgr::domain::Seats::new(1).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
    store
        .add_tenant(&NewTenant {
            tenant_id: common::fabrikam(),
            seats: groupmgr::domain::Seats::new(1).unwrap(),
            licence_expires: None,
        })
        .await
        .unwrap();
    contract(&EmbeddedState(store)).await;
}

/// The lifecycle actions' daily cap with two workers (two independent clients of one storage
/// account, as two Function instances have): 40 reservations race for 7 places; exactly 7 are
/// taken, whatever the interleaving; the next day has its own.
#[tokio::test]
async fn the_daily_action_cap_holds_across_two_workers() {
    let Some(azurite) = Azurite::start("the_daily_action_cap_holds_across_two_workers") else {
        return;
    };
    let conn = azurite.connection_string();
    let worker = || {
        let access = parse_storage(&groupmgr::storage::StorageSettings {
            connection_string: Some(&conn),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        Arc::new(BlobState::new(access).unwrap())
    };
    let (a, b) = (worker(), worker());
    a.ensure_container().await.unwrap();
    let t = contoso();
    let now = chrono::Utc::now();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let state = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                groupmgr::lifecycle::cap::reserve(state.as_ref(), &t, now, 7)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(task.await.unwrap());
    }
    assert_eq!(taken, 7);
    assert_eq!(groupmgr::lifecycle::cap::taken(a.as_ref(), &t, now).await.unwrap(), 7);
    assert!(
        groupmgr::lifecycle::cap::reserve(b.as_ref(), &t, now + chrono::TimeDelta::days(1), 7)
            .await
            .unwrap()
    );
    // A refused action gives its place back: one more may act today, and only one.
    groupmgr::lifecycle::cap::release(a.as_ref(), &t, now).await.unwrap();
    assert_eq!(groupmgr::lifecycle::cap::taken(b.as_ref(), &t, now).await.unwrap(), 6);
    assert!(groupmgr::lifecycle::cap::reserve(b.as_ref(), &t, now, 7).await.unwrap());
    assert!(!groupmgr::lifecycle::cap::reserve(a.as_ref(), &t, now, 7).await.unwrap());
}
