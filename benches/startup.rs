//! Start-up: process start to the first 200 on `GET /` (the host's readiness probe; target
//! ≤ 50 ms), and idle RSS once ready (target ≤ 30 MiB). Spawns the real binary 30 times with
//! m365-sim as the authority and a fresh SQLite file each time, and prints median and p90.
//!
//! Run: `cargo bench --bench startup`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

const RUNS: usize = 30;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200"
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo test --benches` runs bench targets once with `--bench` absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("startup bench: skipped outside `cargo bench`");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(m365_sim::Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_groupmgr");
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let mut startup_ms = Vec::new();
    let mut rss_mib = Vec::new();
    for i in 0..RUNS {
        let port = free_port();
        let db = dir.path().join(format!("s{i}.db"));
        let started = Instant::now();
        let mut child = Command::new(bin)
            .arg("serve")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env(
                "GROUPMGR_CLIENT_ID",
                m365_sim::directory::GROUPMGR_CLIENT_ID.to_string(),
            )
            .env("GROUPMGR_CLIENT_SECRET", m365_sim::directory::GROUPMGR_CLIENT_SECRET)
            .env("GROUPMGR_AUTHORITY_HOST", sim.url())
            .env("GROUPMGR_GRAPH_ENDPOINT", sim.url())
            .env("GROUPMGR_MANAGEMENT_ENDPOINT", sim.url())
            .env("GROUPMGR_DATABASE", format!("sqlite:{}", db.display()))
            .env("GROUPMGR_INDEX_KEY", &key)
            .env(
                "GROUPMGR_ALLOWED_CLIENTS",
                m365_sim::directory::UI_CLIENT_ID.to_string(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while !ready(port) {
            assert!(started.elapsed() < Duration::from_secs(10), "not ready in 10 s");
            std::thread::sleep(Duration::from_micros(500));
        }
        startup_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        // Idle: after the background JWKS fetch, with nothing to do.
        std::thread::sleep(Duration::from_millis(300));
        rss_mib.push(rss_kib(child.id()) as f64 / 1024.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    startup_ms.sort_by(f64::total_cmp);
    rss_mib.sort_by(f64::total_cmp);
    println!(
        "startup to first 200 on GET /: median {:.1} ms, p90 {:.1} ms, max {:.1} ms ({RUNS} runs)",
        percentile(&startup_ms, 0.5),
        percentile(&startup_ms, 0.9),
        startup_ms[startup_ms.len() - 1]
    );
    println!(
        "idle RSS: median {:.1} MiB, max {:.1} MiB",
        percentile(&rss_mib, 0.5),
        rss_mib[rss_mib.len() - 1]
    );
}
