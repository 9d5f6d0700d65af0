//! Running the real `groupmgr` binary: commands, and `serve` with its output captured.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_groupmgr");

pub fn groupmgr(env: &std::collections::HashMap<String, String>, args: &[&str]) -> Command {
    command(std::path::Path::new(BIN), env, args)
}

fn command(bin: &std::path::Path, env: &std::collections::HashMap<String, String>, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout: std::sync::Arc<std::sync::Mutex<String>>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The threads copying the pipes; joined when the process has exited, so that what is
    /// read afterwards is all the process wrote.
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Starts `groupmgr serve` and waits for its "listening" line.
pub fn serve(env: &std::collections::HashMap<String, String>) -> Served {
    serve_binary(std::path::Path::new(BIN), env)
}

/// `serve` of another build of the binary (the production build).
pub fn serve_binary(bin: &std::path::Path, env: &std::collections::HashMap<String, String>) -> Served {
    let mut child = command(bin, env, &["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    let sink = stdout.clone();
    let out_reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("\"event\":\"listening\"") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let _ = tx.send(v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap());
            }
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    let err_reader = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = err.read_to_string(&mut buf);
        sink.lock().unwrap().push_str(&buf);
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no listening line; stderr: {}", stderr.lock().unwrap()));
    Served {
        child,
        addr,
        stdout,
        stderr,
        readers: vec![out_reader, err_reader],
    }
}

pub fn sigterm(child: &Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

/// Waits for the process to exit; a process still running after `within` is killed and the
/// test fails.
pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command to completion: (exit code, stdout, stderr).
pub fn run(env: &std::collections::HashMap<String, String>, args: &[&str]) -> (i32, String, String) {
    let out = groupmgr(env, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A server a test forgot to stop (or that a failed assertion left running) is killed, so
/// that no `groupmgr serve` outlives its test.
impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Served {
    /// Stops the server with SIGTERM and waits for it to exit (failing if it does not), then
    /// for the pipes to be read to their end; returns everything it wrote (stdout, stderr).
    pub fn stop(mut self) -> (String, String) {
        sigterm(&self.child);
        let status = wait_exit(&mut self.child, Duration::from_secs(15));
        self.join_readers();
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        assert!(status.success(), "serve exited with {status:?}; stderr: {err}");
        (out, err)
    }

    /// Joins the pipe readers (they end when the process has exited and closed its pipes).
    pub fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            reader.join().expect("a pipe reader panicked");
        }
    }
}
