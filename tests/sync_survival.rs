//! A sync that survives real tenants (issue 12): bounded invocations that continue where the
//! last one stopped, one run per tenant, activity that never goes backwards, rows SharePoint
//! refuses kept aside, sites that appear late, and conditions only the tenant can fix.
//! Everything against m365-sim with its real-tenant defaults (list writes throttled, sites
//! provisioned late) and small pages. The runs of the real binary killed with `kill -9` are
//! in `tests/binary.rs`.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::rows::*;
use common::*;
use groupmgr::jobs::TenantSyncMessage;
use groupmgr::jobs::tenant_sync::{self, SyncOutcome, TenantSyncError};
use m365_sim::audit::AuditOptions;
use m365_sim::directory::CONTOSO;
use m365_sim::{FaultKind, FaultRule, Hold, SimOptions};
use serde_json::{Value, json};

/// The app with the audit feed, small delta and audit pages and three records per blob;
/// Contoso has `groups` groups. List pages are SharePoint's 200: reading the whole list (the
/// end of a full round, the start of an activity pass) is one step that must fit in a budget.
fn with_audit(groups: usize, env: Vec<(&'static str, String)>) -> Spawn {
    Spawn {
        audit: true,
        sim: SimOptions {
            groups,
            paging: m365_sim::Paging {
                list_items_page: 200,
                ..m365_sim::Paging::small()
            },
            audit: AuditOptions {
                records_per_blob: 3,
                page_size: 5,
                ..Default::default()
            },
            ..small_pages()
        },
        env,
        ..Default::default()
    }
}

fn message(manual: bool) -> TenantSyncMessage {
    TenantSyncMessage {
        tenant_id: contoso(),
        scheduled_at: Utc::now(),
        full: false,
        manual,
    }
}

/// Invocations of `budget` one after the other until the sync is done, as continuation
/// messages would run them; returns how long each took.
async fn invocations(app: &TestApp, budget: Duration) -> Vec<Duration> {
    let mut took = Vec::new();
    loop {
        let started = Instant::now();
        let outcome = tenant_sync::invoke(&app.app, &contoso(), &message(false), budget, None)
            .await
            .unwrap();
        took.push(started.elapsed());
        match outcome {
            SyncOutcome::Finished(_) => return took,
            SyncOutcome::Continue { after, .. } => {
                if let Some(wait) = after {
                    tokio::time::sleep(wait).await;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(took.len() < 200, "the sync never finished");
    }
}

/// Both sims' content at the same instant, so that the same seeds give the same tenant.
fn same_clock(a: &TestApp, b: &TestApp) -> DateTime<Utc> {
    let at = a.sim.state.now();
    b.sim.state.set_clock(at);
    at
}

#[tokio::test]
async fn a_first_sync_over_many_short_invocations_ends_as_one_unbounded_run() {
    let reference = spawn_with(with_audit(1200, vec![])).await;
    let app = spawn_with(with_audit(1200, vec![])).await;
    let at = same_clock(&reference, &app);
    tenant_sync::run(&reference.app, &contoso(), false).await.unwrap();
    let expected = list_rows(&reference);
    assert_eq!(expected.len(), 1200);
    reference.stop().await;

    let budget = Duration::from_secs(1);
    let took = invocations(&app, budget).await;
    assert!(
        took.len() >= 3,
        "a first sync of this tenant takes several 1 s invocations: {took:?}"
    );
    let longest = took.iter().max().unwrap();
    assert!(
        *longest < budget + Duration::from_secs(3),
        "an invocation overran its budget: {took:?}"
    );
    assert_rows_equal(&list_rows(&app), &expected);
    assert_same(&activity_rows(&app), &expected_rows(&app, at));
    app.stop().await;
}
