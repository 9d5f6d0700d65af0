//! The embedded default store: one SQLite file in WAL mode, migrations applied at open.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool. One connection behind
//! a mutex serialises our own writers; `BEGIN IMMEDIATE` and a busy timeout make the operator
//! CLI, running as another process on the same file, wait its turn instead of failing.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::*;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_tenant_state.sql")),
    (3, include_str!("../../migrations/sqlite/0003_log_key_sender.sql")),
    (4, include_str!("../../migrations/sqlite/0004_operator_audit.sql")),
];

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Self> {
            let conn = Connection::open(&path)
                .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", path.display()))?;
            Self::from_connection(conn)
        })
        .await?
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> anyhow::Result<Self> {
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL lets readers proceed while a writer commits; NORMAL sync is durable across
        // process crashes in WAL mode (only an OS crash can lose the last transactions).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A poisoned mutex means a panic mid-call; the connection itself is still valid
            // (rusqlite rolls back an unfinished transaction on drop), so keep using it.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT;",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done: bool = tx
            .query_row("SELECT 1 FROM schema_migrations WHERE version = ?1", [version], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !done {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, micros(Utc::now())],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

fn db_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(ref f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Duplicate
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Corrupt("timestamp out of range".into()))
}

fn parse_uuid(s: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|_| StoreError::Corrupt("invalid GUID".into()))
}

fn nonce(bytes: Vec<u8>) -> Result<[u8; 12], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("nonce is not 12 bytes".into()))
}

/// tenant_id, status, seats, licence_expires, log_public_key, created_at, offboarded_at
type TenantRow = (String, String, i64, Option<String>, Option<Vec<u8>>, i64, Option<i64>);

const TENANT_COLUMNS: &str = "tenant_id, status, seats, licence_expires, log_public_key, created_at, offboarded_at";

fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TenantRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn tenant_from_row(
    (id, status, seats, expires, log_key, created, offboarded): TenantRow,
) -> Result<TenantRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("tenants.{what}"));
    Ok(TenantRecord {
        tenant_id: TenantId::parse(&id).map_err(|_| corrupt("tenant_id"))?,
        status: status.parse().map_err(|_| corrupt("status"))?,
        seats: u32::try_from(seats)
            .ok()
            .and_then(|n| Seats::new(n).ok())
            .ok_or_else(|| corrupt("seats"))?,
        licence_expires: expires
            .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
            .transpose()
            .map_err(|_| corrupt("licence_expires"))?,
        log_key: log_key
            .map(|k| {
                <[u8; 32]>::try_from(k)
                    .ok()
                    .and_then(|b| TenantPublicKey::from_bytes(b).ok())
                    .ok_or_else(|| corrupt("log_public_key"))
            })
            .transpose()?,
        created_at: from_micros(created)?,
        offboarded_at: offboarded.map(from_micros).transpose()?,
    })
}

fn expect_one_row(changed: usize) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// key_id, tenant_id, public_key_id, enc, sealed_key, created_at
type LogKeyRow = (String, String, String, Vec<u8>, Vec<u8>, i64, Option<Vec<u8>>);

const OPERATOR_SELECT: &str =
    "SELECT seq, at, operator, command, tenant_id, detail, prev_hash, hash FROM operator_audit";

type OperatorRow = (i64, i64, String, String, Option<String>, String, Vec<u8>, Vec<u8>);

fn operator_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OperatorRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn operator_entry(r: OperatorRow) -> StoreResult<OperatorEntry> {
    let (seq, at, operator, command, tenant, detail, prev_hash, hash) = r;
    let hash32 = |v: Vec<u8>, what: &str| {
        <[u8; 32]>::try_from(v).map_err(|_| StoreError::Corrupt(format!("operator_audit.{what}")))
    };
    Ok(OperatorEntry {
        seq,
        at: from_micros(at)?,
        operator,
        command,
        tenant_id: tenant
            .map(|t| TenantId::parse(&t).map_err(|_| StoreError::Corrupt("operator_audit.tenant_id".into())))
            .transpose()?,
        detail,
        prev_hash: hash32(prev_hash, "prev_hash")?,
        hash: hash32(hash, "hash")?,
    })
}

