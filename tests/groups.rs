//! The groups and policy API end to end against m365-sim's Graph: every route's success path,
//! every validation rule, Graph's own rejections, permissions, revoked consent, and throttling
//! at every layer (a single request, page 3 of a list, an item inside a `$batch`).

mod common;

use common::*;
use m365_sim::directory::{CONTOSO, stable_id};
use m365_sim::{FaultKind, FaultRule};
use serde_json::{Value, json};

fn throttle(path: &str, retry_after: &str) -> FaultRule {
    FaultRule::throttled(path, retry_after)
}

fn user_id(alias: &str) -> String {
    stable_id("user", &format!("{alias}@contoso.onmicrosoft.com")).to_string()
}

impl TestApp {
    fn first_group(&self) -> String {
        self.sim
            .state
            .with_graph(&CONTOSO, |t| {
                t.groups.values().find(|g| g.is_unified()).unwrap().id.to_string()
            })
            .unwrap()
    }
}

#[tokio::test]
async fn list_pages_through_every_group_and_searches() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let mut seen = Vec::new();
    let mut path = "/api/groups?top=120".to_string();
    loop {
        let page = app.json_ok("GET", &path, &admin, None).await;
        for g in page["value"].as_array().unwrap() {
            for k in [
                "id",
                "displayName",
                "description",
                "mailNickname",
                "visibility",
                "createdDateTime",
                "teamsEnabled",
                "ownerCount",
                "memberCount",
                "activity",
            ] {
                assert!(g.get(k).is_some(), "group lacks {k}: {g}");
            }
            seen.push(g["id"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/api/groups?cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 300, "every Microsoft 365 group, no security groups");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 300);

    let found = app.json_ok("GET", "/api/groups?search=Marketing", &admin, None).await;
    let names: Vec<&str> = found["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 15);
    assert!(names.iter().all(|n| n.starts_with("Marketing")));

    for bad in ["top=0", "top=1000", "top=x", "cursor=garbage", "search="] {
        let (status, code) = error_code(app.get(&format!("/api/groups?{bad}"), Some(&admin)).await).await;
        assert_eq!(status, 400, "{bad}");
        assert!(code == "invalid_input" || code == "invalid_cursor", "{bad}: {code}");
    }
    // A cursor that would send the token elsewhere is refused.
    use base64::Engine as _;
    let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"l": "https://evil.example/v1.0/groups?x=1", "s": false}).to_string());
    assert_eq!(
        error_code(app.get(&format!("/api/groups?cursor={evil}"), Some(&admin)).await).await,
        (400, "invalid_cursor".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn create_get_update_delete_restore() {
    let app = spawn_app().await;
    let adele = app.sim.user_token(CONTOSO, "adelev");
    let resp = app
        .call("POST", "/api/groups", &adele, Some(json!({"displayName": "Library Assist", "mailNickname": "library", "description": "Self help community for library", "visibility": "Private", "members": [user_id("alexw")]})))
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/groups/{id}"));
    assert_eq!(created["visibility"], "Private");

    // Contoso's naming policy, GRP_[Department]_[GroupName]_[CountryOrRegion], with Adele's
    // department (Retail).
    let g = app.json_ok("GET", &location, &adele, None).await;
    assert_eq!(g["displayName"], "GRP_Retail_Library Assist_US");
    assert_eq!(g["mailNickname"], "GRP_Retail_library_US");
    assert_eq!(g["ownerCount"], 1, "the caller became the owner");
    assert_eq!(g["memberCount"], 1);
    assert_eq!(g["teamsEnabled"], false);
    assert_eq!(
        g["activity"],
        json!({"lastTeamsActivity": null, "lastSharePointActivity": null, "lastMailActivity": null, "lastActivity": null})
    );
    let owners = app.json_ok("GET", &format!("{location}/owners"), &adele, None).await;
    assert_eq!(owners["value"][0]["id"], user_id("adelev"));
    assert_eq!(owners["value"][0]["type"], "user");

    let resp = app
        .call(
            "PATCH",
            &location,
            &adele,
            Some(json!({"displayName": "Library Help", "visibility": "Public", "description": null})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    let g = app.json_ok("GET", &location, &adele, None).await;
    assert_eq!(
        (
            g["displayName"].as_str(),
            g["visibility"].as_str(),
            g["description"].as_str()
        ),
        (Some("GRP_Retail_Library Help_US"), Some("Public"), None),
        "renamed under the naming policy too"
    );

    assert_eq!(app.call("DELETE", &location, &adele, None).await.status().as_u16(), 204);
    assert_eq!(error_code(app.call("GET", &location, &adele, None).await).await.0, 404);
    let restored = app.json_ok("POST", &format!("{location}/restore"), &adele, None).await;
    assert_eq!(restored["id"], id);
    assert_eq!(app.call("GET", &location, &adele, None).await.status().as_u16(), 200);
    assert_eq!(
        error_code(app.call("POST", &format!("{location}/restore"), &adele, None).await).await,
        (409, "conflict".into()),
        "a live group is not restored"
    );
    // Deleted items keep a Microsoft 365 group for 30 days; after that it cannot come back.
    assert_eq!(app.call("DELETE", &location, &adele, None).await.status().as_u16(), 204);
    app.sim
        .state
        .advance_clock(chrono::TimeDelta::days(30) + chrono::TimeDelta::minutes(1));
    assert_eq!(
        error_code(app.call("POST", &format!("{location}/restore"), &adele, None).await)
            .await
            .0,
        404,
        "gone for good after 30 days"
    );
    assert_eq!(
        error_code(
            app.call(
                "POST",
                "/api/groups/0b3b3f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f/restore",
                &adele,
                None
            )
            .await
        )
        .await,
        (404, "not_found".into()),
        "nothing to restore"
    );
    app.stop().await;
}

#[tokio::test]
async fn owners_and_members_are_managed() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    // A group Patti does not own (removing a group's last owner is refused).
    let patti: uuid::Uuid = user_id("pattif").parse().unwrap();
    let g = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .filter(|g| g.is_unified() && g.deleted.is_none() && !g.owners.contains(&patti))
                .map(|g| g.id.to_string())
                .min()
        })
        .flatten()
        .expect("a group Patti does not own");
    let base = format!("/api/groups/{g}");
    for rel in ["owners", "members"] {
        let listed = app.json_ok("GET", &format!("{base}/{rel}"), &admin, None).await;
        let before = listed["value"].as_array().unwrap().len();
        let was_there = listed["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == user_id("pattif"));
        let resp = app
            .call(
                "POST",
                &format!("{base}/{rel}"),
                &admin,
                Some(json!({"id": user_id("pattif")})),
            )
            .await;
        assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().await.unwrap());
        assert_eq!(
            app.call(
                "POST",
                &format!("{base}/{rel}"),
                &admin,
                Some(json!({"id": user_id("pattif")}))
            )
            .await
            .status()
            .as_u16(),
            204,
            "adding twice is fine"
        );
        let after = app.json_ok("GET", &format!("{base}/{rel}"), &admin, None).await;
        assert!(
            after["value"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["id"] == user_id("pattif"))
        );
        assert_eq!(
            after["value"].as_array().unwrap().len(),
            before + usize::from(!was_there),
            "{rel}: one more, once"
        );
        assert_eq!(
            app.call("DELETE", &format!("{base}/{rel}/{}", user_id("pattif")), &admin, None)
                .await
                .status()
                .as_u16(),
            204
        );
        let removed = app.json_ok("GET", &format!("{base}/{rel}"), &admin, None).await;
        assert_eq!(
            removed["value"].as_array().unwrap().len(),
            before - usize::from(was_there),
            "{rel}: one fewer"
        );
        assert_eq!(
            error_code(
                app.call(
                    "POST",
                    &format!("{base}/{rel}"),
                    &admin,
                    Some(json!({"id": "not-a-guid"}))
                )
                .await
            )
            .await,
            (400, "invalid_input".into())
        );
        assert_eq!(
            error_code(
                app.call(
                    "POST",
                    &format!("{base}/{rel}"),
                    &admin,
                    Some(json!({"user": user_id("pattif")}))
                )
                .await
            )
            .await
            .0,
            400
        );
        assert_eq!(
            error_code(app.call("DELETE", &format!("{base}/{rel}/nope"), &admin, None).await).await,
            (400, "invalid_input".into())
        );
    }
    // The last owner cannot be removed (Graph's rule, passed on).
    let owners = app.json_ok("GET", &format!("{base}/owners"), &admin, None).await;
    let only = owners["value"][0]["id"].as_str().unwrap().to_string();
    if owners["value"].as_array().unwrap().len() == 1 {
        let (status, code) = error_code(app.call("DELETE", &format!("{base}/owners/{only}"), &admin, None).await).await;
        assert_eq!((status, code.as_str()), (400, "rejected_by_microsoft"));
    }
    // Paging of members with a small page.
    for alias in ["adelev", "alexw", "meganb", "lynner", "diegos"] {
        app.call(
            "POST",
            &format!("{base}/members"),
            &admin,
            Some(json!({"id": user_id(alias)})),
        )
        .await;
    }
    let mut total = 0;
    let mut path = format!("{base}/members?top=2");
    loop {
        let page = app.json_ok("GET", &path, &admin, None).await;
        total += page["value"].as_array().unwrap().len();
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("{base}/members?cursor={c}"),
            None => break,
        }
    }
    assert!(total >= 5);
    app.stop().await;
}

