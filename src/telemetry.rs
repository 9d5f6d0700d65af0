//! Tracing setup. `serve` writes one JSON object per line to stdout, which the Functions host
//! ships to Application Insights; the operator commands write plain text to stderr so that
//! their stdout stays parseable. No event carries a token, secret or UPN (see `auth`).

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("GROUPMGR_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON lines on stdout, for `serve` and `dev`.
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter())
        .with_writer(std::io::stdout)
        .try_init();
}

/// Plain text on stderr, warnings and above unless `GROUPMGR_LOG` says otherwise, for
/// operator commands.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(
            EnvFilter::try_from_env("GROUPMGR_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}
