//! The `groupmgr` command line. With no arguments it serves, which is how the Functions host
//! starts it. Errors go to stderr as one line, with a non-zero exit status.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use groupmgr::app;
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
    /// Tenant log keys (for customers).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Sealed tenant logs.
    Logs {
        #[command(subcommand)]
        command: LogsCommand,
    },
    /// Licensed users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Run TenantSync for one tenant now (what the tenant-sync queue function does).
    Sync {
        tenant_id: String,
        /// Ignore the saved delta link: read every group again.
        #[arg(long)]
        full: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a tenant log key pair: writes the private key file (mode 0600) and prints the
    /// public key to register with `groupmgr tenant set-log-key`.
    Generate {
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum LogsCommand {
    /// Decrypt a tenant's logs with its private key, from the store or a saved
    /// `GET /api/logs` response.
    Decrypt {
        #[arg(long)]
        key: std::path::PathBuf,
        #[arg(long)]
        tenant: Option<String>,
        /// RFC 3339 time (inclusive).
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time (exclusive).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: cli::logs::Format,
        /// A saved `GET /api/logs` response (one JSON body, or one per line) instead of the store.
        #[arg(long)]
        input: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// List licensed users with their UPNs, decrypted with the tenant's private key.
    List {
        #[arg(long)]
        key: std::path::PathBuf,
        #[arg(long)]
        tenant: Option<String>,
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
    /// Register the tenant's log public key (printed by `groupmgr keys generate`).
    SetLogKey { tenant_id: String, public_key: String },
    /// Offboard a tenant: delete its data keys and licensed users; its logs become unreadable.
    Offboard { tenant_id: String },
    /// Change (or with no date, remove) a tenant's licence expiry.
    SetExpiry { tenant_id: String, expires: Option<String> },
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
        Command::Keys {
            command: KeysCommand::Generate { out },
        } => print(cli::keys::generate(&out)),
        Command::Logs { command } => logs(command).await,
        Command::Users { command } => users(command).await,
        Command::Sync { tenant_id, full } => sync(&tenant_id, full).await,
    }
}

async fn sync(tenant: &str, full: bool) -> ExitCode {
    let tenant = match groupmgr::domain::TenantId::parse(tenant) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    telemetry::init_cli();
    let (settings, serve, store) = match serve_settings_and_store().await {
        Ok(parts) => parts,
        Err(code) => return code,
    };
    let app = match app::App::new(settings, serve, store, None, app::AppOptions::default()) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    // On a terminal, a spinner counts audit blobs and records as they stream (hidden otherwise).
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} audit feed: {msg}")
            .expect("static template is valid"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let progress = |blobs: u64, records: u64| bar.set_message(format!("{blobs} blobs, {records} records"));
    let outcome = groupmgr::jobs::tenant_sync::run_with_progress(&app, &tenant, full, Some(&progress)).await;
    bar.finish_and_clear();
    match outcome {
        Ok(s) => {
            let a = &s.activity;
            println!(
                "tenant {tenant}: {} sync, {} groups, {} rows written; activity: {} audit blobs, {} records ({} about groups, {} repeats skipped), {} blobs lost, {} rows written, Teams report {}{}; {} requests, {:.1} s",
                if s.groups.full { "full" } else { "incremental" },
                s.groups.groups,
                s.groups.written,
                a.blobs,
                a.records,
                a.matched,
                a.duplicates,
                a.lost,
                a.rows_written,
                a.teams_report,
                if a.audit_feed {
                    ""
                } else {
                    " (audit feed off: GROUPMGR_PUBLISHER_ID is not set)"
                },
                s.requests,
                s.seconds
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn print(result: Result<String, cli::CommandError>) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Opens the configured store for a command that needs it.
async fn command_store() -> Result<std::sync::Arc<dyn store::Store>, String> {
    telemetry::init_cli();
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    store::open(&settings.database).await.map_err(|e| e.to_string())
}

fn parse_time(name: &str, raw: Option<&String>) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    raw.map(|r| {
        chrono::DateTime::parse_from_rfc3339(r)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| format!("--{name}: must be an RFC 3339 time like 2026-11-27T10:00:00Z"))
    })
    .transpose()
}

fn parse_tenant(raw: Option<&String>) -> Result<Option<groupmgr::domain::TenantId>, String> {
    raw.map(|t| groupmgr::domain::TenantId::parse(t).map_err(|e| e.to_string()))
        .transpose()
}

/// Ends a decrypting command: a summary on stderr; failure status if anything did not open.
fn finish(tally: Result<cli::logs::Tally, cli::CommandError>, what: &str) -> ExitCode {
    match tally {
        Ok(t) => {
            eprintln!("{} {what} opened, {} could not be opened", t.opened, t.failed);
            if t.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(e),
    }
}

async fn logs(command: LogsCommand) -> ExitCode {
    let LogsCommand::Decrypt {
        key,
        tenant,
        since,
        until,
        format,
        input,
    } = command;
    let key = match cli::logs::read_key(&key) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let (tenant, since, until) = match (
        parse_tenant(tenant.as_ref()),
        parse_time("since", since.as_ref()),
        parse_time("until", until.as_ref()),
    ) {
        (Ok(t), Ok(s), Ok(u)) => (t, s, u),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return fail(e),
    };
    let mut out = std::io::stdout().lock();
    let mut emit = |l: String| {
        use std::io::Write as _;
        let _ = writeln!(out, "{l}");
    };
    let tally = match input {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => cli::logs::decrypt_saved(&text, &key, tenant, format, &mut emit),
            Err(e) => return fail(format_args!("cannot read {}: {e}", path.display())),
        },
        None => {
            let store = match command_store().await {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            cli::logs::decrypt_from_store(store.as_ref(), &key, tenant, since, until, format, &mut emit).await
        }
    };
    finish(tally, "log entries")
}

async fn users(command: UsersCommand) -> ExitCode {
    let UsersCommand::List { key, tenant } = command;
    let key = match cli::logs::read_key(&key) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let tenant = match parse_tenant(tenant.as_ref()) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let store = match command_store().await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut emit = |l: String| println!("{l}");
    finish(
        cli::logs::users_list(store.as_ref(), &key, tenant, &mut emit).await,
        "licensed users",
    )
}

/// The settings `serve` needs and the opened store, or the exit status after saying why not.
async fn serve_settings_and_store() -> Result<
    (
        Settings,
        groupmgr::config::ServeSettings,
        std::sync::Arc<dyn store::Store>,
    ),
    ExitCode,
> {
    let settings = Settings::from_env().map_err(fail)?;
    let serve = settings.for_serve().map_err(fail)?;
    let store = store::open(&settings.database).await.map_err(fail)?;
    Ok((settings, serve, store))
}

async fn serve() -> ExitCode {
    let (settings, serve, store) = match serve_settings_and_store().await {
        Ok(parts) => parts,
        Err(code) => return code,
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
    let app = match app::start(settings, serve, store) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(event = "listening", addr = %addr, version = env!("CARGO_PKG_VERSION"));
    if !groupmgr::jobs::local_schedule::under_functions_host() {
        groupmgr::jobs::local_schedule::spawn(app.clone());
    }
    app::run(app, listener, app::shutdown_signal()).await;
    ExitCode::SUCCESS
}

async fn tenant(command: TenantCommand) -> ExitCode {
    let store = match command_store().await {
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
        TenantCommand::SetLogKey { tenant_id, public_key } => {
            cli::tenant_set_log_key(store, tenant_id, public_key).await
        }
        TenantCommand::Offboard { tenant_id } => cli::tenant_offboard(store, tenant_id).await,
        TenantCommand::SetSeats { tenant_id, seats } => cli::tenant_set_seats(store, tenant_id, seats).await,
        TenantCommand::SetExpiry { tenant_id, expires } => {
            cli::tenant_set_expiry(store, tenant_id, expires.as_deref()).await
        }
    };
    print(result)
}
