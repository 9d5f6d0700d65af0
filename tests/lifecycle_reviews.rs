//! Reviews and the actions that follow them (issue 16, items 4 and 5) against m365-sim: reviews
//! opened for confirmed candidates in the customer's list; owners or administrators decide;
//! archive, delete and restore — each recorded as intended before it is sent and as done
//! after, so an answer lost between the two never makes a second request; the daily cap held
//! under concurrent decisions.

mod common;

use std::collections::BTreeSet;

use chrono::TimeDelta;
use common::*;
use groupmgr::jobs::tenant_sync;
use m365_sim::audit::AuditOptions;
use m365_sim::directory::CONTOSO;
use m365_sim::{FaultKind, FaultRule, SimOptions};
use serde_json::{Value, json};

fn spawn_opts() -> Spawn {
    Spawn {
        audit: true,
        sim: SimOptions {
            reports_concealed: false,
            audit: AuditOptions {
                records_per_blob: 4,
                page_size: 50,
                ..Default::default()
            },
            ..small_pages()
        },
        ..Default::default()
    }
}

fn policy(max_actions: u32) -> Value {
    json!({
        "inactivityDays": 30,
        "signals": ["teams", "mail"],
        "reviewWindowDays": 14,
        "onNoAnswer": {"action": "nothing"},
        "maxActionsPerDay": max_actions,
    })
}

/// A tenant synced once, with a policy, and its candidates (group id → has a team).
async fn ready(max_actions: u32) -> (TestApp, String, Vec<(String, bool)>) {
    let app = spawn_with(spawn_opts()).await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(policy(max_actions)))
        .await;
    let page = app.json_ok("GET", "/api/lifecycle/candidates", &admin, None).await;
    let ids: Vec<String> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["groupId"].as_str().unwrap().to_string())
        .collect();
    let with_team = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            ids.iter()
                .map(|id| (id.clone(), t.groups[&id.parse().unwrap()].team.is_some()))
                .collect()
        })
        .unwrap();
    (app, admin, with_team)
}

/// The alias of a group's (first) owner, to sign in as.
/// An owner of `group` who can sign in (the sim seeds groups owned only by disabled accounts of
/// people who left; those cannot decide anything).
fn owner_alias(app: &TestApp, group: &str) -> Option<String> {
    let owners = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| t.groups[&group.parse().unwrap()].owners.clone())
        .unwrap();
    let tenant = app.sim.state.tenant(&CONTOSO).unwrap();
    owners
        .iter()
        .filter_map(|o| tenant.user_by_id(o))
        // Not under conditional access: the sim's tokens have no MFA claim.
        .find(|u| u.enabled && !u.guest && !u.mfa_policy)
        .map(|u| u.upn.split('@').next().unwrap().to_string())
}

fn deleted(app: &TestApp, group: &str) -> bool {
    app.sim
        .state
        .with_graph(&CONTOSO, |t| t.groups[&group.parse().unwrap()].deleted.is_some())
        .unwrap()
}

async fn open_reviews(app: &TestApp, admin: &str, ids: &[&str]) -> Value {
    app.json_ok("POST", "/api/lifecycle/reviews", admin, Some(json!({"groupIds": ids})))
        .await
}

async fn decide(app: &TestApp, token: &str, group: &str, decision: &str) -> reqwest::Response {
    app.call(
        "POST",
        &format!("/api/groups/{group}/review"),
        token,
        Some(json!({"decision": decision})),
    )
    .await
}

