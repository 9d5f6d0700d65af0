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

/// Renames Contoso's `n`-th Microsoft 365 group at the sim (a change the next delta reports).
fn rename(app: &TestApp, n: usize, name: &str) -> String {
    app.sim
        .state
        .with_graph(&CONTOSO, |g| {
            let id = *g
                .groups
                .values()
                .filter(|g| g.is_unified())
                .nth(n)
                .map(|g| &g.id)
                .unwrap();
            g.groups.get_mut(&id).unwrap().display_name = name.to_string();
            g.touch(id);
            id.to_string()
        })
        .unwrap()
}

#[tokio::test]
async fn a_run_that_lost_its_lease_mid_write_takes_no_activity_back() {
    let app = spawn_with(with_audit(300, vec![("GROUPMGR_SYNC_LEASE", "3".into())])).await;
    let t0 = app.sim.state.now();
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    // Six hours later: new audit content, and a group renamed.
    app.sim.state.advance_clock(TimeDelta::hours(6));
    let at = app.sim.state.now();
    let renamed = rename(&app, 7, "Renamed while A stalled");

    // Run A reads the renamed group's row (first $batch), then its write (second $batch) is
    // held at the sim: A stalls there, past its lease.
    let hold = Hold::new();
    app.sim.state.faults.arm(
        FaultRule::new("/v1.0/$batch", FaultKind::Hold(hold.clone()))
            .method("POST")
            .after(1)
            .times(1),
    );
    let a = {
        let app = app.app.clone();
        tokio::spawn(async move {
            tenant_sync::invoke(&app, &contoso(), &message(false), Duration::from_secs(60), None).await
        })
    };
    if tokio::time::timeout(Duration::from_secs(20), hold.arrived())
        .await
        .is_err()
    {
        panic!("A never reached its write: {:?}", a.await.unwrap());
    }
    assert_ne!(
        list_rows(&app)[&renamed]["Title"],
        json!("Renamed while A stalled"),
        "A's write is held"
    );
    app.app.state.delete(&contoso(), "sync_lease").await.unwrap();

    // Run B takes over: it writes the rename, the new activity, and moves the checkpoints on.
    let b = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(b.activity.rows_written > 0 && b.activity.blobs > 0, "{:?}", b.activity);
    let after_b = activity_rows(&app);
    assert_same(&after_b, &expected_rows_over(&app, &[t0, at]));
    // A's renewal meets B's lease; then A's held write goes through.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hold.release();
    let a = a.await.unwrap();
    assert!(matches!(a, Err(TenantSyncError::LeaseLost)), "A must stop: {a:?}");
    assert_eq!(activity_rows(&app), after_b, "A's write took no activity back");
    assert_eq!(list_rows(&app)[&renamed]["Title"], json!("Renamed while A stalled"));
    // And the next run finds nothing lost either.
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_same(&activity_rows(&app), &expected_rows_over(&app, &[t0, at]));
    app.stop().await;
}

#[tokio::test]
async fn row_lookups_throttled_past_the_budget_blank_no_activity() {
    let app = spawn_with(with_audit(300, vec![])).await;
    let t0 = app.sim.state.now();
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let before = activity_rows(&app);
    assert!(before.values().filter(|(t, s, _)| !t.is_null() || !s.is_null()).count() > 100);
    app.sim.state.advance_clock(TimeDelta::hours(1));
    let at = app.sim.state.now();
    let renamed: Vec<String> = (0..5).map(|n| rename(&app, n * 40, &format!("Renamed {n}"))).collect();

    // Every list item read answers 429 with a wait longer than the invocation has.
    app.sim
        .state
        .faults
        .arm(FaultRule::throttled("/items", "30").method("GET"));
    let outcome = tenant_sync::invoke(&app.app, &contoso(), &message(false), Duration::from_secs(2), None)
        .await
        .unwrap();
    match outcome {
        SyncOutcome::Continue { after, .. } => {
            assert_eq!(after, Some(Duration::from_secs(30)), "the continuation waits as asked")
        }
        other => panic!("throttled lookups must continue later: {other:?}"),
    }
    assert_eq!(activity_rows(&app), before, "no row blanked, none created twice");
    for id in &renamed {
        assert!(list_rows(&app)[id]["Title"].as_str().unwrap().starts_with("Renamed") == false);
    }

    app.sim.state.faults.clear();
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let rows = list_rows(&app);
    assert_eq!(rows.len(), 300);
    for (n, id) in renamed.iter().enumerate() {
        assert_eq!(rows[id]["Title"], json!(format!("Renamed {n}")));
    }
    assert_same(&activity_rows(&app), &expected_rows_over(&app, &[t0, at]));
    app.stop().await;
}

#[tokio::test]
async fn a_256_character_name_and_a_refused_row_fail_no_other_group() {
    let app = spawn_with(with_audit(300, vec![])).await;
    let key = contoso_log_key(&app).await;
    let at = app.sim.state.now();
    // Graph allows 256 characters in a group name; SharePoint's Title holds 255.
    let long: String = "Équipe projet ".repeat(18) + &"x".repeat(4);
    assert_eq!(long.chars().count(), 256);
    let long_id = rename(&app, 3, &long);
    // And one row SharePoint refuses when it is first created (a validation rule, …).
    app.sim.state.faults.arm(
        FaultRule::new(
            "/items",
            FaultKind::Status {
                status: 400,
                code: "invalidRequest".into(),
                retry_after: None,
            },
        )
        .method("POST")
        .after(10)
        .times(1),
    );
    let first = tenant_logged(&app, tenant_sync::run(&app.app, &contoso(), false))
        .await
        .unwrap();
    assert_eq!(first.groups.refused, 1, "{:?}", first.groups);
    let rows = list_rows(&app);
    assert_eq!(rows.len(), 299, "the refused row is not there yet");
    let title = rows[&long_id]["Title"].as_str().unwrap();
    assert!(title.encode_utf16().count() <= 255 && title.ends_with('…'), "{title}");
    assert!(long.starts_with(title.trim_end_matches('…')));
    assert_eq!(rows[&long_id]["DisplayName"], json!(long), "the whole name is kept");
    // Every other group's activity is right.
    let want = expected_rows(&app, at);
    let got = activity_rows(&app);
    assert_same(
        &got,
        &want
            .iter()
            .filter(|(g, _)| got.contains_key(*g))
            .map(|(g, v)| (g.clone(), v.clone()))
            .collect(),
    );
    let events = contoso_log_events(&app, &key).await;
    assert_eq!(events.iter().filter(|e| *e == "row_refused").count(), 1, "{events:?}");

    // The next run writes the refused row, with the activity kept for it meanwhile.
    let second = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!(second.groups.refused, 0);
    assert_eq!(list_rows(&app).len(), 300);
    assert_same(&activity_rows(&app), &expected_rows(&app, at));
    app.stop().await;
}
