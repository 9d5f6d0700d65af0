//! GroupMgr's own credential: with `GROUPMGR_CLIENT_CERTIFICATE` (no client secret at all) the
//! app proves itself with signed `private_key_jwt` assertions, which m365-sim checks as Entra
//! does (registered certificate's signature, `x5t#S256`, `aud`, `iss`/`sub`, `exp`) — for the
//! on-behalf-of exchange of a UI request and for the client-credentials token of a sync.

mod common;

use common::*;
use m365_sim::directory::CONTOSO;

#[tokio::test]
async fn the_certificate_credential_works_end_to_end() {
    let app = spawn_with(Spawn {
        certificate: Some(m365_sim::client_cert::GROUPMGR_CLIENT_CERTIFICATE_PEM.to_string()),
        audit: true,
        ..Default::default()
    })
    .await;
    assert!(
        app.app
            .settings
            .credential
            .as_ref()
            .is_some_and(|c| matches!(c, groupmgr::config::ClientCredential::Certificate(_))),
        "the app runs on its certificate"
    );
    // On behalf of a user: a UI request reaches Graph.
    let admin = app.sim.user_token(CONTOSO, "admin");
    let page = app.json_ok("GET", "/api/groups?top=5", &admin, None).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 5, "{page}");
    // App-only: a sync gets Graph and Management API tokens.
    let summary = groupmgr::jobs::tenant_sync::run(&app.app, &contoso(), false)
        .await
        .unwrap();
    assert_eq!(summary.groups.groups, 300);
    assert!(
        summary.activity.audit_feed && summary.activity.blobs > 0,
        "the Management API token worked"
    );
    assert!(
        app.sim.requests_where(|p| p.ends_with("/oauth2/v2.0/token")) >= 3,
        "tokens were requested: on-behalf-of, Graph and the Management API"
    );
    app.stop().await;
}

/// A certificate Entra does not have for the app (same key, another certificate: another
/// thumbprint): every token request is refused with 401 `invalid_client` AADSTS700027, which
/// GroupMgr reports as its own misconfiguration — a 500 to the UI, an error for the sync.
#[tokio::test]
async fn a_certificate_not_registered_for_the_app_is_refused() {
    let registered = m365_sim::client_cert::GROUPMGR_CLIENT_CERTIFICATE_PEM;
    let start = registered.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let key_pem = &registered[start..];
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let foreign = rcgen::CertificateParams::new(vec!["groupmgr-foreign".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let app = spawn_with(Spawn {
        certificate: Some(format!("{}{key_pem}", foreign.pem())),
        ..Default::default()
    })
    .await;
    let admin = app.sim.user_token(CONTOSO, "admin");
    let resp = app.get("/api/groups?top=5", Some(&admin)).await;
    assert_eq!(error_code(resp).await, (500, "internal_error".into()));
    let sync = groupmgr::jobs::tenant_sync::run(&app.app, &contoso(), false).await;
    match sync {
        Err(groupmgr::jobs::tenant_sync::TenantSyncError::Token(groupmgr::auth::AcquireError::Misconfigured(code))) => {
            assert_eq!(code, "AADSTS700027")
        }
        other => panic!("{other:?}"),
    }
    app.stop().await;
}
