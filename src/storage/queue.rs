//! Writing messages to a Storage queue with the Azure SDK (`azure_storage_queue`), the way a
//! Functions queue trigger reads them: base64 message text (host.json `messageEncoding`
//! defaults to base64; functions-custom-handler.md, extensions.queues).

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use base64::Engine as _;

use super::StorageAccess;

/// Longest a queue write may take, retries included.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
#[error("the {queue} queue is unavailable: {reason}")]
pub struct QueueUnavailable {
    pub queue: &'static str,
    pub reason: String,
}

/// Sends JSON messages to one queue of the account.
pub struct QueueSender {
    access: StorageAccess,
    credential: Option<Arc<dyn TokenCredential>>,
    queue: &'static str,
}

impl QueueSender {
    pub fn new(access: StorageAccess, queue: &'static str) -> anyhow::Result<Self> {
        Ok(Self {
            credential: access.credential()?,
            access,
            queue,
        })
    }

    fn unavailable(&self, reason: impl ToString) -> QueueUnavailable {
        QueueUnavailable {
            queue: self.queue,
            reason: reason.to_string(),
        }
    }

    fn client(&self) -> Result<azure_storage_queue::QueueClient, QueueUnavailable> {
        let url = self
            .access
            .signed(&self.access.queue_endpoint, self.queue)
            .map_err(|e| self.unavailable(e))?;
        azure_storage_queue::QueueClient::new(url, self.credential.clone(), None).map_err(|e| self.unavailable(e))
    }

    /// Sends one message, visible after `delay` (none: at once; Storage allows at most 7
    /// days); creates the queue if it does not exist yet (the host creates it when it first
    /// polls, which may not have happened on a new deployment).
    pub async fn send_json<T: serde::Serialize>(
        &self,
        msg: &T,
        delay: Option<Duration>,
    ) -> Result<(), QueueUnavailable> {
        let json = serde_json::to_string(msg).map_err(|e| self.unavailable(e))?;
        let text = base64::engine::general_purpose::STANDARD.encode(json);
        let client = self.client()?;
        let attempt = async {
            let send = || async {
                let message = azure_storage_queue::models::QueueMessage {
                    message_text: Some(text.clone()),
                };
                let options = delay.filter(|d| !d.is_zero()).map(|d| {
                    azure_storage_queue::models::QueueClientSendMessageOptions {
                        visibility_timeout: Some(d.as_secs().clamp(1, 7 * 24 * 3600) as i32),
                        ..Default::default()
                    }
                });
                client.send_message(message.try_into()?, options).await
            };
            match send().await {
                Ok(_) => Ok(()),
                Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
                    match client.create(None).await {
                        Ok(_) => {}
                        Err(e) if e.http_status() == Some(azure_core::http::StatusCode::Conflict) => {}
                        Err(e) => return Err(self.unavailable(e)),
                    }
                    send().await.map(|_| ()).map_err(|e| self.unavailable(e))
                }
                Err(e) => Err(self.unavailable(e)),
            }
        };
        tokio::time::timeout(SEND_TIMEOUT, attempt)
            .await
            .map_err(|_| self.unavailable("timed out"))?
    }
}