/// Reviews are opened only for confirmed candidates, kept in the customer's list, and take
/// their groups out of the candidates; owners and administrators decide, nobody else; `keep`
/// holds a group out; the whole loop of archive, delete and restore within 30 days brings the
/// group back with its team unarchived.
#[tokio::test]
async fn reviews_are_decided_by_owners_or_administrators() {
    let (app, admin, candidates) = ready(50).await;
    let teams: Vec<&str> = candidates
        .iter()
        .filter(|(g, t)| *t && owner_alias(&app, g).is_some())
        .map(|(g, _)| g.as_str())
        .collect();
    assert!(
        teams.len() >= 3,
        "{} candidates with a team and an owner who can sign in",
        teams.len()
    );
    let (kept, archived, not_candidate) = (teams[0], teams[1], "00000000-0000-0000-0000-000000000001");
    let writes = app.sim.graph_writes();
    let opened = open_reviews(&app, &admin, &[kept, archived, not_candidate]).await;
    assert_eq!(opened["opened"].as_array().unwrap().len(), 2, "{opened}");
    assert_eq!(opened["skipped"][0]["groupId"], not_candidate);
    // Two items written to the customer's list, each then marked as announced (and the list
    // made): nothing else.
    assert!(app.sim.graph_writes() - writes <= 5);
    let review = &opened["opened"][0];
    assert_eq!(review["state"], "pending");
    assert!(
        review["reason"].as_str().unwrap().contains("No counted activity"),
        "{review}"
    );
    // Opened twice: skipped, not duplicated.
    let again = open_reviews(&app, &admin, &[kept]).await;
    assert_eq!(again["opened"], json!([]));
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    assert_eq!(reviews["value"].as_array().unwrap().len(), 2);
    // In review: no longer candidates.
    let page = app.json_ok("GET", "/api/lifecycle/candidates", &admin, None).await;
    let now: BTreeSet<&str> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["groupId"].as_str().unwrap())
        .collect();
    assert!(!now.contains(kept) && !now.contains(archived));

    // Somebody who is neither owner nor administrator.
    let owner = owner_alias(&app, kept).unwrap();
    let stranger = ["adelev", "alexw", "meganb", "lynner"]
        .into_iter()
        .find(|a| *a != owner && Some(a.to_string()) != owner_alias(&app, archived))
        .unwrap();
    let resp = decide(&app, &app.sim.user_token(CONTOSO, stranger), kept, "keep").await;
    assert_eq!(error_code(resp).await, (403, "role_required".into()));
    // The owner keeps it.
    let resp = decide(&app, &app.sim.user_token(CONTOSO, &owner), kept, "keep").await;
    assert_eq!(resp.status(), 200);
    let review: Value = resp.json().await.unwrap();
    assert_eq!(review["state"], "kept");
    assert!(
        review["decidedBy"].as_str().is_some_and(|d| !d.contains('@')),
        "an object id, never a UPN"
    );
    let resp = decide(&app, &admin, kept, "archive").await;
    assert_eq!(
        error_code(resp).await,
        (409, "conflict".into()),
        "kept is final until it lapses"
    );

    // The administrator archives the other. Teams archives in the background: 202 while its
    // operation runs (the same decision again sends nothing), 200 once the team shows it.
    let resp = decide(&app, &admin, archived, "archive").await;
    assert_eq!(resp.status(), 202);
    let review: Value = resp.json().await.unwrap();
    assert_eq!(
        (review["state"].as_str(), review["actionState"].as_str()),
        (Some("pending"), Some("intended"))
    );
    assert_eq!(decide(&app, &admin, archived, "archive").await.status(), 202);
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    let resp = decide(&app, &admin, archived, "archive").await;
    assert_eq!(resp.status(), 200);
    let review: Value = resp.json().await.unwrap();
    assert_eq!(
        (review["state"].as_str(), review["actionState"].as_str()),
        (Some("archived"), Some("done"))
    );
    assert!(team_archived(&app, archived));
    assert_eq!(
        app.sim
            .requests_where(|p| p.ends_with(&format!("/teams/{archived}/archive"))),
        1,
        "archived once"
    );
    // Then deleted, then restored (within 30 days): the group is back at once, its team
    // unarchived by another operation of Teams.
    let resp = decide(&app, &admin, archived, "delete").await;
    assert_eq!(resp.status(), 200);
    assert!(deleted(&app, archived));
    app.sim.state.advance_clock(TimeDelta::days(10));
    let resp = decide(&app, &admin, archived, "restore").await;
    assert_eq!(resp.status(), 202);
    assert!(!deleted(&app, archived));
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    let resp = decide(&app, &admin, archived, "restore").await;
    assert_eq!(resp.status(), 200);
    let review: Value = resp.json().await.unwrap();
    assert_eq!(review["state"], "restored");
    assert!(!team_archived(&app, archived), "restored and unarchived");
    // No review: 404; a bad decision: 400.
    let resp = decide(&app, &admin, teams[2], "keep").await;
    assert_eq!(error_code(resp).await, (404, "not_found".into()));
    let resp = decide(&app, &admin, kept, "purge").await;
    assert_eq!(error_code(resp).await, (400, "invalid_input".into()));
    app.stop().await;
}

