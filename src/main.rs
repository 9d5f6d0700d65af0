//! The `groupmgr` binary. With no arguments it serves, which is how the Functions host starts
//! it. The commands live in `groupmgr::cli`.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: it hands freed memory back to the system
/// promptly, where glibc's keeps what a large sync once used (the 100,000-group benchmark's
/// peak, `benches/activity.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match groupmgr::cli::parse() {
        Ok(cli) => groupmgr::cli::run(cli).await,
        Err(code) => code,
    }
}
