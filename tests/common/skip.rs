//! Skipping a test, never silently. A skipped test says so on stderr and is listed in
//! `target/skipped-tests.txt`, which `.ci/run` prints at the end. Under CI (`CI=true`) a test
//! may skip only when its prerequisite is one CI's machine cannot have; otherwise the skip is
//! a failure.

use std::io::Write as _;

/// Whether CI's machine may lack the prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCi {
    /// CI provides it (`.ci/run` installs it): a skip under CI fails the test.
    Required,
    /// CI may not have it (a SQL Server; the shared reference folder beside the checkout).
    MayLack,
}

/// Records the skip of `test` for `why`, or fails it when CI must run it.
pub fn skip(test: &str, why: &str, on_ci: OnCi) {
    if on_ci == OnCi::Required && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: cannot run ({why}), and CI must run it");
    }
    let _ = writeln!(std::io::stderr(), "{test}: SKIPPED ({why})");
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(list) {
        let _ = writeln!(f, "{test}: {why}");
    }
}
