//! The real `groupmgr` binary: start-up errors, serving as the Functions host starts it,
//! graceful shutdown, the operator CLI, and a scan of everything it wrote for the tokens and
//! UPNs it was given.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::binary::{groupmgr, serve, sigterm, wait_exit};
use common::rows::sim_list_rows;
use common::{contoso, settings_map};
use m365_sim::directory::{CONTOSO, FABRIKAM};
use m365_sim::{FaultKind, FaultRule, Hold, Sim};

#[test]
fn missing_or_bad_settings_stop_startup_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = settings_map("http://127.0.0.1:9", &dir.path().join("x.db"));
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("GROUPMGR_CLIENT_ID", None),
        ("GROUPMGR_INDEX_KEY", Some("too-short")),
        ("GROUPMGR_GRAPH_ENDPOINT", Some("http://graph.example.com")),
        ("GROUPMGR_CLOUD", Some("moon")),
    ];
    for (name, value) in cases {
        let saved = env.get(name).cloned();
        match value {
            Some(v) => env.insert(name.to_string(), v.to_string()),
            None => env.remove(name),
        };
        let out = groupmgr(&env, &["serve"]).output().unwrap();
        assert!(!out.status.success(), "{name}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        match saved {
            Some(v) => env.insert(name.to_string(), v),
            None => env.remove(name),
        };
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_like_the_host_expects_and_shuts_down_gracefully() {
    let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let mut env = settings_map(&sim.url(), &db);
    let out = groupmgr(&env, &["tenant", "add", &CONTOSO.to_string(), "--seats", "5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // As the host starts it: no in-process schedule, whose first sync would race the request
    // below to the token endpoint.
    env.insert("FUNCTIONS_CUSTOMHANDLER_WORKER_ID".into(), "worker-1".into());
    let mut served = serve(&env);
    let http = reqwest::Client::new();
    let base = format!("http://{}", served.addr);
    assert_eq!(http.get(format!("{base}/")).send().await.unwrap().status(), 200);
    assert_eq!(
        http.get(format!("{base}/api/health")).send().await.unwrap().status(),
        200
    );

    // A request in flight when SIGTERM arrives still gets its answer: its on-behalf-of token
    // request is held at the sim until SIGTERM has been sent.
    let hold = Hold::new();
    sim.state
        .faults
        .arm(FaultRule::new("/oauth2/v2.0/token", FaultKind::Hold(hold.clone())).times(1));
    let token = sim.user_token(CONTOSO, "admin");
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/api/groups");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::timeout(Duration::from_secs(20), hold.arrived())
        .await
        .expect("the request reached its token exchange");
    assert!(!in_flight.is_finished(), "held at the token endpoint");
    sigterm(&served.child);
    // The shutdown has begun (its log line) before the held request may go on.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served.stdout.lock().unwrap().contains("\"event\":\"shutdown\"") {
        assert!(Instant::now() < deadline, "no shutdown line after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hold.release();
    let status = in_flight.await.unwrap().expect("in-flight request answered");
    assert_eq!(status, 200, "the in-flight request completed normally");
    let exit = wait_exit(&mut served.child, Duration::from_secs(15));
    served.join_readers();
    assert!(
        exit.success(),
        "exit status {exit:?}; stderr: {}",
        served.stderr.lock().unwrap()
    );
    assert!(served.stdout.lock().unwrap().contains("\"event\":\"shutdown\""));
}

#[test]
fn operator_cli_manages_tenants_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let env = settings_map("http://127.0.0.1:9", &dir.path().join("ops.db"));
    let run = |args: &[&str]| {
        let out = groupmgr(&env, args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let t = contoso().to_string();
    let (code, out, _) = run(&["tenant", "add", &t, "--seats", "10", "--expires", "2027-12-31"]);
    assert_eq!(code, 0);
    assert!(out.contains("registered tenant") && out.contains("2027-12-31"), "{out}");
    let (code, _, err) = run(&["tenant", "add", &t, "--seats", "10"]);
    assert_ne!(code, 0);
    assert!(err.contains("already registered"), "{err}");
    let (code, _, err) = run(&["tenant", "add", "not-a-guid", "--seats", "10"]);
    assert_ne!(code, 0);
    assert!(err.contains("GUID"), "{err}");
    let (code, _, err) = run(&["tenant", "add", &FABRIKAM.to_string(), "--seats", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("seats"), "{err}");
    let (code, _, err) = run(&[
        "tenant",
        "add",
        &FABRIKAM.to_string(),
        "--seats",
        "3",
        "--expires",
        "31/12/2027",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("expires"), "{err}");
    let (code, out, _) = run(&["tenant", "set-seats", &t, "20"]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = run(&["tenant", "set-seats", &FABRIKAM.to_string(), "20"]);
    assert_ne!(code, 0);
    assert!(err.contains("not registered"), "{err}");
    let (code, _, _) = run(&["tenant", "suspend", &t]);
    assert_eq!(code, 0);
    let (code, out, _) = run(&["tenant", "list"]);
    assert_eq!(code, 0);
    let line = out
        .lines()
        .find(|l| l.starts_with(&t))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("suspended") && line.contains("20") && line.contains("2027-12-31"),
        "{line}"
    );
    let (code, _, _) = run(&["tenant", "activate", &t]);
    assert_eq!(code, 0);
    let (code, _, err) = run(&["tenant", "frobnicate"]);
    assert_eq!(code, 2, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_the_app_writes_contains_a_token_or_a_upn() {
    let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scan.db");
    let mut env = settings_map(&sim.url(), &db);
    env.insert("GROUPMGR_LOG".into(), "debug".into());
    // As the Functions host starts it (the host runs the timer and queue functions, which this
    // test posts itself): no in-process schedule racing them.
    env.insert("FUNCTIONS_CUSTOMHANDLER_WORKER_ID".into(), "test-worker".into());
    assert!(
        groupmgr(&env, &["tenant", "add", &CONTOSO.to_string(), "--seats", "3"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let mut served = serve(&env);
    let http = reqwest::Client::new();
    let base = format!("http://{}", served.addr);

    let aliases = ["admin", "adelev", "alexw", "meganb"];
    let mut tokens = Vec::new();
    let mut upns = Vec::new();
    for alias in aliases {
        tokens.push(sim.user_token(CONTOSO, alias));
        upns.push(format!("{alias}@contoso.onmicrosoft.com"));
    }
    tokens.push(sim.user_token(FABRIKAM, "kim"));
    upns.push("kim@fabrikam.onmicrosoft.com".into());
    let mut expired = sim.api_claims(&m365_sim::TokenSpec::user(CONTOSO, "pattif"));
    expired["exp"] = serde_json::json!(chrono::Utc::now().timestamp() - 3600);
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": sim.current_kid()});
    tokens.push(sim.sign(&header, &expired));
    upns.push("pattif@contoso.onmicrosoft.com".into());

    for (i, token) in tokens.iter().enumerate() {
        for path in [
            "/api/groups",
            "/api/policy/group-creation",
            "/api/logs?since=2026-01-01",
        ] {
            let resp = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains(token.as_str()) && !body.contains(&upns[i]),
                "response leaks caller data: {body}"
            );
        }
        // A token in the wrong place (query string, odd header) must not be logged either.
        let _ = http
            .get(format!("{base}/api/groups?access_token={token}"))
            .header("x-debug", token.as_str())
            .send()
            .await
            .unwrap();
    }
    // One invocation as the host forwards it, with its invocation id.
    let invocation = "5d8e7c4a-3b2a-4f1e-9d0c-1a2b3c4d5e6f";
    let _ = http
        .get(format!("{base}/api/groups"))
        .bearer_auth(&tokens[0])
        .header("x-azure-functions-invocationid", invocation)
        .send()
        .await
        .unwrap();
    // A timer and a queue invocation, as the host posts them.
    let (timer_invocation, queue_invocation) = (
        "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d",
        "8b7c6d5e-4f3a-4b2c-9d0e-1f2a3b4c5d6e",
    );
    let timer = http
        .post(format!("{base}/SyncScheduler"))
        .header("x-azure-functions-invocationid", timer_invocation)
        .json(&serde_json::json!({"Data": {"timer": {"IsPastDue": false}}, "Metadata": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(timer.status().as_u16(), 200);
    let message = format!("{{\"tenantId\":\"{CONTOSO}\",\"scheduledAt\":\"2026-11-27T10:30:00Z\"}}");
    let queue = http
        .post(format!("{base}/TenantSync"))
        .header("x-azure-functions-invocationid", queue_invocation)
        .json(&serde_json::json!({"Data": {"message": message}, "Metadata": {"DequeueCount": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status().as_u16(), 200, "{}", queue.text().await.unwrap());
    sigterm(&served.child);
    wait_exit(&mut served.child, Duration::from_secs(15));
    served.join_readers();

    let stdout = served.stdout.lock().unwrap().clone();
    let stderr = served.stderr.lock().unwrap().clone();
    assert!(
        stdout.contains("\"event\":\"request\""),
        "the run logged requests: {stdout}"
    );
    // Observability: one JSON line per invocation with its id, function, tenant, status,
    // outcome and duration.
    let logged = |id: &str| -> serde_json::Value {
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.to_string().contains(id))
            .collect();
        assert_eq!(lines.len(), 1, "one line for invocation {id}: {lines:?}");
        let line = lines.into_iter().next().unwrap();
        if line["fields"].is_object() {
            line["fields"].clone()
        } else {
            line
        }
    };
    for (id, function, tenant) in [
        (timer_invocation, "SyncScheduler", String::new()),
        (queue_invocation, "TenantSync", CONTOSO.to_string()),
    ] {
        let fields = logged(id);
        assert_eq!(fields["event"], "request", "{fields}");
        assert_eq!(fields["function"], function, "{fields}");
        assert_eq!(fields["method"], "POST", "{fields}");
        assert_eq!(fields["tenant_id"], tenant, "{fields}");
        assert_eq!(fields["status"], 200, "{fields}");
        assert_eq!(fields["outcome"], "success", "{fields}");
        assert!(fields["duration_ms"].as_f64().is_some(), "{fields}");
    }
    let line = logged(invocation);
    let fields = &line;
    assert_eq!(fields["event"], "request", "{line}");
    assert_eq!(fields["invocation_id"], invocation, "{line}");
    assert_eq!(fields["function"], "Groups", "{line}");
    assert_eq!(fields["tenant_id"], CONTOSO.to_string(), "{line}");
    assert_eq!(fields["status"], 200, "{line}");
    assert_eq!(fields["outcome"], "success", "{line}");
    assert!(fields["duration_ms"].as_f64().is_some(), "{line}");
    assert_eq!(fields["user"], "[redacted]", "{line}");
    let mut files = vec![];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        files.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    assert!(files.iter().any(|(n, _)| n.ends_with("scan.db")));
    let haystacks: Vec<(String, Vec<u8>)> = [
        ("stdout".to_string(), stdout.into_bytes()),
        ("stderr".to_string(), stderr.into_bytes()),
    ]
    .into_iter()
    .chain(files)
    .collect();
    for (name, bytes) in &haystacks {
        let lower = String::from_utf8_lossy(bytes).to_lowercase();
        for token in &tokens {
            let signature = token.rsplit('.').next().unwrap();
            assert!(!lower.contains(&token.to_lowercase()), "{name} contains a raw token");
            assert!(
                !lower.contains(&signature.to_lowercase()),
                "{name} contains a token signature"
            );
        }
        for upn in &upns {
            assert!(!lower.contains(upn), "{name} contains the UPN {upn}");
            // UTF-16 (as SQL Server would store NVARCHAR) too.
            let utf16: Vec<u8> = upn.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert!(
                !bytes.windows(utf16.len()).any(|w| w == utf16.as_slice()),
                "{name} contains a UTF-16 UPN"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_command_runs_one_tenant_sync_and_reports_it() {
    let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = settings_map(&sim.url(), &dir.path().join("sync.db"));
    env.insert(
        "GROUPMGR_PUBLISHER_ID".into(),
        "11111111-2222-3333-4444-555555555555".into(),
    );
    let t = CONTOSO.to_string();
    assert!(
        groupmgr(&env, &["tenant", "add", &t, "--seats", "3"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let run = |args: &[&str]| {
        let out = groupmgr(&env, args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, out, err) = run(&["sync", &t]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "one summary line: {out}");
    assert!(out.contains("full sync, 300 groups, 300 rows written"), "{out}");
    assert!(out.contains("Teams report concealed"), "the default: {out}");
    let blobs: u64 = out
        .split(" audit blobs")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(blobs > 300, "{out}");
    // Not a terminal: no spinner on stderr, only the operator's warning that the tenant
    // conceals report names (the default).
    assert!(err.lines().all(|l| l.contains("teams_report_concealed")), "{err}");
    let (code, out, _) = run(&["sync", &t]);
    assert_eq!(code, 0);
    assert!(
        out.contains("incremental sync, 0 groups, 0 rows written; activity: 0 audit blobs"),
        "{out}"
    );
    let (code, _, err) = run(&["sync", "not-a-tenant"]);
    assert_ne!(code, 0);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let (code, _, err) = run(&["sync", &FABRIKAM.to_string()]);
    assert_ne!(code, 0, "not registered");
    assert!(err.contains("not registered"), "{err}");
}

/// The production build (`--no-default-features`: no embedded m365-sim, what
/// `scripts/package.sh` ships) starts as the host starts it and serves health; it has no
/// `dev` command. CI builds it and names it in `GROUPMGR_PRODUCTION_BIN`.
#[tokio::test(flavor = "multi_thread")]
async fn the_production_build_starts_and_serves_health() {
    let Some(bin) = std::env::var_os("GROUPMGR_PRODUCTION_BIN") else {
        common::skip::skip(
            "the_production_build_starts_and_serves_health",
            "GROUPMGR_PRODUCTION_BIN is not set (.ci/run builds it: cargo build --no-default-features --bin groupmgr)",
            common::skip::OnCi::Required,
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = settings_map("http://127.0.0.1:9", &dir.path().join("prod.db"));
    let out = std::process::Command::new(&bin)
        .arg("dev")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no dev command in production");
    let mut served = common::binary::serve_binary(std::path::Path::new(&bin), &env);
    let health = reqwest::get(format!("http://{}/api/health", served.addr))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    sigterm(&served.child);
    assert!(wait_exit(&mut served.child, Duration::from_secs(15)).success());
    served.join_readers();
}

/// Two sims with the same seeds and the same frozen clock (so the same tenant and the same
/// audit feed), each with its own database: one for the runs under test, one for the
/// reference run. The binary works in real time, a few seconds past the sims' clock.
struct SyncBench {
    sim: Sim,
    env: std::collections::HashMap<String, String>,
    reference: Sim,
    reference_env: std::collections::HashMap<String, String>,
    _dir: tempfile::TempDir,
}

impl SyncBench {
    async fn start(groups: usize, settings: &[(&str, &str)]) -> Self {
        let options = || m365_sim::SimOptions {
            groups,
            // Small delta and audit pages (many steps to be killed in), SharePoint's 200 rows
            // to a list page.
            paging: m365_sim::Paging {
                list_items_page: 200,
                ..m365_sim::Paging::small()
            },
            audit: m365_sim::audit::AuditOptions {
                records_per_blob: 3,
                page_size: 5,
                ..Default::default()
            },
            ..Default::default()
        };
        let sim = Sim::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), options())
            .await
            .unwrap();
        let reference = Sim::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), options())
            .await
            .unwrap();
        let at = chrono::Utc::now();
        sim.state.set_clock(at);
        reference.state.set_clock(at);
        let dir = tempfile::tempdir().unwrap();
        let env_for = |sim: &Sim, db: &str| {
            let mut env = settings_map(&sim.url(), &dir.path().join(db));
            env.insert(
                "GROUPMGR_PUBLISHER_ID".into(),
                "11111111-2222-3333-4444-555555555555".into(),
            );
            for (k, v) in settings {
                env.insert(k.to_string(), v.to_string());
            }
            let out = groupmgr(&env, &["tenant", "add", &CONTOSO.to_string(), "--seats", "3"])
                .output()
                .unwrap();
            assert!(out.status.success());
            env
        };
        let env = env_for(&sim, "runs.db");
        let reference_env = env_for(&reference, "reference.db");
        Self {
            sim,
            env,
            reference,
            reference_env,
            _dir: dir,
        }
    }

    fn sync(&self) -> std::process::Command {
        groupmgr(&self.env, &["sync", &CONTOSO.to_string()])
    }

    /// `groupmgr sync` until one run does the work (a killed run's lease may still be held).
    fn sync_to_the_end(&self) -> String {
        let started = Instant::now();
        loop {
            let out = self.sync().output().unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
            if !stdout.contains("already running") {
                return stdout;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the lease was never freed");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The list after one uninterrupted `groupmgr sync` of the reference tenant.
    fn reference_rows(&self) -> std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
        let out = groupmgr(&self.reference_env, &["sync", &CONTOSO.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            !stdout.contains("already running"),
            "one run, start to finish: {stdout}"
        );
        sim_list_rows(&self.reference)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sync_processes_for_one_tenant_one_works_and_a_killed_one_is_taken_over() {
    let bench = SyncBench::start(300, &[("GROUPMGR_SYNC_LEASE", "2")]).await;
    // Two runs started together: one works, the other ends at once as already running.
    let mut both: Vec<_> = (0..2)
        .map(|_| bench.sync().stdout(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    let outputs: Vec<String> = both
        .drain(..)
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    let working = outputs.iter().filter(|o| o.contains("full sync, 300 groups")).count();
    let waiting = outputs
        .iter()
        .filter(|o| o.contains("a sync is already running"))
        .count();
    assert_eq!((working, waiting), (1, 1), "{outputs:?}");
    let reference = bench.reference_rows();
    assert_eq!(reference.len(), 300);
    common::rows::assert_rows_equal(&sim_list_rows(&bench.sim), &reference);

    // A full resync whose worker dies without a word (kill -9) half-way through its writes.
    let hold = Hold::new();
    bench.sim.state.faults.arm(
        FaultRule::new("/v1.0/$batch", FaultKind::Hold(hold.clone()))
            .method("POST")
            .after(12)
            .times(1),
    );
    let mut worker = groupmgr(&bench.env, &["sync", &CONTOSO.to_string(), "--full"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), hold.arrived())
        .await
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &worker.id().to_string()])
        .status();
    assert!(!wait_exit(&mut worker, Duration::from_secs(10)).success());
    hold.release();
    // Its lease stands until it expires (2 s here), then the next run takes over.
    let blocked = bench.sync().output().unwrap();
    assert!(String::from_utf8(blocked.stdout).unwrap().contains("already running"));
    std::thread::sleep(Duration::from_millis(2200));
    let took_over = bench.sync_to_the_end();
    assert!(took_over.contains("full sync"), "the full round resumed: {took_over}");
    common::rows::assert_rows_equal(&sim_list_rows(&bench.sim), &bench.reference_rows());
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_runs_killed_at_random_points_end_as_one_uninterrupted_run() {
    // One-second invocations and leases, and a tenant whose first sync takes many of them: a
    // run is killed within an invocation or between two.
    let bench = SyncBench::start(5000, &[("GROUPMGR_SYNC_BUDGET", "1"), ("GROUPMGR_SYNC_LEASE", "1")]).await;
    // A fixed sequence of kill times (ms after start).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = Vec::new();
    for _ in 0..20 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let ms = 200 + (seed >> 33) % 700;
        let mut run = bench.sync().stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        // Killed while it works (not once the sync is done).
        let working = run.try_wait().unwrap().is_none();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &run.id().to_string()])
            .status();
        wait_exit(&mut run, Duration::from_secs(10));
        kills.push((ms, working));
        // Its lease expires before the next run starts, so that one works too.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let killed_working = kills.iter().filter(|(_, w)| *w).count();
    assert!(killed_working >= 18, "most runs were killed mid-sync: {kills:?}");
    let written = sim_list_rows(&bench.sim).len();
    assert!(written > 0, "the killed runs got somewhere");
    let last = bench.sync_to_the_end();
    assert!(
        !last.contains("full sync, 5000 groups, 5000 rows"),
        "the runs before it did work: {last}"
    );
    let reference = bench.reference_rows();
    assert_eq!(reference.len(), 5000);
    common::rows::assert_rows_equal(&sim_list_rows(&bench.sim), &reference);
    eprintln!("killed after (ms, mid-sync): {kills:?}");
}
