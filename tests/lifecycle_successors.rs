//! Successors of ownerless groups and active-day counts (issue 16, items 1 and 6) against
//! m365-sim: the sim's audit records name the groups' members (and others: guests, people who
//! left, people who are not members), GroupMgr keeps each group's active days per signal and
//! per person (pseudonyms) in the customer's list over several syncs, and
//! `GET /api/groups/{id}/successors` and `GET /api/groups/{id}/activity` must equal the
//! sim's truth for every group.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::*;
use groupmgr::jobs::tenant_sync;
use m365_sim::SimOptions;
use m365_sim::audit::AuditOptions;
use m365_sim::directory::CONTOSO;
use serde_json::Value;

const SIGNALS: [&str; 6] = [
    "teams",
    "sharePointFileEdit",
    "sharePointFileView",
    "sharePointPage",
    "sharePointList",
    "mail",
];

fn day(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// Syncs every five days over twenty (the feed keeps seven), then asks for every group's
/// successors and activity: each must be the sim's truth over the content the syncs could
/// read, exactly — who, in which order, with how many active days; and for each signal, the
/// days of the last 7, 30 and 90. Reports conceal names (a real tenant's default), so the
/// feed is the only source of days, as the truth assumes.
#[tokio::test]
async fn successors_and_active_days_equal_the_sims_truth() {
    let app = spawn_with(Spawn {
        audit: true,
        sim: SimOptions {
            groups: 300,
            audit: AuditOptions {
                records_per_blob: 30,
                page_size: 200,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    // At five to the hour: content is available at half past, so no blob is exactly at a
    // sync's time; and the first read's floor (7 days back, less a margin) falls in the hour
    // after the first one the feed lists, which the truth must follow.
    let t0 = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() + TimeDelta::minutes(55);
    let mut now = t0;
    for k in 0..5 {
        now = t0 + TimeDelta::days(5 * k);
        app.sim.state.set_clock(now);
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    }
    let today = day(now);
    let groups: Vec<uuid::Uuid> = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .filter(|g| g.is_unified() && g.deleted.is_none())
                .map(|g| g.id)
                .collect()
        })
        .unwrap();
    // The feed has been read since the first sync's first window: the truth's start.
    let first = app
        .json_ok("GET", &format!("/api/groups/{}/activity", groups[0]), &admin, None)
        .await;
    let from: DateTime<Utc> = first["signals"][1]["observedSince"].as_str().unwrap().parse().unwrap();
    assert!(from < t0 - TimeDelta::days(6), "{from}");
    let want = app.sim.expected_successors(CONTOSO, t0, from, now, 3);
    let truth = app.sim.expected_feed_days(CONTOSO, t0, from, now);

    let (mut suggested, mut full, mut ownerless_with) = (0, 0, 0);
    for g in &groups {
        let (listed, got) = successors(&app, &admin, g).await;
        let expected = want.get(g).cloned().unwrap_or_default();
        assert_eq!(listed, expected, "successors of {g}: {got}");
        assert!(!got["disabledLeftOut"].is_null(), "User.Read.All is granted: {got}");
        suggested += listed.len();
        full += usize::from(listed.len() == 3);
        let ownerless = app.sim.state.with_graph(&CONTOSO, |t| {
            t.groups[g].owners.iter().all(|o| {
                app.sim
                    .state
                    .tenant(&CONTOSO)
                    .unwrap()
                    .user_by_id(o)
                    .is_none_or(|u| !u.enabled)
            })
        });
        ownerless_with += usize::from(ownerless == Some(true) && !listed.is_empty());

        let activity = app
            .json_ok("GET", &format!("/api/groups/{g}/activity"), &admin, None)
            .await;
        let days = truth.signals.get(g).cloned().unwrap_or_default();
        for (i, name) in SIGNALS.iter().enumerate() {
            let signal = &activity["signals"][i];
            assert_eq!(signal["signal"], *name);
            if *name == "mail" {
                // The groups report names the last day only: days are not claimed.
                assert_eq!(signal["activeDays"], Value::Null, "{activity}");
                continue;
            }
            for n in [7, 30, 90] {
                let expected = days[i].iter().filter(|d| **d > today - n).count() as u64;
                assert_eq!(
                    signal["activeDays"][format!("last{n}")].as_u64(),
                    Some(expected),
                    "{g} {name} last {n} days: {activity}"
                );
            }
        }
    }
    // The test means something: most groups have successors, many three, some of them
    // ownerless groups; and the feed's people who must never be suggested were active.
    assert!(suggested > 300, "{suggested} successors in all");
    assert!(full > 50, "{full} groups with three");
    assert!(ownerless_with >= 3, "{ownerless_with} ownerless groups with successors");
    let directory = app.sim.state.tenant(&CONTOSO).unwrap();
    let never: Vec<String> = directory
        .users
        .iter()
        .filter(|u| u.guest || !u.enabled)
        .map(|u| u.upn.to_lowercase())
        .collect();
    let left_out_but_active = truth
        .people
        .values()
        .filter(|people| people.keys().any(|p| never.contains(p)))
        .count();
    assert!(
        left_out_but_active > 20,
        "{left_out_but_active} groups where a guest or a disabled account was active"
    );

    // Who did what is in the customer's list under pseudonyms only: no user principal name
    // (nor its local part) in any activity column.
    let upns: Vec<String> = directory.users.iter().map(|u| u.upn.to_lowercase()).collect();
    let rows: BTreeMap<String, serde_json::Map<String, Value>> = common::rows::list_rows(&app);
    let mut with_people = 0;
    for (group, fields) in &rows {
        let Some(days) = fields.get("ActivityDays").and_then(Value::as_str) else {
            continue;
        };
        with_people += usize::from(days.contains("\"p\""));
        let text = days.to_lowercase();
        for upn in &upns {
            let local = upn.split('@').next().unwrap();
            assert!(!text.contains(local), "{group}: {days}");
        }
    }
    assert!(with_people > 200, "{with_people} rows with people's days");
    app.stop().await;
}

/// Guests and bad input: a group id that is not a GUID is 400; a group Graph does not know is
/// 404; a caller without the admin role is 403.
#[tokio::test]
async fn successors_refuse_what_they_cannot_answer() {
    let app = spawn_with(Spawn::default()).await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let user = app.sim.user_token(CONTOSO, "adelev");
    let resp = app.call("GET", "/api/groups/not-a-guid/successors", &admin, None).await;
    assert_eq!(error_code(resp).await, (400, "invalid_input".into()));
    let unknown = uuid::Uuid::new_v4();
    let resp = app
        .call("GET", &format!("/api/groups/{unknown}/successors"), &admin, None)
        .await;
    assert_eq!(error_code(resp).await.0, 404);
    let g = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| t.groups.values().find(|g| g.is_unified()).unwrap().id)
        .unwrap();
    let resp = app
        .call("GET", &format!("/api/groups/{g}/successors"), &user, None)
        .await;
    assert_eq!(error_code(resp).await, (403, "role_required".into()));
    // Before any sync: nobody's activity is known, so nobody is suggested.
    let got = app
        .json_ok("GET", &format!("/api/groups/{g}/successors"), &admin, None)
        .await;
    assert_eq!(got["successors"], serde_json::json!([]));
    assert!(got["membersConsidered"].as_u64().unwrap() >= 1, "{got}");
    app.stop().await;
}

/// Without `User.Read.All` GroupMgr cannot read members' `userType` or `accountEnabled` (the
/// basic profile has neither): guests are still left out by their `#EXT#` name, and the
/// answer says disabled accounts could not be told (`disabledLeftOut` null).
#[tokio::test]
async fn without_user_read_all_guests_are_still_left_out_and_disabled_is_unknown() {
    let app = spawn_with(Spawn::default()).await;
    app.sim
        .state
        .update_tenant(&CONTOSO, |t| t.removed_app_roles = vec!["User.Read.All".into()]);
    let admin = app.sim.user_token(CONTOSO, "admin");
    let tenant = app.sim.state.tenant(&CONTOSO).unwrap();
    let guest = tenant.users.iter().find(|u| u.guest).unwrap().id;
    let g = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .find(|g| g.is_unified() && g.members.contains(&guest))
                .unwrap()
                .id
        })
        .unwrap();
    let got = app
        .json_ok("GET", &format!("/api/groups/{g}/successors"), &admin, None)
        .await;
    assert_eq!(got["disabledLeftOut"], Value::Null, "{got}");
    assert_eq!(got["guestsLeftOut"], 1, "{got}");
    app.stop().await;
}
