//! The gate: Entra v2 token validation (every way a token can be wrong gives 401), tenant and
//! licence checks (403 with a stable code), seat counting by blind index, JWKS behaviour.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::Utc;
use common::*;
use groupmgr::auth::JwksOptions;
use groupmgr::domain::TenantStatus;
use m365_sim::directory::{CONTOSO, FABRIKAM, GROUPMGR_CLIENT_ID};
use m365_sim::{FaultKind, FaultRule, SigningKey, TokenSpec};
use serde_json::{Value, json};

/// A route behind the gate that answers 200 without calling Microsoft (no sync has run, so
/// there is no activity to read): any other status is the gate's answer.
const GATED: &str = "/api/activity";

fn now() -> i64 {
    Utc::now().timestamp()
}

fn b64(v: &Value) -> String {
    B64URL.encode(v.to_string())
}

struct Forge<'a> {
    app: &'a TestApp,
    header: Value,
    claims: Value,
}

impl<'a> Forge<'a> {
    fn new(app: &'a TestApp) -> Self {
        let claims = app.sim.api_claims(&TokenSpec::user(CONTOSO, "adelev"));
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": app.sim.current_kid()});
        Self { app, header, claims }
    }
    fn claim(mut self, k: &str, v: Value) -> Self {
        self.claims[k] = v;
        self
    }
    fn without(mut self, k: &str) -> Self {
        self.claims.as_object_mut().unwrap().remove(k);
        self
    }
    fn header(mut self, k: &str, v: Value) -> Self {
        self.header[k] = v;
        self
    }
    fn without_header(mut self, k: &str) -> Self {
        self.header.as_object_mut().unwrap().remove(k);
        self
    }
    fn signed(&self) -> String {
        self.app.sim.sign(&self.header, &self.claims)
    }
}

async fn status_of(app: &TestApp, authorization: Option<String>) -> (u16, String) {
    let resp = app.get_with_auth(GATED, authorization.as_deref()).await;
    if resp.status().is_success() {
        return (resp.status().as_u16(), String::new());
    }
    error_code(resp).await
}