fn log_key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogKeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

#[async_trait]
impl Store for SqliteStore {
    async fn add_tenant(&self, t: &NewTenant) -> StoreResult<TenantRecord> {
        let record = TenantRecord {
            tenant_id: t.tenant_id,
            status: TenantStatus::Active,
            seats: t.seats,
            licence_expires: t.licence_expires,
            log_key: None,
            // Stored with microsecond precision; round-trip exactly.
            created_at: from_micros(micros(Utc::now()))?,
            offboarded_at: None,
        };
        let r = record.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO tenants (tenant_id, status, seats, licence_expires, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    r.tenant_id.to_string(),
                    r.status.as_str(),
                    r.seats.get(),
                    r.licence_expires.map(|d| d.format("%Y-%m-%d").to_string()),
                    micros(r.created_at)
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await?;
        Ok(record)
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<TenantRecord>> {
        let id = id.to_string();
        self.with(move |c| {
            c.prepare_cached("SELECT tenant_id, status, seats, licence_expires, log_public_key, created_at, offboarded_at FROM tenants WHERE tenant_id = ?1")
                .and_then(|mut stmt| stmt.query_row([id], tenant_row).optional())
            .map_err(db_err)?
            .map(tenant_from_row)
            .transpose()
        })
        .await
    }

    async fn tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY tenant_id"))
                .map_err(db_err)?;
            let rows = stmt.query_map([], tenant_row).map_err(db_err)?;
            rows.map(|r| r.map_err(db_err).and_then(tenant_from_row)).collect()
        })
        .await
    }

    async fn set_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()> {
        let id = id.to_string();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE tenants SET status = ?2 WHERE tenant_id = ?1",
                    params![id, status.as_str()],
                )
                .map_err(db_err)?;
            expect_one_row(n)
        })
        .await
    }

    async fn set_seats(&self, id: &TenantId, seats: Seats) -> StoreResult<()> {
        let id = id.to_string();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE tenants SET seats = ?2 WHERE tenant_id = ?1",
                    params![id, seats.get()],
                )
                .map_err(db_err)?;
            expect_one_row(n)
        })
        .await
    }

    async fn set_licence_expiry(&self, id: &TenantId, expires: Option<NaiveDate>) -> StoreResult<()> {
        let id = id.to_string();
        let expires = expires.map(|d| d.format("%Y-%m-%d").to_string());
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE tenants SET licence_expires = ?2 WHERE tenant_id = ?1",
                    params![id, expires],
                )
                .map_err(db_err)?;
            expect_one_row(n)
        })
        .await
    }

    async fn set_log_public_key(&self, id: &TenantId, key: &TenantPublicKey) -> StoreResult<()> {
        let (id, bytes, key_id) = (id.to_string(), key.as_bytes().to_vec(), key.id().to_string());
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE tenants SET log_public_key = ?2, log_public_key_id = ?3 WHERE tenant_id = ?1 AND status <> 'offboarded'",
                    params![id, bytes, key_id],
                )
                .map_err(db_err)?;
            expect_one_row(n)
        })
        .await
    }

    async fn admit_user(
        &self,
        tenant: &TenantId,
        index: &BlindIndex,
        seats: Seats,
        now: DateTime<Utc>,
    ) -> StoreResult<Admission> {
        let tenant = tenant.to_string();
        let index = index.0;
        self.with(move |c| {
            let now_us = micros(now);
            let stale_before = micros(now - LAST_SEEN_GRANULARITY);
            // Fast path without a write lock: a known user seen within the hour.
            let seen: Option<(i64, bool)> = c
                .prepare_cached(
                    "SELECT last_seen, sealed_upn IS NOT NULL FROM licensed_users WHERE tenant_id = ?1 AND upn_index = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![tenant, index.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(db_err)?;
            if let Some((last_seen, upn_sealed)) = seen
                && last_seen >= stale_before
            {
                return Ok(Admission::Existing { upn_sealed });
            }
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let refreshed: Option<bool> = tx
                .query_row(
                    "UPDATE licensed_users SET last_seen = ?3 WHERE tenant_id = ?1 AND upn_index = ?2 RETURNING sealed_upn IS NOT NULL",
                    params![tenant, index.as_slice(), now_us],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let outcome = if let Some(upn_sealed) = refreshed {
                Admission::Existing { upn_sealed }
            } else {
                let used: i64 = tx
                    .query_row("SELECT COUNT(*) FROM licensed_users WHERE tenant_id = ?1", [&tenant], |r| r.get(0))
                    .map_err(db_err)?;
                if used >= i64::from(seats.get()) {
                    Admission::SeatsExhausted
                } else {
                    tx.execute(
                        "INSERT INTO licensed_users (tenant_id, upn_index, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)",
                        params![tenant, index.as_slice(), now_us],
                    )
                    .map_err(db_err)?;
                    Admission::Admitted
                }
            };
            tx.commit().map_err(db_err)?;
            Ok(outcome)
        })
        .await
    }

    async fn set_sealed_upn(&self, tenant: &TenantId, index: &BlindIndex, upn: &SealedValue) -> StoreResult<()> {
        let (tenant, index, upn) = (tenant.to_string(), index.0, upn.clone());
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE licensed_users SET sealed_upn = ?3, upn_key_id = ?4, upn_nonce = ?5 WHERE tenant_id = ?1 AND upn_index = ?2",
                    params![tenant, index.as_slice(), upn.ciphertext, upn.key_id.to_string(), upn.nonce.as_slice()],
                )
                .map_err(db_err)?;
            expect_one_row(n)
        })
        .await
    }

    async fn licensed_users(&self, tenant: &TenantId) -> StoreResult<Vec<LicensedUser>> {
        let tenant = tenant.to_string();
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT upn_index, sealed_upn, upn_key_id, upn_nonce, first_seen, last_seen FROM licensed_users WHERE tenant_id = ?1 ORDER BY first_seen, upn_index",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([tenant], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Option<Vec<u8>>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<Vec<u8>>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .map_err(db_err)?;
            rows.map(|row| {
                let (ix, sealed, key_id, nonce_bytes, first, last) = row.map_err(db_err)?;
                let upn_index = BlindIndex(
                    ix.try_into().map_err(|_| StoreError::Corrupt("upn_index is not 32 bytes".into()))?,
                );
                let sealed_upn = match (sealed, key_id, nonce_bytes) {
                    (Some(ciphertext), Some(k), Some(n)) => Some(SealedValue {
                        key_id: parse_uuid(&k)?,
                        nonce: nonce(n)?,
                        ciphertext,
                    }),
                    _ => None,
                };
                Ok(LicensedUser {
                    upn_index,
                    sealed_upn,
                    first_seen: from_micros(first)?,
                    last_seen: from_micros(last)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn licensed_user_count(&self, tenant: &TenantId) -> StoreResult<u64> {
        let tenant = tenant.to_string();
        self.with(move |c| {
            let n: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM licensed_users WHERE tenant_id = ?1",
                    [tenant],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn put_log_key(&self, key: &LogKeyRecord) -> StoreResult<()> {
        let k = key.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO log_keys (key_id, tenant_id, public_key_id, enc, sealed_key, created_at, sender_public_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![k.key_id.to_string(), k.tenant_id.to_string(), k.public_key_id, k.enc, k.sealed_key, micros(k.created_at), k.sender_public_key],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn log_keys(&self, tenant: &TenantId) -> StoreResult<Vec<LogKeyRecord>> {
        let tenant = tenant.to_string();
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT key_id, tenant_id, public_key_id, enc, sealed_key, created_at, sender_public_key FROM log_keys WHERE tenant_id = ?1 ORDER BY created_at, key_id",
                )
                .map_err(db_err)?;
            let rows = stmt.query_map([tenant], log_key_from_row).map_err(db_err)?;
            rows.map(|row| {
                let (key_id, tenant_id, public_key_id, enc, sealed_key, created, sender_public_key) = row.map_err(db_err)?;
                Ok(LogKeyRecord {
                    key_id: parse_uuid(&key_id)?,
                    tenant_id: TenantId::parse(&tenant_id).map_err(|_| StoreError::Corrupt("log_keys.tenant_id".into()))?,
                    public_key_id,
                    enc,
                    sealed_key,
                    created_at: from_micros(created)?,
                    sender_public_key,
                })
            })
            .collect()
        })
        .await
    }

    async fn append_logs(&self, entries: &[LogRecord]) -> StoreResult<()> {
        let entries = entries.to_vec();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO logs (id, tenant_id, time, level, event, message, key_id, nonce, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(db_err)?;
                for e in &entries {
                    stmt.execute(params![
                        e.id.to_string(),
                        e.tenant_id.to_string(),
                        micros(e.time),
                        e.level,
                        e.event,
                        e.message,
                        e.sealed.key_id.to_string(),
                        e.sealed.nonce.as_slice(),
                        e.sealed.ciphertext
                    ])
                    .map_err(db_err)?;
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn logs(&self, tenant: &TenantId, q: &LogQuery) -> StoreResult<Vec<LogRecord>> {
        let tenant_id = *tenant;
        let q = q.clone();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, time, level, event, message, key_id, nonce, sealed FROM logs \
                     WHERE tenant_id = ?1 AND time >= ?2 AND time < ?3 \
                       AND (time > ?4 OR (time = ?4 AND id > ?5)) \
                     ORDER BY time, id LIMIT ?6",
                )
                .map_err(db_err)?;
            let (after_time, after_id) = match q.after {
                Some((t, id)) => (micros(t), id.to_string()),
                None => (i64::MIN, String::new()),
            };
            let rows = stmt
                .query_map(
                    params![
                        tenant_id.to_string(),
                        q.since.map(micros).unwrap_or(i64::MIN),
                        q.until.map(micros).unwrap_or(i64::MAX),
                        after_time,
                        after_id,
                        q.limit
                    ],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Vec<u8>>(6)?,
                            r.get::<_, Vec<u8>>(7)?,
                        ))
                    },
                )
                .map_err(db_err)?;
            rows.map(|row| {
                let (id, time, level, event, message, key_id, nonce_bytes, ciphertext) = row.map_err(db_err)?;
                Ok(LogRecord {
                    id: parse_uuid(&id)?,
                    tenant_id,
                    time: from_micros(time)?,
                    level,
                    event,
                    message,
                    sealed: SealedValue {
                        key_id: parse_uuid(&key_id)?,
                        nonce: nonce(nonce_bytes)?,
                        ciphertext,
                    },
                })
            })
            .collect()
        })
        .await
    }

    async fn offboard(&self, tenant: &TenantId, now: DateTime<Utc>) -> StoreResult<u64> {
        let tenant = tenant.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let n = tx
                .execute(
                    "UPDATE tenants SET status = 'offboarded', offboarded_at = ?2, licence_expires = NULL, log_public_key = NULL, log_public_key_id = NULL WHERE tenant_id = ?1",
                    params![tenant, micros(now)],
                )
                .map_err(db_err)?;
            expect_one_row(n)?;
            tx.execute("DELETE FROM log_keys WHERE tenant_id = ?1", [&tenant]).map_err(db_err)?;
            tx.execute("DELETE FROM tenant_state WHERE tenant_id = ?1", [&tenant]).map_err(db_err)?;
            tx.execute("DELETE FROM licensed_users WHERE tenant_id = ?1", [&tenant]).map_err(db_err)?;
            let remaining: i64 = tx
                .query_row("SELECT COUNT(*) FROM logs WHERE tenant_id = ?1", [&tenant], |r| r.get(0))
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(remaining.max(0) as u64)
        })
        .await
    }

    async fn purge_offboarded_logs(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.with(move |c| {
            let n = c
                .execute(
                    "DELETE FROM logs WHERE tenant_id IN (SELECT tenant_id FROM tenants WHERE status = 'offboarded' AND offboarded_at < ?1)",
                    [micros(cutoff)],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn get_state(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<(String, u64)>> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.with(move |c| {
            c.prepare_cached("SELECT value, version FROM tenant_state WHERE tenant_id = ?1 AND name = ?2")
                .and_then(|mut stmt| {
                    stmt.query_row(params![tenant, name], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()
                })
                .map(|row| row.map(|(v, ver)| (v, ver.max(0) as u64)))
                .map_err(db_err)
        })
        .await
    }

    async fn put_state(&self, tenant: &TenantId, name: &str, value: &str, expected: Option<u64>) -> StoreResult<u64> {
        let (tenant, name, value) = (tenant.to_string(), name.to_string(), value.to_string());
        self.with(move |c| {
            let now = micros(Utc::now());
            let changed = match expected {
                None => c.execute(
                    "INSERT INTO tenant_state (tenant_id, name, value, version, updated_at) VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT DO NOTHING",
                    params![tenant, name, value, now],
                ),
                Some(v) => c.execute(
                    "UPDATE tenant_state SET value = ?3, version = version + 1, updated_at = ?4 WHERE tenant_id = ?1 AND name = ?2 AND version = ?5",
                    params![tenant, name, value, now, v as i64],
                ),
            }
            .map_err(db_err)?;
            if changed == 0 {
                return Err(StoreError::Conflict);
            }
            Ok(expected.map_or(1, |v| v + 1))
        })
        .await
    }

    async fn delete_state(&self, tenant: &TenantId, name: &str) -> StoreResult<()> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM tenant_state WHERE tenant_id = ?1 AND name = ?2",
                params![tenant, name],
            )
            .map(|_| ())
            .map_err(db_err)
        })
        .await
    }

    async fn forget_state(&self, tenant: &TenantId) -> StoreResult<u64> {
        let tenant = tenant.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM tenant_state WHERE tenant_id = ?1", [tenant])
                .map(|n| n as u64)
                .map_err(db_err)
        })
        .await
    }

    async fn last_operator_entry(&self) -> StoreResult<Option<OperatorEntry>> {
        self.with(|c| {
            c.query_row(
                &format!("{OPERATOR_SELECT} ORDER BY seq DESC LIMIT 1"),
                [],
                operator_from_row,
            )
            .optional()
            .map_err(db_err)?
            .map(operator_entry)
            .transpose()
        })
        .await
    }

    async fn insert_operator_entry(&self, e: &OperatorEntry) -> StoreResult<()> {
        let e = e.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO operator_audit (seq, at, operator, command, tenant_id, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    e.seq,
                    micros(e.at),
                    e.operator,
                    e.command,
                    e.tenant_id.map(|t| t.to_string()),
                    e.detail,
                    e.prev_hash.to_vec(),
                    e.hash.to_vec()
                ],
            )
            .map(|_| ())
            .map_err(db_err)
        })
        .await
    }

    async fn operator_entries(&self, after: i64, limit: u32) -> StoreResult<Vec<OperatorEntry>> {
        self.with(move |c| {
            let mut stmt = c
                .prepare(&format!("{OPERATOR_SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![after, limit], operator_from_row)
                .map_err(db_err)?;
            rows.map(|r| operator_entry(r.map_err(db_err)?)).collect()
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }
}
