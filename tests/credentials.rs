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
        certificate: true,
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
        app.sim.requests_where(|p| p.ends_with("/oauth2/v2.0/token")) >= 2,
        "tokens were requested"
    );
    app.stop().await;
}
