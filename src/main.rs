//! The `groupmgr` binary. With no arguments it serves, which is how the Functions host starts
//! it. The commands live in `groupmgr::cli`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match groupmgr::cli::parse() {
        Ok(cli) => groupmgr::cli::run(cli).await,
        Err(code) => code,
    }
}
