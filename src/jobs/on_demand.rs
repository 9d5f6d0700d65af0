//! A sync of one tenant now (`POST /api/sync`). Under a Functions host the request becomes a
//! `tenant-sync` queue message, so the sync runs in `TenantSync` with the host's retries and
//! poison queue, exactly like a scheduled one. Standalone (`serve` without a host, `dev`)
//! nothing reads that queue: the sync runs in this process, at most one per tenant at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use base64::Engine as _;

use super::TenantSyncMessage;
use crate::app::App;
use crate::domain::TenantId;
use crate::state::StorageAccess;

/// The queue `TenantSync` reads (`functions/TenantSync/function.json`).
pub const QUEUE: &str = "tenant-sync";
/// Longest a queue write may take, retries included.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// How an on-demand sync is started.
pub enum SyncLauncher {
    Queue(Box<TenantSyncQueue>),
    InProcess(InProcess),
}

/// What happened to the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Launched {
    /// A message is on the queue.
    Queued,
    /// The sync runs in this process.
    Started,
    /// This process is syncing the tenant already.
    AlreadyRunning,
}

#[derive(Debug, thiserror::Error)]
#[error("the tenant-sync queue is unavailable: {0}")]
pub struct QueueUnavailable(pub String);

impl SyncLauncher {
    pub async fn launch(&self, app: &Arc<App>, msg: TenantSyncMessage) -> Result<Launched, QueueUnavailable> {
        match self {
            SyncLauncher::Queue(q) => q.send(&msg).await.map(|()| Launched::Queued),
            SyncLauncher::InProcess(p) => Ok(p.start(app, msg)),
        }
    }
}

/// Writes messages to the `tenant-sync` queue with the Azure SDK (`azure_storage_queue`).
pub struct TenantSyncQueue {
    access: StorageAccess,
    credential: Option<Arc<dyn TokenCredential>>,
}

impl TenantSyncQueue {
    pub fn new(access: StorageAccess) -> anyhow::Result<Self> {
        Ok(Self {
            credential: access.credential()?,
            access,
        })
    }

    fn client(&self) -> Result<azure_storage_queue::QueueClient, QueueUnavailable> {
        let url = self
            .access
            .signed(&self.access.queue_endpoint, QUEUE)
            .map_err(QueueUnavailable)?;
        azure_storage_queue::QueueClient::new(url, self.credential.clone(), None)
            .map_err(|e| QueueUnavailable(e.to_string()))
    }

    /// Sends one message; creates the queue if it does not exist yet (the host creates it
    /// when it first polls, which may not have happened on a new deployment).
    pub async fn send(&self, msg: &TenantSyncMessage) -> Result<(), QueueUnavailable> {
        // The queue trigger decodes base64 message text (host.json `messageEncoding`
        // defaults to base64; functions-custom-handler.md, extensions.queues).
        let json = serde_json::to_string(msg).map_err(|e| QueueUnavailable(e.to_string()))?;
        let text = base64::engine::general_purpose::STANDARD.encode(json);
        let client = self.client()?;
        let attempt = async {
            let send = || async {
                let message = azure_storage_queue::models::QueueMessage {
                    message_text: Some(text.clone()),
                };
                client.send_message(message.try_into()?, None).await
            };
            match send().await {
                Ok(_) => Ok(()),
                Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
                    match client.create(None).await {
                        Ok(_) => {}
                        Err(e) if e.http_status() == Some(azure_core::http::StatusCode::Conflict) => {}
                        Err(e) => return Err(QueueUnavailable(e.to_string())),
                    }
                    send().await.map(|_| ()).map_err(|e| QueueUnavailable(e.to_string()))
                }
                Err(e) => Err(QueueUnavailable(e.to_string())),
            }
        };
        tokio::time::timeout(SEND_TIMEOUT, attempt)
            .await
            .map_err(|_| QueueUnavailable("timed out".into()))?
    }
}

/// Standalone: syncs run as tasks of this process; the set says which tenants are syncing.
#[derive(Default)]
pub struct InProcess {
    running: Arc<Mutex<HashSet<TenantId>>>,
}

impl InProcess {
    fn start(&self, app: &Arc<App>, msg: TenantSyncMessage) -> Launched {
        {
            // A poisoned lock means a panic elsewhere while holding it; the set is still valid.
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(msg.tenant_id) {
                return Launched::AlreadyRunning;
            }
        }
        let running = self.running.clone();
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = super::tenant_sync::run(&app, &msg.tenant_id, msg.full).await {
                tracing::warn!(event = "tenant_sync_failed", tenant_id = %msg.tenant_id, error = %e);
            }
            running.lock().unwrap_or_else(|p| p.into_inner()).remove(&msg.tenant_id);
        });
        Launched::Started
    }
}
