//! The SQL Server connection path against `mssql-mock-tds`: TDS 8.0 strict TLS with
//! certificate validation, Entra access-token (FedAuth) login, the bb8 pool; and every T-SQL
//! migration batch parsed by sqlparser's MsSql dialect.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use groupmgr::secret::Secret;
use groupmgr::store::Store;
use groupmgr::store::mssql::{self, MssqlStore, SqlAuth, SqlTokenSource, TdsManager};
use mssql_mock_tds::{MockTdsServer, create_test_identity};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::Parser;

struct FixedToken {
    token: String,
    fetched: AtomicUsize,
}

#[async_trait]
impl SqlTokenSource for FixedToken {
    async fn token(&self) -> Result<Secret, String> {
        self.fetched.fetch_add(1, Ordering::SeqCst);
        Ok(Secret::new(self.token.clone()))
    }
}

struct Mock {
    port: u16,
    ca_path: std::path::PathBuf,
    connections: Arc<tokio::sync::Mutex<mssql_mock_tds::ConnectionStore>>,
    _dir: tempfile::TempDir,
}

async fn strict_mock() -> Mock {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let identity = create_test_identity(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let server = MockTdsServer::new_with_strict_tls("127.0.0.1:0", identity)
        .await
        .unwrap();
    let port = server.local_addr().port();
    let connections = server.connection_store();
    tokio::spawn(server.run());
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, cert_pem).unwrap();
    Mock {
        port,
        ca_path,
        connections,
        _dir: dir,
    }
}

fn token_manager(mock: &Mock, source: Arc<FixedToken>, trust_ca: bool) -> TdsManager {
    let ca = if trust_ca {
        format!(";TrustServerCertificateCA={}", mock.ca_path.display())
    } else {
        String::new()
    };
    let conn = format!("Server=tcp:localhost,{};Database=groupmgr{ca}", mock.port);
    let (config, _) = mssql::parse_connection(&conn).unwrap();
    TdsManager::new(config, SqlAuth::Token(source))
}

#[tokio::test]
async fn strict_tls_with_token_login_through_the_pool() {
    let mock = strict_mock().await;
    let source = Arc::new(FixedToken {
        token: "eyJ0eXAiOiJKV1QiLCJzcWwiOiJ0b2tlbiJ9.sig".into(),
        fetched: AtomicUsize::new(0),
    });
    let pool = bb8::Pool::builder()
        .max_size(2)
        .build(token_manager(&mock, source.clone(), true))
        .await
        .unwrap();
    let store = Arc::new(MssqlStore::unmigrated(pool));
    // Ten concurrent round trips share at most two connections.
    let pings = (0..10).map(|_| {
        let s = store.clone();
        async move { s.ping().await }
    });
    for r in futures_util::future::join_all(pings).await {
        r.expect("SELECT 1 through the pool");
    }
    let conns = mock.connections.lock().await;
    assert!(
        conns.count() >= 1 && conns.count() <= 2,
        "{} connections for a pool of 2",
        conns.count()
    );
    for info in conns.all().values() {
        assert!(info.authenticated);
        assert_eq!(
            info.received_token_as_string().as_deref(),
            Some("eyJ0eXAiOiJKV1QiLCJzcWwiOiJ0b2tlbiJ9.sig"),
            "FedAuth carried the token"
        );
    }
    assert_eq!(
        source.fetched.load(Ordering::SeqCst),
        conns.count(),
        "one fresh token per new connection"
    );
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused() {
    let mock = strict_mock().await;
    let source = Arc::new(FixedToken {
        token: "t".into(),
        fetched: AtomicUsize::new(0),
    });
    let manager = token_manager(&mock, source, false);
    let Err(err) = bb8::ManageConnection::connect(&manager).await else {
        panic!("self-signed certificate must not be trusted");
    };
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("login"),
        "{err}"
    );
    assert!(
        mock.connections
            .lock()
            .await
            .all()
            .values()
            .all(|c| !c.authenticated && c.received_token.is_none())
    );
}