#[tokio::test]
async fn a_valid_token_passes_the_gate() {
    let app = spawn_app().await;
    let token = app.sim.user_token(CONTOSO, "admin");
    assert_eq!(
        status_of(&app, Some(format!("Bearer {token}"))).await,
        (200, String::new())
    );
    // The App ID URI form of the audience is accepted too, and so is a token that expired
    // within the 5 minutes of allowed clock skew.
    let f = Forge::new(&app).claim("aud", json!(format!("api://{GROUPMGR_CLIENT_ID}")));
    assert_eq!(status_of(&app, Some(format!("Bearer {}", f.signed()))).await.0, 200);
    let f = Forge::new(&app).claim("exp", json!(now() - 60));
    assert_eq!(status_of(&app, Some(format!("Bearer {}", f.signed()))).await.0, 200);
    // scp without roles is enough; roles without scp is an application's token, which no
    // route serves.
    let f = Forge::new(&app).without("roles");
    assert_eq!(status_of(&app, Some(format!("Bearer {}", f.signed()))).await.0, 200);
    let f = Forge::new(&app)
        .without("scp")
        .claim("roles", json!(["GroupMgr.Admin"]));
    assert_eq!(
        status_of(&app, Some(format!("Bearer {}", f.signed()))).await,
        (403, "user_token_required".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn every_kind_of_bad_token_is_rejected_with_401() {
    let app = spawn_app().await;
    let good = Forge::new(&app).signed();
    let foreign_key = SigningKey::generate();
    let t = now();

    let mut cases: Vec<(&str, Option<String>)> = vec![
        ("no authorization header", None),
        ("empty bearer", Some("Bearer ".into())),
        ("scheme only", Some("Bearer".into())),
        ("wrong scheme", Some(format!("Basic {good}"))),
        ("token with spaces", Some(format!("Bearer {good} extra"))),
        ("not a JWT", Some("Bearer abc".into())),
        ("five-part JWE shape", Some("Bearer a.b.c.d.e".into())),
        (
            "malformed base64 header",
            Some(format!("Bearer !!!.{}", good.split_once('.').unwrap().1)),
        ),
        (
            "header is not JSON",
            Some(format!(
                "Bearer {}.{}",
                B64URL.encode("not json"),
                good.split_once('.').unwrap().1
            )),
        ),
        ("oversized token", Some(format!("Bearer {}", "a".repeat(20_000)))),
    ];
    let mut forged: Vec<(&str, String)> = vec![
        (
            "expired an hour ago",
            Forge::new(&app)
                .claim("exp", json!(t - 3600))
                .claim("nbf", json!(t - 7200))
                .claim("iat", json!(t - 7200))
                .signed(),
        ),
        (
            "expired beyond the 5 minute leeway",
            Forge::new(&app).claim("exp", json!(t - 301)).signed(),
        ),
        (
            "not yet valid",
            Forge::new(&app)
                .claim("nbf", json!(t + 3600))
                .claim("exp", json!(t + 7200))
                .signed(),
        ),
        (
            "wrong audience",
            Forge::new(&app)
                .claim("aud", json!("11111111-1111-1111-1111-111111111111"))
                .signed(),
        ),
        (
            "Graph audience",
            Forge::new(&app)
                .claim("aud", json!("https://graph.microsoft.com"))
                .signed(),
        ),
        (
            "App ID URI of another app",
            Forge::new(&app)
                .claim("aud", json!("api://11111111-1111-1111-1111-111111111111"))
                .signed(),
        ),
        (
            "wrong issuer host",
            Forge::new(&app)
                .claim(
                    "iss",
                    json!(format!("https://login.microsoftonline.com/{CONTOSO}/v2.0")),
                )
                .signed(),
        ),
        (
            "v1 issuer form",
            Forge::new(&app)
                .claim("iss", json!(format!("https://sts.windows.net/{CONTOSO}/")))
                .signed(),
        ),
        (
            "issuer of another tenant than tid",
            Forge::new(&app).claim("iss", json!(app.sim.issuer(FABRIKAM))).signed(),
        ),
        (
            "tid not a GUID",
            Forge::new(&app)
                .claim("tid", json!("common"))
                .claim("iss", json!(format!("{}/common/v2.0", app.sim.url())))
                .signed(),
        ),
        ("tid missing", Forge::new(&app).without("tid").signed()),
        (
            "v1 token",
            Forge::new(&app)
                .claim("ver", json!("1.0"))
                .claim("iss", json!(format!("https://sts.windows.net/{CONTOSO}/")))
                .signed(),
        ),
        ("ver missing", Forge::new(&app).without("ver").signed()),
        ("exp missing", Forge::new(&app).without("exp").signed()),
        ("nbf missing", Forge::new(&app).without("nbf").signed()),
        ("aud missing", Forge::new(&app).without("aud").signed()),
        (
            "neither scp nor roles",
            Forge::new(&app).without("scp").without("roles").signed(),
        ),
        (
            "empty scp and roles",
            Forge::new(&app)
                .claim("scp", json!(""))
                .claim("roles", json!([]))
                .signed(),
        ),
        ("kid missing", Forge::new(&app).without_header("kid").signed()),
        (
            "kid unknown",
            Forge::new(&app)
                .header("kid", json!("unknown-kid-000000000000000"))
                .signed(),
        ),
        (
            "alg RS512 claimed",
            Forge::new(&app).header("alg", json!("RS512")).signed(),
        ),
        (
            "alg PS256 claimed",
            Forge::new(&app).header("alg", json!("PS256")).signed(),
        ),
    ];
    // Signed by a key Entra never published, under its own kid.
    let f = Forge::new(&app);
    let mut h = f.header.clone();
    h["kid"] = json!(foreign_key.kid);
    forged.push((
        "signed by an unpublished key",
        m365_sim::keys::encode_jwt(&foreign_key, &h, &f.claims),
    ));
    // Signed by an unpublished key but claiming the real kid.
    forged.push((
        "real kid, foreign signature",
        m365_sim::keys::encode_jwt(&foreign_key, &f.header, &f.claims),
    ));
    // Payload changed after signing (a user granting themselves the admin role).
    let (h64, rest) = good.split_once('.').unwrap();
    let sig = rest.split_once('.').unwrap().1;
    let mut tampered = Forge::new(&app).claims;
    tampered["roles"] = json!(["GroupMgr.Admin"]);
    forged.push(("tampered payload", format!("{h64}.{}.{sig}", b64(&tampered))));
    // Signature bit flipped.
    let mut sig_bytes = B64URL.decode(sig).unwrap();
    sig_bytes[10] ^= 0x01;
    forged.push((
        "tampered signature",
        format!(
            "{h64}.{}.{}",
            rest.split_once('.').unwrap().0,
            B64URL.encode(&sig_bytes)
        ),
    ));
    forged.push((
        "signature stripped",
        format!("{h64}.{}.", rest.split_once('.').unwrap().0),
    ));
    // alg none, unsigned.
    let none_header = json!({"typ": "JWT", "alg": "none", "kid": app.sim.current_kid()});
    forged.push(("alg none", format!("{}.{}.", b64(&none_header), b64(&f.claims))));
    // HS256 with the RSA public key (as published in the JWKS) used as the HMAC secret.
    let jwks: Value = reqwest::get(format!("{}/common/discovery/v2.0/keys", app.sim.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap().to_string();
    let hs_header = json!({"typ": "JWT", "alg": "HS256", "kid": app.sim.current_kid()});
    let input = format!("{}.{}", b64(&hs_header), b64(&f.claims));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, n.as_bytes());
    let mac = ring::hmac::sign(&key, input.as_bytes());
    forged.push((
        "HS256 keyed with the public key",
        format!("{input}.{}", B64URL.encode(mac.as_ref())),
    ));

    for (name, token) in forged.drain(..) {
        cases.push((name, Some(format!("Bearer {token}"))));
    }
    assert!(cases.len() >= 25, "only {} cases", cases.len());

    for (name, authorization) in cases {
        let resp = app.get_with_auth(GATED, authorization.as_deref()).await;
        assert_eq!(resp.status().as_u16(), 401, "{name}");
        let www = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.text().await.unwrap();
        let parsed: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: body not JSON: {body}"));
        let code = parsed["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code == "invalid_token" || code == "missing_token",
            "{name}: expected 401 invalid/missing token, got {body}"
        );
        assert!(
            www.is_some_and(|w| w.starts_with("Bearer")),
            "{name}: no WWW-Authenticate: Bearer"
        );
        if let Some(a) = &authorization {
            let token = a.split_once(' ').map(|(_, t)| t).unwrap_or(a);
            if token.len() > 8 {
                assert!(!body.contains(token), "{name}: token echoed in the error body");
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn statuses_are_401_for_every_bad_token() {
    // Spot-check the status line itself (the bulk test checks codes and bodies).
    let app = spawn_app().await;
    for auth in [None, Some("Bearer x.y.z".to_string())] {
        assert_eq!(app.get_with_auth(GATED, auth.as_deref()).await.status().as_u16(), 401);
    }
    app.stop().await;
}

#[tokio::test]
async fn tenants_that_may_not_use_the_product_get_403() {
    let app = spawn_with(Spawn {
        fabrikam_seats: None,
        ..Default::default()
    })
    .await;
    let contoso_admin = app.sim.user_token(CONTOSO, "admin");
    let fabrikam_admin = app.sim.user_token(FABRIKAM, "admin");

    assert_eq!(
        status_of(&app, Some(format!("Bearer {fabrikam_admin}"))).await,
        (403, "tenant_not_registered".into())
    );

    app.store.set_status(&contoso(), TenantStatus::Suspended).await.unwrap();
    assert_eq!(
        status_of(&app, Some(format!("Bearer {contoso_admin}"))).await,
        (403, "tenant_suspended".into())
    );
    app.store.set_status(&contoso(), TenantStatus::Active).await.unwrap();

    let yesterday = (Utc::now() - chrono::TimeDelta::days(1)).date_naive();
    app.store.set_licence_expiry(&contoso(), Some(yesterday)).await.unwrap();
    assert_eq!(
        status_of(&app, Some(format!("Bearer {contoso_admin}"))).await,
        (403, "license_expired".into())
    );
    app.store
        .set_licence_expiry(&contoso(), Some(Utc::now().date_naive()))
        .await
        .unwrap();
    assert_eq!(
        status_of(&app, Some(format!("Bearer {contoso_admin}"))).await.0,
        200,
        "the last day is still valid"
    );

    app.store.offboard(&contoso(), Utc::now()).await.unwrap();
    assert_eq!(
        status_of(&app, Some(format!("Bearer {contoso_admin}"))).await,
        (403, "tenant_offboarded".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn seats_count_unique_users_and_existing_users_keep_working() {
    let app = spawn_with(Spawn {
        contoso_seats: Some(2),
        fabrikam_seats: Some(1),
        ..Default::default()
    })
    .await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let adele = app.sim.user_token(CONTOSO, "adelev");
    let alex = app.sim.user_token(CONTOSO, "alexw");
    assert_eq!(status_of(&app, Some(format!("Bearer {admin}"))).await.0, 200);
    assert_eq!(status_of(&app, Some(format!("Bearer {adele}"))).await.0, 200);
    assert_eq!(
        status_of(&app, Some(format!("Bearer {alex}"))).await,
        (403, "license_seats_exhausted".into())
    );
    // Existing users keep working, many times over, and do not use more seats.
    for _ in 0..3 {
        assert_eq!(status_of(&app, Some(format!("Bearer {admin}"))).await.0, 200);
    }
    // The same user with a differently cased UPN is the same user.
    let shouty = Forge::new(&app).claim("upn", json!("ADELEV@CONTOSO.ONMICROSOFT.COM"));
    assert_eq!(
        status_of(&app, Some(format!("Bearer {}", shouty.signed()))).await.0,
        200
    );
    assert_eq!(app.store.licensed_user_count(&contoso()).await.unwrap(), 2);

    // Another tenant's seats are its own: Fabrikam's one user is admitted although Contoso is full.
    let kim = app.sim.user_token(FABRIKAM, "kim");
    assert_eq!(status_of(&app, Some(format!("Bearer {kim}"))).await.0, 200);
    let pat = app.sim.user_token(FABRIKAM, "pat");
    assert_eq!(
        status_of(&app, Some(format!("Bearer {pat}"))).await,
        (403, "license_seats_exhausted".into())
    );

    // More seats let the waiting user in.
    app.store
        .set_seats(&contoso(), groupmgr::domain::Seats::new(3).unwrap())
        .await
        .unwrap();
    assert_eq!(status_of(&app, Some(format!("Bearer {alex}"))).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_new_users_cannot_overfill_the_seats() {
    let app = spawn_with(Spawn {
        contoso_seats: Some(3),
        ..Default::default()
    })
    .await;
    let aliases = [
        "admin", "adelev", "alexw", "meganb", "lynner", "diegos", "isaiahl", "johannal", "leeg", "pattif",
    ];
    let tokens: Vec<String> = aliases.iter().map(|a| app.sim.user_token(CONTOSO, a)).collect();
    let results =
        futures_util::future::join_all(tokens.iter().map(|t| status_of(&app, Some(format!("Bearer {t}"))))).await;
    let admitted = results.iter().filter(|(s, _)| *s == 200).count();
    let refused = results
        .iter()
        .filter(|(s, c)| *s == 403 && c == "license_seats_exhausted")
        .count();
    assert_eq!((admitted, refused), (3, 7), "{results:?}");
    assert_eq!(app.store.licensed_user_count(&contoso()).await.unwrap(), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_token_without_a_user_is_refused() {
    let app = spawn_app().await;
    let f = Forge::new(&app).without("upn").without("preferred_username");
    assert_eq!(
        status_of(&app, Some(format!("Bearer {}", f.signed()))).await,
        (403, "user_token_required".into())
    );
    // preferred_username alone is enough.
    let f = Forge::new(&app).without("upn");
    assert_eq!(status_of(&app, Some(format!("Bearer {}", f.signed()))).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn jwks_outage_is_503_not_401() {
    let app = spawn_with(Spawn {
        sim_faults: vec![FaultRule::new(
            "/discovery/v2.0/keys",
            FaultKind::Status {
                status: 503,
                code: "ServiceUnavailable".into(),
                retry_after: None,
            },
        )],
        jwks: JwksOptions {
            min_refresh_interval: std::time::Duration::ZERO,
            failure_ttl: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let token = app.sim.user_token(CONTOSO, "admin");
    let resp = app.get(GATED, Some(&token)).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(error_code(resp).await, (503, "identity_provider_unavailable".into()));
    // Once Entra answers again, the same token works.
    app.sim.state.faults.clear();
    assert_eq!(status_of(&app, Some(format!("Bearer {token}"))).await.0, 200);
    app.stop().await;
}

/// A cold start while Entra does not answer: the first request waits for one fetch to time
/// out; the failure is remembered, so the others get their 503 at once instead of each
/// fetching in turn behind the lock.
#[tokio::test]
async fn a_failed_key_fetch_is_remembered_so_requests_fail_fast() {
    let app = spawn_with(Spawn {
        sim_faults: vec![FaultRule::new(
            "/discovery/v2.0/keys",
            FaultKind::Delay(std::time::Duration::from_secs(30)),
        )],
        jwks: JwksOptions {
            min_refresh_interval: std::time::Duration::ZERO,
            fetch_timeout: std::time::Duration::from_millis(300),
            failure_ttl: std::time::Duration::from_secs(60),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let token = app.sim.user_token(CONTOSO, "admin");
    let statuses =
        futures_util::future::join_all((0..8).map(|_| status_of(&app, Some(format!("Bearer {token}"))))).await;
    assert!(statuses.iter().all(|(s, _)| *s == 503), "{statuses:?}");
    assert_eq!(
        app.sim.requests_where(|p| p.ends_with("/discovery/v2.0/keys")),
        1,
        "one fetch for eight requests, not eight in turn"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_kids_refresh_the_keys_at_most_once_per_interval() {
    let interval = std::time::Duration::from_secs(1);
    let app = spawn_with(Spawn {
        jwks: JwksOptions {
            min_refresh_interval: interval,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let token = app.sim.user_token(CONTOSO, "admin");
    assert_eq!(status_of(&app, Some(format!("Bearer {token}"))).await.0, 200);
    // Past the interval since the last fetch: the next unknown kid may refresh, once.
    tokio::time::sleep(interval + std::time::Duration::from_millis(100)).await;
    let before = app.sim.requests_where(|p| p.ends_with("/discovery/v2.0/keys"));
    let forged: Vec<String> = (0..20)
        .map(|i| {
            Forge::new(&app)
                .header("kid", json!(format!("forged-kid-{i:017}")))
                .signed()
        })
        .collect();
    let statuses =
        futures_util::future::join_all(forged.iter().map(|t| status_of(&app, Some(format!("Bearer {t}"))))).await;
    assert!(statuses.iter().all(|(s, _)| *s == 401), "{statuses:?}");
    let fetches = app.sim.requests_where(|p| p.ends_with("/discovery/v2.0/keys")) - before;
    assert_eq!(fetches, 1, "one JWKS refresh for 20 unknown kids at once");
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up() {
    let app = spawn_with(Spawn {
        jwks: JwksOptions {
            min_refresh_interval: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let old = app.sim.user_token(CONTOSO, "admin");
    assert_eq!(status_of(&app, Some(format!("Bearer {old}"))).await.0, 200);
    app.sim.rotate_signing_key(false);
    let new = app.sim.user_token(CONTOSO, "admin");
    assert_eq!(status_of(&app, Some(format!("Bearer {new}"))).await.0, 200);
    assert_eq!(
        status_of(&app, Some(format!("Bearer {old}"))).await.0,
        200,
        "old key still published"
    );
    app.stop().await;
}

/// Conditional access: a user whose policy demands MFA, signed in without it. The exchange
/// for Graph fails with a claims challenge; the UI gets 401 `insufficient_claims` with the
/// challenge's claims (base64, as MSAL expects) and a body naming the reason; after the
/// step-up (a token from an MFA sign-in) the same call works.
#[tokio::test]
async fn a_conditional_access_step_up_is_passed_to_the_ui_and_then_satisfied() {
    let app = spawn_app().await;
    let without = app.sim.user_token(CONTOSO, "nestorw");
    let resp = app.get("/api/groups", Some(&without)).await;
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("a WWW-Authenticate challenge")
        .to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "interaction_required", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("multifactor authentication") && message.contains("AADSTS50076"),
        "{message}"
    );
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"insufficient_claims\""));
    let claims = challenge
        .split("claims=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("claims in the challenge");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(claims)
            .expect("standard base64"),
    )
    .expect("the claims are JSON");
    assert_eq!(
        claims["access_token"]["capolids"]["values"],
        json!([m365_sim::login::MFA_POLICY_ID]),
        "{claims}"
    );
    // The step-up done: MSAL's new token carries the MFA sign-in.
    let with = app.sim.token(&TokenSpec::user(CONTOSO, "nestorw").with_mfa());
    let resp = app.get("/api/groups", Some(&with)).await;
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

/// Consent laundering: any app a user consents to can get a token for our API; only the
/// GroupMgr UI's (`azp` in GROUPMGR_ALLOWED_CLIENTS, with `access_as_user`) are accepted, and
/// no route serves an application's own token or an ID token.
#[tokio::test]
async fn only_the_groupmgr_ui_may_call_as_a_user() {
    let app = spawn_app().await;
    let other_app = "0b9f6e3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    let cases = [
        (
            Forge::new(&app).claim("azp", json!(other_app)),
            (403, "client_not_allowed"),
        ),
        (Forge::new(&app).without("azp"), (403, "client_not_allowed")),
        (
            Forge::new(&app).claim("scp", json!("User.Read")),
            (401, "invalid_token"),
        ),
        (
            Forge::new(&app)
                .claim("idtyp", json!("app"))
                .without("scp")
                .without("upn")
                .without("preferred_username")
                .claim("roles", json!(["GroupMgr.Admin"])),
            (403, "user_token_required"),
        ),
        // An ID token: audience is the client, but it carries no scope or role.
        (
            Forge::new(&app)
                .without("scp")
                .without("roles")
                .claim("nonce", json!("n-0S6_WzA2Mj")),
            (401, "invalid_token"),
        ),
    ];
    for (forged, (status, code)) in cases {
        assert_eq!(
            status_of(&app, Some(format!("Bearer {}", forged.signed()))).await,
            (status, code.to_string()),
            "{}",
            forged.claims
        );
    }
    // The UI's own token passes.
    assert_eq!(
        status_of(&app, Some(format!("Bearer {}", Forge::new(&app).signed())))
            .await
            .0,
        200
    );
    app.stop().await;
}
