//! The command line (ARCHITECTURE.md §5b), as clap types. Values are parsed into domain types
//! by clap itself (`TenantId`, `Seats`, dates, times), so a bad value is refused before any
//! command runs.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};

use crate::crypto::TenantPublicKey;
use crate::domain::{InvalidInput, Seats, TenantId};

#[derive(Parser)]
#[command(
    name = "groupmgr",
    version,
    about = "GroupMgr backend (Azure Functions custom handler)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// The operators' trail: who ran which command on which tenant, hash-chained.
    Operators {
        #[command(subcommand)]
        command: OperatorsCommand,
    },
    /// Run TenantSync for one tenant now (what the tenant-sync queue function does).
    Sync {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
        /// Ignore the saved delta link: read every group again.
        #[arg(long)]
        full: bool,
    },
}

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Print the trail, oldest first; with --verify, check its hash chain (exit status 1 if
    /// an entry was altered or deleted) and print its head.
    Log {
        #[arg(long)]
        verify: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a tenant log key pair: writes the private key file (mode 0600) and prints the
    /// public key to register with `groupmgr tenant set-log-key`.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print GroupMgr's publisher public key (from GROUPMGR_PUBLISHER_KEY): what readers of
    /// the logs check entries against (`logs decrypt --publisher`).
    Publisher,
}

#[derive(Subcommand)]
pub enum LogsCommand {
    /// Decrypt a tenant's logs with its private key, from the store or a saved
    /// `GET /api/logs` response.
    Decrypt {
        #[arg(long)]
        key: PathBuf,
        #[arg(long, value_parser = tenant_id)]
        tenant: Option<TenantId>,
        /// RFC 3339 time (inclusive).
        #[arg(long, value_parser = time)]
        since: Option<DateTime<Utc>>,
        /// RFC 3339 time (exclusive).
        #[arg(long, value_parser = time)]
        until: Option<DateTime<Utc>>,
        #[arg(long, value_enum, default_value = "text")]
        format: super::logs::Format,
        /// A saved `GET /api/logs` response (one JSON body, or one per line) instead of the store.
        #[arg(long)]
        input: Option<PathBuf>,
        /// GroupMgr's publisher public key (printed by `groupmgr keys publisher`; repeat it for
        /// keys used before a rotation): entries sealed by any other key are reported as forged.
        /// Default: GROUPMGR_PUBLISHER_KEY's public half, if set; else senders are named but not
        /// vouched for (a saved response's own `publisherKey` is never trusted).
        #[arg(long = "publisher", value_parser = public_key)]
        publishers: Vec<TenantPublicKey>,
        /// Entries not vouched for by a publisher key (unauthenticated, first-form, or not
        /// checked) fail the command too.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List licensed users with their UPNs, decrypted with the tenant's private key.
    List {
        #[arg(long)]
        key: PathBuf,
        #[arg(long, value_parser = tenant_id)]
        tenant: Option<TenantId>,
        /// GroupMgr's publisher public keys (see `logs decrypt --publisher`).
        #[arg(long = "publisher", value_parser = public_key)]
        publishers: Vec<TenantPublicKey>,
    },
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Register a tenant (active) with a seat count and optional licence expiry.
    Add {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
        #[arg(long, value_parser = seats)]
        seats: Seats,
        /// Last valid day of the licence (UTC), YYYY-MM-DD.
        #[arg(long, value_parser = expiry)]
        expires: Option<NaiveDate>,
    },
    /// List tenants with status, seats, seats in use and expiry.
    List,
    /// Suspend a tenant: its users are refused until it is activated again.
    Suspend {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
    },
    /// Re-activate a suspended tenant.
    Activate {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
    },
    /// Change a tenant's seat count.
    SetSeats {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
        #[arg(value_parser = seats)]
        seats: Seats,
    },
    /// Register the tenant's log public key (printed by `groupmgr keys generate`).
    SetLogKey {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
        /// Base64url: may begin with `-`, which is part of the key, not an option.
        #[arg(allow_hyphen_values = true)]
        public_key: String,
    },
    /// Offboard a tenant: delete its data keys and licensed users; its logs become unreadable.
    Offboard {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
    },
    /// Change (or with no date, remove) a tenant's licence expiry.
    SetExpiry {
        #[arg(value_parser = tenant_id)]
        tenant_id: TenantId,
        #[arg(value_parser = expiry)]
        expires: Option<NaiveDate>,
    },
}

fn tenant_id(raw: &str) -> Result<TenantId, InvalidInput> {
    TenantId::parse(raw)
}

fn public_key(raw: &str) -> Result<TenantPublicKey, InvalidInput> {
    TenantPublicKey::parse(raw)
}

fn seats(raw: &str) -> Result<Seats, InvalidInput> {
    Seats::parse(raw)
}

/// `--expires YYYY-MM-DD`.
pub fn expiry(raw: &str) -> Result<NaiveDate, InvalidInput> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| InvalidInput::new("expires", "must be a date like 2027-12-31"))
}

fn time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 time like 2026-11-27T10:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_log_key_beginning_with_a_hyphen_is_a_key() {
        let key = "-yfFdHlpL4Dra45KiCFz5v7GF1wVae_oEAElxGNJOFg";
        let tenant = "6f1c2b4a-3d5e-4f70-8a9b-0c1d2e3f4a5b";
        let cli = Cli::try_parse_from(["groupmgr", "tenant", "set-log-key", tenant, key]);
        assert!(cli.is_ok(), "{:?}", cli.err());
    }
}
