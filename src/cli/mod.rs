//! The `groupmgr` command line: its arguments (`args.rs`), and one function per command —
//! `serve` and `dev` start the server (`crate::startup`), `tenant …` (`tenant.rs`), `keys`
//! (`keys.rs`), `logs` and `users` (`logs.rs`), `sync`. Every command reads the settings of
//! ARCHITECTURE.md §3; an error is one line on stderr with a non-zero exit status.

mod args;
pub mod keys;
pub mod logs;
pub mod operators;
pub mod tenant;

pub use args::{Cli, Command, KeysCommand, LogsCommand, OperatorsCommand, TenantCommand, UsersCommand};

use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::{InvalidInput, TenantId};
use crate::startup::{Application, StartOptions, shutdown_signal};
use crate::store::{Store, StoreError};

/// An operator command's failure: one line, no secrets.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Input(#[from] InvalidInput),
    #[error("tenant {0} is not registered")]
    UnknownTenant(TenantId),
    #[error("tenant {0} is already registered")]
    Duplicate(TenantId),
    #[error("database error: {0}")]
    Store(StoreError),
    #[error("{0}")]
    KeyFile(#[from] crate::crypto::KeyFileError),
    #[error("{0}")]
    Other(String),
}

fn store_err(tenant: TenantId) -> impl Fn(StoreError) -> CommandError {
    move |e| match e {
        StoreError::NotFound => CommandError::UnknownTenant(tenant),
        StoreError::Duplicate => CommandError::Duplicate(tenant),
        other => CommandError::Store(other),
    }
}

/// Parses the command line; a usage error is one line on stderr with status 2 (help and
/// version print as clap prints them).
pub fn parse() -> Result<Cli, ExitCode> {
    use clap::Parser as _;
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // clap's message, on one line: what is wrong and, for missing arguments, which ones.
        let text = e.render().to_string();
        let message: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .filter(|l| !l.is_empty())
            .collect();
        let message = message.join(" ").replacen("error: ", "", 1);
        eprintln!("groupmgr: {message}");
        ExitCode::from(2)
    })
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        #[cfg(feature = "dev-sim")]
        Command::Dev => crate::dev::run().await.map_err(|e| e.to_string()),
        Command::Tenant { command } => tenant(command).await,
        Command::Keys {
            command: KeysCommand::Generate { out },
        } => keys::generate(&out)
            .map(|text| println!("{text}"))
            .map_err(|e| e.to_string()),
        Command::Keys {
            command: KeysCommand::Publisher,
        } => publisher_from_env().and_then(|key| match key {
            Some(k) => {
                println!("{}", keys::publisher(&k));
                Ok(())
            }
            None => Err("GROUPMGR_PUBLISHER_KEY is not set (base64 of 32 random bytes, e.g. `openssl rand -base64 32`, kept in Key Vault)".into()),
        }),
        Command::Logs { command } => logs(command).await,
        Command::Users {
            command: UsersCommand::List { key, tenant, publishers },
        } => users(&key, tenant, publishers).await,
        Command::Sync { tenant_id, full } => sync(tenant_id, full).await,
        Command::Operators {
            command: OperatorsCommand::Log { verify },
        } => operators_log(verify).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("groupmgr: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let application = Application::build(settings, StartOptions::production())
        .await
        .map_err(|e| e.to_string())?;
    application.run_until_stopped(shutdown_signal()).await;
    Ok(())
}

/// The settings and the opened store, for a command that works on the database.
async fn settings_and_store() -> Result<(Settings, Arc<dyn Store>), String> {
    crate::telemetry::init_cli();
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let store = crate::store::open(&settings.database)
        .await
        .map_err(|e| e.to_string())?;
    Ok((settings, store))
}

