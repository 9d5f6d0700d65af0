//! The group naming policy as Microsoft checks it: `GET /api/policy/naming/preview` shows the
//! names a group will get, `POST /api/groups` creates it under exactly those names, blocked
//! words and taken nicknames are refused with clear errors, administrators are exempt, and a
//! create still gets compliant names when the check cannot be made, whether Graph refuses the
//! names (suggesting compliant ones) or adds the prefix and suffix itself.
//!
//! The oracle is Contoso's seeded policy, `GRP_[Department]_[GroupName]_[CountryOrRegion]`
//! with blocked words `CEO`, `Payroll`, `Top Secret`, applied here by hand to the seeded
//! users' attributes, not by the sim's or the product's code.

mod common;

use common::*;
use m365_sim::directory::{CONTOSO, FABRIKAM};
use m365_sim::graph::naming::NamingOnCreate;
use m365_sim::{FaultKind, FaultRule, SimOptions};
use serde_json::{Value, json};

/// Contoso's users with their seeded department (`None`: exempt administrator). Nestor is
/// left out: his sign-ins need MFA (gate.rs tests that).
const USERS: &[(&str, Option<&str>)] = &[
    ("admin", None),
    ("adelev", Some("Retail")),
    ("alexw", Some("Marketing")),
    ("diegos", Some("HR")),
    ("isaiahl", Some("Sales")),
    ("johannal", Some("Engineering")),
    ("leeg", Some("")),
    ("pattif", Some("Executive Management")),
];

const WORDS: &[&str] = &[
    "Budget",
    "Plan",
    "Café",
    "Q4",
    "Ops",
    "Project",
    "Class",
    "Alpha",
    "Team",
    "R&D",
    "Top",
    "Secret",
    "Payroll",
    "ceo",
    "Top Secret",
    "Übersicht",
    "Notes",
];

const BLOCKED: &[&str] = &["ceo", "payroll", "top secret"];

/// The blocked word the entered name holds, by the documented rule: whole words, any case.
fn blocked_in(entered: &str) -> Option<&'static str> {
    let words: Vec<String> = entered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    BLOCKED.iter().copied().find(|b| {
        let want: Vec<&str> = b.split(' ').collect();
        words
            .windows(want.len())
            .any(|w| w.iter().zip(&want).all(|(a, b)| a == b))
    })
}

/// A small deterministic generator (the run is the same every time).
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn preview_path(display: &str, nick: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("displayName", display)
        .append_pair("mailNickname", nick)
        .finish();
    format!("/api/policy/naming/preview?{q}")
}

fn small_tenant() -> SimOptions {
    SimOptions {
        groups: 20,
        ..small_pages()
    }
}

async fn spawn_small() -> TestApp {
    spawn_with(Spawn {
        sim: small_tenant(),
        ..Default::default()
    })
    .await
}

/// A consent given before GroupMgr asked for delegated Group.Read.All: the check is
/// forbidden, so Graph judges the names at the create or rename itself.
fn check_forbidden(app: &TestApp) {
    app.sim.state.faults.arm(FaultRule::new(
        "/v1.0/directoryObjects/validateProperties",
        FaultKind::Status {
            status: 403,
            code: "Authorization_RequestDenied".into(),
            retry_after: None,
        },
    ));
}