/// Cursors are ours: authenticated and bound to the tenant, the route (with its group) and the
/// query they were handed out for; edited, moved or borrowed ones are `400 invalid_cursor`.
#[tokio::test]
async fn cursors_cannot_be_edited_moved_or_borrowed() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let page = app.json_ok("GET", "/api/groups?top=2", &admin, None).await;
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    assert_eq!(
        app.call("GET", &format!("/api/groups?cursor={cursor}"), &admin, None)
            .await
            .status()
            .as_u16(),
        200
    );
    // Edited: the Graph link without the Microsoft 365 filter, signed with the old tag.
    let (json, tag) = cursor.split_once('.').unwrap();
    let mut inner: serde_json::Value = serde_json::from_slice(&b64.decode(json).unwrap()).unwrap();
    let link = inner["l"].as_str().unwrap().to_string();
    inner["l"] = json!(link.split("$filter").next().unwrap().to_string() + "$expand=members");
    let edited = format!("{}.{tag}", b64.encode(inner.to_string()));
    // Borrowed by another tenant; moved to another route.
    let fabrikam = app.sim.user_token(m365_sim::directory::FABRIKAM, "admin");
    let g = app.first_group();
    for (path, token) in [
        (format!("/api/groups?cursor={edited}"), &admin),
        (format!("/api/groups?cursor={cursor}"), &fabrikam),
        (format!("/api/groups/{g}/members?cursor={cursor}"), &admin),
        (format!("/api/activity?cursor={cursor}"), &admin),
    ] {
        assert_eq!(
            error_code(app.call("GET", &path, token, None).await).await,
            (400, "invalid_cursor".into()),
            "{path}"
        );
    }
    // A member cursor of one group is not one of another.
    for alias in ["adelev", "alexw", "meganb"] {
        app.call(
            "POST",
            &format!("/api/groups/{g}/members"),
            &admin,
            Some(json!({"id": user_id(alias)})),
        )
        .await;
    }
    let page = app
        .json_ok("GET", &format!("/api/groups/{g}/members?top=1"), &admin, None)
        .await;
    let members = page["nextCursor"].as_str().unwrap().to_string();
    let other = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .filter(|x| x.is_unified())
                .nth(1)
                .unwrap()
                .id
                .to_string()
        })
        .unwrap();
    assert_eq!(
        error_code(
            app.call(
                "GET",
                &format!("/api/groups/{other}/members?cursor={members}"),
                &admin,
                None
            )
            .await
        )
        .await,
        (400, "invalid_cursor".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn every_validation_rule_answers_400_with_the_field() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let cases = vec![
        (json!({"mailNickname": "x"}), "displayName"),
        (json!({"displayName": "", "mailNickname": "x"}), "displayName"),
        (
            json!({"displayName": "a".repeat(257), "mailNickname": "x"}),
            "displayName",
        ),
        (json!({"displayName": "x"}), "mailNickname"),
        (
            json!({"displayName": "x", "mailNickname": "a".repeat(65)}),
            "mailNickname",
        ),
        (json!({"displayName": "x", "mailNickname": "bad nick"}), "mailNickname"),
        (json!({"displayName": "x", "mailNickname": "bad@nick"}), "mailNickname"),
        (json!({"displayName": "x", "mailNickname": "bad.nick"}), "mailNickname"),
        (json!({"displayName": "x", "mailNickname": "bad(nick)"}), "mailNickname"),
        (json!({"displayName": "x", "mailNickname": "ünïcode"}), "mailNickname"),
        (
            json!({"displayName": "x", "mailNickname": "x", "visibility": "Secret"}),
            "visibility",
        ),
        (
            json!({"displayName": "x", "mailNickname": "x", "owners": ["not-a-guid"]}),
            "owners",
        ),
        (
            json!({"displayName": "x", "mailNickname": "x", "members": [1]}),
            "members",
        ),
        (
            json!({"displayName": "x", "mailNickname": "x", "members": (0..21).map(|i| format!("00000000-0000-0000-0000-{i:012}")).collect::<Vec<_>>()}),
            "owners",
        ),
        (
            json!({"displayName": "x", "mailNickname": "x", "groupTypes": []}),
            "body",
        ),
    ];
    for (body, field) in cases {
        let resp = app.call("POST", "/api/groups", &admin, Some(body.clone())).await;
        let status = resp.status().as_u16();
        let err: Value = resp.json().await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["error"]["code"], "invalid_input");
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{body}: {err}"
        );
    }
    let resp = app
        .http
        .post(app.url("/api/groups"))
        .bearer_auth(&admin)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (400, "invalid_input".into()));
    let g = app.first_group();
    for (body, field) in [
        (json!({}), "body"),
        (json!({"displayName": null}), "displayName"),
        (json!({"mailNickname": "a b"}), "mailNickname"),
        (json!({"visibility": "Hidden"}), "visibility"),
    ] {
        let resp = app
            .call("PATCH", &format!("/api/groups/{g}"), &admin, Some(body.clone()))
            .await;
        let err: Value = resp.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{body}: {err}"
        );
    }
    assert_eq!(
        error_code(app.call("GET", "/api/groups/not-a-guid", &admin, None).await).await,
        (400, "invalid_input".into())
    );
    assert_eq!(
        error_code(
            app.call("GET", "/api/groups/00000000-0000-0000-0000-000000000001", &admin, None)
                .await
        )
        .await
        .0,
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn graphs_own_rejections_are_passed_on() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    // Duplicate nickname → 409 with Graph's reason.
    let resp = app
        .call(
            "POST",
            "/api/groups",
            &admin,
            Some(json!({"displayName": "Another Marketing", "mailNickname": "marketing1"})),
        )
        .await;
    let (status, body) = (resp.status().as_u16(), resp.text().await.unwrap());
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already exists"), "{body}");
    // Contoso's naming policy: a blocked word is the caller's to change, named in the error;
    // a missing prefix and suffix are added (tests/naming.rs has the rest).
    let adele = app.sim.user_token(CONTOSO, "adelev");
    let resp = app
        .call(
            "POST",
            "/api/groups",
            &adele,
            Some(json!({"displayName": "Payroll questions", "mailNickname": "payrollq"})),
        )
        .await;
    let (status, body) = (resp.status().as_u16(), resp.text().await.unwrap());
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("naming_policy_violation") && body.contains("'Payroll'") && body.contains("displayName"),
        "{body}"
    );
    let created = app
        .json_ok(
            "POST",
            "/api/groups",
            &adele,
            Some(json!({"displayName": "Project X", "mailNickname": "projx"})),
        )
        .await;
    assert_eq!(created["displayName"], "GRP_Retail_Project X_US");
    // The policy exempts Global and User administrators: their names stay as entered.
    let created = app
        .json_ok(
            "POST",
            "/api/groups",
            &admin,
            Some(json!({"displayName": "Payroll", "mailNickname": "payroll"})),
        )
        .await;
    assert_eq!(
        (created["displayName"].as_str(), created["mailNickname"].as_str()),
        (Some("Payroll"), Some("payroll"))
    );
    app.stop().await;
}

