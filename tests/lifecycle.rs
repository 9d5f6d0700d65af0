//! The lifecycle policy and its dry run (issue 16) against m365-sim: the policy kept in the
//! customer's site, never in GroupMgr's database; candidates equal to the sim's truth; no
//! candidate on stale, unavailable or too-short data; and not one Graph write in a dry run.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use groupmgr::jobs::tenant_sync;
use m365_sim::audit::AuditOptions;
use m365_sim::directory::CONTOSO;
use m365_sim::{SimOptions, SimState};
use serde_json::{Value, json};

fn policy(days: u32, signals: &[&str]) -> Value {
    json!({
        "inactivityDays": days,
        "signals": signals,
        "exclusions": {"namePrefixes": ["HR-"]},
        "reviewWindowDays": 14,
        "onNoAnswer": {"action": "archive", "deleteAfterDays": 60},
        "maxActionsPerDay": 50,
    })
}

/// The settings list's items as the sim holds them (`Value` parsed).
fn stored_settings(sim: &SimState) -> Vec<Value> {
    sim.with_graph(&CONTOSO, |t| {
        t.lists
            .values()
            .flatten()
            .filter(|l| l.display_name == "GroupMgr Settings")
            .flat_map(|l| l.items.values())
            .map(|f| serde_json::from_str(f["Value"].as_str().unwrap()).unwrap())
            .collect()
    })
    .unwrap()
}

/// The policy is the customer's: kept in their GroupMgr site, one item, replaced by a PUT;
/// read and changed by administrators only; refused, property named, when invalid.
#[tokio::test]
async fn the_policy_is_kept_in_the_customers_site() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let adele = app.sim.user_token(CONTOSO, "adelev");
    let resp = app.call("GET", "/api/lifecycle/policy", &admin, None).await;
    assert_eq!(error_code(resp).await, (404, "not_found".into()));
    for (method, body) in [("GET", None), ("PUT", Some(policy(90, &["teams"])))] {
        let resp = app.call(method, "/api/lifecycle/policy", &adele, body).await;
        assert_eq!(error_code(resp).await, (403, "role_required".into()), "{method}");
    }
    // Invalid: each refused with the property at fault, and nothing stored.
    let mut unknown = policy(90, &["teams"]);
    unknown["autoDelete"] = json!(true);
    let mut too_many = policy(90, &["teams"]);
    too_many["exclusions"]["groupIds"] = json!(
        (0..1001u128)
            .map(|i| uuid::Uuid::from_u128(i).to_string())
            .collect::<Vec<_>>()
    );
    for (body, field) in [
        (policy(10, &["teams"]), "inactivityDays"),
        (policy(90, &[]), "signals"),
        (policy(90, &["chat"]), "signals"),
        (unknown, "body"),
        (too_many, "exclusions"),
    ] {
        let resp = app.call("PUT", "/api/lifecycle/policy", &admin, Some(body)).await;
        let status = resp.status().as_u16();
        let err: Value = resp.json().await.unwrap();
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("invalid_input")),
            "{err}"
        );
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{field}: {err}"
        );
    }
    assert!(stored_settings(&app.sim.state).is_empty());

    let first = policy(90, &["teams", "sharePointFileEdit"]);
    let stored = app
        .json_ok("PUT", "/api/lifecycle/policy", &admin, Some(first.clone()))
        .await;
    assert_eq!(stored["inactivityDays"], 90);
    assert_eq!(stored["execution"], "manual", "manual unless chosen");
    let read = app.json_ok("GET", "/api/lifecycle/policy", &admin, None).await;
    assert_eq!(read, stored);
    assert_eq!(stored_settings(&app.sim.state), std::slice::from_ref(&stored));
    // Replaced, not added to.
    let second = policy(120, &["mail"]);
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(second)).await;
    let settings = stored_settings(&app.sim.state);
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0]["inactivityDays"], 120);
    assert_eq!(
        app.json_ok("GET", "/api/lifecycle/policy", &admin, None).await["signals"],
        json!(["mail"])
    );

    // Edited by hand in SharePoint into something that is no policy: said, not guessed.
    app.sim.state.with_graph(&CONTOSO, |t| {
        for l in t
            .lists
            .values_mut()
            .flatten()
            .filter(|l| l.display_name == "GroupMgr Settings")
        {
            for f in l.items.values_mut() {
                f.insert("Value".into(), json!("{\"inactivityDays\": 5}"));
            }
        }
    });
    let resp = app.call("GET", "/api/lifecycle/policy", &admin, None).await;
    assert_eq!(error_code(resp).await, (409, "conflict".into()));
    app.stop().await;
}

