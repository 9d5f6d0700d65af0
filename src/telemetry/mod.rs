//! Logging. Events go to two sinks:
//! - stdout, one JSON object per line (the Functions host ships it to Application Insights),
//!   with sensitive fields redacted (`stdout.rs`);
//! - the tenant log in SQL, sealed to the tenant's own key (`tenant_log.rs`).
//!
//! What is sensitive is decided in one place, `catalog.rs`: every event has a static code and
//! a message template, and any field not on the clear list is sensitive. Operator commands
//! write plain text to stderr so that their stdout stays parseable.

pub mod catalog;
mod fields;
pub mod stdout;
pub mod tenant_log;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use tenant_log::{SinkOptions, TenantLogLayer, TenantLogSink};

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("GROUPMGR_LOG").unwrap_or_else(|_| EnvFilter::new(default))
}

/// The `serve`/`dev` subscriber: redacted JSON on stdout, plus the tenant log when given.
pub fn init_json(tenant_log: Option<TenantLogSink>) {
    let _ = tracing_subscriber::registry()
        .with(filter("info"))
        .with(stdout::StdoutJson)
        .with(tenant_log.map(TenantLogLayer))
        .try_init();
}

/// Plain text on stderr, warnings and above unless `GROUPMGR_LOG` says otherwise, for
/// operator commands.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(filter("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}
