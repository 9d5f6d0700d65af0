//! `scripts/package.sh`: the deployable Functions folder and zip. Checks the layout the host
//! and zip deploy expect (host.json at the root, one folder per function with its
//! function.json, the binary where host.json's `defaultExecutablePath` says, executable in the
//! zip too), and that the packaged binary starts as the host starts it and answers the
//! readiness probe.
//!
//! By default it packages the debug binary the tests build anyway (`--binary`) into a
//! temporary folder; `GROUPMGR_PACKAGE_DIR=dist/groupmgr-functions` checks a release package
//! made by `scripts/package.sh` instead.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn package() -> (PathBuf, Option<tempfile::TempDir>) {
    if let Some(dir) = std::env::var_os("GROUPMGR_PACKAGE_DIR") {
        // Relative to the repository root, as CI gives it.
        let dir = root().join(dir);
        let dir = std::fs::canonicalize(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        return (dir, None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("groupmgr-functions");
    let status = Command::new(root().join("scripts/package.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_groupmgr"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("package.sh runs");
    assert!(status.success(), "package.sh failed");
    (out, Some(tmp))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_package_is_what_the_functions_host_runs() {
    let (dir, _tmp) = package();
    // host.json points at the binary, which is there and executable.
    let host = json(&dir.join("host.json"));
    assert_eq!(host, json(&root().join("host.json")), "host.json is copied unchanged");
    let exe = host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .unwrap();
    let args: Vec<&str> = host["customHandler"]["description"]["arguments"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let binary = dir.join(exe);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&binary)
        .expect("the binary is packaged")
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "the binary is executable");

    // Every function folder, and nothing else beside host.json and the binary.
    let mut expected: Vec<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "host.json" || name == exe {
            continue;
        }
        assert!(entry.path().join("function.json").is_file(), "{name}/function.json");
        assert_eq!(
            json(&entry.path().join("function.json")),
            json(&root().join("functions").join(&name).join("function.json"))
        );
        found.push(name);
    }
    found.sort();
    assert_eq!(found, expected);

    // The zip holds the same files at its root; the binary keeps its executable bit.
    let zip_path = dir.with_extension("zip");
    let mut zip = zip_entries(&zip_path);
    zip.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = zip.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"host.json"), "{names:?}");
    assert!(names.contains(&exe), "{names:?}");
    for f in &expected {
        assert!(
            names.contains(&format!("{f}/function.json").as_str()),
            "{f} in {names:?}"
        );
    }
    let exe_mode = zip.iter().find(|(n, _)| n == exe).unwrap().1;
    assert!(exe_mode & 0o111 != 0, "executable in the zip: {exe_mode:o}");

    // Started as the host starts it (its arguments, the port in FUNCTIONS_CUSTOMHANDLER_PORT,
    // the worker id set), it answers the readiness probe `GET /`.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let work = tempfile::tempdir().unwrap();
    let mut child = Command::new(&binary)
        .args(&args)
        .current_dir(&dir)
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env(
            "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
            "3f1e0c5e-6a3b-4b1e-9e0e-2f4a5b6c7d8e",
        )
        .env("GROUPMGR_CLIENT_ID", "6731de76-14a6-49ae-97bc-6eba6914391e")
        .env("GROUPMGR_CLIENT_SECRET", "not-used-for-readiness")
        .env("GROUPMGR_INDEX_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .env("GROUPMGR_ALLOWED_CLIENTS", "5b7d9f1a-3c5e-4b7d-9f1a-3c5e7b9d1f3a")
        .env(
            "GROUPMGR_DATABASE",
            format!("sqlite:{}", work.path().join("g.db").display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the packaged binary starts");
    let started = Instant::now();
    let answer = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the packaged binary exited with {status}: {err}");
        }
        if let Some(answer) = probe(port) {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no readiness answer");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// `GET /` over a plain socket, as the host's probe does; `None` while nothing listens.
fn probe(port: u16) -> Option<String> {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// (name, unix mode) of each entry of a zip file, read from its central directory.
fn zip_entries(path: &Path) -> Vec<(String, u32)> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // End of central directory: signature 0x06054b50, at most 64 KiB + 22 bytes from the end.
    let eocd = (0..data.len().saturating_sub(21))
        .rev()
        .find(|&i| data[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .expect("a zip end record");
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let count = u16_at(eocd + 10);
    let mut at = u32_at(eocd + 16) as usize;
    let mut entries = Vec::new();
    for _ in 0..count {
        assert_eq!(data[at..at + 4], [0x50, 0x4b, 0x01, 0x02], "central directory entry");
        let (name_len, extra_len, comment_len) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let external = u32_at(at + 38);
        let name = String::from_utf8(data[at + 46..at + 46 + name_len].to_vec()).unwrap();
        entries.push((name, external >> 16));
        at += 46 + name_len + extra_len + comment_len;
    }
    entries
}