#[tokio::test]
async fn a_server_without_tls_is_refused() {
    let server = MockTdsServer::new("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().port();
    let connections = server.connection_store();
    tokio::spawn(server.run());
    let (config, _) = mssql::parse_connection(&format!(
        "Server=tcp:localhost,{port};User ID=sa;Password=x;TrustServerCertificate=true"
    ))
    .unwrap();
    let manager = TdsManager::new(config, SqlAuth::ConnectionString);
    assert!(
        bb8::ManageConnection::connect(&manager).await.is_err(),
        "strict mode never talks TDS in the clear"
    );
    assert!(connections.lock().await.all().values().all(|c| !c.authenticated));
}

#[test]
fn connection_strings_choose_the_login() {
    let (_, auth) =
        mssql::parse_connection("Server=tcp:x.database.windows.net,1433;Database=g;User ID=app;Password=p").unwrap();
    assert!(matches!(auth, SqlAuth::ConnectionString));
    let (_, auth) = mssql::parse_connection(
        "Server=tcp:x.database.windows.net,1433;Database=g;Authentication=Active Directory Managed Identity",
    )
    .unwrap();
    assert!(matches!(auth, SqlAuth::Token(_)));
    assert!(mssql::parse_connection("Server=tcp:x,1433;Authentication=ActiveDirectoryInteractive").is_err());
    // The server's certificate goes unchecked only on this machine.
    for conn in [
        "Server=tcp:x.database.windows.net,1433;User ID=a;Password=p;TrustServerCertificate=true",
        "Data Source=10.0.0.4;User ID=a;Password=p;TrustServerCertificate=yes",
        // A repeated key: tiberius takes the last; the check must not stop at the first.
        "Server=tcp:localhost,1433;Server=tcp:evil.example,1433;User ID=a;Password=p;TrustServerCertificate=true",
        "Server=tcp:evil.example,1433;User ID=a;Password=p;TrustServerCertificate=no;TrustServerCertificate=yes",
        "Address=127.0.0.1;Server=tcp:evil.example,1433;User ID=a;Password=p;TrustServerCertificate=true",
    ] {
        let err = mssql::parse_connection(conn).err().expect(conn).to_string();
        assert!(err.contains("TrustServerCertificate"), "{err}");
    }
    for conn in [
        "Server=tcp:localhost,1433;User ID=sa;Password=p;TrustServerCertificate=true",
        "Server=tcp:127.0.0.1,1433;User ID=sa;Password=p;TrustServerCertificate=true",
        "Server=tcp:x.database.windows.net,1433;User ID=a;Password=p;TrustServerCertificate=false",
    ] {
        assert!(mssql::parse_connection(conn).is_ok(), "{conn}");
    }
}

/// The Azure CLI as `Active Directory Default` runs it (`/bin/sh -c "cd /bin && az account
/// get-access-token -o json --scope …"`): installed and signed in, or not installed at all.
#[derive(Debug)]
struct FakeCli {
    installed: bool,
}

#[async_trait]
impl azure_identity::Executor for FakeCli {
    async fn run(
        &self,
        _program: &std::ffi::OsStr,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Result<std::process::Output> {
        use std::os::unix::process::ExitStatusExt as _;
        let command = args.last().map(|a| a.to_string_lossy().to_string()).unwrap_or_default();
        let az = command.contains(" && az account get-access-token")
            && command.contains("https://database.windows.net/.default");
        let (code, stdout, stderr) = if self.installed && az {
            let expires = chrono::Utc::now().timestamp() + 3600;
            (
                0,
                format!(r#"{{"accessToken":"operator-token","expires_on":{expires},"tokenType":"Bearer"}}"#),
                String::new(),
            )
        } else {
            (127, String::new(), "/bin/sh: 1: not found".to_string())
        };
        Ok(std::process::Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.into_bytes(),
            stderr: stderr.into_bytes(),
        })
    }
}

#[tokio::test]
async fn an_operator_signs_in_to_azure_sql_with_the_azure_cli() {
    let conn = "Server=tcp:x.database.windows.net,1433;Database=g;Authentication=Active Directory Default";
    let token_with = |installed: bool| async move {
        let (_, auth) = mssql::parse_connection_with(conn, Some(Arc::new(FakeCli { installed }))).unwrap();
        let SqlAuth::Token(source) = auth else {
            panic!("Active Directory Default logs in with a token");
        };
        source.token().await
    };
    // Signed in: the CLI's token for Azure SQL.
    let token = token_with(true).await.expect("a token from the Azure CLI");
    assert_eq!(token.expose(), "operator-token");
    // No CLI: the failure names the credential; never a panic.
    let err = token_with(false).await.expect_err("no Azure CLI, no token");
    assert!(err.contains("Azure CLI"), "{err}");
}

#[test]
fn every_tsql_migration_batch_parses() {
    let dialect = MsSqlDialect {};
    let mut parsed = 0;
    Parser::parse_sql(&dialect, mssql::BOOTSTRAP).unwrap_or_else(|e| panic!("bootstrap: {e}"));
    for (version, script) in mssql::MIGRATIONS {
        let batches = mssql::batches(script);
        assert!(!batches.is_empty());
        for batch in batches {
            let statements =
                Parser::parse_sql(&dialect, &batch).unwrap_or_else(|e| panic!("migration {version}: {e}\n{batch}"));
            assert!(!statements.is_empty());
            parsed += statements.len();
        }
    }
    assert!(parsed >= 6, "only {parsed} statements");
}

/// Requests the mock has received on all its connections (each SQL batch or RPC call).
async fn requests(mock: &Mock) -> usize {
    mock.connections
        .lock()
        .await
        .all()
        .values()
        .map(|c| c.transaction_descriptor_headers.len())
        .sum()
}

/// Every `MssqlStore` method reaches SQL Server: tiberius encodes each statement with its
/// parameters and sends it (the mock answers every call with an empty result, so a method
/// that expects rows may fail after that; one that fails *before* sending, as a parameter
/// tiberius cannot encode does, fails here).
#[tokio::test]
async fn every_store_method_encodes_and_sends_its_statements() {
    use chrono::{DateTime, NaiveDate};
    use groupmgr::crypto::{BlindIndex, SealedValue, TenantPublicKey};
    use groupmgr::domain::{Seats, TenantId, TenantStatus};
    use groupmgr::store::{LogKeyRecord, LogQuery, LogRecord, NewTenant};

    let mock = strict_mock().await;
    let source = Arc::new(FixedToken {
        token: "t".into(),
        fetched: AtomicUsize::new(0),
    });
    let pool = bb8::Pool::builder()
        .max_size(1)
        .connection_timeout(std::time::Duration::from_secs(3))
        .build(token_manager(&mock, source, true))
        .await
        .unwrap();
    let store = MssqlStore::unmigrated(pool);
    let tenant = TenantId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    let now = DateTime::from_timestamp(1_790_000_000, 123_456_000).unwrap();
    let key = uuid::Uuid::new_v4();
    let sealed = SealedValue {
        key_id: key,
        nonce: [1; 12],
        ciphertext: vec![2; 40],
    };
    let index = BlindIndex([3; 32]);
    let public = TenantPublicKey::from_bytes([9; 32]).unwrap();
    let log = LogRecord {
        id: uuid::Uuid::new_v4(),
        tenant_id: tenant,
        time: now,
        level: "INFO".into(),
        event: "group_created".into(),
        message: "group {group} created".into(),
        sealed: sealed.clone(),
    };
    let log_key = LogKeyRecord {
        key_id: key,
        tenant_id: tenant,
        public_key_id: public.id().to_string(),
        enc: vec![4; 32],
        sealed_key: vec![5; 48],
        created_at: now,
        // Sealed in Auth mode: the sender's key is a bound parameter too.
        sender_public_key: Some(vec![6; 32]),
    };
    let mut failures = Vec::new();
    macro_rules! sends {
        ($name:expr, $call:expr) => {{
            let before = requests(&mock).await;
            let outcome = $call.await.map(|_| ()).map_err(|e| e.to_string());
            let sent = requests(&mock).await - before;
            let encoding = outcome
                .as_ref()
                .err()
                .filter(|e| e.contains("Encoding error") || e.contains("Conversion error"));
            if sent == 0 || encoding.is_some() || outcome.as_ref().is_err_and(|e| e.contains("TimedOut")) {
                failures.push(format!("{}: {} request(s), {:?}", $name, sent, outcome));
            } else if let Err(e) = store.ping().await {
                // What it sent left the connection unusable (a value tiberius mis-encoded).
                failures.push(format!("{}: the connection broke after it ({e})", $name));
            }
        }};
    }
    sends!(
        "add_tenant",
        store.add_tenant(&NewTenant {
            tenant_id: tenant,
            seats: Seats::new(5).unwrap(),
            licence_expires: NaiveDate::from_ymd_opt(2027, 6, 30)
        })
    );
    sends!("tenant", store.tenant(&tenant));
    sends!("tenants", store.tenants());
    sends!("set_status", store.set_status(&tenant, TenantStatus::Suspended));
    sends!("set_seats", store.set_seats(&tenant, Seats::new(7).unwrap()));
    sends!(
        "set_licence_expiry",
        store.set_licence_expiry(&tenant, NaiveDate::from_ymd_opt(2027, 1, 1))
    );
    sends!("set_licence_expiry(None)", store.set_licence_expiry(&tenant, None));
    sends!("set_log_public_key", store.set_log_public_key(&tenant, &public));
    sends!(
        "admit_user",
        store.admit_user(&tenant, &index, Seats::new(5).unwrap(), now)
    );
    sends!("set_sealed_upn", store.set_sealed_upn(&tenant, &index, &sealed));
    sends!("licensed_users", store.licensed_users(&tenant));
    sends!("licensed_user_count", store.licensed_user_count(&tenant));
    sends!("put_log_key", store.put_log_key(&log_key));
    sends!("log_keys", store.log_keys(&tenant));
    sends!("append_logs", store.append_logs(std::slice::from_ref(&log)));
    // The first page of `GET /api/logs`: no since, until or cursor.
    sends!(
        "logs(unbounded)",
        store.logs(
            &tenant,
            &LogQuery {
                limit: 100,
                ..Default::default()
            }
        )
    );
    sends!(
        "logs(bounded)",
        store.logs(
            &tenant,
            &LogQuery {
                since: Some(now),
                until: Some(now + chrono::TimeDelta::days(1)),
                after: Some((now, log.id)),
                limit: 10,
            }
        )
    );
    // The widest window the API lets through (its times are years 1 to 9999 in UTC).
    let first = DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap().to_utc();
    let last = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z")
        .unwrap()
        .to_utc();
    sends!(
        "logs(widest)",
        store.logs(
            &tenant,
            &LogQuery {
                since: Some(first),
                until: Some(last),
                after: None,
                limit: 10,
            }
        )
    );
    sends!("offboard", store.offboard(&tenant, now));
    sends!(
        "purge_offboarded_logs",
        store.purge_offboarded_logs(now - chrono::TimeDelta::days(30))
    );
    sends!("get_state", store.get_state(&tenant, "round"));
    sends!("put_state(new)", store.put_state(&tenant, "round", "{}", None));
    sends!("put_state(update)", store.put_state(&tenant, "round", "{}", Some(3)));
    sends!("delete_state", store.delete_state(&tenant, "round"));
    sends!("forget_state", store.forget_state(&tenant));
    let operator_entry = groupmgr::store::OperatorEntry {
        seq: 1,
        at: now,
        operator: "os:ops@host".into(),
        command: "tenant offboard".into(),
        tenant_id: Some(tenant),
        detail: String::new(),
        prev_hash: [0; 32],
        hash: [1; 32],
    };
    sends!("insert_operator_entry", store.insert_operator_entry(&operator_entry));
    sends!("last_operator_entry", store.last_operator_entry());
    sends!("operator_entries", store.operator_entries(0, 1000));
    sends!("ping", store.ping());
    assert!(failures.is_empty(), "not sent to SQL Server:\n{}", failures.join("\n"));
}
