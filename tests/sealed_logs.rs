//! Tenant-sealed logs and UPNs end to end, with the real binary: a customer generates and
//! registers a key, users call the API, and afterwards only that key opens what was logged —
//! from the store, from a saved `GET /api/logs` response, after a key rotation, and not at all
//! after offboarding. Nothing the app wrote (SQLite file, stdout, stderr) contains a UPN, a
//! user's name or an IP address in clear.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use common::binary::{run, serve};
use common::settings_map;
use m365_sim::Sim;
use m365_sim::directory::CONTOSO;
use serde_json::Value;

struct World {
    sim: Sim,
    env: HashMap<String, String>,
    dir: tempfile::TempDir,
    tenant: String,
}

async fn world(seats: u32) -> World {
    let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = settings_map(&sim.url(), &dir.path().join("groupmgr.db"));
    let tenant = CONTOSO.to_string();
    let (code, _, err) = run(&env, &["tenant", "add", &tenant, "--seats", &seats.to_string()]);
    assert_eq!(code, 0, "{err}");
    World { sim, env, dir, tenant }
}

/// `keys generate`: returns (key file, public key text).
fn generate_key(w: &World, name: &str) -> (std::path::PathBuf, String) {
    let path = w.dir.path().join(name);
    let (code, out, err) = run(&w.env, &["keys", "generate", "--out", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let public = lines[0]
        .strip_prefix("public-key: ")
        .expect("first line is public-key")
        .to_string();
    assert!(lines[1].starts_with("key-id: "));
    (path, public)
}

fn register(w: &World, public: &str) {
    let (code, out, err) = run(&w.env, &["tenant", "set-log-key", &w.tenant, public]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("registered"), "{out}");
}

/// Calls the API as each user (with a client IP as the Functions front end reports it).
async fn traffic(w: &World, addr: SocketAddr, aliases: &[(&str, &str)]) -> Vec<(u16, String)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for (alias, ip) in aliases {
        let token = w.sim.user_token(CONTOSO, alias);
        let resp = http
            .get(format!("http://{addr}/api/groups"))
            .bearer_auth(token)
            .header("x-forwarded-for", *ip)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        out.push((status, resp.text().await.unwrap()));
    }
    out
}

fn decrypt(w: &World, key: &Path, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let mut args = vec!["logs", "decrypt", "--key", key.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&w.env, &args);
    let lines = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    (code, lines, err)
}

fn opened(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("error").is_none()).collect()
}