fn revealed_audit() -> Spawn {
    Spawn {
        audit: true,
        sim: SimOptions {
            reports_concealed: false,
            audit: AuditOptions {
                records_per_blob: 6,
                page_size: 50,
                ..Default::default()
            },
            ..small_pages()
        },
        ..Default::default()
    }
}

/// A dry run: the candidates, and the Graph writes it made (there must be none).
async fn dry_run(app: &TestApp, admin: &str) -> (Value, u64) {
    let before = app.sim.graph_writes();
    let page = app.json_ok("GET", "/api/lifecycle/candidates", admin, None).await;
    (page, app.sim.graph_writes() - before)
}

fn ids(page: &Value) -> BTreeSet<uuid::Uuid> {
    page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["groupId"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The sim's truth, less the groups the policy's `HR-` prefix excludes.
fn truth(app: &TestApp, seen_at: &[DateTime<Utc>], counted: &[&str], cutoff: DateTime<Utc>) -> BTreeSet<uuid::Uuid> {
    let hr: BTreeSet<uuid::Uuid> = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .filter(|g| g.display_name.to_lowercase().starts_with("hr-"))
                .map(|g| g.id)
                .collect()
        })
        .unwrap();
    app.sim
        .inactive_groups(CONTOSO, seen_at, counted, cutoff)
        .difference(&hr)
        .copied()
        .collect()
}

/// Before any sync there is nothing to judge; after one, a policy counting signals whose
/// history is long enough (the Teams and groups reports reach 90 days back) names exactly the
/// sim's inactive groups, with their evidence; a policy counting SharePoint waits until the
/// audit feed has been watched for its whole threshold; stale data makes no candidate. Not
/// one Graph write in any of it.
#[tokio::test]
async fn candidates_are_the_sims_truth_and_only_when_the_data_allows() {
    let app = spawn_with(revealed_audit()).await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(policy(30, &["teams", "mail"])),
    )
    .await;
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(
        (page["withheld"]["reason"].as_str(), writes),
        (Some("noData"), 0),
        "{page}"
    );
    assert!(page["value"].as_array().unwrap().is_empty());

    let at = app.sim.state.now();
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(page["withheld"], Value::Null, "{}", page["withheld"]);
    let complete = time(&page["dataCompleteUntil"]);
    let want = truth(&app, &[at], &["teams", "mail"], complete - TimeDelta::days(30));
    let got = ids(&page);
    assert!(want.len() >= 20, "{} inactive groups in the sim", want.len());
    eprintln!("{} candidates of 300 groups", want.len());
    assert_eq!(
        got.difference(&want).collect::<Vec<_>>(),
        Vec::<&uuid::Uuid>::new(),
        "false positives"
    );
    assert_eq!(got, want, "false negatives");
    assert_eq!(page["groupsJudged"].as_u64(), Some(300));
    // Each candidate's evidence: its counted signals, none later than the threshold, longest
    // inactive first.
    let items = page["value"].as_array().unwrap();
    let mut previous = None;
    for c in items {
        let since = time(&c["inactiveSince"]);
        assert!(since <= complete - TimeDelta::days(30), "{c}");
        assert_eq!(c["inactiveDays"].as_i64(), Some((complete - since).num_days()));
        let signals: Vec<&str> = c["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["signal"].as_str().unwrap())
            .collect();
        assert_eq!(signals, ["teams", "mail"]);
        assert_eq!(c["nextStep"]["step"], "review");
        assert!(previous.is_none_or(|p| p <= since), "longest inactive first");
        previous = Some(since);
    }

    // Counting SharePoint: the feed was first read a moment ago, reaching 7 days back.
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(policy(30, &["teams", "sharePointFileEdit"])),
    )
    .await;
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(page["withheld"]["reason"], "historyTooShort", "{page}");
    assert_eq!(page["withheld"]["signals"], json!(["sharePointFileEdit"]));
    let until = time(&page["withheld"]["until"]);
    assert!(
        until > at + TimeDelta::days(22) && until <= at + TimeDelta::days(24),
        "{until}"
    );
    assert!(page["value"].as_array().unwrap().is_empty());

    // Three days without a sync: the data is stale, whatever the policy.
    app.sim.state.advance_clock(TimeDelta::days(3));
    let (page, _) = dry_run(&app, &admin).await;
    assert_eq!(page["withheld"]["reason"], "stale", "{page}");
    app.stop().await;
}

/// By default a tenant conceals names in its usage reports: the group mailbox cannot be
/// read, and a policy that counts it has no candidate — it says which signal and why.
#[tokio::test]
async fn a_policy_counting_an_unavailable_source_has_no_candidate() {
    let mut opts = revealed_audit();
    opts.sim.reports_concealed = true;
    let app = spawn_with(opts).await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(policy(30, &["teams", "mail"])),
    )
    .await;
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(page["withheld"]["reason"], "sourceUnavailable", "{page}");
    assert_eq!(page["withheld"]["signals"], json!(["mail"]));
    app.stop().await;
}