#[tokio::test]
async fn microsoft_permissions_and_consent_are_respected() {
    let app = spawn_app().await;
    let g = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .find(|g| g.is_unified() && !g.owners.contains(&stable_id("user", "leeg@contoso.onmicrosoft.com")))
                .unwrap()
                .id
                .to_string()
        })
        .unwrap();
    // Lee owns nothing: Graph forbids the edit and the 403 is passed on.
    let lee = app.sim.user_token(CONTOSO, "leeg");
    let resp = app
        .call(
            "PATCH",
            &format!("/api/groups/{g}"),
            &lee,
            Some(json!({"displayName": "Hijacked"})),
        )
        .await;
    let text = resp.text().await.unwrap();
    assert!(text.contains("forbidden_by_microsoft"), "{text}");
    let resp = app.call("DELETE", &format!("/api/groups/{g}"), &lee, None).await;
    assert_eq!(error_code(resp).await, (403, "forbidden_by_microsoft".into()));
    let resp = app
        .call(
            "POST",
            &format!("/api/groups/{g}/members"),
            &lee,
            Some(json!({"id": user_id("leeg")})),
        )
        .await;
    assert_eq!(error_code(resp).await, (403, "forbidden_by_microsoft".into()));
    // Reading is fine.
    assert_eq!(
        app.call("GET", &format!("/api/groups/{g}"), &lee, None)
            .await
            .status()
            .as_u16(),
        200
    );
    // Revoked consent: no on-behalf-of token, 403 consent_required.
    app.sim.state.update_tenant(&CONTOSO, |t| t.consented = false);
    assert_eq!(
        error_code(app.call("GET", "/api/groups", &lee, None).await).await,
        (403, "consent_required".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn throttling_is_retried_at_every_layer() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let g = app.first_group();
    // A single request, throttled twice (seconds form, then HTTP-date form), then served.
    app.sim
        .state
        .faults
        .arm(throttle(&format!("/v1.0/groups/{g}?"), "1").times(1));
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(1));
    app.sim
        .state
        .faults
        .arm(throttle(&format!("/v1.0/groups/{g}?"), &date).times(1));
    let started = std::time::Instant::now();
    assert_eq!(
        app.call("GET", &format!("/api/groups/{g}"), &admin, None)
            .await
            .status()
            .as_u16(),
        200
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "Retry-After was honoured"
    );

    // Page 3 of a list: the first two pages pass, the third is throttled once.
    app.sim
        .state
        .faults
        .arm(throttle("/v1.0/groups?", "1").after(2).times(1));
    let mut pages = 0;
    let mut path = "/api/groups?top=50".to_string();
    loop {
        let page = app.json_ok("GET", &path, &admin, None).await;
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/api/groups?cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 6);

    // A 503 and a dropped connection on a read are retried too.
    app.sim.state.faults.arm(
        FaultRule::new(
            "/v1.0/groupSettings",
            FaultKind::Status {
                status: 503,
                code: "serviceNotAvailable".into(),
                retry_after: None,
            },
        )
        .times(1),
    );
    app.sim
        .state
        .faults
        .arm(FaultRule::new("/v1.0/groupSettings", FaultKind::Drop).times(1));
    assert_eq!(
        app.call("GET", "/api/policy/group-creation", &admin, None)
            .await
            .status()
            .as_u16(),
        200
    );

    // Throttling that outlasts the retries reaches the caller as 429 with Retry-After.
    app.sim.state.faults.arm(throttle("/v1.0/groupSettings", "1"));
    let resp = app.call("GET", "/api/policy/group-creation", &admin, None).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(error_code(resp).await, (429, "throttled".into()));
    app.sim.state.faults.clear();
    app.stop().await;
}