/// The answer to an archive or a delete is lost after Microsoft did it (the connection breaks):
/// the review stays "intended"; the same decision again asks Graph, finds it done and records
/// it — without a second archive or delete request.
#[tokio::test]
async fn an_answer_lost_between_intended_and_done_never_acts_twice() {
    let (app, admin, candidates) = ready(50).await;
    let teams: Vec<&str> = candidates.iter().filter(|(_, t)| *t).map(|(g, _)| g.as_str()).collect();
    let (archived, removed) = (teams[0], teams[1]);
    open_reviews(&app, &admin, &[archived, removed]).await;

    // What was sent to Microsoft to act: archive requests, or DELETEs of the group.
    let acts = |app: &TestApp, group: &str, decision: &str| match decision {
        "archive" => app
            .sim
            .requests_where(|p| p.ends_with(&format!("/teams/{group}/archive"))),
        _ => app
            .sim
            .graph_writes_where(|m, p| m == "DELETE" && p.ends_with(&format!("/groups/{group}"))),
    };
    for (group, decision) in [(archived, "archive"), (removed, "delete")] {
        let (method, path) = match decision {
            "archive" => ("POST", format!("/teams/{group}/archive")),
            _ => ("DELETE", format!("/groups/{group}")),
        };
        app.sim
            .state
            .faults
            .arm(FaultRule::new(path, FaultKind::DropAnswer).method(method).times(1));
        let resp = decide(&app, &admin, group, decision).await;
        assert!(resp.status().is_server_error(), "{decision}: {}", resp.status());
        assert_eq!(acts(&app, group, decision), 1, "{decision}: sent once, not retried");
        let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
        let r = reviews["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["groupId"] == group)
            .unwrap()
            .clone();
        assert_eq!(
            (r["action"].as_str(), r["actionState"].as_str()),
            (Some(decision), Some("intended")),
            "{r}"
        );
        if decision == "archive" {
            // Teams is still archiving: the same decision answers 202 and sends nothing.
            let resp = decide(&app, &admin, group, decision).await;
            assert_eq!(resp.status(), 202);
            app.sim.state.advance_clock(TimeDelta::seconds(30));
        }
        let resp = decide(&app, &admin, group, decision).await;
        assert_eq!(resp.status(), 200, "{decision}");
        let review: Value = resp.json().await.unwrap();
        assert_eq!(review["actionState"], "done");
        assert_eq!(acts(&app, group, decision), 1, "{decision}: asked, never sent again");
    }
    assert!(team_archived(&app, archived));
    assert!(deleted(&app, removed));

    // The requester goes away after the answer was lost: the next sync finds the deletion
    // happened and records it (with GroupMgr's own read-only rights), without sending it.
    let third = teams[2];
    open_reviews(&app, &admin, &[third]).await;
    app.sim.state.faults.arm(
        FaultRule::new(format!("/groups/{third}"), FaultKind::DropAnswer)
            .method("DELETE")
            .times(1),
    );
    assert!(decide(&app, &admin, third, "delete").await.status().is_server_error());
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    let r = reviews["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["groupId"] == third)
        .unwrap();
    assert_eq!(
        (r["state"].as_str(), r["actionState"].as_str()),
        (Some("deleted"), Some("done")),
        "{r}"
    );
    assert_eq!(acts(&app, third, "delete"), 1);
    app.stop().await;
}

/// The day's cap counts actions, not attempts: an intent that could not be recorded gives its
/// place back (nothing was sent), and an archive sent again the same day (its request lost
/// before Teams got it) keeps the place it took.
#[tokio::test]
async fn the_cap_counts_actions_not_attempts() {
    let (app, admin, candidates) = ready(2).await;
    // Not in the last half hour of a UTC day: the resend below must fall on the same day.
    {
        use chrono::Timelike as _;
        let now = app.sim.state.now();
        if now.hour() == 23 && now.minute() >= 30 {
            app.sim.state.advance_clock(TimeDelta::minutes(31));
        }
    }
    let teams: Vec<&str> = candidates
        .iter()
        .filter(|(g, t)| *t && owner_alias(&app, g).is_some())
        .map(|(g, _)| g.as_str())
        .take(3)
        .collect();
    assert_eq!(teams.len(), 3);
    let (a, b, c) = (teams[0], teams[1], teams[2]);
    open_reviews(&app, &admin, &teams).await;
    let taken = || async {
        groupmgr::lifecycle::cap::taken(app.app.state.as_ref(), &contoso(), app.sim.state.now())
            .await
            .unwrap()
    };
    let archives = |g: &str| app.sim.requests_where(|p| p.ends_with(&format!("/teams/{g}/archive")));
    // The review item's write (the intent) is refused: nothing sent, no place kept.
    app.sim.state.faults.arm(
        FaultRule::new(
            "/items/",
            FaultKind::Status {
                status: 412,
                code: "preconditionFailed".into(),
                retry_after: None,
            },
        )
        .method("PATCH")
        .times(1),
    );
    assert_eq!(decide(&app, &admin, a, "archive").await.status(), 409);
    assert_eq!((archives(a), taken().await), (0, 0));
    // The archive request is lost on its way (Teams never got it): intended, one place.
    app.sim.state.faults.arm(
        FaultRule::new(format!("/teams/{a}/archive"), FaultKind::Drop)
            .method("POST")
            .times(1),
    );
    assert!(decide(&app, &admin, a, "archive").await.status().is_server_error());
    assert_eq!(taken().await, 1);
    // Asked again after the resend wait, the same day: sent again, on the same place.
    app.sim.state.advance_clock(TimeDelta::minutes(16));
    let resp = decide(&app, &admin, a, "archive").await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!((archives(a), taken().await), (2, 1));
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    decide(&app, &admin, a, "archive").await;
    assert!(team_archived(&app, a));
    // So the day still has a place for another group, and then none.
    assert!(decide(&app, &admin, b, "archive").await.status().is_success());
    assert_eq!(
        error_code(decide(&app, &admin, c, "archive").await).await,
        (409, "action_cap_reached".into())
    );
    app.stop().await;
}

/// Two at a time, eight decisions race for a cap of 3 actions a day: exactly 3 act, the others
/// are refused with `action_cap_reached`; `keep` is not an action and is never refused.
#[tokio::test]
async fn the_daily_cap_holds_under_concurrent_decisions() {
    let (app, admin, candidates) = ready(3).await;
    let ids: Vec<&str> = candidates.iter().map(|(g, _)| g.as_str()).take(9).collect();
    assert_eq!(ids.len(), 9);
    let opened = open_reviews(&app, &admin, &ids).await;
    assert_eq!(opened["opened"].as_array().unwrap().len(), 9);
    let (racing, kept) = ids.split_at(8);
    let answers = futures_util::future::join_all(racing.iter().map(|g| decide(&app, &admin, g, "delete"))).await;
    let mut statuses = Vec::new();
    for resp in answers {
        let status = resp.status().as_u16();
        if status != 200 {
            assert_eq!(error_code(resp).await, (409, "action_cap_reached".into()));
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(racing.iter().filter(|g| deleted(&app, g)).count(), 3);
    let resp = decide(&app, &admin, kept[0], "keep").await;
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

/// `automatic` execution: refused until the tenant granted GroupMgr the application
/// permissions it needs; then each sync archives the teams of reviews nobody answered by their
/// due date — under the daily cap, once each — and deletes what it archived `deleteAfterDays`
/// later. A review an administrator answered, a group excluded since its review opened and a
/// group without a team are never acted on.
#[tokio::test]
async fn automatic_execution_acts_on_unanswered_reviews_as_the_policy_says() {
    let (app, admin, candidates) = ready(3).await;
    // Teams with an owner who can act (Teams archives only a team that has one), and that the
    // feed never shows active: a team of the feed's may have had no record for a while and be
    // a candidate, then be used again during its review, which is another case (below).
    let teams: Vec<&str> = candidates
        .iter()
        .filter(|(g, t)| *t && owner_alias(&app, g).is_some())
        .filter(|(g, _)| !m365_sim::audit::teams_active(g.parse().unwrap()))
        .map(|(g, _)| g.as_str())
        .take(8)
        .collect();
    assert_eq!(teams.len(), 8);
    let teamless = candidates.iter().find(|(_, t)| !*t).map(|(g, _)| g.as_str()).unwrap();
    let mut auto = policy(3);
    auto["onNoAnswer"] = json!({"action": "archive", "deleteAfterDays": 30});
    auto["execution"] = json!("automatic");
    auto["exclusions"] =
        json!({"sensitivityLabels": [m365_sim::graph::model::label_id(CONTOSO, "Highly Confidential")]});
    let resp = app
        .call("PUT", "/api/lifecycle/policy", &admin, Some(auto.clone()))
        .await;
    assert_eq!(error_code(resp).await, (403, "consent_required".into()));
    app.sim.state.update_tenant(&CONTOSO, |t| {
        t.added_app_roles = vec!["TeamSettings.ReadWrite.All".into(), "Group.ReadWrite.All".into()];
    });
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(auto)).await;
    let mut opening = teams.clone();
    opening.push(teamless);
    let opened = open_reviews(&app, &admin, &opening).await;
    assert_eq!(opened["opened"].as_array().unwrap().len(), 9, "{opened}");
    // An administrator keeps one; another group is labelled so that the policy excludes it;
    // a third loses its owners (who leave the group), which Teams needs to archive it.
    let (kept, excluded, ownerless, revived, acted) = (teams[4], teams[5], teams[6], teams[7], &teams[..4]);
    assert_eq!(decide(&app, &admin, kept, "keep").await.status(), 200);
    app.sim
        .state
        .set_group_labels(&CONTOSO, &excluded.parse().unwrap(), &["Highly Confidential"]);
    app.sim.state.with_graph(&CONTOSO, |t| {
        let id = ownerless.parse().unwrap();
        for owner in std::mem::take(&mut t.groups.get_mut(&id).unwrap().owners) {
            t.record(
                id,
                m365_sim::graph::model::ChangeKind::Owner {
                    user: owner,
                    added: false,
                },
            );
        }
    });

    let archives = |g: &str| app.sim.requests_where(|p| p.ends_with(&format!("/teams/{g}/archive")));
    let deletes = |g: &str| {
        app.sim
            .graph_writes_where(|m, p| m == "DELETE" && p.ends_with(&format!("/groups/{g}")))
    };
    let state_of = |reviews: &Value, g: &str| -> (String, Option<String>) {
        let r = reviews["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["groupId"] == g)
            .unwrap();
        (
            r["state"].as_str().unwrap().to_string(),
            r["decidedBy"].as_str().map(str::to_string),
        )
    };
    // Synced every 6 days (the feed keeps 7, so the data stays complete); nothing before the
    // window's 14 days are over.
    for _ in 0..2 {
        app.sim.state.advance_clock(TimeDelta::days(6));
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    }
    assert!(acted.iter().all(|g| archives(g) == 0));
    // One is used again during its review (its row records Teams activity of day 12).
    mark_used(&app, revived);
    // Day 15: due. Three places a day: three archives sent, the fourth waits for tomorrow.
    app.sim.state.advance_clock(TimeDelta::days(3));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let sent: Vec<&&str> = acted.iter().filter(|g| archives(g) == 1).collect();
    assert_eq!(sent.len(), 3);
    // Teams archives asynchronously: the next sync records what it finished, sends nothing.
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    for g in &sent {
        assert!(team_archived(&app, g), "{g}: {reviews}");
        assert_eq!(state_of(&reviews, g), ("archived".into(), Some("automatic".into())));
    }
    // The next day, the fourth.
    app.sim.state.advance_clock(TimeDelta::days(1));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(acted.iter().all(|g| archives(g) == 1 && team_archived(&app, g)));
    // Never acted on: kept, excluded since, no team, no owner; used again: kept by GroupMgr.
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    assert_eq!(state_of(&reviews, kept).0, "kept");
    assert_eq!(state_of(&reviews, revived), ("kept".into(), Some("automatic".into())));
    for g in [excluded, teamless, ownerless] {
        assert_eq!(state_of(&reviews, g), ("pending".into(), None), "{g}");
    }
    assert!(
        [kept, excluded, ownerless, revived]
            .iter()
            .all(|g| archives(g) == 0 && !team_archived(&app, g))
    );

    // 30 days after each archive, its group is deleted (soft), once.
    for _ in 0..5 {
        app.sim.state.advance_clock(TimeDelta::days(6));
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    }
    // Day 46: all four are due, three places: the fourth goes the next day.
    assert_eq!(acted.iter().filter(|g| deleted(&app, g)).count(), 3);
    app.sim.state.advance_clock(TimeDelta::days(1));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    for g in acted {
        assert!(deleted(&app, g), "{g}");
        assert_eq!(deletes(g), 1);
        assert_eq!(state_of(&reviews, g), ("deleted".into(), Some("automatic".into())));
    }
    assert!(
        [kept, excluded, teamless, ownerless, revived]
            .iter()
            .all(|g| !deleted(&app, g) && deletes(g) == 0)
    );
    // Still restorable by an administrator: the group back, its team unarchived.
    let resp = decide(&app, &admin, acted[0], "restore").await;
    assert!(resp.status() == 200 || resp.status() == 202);
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    decide(&app, &admin, acted[0], "restore").await;
    assert!(!deleted(&app, acted[0]) && !team_archived(&app, acted[0]));
    app.stop().await;
}

/// `automatic` execution and an archive Graph refuses (not for want of a permission): tried
/// again an hour later, then two hours after that, and so on — not on every sync — and done
/// once Graph takes it.
#[tokio::test]
async fn a_refused_automatic_archive_is_tried_again_later_not_on_every_sync() {
    let (app, admin, candidates) = ready(3).await;
    let team = candidates
        .iter()
        .filter(|(g, t)| *t && owner_alias(&app, g).is_some())
        .map(|(g, _)| g.as_str())
        .find(|g| !m365_sim::audit::teams_active(g.parse().unwrap()))
        .unwrap()
        .to_string();
    app.sim.state.update_tenant(&CONTOSO, |t| {
        t.added_app_roles = vec!["TeamSettings.ReadWrite.All".into(), "Group.ReadWrite.All".into()];
    });
    let mut auto = policy(3);
    auto["onNoAnswer"] = json!({"action": "archive"});
    auto["execution"] = json!("automatic");
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(auto)).await;
    open_reviews(&app, &admin, &[&team]).await;
    let archives = || {
        app.sim
            .requests_where(|p| p.ends_with(&format!("/teams/{team}/archive")))
    };
    // Graph refuses the archive, as it would a team in a state it cannot archive.
    app.sim.state.faults.arm(
        FaultRule::new(
            format!("/teams/{team}/archive"),
            FaultKind::Status {
                status: 400,
                code: "BadRequest".into(),
                retry_after: None,
            },
        )
        .method("POST"),
    );
    for _ in 0..2 {
        app.sim.state.advance_clock(TimeDelta::days(6));
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    }
    app.sim.state.advance_clock(TimeDelta::days(3));
    let mut tried = Vec::new();
    // Due: a sync every 20 minutes for 4 hours.
    for _ in 0..12 {
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
        tried.push(archives());
        app.sim.state.advance_clock(TimeDelta::minutes(20));
    }
    // Tried at once, an hour later, then two hours after that: three times in 12 syncs.
    assert_eq!(tried, [1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3], "{tried:?}");
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    let review = reviews["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["groupId"] == team.as_str())
        .unwrap()
        .clone();
    assert_eq!(review["state"], "pending", "{review}");
    // Graph takes it: archived on the next try, once.
    app.sim.state.faults.clear();
    app.sim.state.advance_clock(TimeDelta::hours(4));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!(archives(), 4);
    assert!(team_archived(&app, &team));
    app.stop().await;
}

/// `automatic` execution opens the reviews itself: the dry run's candidates, longest inactive
/// first, at most `maxActionsPerDay` a day (switching it on tells a few owners a day, not all
/// at once), each announced once (`review.created`).
#[tokio::test]
async fn automatic_execution_opens_reviews_a_few_a_day() {
    let (app, admin, candidates) = ready(2).await;
    assert!(candidates.len() >= 5, "{}", candidates.len());
    app.sim.state.update_tenant(&CONTOSO, |t| {
        t.added_app_roles = vec!["TeamSettings.ReadWrite.All".into(), "Group.ReadWrite.All".into()];
    });
    let mut auto = policy(2);
    auto["execution"] = json!("automatic");
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(auto)).await;
    let page = app.json_ok("GET", "/api/lifecycle/candidates", &admin, None).await;
    let mut order: Vec<(String, String)> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["inactiveSince"].as_str().unwrap().to_string(),
                c["groupId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    order.sort();
    let opened = || async {
        let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
        reviews["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["state"], "pending", "{r}");
                r["groupId"].as_str().unwrap().to_string()
            })
            .collect::<BTreeSet<String>>()
    };
    let first_two: BTreeSet<String> = order.iter().take(2).map(|(_, g)| g.clone()).collect();
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!(opened().await, first_two, "the two longest inactive");
    // Again the same day: none more.
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!(opened().await.len(), 2);
    // The next day, two more.
    app.sim.state.advance_clock(TimeDelta::days(1));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let now_open = opened().await;
    assert_eq!(now_open.len(), 4);
    let ids: BTreeSet<String> = candidates.iter().map(|(g, _)| g.clone()).collect();
    assert!(now_open.is_subset(&ids), "only candidates");
    let events = created_events(&app).await;
    for g in &now_open {
        assert_eq!(events.get(g).map(Vec::len), Some(1), "{g}: {events:?}");
    }
    app.stop().await;
}

/// The `review.created` events waiting in the tenant's outbox: group → event ids.
async fn created_events(app: &TestApp) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (id, group) in queued_events(app, "review.created").await {
        out.entry(group).or_default().push(id);
    }
    out
}

/// A request that stops between writing a review and queueing its `review.created` loses
/// nothing: the next sync queues the same event (same id), once — on a reviews list made before
/// the column that records it, which the sync adds; a review older than a day without the
/// record (opened before GroupMgr kept it) is not announced late.
#[tokio::test]
async fn review_created_survives_a_request_stopped_before_it_queued_it() {
    let (app, admin, candidates) = ready(50).await;
    let (stopped, old) = (candidates[0].0.as_str(), candidates[1].0.as_str());
    open_reviews(&app, &admin, &[stopped, old]).await;
    let queued = created_events(&app).await;
    assert_eq!(queued.len(), 2, "{queued:?}");
    let first_id = queued[stopped][0].clone();

    // As if each request had stopped after writing its review: no event queued, nothing
    // recorded on the item; the second review was opened two days ago.
    let two_days_ago = common::rows::fmt(Some(app.sim.state.now() - TimeDelta::days(2)));
    app.sim.state.with_graph(&CONTOSO, |t| {
        for lists in t.lists.values_mut() {
            for l in lists.iter_mut().filter(|l| l.display_name == "GroupMgr Reviews") {
                // A list made before the column existed: the sync adds it before writing it.
                l.columns.retain(|c| c["name"] != "CreatedNotifiedAt");
                for f in l.items.values_mut() {
                    f.remove("CreatedNotifiedAt");
                    if f["GroupId"] == old {
                        f.insert("OpenedAt".into(), two_days_ago.clone());
                    }
                }
            }
        }
    });
    app.app.state.delete(&contoso(), "webhook_outbox").await.unwrap();
    assert!(created_events(&app).await.is_empty());

    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let after = created_events(&app).await;
    assert_eq!(
        after.get(stopped),
        Some(&vec![first_id.clone()]),
        "the same event, once"
    );
    assert!(!after.contains_key(old), "not announced late");
    let recorded = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.lists
                .values()
                .flatten()
                .filter(|l| l.display_name == "GroupMgr Reviews")
                .any(|l| {
                    l.items
                        .values()
                        .any(|f| f["GroupId"] == stopped && f.get("CreatedNotifiedAt").is_some_and(Value::is_string))
                })
        })
        .unwrap();
    assert!(recorded, "recorded on the review, in the column the sync added");
    // Recorded: the next sync queues nothing more.
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!(created_events(&app).await, after);
    app.stop().await;
}

/// `manual` execution: the policy's `onNoAnswer` is offered to an administrator as a batch to
/// confirm (`GET /api/lifecycle/actions`), and carried out on their behalf
/// (`POST /api/lifecycle/actions`) — the tenant granted GroupMgr no application permission, so
/// every archive and delete here ran with the administrator's delegated rights. Nothing happens
/// until it is confirmed; the day's cap holds; a group used again is kept; a confirmation
/// repeated acts once; and only teams archived for want of an answer are deleted
/// `deleteAfterDays` later, never one an owner chose to archive.
#[tokio::test]
async fn manual_execution_offers_unanswered_reviews_as_a_batch_to_confirm() {
    let (app, admin, candidates) = ready(2).await;
    let teams: Vec<&str> = candidates
        .iter()
        .filter(|(g, t)| *t && owner_alias(&app, g).is_some())
        .filter(|(g, _)| !m365_sim::audit::teams_active(g.parse().unwrap()))
        .map(|(g, _)| g.as_str())
        .take(6)
        .collect();
    assert_eq!(teams.len(), 6);
    let teamless = candidates.iter().find(|(_, t)| !*t).map(|(g, _)| g.as_str()).unwrap();
    let mut manual = policy(2);
    manual["onNoAnswer"] = json!({"action": "archive", "deleteAfterDays": 30});
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(manual)).await;
    let mut opening = teams.clone();
    opening.push(teamless);
    let opened = open_reviews(&app, &admin, &opening).await;
    assert_eq!(opened["opened"].as_array().unwrap().len(), 7, "{opened}");
    // One owner archives their team themselves; another group is used again during its review.
    let (by_owner, revived, unanswered) = (teams[0], teams[1], &teams[2..]);
    let owner = app.sim.user_token(CONTOSO, &owner_alias(&app, by_owner).unwrap());
    assert_eq!(decide(&app, &owner, by_owner, "archive").await.status(), 202);
    let archives = |g: &str| app.sim.requests_where(|p| p.ends_with(&format!("/teams/{g}/archive")));
    let deletes = |g: &str| {
        app.sim
            .graph_writes_where(|m, p| m == "DELETE" && p.ends_with(&format!("/groups/{g}")))
    };
    let ids_of = |v: &Value, key: &str| -> BTreeSet<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["groupId"].as_str().unwrap().to_string())
            .collect()
    };
    // Nothing is due inside the review window; not for someone who is not an administrator.
    assert_eq!(due_actions(&app, &admin).await["value"], json!([]));
    let resp = app.call("GET", "/api/lifecycle/actions", &owner, None).await;
    assert_eq!(error_code(resp).await, (403, "role_required".into()));

    for _ in 0..2 {
        app.sim.state.advance_clock(TimeDelta::days(6));
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    }
    mark_used(&app, revived);
    // Day 15: due. Syncs of a manual tenant do nothing to them.
    app.sim.state.advance_clock(TimeDelta::days(3));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(unanswered.iter().all(|g| archives(g) == 0));
    let due = due_actions(&app, &admin).await;
    assert_eq!(due["execution"], "manual");
    assert_eq!(
        (due["takenToday"].as_u64(), due["maxActionsPerDay"].as_u64()),
        (Some(0), Some(2))
    );
    let step_of = |due: &Value, g: &str| -> (String, Option<String>) {
        let a = due["value"].as_array().unwrap().iter().find(|a| a["groupId"] == g);
        let a = a.unwrap_or_else(|| panic!("{g} not in {due}"));
        (
            a["step"].as_str().unwrap().into(),
            a["notNow"].as_str().map(str::to_string),
        )
    };
    for g in unanswered {
        assert_eq!(step_of(&due, g), ("archive".into(), None), "{due}");
    }
    assert_eq!(step_of(&due, revived), ("keep".into(), None));
    assert_eq!(step_of(&due, teamless).0, "archive");
    assert!(step_of(&due, teamless).1.is_some_and(|w| w.contains("no team")));
    assert!(!due.to_string().contains(by_owner), "decided by its owner: nothing due");

    // Confirmed, all of them and a group with nothing due: two archives (the day's cap), the
    // revived group kept, the rest skipped with the reason.
    let mut all: Vec<&str> = unanswered.to_vec();
    all.extend([revived, teamless, by_owner]);
    let out = confirm(&app, &admin, &all).await;
    assert_eq!(ids_of(&out, "underway").len(), 2, "{out}");
    assert_eq!(ids_of(&out, "kept"), BTreeSet::from([revived.to_string()]));
    let skipped: Vec<(String, String)> = out["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["groupId"].as_str().unwrap().into(),
                s["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 4, "{out}");
    assert!(
        skipped
            .iter()
            .any(|(g, r)| g == by_owner && r.contains("no action is due"))
    );
    assert!(skipped.iter().any(|(g, r)| g == teamless && r.contains("no team")));
    assert_eq!(
        skipped.iter().filter(|(_, r)| r.contains("maxActionsPerDay")).count(),
        2,
        "{out}"
    );
    for r in out["underway"].as_array().unwrap() {
        assert_eq!(r["noAnswer"], true);
        let by = r["decidedBy"].as_str().unwrap();
        assert!(by != "automatic" && uuid::Uuid::parse_str(by).is_ok(), "{by}");
    }
    // Confirmed again at once: nothing sent twice (the archives are under way at Teams).
    let again = confirm(&app, &admin, &all).await;
    assert_eq!(
        ids_of(&again, "done").len() + ids_of(&again, "underway").len(),
        2,
        "{again}"
    );
    assert!(unanswered.iter().all(|g| archives(g) <= 1));
    // The next day, the other two; a sync records what Teams finished.
    app.sim.state.advance_clock(TimeDelta::days(1));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    confirm(&app, &admin, &all).await;
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    let review = |g: &str| {
        reviews["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["groupId"] == g)
            .cloned()
            .unwrap()
    };
    for g in unanswered {
        assert!(team_archived(&app, g), "{g}");
        assert_eq!(archives(g), 1, "{g}: archived once");
        assert_eq!(
            (review(g)["state"].clone(), review(g)["noAnswer"].clone()),
            (json!("archived"), json!(true))
        );
    }
    assert_eq!(review(revived)["state"], "kept");
    assert_eq!(review(by_owner)["noAnswer"], false);
    assert_eq!(review(teamless)["state"], "pending");

    // 30 days after each archive: the deletes are offered, never the owner's own archive.
    for _ in 0..5 {
        app.sim.state.advance_clock(TimeDelta::days(6));
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    }
    app.sim.state.advance_clock(TimeDelta::days(1));
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let due = due_actions(&app, &admin).await;
    for g in unanswered {
        assert_eq!(step_of(&due, g), ("delete".into(), None), "{due}");
    }
    assert!(!due.to_string().contains(by_owner));
    assert!(
        unanswered.iter().all(|g| !deleted(&app, g)),
        "nothing before it is confirmed"
    );
    let out = confirm(&app, &admin, unanswered).await;
    assert_eq!(ids_of(&out, "done").len(), 2, "{out}");
    app.sim.state.advance_clock(TimeDelta::days(1));
    let out = confirm(&app, &admin, unanswered).await;
    assert_eq!(ids_of(&out, "done").len(), 2, "{out}");
    for g in unanswered {
        assert!(deleted(&app, g) && deletes(g) == 1, "{g}: deleted once");
    }
    assert!(!deleted(&app, by_owner) && deletes(by_owner) == 0);
    app.stop().await;
}

async fn due_actions(app: &TestApp, admin: &str) -> Value {
    app.json_ok("GET", "/api/lifecycle/actions", admin, None).await
}

async fn confirm(app: &TestApp, admin: &str, ids: &[&str]) -> Value {
    app.json_ok("POST", "/api/lifecycle/actions", admin, Some(json!({"groupIds": ids})))
        .await
}

/// Teams accepts an archive and its operation then fails: the next decision finds the
/// operation `failed`, clears the intent and gives back the day's place (with a cap of one,
/// archiving again is allowed), says why (502), and a new archive is sent — the team ends
/// archived, after exactly two archive requests.
#[tokio::test]
async fn a_failed_teams_archive_clears_the_intent_and_gives_back_its_place() {
    let (app, admin, candidates) = ready(1).await;
    let team = candidates
        .iter()
        .find(|(g, t)| *t && owner_alias(&app, g).is_some())
        .map(|(g, _)| g.as_str())
        .unwrap();
    open_reviews(&app, &admin, &[team]).await;
    app.sim.state.fail_next_team_operation(&CONTOSO, &team.parse().unwrap());
    assert_eq!(decide(&app, &admin, team, "archive").await.status(), 202);
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    let resp = decide(&app, &admin, team, "archive").await;
    let (status, code) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (502, "microsoft_unavailable"));
    assert!(!team_archived(&app, team));
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    let r = &reviews["value"][0];
    assert_eq!(
        (r["state"].as_str(), r["action"].clone(), r["actionState"].clone()),
        (Some("pending"), Value::Null, Value::Null),
        "{r}"
    );
    let due = due_actions(&app, &admin).await;
    assert_eq!(due["takenToday"], 0, "the place is given back");
    // Tried again: the only place of the day is free.
    assert_eq!(decide(&app, &admin, team, "archive").await.status(), 202);
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    assert_eq!(decide(&app, &admin, team, "archive").await.status(), 200);
    assert!(team_archived(&app, team));
    assert_eq!(
        app.sim
            .requests_where(|p| p.ends_with(&format!("/teams/{team}/archive"))),
        2
    );
    app.stop().await;
}

/// The answers to a restore and to the unarchive that follows it are both lost after
/// Microsoft acted: the restore (safe to repeat: a group restored already is not found among
/// the deleted items) is asked again at once and found done; the unarchive is not sent again —
/// deciding again before 15 minutes sends nothing, and after them finds the team unarchived
/// and records it. Each took effect once; the unarchive was sent once.
#[tokio::test]
async fn a_lost_restore_or_unarchive_answer_never_acts_twice() {
    let (app, admin, candidates) = ready(50).await;
    let team = candidates
        .iter()
        .find(|(g, t)| *t && owner_alias(&app, g).is_some())
        .map(|(g, _)| g.as_str())
        .unwrap();
    open_reviews(&app, &admin, &[team]).await;
    assert_eq!(decide(&app, &admin, team, "archive").await.status(), 202);
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    assert_eq!(decide(&app, &admin, team, "archive").await.status(), 200);
    assert_eq!(decide(&app, &admin, team, "delete").await.status(), 200);
    assert!(deleted(&app, team));
    let restores = || {
        app.sim
            .requests_where(|p| p.ends_with(&format!("/directory/deletedItems/{team}/restore")))
    };
    let unarchives = || {
        app.sim
            .requests_where(|p| p.ends_with(&format!("/teams/{team}/unarchive")))
    };

    for path in [
        format!("/directory/deletedItems/{team}/restore"),
        format!("/teams/{team}/unarchive"),
    ] {
        app.sim
            .state
            .faults
            .arm(FaultRule::new(path, FaultKind::DropAnswer).method("POST").times(1));
    }
    assert!(decide(&app, &admin, team, "restore").await.status().is_server_error());
    assert!(!deleted(&app, team), "Microsoft restored it");
    // The restore asked again found nothing left to restore; the unarchive went once.
    assert_eq!((restores(), unarchives()), (2, 1));
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    assert_eq!(
        (
            reviews["value"][0]["action"].as_str(),
            reviews["value"][0]["actionState"].as_str()
        ),
        (Some("restore"), Some("intended"))
    );
    // Too soon to send anything again (the unarchive may still be running): still intended.
    assert_eq!(decide(&app, &admin, team, "restore").await.status(), 202);
    assert_eq!((restores(), unarchives()), (2, 1));
    // Later: Teams finished the unarchive it got; the decision records it, sending nothing.
    app.sim.state.advance_clock(TimeDelta::minutes(16));
    let resp = decide(&app, &admin, team, "restore").await;
    assert_eq!(resp.status(), 200);
    let review: Value = resp.json().await.unwrap();
    assert_eq!(
        (review["state"].as_str(), review["actionState"].as_str()),
        (Some("restored"), Some("done"))
    );
    assert!(!deleted(&app, team) && !team_archived(&app, team));
    assert_eq!((restores(), unarchives()), (2, 1), "the unarchive sent once");
    app.stop().await;
}

/// Sync every 6 days (the feed keeps 7, so the data stays complete and fresh) until `days`
/// have passed, then once more.
async fn sync_through(app: &TestApp, days: i64) {
    let mut left = days;
    while left > 0 {
        let step = left.min(6);
        app.sim.state.advance_clock(TimeDelta::days(step));
        tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
        left -= step;
    }
}

/// What a failed action for want of an answer leaves behind. A no-answer archive whose Teams
/// operation fails leaves the review pending and unmarked: offered again, and an owner who then
/// archives it chose that, so it is never deleted for want of an answer. A no-answer deletion
/// Microsoft refuses (403) ends the batch, and the archive it followed keeps its time and mark:
/// the deletion is offered again, due since the same day.
#[tokio::test]
async fn failed_no_answer_actions_lose_nothing_and_mark_nothing_wrongly() {
    let (app, admin, candidates) = ready(5).await;
    let teams: Vec<&str> = candidates
        .iter()
        .filter(|(g, t)| *t && owner_alias(&app, g).is_some())
        .filter(|(g, _)| !m365_sim::audit::teams_active(g.parse().unwrap()))
        .map(|(g, _)| g.as_str())
        .take(2)
        .collect();
    let (failing, refused) = (teams[0], teams[1]);
    let mut manual = policy(5);
    manual["onNoAnswer"] = json!({"action": "archive", "deleteAfterDays": 30});
    app.json_ok("PUT", "/api/lifecycle/policy", &admin, Some(manual)).await;
    open_reviews(&app, &admin, &teams).await;
    sync_through(&app, 15).await;
    app.sim
        .state
        .fail_next_team_operation(&CONTOSO, &failing.parse().unwrap());
    let out = confirm(&app, &admin, &teams).await;
    assert_eq!(out["underway"].as_array().unwrap().len(), 2, "{out}");
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    let out = confirm(&app, &admin, &teams).await;
    assert_eq!(out["done"][0]["groupId"], refused, "{out}");
    assert_eq!(out["skipped"][0]["groupId"], failing, "{out}");
    assert!(
        out["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("could not carry out the archive"),
        "{out}"
    );
    let review_of = |reviews: &Value, g: &str| {
        reviews["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["groupId"] == g)
            .cloned()
            .unwrap()
    };
    let reviews = app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await;
    let r = review_of(&reviews, failing);
    assert_eq!(
        (r["state"].as_str(), r["action"].clone(), r["noAnswer"].clone()),
        (Some("pending"), Value::Null, json!(false)),
        "{r}"
    );
    let due = due_actions(&app, &admin).await;
    assert_eq!(due["value"][0]["groupId"], failing, "offered again: {due}");
    assert_eq!(due["value"][0]["step"], "archive");
    // Its owner archives it now: their choice.
    let owner = app.sim.user_token(CONTOSO, &owner_alias(&app, failing).unwrap());
    assert_eq!(decide(&app, &owner, failing, "archive").await.status(), 202);
    app.sim.state.advance_clock(TimeDelta::seconds(30));
    assert_eq!(decide(&app, &owner, failing, "archive").await.status(), 200);
    let archived_at = time(
        &review_of(
            &app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await,
            refused,
        )["actionDoneAt"],
    );

    // 30 days on: only the no-answer archive's deletion is offered; Microsoft refuses it.
    sync_through(&app, 31).await;
    let due = due_actions(&app, &admin).await;
    let offered: Vec<&str> = due["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["groupId"].as_str().unwrap())
        .collect();
    assert_eq!(offered, [refused], "{due}");
    assert_eq!(time(&due["value"][0]["dueSince"]), archived_at + TimeDelta::days(30));
    let refuse_delete = || {
        app.sim.state.faults.arm(
            FaultRule::new(
                format!("/groups/{refused}"),
                FaultKind::Status {
                    status: 403,
                    code: "Authorization_RequestDenied".into(),
                    retry_after: None,
                },
            )
            .method("DELETE")
            .times(1),
        )
    };
    // An administrator's own deletion of it, refused: the archive stays one for want of an
    // answer, with its time.
    refuse_delete();
    assert_eq!(decide(&app, &admin, refused, "delete").await.status(), 403);
    let r = review_of(
        &app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await,
        refused,
    );
    assert_eq!(
        (r["state"].as_str(), r["actionState"].as_str(), r["noAnswer"].clone()),
        (Some("archived"), Some("done"), json!(true)),
        "{r}"
    );
    assert_eq!(time(&r["actionDoneAt"]), archived_at);
    // Confirmed in a batch, refused again: it ends the batch.
    refuse_delete();
    let out = confirm(&app, &admin, &[refused, failing]).await;
    assert_eq!(out["skipped"].as_array().unwrap().len(), 2, "{out}");
    assert!(!deleted(&app, refused));
    let r = review_of(
        &app.json_ok("GET", "/api/lifecycle/reviews", &admin, None).await,
        refused,
    );
    assert_eq!(
        (
            r["state"].as_str(),
            r["action"].as_str(),
            r["actionState"].as_str(),
            r["noAnswer"].clone()
        ),
        (Some("archived"), Some("archive"), Some("done"), json!(true)),
        "{r}"
    );
    assert_eq!(time(&r["actionDoneAt"]), archived_at, "the archive keeps its time");
    let due = due_actions(&app, &admin).await;
    assert_eq!(due["value"][0]["groupId"], refused, "offered again: {due}");
    assert_eq!(time(&due["value"][0]["dueSince"]), archived_at + TimeDelta::days(30));
    // Allowed now: deleted, once.
    let out = confirm(&app, &admin, &[refused]).await;
    assert_eq!(out["done"][0]["groupId"], refused, "{out}");
    assert!(deleted(&app, refused) && !deleted(&app, failing));
    app.stop().await;
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}")))
        .unwrap()
        .to_utc()
}

/// Its row in the customer's list records Teams activity now, as a sync that saw it would.
fn mark_used(app: &TestApp, group: &str) {
    let used = common::rows::fmt(Some(app.sim.state.now()));
    app.sim.state.with_graph(&CONTOSO, |t| {
        for lists in t.lists.values_mut() {
            for l in lists.iter_mut().filter(|l| l.display_name == "GroupMgr Groups") {
                for fields in l.items.values_mut().filter(|f| f["GroupId"] == group) {
                    fields.insert("LastTeamsActivity".into(), used.clone());
                    fields.insert("LastActivity".into(), used.clone());
                }
            }
        }
    });
}
