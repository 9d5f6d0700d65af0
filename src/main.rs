//! The `groupmgr` binary. With no arguments it serves, which is how the Functions host starts
//! it. The commands live in `groupmgr::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("groupmgr: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match groupmgr::cli::parse() {
            Ok(cli) => groupmgr::cli::run(cli).await,
            Err(code) => code,
        }
    })
}

/// glibc raises its mmap threshold as large blocks are freed; after that, a sync's large
/// buffers (audit content blobs of tens of megabytes, the tables of its maps) come from the
/// heap and stay in the process's memory once freed. A fixed threshold keeps every block of
/// 1 MiB or more mapped on its own and handed back to the system when freed (the 100,000-group
/// benchmark, `benches/activity.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter; it is called once, before any other
    // thread exists. A refusal (0) leaves glibc's default, which is harmless.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_system() {}