/// Appends this command to the operators' trail before it runs; it does not run if that fails.
async fn audited(
    settings: &Settings,
    store: &dyn Store,
    command: &str,
    tenant: Option<TenantId>,
    detail: &str,
) -> Result<(), String> {
    let trail = operators::Trail::open(settings).await.map_err(|e| e.to_string())?;
    trail
        .append(store, command, tenant, detail)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What the trail says of a `tenant …` command: its name, tenant and details.
fn tenant_act(command: &TenantCommand) -> (&'static str, Option<TenantId>, String) {
    match command {
        TenantCommand::Add {
            tenant_id,
            seats,
            expires,
        } => (
            "tenant add",
            Some(*tenant_id),
            format!(
                "seats={} expires={}",
                seats.get(),
                expires.map_or_else(|| "none".into(), |d| d.to_string())
            ),
        ),
        TenantCommand::List => ("tenant list", None, String::new()),
        TenantCommand::Suspend { tenant_id } => ("tenant suspend", Some(*tenant_id), String::new()),
        TenantCommand::Activate { tenant_id } => ("tenant activate", Some(*tenant_id), String::new()),
        TenantCommand::SetSeats { tenant_id, seats } => {
            ("tenant set-seats", Some(*tenant_id), format!("seats={}", seats.get()))
        }
        TenantCommand::SetLogKey { tenant_id, public_key } => (
            "tenant set-log-key",
            Some(*tenant_id),
            crate::crypto::TenantPublicKey::parse(public_key)
                .map(|k| format!("key-id={}", k.id()))
                .unwrap_or_else(|_| "invalid key".into()),
        ),
        TenantCommand::Offboard { tenant_id } => ("tenant offboard", Some(*tenant_id), String::new()),
        TenantCommand::SetExpiry { tenant_id, expires } => (
            "tenant set-expiry",
            Some(*tenant_id),
            format!("expires={}", expires.map_or_else(|| "none".into(), |d| d.to_string())),
        ),
    }
}

/// `operators log [--verify]`.
async fn operators_log(verify: bool) -> Result<(), String> {
    let (settings, store) = settings_and_store().await?;
    let key = operators::key(&settings).map_err(|e| e.to_string())?;
    let mut emit = |l: String| println!("{l}");
    let v = operators::log(store.as_ref(), &key, verify, &mut emit)
        .await
        .map_err(|e| e.to_string())?;
    if !verify {
        return Ok(());
    }
    for b in &v.breaks {
        eprintln!("broken: {b}");
    }
    match &v.head {
        Some((seq, hash)) => eprintln!("{} entries; head: entry {seq}, hash {hash}", v.entries),
        None => eprintln!("the trail is empty"),
    }
    if v.breaks.is_empty() {
        Ok(())
    } else {
        Err(format!("the operators' trail is broken in {} places", v.breaks.len()))
    }
}

async fn tenant(command: TenantCommand) -> Result<(), String> {
    let (settings, store_arc) = settings_and_store().await?;
    let store = store_arc.as_ref();
    let (act, tenant_id, detail) = tenant_act(&command);
    audited(&settings, store, act, tenant_id, &detail).await?;
    let text = match command {
        TenantCommand::Add {
            tenant_id,
            seats,
            expires,
        } => tenant::add(store, tenant_id, seats, expires).await,
        TenantCommand::List => tenant::list(store).await,
        TenantCommand::Suspend { tenant_id } => tenant::suspend(store, tenant_id).await,
        TenantCommand::Activate { tenant_id } => tenant::activate(store, tenant_id).await,
        TenantCommand::SetSeats { tenant_id, seats } => tenant::set_seats(store, tenant_id, seats).await,
        TenantCommand::SetLogKey { tenant_id, public_key } => tenant::set_log_key(store, tenant_id, &public_key).await,
        TenantCommand::Offboard { tenant_id } => {
            let state = crate::jobs::state::open(&settings, &store_arc).map_err(|e| e.to_string())?;
            tenant::offboard(store, state.as_ref(), tenant_id).await
        }
        TenantCommand::SetExpiry { tenant_id, expires } => tenant::set_expiry(store, tenant_id, expires).await,
    };
    println!("{}", text.map_err(|e| e.to_string())?);
    Ok(())
}

/// GroupMgr's publisher key, when `GROUPMGR_PUBLISHER_KEY` is set (only that setting is read:
/// a customer decrypting a saved response has no other).
fn publisher_from_env() -> Result<Option<Arc<crate::crypto::PublisherKey>>, String> {
    Settings::from_source(|name| {
        (name == "GROUPMGR_PUBLISHER_KEY")
            .then(|| std::env::var(name).ok())
            .flatten()
    })
    .map(|s| s.publisher_key)
    .map_err(|e| e.to_string())
}

/// The publisher public keys a reader checks against: those named, else ours if configured.
fn publishers_to_check(
    named: Vec<crate::crypto::TenantPublicKey>,
) -> Result<Vec<crate::crypto::TenantPublicKey>, String> {
    if !named.is_empty() {
        return Ok(named);
    }
    Ok(publisher_from_env()?.map(|k| k.public().clone()).into_iter().collect())
}

/// Ends a decrypting command: a summary on stderr; a failure if anything did not open (or,
/// `strict`, was not vouched for by a publisher key).
fn finish(tally: Result<logs::Tally, CommandError>, what: &str, strict: bool) -> Result<(), String> {
    let t = tally.map_err(|e| e.to_string())?;
    eprintln!(
        "{} {what} opened ({} of them not vouched for by GroupMgr's publisher key), {} could not be opened (forged, tampered or unreadable)",
        t.opened, t.unauthenticated, t.failed
    );
    if t.failed > 0 {
        Err(format!("{} {what} could not be opened", t.failed))
    } else if strict && t.unauthenticated > 0 {
        Err(format!(
            "{} {what} are not vouched for by GroupMgr's publisher key (--strict)",
            t.unauthenticated
        ))
    } else {
        Ok(())
    }
}

/// Audits a command that reads the logs or users of the tenants `key` opens: one entry per
/// tenant it will read.
async fn audited_reads(
    settings: &Settings,
    store: &dyn Store,
    command: &str,
    key: &crate::crypto::TenantPrivateKey,
    tenant: Option<TenantId>,
    detail: &str,
) -> Result<(), String> {
    let tenants = logs::tenants_for_key(store, key, tenant)
        .await
        .map_err(|e| e.to_string())?;
    let trail = operators::Trail::open(settings).await.map_err(|e| e.to_string())?;
    for t in tenants {
        trail
            .append(store, command, Some(t), detail)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn logs(command: LogsCommand) -> Result<(), String> {
    let LogsCommand::Decrypt {
        key,
        tenant,
        since,
        until,
        format,
        input,
        publishers,
        strict,
    } = command;
    let key = logs::read_key(&key).map_err(|e| e.to_string())?;
    let publishers = publishers_to_check(publishers)?;
    let mut out = std::io::stdout().lock();
    let mut emit = |l: String| {
        use std::io::Write as _;
        let _ = writeln!(out, "{l}");
    };
    let tally = match input {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            logs::decrypt_saved(&text, &key, &publishers, tenant, format, &mut emit)
        }
        None => {
            let (settings, store) = settings_and_store().await?;
            let window = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or_else(|| "-".into(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            };
            let detail = format!(
                "key-id={} since={} until={}",
                key.public().id(),
                window(since),
                window(until)
            );
            audited_reads(&settings, store.as_ref(), "logs decrypt", &key, tenant, &detail).await?;
            logs::decrypt_from_store(
                store.as_ref(),
                &key,
                &publishers,
                tenant,
                since,
                until,
                format,
                &mut emit,
            )
            .await
        }
    };
    finish(tally, "log entries", strict)
}

async fn users(
    key: &std::path::Path,
    tenant: Option<TenantId>,
    publishers: Vec<crate::crypto::TenantPublicKey>,
) -> Result<(), String> {
    let key = logs::read_key(key).map_err(|e| e.to_string())?;
    let publishers = publishers_to_check(publishers)?;
    let (settings, store) = settings_and_store().await?;
    let detail = format!("key-id={}", key.public().id());
    audited_reads(&settings, store.as_ref(), "users list", &key, tenant, &detail).await?;
    let mut emit = |l: String| println!("{l}");
    finish(
        logs::users_list(store.as_ref(), &key, &publishers, tenant, &mut emit).await,
        "licensed users",
        false,
    )
}

/// `groupmgr sync`: one tenant's `TenantSync` now, with a spinner on a terminal (hidden
/// otherwise) counting audit blobs and records as they stream, then a one-line summary.
async fn sync(tenant: TenantId, full: bool) -> Result<(), String> {
    let (settings, store) = settings_and_store().await?;
    let serve = settings.for_serve().map_err(|e| e.to_string())?;
    audited(&settings, store.as_ref(), "sync", Some(tenant), &format!("full={full}")).await?;
    let app = crate::app::App::new(settings, serve, store, None, Default::default()).map_err(|e| e.to_string())?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} audit feed: {msg}")
            .expect("static template is valid"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let progress = |blobs: u64, records: u64| bar.set_message(format!("{blobs} blobs, {records} records"));
    let request = crate::jobs::TenantSyncMessage {
        tenant_id: tenant,
        scheduled_at: chrono::Utc::now(),
        full,
        manual: true,
    };
    let outcome = crate::jobs::tenant_sync::run_to_completion(&app, &tenant, &request, Some(&progress)).await;
    bar.finish_and_clear();
    use crate::jobs::tenant_sync::Completion;
    match outcome.map_err(|e| e.to_string())? {
        Completion::Finished(summary) => println!("tenant {tenant}: {summary}"),
        Completion::AlreadyRunning => println!("tenant {tenant}: a sync is already running; it does the work"),
        Completion::Deferred(c) => {
            return Err(format!(
                "tenant {tenant}: the sync cannot proceed: {} ({}); next scheduled attempt {}",
                c.kind.as_str(),
                c.detail,
                c.next_attempt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
    }
    Ok(())
}
