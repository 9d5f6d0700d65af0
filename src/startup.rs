//! Start-up, once for every way the server runs (`serve`, `dev`, and the tests): settings →
//! store → tenant log → app → listener, then serve until a shutdown signal, with the
//! in-process schedule when no Functions host runs the timer, and an explicit shutdown that
//! finishes in-flight requests and flushes the tenant log. (zero2prod's `Application::build`
//! + `run_until_stopped`.)

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::app::{App, AppOptions};
use crate::config::Settings;
use crate::store::Store;
use crate::telemetry::{SinkOptions, TenantLogSink};

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub app: AppOptions,
    /// Install the process-wide logging (redacted JSON on stdout, plus the sealed tenant log).
    /// Off in in-process tests, which run many apps in one process.
    pub logging: bool,
    /// Run the schedule (`SyncScheduler` → `TenantSync`) in this process; `None`: when no
    /// Functions host runs us (the host runs the timer and queue functions itself).
    pub schedule: Option<bool>,
}

impl StartOptions {
    /// What `serve` and `dev` use.
    pub fn production() -> Self {
        Self {
            logging: true,
            ..Default::default()
        }
    }
}

/// Serving without a client allowed would refuse every user; serving with any client allowed
/// would let any app a user consents to act with GroupMgr's rights.
fn require_clients(settings: &Settings) -> anyhow::Result<()> {
    if settings.allowed_clients.is_empty() {
        anyhow::bail!(
            "GROUPMGR_ALLOWED_CLIENTS: required to serve (the client id of the GroupMgr UI, comma-separated if several)"
        );
    }
    Ok(())
}

/// A bound, ready server.
pub struct Application {
    app: Arc<App>,
    listener: TcpListener,
    schedule: bool,
}

impl Application {
    /// Opens the configured store (applying migrations) and builds the application on it.
    pub async fn build(settings: Settings, options: StartOptions) -> anyhow::Result<Self> {
        // What `serve` cannot run without is checked before anything is opened.
        settings.for_serve()?;
        require_clients(&settings)?;
        let store = crate::store::open(&settings.database).await?;
        Self::build_with_store(settings, store, options).await
    }

    /// Builds the application on an opened store: checks the settings `serve` needs, starts
    /// the tenant-log writer, installs logging if asked, and binds 127.0.0.1 on the configured
    /// port (0 = any free port).
    pub async fn build_with_store(
        settings: Settings,
        store: Arc<dyn Store>,
        options: StartOptions,
    ) -> anyhow::Result<Self> {
        let serve = settings.for_serve()?;
        require_clients(&settings)?;
        let sink_options = SinkOptions {
            publisher: settings.publisher_key.clone(),
            ..SinkOptions::default()
        };
        let (sink, _writer) = TenantLogSink::start(store.clone(), sink_options);
        if options.logging {
            crate::telemetry::init_json(Some(sink.clone()));
        }
        let port = settings.port;
        let schedule = options.schedule.unwrap_or(!settings.functions_host);
        let app = App::new(settings, serve, store, Some(sink), options.app)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| anyhow::anyhow!("FUNCTIONS_CUSTOMHANDLER_PORT: cannot listen on 127.0.0.1:{port}: {e}"))?;
        Ok(Self {
            app,
            listener,
            schedule,
        })
    }

    pub fn address(&self) -> SocketAddr {
        // A bound TCP listener always has a local address.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish and writes what
    /// they logged. The JWKS is warmed in the background so that start-up does not wait on
    /// Entra; the in-process schedule starts with a first tick right away.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Self {
            app,
            listener,
            schedule,
        } = self;
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(event = "listening", addr = %addr, version = env!("CARGO_PKG_VERSION"));
        let warm = app.clone();
        tokio::spawn(async move {
            match warm.gate.validator().jwks().prefetch().await {
                Ok(n) => tracing::info!(event = "jwks_loaded", keys = n),
                Err(e) => tracing::warn!(event = "jwks_unavailable", error = %e),
            }
        });
        let scheduler = schedule.then(|| crate::jobs::schedule::spawn(app.clone()));
        crate::host::serve(app.clone(), listener, shutdown).await;
        if let Some(s) = scheduler {
            s.abort();
        }
        if let Some(sink) = &app.tenant_log {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), sink.flush()).await;
        }
    }
}

/// Resolves on SIGTERM (what the Functions host and App Service send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!(event = "shutdown", "shutting down; finishing in-flight requests");
}
