//! `App`: the one small struct of shared state every handler and job gets a handle to — the
//! settings, the store, the gate, the outbound clients and the job state — built from settings
//! and an opened store. Starting and stopping a server around it is `startup.rs`.

use std::sync::Arc;

use crate::auth::{Gate, JwksCache, JwksOptions, TokenClient, TokenValidator};
use crate::config::{ServeSettings, Settings};
use crate::crypto::UpnIndexer;
use crate::jobs::on_demand::{QUEUE, SyncLauncher};
use crate::jobs::state::TenantState;
use crate::microsoft::graph::GraphClient;
use crate::microsoft::management::ManagementClient;
use crate::microsoft::retry::RetryPolicy;
use crate::storage::QueueSender;
use crate::store::Store;
use crate::telemetry::TenantLogSink;

/// Shared state of a running handler.
pub struct App {
    pub settings: Settings,
    /// Authenticates the API's cursors (derived from the index key).
    pub cursors: crate::crypto::CursorKey,
    /// People's pseudonyms in the activity kept in customers' lists (derived from the index
    /// key).
    pub pseudonyms: crate::crypto::PseudonymKey,
    pub store: Arc<dyn Store>,
    pub gate: Gate,
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
    /// The Management API's resource identifier (token audience): the cloud's documented
    /// host, or the configured endpoint where the cloud documents none.
    pub management_resource: String,
    /// Job state (delta links, audit checkpoints): Blob Storage or the embedded store.
    pub state: Arc<dyn TenantState>,
    /// How `POST /api/sync` starts a sync: the `tenant-sync` queue, or in process.
    pub sync: SyncLauncher,
    /// The time the jobs work in (`jobs::Clock`).
    pub clock: crate::jobs::Clock,
    /// Whether webhooks may go to loopback addresses over plain http (local runs and tests).
    pub webhook_loopback: bool,
}

/// Knobs tests turn; production uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    pub jwks: JwksOptions,
    /// The retry policy of Graph and Management API calls (tests shorten the waits).
    pub retry: RetryPolicy,
    /// Whether on-demand syncs go through the `tenant-sync` queue (needs storage settings);
    /// `None`: when a Functions host runs us, as its `TenantSync` function reads that queue.
    pub queue_syncs: Option<bool>,
    /// The jobs' clock (tests set m365-sim's).
    pub clock: crate::jobs::Clock,
    /// Let webhooks go to loopback addresses over plain http (tests' receivers); never in
    /// production, where an endpoint must be https on a public address.
    pub webhook_loopback: bool,
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
        let cursors = crate::crypto::CursorKey::derive(&serve.index_key);
        let pseudonyms = crate::crypto::PseudonymKey::new(&serve.index_key);
        let gate = Gate::new(
            validator,
            store.clone(),
            UpnIndexer::new(serve.index_key.clone()),
            tenant_log.clone(),
        )
        .allowing(settings.allowed_clients.clone());
        let tokens = TokenClient::new(http.clone(), &authority, serve.client_id, &serve.credential)?;
        let graph = GraphClient::new(&settings.graph_endpoint, http.clone(), options.retry.clone());
        let graph_resource = settings.cloud.graph_endpoint().to_string();
        let audit = settings.for_audit().ok();
        let management_resource = match (settings.cloud.management_endpoint(), &audit) {
            (Some(documented), _) => documented.to_string(),
            (None, Some((_, endpoint))) => endpoint.origin(),
            (None, None) => String::new(),
        };
        let management = audit.map(|(publisher, endpoint)| {
            ManagementClient::new(&endpoint, publisher, http.clone(), options.retry.clone())
        });
        let state = crate::jobs::state::open(&settings, &store)?;
        let sync = match &settings.storage {
            Some(access) if options.queue_syncs.unwrap_or(settings.functions_host) => {
                SyncLauncher::Queue(Box::new(QueueSender::new(access.clone(), QUEUE)?))
            }
            _ => SyncLauncher::InProcess(Default::default()),
        };
        Ok(Arc::new(Self {
            settings,
            cursors,
            pseudonyms,
            store,
            gate,
            tenant_log,
            tokens,
            graph,
            graph_resource,
            management,
            management_resource,
            state,
            sync,
            clock: options.clock,
            webhook_loopback: options.webhook_loopback,
        }))
    }
}
