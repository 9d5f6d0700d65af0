//! Azure SQL / SQL Server store through tiberius, with a small bb8 pool of our own.
//!
//! Connections always use TDS 8.0 strict encryption (TLS before the first TDS byte, TLS 1.2+
//! through rustls). Authentication is either the SQL login in the connection string or an
//! Entra access token for `https://database.windows.net/`, fetched per new connection and never
//! stored: from the Function App's managed identity with `Authentication=Active Directory
//! Managed Identity`, or from the operator's Azure CLI sign-in with `Active Directory Default`. Migrations are T-SQL batches separated by `GO`
//! lines, applied once each under an application lock so that several instances starting
//! together do not race.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel, Row, ToSql};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::*;
use crate::secret::Secret;

/// The T-SQL migrations, in order: (version, script of `GO`-separated batches).
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/mssql/0001_init.sql")),
    (2, include_str!("../../migrations/mssql/0002_tenant_state.sql")),
    (3, include_str!("../../migrations/mssql/0003_log_key_sender.sql")),
    (4, include_str!("../../migrations/mssql/0004_operator_audit.sql")),
];

/// Creates the migrations ledger if it does not exist; run before any migration.
pub const BOOTSTRAP: &str = "IF OBJECT_ID(N'dbo.schema_migrations', N'U') IS NULL \
    CREATE TABLE dbo.schema_migrations (version INT NOT NULL PRIMARY KEY, applied_at DATETIME2(6) NOT NULL)";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const POOL_SIZE: u32 = 8;
const SQL_TOKEN_SCOPE: &str = "https://database.windows.net/.default";

/// Splits a migration script into its batches (the text between `GO` lines).
pub fn batches(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        if line.trim().eq_ignore_ascii_case("GO") {
            push_batch(&mut out, &mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    push_batch(&mut out, &mut current);
    out
}

fn push_batch(out: &mut Vec<String>, current: &mut String) {
    let code: String = current
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    if !code.trim().is_empty() {
        out.push(code.trim().to_string());
    }
    current.clear();
}

/// Supplies Entra access tokens for SQL logins. Production uses managed identity; tests give
/// a fixed token to a mock server.
#[async_trait]
pub trait SqlTokenSource: Send + Sync + 'static {
    async fn token(&self) -> Result<Secret, String>;
}

/// An Entra credential: the Function App's managed identity (system-assigned, or
/// user-assigned by client id), or, for an operator's CLI commands, their Azure CLI / azd
/// sign-in.
struct EntraTokens {
    credential: Arc<dyn azure_core::credentials::TokenCredential>,
    what: &'static str,
}

#[async_trait]
impl SqlTokenSource for EntraTokens {
    async fn token(&self) -> Result<Secret, String> {
        let token = self
            .credential
            .get_token(&[SQL_TOKEN_SCOPE], None)
            .await
            .map_err(|e| format!("{} token for Azure SQL: {e}", self.what))?;
        Ok(Secret::new(token.token.secret()))
    }
}

/// How connections log in.
#[derive(Clone)]
pub enum SqlAuth {
    /// Whatever the connection string says (SQL login).
    ConnectionString,
    Token(Arc<dyn SqlTokenSource>),
}

/// Reads the keys tiberius does not know (`Authentication`, and `User Id` as the client id of
/// a user-assigned identity) from an ADO.NET connection string.
fn ado_value(conn: &str, keys: &[&str]) -> Option<String> {
    conn.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let k = k.trim();
        keys.iter()
            .any(|want| k.eq_ignore_ascii_case(want))
            .then(|| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
    })
}

/// The host of tiberius's `host:port` (an IPv6 literal keeps its colons).
fn addr_host(addr: &str) -> String {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host).to_string()
}

/// Parses the connection string into a tiberius config (strict encryption forced) and the
/// way to log in.
pub fn parse_connection(conn: &str) -> anyhow::Result<(Config, SqlAuth)> {
    parse_connection_with(conn, None)
}

