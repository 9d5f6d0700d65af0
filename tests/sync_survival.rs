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
        assert!(!list_rows(&app)[id]["Title"].as_str().unwrap().starts_with("Renamed"));
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

/// Adds a Microsoft 365 group to Contoso whose site exists from `site_ready` on (as one made
/// by a user: its site is provisioned after it). Its id is odd, so the sim's feed gives its
/// site user activity once the site exists.
fn add_group_with_late_site(app: &TestApp, k: u128, site_ready: DateTime<Utc>) -> String {
    app.sim
        .state
        .with_graph(&CONTOSO, |g| {
            let id = uuid::Uuid::from_u128(0x5ee0_0000_0000_4000_8000_0000_0000_0001 + 2 * k);
            let owner = *g
                .groups
                .values()
                .find(|g| g.is_unified())
                .unwrap()
                .owners
                .first()
                .unwrap();
            let site = format!("https://{}/sites/latesite{k}", g.hostname);
            g.groups.insert(
                id,
                m365_sim::graph::model::Group {
                    id,
                    display_name: format!("Late site {k}"),
                    description: None,
                    mail_nickname: format!("latesite{k}"),
                    visibility: Some("Public".into()),
                    group_types: vec!["Unified".into()],
                    mail_enabled: true,
                    security_enabled: false,
                    created: app.sim.state.now(),
                    owners: [owner].into(),
                    members: [owner].into(),
                    team: None,
                    deleted: None,
                    site: Some(site),
                    site_ready,
                    archived: false,
                    labels: None,
                    mail_stopped: None,
                },
            );
            g.touch(id);
            id.to_string()
        })
        .unwrap()
}

#[tokio::test]
async fn a_site_provisioned_three_runs_after_its_group_gets_its_sharepoint_activity() {
    let mut spawn = with_audit(300, vec![]);
    // Enough records that the new sites see activity in the hours after they exist whatever
    // the hour the test starts (with 100 a blob, some starting hours gave none of the six any:
    // about 0.6 records a blob for each group now, all six silent under 1 in 1,000).
    spawn.sim.audit.records_per_blob = 300;
    let app = spawn_with(spawn).await;
    let t0 = app.sim.state.now();
    let ready = t0 + TimeDelta::minutes(150);
    let late: Vec<String> = (0..6).map(|k| add_group_with_late_site(&app, k, ready)).collect();
    let mut times = Vec::new();
    for run in 0..3 {
        times.push(app.sim.state.now());
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
        let rows = list_rows(&app);
        for id in &late {
            assert_eq!(
                rows[id]["LifecycleStatus"],
                json!("active"),
                "run {run}: the group is listed"
            );
            assert_eq!(rows[id].get("SiteUrl"), None, "run {run}: no site yet");
        }
        app.sim.state.advance_clock(TimeDelta::hours(1));
    }
    // The sites exist from 2.5 hours on; six hours later, the fourth run.
    app.sim.state.advance_clock(TimeDelta::hours(6));
    times.push(app.sim.state.now());
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let rows = list_rows(&app);
    for (k, id) in late.iter().enumerate() {
        assert_eq!(
            rows[id]["SiteUrl"],
            json!(format!("https://contoso.sharepoint.com/sites/latesite{k}"))
        );
    }
    let want = expected_rows_over(&app, &times);
    let active = late.iter().filter(|id| !want[*id].1.is_null()).count();
    assert!(active > 0, "the oracle gives some late site activity");
    assert_same(&activity_rows(&app), &want);
    app.stop().await;
}