/// SharePoint signals, watched long enough: synced every 6 days for 30 days of the sim's
/// clock (the feed keeps 7), the candidates of a policy counting file edits and page views —
/// but not file views — are exactly the groups the sim's feed shows no such activity for.
#[tokio::test]
async fn after_the_threshold_sharepoint_kinds_decide() {
    let app = spawn_with(revealed_audit()).await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let counted = ["sharePointFileEdit", "sharePointPage"];
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(policy(30, &counted)))
        .await;
    let seen_at = watch_30_days(&app).await;
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(page["withheld"], Value::Null, "{}", page["withheld"]);
    let complete = time(&page["dataCompleteUntil"]);
    let want = truth(&app, &seen_at, &counted, complete - TimeDelta::days(30));
    // Groups whose site GroupMgr has not found are held out (none is, after six syncs).
    assert_eq!(ids(&page), want);
    eprintln!("{} candidates of 300 groups", want.len());
    assert!(want.len() >= 20, "{} inactive groups in the sim", want.len());
    // Views do not count: some candidates were viewed within the threshold.
    let viewed = truth(&app, &seen_at, &["sharePointFileView"], complete - TimeDelta::days(30));
    assert!(
        want.difference(&viewed).next().is_some(),
        "a candidate viewed but not edited"
    );
    app.stop().await;
}

/// Syncs every 6 days for 30 days of the sim's clock (the feed keeps 7, so nothing is missed),
/// and once more at the end; returns when each sync read.
async fn watch_30_days(app: &TestApp) -> Vec<DateTime<Utc>> {
    let mut seen_at = Vec::new();
    for i in 0..6 {
        if i > 0 {
            app.sim.state.advance_clock(TimeDelta::days(6));
        }
        seen_at.push(app.sim.state.now());
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    }
    seen_at
}

/// One Teams source alone: watched for 30 days (synced every 6, the feed keeps 7), a policy
/// counting only the Teams audit feed, or only the Teams report, names exactly the groups the
/// sim's truth for that source alone shows inactive; both include every candidate of `teams`
/// (either source). With report names concealed, only the report-alone policy is withheld.
#[tokio::test]
async fn one_teams_source_alone_decides_when_the_policy_says_so() {
    let app = spawn_with(revealed_audit()).await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let seen_at = watch_30_days(&app).await;
    let mut found = Vec::new();
    for signal in ["teamsAudit", "teamsReport", "teams"] {
        app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(policy(30, &[signal])))
            .await;
        let (page, writes) = dry_run(&app, &admin).await;
        assert_eq!(writes, 0);
        assert_eq!(page["withheld"], Value::Null, "{signal}: {}", page["withheld"]);
        let complete = time(&page["dataCompleteUntil"]);
        let want = truth(&app, &seen_at, &[signal], complete - TimeDelta::days(30));
        assert_eq!(ids(&page), want, "{signal}");
        eprintln!("{signal}: {} candidates", want.len());
        found.push(want);
    }
    let (audit_alone, report_alone, either) = (&found[0], &found[1], &found[2]);
    assert!(either.is_subset(audit_alone) && either.is_subset(report_alone));
    assert!(!report_alone.is_empty() && report_alone != audit_alone);
    assert!(
        audit_alone.len() > either.len(),
        "a group only the report saw used: {} vs {}",
        audit_alone.len(),
        either.len()
    );

    // Names concealed in the reports: the report alone can no longer be judged.
    app.sim.state.set_reports_concealed(&CONTOSO, true);
    app.sim.state.advance_clock(TimeDelta::days(1));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(policy(30, &["teamsReport"])),
    )
    .await;
    let (page, _) = dry_run(&app, &admin).await;
    assert_eq!(page["withheld"]["reason"], "sourceUnavailable", "{page}");
    assert_eq!(page["withheld"]["signals"], json!(["teamsReport"]));
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(policy(30, &["teamsAudit"])),
    )
    .await;
    let (page, _) = dry_run(&app, &admin).await;
    assert_eq!(page["withheld"], Value::Null, "{page}");
    app.stop().await;
}

/// `t`, or three hours earlier when `t` is in the first two hours of its day.
fn clear_of_midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    if t.hour() < 2 { t - TimeDelta::hours(3) } else { t }
}

