//! The `groupmgr` command line. With no arguments it serves, which is how the Functions host
//! starts it. Errors go to stderr as one line, with a non-zero exit status.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use groupmgr::app::{self, App, AppOptions};
use groupmgr::config::Settings;
use groupmgr::{cli, store, telemetry};

#[derive(Parser)]
#[command(
    name = "groupmgr",
    version,
    about = "GroupMgr backend (Azure Functions custom handler)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the custom-handler HTTP API on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT (default).
    Serve,
    /// Run everything locally: m365-sim, a SQLite file with a demo tenant, the API on :7071.
    #[cfg(feature = "dev-sim")]
    Dev,
    /// Manage registered tenants and their licences.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Register a tenant (active) with a seat count and optional licence expiry.
    Add {
        tenant_id: String,
        #[arg(long)]
        seats: String,
        /// Last valid day of the licence (UTC), YYYY-MM-DD.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tenants with status, seats, seats in use and expiry.
    List,
    /// Suspend a tenant: its users are refused until it is activated again.
    Suspend { tenant_id: String },
    /// Re-activate a suspended tenant.
    Activate { tenant_id: String },
    /// Change a tenant's seat count.
    SetSeats { tenant_id: String, seats: String },
    /// Change (or with no date, remove) a tenant's licence expiry.
    SetExpiry {
        tenant_id: String,
        expires: Option<String>,
    },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("groupmgr: {msg}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        #[cfg(feature = "dev-sim")]
        Command::Dev => match groupmgr::dev::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
        Command::Tenant { command } => tenant(command).await,
    }
}

async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let serve = match settings.for_serve() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    telemetry::init_json();
    let store = match store::open(&settings.database).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let listener = match app::bind(settings.port).await {
        Ok(l) => l,
        Err(e) => {
            return fail(format_args!(
                "FUNCTIONS_CUSTOMHANDLER_PORT: cannot listen on 127.0.0.1:{}: {e}",
                settings.port
            ));
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(event = "listening", addr = %addr, version = env!("CARGO_PKG_VERSION"));
    let app = App::new(settings, serve, store, AppOptions::default());
    app::run(app, listener, app::shutdown_signal()).await;
    ExitCode::SUCCESS
}

async fn tenant(command: TenantCommand) -> ExitCode {
    telemetry::init_cli();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let store = match store::open(&settings.database).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let store = store.as_ref();
    let result = match &command {
        TenantCommand::Add {
            tenant_id,
            seats,
            expires,
        } => cli::tenant_add(store, tenant_id, seats, expires.as_deref()).await,
        TenantCommand::List => cli::tenant_list(store).await,
        TenantCommand::Suspend { tenant_id } => cli::tenant_suspend(store, tenant_id).await,
        TenantCommand::Activate { tenant_id } => cli::tenant_activate(store, tenant_id).await,
        TenantCommand::SetSeats { tenant_id, seats } => {
            cli::tenant_set_seats(store, tenant_id, seats).await
        }
        TenantCommand::SetExpiry { tenant_id, expires } => {
            cli::tenant_set_expiry(store, tenant_id, expires.as_deref()).await
        }
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
