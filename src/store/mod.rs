//! GroupMgr's own SQL data, behind one `Store` trait with two implementations: SQLite (the
//! embedded default, `sqlite.rs`) and Azure SQL / SQL Server (`mssql.rs`). Both pass the same
//! contract suite (`tests/store_contract.rs`). Callers never see SQL; all SQL is parameterised.
//!
//! What is kept (ARCHITECTURE.md §6, and nothing else): tenants, licensed users by UPN blind
//! index (plus the UPN sealed to the tenant's key), sealed log data keys, and sealed logs.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;

use crate::crypto::{BlindIndex, SealedValue, TenantPublicKey};
use crate::domain::{Seats, TenantId, TenantRecord, TenantStatus};
use crate::secret::Secret;

pub mod mssql;
pub mod sqlite;

/// Why a store operation failed. Messages name the operation, never a parameter value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Duplicate,
    /// A compare-and-swap write lost: someone else changed the value first.
    #[error("changed by someone else")]
    Conflict,
    /// The database could not be reached or answered with an error; callers map it to 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not parse (a migration or a hand edit went wrong).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A tenant to register.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant_id: TenantId,
    pub seats: Seats,
    pub licence_expires: Option<NaiveDate>,
}

/// The outcome of presenting a user (by blind index) at the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Already counted against the tenant's seats; says whether the sealed copy of the UPN is
    /// stored yet (it cannot be before the tenant registers a log key).
    Existing { upn_sealed: bool },
    /// Newly counted: there was a free seat.
    Admitted,
    /// New, and every seat is taken.
    SeatsExhausted,
}

/// A licensed user as stored: the blind index, and the UPN sealed to the tenant's key when
/// the encrypted-logs work has sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensedUser {
    pub upn_index: BlindIndex,
    pub sealed_upn: Option<SealedValue>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A data key sealed to one of the tenant's public keys with HPKE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKeyRecord {
    pub key_id: uuid::Uuid,
    pub tenant_id: TenantId,
    /// Which tenant public key it is sealed to.
    pub public_key_id: String,
    /// HPKE encapsulated key.
    pub enc: Vec<u8>,
    pub sealed_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// The sender's public key when sealed in HPKE Auth mode (GroupMgr's publisher key, 32
    /// bytes); `None` for Base mode. As stored: the reader checks it (`decrypt::Opener`).
    pub sender_public_key: Option<Vec<u8>>,
}

/// One log entry: event code and message template in clear, sensitive fields sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub time: DateTime<Utc>,
    pub level: String,
    pub event: String,
    pub message: String,
    pub sealed: SealedValue,
}

/// One entry of the operators' trail (`groupmgr operators log`), hash-chained to the previous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorEntry {
    /// 1, 2, 3, …: a gap is a deleted entry.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `entra:<tenant id>/<object id>` or `os:<user>@<host>`.
    pub operator: String,
    /// The command, e.g. `tenant offboard`.
    pub command: String,
    /// The tenant whose data it changed or read (`None`: every tenant, e.g. `tenant list`).
    pub tenant_id: Option<TenantId>,
    /// What else identifies the act (never a secret).
    pub detail: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// A window of a tenant's logs, oldest first. `after` is the (time, id) of the last entry of
/// the previous page.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, uuid::Uuid)>,
    pub limit: u32,
}