/// The reports first read on day D reach 90 days back from D 00:00; the audit feed is
/// complete until an hour before its bookmark. A first sync at 00:30 therefore leaves the
/// first half hour of a 90-day window unobserved (the audit feed reaches 7 days back only):
/// the policy has no candidate and says when it will (D 00:00, the reports' reach plus 90
/// days); once the audit feed passes 01:00, the same policy has its candidates.
#[tokio::test]
async fn a_90_day_policy_waits_out_the_first_hour_of_a_day() {
    let app = spawn_with(revealed_audit()).await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(policy(90, &["teams", "mail"])),
    )
    .await;
    // Yesterday 00:30: in the past, so tokens (on the real clock) and content agree.
    let day = (Utc::now() - TimeDelta::days(1)).date_naive();
    let midnight = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    app.sim.state.set_clock(midnight + TimeDelta::minutes(30));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(page["withheld"]["reason"], "historyTooShort", "{page}");
    assert_eq!(page["withheld"]["signals"], json!(["teams", "mail"]), "{page}");
    assert_eq!(time(&page["withheld"]["until"]), midnight, "{page}");
    assert!(page["value"].as_array().unwrap().is_empty());

    app.sim.state.set_clock(midnight + TimeDelta::hours(3));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(page["withheld"], Value::Null, "{}", page["withheld"]);
    assert!(!page["value"].as_array().unwrap().is_empty(), "{page}");
    app.stop().await;
}

/// At a real tenant's size: 10,000 groups, one sync, a 90-day policy on Teams and mail. The
/// candidates are the sim's truth exactly — no false positive, no false negative — also when
/// the policy excludes sensitivity labels, and after labels change.
#[tokio::test]
async fn ten_thousand_groups_candidates_equal_the_truth() {
    let app = spawn_with(Spawn {
        audit: true,
        sim: SimOptions {
            groups: 10_000,
            reports_concealed: false,
            audit: AuditOptions {
                records_per_blob: 2,
                page_size: 200,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    app.json_ok(
        "PUT",
        "/api/lifecycle/policy",
        &admin,
        Some(policy(90, &["teams", "mail"])),
    )
    .await;
    // Clear of a day's first hour, when a first sync rightly withholds a 90-day policy (see
    // `a_90_day_policy_waits_out_the_first_hour_of_a_day`): whenever CI runs, the same test.
    let at = clear_of_midnight(Utc::now());
    app.sim.state.set_clock(at);
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(page["withheld"], Value::Null, "{}", page["withheld"]);
    assert_eq!(page["groupsJudged"].as_u64(), Some(10_000));
    let complete = time(&page["dataCompleteUntil"]);
    let want = truth(&app, &[at], &["teams", "mail"], complete - TimeDelta::days(90));
    let got = ids(&page);
    assert!(want.len() >= 1000, "{} inactive groups in the sim", want.len());
    let false_positives: Vec<_> = got.difference(&want).take(5).collect();
    let false_negatives: Vec<_> = want.difference(&got).take(5).collect();
    assert!(
        false_positives.is_empty() && false_negatives.is_empty(),
        "{} candidates, {} in the truth; false positives {false_positives:?}, false negatives {false_negatives:?}",
        got.len(),
        want.len()
    );

    // Sensitivity labels, read by the sync: excluding two labels removes exactly the groups
    // the sim labelled so, and a label applied or removed is seen by the next (incremental)
    // sync.
    let label = |n: &str| m365_sim::graph::model::label_id(CONTOSO, n);
    let mut p = policy(90, &["teams", "mail"]);
    p["exclusions"]["sensitivityLabels"] = json!([label("Confidential"), label("Highly Confidential")]);
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(p)).await;
    let labelled = |app: &TestApp| -> BTreeSet<uuid::Uuid> {
        let s = &app.sim.state;
        let mut l = s.labelled_groups(&CONTOSO, "Confidential");
        l.extend(s.labelled_groups(&CONTOSO, "Highly Confidential"));
        l
    };
    let excluded = labelled(&app);
    assert!(
        want.intersection(&excluded).count() >= 100,
        "inactive labelled groups in the sim"
    );
    let unlabelled: BTreeSet<uuid::Uuid> = want.difference(&excluded).copied().collect();
    let (page, writes) = dry_run(&app, &admin).await;
    assert_eq!(writes, 0);
    assert_eq!(ids(&page), unlabelled);
    // One candidate labelled Confidential, one excluded group's label removed.
    let newly = *unlabelled.iter().next().unwrap();
    let freed = *want.intersection(&excluded).next().unwrap();
    app.sim.state.set_group_labels(&CONTOSO, &newly, &["Confidential"]);
    app.sim.state.set_group_labels(&CONTOSO, &freed, &[]);
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let (page, _) = dry_run(&app, &admin).await;
    let now_excluded = labelled(&app);
    assert!(now_excluded.contains(&newly) && !now_excluded.contains(&freed));
    let got = ids(&page);
    assert!(!got.contains(&newly) && got.contains(&freed));
    assert_eq!(got, want.difference(&now_excluded).copied().collect());
    app.stop().await;
}