fn failed(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("error").is_some()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_customers_key_reads_what_was_logged() {
    let w = world(3).await;
    let (key1, public1) = generate_key(&w, "tenant-1.key");
    register(&w, &public1);

    // First run: three users take the three seats, a fourth is refused.
    let served = serve(&w.env);
    let users = [
        ("admin", "203.0.113.7"),
        ("adelev", "198.51.100.23"),
        ("alexw", "192.0.2.44"),
        ("meganb", "203.0.113.99"),
    ];
    let statuses: Vec<u16> = traffic(&w, served.addr, &users)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 403]);

    // The admin reads the sealed logs through the API and saves the response.
    let admin = w.sim.user_token(CONTOSO, "admin");
    let http = reqwest::Client::new();
    // Entries are written asynchronously; wait until this run's are in.
    let mut saved = String::new();
    for _ in 0..50 {
        let resp = http
            .get(format!("http://{}/api/logs?top=1000", served.addr))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        saved = resp.text().await.unwrap();
        let body: Value = serde_json::from_str(&saved).unwrap();
        if body["value"].as_array().unwrap().len() >= 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let body: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(body["tenantId"], w.tenant);
    for e in body["value"].as_array().unwrap() {
        for k in ["id", "time", "level", "event", "message", "keyId", "nonce", "sealed"] {
            assert!(e.get(k).is_some(), "entry lacks {k}: {e}");
        }
        assert!(!e["message"].as_str().unwrap().contains('@'), "templates only: {e}");
    }
    assert!(!body["keys"].as_array().unwrap().is_empty());
    // Non-admins may not read logs.
    let adele = w.sim.user_token(CONTOSO, "adelev");
    let resp = http
        .get(format!("http://{}/api/logs", served.addr))
        .bearer_auth(&adele)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.text().await.unwrap().contains("role_required"));
    let (stdout1, stderr1) = served.stop();

    // The customer opens everything from the store with its key…
    let (code, lines, err) = decrypt(&w, &key1, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(failed(&lines).is_empty(), "{lines:?}");
    let text = serde_json::to_string(&lines).unwrap();
    for (alias, ip) in &users {
        assert!(
            text.contains(&format!("{alias}@contoso.onmicrosoft.com")),
            "{alias} missing from decrypted logs"
        );
        assert!(text.contains(ip), "{ip} missing from decrypted logs");
    }
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events.iter().filter(|e| **e == "user_admitted").count(), 3);
    assert_eq!(events.iter().filter(|e| **e == "seat_refused").count(), 1);
    assert!(events.contains(&"request"));
    let refused = lines.iter().find(|l| l["event"] == "seat_refused").unwrap();
    assert_eq!(
        refused["message"],
        "meganb@contoso.onmicrosoft.com was refused: every licensed seat is taken"
    );

    // …and from the saved API response.
    let saved_path = w.dir.path().join("logs.json");
    std::fs::write(&saved_path, &saved).unwrap();
    let (code, from_api, err) = decrypt(&w, &key1, &["--input", saved_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!from_api.is_empty() && failed(&from_api).is_empty());

    // The licensed users, by name, for the customer only.
    let (code, out, err) = run(&w.env, &["users", "list", "--key", key1.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for alias in ["admin", "adelev", "alexw"] {
        assert!(out.contains(&format!("{alias}@contoso.onmicrosoft.com")), "{out}");
    }
    assert!(!out.contains("meganb"), "the refused user holds no seat");

    // A wrong key opens nothing and says so per entry, without garbage.
    let (wrong, _) = generate_key(&w, "not-ours.key");
    let (code, lines, _) = decrypt(&w, &wrong, &["--tenant", &w.tenant]);
    assert_ne!(code, 0);
    assert!(opened(&lines).is_empty());
    assert!(
        failed(&lines)
            .iter()
            .all(|l| l["error"].as_str().unwrap().contains("different key")),
        "{lines:?}"
    );

    // Rotation: a second key; the first still opens what was sealed to it.
    let (key2, public2) = generate_key(&w, "tenant-2.key");
    register(&w, &public2);
    let served = serve(&w.env);
    let statuses: Vec<u16> = traffic(&w, served.addr, &[("admin", "203.0.113.8")])
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, [200]);
    let (stdout2, stderr2) = served.stop();
    let (_, with1, _) = decrypt(&w, &key1, &["--tenant", &w.tenant]);
    let (_, with2, _) = decrypt(&w, &key2, &["--tenant", &w.tenant]);
    assert_eq!(with1.len(), with2.len());
    assert_eq!(
        opened(&with1).len(),
        lines.len(),
        "old entries still open with the old key"
    );
    assert!(!opened(&with2).is_empty(), "new entries open with the new key");
    assert_eq!(
        opened(&with1).len() + opened(&with2).len(),
        with1.len(),
        "every entry opens with exactly one key"
    );
    assert!(serde_json::to_string(&opened(&with2)).unwrap().contains("203.0.113.8"));

    // Nothing in clear anywhere GroupMgr wrote.
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("stdout".into(), format!("{stdout1}{stdout2}").into_bytes()),
        ("stderr".into(), format!("{stderr1}{stderr2}").into_bytes()),
    ];
    for entry in std::fs::read_dir(w.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("groupmgr.db") {
            haystacks.push((name, std::fs::read(&p).unwrap()));
        }
    }
    assert!(
        stdout1.contains("\"user\":\"[redacted]\""),
        "stdout has the events, redacted"
    );
    let secrets: Vec<String> = users
        .iter()
        .flat_map(|(alias, ip)| [format!("{alias}@contoso.onmicrosoft.com"), ip.to_string()])
        .chain(["MOD Administrator", "Adele Vance", "203.0.113.8"].map(String::from))
        .collect();
    for (name, bytes) in &haystacks {
        let lower = String::from_utf8_lossy(bytes).to_lowercase();
        for s in &secrets {
            assert!(!lower.contains(&s.to_lowercase()), "{name} contains {s} in clear");
        }
    }

    // Offboarding: the data keys go, so nothing opens any more, even with the right key.
    let (code, out, err) = run(&w.env, &["tenant", "offboard", &w.tenant]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("purged after 30 days"), "{out}");
    for key in [&key1, &key2] {
        let (code, lines, _) = decrypt(&w, key, &["--tenant", &w.tenant]);
        assert_ne!(code, 0);
        assert!(!lines.is_empty());
        assert!(opened(&lines).is_empty(), "an offboarded tenant's logs must not open");
        assert!(
            failed(&lines)
                .iter()
                .all(|l| l["error"].as_str().unwrap().contains("data key is missing"))
        );
    }
    let (_, out, _) = run(
        &w.env,
        &["users", "list", "--key", key1.to_str().unwrap(), "--tenant", &w.tenant],
    );
    assert!(out.trim().is_empty(), "licensed users are deleted: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_registered_key_nothing_is_logged_for_the_tenant() {
    let w = world(5).await;
    let served = serve(&w.env);
    let statuses: Vec<u16> = traffic(&w, served.addr, &[("admin", "203.0.113.7")])
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, [200]);
    let (stdout, _) = served.stop();
    let (key, _) = generate_key(&w, "k.key");
    let (_, lines, _) = decrypt(&w, &key, &["--tenant", &w.tenant]);
    assert!(lines.is_empty(), "no entries without a key: {lines:?}");
    assert!(
        stdout.contains("\"reason\":\"no_log_key\""),
        "the drop is reported: {stdout}"
    );
    assert!(!stdout.contains("admin@contoso"), "and nothing leaks to stdout");
}
