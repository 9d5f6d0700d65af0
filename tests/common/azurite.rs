//! Azurite (npm `azurite` 3.35.0, installed by `.ci/run`) for Blob Storage tests: started on a free
//! loopback port with a throwaway data folder, stopped on drop. Found at `$AZURITE_BLOB`,
//! `.ci/node/node_modules/.bin/azurite-blob` or on `PATH`; when it is not installed the tests
//! that need it say SKIPPED (CI installs it, so they run there).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Azurite {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AZURITE_BLOB") {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/node/node_modules/.bin/azurite-blob");
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("azurite-blob"))
            .find(|p| p.exists())
    })
}

impl Azurite {
    /// Starts Azurite's blob service, or reports the test as skipped and returns `None`.
    pub fn start(test: &str) -> Option<Azurite> {
        let Some(bin) = binary() else {
            let _ = writeln!(
                std::io::stderr(),
                "{test}: SKIPPED (Azurite not installed: run .ci/run, or npm install azurite@3.35.0 into .ci/node)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args([
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--location",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Azurite starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "Azurite did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Azurite { child, port, _dir: dir })
    }

    /// The `AzureWebJobsStorage` connection string for it.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            groupmgr::state::AZURITE_KEY,
            self.port
        )
    }
}