#[tokio::test]
async fn revoked_consent_a_removed_permission_and_a_deleted_list_are_recorded_and_survived() {
    let app = spawn_with(with_audit(300, vec![])).await;
    let key = contoso_log_key(&app).await;
    let token_requests = || app.sim.requests_where(|p| p.ends_with("/oauth2/v2.0/token"));
    let sync_message = |manual: bool| {
        let m = serde_json::to_string(&message(manual)).unwrap();
        json!({"Data": {"message": m}, "Metadata": {"DequeueCount": 1}})
    };

    // Consent revoked between two invocations of a first sync, stopped in its group phase
    // (so no activity was read before the clock moves on and the oldest hour expires).
    let feed_requests = || app.sim.requests_where(|p| p.contains("/activity/feed/"));
    let first = tenant_sync::invoke(&app.app, &contoso(), &message(false), Duration::from_millis(50), None)
        .await
        .unwrap();
    assert!(matches!(first, SyncOutcome::Continue { .. }), "{first:?}");
    assert_eq!(
        feed_requests(),
        0,
        "the first invocation stopped before the activity phase"
    );
    app.sim.state.update_tenant(&CONTOSO, |t| t.consented = false);
    let asked = token_requests();
    let recorded = tenant_logged(
        &app,
        tenant_sync::invoke(&app.app, &contoso(), &message(false), Duration::from_secs(60), None),
    )
    .await
    .unwrap();
    match recorded {
        SyncOutcome::Deferred(c) => {
            assert_eq!(c.kind.as_str(), "consent_revoked");
            assert!(c.detail.starts_with("AADSTS"), "{}", c.detail);
            assert_eq!(c.attempts, 1);
            assert_eq!(c.next_attempt, c.since + TimeDelta::hours(1));
        }
        other => panic!("{other:?}"),
    }
    assert!(token_requests() > asked, "it asked Entra once");
    // The next scheduled one, under a host, waits for the retry time without asking Entra;
    // the invocation succeeds (no retry, no poison queue) and says why.
    let asked = token_requests();
    let resp = app.post_invocation("TenantSync", &sync_message(false)).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["Logs"].to_string().contains("consent_revoked"), "{body}");
    assert_eq!(token_requests(), asked, "backed off");
    // An hour later it tries again, and the wait doubles.
    app.sim.state.advance_clock(TimeDelta::minutes(61));
    match tenant_sync::invoke(&app.app, &contoso(), &message(false), Duration::from_secs(60), None)
        .await
        .unwrap()
    {
        SyncOutcome::Deferred(c) => assert_eq!(
            (c.attempts, c.next_attempt - app.sim.state.now()),
            (2, TimeDelta::hours(2))
        ),
        other => panic!("{other:?}"),
    }
    // Consent restored: an administrator's sync goes at once and the sync resumes.
    app.sim.state.update_tenant(&CONTOSO, |t| t.consented = true);
    tenant_logged(&app, tenant_sync::run(&app.app, &contoso(), false))
        .await
        .unwrap();
    assert_eq!(list_rows(&app).len(), 300);
    // Activity was first read an hour after the first invocation: what the feed held then
    // (its oldest hour at the start had expired by then, unread).
    assert_same(&activity_rows(&app), &expected_rows(&app, app.sim.state.now()));

    // A permission removed: recorded as such, and the sync resumes once it is back.
    app.sim
        .state
        .update_tenant(&CONTOSO, |t| t.removed_app_roles = vec!["Group.Read.All".into()]);
    let removed = tenant_logged(
        &app,
        tenant_sync::invoke(&app.app, &contoso(), &message(true), Duration::from_secs(60), None),
    )
    .await
    .unwrap();
    match removed {
        // Named, not a generic 403: the consent's tokens lack the role.
        SyncOutcome::Deferred(c) => assert_eq!(
            (c.kind.as_str(), c.detail.as_str()),
            ("permission_missing", "consent incomplete: Group.Read.All missing")
        ),
        other => panic!("{other:?}"),
    }
    let admin = app.sim.user_token(CONTOSO, "admin");
    let status: Value = app.get("/api/sync", Some(&admin)).await.json().await.unwrap();
    assert_eq!(
        status["condition"]["detail"],
        json!("consent incomplete: Group.Read.All missing"),
        "{status}"
    );
    app.sim.state.update_tenant(&CONTOSO, |t| t.removed_app_roles.clear());
    tenant_logged(&app, tenant_sync::run(&app.app, &contoso(), false))
        .await
        .unwrap();

    // The customer deletes the list: it is made again and filled, activity included.
    app.sim.state.with_graph(&CONTOSO, |g| {
        for lists in g.lists.values_mut() {
            lists.retain(|l| l.display_name != "GroupMgr Groups");
        }
    });
    tenant_logged(&app, tenant_sync::run(&app.app, &contoso(), false))
        .await
        .unwrap();
    assert_eq!(list_rows(&app).len(), 300);
    let recreated = activity_rows(&app);
    // The feed still has its 7 days and the report its 90: the new list has what they hold.
    assert_same(&recreated, &expected_rows(&app, app.sim.state.now()));

    let events = contoso_log_events(&app, &key).await;
    let count = |e: &str| events.iter().filter(|x| *x == e).count();
    assert_eq!(count("sync_condition"), 2, "consent once, permission once: {events:?}");
    assert_eq!(count("sync_condition_cleared"), 2, "{events:?}");
    assert_eq!(count("list_missing"), 1, "{events:?}");
    app.stop().await;
}