#[tokio::test]
async fn group_creation_policy_read_and_write() {
    let app = spawn_app().await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    assert_eq!(
        app.json_ok("GET", "/api/policy/group-creation", &admin, None).await,
        json!({"enabled": true, "allowedGroupId": null}),
        "defaults (Contoso's setting object holds only its naming policy)"
    );
    let creators = m365_sim::graph::model::group_creators_id(CONTOSO).to_string();
    let put = app
        .json_ok(
            "PUT",
            "/api/policy/group-creation",
            &admin,
            Some(json!({"enabled": false, "allowedGroupId": creators})),
        )
        .await;
    assert_eq!(put, json!({"enabled": false, "allowedGroupId": creators}));
    assert_eq!(
        app.json_ok("GET", "/api/policy/group-creation", &admin, None).await,
        put
    );
    // The object holds the template's full collection, its naming policy untouched.
    let values = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| t.settings[0].values.clone())
        .unwrap();
    assert_eq!(values.len(), 15);
    // Other values survive an update.
    app.sim.state.with_graph(&CONTOSO, |t| {
        for v in t.settings[0].values.iter_mut() {
            if v.0 == "UsageGuidelinesUrl" {
                v.1 = "https://contoso.example/guidelines".into();
            }
        }
    });
    let cleared = app
        .json_ok(
            "PUT",
            "/api/policy/group-creation",
            &admin,
            Some(json!({"enabled": true, "allowedGroupId": null})),
        )
        .await;
    assert_eq!(cleared, json!({"enabled": true, "allowedGroupId": null}));
    let values = app.sim.state.with_graph(&CONTOSO, |t| t.settings.clone()).unwrap();
    assert_eq!(values.len(), 1, "one Group.Unified object");
    let get = |n: &str| values[0].values.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("UsageGuidelinesUrl"), "https://contoso.example/guidelines");
    assert_eq!(get("GroupCreationAllowedGroupId"), "");
    assert_eq!(get("EnableGroupCreation"), "true");
    assert_eq!(
        get("PrefixSuffixNamingRequirement"),
        "GRP_[Department]_[GroupName]_[CountryOrRegion]",
        "the naming policy survives"
    );

    // A Microsoft 365 group or an unknown id is not a security group.
    let m365 = app.first_group();
    for bad in [m365, "00000000-0000-0000-0000-000000000009".to_string()] {
        let resp = app
            .call(
                "PUT",
                "/api/policy/group-creation",
                &admin,
                Some(json!({"enabled": false, "allowedGroupId": bad})),
            )
            .await;
        assert_eq!(error_code(resp).await, (400, "invalid_input".into()));
    }
    for body in [
        json!({"enabled": false}),
        json!({"allowedGroupId": null}),
        json!({"enabled": 1, "allowedGroupId": null}),
    ] {
        assert_eq!(
            error_code(app.call("PUT", "/api/policy/group-creation", &admin, Some(body)).await)
                .await
                .0,
            400
        );
    }
    // Only GroupMgr admins may change it.
    let adele = app.sim.user_token(CONTOSO, "adelev");
    let resp = app
        .call(
            "PUT",
            "/api/policy/group-creation",
            &adele,
            Some(json!({"enabled": false, "allowedGroupId": null})),
        )
        .await;
    assert_eq!(error_code(resp).await, (403, "role_required".into()));

    // With creation disabled and no allowed group, a regular user cannot create groups.
    app.json_ok(
        "PUT",
        "/api/policy/group-creation",
        &admin,
        Some(json!({"enabled": false, "allowedGroupId": null})),
    )
    .await;
    let resp = app
        .call(
            "POST",
            "/api/groups",
            &adele,
            Some(json!({"displayName": "Blocked", "mailNickname": "blocked"})),
        )
        .await;
    assert_eq!(error_code(resp).await, (403, "forbidden_by_microsoft".into()));
    app.stop().await;
}

/// A create whose answer is lost after Graph made the group: the retry finds it by its
/// nickname instead of making a second one (or answering 409 for the caller's own group).
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_not_repeated() {
    let app = spawn_app().await;
    // A user the naming policy applies to: the look-up is under the names the group got.
    let megan = app.sim.user_token(CONTOSO, "meganb");
    app.sim.state.faults.arm(
        FaultRule::new("/v1.0/groups", FaultKind::DropAnswer)
            .method("POST")
            .times(1),
    );
    let resp = app
        .call(
            "POST",
            "/api/groups",
            &megan,
            Some(json!({"displayName": "Lost Answer", "mailNickname": "lostanswer"})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let created: Value = resp.json().await.unwrap();
    let made = app
        .sim
        .state
        .with_graph(&CONTOSO, |t| {
            t.groups
                .values()
                .filter(|g| g.mail_nickname == "GRP_Marketing_lostanswer_US")
                .map(|g| g.id.to_string())
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(
        made,
        [created["id"].as_str().unwrap().to_string()],
        "exactly one group, the one answered"
    );
    assert_eq!(
        app.sim.requests_where(|p| p == "/v1.0/groups"),
        2,
        "the create that lost its answer, then the look-up by nickname (no second create)"
    );
    app.stop().await;
}