#[tokio::test]
async fn for_500_random_names_and_users_the_preview_is_the_name_the_group_gets() {
    let app = spawn_with(Spawn {
        contoso_seats: Some(50),
        sim: small_tenant(),
        ..Default::default()
    })
    .await;
    let tokens: Vec<String> = USERS.iter().map(|(u, _)| app.sim.user_token(CONTOSO, u)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut made: Vec<(usize, String)> = Vec::new();
    let (mut created, mut blocked, mut taken, mut exempt, mut empty_department) = (0, 0, 0, 0, 0);
    for i in 0..500 {
        let (who, display, nick) = if i % 25 == 24 && !made.is_empty() {
            // The same user asks for a nickname they already have.
            let (who, nick) = made[rng.next(made.len())].clone();
            (who, format!("Again {i}"), nick)
        } else {
            let who = rng.next(USERS.len());
            let words: Vec<&str> = (0..1 + rng.next(3)).map(|_| WORDS[rng.next(WORDS.len())]).collect();
            let nick: String = words
                .iter()
                .flat_map(|w| w.chars())
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_lowercase();
            (who, words.join(" "), format!("{nick}{i}"))
        };
        let (user, department) = USERS[who];
        let token = &tokens[who];
        let preview = app.json_ok("GET", &preview_path(&display, &nick), token, None).await;
        let resp = app
            .call(
                "POST",
                "/api/groups",
                token,
                Some(json!({"displayName": display, "mailNickname": nick})),
            )
            .await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        // The oracle: the seeded policy applied by hand.
        let (want_display, want_nick) = match department {
            None => (display.clone(), nick.clone()),
            Some(d) => (
                format!("GRP_{d}_{display}_US"),
                format!("GRP_{}_{nick}_US", d.replace(' ', "")),
            ),
        };
        let case = format!("#{i} {user}: {display:?} / {nick:?} → preview {preview}, create {status} {body}");
        assert_eq!(preview["displayName"], want_display.as_str(), "{case}");
        assert_eq!(preview["mailNickname"], want_nick.as_str(), "{case}");
        assert_eq!(preview["affixesAdded"], department.is_some(), "{case}");
        let word = blocked_in(&display).filter(|_| department.is_some());
        let nick_taken = made.iter().any(|(w, n)| *w == who && *n == nick);
        if let Some(word) = word {
            blocked += 1;
            assert_eq!(preview["allowed"], false, "{case}");
            assert_eq!(preview["problems"][0]["code"], "blocked_word", "{case}");
            assert_eq!(
                preview["problems"][0]["blockedWord"]
                    .as_str()
                    .map(str::to_lowercase)
                    .as_deref(),
                Some(word),
                "{case}"
            );
            assert_eq!(status, 400, "{case}");
            assert_eq!(body["error"]["code"], "naming_policy_violation", "{case}");
            continue;
        }
        if nick_taken {
            taken += 1;
            assert_eq!(preview["allowed"], false, "{case}");
            assert_eq!(preview["problems"][0]["code"], "nickname_taken", "{case}");
            assert_eq!(status, 409, "{case}");
            continue;
        }
        assert_eq!(preview["allowed"], true, "{case}");
        assert_eq!(preview["problems"], json!([]), "{case}");
        assert_eq!(status, 201, "{case}");
        assert_eq!(body["displayName"], preview["displayName"], "{case}");
        assert_eq!(body["mailNickname"], preview["mailNickname"], "{case}");
        // And the directory holds the group under those names.
        let id: uuid::Uuid = body["id"].as_str().unwrap().parse().unwrap();
        let stored = app
            .sim
            .state
            .with_graph(&CONTOSO, |t| {
                t.groups
                    .get(&id)
                    .map(|g| (g.display_name.clone(), g.mail_nickname.clone()))
            })
            .unwrap();
        assert_eq!(stored, Some((want_display, want_nick)), "{case}");
        created += 1;
        exempt += usize::from(department.is_none());
        empty_department += usize::from(department == Some(""));
        made.push((who, nick));
    }
    assert!(
        created >= 300 && blocked >= 20 && taken >= 10 && exempt >= 20 && empty_department >= 20,
        "every case is met: {created} created, {blocked} blocked, {taken} taken nicknames, {exempt} by the exempt admin, {empty_department} with no department"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_the_check_a_create_still_gets_compliant_names_whether_graph_refuses_or_adds_them() {
    for mode in [NamingOnCreate::Refuse, NamingOnCreate::AddAffixes] {
        let app = spawn_with(Spawn {
            sim: SimOptions {
                naming_on_create: mode,
                ..small_tenant()
            },
            ..Default::default()
        })
        .await;
        check_forbidden(&app);
        let adele = app.sim.user_token(CONTOSO, "adelev");
        let created = app
            .json_ok(
                "POST",
                "/api/groups",
                &adele,
                Some(json!({"displayName": "Budget", "mailNickname": "budget"})),
            )
            .await;
        assert_eq!(
            (created["displayName"].as_str(), created["mailNickname"].as_str()),
            (Some("GRP_Retail_Budget_US"), Some("GRP_Retail_budget_US")),
            "{mode:?}"
        );
        let creates = app.sim.requests_where(|p| p == "/v1.0/groups");
        match mode {
            NamingOnCreate::Refuse => assert_eq!(creates, 2, "refused, then created under the suggested names"),
            NamingOnCreate::AddAffixes => assert_eq!(creates, 1, "Graph added them"),
        }
        // The preview cannot be made and says so.
        let resp = app.call("GET", &preview_path("Budget", "budget"), &adele, None).await;
        assert_eq!(error_code(resp).await, (403, "forbidden_by_microsoft".into()));
        app.stop().await;
    }
}

#[tokio::test]
async fn the_preview_names_every_problem_and_refuses_bad_input() {
    let app = spawn_small().await;
    let pattif = app.sim.user_token(CONTOSO, "pattif");
    // Without a nickname only the display name is judged.
    let p = app
        .json_ok(
            "GET",
            "/api/policy/naming/preview?displayName=Board%20notes",
            &pattif,
            None,
        )
        .await;
    assert_eq!(
        p,
        json!({"displayName": "GRP_Executive Management_Board notes_US", "mailNickname": null, "affixesAdded": true, "allowed": true, "problems": []})
    );
    // Entered with the prefix already: it is not added twice.
    let p = app
        .json_ok(
            "GET",
            &preview_path("GRP_Executive Management_Board", "boardx"),
            &pattif,
            None,
        )
        .await;
    assert_eq!(p["displayName"], "GRP_Executive Management_Board_US");
    // A substring of a blocked word is not blocked ("Class" passes when "lass" is blocked).
    let p = app
        .json_ok("GET", &preview_path("CEOs and payrolls", "ceos"), &pattif, None)
        .await;
    assert_eq!(p["allowed"], true, "{p}");
    // Too long with the prefix and suffix: said before anything is created.
    let long = "n".repeat(60);
    let p = app.json_ok("GET", &preview_path("Long", &long), &pattif, None).await;
    assert_eq!(p["allowed"], false);
    assert_eq!(p["problems"][0]["code"], "invalid_name");
    assert_eq!(p["problems"][0]["property"], "mailNickname");
    let resp = app
        .call(
            "POST",
            "/api/groups",
            &pattif,
            Some(json!({"displayName": "Long", "mailNickname": long})),
        )
        .await;
    assert_eq!(error_code(resp).await, (400, "invalid_input".into()));
    // Bad input.
    for q in [
        "/api/policy/naming/preview",
        "/api/policy/naming/preview?mailNickname=x",
        "/api/policy/naming/preview?displayName=",
        "/api/policy/naming/preview?displayName=x&mailNickname=a%20b",
    ] {
        assert_eq!(
            error_code(app.call("GET", q, &pattif, None).await).await,
            (400, "invalid_input".into()),
            "{q}"
        );
    }
    // A tenant without a naming policy keeps the names as entered.
    let kim = app.sim.user_token(FABRIKAM, "kim");
    let p = app
        .json_ok("GET", &preview_path("Payroll", "payroll"), &kim, None)
        .await;
    assert_eq!(
        p,
        json!({"displayName": "Payroll", "mailNickname": "payroll", "affixesAdded": false, "allowed": true, "problems": []})
    );
    app.stop().await;
}

#[tokio::test]
async fn the_sims_validate_properties_answers_as_graph_documents() {
    let app = spawn_small().await;
    let adele = m365_sim::directory::stable_id("user", "adelev@contoso.onmicrosoft.com").to_string();
    let url = format!("{}/v1.0/directoryObjects/validateProperties", app.sim.url());
    let post = |token: String, body: Value| {
        let (http, url) = (app.http.clone(), url.clone());
        async move {
            let resp = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    let token = app.sim.graph_user_token(CONTOSO, "adelev", None);
    // 422 with every missing prefix/suffix (directoryobject-validateproperties, example 2).
    let (status, body) = post(
        token.clone(),
        json!({"entityType": "Group", "displayName": "test", "mailNickname": "test", "onBehalfOfUserId": adele}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "Request_UnprocessableEntity");
    assert_eq!(
        body["error"]["message"],
        "The values provided contain one or more validation errors."
    );
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    for (d, (target, prefix)) in details
        .iter()
        .zip([("displayName", "GRP_Retail_"), ("mailNickname", "GRP_Retail_")])
    {
        assert_eq!(d["target"], target);
        assert_eq!(d["code"], "MissingPrefixSuffix");
        assert_eq!(
            (d["prefix"].as_str(), d["suffix"].as_str()),
            (Some(prefix), Some("_US"))
        );
        assert!(d["message"].as_str().unwrap().contains("prefix/suffix"));
    }
    // 204 when compliant; the blocked word only in the message (Graph documents no property).
    let (status, _) = post(
        token.clone(),
        json!({"entityType": "Group", "displayName": "GRP_Retail_Plans_US", "onBehalfOfUserId": adele}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = post(
        token.clone(),
        json!({"entityType": "Group", "displayName": "GRP_Retail_CEO notes_US", "onBehalfOfUserId": adele}),
    )
    .await;
    assert_eq!(status, 422);
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["error"]["details"][0]["code"], "ContainsBlockedWord");
    assert!(d["error"]["details"][0].get("blockedWord").is_none());
    assert!(d["error"]["details"][0]["message"].as_str().unwrap().contains("'CEO'"));
    // 400 for a request that is not valid.
    for bad in [
        json!({"entityType": "User", "displayName": "x"}),
        json!({"entityType": "Group"}),
        json!({"entityType": "Group", "displayName": "x", "onBehalfOfUserId": "not-a-user"}),
    ] {
        assert_eq!(post(token.clone(), bad.clone()).await.0, 400, "{bad}");
    }
    // Delegated Group.ReadWrite.All is not among its documented permissions.
    let without = app
        .sim
        .graph_user_token(CONTOSO, "adelev", Some("Group.ReadWrite.All User.ReadBasic.All"));
    assert_eq!(
        post(without, json!({"entityType": "Group", "displayName": "x"}))
            .await
            .0,
        403
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rename_gets_the_policy_names_too_even_of_the_nickname_alone() {
    let app = spawn_small().await;
    let adele = app.sim.user_token(CONTOSO, "adelev");
    let created = app
        .json_ok(
            "POST",
            "/api/groups",
            &adele,
            Some(json!({"displayName": "Shelf", "mailNickname": "shelf"})),
        )
        .await;
    let location = format!("/api/groups/{}", created["id"].as_str().unwrap());
    let resp = app
        .call("PATCH", &location, &adele, Some(json!({"mailNickname": "shelves"})))
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    let g = app.json_ok("GET", &location, &adele, None).await;
    assert_eq!(
        (g["displayName"].as_str(), g["mailNickname"].as_str()),
        (Some("GRP_Retail_Shelf_US"), Some("GRP_Retail_shelves_US"))
    );
    // Without the check, Graph's refusal with suggested names is followed.
    check_forbidden(&app);
    let resp = app
        .call("PATCH", &location, &adele, Some(json!({"displayName": "Shelves"})))
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    let g = app.json_ok("GET", &location, &adele, None).await;
    assert_eq!(g["displayName"], "GRP_Retail_Shelves_US");
    // A blocked word is refused, naming it (read from Graph's message).
    app.sim.state.faults.clear();
    let resp = app
        .call(
            "PATCH",
            &location,
            &adele,
            Some(json!({"displayName": "Top secret shelf"})),
        )
        .await;
    let (status, body) = (resp.status().as_u16(), resp.text().await.unwrap());
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("naming_policy_violation") && body.contains("'Top Secret'"),
        "{body}"
    );
    app.stop().await;
}