/// `parse_connection`, running the developer tools (`az`, `azd`) of `Active Directory
/// Default` through `executor` (tests stand in for the Azure CLI; `None`: the real one).
pub fn parse_connection_with(
    conn: &str,
    executor: Option<Arc<dyn azure_identity::Executor>>,
) -> anyhow::Result<(Config, SqlAuth)> {
    let mut config = Config::from_ado_string(conn)
        .map_err(|e| anyhow::anyhow!("GROUPMGR_DATABASE: invalid SQL Server connection string ({e})"))?;
    // Not checking the server's certificate makes TLS worthless against anyone on the path;
    // only a server on this machine (a container in development) may go unchecked.
    // The host as tiberius will connect to it; the flag wherever it appears (a repeated key
    // must not hide a later one), so that no spelling slips past.
    let trusts_any = conn.split(';').filter_map(|p| p.split_once('=')).any(|(k, v)| {
        let key: String = k.chars().filter(|c| !c.is_whitespace()).collect();
        let value = v.trim().trim_matches(|c| c == '\'' || c == '"');
        key.eq_ignore_ascii_case("TrustServerCertificate")
            && (value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("yes"))
    });
    if trusts_any && !crate::config::is_loopback_host(&addr_host(&config.get_addr())) {
        anyhow::bail!(
            "GROUPMGR_DATABASE: TrustServerCertificate=true is allowed only for a server on a loopback host; give the server's CA with TrustServerCertificateCA or use a certificate the system trusts"
        );
    }
    config.encryption(EncryptionLevel::Strict);
    config.application_name("groupmgr");
    let auth = match ado_value(conn, &["Authentication"]).map(|a| a.to_ascii_lowercase()) {
        None => SqlAuth::ConnectionString,
        Some(a) if a == "sqlpassword" => SqlAuth::ConnectionString,
        Some(a) if a == "active directory managed identity" || a == "active directory msi" => {
            let user_assigned = ado_value(conn, &["User Id", "UID", "User", "Username"]);
            let options = azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: user_assigned.map(azure_identity::UserAssignedId::ClientId),
                ..Default::default()
            };
            let credential = azure_identity::ManagedIdentityCredential::new(Some(options))
                .map_err(|e| anyhow::anyhow!("GROUPMGR_DATABASE: managed identity unavailable ({e})"))?;
            SqlAuth::Token(Arc::new(EntraTokens {
                credential,
                what: "managed identity",
            }))
        }
        // An operator running `groupmgr tenant …` from a workstation: their `az login`.
        Some(a) if a == "active directory default" => {
            let options = azure_identity::DeveloperToolsCredentialOptions { executor };
            let credential = azure_identity::DeveloperToolsCredential::new(Some(options))
                .map_err(|e| anyhow::anyhow!("GROUPMGR_DATABASE: Azure CLI credential unavailable ({e})"))?;
            SqlAuth::Token(Arc::new(EntraTokens {
                credential,
                what: "Azure CLI",
            }))
        }
        Some(_) => anyhow::bail!(
            "GROUPMGR_DATABASE: Authentication must be SqlPassword, Active Directory Managed Identity or Active Directory Default"
        ),
    };
    Ok((config, auth))
}

pub type TdsClient = Client<Compat<TcpStream>>;

/// bb8 connection manager: opens strict-TLS TDS connections, fetching a fresh token per
/// connection when token login is used.
pub struct TdsManager {
    config: Config,
    auth: SqlAuth,
}

impl TdsManager {
    pub fn new(config: Config, auth: SqlAuth) -> Self {
        Self { config, auth }
    }

    async fn open(&self) -> Result<TdsClient, String> {
        let mut config = self.config.clone();
        if let SqlAuth::Token(source) = &self.auth {
            let token = source.token().await?;
            config.authentication(AuthMethod::aad_token(token.expose()));
        }
        let tcp = TcpStream::connect(config.get_addr())
            .await
            .map_err(|e| format!("cannot reach SQL server: {e}"))?;
        tcp.set_nodelay(true).ok();
        let mut client = Client::connect(config, tcp.compat_write())
            .await
            .map_err(|e| format!("SQL login failed: {e}"))?;
        client
            .simple_query("SET XACT_ABORT ON")
            .await
            .map_err(|e| e.to_string())?
            .into_results()
            .await
            .map_err(|e| e.to_string())?;
        Ok(client)
    }
}

impl bb8::ManageConnection for TdsManager {
    type Connection = TdsClient;
    type Error = String;