/// GroupMgr's SQL data. Implementations are cheap to share (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Registers a tenant as `active`. `Duplicate` if it is already known.
    async fn add_tenant(&self, tenant: &NewTenant) -> StoreResult<TenantRecord>;
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<TenantRecord>>;
    /// All tenants, ordered by tenant id.
    async fn tenants(&self) -> StoreResult<Vec<TenantRecord>>;
    /// `NotFound` for an unknown tenant.
    async fn set_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()>;
    async fn set_seats(&self, id: &TenantId, seats: Seats) -> StoreResult<()>;
    async fn set_licence_expiry(&self, id: &TenantId, expires: Option<NaiveDate>) -> StoreResult<()>;
    /// Registers the tenant's new log public key (new data is sealed to it from now on).
    /// `NotFound` for unknown or offboarded tenants.
    async fn set_log_public_key(&self, id: &TenantId, key: &TenantPublicKey) -> StoreResult<()>;

    /// Counts a user against the tenant's seats, atomically: two new users racing for the last
    /// seat cannot both get it. An existing user's `last_seen` is refreshed at most hourly.
    async fn admit_user(
        &self,
        tenant: &TenantId,
        index: &BlindIndex,
        seats: Seats,
        now: DateTime<Utc>,
    ) -> StoreResult<Admission>;
    /// Stores the sealed UPN of an already admitted user (the encrypted copy).
    async fn set_sealed_upn(&self, tenant: &TenantId, index: &BlindIndex, upn: &SealedValue) -> StoreResult<()>;
    async fn licensed_users(&self, tenant: &TenantId) -> StoreResult<Vec<LicensedUser>>;
    async fn licensed_user_count(&self, tenant: &TenantId) -> StoreResult<u64>;

    async fn put_log_key(&self, key: &LogKeyRecord) -> StoreResult<()>;
    /// The tenant's sealed data keys, oldest first.
    async fn log_keys(&self, tenant: &TenantId) -> StoreResult<Vec<LogKeyRecord>>;
    /// Writes a batch of log entries in one transaction.
    async fn append_logs(&self, entries: &[LogRecord]) -> StoreResult<()>;
    async fn logs(&self, tenant: &TenantId, query: &LogQuery) -> StoreResult<Vec<LogRecord>>;

    /// Deletes the tenant's data keys, licensed users, job state, licence expiry and log key,
    /// and marks it offboarded (its logs become unreadable). Returns how many log entries
    /// remain to be purged.
    async fn offboard(&self, tenant: &TenantId, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Deletes the (unreadable) logs of tenants offboarded before `cutoff`. Returns how many
    /// entries were deleted.
    async fn purge_offboarded_logs(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;

    /// A piece of per-tenant state and its version.
    async fn get_state(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<(String, u64)>>;
    /// Writes state if its version is still `expected` (`None`: only if absent). Returns the
    /// new version, or `Conflict`.
    async fn put_state(&self, tenant: &TenantId, name: &str, value: &str, expected: Option<u64>) -> StoreResult<u64>;
    async fn delete_state(&self, tenant: &TenantId, name: &str) -> StoreResult<()>;
    /// Deletes every piece of the tenant's state. Returns how many there were.
    async fn forget_state(&self, tenant: &TenantId) -> StoreResult<u64>;

    /// The operators' trail: the latest entry, if any.
    async fn last_operator_entry(&self) -> StoreResult<Option<OperatorEntry>>;
    /// Appends an entry; `Duplicate` if its `seq` is taken (another operator appended first).
    async fn insert_operator_entry(&self, entry: &OperatorEntry) -> StoreResult<()>;
    /// Entries with `seq` greater than `after`, in order, at most `limit`.
    async fn operator_entries(&self, after: i64, limit: u32) -> StoreResult<Vec<OperatorEntry>>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
}

/// Where GroupMgr's own SQL data lives (`GROUPMGR_DATABASE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSetting {
    Sqlite(std::path::PathBuf),
    /// An ADO.NET-style SQL Server / Azure SQL connection string (may hold a password).
    SqlServer(Secret),
}

impl DatabaseSetting {
    /// `sqlite:<path>` or a SQL Server connection string. The error says what is wrong
    /// without repeating the value (it may hold a password).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:groupmgr.db");
            }
            return Ok(Self::Sqlite(path.into()));
        }
        let lower = raw.to_ascii_lowercase();
        if lower.contains("server=") || lower.contains("data source=") {
            return Ok(Self::SqlServer(Secret::new(raw)));
        }
        Err("must be sqlite:<path> or a SQL Server connection string (Server=tcp:host,1433;…)")
    }
}

/// Opens the store named by `GROUPMGR_DATABASE` and applies pending migrations.
pub async fn open(setting: &DatabaseSetting) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match setting {
        DatabaseSetting::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        DatabaseSetting::SqlServer(conn) => Arc::new(mssql::MssqlStore::connect(conn.expose()).await?),
    })
}

/// An hour: how stale `last_seen` may get before an admission writes it again, so that the
/// gate does not write to the database on every request.
pub const LAST_SEEN_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// How long the (unreadable) logs of an offboarded tenant are kept before `SyncScheduler`
/// purges them.
pub const OFFBOARDED_LOG_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);
