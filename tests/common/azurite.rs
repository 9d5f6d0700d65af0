//! Azurite (npm `azurite` 3.35.0, installed by `.ci/run`) for Blob Storage tests: started on a free
//! loopback port with a throwaway data folder, stopped on drop. Found at `$AZURITE_BLOB`,
//! `.ci/node/node_modules/.bin/azurite-blob` or on `PATH`; when it is not installed the tests
//! that need it say SKIPPED (CI installs it, so they run there).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Azurite {
    children: Vec<Child>,
    pub port: u16,
    pub queue_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn binary(service: &str) -> Option<PathBuf> {
    let name = format!("azurite-{service}");
    if let Some(p) = std::env::var_os(format!("AZURITE_{}", service.to_uppercase())) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/node/node_modules/.bin")
        .join(&name);
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(&name))
            .find(|p| p.exists())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Azurite {
    /// Starts Azurite's blob and queue services, or reports the test as skipped and returns
    /// `None`.
    pub fn start(test: &str) -> Option<Azurite> {
        let (Some(blob), Some(queue)) = (binary("blob"), binary("queue")) else {
            super::skip::skip(
                test,
                "Azurite not installed: run .ci/run, which installs it into .ci/node",
                super::skip::OnCi::Required,
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (port, queue_port) = (free_port(), free_port());
        let spawn = |bin: PathBuf, service: &str, port: u16| {
            Command::new(bin)
                .args(["--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"])
                .arg(format!("--{service}Host"))
                .arg("127.0.0.1")
                .arg(format!("--{service}Port"))
                .arg(port.to_string())
                .arg("--location")
                .arg(dir.path().join(service))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Azurite starts")
        };
        let children = vec![spawn(blob, "blob", port), spawn(queue, "queue", queue_port)];
        let started = Instant::now();
        for p in [port, queue_port] {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(started.elapsed() < Duration::from_secs(60), "Azurite did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(Azurite {
            children,
            port,
            queue_port,
            _dir: dir,
        })
    }

    /// The `AzureWebJobsStorage` connection string for it.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            groupmgr::storage::AZURITE_KEY,
            self.port,
            self.queue_port
        )
    }
}