    async fn connect(&self) -> Result<TdsClient, String> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.open())
            .await
            .map_err(|_| "timed out connecting to SQL server".to_string())?
    }

    async fn is_valid(&self, conn: &mut TdsClient) -> Result<(), String> {
        conn.simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?
            .into_results()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn has_broken(&self, _conn: &mut TdsClient) -> bool {
        false
    }
}

/// The SQL Server implementation of [`Store`].
#[derive(Clone)]
pub struct MssqlStore {
    pool: bb8::Pool<TdsManager>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Maps a tiberius error; 2627/2601 are primary-key / unique-index violations.
fn sql_err(e: tiberius::error::Error) -> StoreError {
    match &e {
        tiberius::error::Error::Server(token) if matches!(token.code(), 2627 | 2601) => StoreError::Duplicate,
        _ => unavailable(e),
    }
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn col<'a, T: tiberius::FromSql<'a>>(row: &'a Row, i: usize, name: &str) -> StoreResult<T> {
    row.try_get::<T, usize>(i)
        .map_err(|_| StoreError::Corrupt(format!("column {name}")))?
        .ok_or_else(|| StoreError::Corrupt(format!("column {name} is NULL")))
}

fn opt_col<'a, T: tiberius::FromSql<'a>>(row: &'a Row, i: usize, name: &str) -> StoreResult<Option<T>> {
    row.try_get::<T, usize>(i)
        .map_err(|_| StoreError::Corrupt(format!("column {name}")))
}

fn operator_entry(r: &Row) -> StoreResult<OperatorEntry> {
    let hash32 = |i: usize, what: &str| -> StoreResult<[u8; 32]> {
        <[u8; 32]>::try_from(col::<&[u8]>(r, i, what)?)
            .map_err(|_| StoreError::Corrupt(format!("operator_audit.{what}")))
    };
    Ok(OperatorEntry {
        seq: col(r, 0, "seq")?,
        at: utc(col(r, 1, "at")?),
        operator: col::<&str>(r, 2, "operator")?.to_string(),
        command: col::<&str>(r, 3, "command")?.to_string(),
        tenant_id: opt_col::<uuid::Uuid>(r, 4, "tenant_id")?
            .map(tenant_id_from)
            .transpose()?,
        detail: col::<&str>(r, 5, "detail")?.to_string(),
        prev_hash: hash32(6, "prev_hash")?,
        hash: hash32(7, "hash")?,
    })
}

fn tenant_id_from(u: uuid::Uuid) -> StoreResult<TenantId> {
    TenantId::parse(&u.to_string()).map_err(|_| StoreError::Corrupt("tenant_id".into()))
}

fn tenant_from_row(row: &Row) -> StoreResult<TenantRecord> {
    let seats: i32 = col(row, 2, "seats")?;
    Ok(TenantRecord {
        tenant_id: tenant_id_from(col(row, 0, "tenant_id")?)?,
        status: col::<&str>(row, 1, "status")?
            .parse()
            .map_err(|_| StoreError::Corrupt("tenants.status".into()))?,
        seats: u32::try_from(seats)
            .ok()
            .and_then(|n| Seats::new(n).ok())
            .ok_or_else(|| StoreError::Corrupt("tenants.seats".into()))?,
        licence_expires: opt_col::<NaiveDate>(row, 3, "licence_expires")?,
        log_key: opt_col::<&[u8]>(row, 4, "log_public_key")?
            .map(|k| {
                <[u8; 32]>::try_from(k)
                    .ok()
                    .and_then(|b| TenantPublicKey::from_bytes(b).ok())
                    .ok_or_else(|| StoreError::Corrupt("tenants.log_public_key".into()))
            })
            .transpose()?,
        created_at: utc(col(row, 5, "created_at")?),
        offboarded_at: opt_col::<NaiveDateTime>(row, 6, "offboarded_at")?.map(utc),
    })
}

fn sealed_from(key_id: uuid::Uuid, nonce: &[u8], ciphertext: &[u8]) -> StoreResult<SealedValue> {
    Ok(SealedValue {
        key_id,
        nonce: nonce
            .try_into()
            .map_err(|_| StoreError::Corrupt("nonce is not 12 bytes".into()))?,
        ciphertext: ciphertext.to_vec(),
    })
}

const TENANT_COLUMNS: &str = "tenant_id, status, seats, licence_expires, log_public_key, created_at, offboarded_at";

impl MssqlStore {
    /// Connects with the given connection string and migrates the database.
    pub async fn connect(conn: &str) -> anyhow::Result<Self> {
        let (config, auth) = parse_connection(conn)?;
        Self::with_manager(TdsManager::new(config, auth)).await
    }

    /// Builds the pool (one connection is opened eagerly so a bad setting fails start-up)
    /// and migrates.
    pub async fn with_manager(manager: TdsManager) -> anyhow::Result<Self> {
        let pool = bb8::Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(CONNECT_TIMEOUT)
            .test_on_check_out(false)
            .build(manager)
            .await
            .map_err(|e| anyhow::anyhow!("GROUPMGR_DATABASE: {e}"))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Builds the pool without touching the database (for pool tests against a mock server).
    pub fn unmigrated(pool: bb8::Pool<TdsManager>) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &bb8::Pool<TdsManager> {
        &self.pool
    }

    async fn conn(&self) -> StoreResult<bb8::PooledConnection<'_, TdsManager>> {
        self.pool.get().await.map_err(|e| unavailable(format!("{e:?}")))
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let run = |e: tiberius::error::Error| anyhow::anyhow!("migration failed: {e}");
        c.simple_query(BOOTSTRAP)
            .await
            .map_err(run)?
            .into_results()
            .await
            .map_err(run)?;
        c.simple_query(
            "EXEC sp_getapplock @Resource = 'groupmgr-migrations', @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 120000",
        )
        .await
        .map_err(run)?
        .into_results()
        .await
        .map_err(run)?;
        let outcome = async {
            for (version, script) in MIGRATIONS {
                let done = c
                    .query("SELECT 1 FROM dbo.schema_migrations WHERE version = @P1", &[version])
                    .await
                    .map_err(run)?
                    .into_row()
                    .await
                    .map_err(run)?
                    .is_some();
                if done {
                    continue;
                }
                c.simple_query("BEGIN TRANSACTION")
                    .await
                    .map_err(run)?
                    .into_results()
                    .await
                    .map_err(run)?;
                for batch in batches(script) {
                    c.simple_query(batch)
                        .await
                        .map_err(run)?
                        .into_results()
                        .await
                        .map_err(run)?;
                }
                c.execute(
                    "INSERT INTO dbo.schema_migrations (version, applied_at) VALUES (@P1, SYSUTCDATETIME())",
                    &[version],
                )
                .await
                .map_err(run)?;
                c.simple_query("COMMIT")
                    .await
                    .map_err(run)?
                    .into_results()
                    .await
                    .map_err(run)?;
            }
            Ok::<(), anyhow::Error>(())
        }
        .await;
        // XACT_ABORT rolled back a failed transaction; the session lock goes with the release.
        let _ = c
            .simple_query("EXEC sp_releaseapplock @Resource = 'groupmgr-migrations', @LockOwner = 'Session'")
            .await;
        outcome
    }

    async fn rows(&self, sql: &str, params: &[&dyn ToSql]) -> StoreResult<Vec<Row>> {
        let mut c = self.conn().await?;
        c.query(sql, params)
            .await
            .map_err(sql_err)?
            .into_first_result()
            .await
            .map_err(sql_err)
    }

    async fn exec(&self, sql: &str, params: &[&dyn ToSql]) -> StoreResult<u64> {
        let mut c = self.conn().await?;
        Ok(c.execute(sql, params).await.map_err(sql_err)?.total())
    }
}

#[async_trait]
impl Store for MssqlStore {
    async fn add_tenant(&self, t: &NewTenant) -> StoreResult<TenantRecord> {
        let created_at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
            .ok_or_else(|| StoreError::Corrupt("clock".into()))?;
        let seats = t.seats.get() as i32;
        self.exec(
            "INSERT INTO dbo.tenants (tenant_id, status, seats, licence_expires, created_at) VALUES (@P1, 'active', @P2, @P3, @P4)",
            &[t.tenant_id.as_uuid(), &seats, &t.licence_expires, &naive(created_at)],
        )
        .await?;
        Ok(TenantRecord {
            tenant_id: t.tenant_id,
            status: TenantStatus::Active,
            seats: t.seats,
            licence_expires: t.licence_expires,
            log_key: None,
            created_at,
            offboarded_at: None,
        })
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<TenantRecord>> {
        let rows = self
            .rows(
                &format!("SELECT {TENANT_COLUMNS} FROM dbo.tenants WHERE tenant_id = @P1"),
                &[id.as_uuid()],
            )
            .await?;
        rows.first().map(tenant_from_row).transpose()
    }

    async fn tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        // uniqueidentifier sorts by its last bytes first; sort by the text form like SQLite.
        let rows = self
            .rows(
                &format!("SELECT {TENANT_COLUMNS} FROM dbo.tenants ORDER BY CONVERT(NCHAR(36), tenant_id)"),
                &[],
            )
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn set_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()> {
        let n = self
            .exec(
                "UPDATE dbo.tenants SET status = @P2 WHERE tenant_id = @P1",
                &[id.as_uuid(), &status.as_str()],
            )
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn set_seats(&self, id: &TenantId, seats: Seats) -> StoreResult<()> {
        let seats = seats.get() as i32;
        let n = self
            .exec(
                "UPDATE dbo.tenants SET seats = @P2 WHERE tenant_id = @P1",
                &[id.as_uuid(), &seats],
            )
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn set_licence_expiry(&self, id: &TenantId, expires: Option<NaiveDate>) -> StoreResult<()> {
        let n = self
            .exec(
                "UPDATE dbo.tenants SET licence_expires = @P2 WHERE tenant_id = @P1",
                &[id.as_uuid(), &expires],
            )
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn admit_user(
        &self,
        tenant: &TenantId,
        index: &BlindIndex,
        seats: Seats,
        now: DateTime<Utc>,
    ) -> StoreResult<Admission> {
        let seats = seats.get() as i32;
        let index = index.0.as_slice();
        // Fast path without locks: a known user seen within the hour.
        let seen = self
            .rows(
                "SELECT last_seen, CAST(CASE WHEN sealed_upn IS NULL THEN 0 ELSE 1 END AS INT) FROM dbo.licensed_users WHERE tenant_id = @P1 AND upn_index = @P2",
                &[tenant.as_uuid(), &index],
            )
            .await?;
        if let Some(row) = seen.first() {
            let last_seen: NaiveDateTime = col(row, 0, "last_seen")?;
            let sealed: i32 = col(row, 1, "sealed")?;
            if utc(last_seen) >= now - LAST_SEEN_GRANULARITY {
                return Ok(Admission::Existing {
                    upn_sealed: sealed == 1,
                });
            }
        }
        // The tenant row is locked first (UPDLOCK) so admissions for one tenant serialise and
        // two new users cannot both take the last seat.
        const SQL: &str = "
            DECLARE @outcome INT;
            BEGIN TRANSACTION;
            SELECT @outcome = NULL FROM dbo.tenants WITH (UPDLOCK, ROWLOCK) WHERE tenant_id = @P1;
            UPDATE dbo.licensed_users SET last_seen = @P4, @outcome = CASE WHEN sealed_upn IS NULL THEN 0 ELSE 3 END
                WHERE tenant_id = @P1 AND upn_index = @P2;
            IF @outcome IS NULL
            BEGIN
                IF (SELECT COUNT(*) FROM dbo.licensed_users WHERE tenant_id = @P1) >= @P3
                    SET @outcome = 2;
                ELSE
                BEGIN
                    INSERT INTO dbo.licensed_users (tenant_id, upn_index, first_seen, last_seen) VALUES (@P1, @P2, @P4, @P4);
                    SET @outcome = 1;
                END
            END
            COMMIT;
            SELECT @outcome;";
        let rows = self.rows(SQL, &[tenant.as_uuid(), &index, &seats, &naive(now)]).await?;
        let outcome: i32 = rows
            .first()
            .map(|r| col(r, 0, "outcome"))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("admission returned no row".into()))?;
        match outcome {
            0 => Ok(Admission::Existing { upn_sealed: false }),
            3 => Ok(Admission::Existing { upn_sealed: true }),
            1 => Ok(Admission::Admitted),
            2 => Ok(Admission::SeatsExhausted),
            _ => Err(StoreError::Corrupt("admission outcome".into())),
        }
    }

    async fn set_log_public_key(&self, id: &TenantId, key: &TenantPublicKey) -> StoreResult<()> {
        let bytes = key.as_bytes().as_slice();
        let n = self
            .exec(
                "UPDATE dbo.tenants SET log_public_key = @P2, log_public_key_id = @P3 WHERE tenant_id = @P1 AND status <> 'offboarded'",
                &[id.as_uuid(), &bytes, &key.id()],
            )
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn purge_offboarded_logs(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM dbo.logs WHERE tenant_id IN (SELECT tenant_id FROM dbo.tenants WHERE status = 'offboarded' AND offboarded_at < @P1)",
            &[&naive(cutoff)],
        )
        .await
    }

    async fn set_sealed_upn(&self, tenant: &TenantId, index: &BlindIndex, upn: &SealedValue) -> StoreResult<()> {
        let (ix, nonce, ct) = (index.0.as_slice(), upn.nonce.as_slice(), upn.ciphertext.as_slice());
        let n = self
            .exec(
                "UPDATE dbo.licensed_users SET sealed_upn = @P3, upn_key_id = @P4, upn_nonce = @P5 WHERE tenant_id = @P1 AND upn_index = @P2",
                &[tenant.as_uuid(), &ix, &ct, &upn.key_id, &nonce],
            )
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn licensed_users(&self, tenant: &TenantId) -> StoreResult<Vec<LicensedUser>> {
        let rows = self
            .rows(
                "SELECT upn_index, sealed_upn, upn_key_id, upn_nonce, first_seen, last_seen FROM dbo.licensed_users WHERE tenant_id = @P1 ORDER BY first_seen, upn_index",
                &[tenant.as_uuid()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let ix: &[u8] = col(r, 0, "upn_index")?;
                let sealed = match (
                    opt_col::<&[u8]>(r, 1, "sealed_upn")?,
                    opt_col::<uuid::Uuid>(r, 2, "upn_key_id")?,
                    opt_col::<&[u8]>(r, 3, "upn_nonce")?,
                ) {
                    (Some(ct), Some(k), Some(n)) => Some(sealed_from(k, n, ct)?),
                    _ => None,
                };
                Ok(LicensedUser {
                    upn_index: BlindIndex(ix.try_into().map_err(|_| StoreError::Corrupt("upn_index".into()))?),
                    sealed_upn: sealed,
                    first_seen: utc(col(r, 4, "first_seen")?),
                    last_seen: utc(col(r, 5, "last_seen")?),
                })
            })
            .collect()
    }

    async fn licensed_user_count(&self, tenant: &TenantId) -> StoreResult<u64> {
        let rows = self
            .rows(
                "SELECT COUNT_BIG(*) FROM dbo.licensed_users WHERE tenant_id = @P1",
                &[tenant.as_uuid()],
            )
            .await?;
        let n: i64 = rows.first().map(|r| col(r, 0, "count")).transpose()?.unwrap_or(0);
        Ok(n.max(0) as u64)
    }

    async fn put_log_key(&self, k: &LogKeyRecord) -> StoreResult<()> {
        let (enc, sealed) = (k.enc.as_slice(), k.sealed_key.as_slice());
        let sender = k.sender_public_key.as_deref();
        self.exec(
            "INSERT INTO dbo.log_keys (key_id, tenant_id, public_key_id, enc, sealed_key, created_at, sender_public_key) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7)",
            &[&k.key_id, k.tenant_id.as_uuid(), &k.public_key_id.as_str(), &enc, &sealed, &naive(k.created_at), &sender],
        )
        .await
        .map(|_| ())
    }

    async fn log_keys(&self, tenant: &TenantId) -> StoreResult<Vec<LogKeyRecord>> {
        let rows = self
            .rows(
                "SELECT key_id, public_key_id, enc, sealed_key, created_at, sender_public_key FROM dbo.log_keys WHERE tenant_id = @P1 ORDER BY created_at, CONVERT(NCHAR(36), key_id)",
                &[tenant.as_uuid()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LogKeyRecord {
                    key_id: col(r, 0, "key_id")?,
                    tenant_id: *tenant,
                    public_key_id: col::<&str>(r, 1, "public_key_id")?.to_string(),
                    enc: col::<&[u8]>(r, 2, "enc")?.to_vec(),
                    sealed_key: col::<&[u8]>(r, 3, "sealed_key")?.to_vec(),
                    created_at: utc(col(r, 4, "created_at")?),
                    sender_public_key: opt_col::<&[u8]>(r, 5, "sender_public_key")?.map(<[u8]>::to_vec),
                })
            })
            .collect()
    }

    async fn append_logs(&self, entries: &[LogRecord]) -> StoreResult<()> {
        // 9 parameters a row; SQL Server allows 2,100 parameters a statement.
        const ROWS_PER_STATEMENT: usize = 200;
        let mut c = self.conn().await?;
        c.simple_query("BEGIN TRANSACTION")
            .await
            .map_err(sql_err)?
            .into_results()
            .await
            .map_err(sql_err)?;
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO dbo.logs (id, tenant_id, time, level, event, message, key_id, nonce, sealed) VALUES ",
            );
            let times: Vec<NaiveDateTime> = chunk.iter().map(|e| naive(e.time)).collect();
            let nonces: Vec<&[u8]> = chunk.iter().map(|e| e.sealed.nonce.as_slice()).collect();
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 9);
            for (i, e) in chunk.iter().enumerate() {
                let p = i * 9;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(@P{},@P{},@P{},@P{},@P{},@P{},@P{},@P{},@P{})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9
                ));
                params.extend_from_slice(&[
                    &e.id,
                    e.tenant_id.as_uuid(),
                    &times[i],
                    &e.level,
                    &e.event,
                    &e.message,
                    &e.sealed.key_id,
                    &nonces[i],
                    &e.sealed.ciphertext,
                ]);
            }
            c.execute(sql, &params).await.map_err(sql_err)?;
        }
        c.simple_query("COMMIT")
            .await
            .map_err(sql_err)?
            .into_results()
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    async fn logs(&self, tenant: &TenantId, q: &LogQuery) -> StoreResult<Vec<LogRecord>> {
        // DATETIME2's own range (0001-01-01 to 9999-12-31): chrono's MIN and MAX are far
        // outside it and tiberius cannot encode them.
        let floor = NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        let ceiling = NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
            .unwrap_or_default();
        let since = q.since.map(naive).unwrap_or(floor);
        let until = q.until.map(naive).unwrap_or(ceiling);
        let (after_time, after_id) = match q.after {
            Some((t, id)) => (naive(t), id),
            None => (floor, uuid::Uuid::nil()),
        };
        let limit = i64::from(q.limit);
        let rows = self
            .rows(
                "SELECT TOP (@P6) id, time, level, event, message, key_id, nonce, sealed FROM dbo.logs \
                 WHERE tenant_id = @P1 AND time >= @P2 AND time < @P3 \
                   AND (time > @P4 OR (time = @P4 AND id > @P5)) \
                 ORDER BY time, id",
                &[tenant.as_uuid(), &since, &until, &after_time, &after_id, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LogRecord {
                    id: col(r, 0, "id")?,
                    tenant_id: *tenant,
                    time: utc(col(r, 1, "time")?),
                    level: col::<&str>(r, 2, "level")?.to_string(),
                    event: col::<&str>(r, 3, "event")?.to_string(),
                    message: col::<&str>(r, 4, "message")?.to_string(),
                    sealed: sealed_from(col(r, 5, "key_id")?, col(r, 6, "nonce")?, col(r, 7, "sealed")?)?,
                })
            })
            .collect()
    }

