//! Group sync into the customer's SharePoint list: full then incremental (no change = one
//! Graph request), created / renamed / deleted groups and membership changes reflected,
//! expired delta tokens, a sync interrupted half-way and resumed, and the merge of the list
//! row into `GET /api/groups/{id}`. Also the `TenantSync` queue invocation.

mod common;

use common::rows::*;
use common::*;
use groupmgr::jobs::tenant_sync;
use m365_sim::directory::CONTOSO;
use m365_sim::{FaultKind, FaultRule};
use serde_json::{Value, json};

#[tokio::test]
async fn full_then_incremental_with_changes() {
    let app = spawn_app().await;
    let first = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(first.groups.full);
    assert_eq!((first.groups.groups, first.groups.written), (300, 300));
    // Small pages (tests/common): the round took many delta pages, and groups with more
    // than three members or owners came back on several objects, across pages.
    assert!(
        app.sim.requests_where(|p| p == "/v1.0/groups/delta") > 300 / 7,
        "delta pages"
    );
    let split = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .filter(|g| g.is_unified() && g.members.len() + g.owners.len() > 3)
                .count()
        })
        .unwrap();
    assert!(split > 100, "only {split} groups split across delta objects");
    let rows = list_rows(&app);
    assert_eq!(rows.len(), 300, "security groups are not listed");
    // Counts and Teams thread ids match the directory.
    app.sim.state.with_graph(&CONTOSO, |t| {
        for g in t.groups.values().filter(|g| g.is_unified()) {
            let r = &rows[&g.id.to_string()];
            assert_eq!(r["OwnerCount"], json!(g.owners.len()));
            assert_eq!(r.get("MemberCount"), member_count(g).as_ref(), "{}", g.id);
            assert_eq!(r["TeamsEnabled"], json!(g.team.is_some()));
            assert_eq!(r.get("TeamsThreadId").and_then(Value::as_str), g.team.as_deref());
            assert_eq!(r["Title"], json!(g.display_name));
            assert_eq!(r["LifecycleStatus"], "active");
        }
    });

    // Nothing changed: exactly one Graph request (the delta link), nothing written.
    let deltas = app.sim.requests_where(|p| p == "/v1.0/groups/delta");
    let batches = app.sim.requests_where(|p| p == "/v1.0/$batch");
    let second = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(!second.groups.full);
    assert_eq!(
        (second.groups.written, second.groups.requests),
        (0, 1),
        "group sync: one request, nothing written"
    );
    assert_eq!(app.sim.requests_where(|p| p == "/v1.0/groups/delta") - deltas, 1);
    assert_eq!(app.sim.requests_where(|p| p == "/v1.0/$batch") - batches, 0);

    // Create, rename, delete, change membership through the API.
    let admin = app.sim.user_token(CONTOSO, "admin");
    let created: Value = app
        .http
        .post(app.url("/api/groups"))
        .bearer_auth(&admin)
        .json(&json!({"displayName": "Newcomers", "mailNickname": "newcomers"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_id = created["id"].as_str().unwrap().to_string();
    let hidden = |id: &String| {
        app.sim
            .state
            .with_graph(&CONTOSO, |t| {
                t.groups
                    .values()
                    .any(|g| g.id.to_string() == *id && g.visibility.as_deref() == Some("HiddenMembership"))
            })
            .unwrap()
    };
    let ids: Vec<String> = rows.keys().filter(|id| !hidden(id)).take(5).cloned().collect();
    // A group whose membership is hidden from GroupMgr gains a member: still unknown after.
    let secret = rows
        .keys()
        .find(|id| hidden(id))
        .expect("seeded hidden-membership groups")
        .clone();
    let patch = app
        .http
        .patch(app.url(&format!("/api/groups/{}", ids[0])))
        .bearer_auth(&admin)
        .json(&json!({"displayName": "Renamed Team"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status().as_u16(), 204);
    assert_eq!(
        app.http
            .delete(app.url(&format!("/api/groups/{}", ids[1])))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    // Membership: a user who is not a member joins ids[2]; a member leaves ids[3]; ids[4]
    // gains an owner and loses its old one. The incremental round re-counts exactly these.
    let relations: Vec<_> = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            let of = |id: &str| t.groups.values().find(|g| g.id.to_string() == id).unwrap().clone();
            ids[2..5].iter().map(|id| of(id)).collect()
        })
        .unwrap();
    let users: Vec<uuid::Uuid> = app
        .sim
        .state
        .tenant(&CONTOSO)
        .unwrap()
        .users
        .iter()
        .filter(|u| u.enabled)
        .map(|u| u.id)
        .collect();
    let outsider = users.iter().find(|u| !relations[0].members.contains(u)).unwrap();
    let leaver = relations[1].members.iter().next().expect("a group with members");
    let old_owner = relations[2].owners.iter().next().expect("a group with an owner");
    let new_owner = users.iter().find(|u| !relations[2].owners.contains(u)).unwrap();
    let expect_204 = |resp: reqwest::Response, what: &str| assert_eq!(resp.status().as_u16(), 204, "{what}");
    expect_204(
        app.call(
            "POST",
            &format!("/api/groups/{}/members", ids[2]),
            &admin,
            Some(json!({"id": outsider.to_string()})),
        )
        .await,
        "member added",
    );
    expect_204(
        app.call(
            "DELETE",
            &format!("/api/groups/{}/members/{leaver}", ids[3]),
            &admin,
            None,
        )
        .await,
        "member removed",
    );
    expect_204(
        app.call(
            "POST",
            &format!("/api/groups/{}/owners", ids[4]),
            &admin,
            Some(json!({"id": new_owner.to_string()})),
        )
        .await,
        "owner added",
    );
    expect_204(
        app.call(
            "DELETE",
            &format!("/api/groups/{}/owners/{old_owner}", ids[4]),
            &admin,
            None,
        )
        .await,
        "old owner removed",
    );

    let joiner = users
        .iter()
        .find(|u| {
            app.sim
                .state
                .with_graph(&CONTOSO, |t| {
                    t.groups
                        .values()
                        .any(|g| g.id.to_string() == secret && !g.members.contains(u))
                })
                .unwrap()
        })
        .unwrap();
    expect_204(
        app.call(
            "POST",
            &format!("/api/groups/{secret}/members"),
            &admin,
            Some(json!({"id": joiner.to_string()})),
        )
        .await,
        "member added to a hidden-membership group",
    );

    let third = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(!third.groups.full);
    let rows_after = list_rows(&app);
    assert_eq!(rows_after.len(), 301);
    assert_eq!(rows_after[&new_id]["Title"], "Newcomers");
    assert_eq!(rows_after[&new_id]["OwnerCount"], 1);
    assert_eq!(rows_after[&ids[0]]["Title"], "Renamed Team");
    assert_eq!(rows_after[&ids[1]]["LifecycleStatus"], "deleted");
    let count = |id: &str, column: &str| rows_after[id][column].as_u64().unwrap();
    let before = |id: &str, column: &str| rows[id][column].as_u64().unwrap();
    assert_eq!(
        count(&ids[2], "MemberCount"),
        before(&ids[2], "MemberCount") + 1,
        "joined"
    );
    assert_eq!(
        count(&ids[3], "MemberCount"),
        before(&ids[3], "MemberCount") - 1,
        "left"
    );
    assert_eq!(
        count(&ids[4], "OwnerCount"),
        before(&ids[4], "OwnerCount"),
        "one owner for another"
    );
    // And every count equals the directory's.
    app.sim.state.with_graph(&CONTOSO, |t| {
        for g in t.groups.values().filter(|g| g.is_unified() && g.deleted.is_none()) {
            let r = &rows_after[&g.id.to_string()];
            assert_eq!(
                (r["OwnerCount"].as_u64(), r.get("MemberCount")),
                (Some(g.owners.len() as u64), member_count(g).as_ref()),
                "{}",
                g.id
            );
            // The owners themselves too (the ownership check judges them).
            let stored: std::collections::BTreeSet<String> = r["OwnerIds"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            let want: std::collections::BTreeSet<String> = g.owners.iter().map(|o| o.to_string()).collect();
            assert_eq!(stored, want, "{}", g.id);
        }
    });
    // The new group, the renamed and the deleted one, the two whose counts changed, and the
    // one whose owner was swapped for another (same count, other owner ids).
    assert_eq!(third.groups.written, 6, "only changed rows");

    // Restoring brings the row back to active.
    app.http
        .post(app.url(&format!("/api/groups/{}/restore", ids[1])))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!(list_rows(&app)[&ids[1]]["LifecycleStatus"], "active");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_delta_token_restarts_with_a_full_round() {
    let app = spawn_app().await;
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let expected = list_rows(&app);
    app.sim.state.faults.arm(
        FaultRule::new(
            "/v1.0/groups/delta?$deltatoken",
            FaultKind::Status {
                status: 400,
                code: "syncStateNotFound".into(),
                retry_after: None,
            },
        )
        .times(1),
    );
    let run = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(run.groups.restarted && run.groups.full);
    assert_eq!(
        run.groups.written, 0,
        "a clean restart rewrites nothing that did not change"
    );
    assert_eq!(list_rows(&app), expected);
    // And the next run is incremental again.
    let next = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(!next.groups.full);
    app.stop().await;
}

/// The group sync alone, with an app-only token (as TenantSync runs it).
async fn group_sync(
    app: &TestApp,
) -> Result<groupmgr::jobs::group_sync::GroupSyncReport, groupmgr::jobs::group_sync::GroupSyncError> {
    let a = &app.app;
    let token = a.tokens.app_token(&contoso(), &a.graph_resource).await.unwrap();
    let graph = a.graph.session(token);
    let list = groupmgr::customer_list::ensure(&graph, a.state.as_ref(), &contoso(), &a.settings.sharepoint_site)
        .await
        .map_err(groupmgr::jobs::group_sync::GroupSyncError::from)?;
    let mut pending = groupmgr::jobs::pending::Pending::load(a.state.as_ref(), &contoso())
        .await
        .unwrap();
    let budget = groupmgr::jobs::Budget::new(std::time::Duration::from_secs(3600));
    let report = groupmgr::jobs::group_sync::GroupSync {
        graph: &graph,
        state: a.state.as_ref(),
        tenant: contoso(),
        list: &list,
        force_full: false,
        budget: &budget,
        pending: &mut pending,
        now: chrono::Utc::now(),
    }
    .run()
    .await;
    pending.save(a.state.as_ref(), &contoso()).await.unwrap();
    report
}

#[tokio::test]
async fn a_sync_interrupted_half_way_and_resumed_matches_an_uninterrupted_one() {
    // Reference: an uninterrupted sync of an identically seeded tenant.
    let reference = spawn_app().await;
    group_sync(&reference).await.unwrap();
    let expected = list_rows(&reference);
    let batches = reference.sim.requests_where(|p| p == "/v1.0/$batch");
    reference.stop().await;

    let app = spawn_app().await;
    // Half-way through the round's batches (lookups and writes, page after page), every
    // connection to $batch drops: the run fails with some pages written.
    app.sim
        .state
        .faults
        .arm(FaultRule::new("/v1.0/$batch", FaultKind::Drop).after(batches as u32 / 2));
    assert!(
        group_sync(&app).await.is_err(),
        "the run must fail when its writes fail"
    );
    let partial = list_rows(&app);
    assert!(
        partial.len() > 50 && partial.len() < 300,
        "stopped half-way: {}",
        partial.len()
    );
    app.sim.state.faults.clear();
    let resumed = group_sync(&app).await.unwrap();
    assert!(
        resumed.full && resumed.finished,
        "the round resumed from its saved page"
    );
    assert!(
        resumed.groups < 300,
        "pages saved before the failure were not read again"
    );
    assert_eq!(list_rows(&app), expected);
    let again = group_sync(&app).await.unwrap();
    assert_eq!((again.written, again.requests), (0, 1));
    app.stop().await;
}

#[tokio::test]
async fn get_group_merges_the_list_row() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let id = list_rows(&app).keys().next().unwrap().clone();
    // Activity as the activity sync would record it.
    app.sim.state.with_graph(&CONTOSO, |t| {
        for lists in t.lists.values_mut() {
            for l in lists.iter_mut() {
                for f in l.items.values_mut() {
                    if f["GroupId"] == json!(id) {
                        f.insert("LastTeamsActivity".into(), json!("2026-11-20T10:00:00Z"));
                        f.insert("LastActivity".into(), json!("2026-11-20T10:00:00Z"));
                    }
                }
            }
        }
    });
    let g: Value = app
        .http
        .get(app.url(&format!("/api/groups/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(g["activity"]["lastTeamsActivity"], "2026-11-20T10:00:00Z");
    assert_eq!(g["activity"]["lastActivity"], "2026-11-20T10:00:00Z");
    assert_eq!(g["activity"]["lastSharePointActivity"], Value::Null);
    // The list view takes counts from the rows.
    let page: Value = app
        .http
        .get(app.url("/api/groups?top=5"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["ownerCount"].is_u64() && g["memberCount"].is_u64())
    );
    app.stop().await;
}

#[tokio::test]
async fn the_tenant_sync_queue_function() {
    let app = spawn_app().await;
    let envelope = |msg: &str| json!({"Data": {"message": msg}, "Metadata": {"DequeueCount": 1, "sys": {"MethodName": "TenantSync", "UtcNow": "2026-11-27T10:30:00Z", "RandGuid": "24ad4c06-24ad-4e5b-8294-3da9714877e9"}}});
    let contoso_sync = envelope(&format!(
        "{{\"tenantId\":\"{}\",\"scheduledAt\":\"2026-11-27T10:30:00Z\"}}",
        contoso()
    ));
    let ok = app.post_invocation("TenantSync", &contoso_sync).await;
    assert_eq!(ok.status().as_u16(), 200);
    let body: Value = ok.json().await.unwrap();
    assert!(body["Logs"][0].as_str().unwrap().contains("300 groups"), "{body}");
    assert_eq!(list_rows(&app).len(), 300);
    let junk = app.post_invocation("TenantSync", &envelope("not a message")).await;
    assert_eq!(
        junk.status().as_u16(),
        200,
        "a malformed message is discarded, not retried"
    );
    let unknown = app
        .post_invocation(
            "TenantSync",
            &envelope(
                "{\"tenantId\":\"11111111-2222-3333-4444-555555555555\",\"scheduledAt\":\"2026-11-27T10:30:00Z\"}",
            ),
        )
        .await;
    assert_eq!(unknown.status().as_u16(), 200);
    // Graph down (503 without a wait to honour): the invocation fails so that the host
    // retries the message.
    app.sim.state.faults.arm(FaultRule::new(
        "/v1.0/groups/delta",
        FaultKind::Status {
            status: 503,
            code: "serviceNotAvailable".into(),
            retry_after: None,
        },
    ));
    let failed = app.post_invocation("TenantSync", &contoso_sync).await;
    assert!(failed.status().is_server_error());
    app.stop().await;
}

/// Least privilege: the app holds `Sites.Selected`, not write access to every site. Without
/// the customer's grant on the GroupMgr site the sync is refused there (Graph's 403) and
/// nothing is written; with the grant it writes the list.
#[tokio::test]
async fn the_list_is_written_only_with_the_sites_selected_grant() {
    let app = spawn_app().await;
    let granted = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| std::mem::take(&mut t.selected_sites))
        .unwrap();
    assert!(!granted.is_empty(), "the sim seeds the grant on /sites/GroupMgr");
    match group_sync(&app).await {
        Err(groupmgr::jobs::group_sync::GroupSyncError::Graph(e)) => assert_eq!(e.status(), Some(403), "{e}"),
        other => panic!("expected Graph's 403, got {other:?}"),
    }
    assert!(list_rows(&app).is_empty());

    app.sim
        .state
        .with_graph(&CONTOSO, |t| t.selected_sites = granted)
        .unwrap();
    let report = group_sync(&app).await.unwrap();
    assert!(report.written > 0, "{report:?}");
    assert_eq!(list_rows(&app).len(), report.written);
    app.stop().await;
}

/// What a group's row must say of its members: their number, or nothing when the membership
/// is hidden from GroupMgr (`Member.Read.Hidden` is not among its permissions).
fn member_count(g: &m365_sim::graph::model::Group) -> Option<Value> {
    (g.visibility.as_deref() != Some("HiddenMembership")).then(|| json!(g.members.len()))
}

/// A channel whose files folder Graph refuses (it answers 400 for some channel names) or whose
/// listing fails never stops the sync: those teams keep the channel sites they had, every
/// other team gets its own.
#[tokio::test]
async fn a_channel_graph_refuses_never_stops_the_sync() {
    let app = spawn_app().await;
    let refused = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .filter(|g| g.is_unified() && !g.channels().is_empty())
                .map(|g| g.id.to_string())
                .min()
        })
        .flatten()
        .expect("a team with a private or shared channel");
    app.sim.state.faults.arm(FaultRule::new(
        format!("/teams/{refused}/channels/"),
        FaultKind::Status {
            status: 400,
            code: "BadRequest".into(),
            retry_after: None,
        },
    ));
    app.sim.state.faults.arm(
        FaultRule::new(
            "/channels",
            FaultKind::Status {
                status: 500,
                code: "InternalServerError".into(),
                retry_after: None,
            },
        )
        .one_in(10),
    );
    let s = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert_eq!(s.groups.groups, 300);
    let rows = list_rows(&app);
    assert!(rows[&refused].get("ChannelSiteUrls").is_none_or(Value::is_null));
    let found = rows
        .values()
        .filter(|r| r.get("ChannelSiteUrls").is_some_and(|v| !v.is_null()))
        .count();
    assert!(found > 10, "other teams' channel sites are known: {found}");
    app.stop().await;
}

/// The labels of each listed group as its row holds them (`None`: unknown).
fn row_labels(app: &TestApp) -> std::collections::BTreeMap<String, Option<Vec<String>>> {
    list_rows(app)
        .into_iter()
        .map(|(g, f)| {
            let labels = f.get("SensitivityLabels").and_then(Value::as_str).map(|t| {
                let v: Vec<Value> = serde_json::from_str(t).unwrap();
                v.iter().map(|l| l["labelId"].as_str().unwrap().to_string()).collect()
            });
            (g, labels)
        })
        .collect()
}

/// Each group's sensitivity labels reach its row (as Graph's `assignedLabels`, `[]` for none),
/// and a deployment from before GroupMgr read them — rows without labels, a delta link and a
/// round under way of the older selection — gets them with one full round, after which the
/// sync is incremental again.
#[tokio::test]
async fn sensitivity_labels_reach_the_rows_also_after_an_upgrade() {
    let app = spawn_app().await;
    tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    let truth = |app: &TestApp| -> std::collections::BTreeMap<String, Option<Vec<String>>> {
        let labels = |n: &str| app.sim.state.labelled_groups(&CONTOSO, n);
        list_rows(app)
            .keys()
            .map(|g| {
                let id: uuid::Uuid = g.parse().unwrap();
                let on: Vec<String> = m365_sim::graph::model::LABEL_NAMES
                    .iter()
                    .filter(|n| labels(n).contains(&id))
                    .map(|n| m365_sim::graph::model::label_id(CONTOSO, n).to_string())
                    .collect();
                (g.clone(), Some(on))
            })
            .collect()
    };
    let want = truth(&app);
    assert!(
        want.values()
            .filter(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
            .count()
            >= 50
    );
    assert_eq!(row_labels(&app), want);

    // As an older GroupMgr left it: rows without the column's value, its delta link under the
    // old key, and a round of the old selection under way.
    let tenant = contoso();
    let (link, _) = app.store.get_state(&tenant, "groups_delta_v2").await.unwrap().unwrap();
    app.store.delete_state(&tenant, "groups_delta_v2").await.unwrap();
    app.store.put_state(&tenant, "groups_delta", &link, None).await.unwrap();
    let round = json!({"full": false, "restarted": false, "next": link, "open": null, "seenPages": 0, "recount": []});
    app.store
        .put_state(&tenant, "groups_round", &round.to_string(), None)
        .await
        .unwrap();
    app.sim.state.with_graph(&CONTOSO, |t| {
        for lists in t.lists.values_mut() {
            for l in lists.iter_mut().filter(|l| l.display_name == "GroupMgr Groups") {
                for fields in l.items.values_mut() {
                    fields.remove("SensitivityLabels");
                }
            }
        }
    });
    assert!(row_labels(&app).values().all(Option::is_none));
    let run = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(run.groups.full, "the older round is replaced by a full one");
    assert_eq!(row_labels(&app), want);
    assert!(app.store.get_state(&tenant, "groups_delta").await.unwrap().is_none());

    // Labels applied and removed: seen by the next, incremental, sync.
    let ids: Vec<uuid::Uuid> = want.keys().take(2).map(|g| g.parse().unwrap()).collect();
    app.sim
        .state
        .set_group_labels(&CONTOSO, &ids[0], &["Highly Confidential"]);
    app.sim.state.set_group_labels(&CONTOSO, &ids[1], &[]);
    let run = tenant_sync::run(&app.app, &contoso(), false).await.unwrap();
    assert!(!run.groups.full);
    assert_eq!(row_labels(&app), truth(&app));
    // The API shows them (the ids a policy's exclusions name).
    let admin = app.sim.user_token(CONTOSO, "admin");
    let g = app
        .json_ok("GET", &format!("/api/groups/{}", ids[0]), &admin, None)
        .await;
    let hc = m365_sim::graph::model::label_id(CONTOSO, "Highly Confidential").to_string();
    assert_eq!(
        g["sensitivityLabels"],
        json!([{"labelId": hc, "displayName": "Highly Confidential"}])
    );
    let g = app
        .json_ok("GET", &format!("/api/groups/{}", ids[1]), &admin, None)
        .await;
    assert_eq!(g["sensitivityLabels"], json!([]));
    app.stop().await;
}
