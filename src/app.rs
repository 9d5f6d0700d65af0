//! Start-up, kept apart from routes: build the shared state from settings, bind, serve until
//! a shutdown signal. `App` is the one small struct every handler gets a handle to.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::{Gate, JwksCache, JwksOptions, TokenClient, TokenValidator};
use crate::config::{ServeSettings, Settings};
use crate::crypto::UpnIndexer;
use crate::jobs::on_demand::{SyncLauncher, TenantSyncQueue};
use crate::microsoft::graph::GraphClient;
use crate::microsoft::management::ManagementClient;
use crate::microsoft::retry::RetryPolicy;
use crate::state::TenantState;
use crate::store::Store;
use crate::telemetry::TenantLogSink;

/// Shared state of a running handler.
pub struct App {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub gate: Gate,
    /// The one outbound HTTP client.
    pub http: reqwest::Client,
    /// The tenant log / sealed-UPN writer, when running as a server.
    pub tenant_log: Option<TenantLogSink>,
    /// On-behalf-of and app-only token acquisition.
    pub tokens: TokenClient,
    pub graph: GraphClient,
    /// Graph's resource identifier in this cloud (the token audience), e.g.
    /// `https://graph.microsoft.com`. Not the endpoint: m365-sim serves Graph on loopback
    /// while tokens still name the cloud's resource.
    pub graph_resource: String,
    /// The Office 365 Management Activity API, when configured (publisher id + endpoint).
    pub management: Option<ManagementClient>,
    /// Job state (delta links, audit checkpoints): Blob Storage or the embedded store.
    pub state: Arc<dyn TenantState>,
    /// How `POST /api/sync` starts a sync: the `tenant-sync` queue, or in process.
    pub sync: SyncLauncher,
}

/// Knobs tests turn; production uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    pub jwks: JwksOptions,
    pub graph_retry: RetryPolicy,
    /// Whether on-demand syncs go through the `tenant-sync` queue (needs storage settings);
    /// `None`: when a Functions host runs us, as its `TenantSync` function reads that queue.
    pub queue_syncs: Option<bool>,
}

impl App {
    /// Builds the app on an already opened store.
    pub fn new(
        settings: Settings,
        serve: ServeSettings,
        store: Arc<dyn Store>,
        tenant_log: Option<TenantLogSink>,
        options: AppOptions,
    ) -> anyhow::Result<Arc<Self>> {
        let http = crate::microsoft::http_client();
        let authority = settings.authority_host.origin();
        let jwks = Arc::new(JwksCache::new(&authority, http.clone(), options.jwks));
        let validator = TokenValidator::new(&authority, serve.client_id, jwks);
        let gate = Gate::new(
            validator,
            store.clone(),
            UpnIndexer::new(serve.index_key.clone()),
            tenant_log.clone(),
        );
        let tokens = TokenClient::new(http.clone(), &authority, serve.client_id, &serve.credential)?;
        let graph = GraphClient::new(&settings.graph_endpoint, http.clone(), options.graph_retry.clone());
        let graph_resource = settings.cloud.graph_endpoint().to_string();
        let management = settings.for_audit().ok().map(|(publisher, endpoint)| {
            ManagementClient::new(&endpoint, publisher, http.clone(), options.graph_retry.clone())
        });
        let storage = settings.storage_access().map_err(|e| anyhow::anyhow!(e))?;
        let state: Arc<dyn TenantState> = match &storage {
            Some(access) => Arc::new(crate::state::BlobState::new(access.clone())?),
            None => Arc::new(crate::state::EmbeddedState(store.clone())),
        };
        let queue_syncs = options
            .queue_syncs
            .unwrap_or_else(crate::jobs::local_schedule::under_functions_host);
        let sync = match storage {
            Some(access) if queue_syncs => SyncLauncher::Queue(Box::new(TenantSyncQueue::new(access)?)),
            _ => SyncLauncher::InProcess(Default::default()),
        };
        Ok(Arc::new(Self {
            settings,
            store,
            gate,
            http,
            tenant_log,
            tokens,
            graph,
            graph_resource,
            management,
            state,
            sync,
        }))
    }
}

/// Builds the app for `serve` and `dev`: starts the tenant-log writer and installs the
/// logging sinks (redacted stdout, sealed tenant log), then the app on top of them.
pub fn start(settings: Settings, serve: ServeSettings, store: Arc<dyn Store>) -> anyhow::Result<Arc<App>> {
    let (sink, _writer) = TenantLogSink::start(store.clone(), crate::telemetry::SinkOptions::default());
    crate::telemetry::init_json(Some(sink.clone()));
    App::new(settings, serve, store, Some(sink), AppOptions::default())
}

/// Binds 127.0.0.1 on the configured port (0 = any free port).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// Serves until `shutdown` resolves; the JWKS is warmed in the background so that start-up
/// does not wait on Entra.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let warm = app.clone();
    tokio::spawn(async move {
        match warm.gate.validator().jwks().prefetch().await {
            Ok(n) => tracing::info!(event = "jwks_loaded", keys = n),
            Err(e) => tracing::warn!(event = "jwks_unavailable", error = %e),
        }
    });
    crate::host::serve(app.clone(), listener, shutdown).await;
    // Requests are done; write what they logged before the process exits.
    if let Some(sink) = &app.tenant_log {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), sink.flush()).await;
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
