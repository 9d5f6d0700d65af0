//! A sync of one tenant now (`POST /api/sync`). Under a Functions host the request becomes a
//! `tenant-sync` queue message, so the sync runs in `TenantSync` with the host's retries and
//! poison queue, exactly like a scheduled one. Standalone (`serve` without a host, `dev`)
//! nothing reads that queue: the sync runs in this process, at most one per tenant at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use super::TenantSyncMessage;
use crate::app::App;
use crate::domain::TenantId;
use crate::storage::{QueueSender, QueueUnavailable};

/// The queue `TenantSync` reads (`functions/TenantSync/function.json`).
pub const QUEUE: &str = "tenant-sync";

/// How an on-demand sync is started.
pub enum SyncLauncher {
    Queue(Box<QueueSender>),
    InProcess(InProcess),
}

/// What happened to the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Launched {
    /// A message is on the queue.
    Queued,
    /// The sync runs in this process.
    Started,
    /// A sync of the tenant is running (here or on another instance).
    AlreadyRunning,
}

impl SyncLauncher {
    /// Starts a sync the tenant's administrator asked for; a sync running anywhere (another
    /// instance holds the tenant's lease) answers `AlreadyRunning`.
    pub async fn launch(&self, app: &Arc<App>, msg: TenantSyncMessage) -> Result<Launched, QueueUnavailable> {
        let held = super::lease::held_until(app.state.as_ref(), &msg.tenant_id, chrono::Utc::now()).await;
        if matches!(held, Ok(Some(_))) {
            return Ok(Launched::AlreadyRunning);
        }
        match self {
            SyncLauncher::Queue(q) => q.send_json(&msg, None).await.map(|()| Launched::Queued),
            SyncLauncher::InProcess(p) => Ok(p.start(app, msg, None)),
        }
    }

    /// Continues a sync whose invocation ran out of budget: the next `tenant-sync` message
    /// (visible after `after`), or in process.
    pub async fn continue_later(
        &self,
        app: &Arc<App>,
        msg: TenantSyncMessage,
        after: Option<Duration>,
    ) -> Result<(), QueueUnavailable> {
        match self {
            SyncLauncher::Queue(q) => q.send_json(&msg, after).await,
            SyncLauncher::InProcess(p) => {
                p.start(app, msg, after);
                Ok(())
            }
        }
    }
}

/// Standalone: syncs run as tasks of this process; the set says which tenants are syncing.
#[derive(Default)]
pub struct InProcess {
    running: Arc<Mutex<HashSet<TenantId>>>,
}

impl InProcess {
    fn start(&self, app: &Arc<App>, msg: TenantSyncMessage, after: Option<Duration>) -> Launched {
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
            if let Some(wait) = after {
                tokio::time::sleep(wait).await;
            }
            if let Err(e) = super::tenant_sync::run_to_completion(&app, &msg.tenant_id, &msg, None).await {
                tracing::warn!(event = "tenant_sync_failed", tenant_id = %msg.tenant_id, error = %e);
            }
            running.lock().unwrap_or_else(|p| p.into_inner()).remove(&msg.tenant_id);
        });
        Launched::Started
    }
}
