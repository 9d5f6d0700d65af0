//! What GroupMgr's own database may hold (ARCHITECTURE.md §6, the security policy): tenant ids
//! and licences, encrypted UPNs with their blind index, sealed logs and sealed data keys, and
//! job state — nothing else, in either store. And what offboarding leaves: the tenant's id, its
//! offboarding date and its (unreadable) logs awaiting purge; its job state is gone wherever it
//! lived.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use m365_sim::directory::{CONTOSO, FABRIKAM};

/// Every table and column the policy allows, with the policy's reason.
const ALLOWED: &[(&str, &[&str])] = &[
    // Tenant id and licence; the tenant's registered log public key (public by design).
    (
        "tenants",
        &[
            "tenant_id",
            "status",
            "seats",
            "licence_expires",
            "log_public_key",
            "log_public_key_id",
            "created_at",
            "offboarded_at",
        ],
    ),
    // Encrypted UPNs (sealed to the customer's key) with their blind index.
    (
        "licensed_users",
        &[
            "tenant_id",
            "upn_index",
            "sealed_upn",
            "upn_key_id",
            "upn_nonce",
            "first_seen",
            "last_seen",
        ],
    ),
    // Sealed data keys.
    (
        "log_keys",
        &[
            "key_id",
            "tenant_id",
            "public_key_id",
            "enc",
            "sealed_key",
            "created_at",
            "sender_public_key",
        ],
    ),
    // Sealed logs: time, level, event code and message template in clear, fields sealed.
    (
        "logs",
        &[
            "id",
            "tenant_id",
            "time",
            "level",
            "event",
            "message",
            "key_id",
            "nonce",
            "sealed",
        ],
    ),
    // Job state (when no storage account is configured).
    ("tenant_state", &["tenant_id", "name", "value", "version", "updated_at"]),
    // The operators' trail: our own staff by Entra object id or OS account, the command, the
    // tenant id, hash-chained.
    (
        "operator_audit",
        &[
            "seq",
            "at",
            "operator",
            "command",
            "tenant_id",
            "detail",
            "prev_hash",
            "hash",
        ],
    ),
    // The migrations ledger.
    ("schema_migrations", &["version", "applied_at"]),
];

type Schema = BTreeMap<String, BTreeSet<String>>;

/// status, offboarded_at, licence_expires, log_public_key, log_public_key_id.
type TenantRow = (String, Option<i64>, Option<String>, Option<Vec<u8>>, Option<String>);

fn allowed() -> Schema {
    ALLOWED
        .iter()
        .map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect()))
        .collect()
}