#[tokio::test]
async fn activity_written_meanwhile_by_another_writer_is_never_overwritten() {
    let app = spawn_with(with_audit(300, vec![])).await;
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    app.sim.state.advance_clock(TimeDelta::hours(6));
    // The run's first activity write is held at the sim; meanwhile another writer moves every
    // row's Teams activity on (and with it each row's eTag).
    let hold = Hold::new();
    app.sim.state.faults.arm(
        FaultRule::new("/v1.0/$batch", FaultKind::Hold(hold.clone()))
            .method("POST")
            .times(1),
    );
    let run = {
        let app = app.app.clone();
        tokio::spawn(async move { tenant_sync::run(&app, &contoso(), false).await })
    };
    tokio::time::timeout(Duration::from_secs(20), hold.arrived())
        .await
        .unwrap();
    let later = json!("2030-01-01T00:00:00Z");
    app.sim.state.with_graph(&CONTOSO, |g| {
        for l in g
            .lists
            .values_mut()
            .flatten()
            .filter(|l| l.display_name == "GroupMgr Groups")
        {
            let ids: Vec<u64> = l.items.keys().copied().collect();
            for id in ids {
                let f = l.items.get_mut(&id).unwrap();
                f.insert("LastTeamsActivity".into(), later.clone());
                f.insert("LastActivity".into(), later.clone());
                l.touch(id);
            }
        }
    });
    hold.release();
    let summary = run.await.unwrap().unwrap();
    assert!(summary.activity.matched > 0, "{:?}", summary.activity);
    // Every conditional write met 412, read the row again and merged: nothing went back.
    for (g, (teams, _, last)) in activity_rows(&app) {
        assert_eq!((&teams, &last), (&later, &later), "{g}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_list_made_by_an_older_groupmgr_gets_its_missing_column() {
    let app = spawn_with(with_audit(300, vec![])).await;
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    // As an older GroupMgr left it: no DisplayName column, a location that names no version.
    app.sim.state.with_graph(&CONTOSO, |g| {
        for l in g
            .lists
            .values_mut()
            .flatten()
            .filter(|l| l.display_name == "GroupMgr Groups")
        {
            l.columns.retain(|c| c["name"] != "DisplayName");
            for f in l.items.values_mut() {
                f.remove("DisplayName");
            }
        }
    });
    let (loc, version) = app.app.state.load(&contoso(), "customer_list").await.unwrap().unwrap();
    let mut old: Value = serde_json::from_str(&loc).unwrap();
    old.as_object_mut().unwrap().remove("columns");
    app.app
        .state
        .save(&contoso(), "customer_list", &old.to_string(), Some(&version))
        .await
        .unwrap();
    let renamed = rename(&app, 5, "Renamed after the upgrade");
    let s = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!((s.groups.written, s.groups.refused), (1, 0), "{:?}", s.groups);
    assert_eq!(
        list_rows(&app)[&renamed]["DisplayName"],
        json!("Renamed after the upgrade")
    );
    app.stop().await;
}
