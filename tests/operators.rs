//! The operators' trail with the real binary: every command that changes or reads a tenant's
//! data leaves an entry naming the operator (the Entra identity Azure CLI is signed in with,
//! else the OS account), and `operators log --verify` detects an altered or deleted entry.
//! Azure CLI cannot sign in here, so a stand-in `az` on PATH answers `az account
//! get-access-token` as the real one does (its JSON, with a token whose claims name the
//! operator); the fallback to the OS account runs with no `az` at all.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use common::binary::run;
use common::settings_map;
use groupmgr::store::Store;
use m365_sim::Sim;
use m365_sim::directory::CONTOSO;

const OPERATOR_TENANT: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";
const OPERATOR_OID: &str = "11112222-3333-4444-8555-666677778888";

/// A stand-in `az` in its own folder: prints what `az account get-access-token` prints.
fn fake_az(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(serde_json::json!({"typ": "JWT", "alg": "RS256"})),
        b64(serde_json::json!({"tid": OPERATOR_TENANT, "oid": OPERATOR_OID, "upn": "ops@groupmgr.example"}))
    );
    let bin = dir.join("az-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("az");
    std::fs::write(
        &script,
        format!(
            // Shell built-ins only: PATH holds nothing else.
            "#!/bin/sh\n[ \"$1 $2\" = \"account get-access-token\" ] || exit 2\nprintf '%s\\n' '{}'\n",
            serde_json::json!({
                "accessToken": token,
                "expiresOn": "2026-12-02 18:00:00.000000",
                "expires_on": 1796234400,
                "subscription": "00000000-0000-0000-0000-000000000001",
                "tenant": OPERATOR_TENANT,
                "tokenType": "Bearer"
            })
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn ok(env: &HashMap<String, String>, args: &[&str]) -> String {
    let (code, out, err) = run(env, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

#[tokio::test]
async fn every_operator_command_is_on_a_trail_that_detects_tampering() {
    let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("groupmgr.db");
    let mut env = settings_map(&sim.url(), &db);
    env.insert("PATH".into(), fake_az(dir.path()).display().to_string());
    let tenant = CONTOSO.to_string();

    ok(&env, &["tenant", "add", &tenant, "--seats", "5"]);
    ok(&env, &["tenant", "set-seats", &tenant, "7"]);
    ok(&env, &["tenant", "list"]);
    let key = dir.path().join("contoso.key");
    let generated = ok(&env, &["keys", "generate", "--out", key.to_str().unwrap()]);
    let public = generated.lines().next().unwrap().strip_prefix("public-key: ").unwrap();
    ok(&env, &["tenant", "set-log-key", &tenant, public]);
    ok(
        &env,
        &["users", "list", "--key", key.to_str().unwrap(), "--tenant", &tenant],
    );
    // Without --tenant: the entry names each tenant the key opens.
    ok(&env, &["logs", "decrypt", "--key", key.to_str().unwrap()]);
    // Without Azure CLI: the OS account.
    let mut no_az = env.clone();
    no_az.insert("PATH".into(), dir.path().join("nothing-here").display().to_string());
    no_az.insert("USER".into(), "ops-night-shift".into());
    ok(&no_az, &["tenant", "suspend", &tenant]);

    let log = ok(&env, &["operators", "log"]);
    let lines: Vec<&str> = log.lines().collect();
    let expected = [
        "tenant add",
        "tenant set-seats",
        "tenant list",
        "tenant set-log-key",
        "users list",
        "logs decrypt",
        "tenant suspend",
    ];
    assert_eq!(lines.len(), expected.len(), "keys generate touches no tenant: {log}");
    let entra = format!("entra:{OPERATOR_TENANT}/{OPERATOR_OID}");
    for (line, command) in lines.iter().zip(expected) {
        assert!(line.contains(command), "{line}");
        if command == "tenant suspend" {
            assert!(line.contains("os:ops-night-shift@"), "{line}");
        } else {
            assert!(line.contains(&entra), "{line}");
        }
        assert!(
            !line.contains("ops@groupmgr.example"),
            "never the operator's UPN: {line}"
        );
    }
    assert!(
        lines[1].contains(&tenant) && lines[1].contains("seats=7"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(" - "), "tenant list reads every tenant: {}", lines[2]);
    assert!(lines[5].contains(&tenant), "{}", lines[5]);
    let (code, _, err) = run(&env, &["operators", "log", "--verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("7 entries; head: entry 7"), "{err}");

    // Altered: an entry's tenant changed in SQL.
    let sql = rusqlite::Connection::open(&db).unwrap();
    sql.execute(
        "UPDATE operator_audit SET tenant_id = '99999999-9999-4999-8999-999999999999' WHERE seq = 2",
        [],
    )
    .unwrap();
    let (code, _, err) = run(&env, &["operators", "log", "--verify"]);
    assert_eq!(code, 1);
    assert!(err.contains("entry 2 was altered"), "{err}");
    // Deleted: an entry removed from the middle.
    sql.execute("DELETE FROM operator_audit WHERE seq = 4", []).unwrap();
    let (code, _, err) = run(&env, &["operators", "log", "--verify"]);
    assert_eq!(code, 1);
    assert!(err.contains("entries 4..4 are missing"), "{err}");
    assert!(err.contains("entry 5 does not follow"), "{err}");

    // Someone with write access to the database but not GroupMgr's index key rewrites the
    // trail from entry 2 on, recomputing every hash with a key of their own: still detected.
    let forger = groupmgr::crypto::MacKey::derive_operator_trail(&groupmgr::crypto::IndexKey::from_bytes([9; 32]));
    let store = groupmgr::store::sqlite::SqliteStore::open(&db).await.unwrap();
    let entries = store.operator_entries(0, 100).await.unwrap();
    sql.execute("DELETE FROM operator_audit WHERE seq >= 2", []).unwrap();
    let mut prev = entries[0].hash;
    for (i, e) in entries.iter().skip(1).enumerate() {
        let mut forged = e.clone();
        forged.seq = i as i64 + 2;
        forged.tenant_id = None;
        forged.prev_hash = prev;
        forged.hash = groupmgr::cli::operators::entry_hash(
            &forger,
            &prev,
            forged.seq,
            forged.at,
            &forged.operator,
            &forged.command,
            None,
            &forged.detail,
        );
        prev = forged.hash;
        store.insert_operator_entry(&forged).await.unwrap();
    }
    let (code, _, err) = run(&env, &["operators", "log", "--verify"]);
    assert_eq!(code, 1);
    assert!(err.contains("entry 2 was altered"), "{err}");
}

/// Two operators at once: both entries land, in one unbroken chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_operators_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groupmgr.db");
    let store: Arc<dyn Store> = Arc::new(groupmgr::store::sqlite::SqliteStore::open(&path).await.unwrap());
    let other: Arc<dyn Store> = Arc::new(groupmgr::store::sqlite::SqliteStore::open(&path).await.unwrap());
    let key = || groupmgr::crypto::MacKey::derive_operator_trail(&groupmgr::crypto::IndexKey::from_bytes([4; 32]));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { store.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            groupmgr::cli::operators::record(
                s.as_ref(),
                &key(),
                "os:test@host",
                "tenant list",
                None,
                &format!("n={i}"),
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut lines = Vec::new();
    let v = groupmgr::cli::operators::log(store.as_ref(), &key(), true, &mut |l| lines.push(l))
        .await
        .unwrap();
    assert_eq!(v.entries, 20);
    assert!(v.breaks.is_empty(), "{:?}", v.breaks);
    assert_eq!(v.head.unwrap().0, 20);
}