/// The SQLite store's schema, read from a migrated database.
async fn sqlite_schema() -> Schema {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groupmgr.db");
    drop(groupmgr::store::sqlite::SqliteStore::open(&path).await.unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let cols = db
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .unwrap()
                .query_map([&t], |r| r.get::<_, String>(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (t, cols)
        })
        .collect()
}

/// The SQL Server store's schema, as its migrations (and its ledger) create it: every
/// `CREATE TABLE dbo.…` with its columns and every `ALTER TABLE dbo.… ADD …`. (Against a real
/// server the contract suite runs the same migrations.)
fn mssql_schema() -> Schema {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut scripts: Vec<String> = std::fs::read_dir(root.join("migrations/mssql"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    // Comments out: `-- …` to the end of the line.
    let uncomment = |s: &str| {
        s.lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    scripts = scripts.iter().map(|s| uncomment(s)).collect();
    // The ledger is created by the store itself before any migration.
    let source = std::fs::read_to_string(root.join("src/store/mssql.rs")).unwrap();
    let ledger = source
        .lines()
        .find(|l| l.contains("CREATE TABLE dbo.schema_migrations"))
        .expect("the store creates its ledger");
    scripts.push(ledger.to_string());
    let mut schema = Schema::new();
    for script in &scripts {
        let upper = script.to_ascii_uppercase();
        let mut at = 0;
        while let Some(i) = upper[at..].find("CREATE TABLE DBO.") {
            let start = at + i + "CREATE TABLE DBO.".len();
            let name_end = start
                + script[start..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap();
            let table = script[start..name_end].to_string();
            let open = name_end + script[name_end..].find('(').unwrap();
            let (mut depth, mut end, mut parts, mut part_start) = (0, open, Vec::new(), open + 1);
            for (j, c) in script[open..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + j;
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        parts.push(&script[part_start..open + j]);
                        part_start = open + j + 1;
                    }
                    _ => {}
                }
            }
            parts.push(&script[part_start..end]);
            let cols = schema.entry(table).or_default();
            for p in parts {
                let first = p.split_whitespace().next().unwrap_or_default();
                if !["CONSTRAINT", "PRIMARY", "UNIQUE", "INDEX", "CHECK", "FOREIGN"]
                    .contains(&first.to_ascii_uppercase().as_str())
                {
                    cols.insert(first.to_string());
                }
            }
            at = end;
        }
        // `ALTER TABLE dbo.t ADD a <type> [, b <type> …]`: every column it adds.
        for line in script.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["ALTER", "TABLE", table, "ADD", ..] = words.as_slice() {
                let table = table.trim_start_matches("dbo.");
                let added = line.split_once(" ADD ").map_or("", |(_, rest)| rest);
                let (mut depth, mut start) = (0, 0);
                let mut parts = Vec::new();
                for (i, c) in added.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        ',' if depth == 0 => {
                            parts.push(&added[start..i]);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                parts.push(&added[start..]);
                for p in parts {
                    let column = p.split_whitespace().next().unwrap_or_default();
                    schema.entry(table.to_string()).or_default().insert(column.to_string());
                }
            }
        }
    }
    schema
}

#[tokio::test]
async fn every_table_and_column_of_both_stores_is_on_the_policy_allowlist() {
    let allowed = allowed();
    for (store, schema) in [("SQLite", sqlite_schema().await), ("SQL Server", mssql_schema())] {
        for (table, cols) in &schema {
            let permitted = allowed
                .get(table)
                .unwrap_or_else(|| panic!("{store}: table {table} is not on the policy's allowlist"));
            let extra: Vec<_> = cols.difference(permitted).collect();
            assert!(
                extra.is_empty(),
                "{store}: {table} has columns beyond the policy: {extra:?}"
            );
        }
        // And the allowlist is not stale: each store has exactly these tables and columns.
        assert_eq!(schema, allowed, "{store}");
    }
}

/// Rows of `table` that belong to `tenant`.
fn rows_of(db: &rusqlite::Connection, table: &str, tenant: &str) -> i64 {
    db.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?1"),
        [tenant],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn after_offboarding_only_the_id_the_date_and_logs_awaiting_purge_remain() {
    let Some(azurite) =
        common::azurite::Azurite::start("after_offboarding_only_the_id_the_date_and_logs_awaiting_purge_remain")
    else {
        return;
    };
    let app = spawn_with(Spawn {
        storage: Some(azurite.connection_string()),
        ..Default::default()
    })
    .await;
    let key = contoso_log_key(&app).await;
    app.store
        .set_licence_expiry(&contoso(), chrono::NaiveDate::from_ymd_opt(2027, 6, 30))
        .await
        .unwrap();
    // Users take seats (sealed UPNs), a sync writes job state (to Blob Storage) and logs.
    for (tenant, alias) in [(CONTOSO, "admin"), (CONTOSO, "adelev"), (FABRIKAM, "admin")] {
        let token = app.sim.user_token(tenant, alias);
        assert_eq!(app.get("/api/groups", Some(&token)).await.status(), 200);
    }
    tenant_logged(&app, groupmgr::jobs::tenant_sync::run(&app.app, &contoso(), false))
        .await
        .unwrap();
    tenant_logged(&app, groupmgr::jobs::tenant_sync::run(&app.app, &fabrikam(), false))
        .await
        .unwrap();
    app.sink.flush().await;
    let access = groupmgr::storage::parse_storage(&groupmgr::storage::StorageSettings {
        connection_string: Some(&azurite.connection_string()),
        ..Default::default()
    })
    .unwrap()
    .unwrap();
    let blobs = groupmgr::storage::BlobState::new(access).unwrap();
    let before = blobs.names(&contoso()).await.unwrap();
    assert!(before.iter().any(|n| n.starts_with("customer_list")), "{before:?}");
    let fabrikam_before = blobs.names(&fabrikam()).await.unwrap();
    assert!(!fabrikam_before.is_empty());
    let db = rusqlite::Connection::open(&app.db_path).unwrap();
    let tenant = contoso().to_string();
    for table in ["licensed_users", "log_keys", "logs"] {
        assert!(rows_of(&db, table, &tenant) > 0, "{table} has Contoso rows before");
    }

    let said = groupmgr::cli::tenant::offboard(app.store.as_ref(), app.app.state.as_ref(), contoso())
        .await
        .unwrap();
    assert!(said.contains("job state deleted"), "{said}");

    // SQL: the tenants row keeps its id, status and offboarding date (and its registration's
    // seat count and creation time, NOT NULL columns); licence and log key are cleared.
    let (status, offboarded, expires, public_key, public_key_id): TenantRow = db
        .query_row(
            "SELECT status, offboarded_at, licence_expires, log_public_key, log_public_key_id FROM tenants WHERE tenant_id = ?1",
            [&tenant],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(status, "offboarded");
    assert!(offboarded.is_some());
    assert_eq!((expires, public_key, public_key_id), (None, None, None));
    for table in ["licensed_users", "log_keys", "tenant_state"] {
        assert_eq!(rows_of(&db, table, &tenant), 0, "{table}");
    }
    // The logs await their purge, and nobody can open them any more.
    let remaining = rows_of(&db, "logs", &tenant);
    assert!(remaining > 0);
    let keys = app.store.log_keys(&contoso()).await.unwrap();
    let opener = groupmgr::decrypt::Opener::new(&key, contoso(), &keys, &[]);
    let logs = app
        .store
        .logs(
            &contoso(),
            &groupmgr::store::LogQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logs.len() as i64, remaining);
    assert!(logs.iter().all(|l| opener.open_log(l).is_err()));
    // Blob Storage: none of the tenant's job state is left; Fabrikam's is untouched.
    assert_eq!(blobs.names(&contoso()).await.unwrap(), Vec::<String>::new());
    assert_eq!(blobs.names(&fabrikam()).await.unwrap(), fabrikam_before);
    assert!(rows_of(&db, "licensed_users", &fabrikam().to_string()) > 0);

    // Run again (as after a partial failure): nothing left to delete, the date is kept.
    let again = groupmgr::cli::tenant::offboard(app.store.as_ref(), app.app.state.as_ref(), contoso())
        .await
        .unwrap();
    assert!(again.contains("was offboarded on"), "{again}");
    let offboarded_again: Option<i64> = db
        .query_row(
            "SELECT offboarded_at FROM tenants WHERE tenant_id = ?1",
            [&tenant],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(offboarded_again, offboarded);
    app.stop().await;
}