    async fn offboard(&self, tenant: &TenantId, now: DateTime<Utc>) -> StoreResult<u64> {
        const SQL: &str = "
            BEGIN TRANSACTION;
            UPDATE dbo.tenants SET status = 'offboarded', offboarded_at = @P2, licence_expires = NULL, log_public_key = NULL, log_public_key_id = NULL
                WHERE tenant_id = @P1;
            IF @@ROWCOUNT = 0
            BEGIN
                ROLLBACK;
                SELECT CAST(-1 AS BIGINT);
                RETURN;
            END
            DELETE FROM dbo.log_keys WHERE tenant_id = @P1;
            DELETE FROM dbo.tenant_state WHERE tenant_id = @P1;
            DELETE FROM dbo.licensed_users WHERE tenant_id = @P1;
            COMMIT;
            SELECT COUNT_BIG(*) FROM dbo.logs WHERE tenant_id = @P1;";
        let rows = self.rows(SQL, &[tenant.as_uuid(), &naive(now)]).await?;
        let n: i64 = rows
            .first()
            .map(|r| col(r, 0, "count"))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("offboard returned no row".into()))?;
        if n < 0 { Err(StoreError::NotFound) } else { Ok(n as u64) }
    }

    async fn get_state(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<(String, u64)>> {
        let rows = self
            .rows(
                "SELECT value, version FROM dbo.tenant_state WHERE tenant_id = @P1 AND name = @P2",
                &[tenant.as_uuid(), &name],
            )
            .await?;
        rows.first()
            .map(|r| {
                let value: &str = col(r, 0, "value")?;
                let version: i64 = col(r, 1, "version")?;
                Ok((value.to_string(), version.max(0) as u64))
            })
            .transpose()
    }

    async fn put_state(&self, tenant: &TenantId, name: &str, value: &str, expected: Option<u64>) -> StoreResult<u64> {
        let now = naive(Utc::now());
        let changed = match expected {
            None => {
                self.exec(
                    "INSERT INTO dbo.tenant_state (tenant_id, name, value, version, updated_at) \
                     SELECT @P1, @P2, @P3, 1, @P4 WHERE NOT EXISTS \
                     (SELECT 1 FROM dbo.tenant_state WITH (UPDLOCK, HOLDLOCK) WHERE tenant_id = @P1 AND name = @P2)",
                    &[tenant.as_uuid(), &name, &value, &now],
                )
                .await?
            }
            Some(v) => {
                let v = v as i64;
                self.exec(
                    "UPDATE dbo.tenant_state SET value = @P3, version = version + 1, updated_at = @P4 \
                     WHERE tenant_id = @P1 AND name = @P2 AND version = @P5",
                    &[tenant.as_uuid(), &name, &value, &now, &v],
                )
                .await?
            }
        };
        if changed == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(expected.map_or(1, |v| v + 1))
    }

    async fn delete_state(&self, tenant: &TenantId, name: &str) -> StoreResult<()> {
        self.exec(
            "DELETE FROM dbo.tenant_state WHERE tenant_id = @P1 AND name = @P2",
            &[tenant.as_uuid(), &name],
        )
        .await
        .map(|_| ())
    }

    async fn forget_state(&self, tenant: &TenantId) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM dbo.tenant_state WHERE tenant_id = @P1",
            &[tenant.as_uuid()],
        )
        .await
    }

    async fn last_operator_entry(&self) -> StoreResult<Option<OperatorEntry>> {
        let rows = self
            .rows(
                "SELECT TOP (1) seq, at, operator, command, tenant_id, detail, prev_hash, hash FROM dbo.operator_audit ORDER BY seq DESC",
                &[],
            )
            .await?;
        rows.first().map(operator_entry).transpose()
    }

    async fn insert_operator_entry(&self, e: &OperatorEntry) -> StoreResult<()> {
        let tenant = e.tenant_id.map(|t| *t.as_uuid());
        let (prev, hash) = (e.prev_hash.as_slice(), e.hash.as_slice());
        self.exec(
            "INSERT INTO dbo.operator_audit (seq, at, operator, command, tenant_id, detail, prev_hash, hash) VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8)",
            &[&e.seq, &naive(e.at), &e.operator.as_str(), &e.command.as_str(), &tenant, &e.detail.as_str(), &prev, &hash],
        )
        .await
        .map(|_| ())
    }

    async fn operator_entries(&self, after: i64, limit: u32) -> StoreResult<Vec<OperatorEntry>> {
        let limit = i64::from(limit);
        let rows = self
            .rows(
                "SELECT TOP (@P2) seq, at, operator, command, tenant_id, detail, prev_hash, hash FROM dbo.operator_audit WHERE seq > @P1 ORDER BY seq",
                &[&after, &limit],
            )
            .await?;
        rows.iter().map(operator_entry).collect()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.rows("SELECT 1", &[]).await.map(|_| ())
    }
}
