//! `groupmgr dev`: the whole product on one machine with embedded defaults — m365-sim in
//! process standing in for Entra ID, Microsoft Graph and the Management Activity API, a local
//! SQLite file with the demo tenant registered, the API on 127.0.0.1:7071, and the schedule
//! running in process. Prints a bearer token for the demo admin and a `curl` line to try.

use std::net::SocketAddr;

use base64::Engine as _;

use crate::config::Settings;
use crate::domain::{Seats, TenantId};
use crate::startup::{Application, StartOptions, shutdown_signal};
use crate::store::{NewTenant, StoreError};

/// The dev index key is fixed so that a dev database keeps counting the same users across
/// runs. It protects nothing: dev data is the sim's fictional users.
const DEV_INDEX_KEY: [u8; 32] = *b"groupmgr-dev-only-index-key-0001";
/// The dev run's publisher key (HPKE Auth mode sender of tenant log data keys); fixed, public.
const DEV_PUBLISHER_KEY: [u8; 32] = [0x5e; 32];
const DEV_SIM_PORT: u16 = 7072;
const DEMO_SEATS: u32 = 25;

pub async fn run() -> anyhow::Result<()> {
    let sim = match m365_sim::Sim::start(SocketAddr::from(([127, 0, 0, 1], DEV_SIM_PORT))).await {
        Ok(s) => s,
        Err(_) => m365_sim::Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?,
    };
    let sim_url = sim.url();
    let index_key = base64::engine::general_purpose::STANDARD.encode(DEV_INDEX_KEY);
    let client_id = m365_sim::directory::GROUPMGR_CLIENT_ID.to_string();
    let overrides: Vec<(&str, String)> = vec![
        ("GROUPMGR_CLIENT_ID", client_id.clone()),
        (
            "GROUPMGR_CLIENT_SECRET",
            m365_sim::directory::GROUPMGR_CLIENT_SECRET.to_string(),
        ),
        ("GROUPMGR_AUTHORITY_HOST", sim_url.clone()),
        ("GROUPMGR_GRAPH_ENDPOINT", sim_url.clone()),
        ("GROUPMGR_MANAGEMENT_ENDPOINT", sim_url.clone()),
        ("GROUPMGR_INDEX_KEY", index_key),
        // A fixed publisher key for the local run (production's is in Key Vault).
        (
            "GROUPMGR_PUBLISHER_KEY",
            base64::engine::general_purpose::STANDARD.encode(DEV_PUBLISHER_KEY),
        ),
        (
            "GROUPMGR_ALLOWED_CLIENTS",
            m365_sim::directory::UI_CLIENT_ID.to_string(),
        ),
        ("GROUPMGR_PUBLISHER_ID", m365_sim::directory::CONTOSO.to_string()),
    ];
    // Everything else (port, database, …) comes from the environment as usual; the database
    // defaults to a dev file so that dev never touches a production-looking groupmgr.db.
    let settings = Settings::from_source(|name| {
        overrides
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
            .or_else(|| (name == "GROUPMGR_DATABASE").then(|| "sqlite:groupmgr-dev.db".to_string()))
    })?;
    // The timer and queue functions run in process here: the demo tenant's SharePoint list
    // is filled right away, and again every 15 minutes.
    let options = StartOptions {
        schedule: Some(true),
        ..StartOptions::production()
    };
    let application = Application::build(settings, options).await?;
    let demo = TenantId::parse(&m365_sim::directory::CONTOSO.to_string())?;
    match application
        .app()
        .store
        .add_tenant(&NewTenant {
            tenant_id: demo,
            seats: Seats::new(DEMO_SEATS)?,
            licence_expires: None,
        })
        .await
    {
        Ok(_) | Err(StoreError::Duplicate) => {}
        Err(e) => return Err(e.into()),
    }

    let addr = application.address();
    let token = sim.user_token(m365_sim::directory::CONTOSO, "admin");
    println!("GroupMgr dev: API on http://{addr}/api, m365-sim on {sim_url}");
    println!(
        "Demo tenant Contoso {demo} ({DEMO_SEATS} seats); signed in as admin@contoso.onmicrosoft.com (GroupMgr.Admin)."
    );
    println!("Bearer token (valid 1 hour):\n{token}");
    println!("Try:\n  curl -s -H \"Authorization: Bearer {token}\" http://{addr}/api/health");
    println!(
        "A fresh token: curl -s -d grant_type=password -d client_id={} -d username=admin@contoso.onmicrosoft.com -d password={} -d scope=api://{client_id}/access_as_user {sim_url}/{demo}/oauth2/v2.0/token",
        m365_sim::directory::UI_CLIENT_ID,
        m365_sim::directory::USER_PASSWORD,
    );
    println!("Ctrl-C stops both.");
    application.run_until_stopped(shutdown_signal()).await;
    drop(sim);
    Ok(())
}
