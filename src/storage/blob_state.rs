//! Small JSON documents in Blob Storage through the Azure SDK for Rust (`azure_storage_blob`):
//! one blob per tenant and name in the `groupmgr-state` container, writes conditional on the
//! blob's ETag (`If-Match`, or `If-None-Match: *` to create), so two writers cannot both
//! advance one. The jobs keep their state here (`jobs::state`).

use std::sync::Arc;

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;

use super::StorageAccess;
use crate::domain::TenantId;

/// Why a state blob could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob changed (or appeared) since it was read: a conditional write lost.
    #[error("changed by another writer")]
    Conflict,
    #[error("blob storage unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(e: impl ToString) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

/// The state container of the storage account.
pub struct BlobState {
    access: StorageAccess,
    credential: Option<Arc<dyn azure_core::credentials::TokenCredential>>,
}

/// The container (infra/modules/storage.bicep creates it; a local Azurite may not have it,
/// so the first write creates it too).
const CONTAINER: &str = "groupmgr-state";

impl BlobState {
    pub fn new(access: StorageAccess) -> anyhow::Result<Self> {
        Ok(Self {
            credential: access.credential()?,
            access,
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, BlobError> {
        self.access
            .signed(&self.access.blob_endpoint, path)
            .map_err(BlobError::Unavailable)
    }

    fn blob(&self, tenant: &TenantId, name: &str) -> Result<azure_storage_blob::BlobClient, BlobError> {
        let url = self.url(&format!("{CONTAINER}/{tenant}/{}.json", name.replace('/', "-")))?;
        azure_storage_blob::BlobClient::new(url, self.credential.clone(), None).map_err(unavailable)
    }

    fn container(&self) -> Result<azure_storage_blob::BlobContainerClient, BlobError> {
        azure_storage_blob::BlobContainerClient::new(self.url(CONTAINER)?, self.credential.clone(), None)
            .map_err(unavailable)
    }

    /// Creates the container if it does not exist.
    pub async fn ensure_container(&self) -> Result<(), BlobError> {
        match self.container()?.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The blob's text and ETag, or `None` when it does not exist.
    pub async fn load(&self, tenant: &TenantId, name: &str) -> Result<Option<(String, String)>, BlobError> {
        let blob = self.blob(tenant, name)?;
        match blob.download(None).await {
            Ok(result) => {
                let etag = result
                    .properties
                    .etag
                    .clone()
                    .map(|e| e.to_string())
                    .ok_or_else(|| unavailable("blob without ETag"))?;
                let body = result.body.collect().await.map_err(unavailable)?;
                let text = String::from_utf8(body.to_vec()).map_err(|_| unavailable("state blob is not UTF-8"))?;
                Ok(Some((text, etag)))
            }
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The names of the tenant's state blobs (as stored: `<name>.json`, `/` written as `-`).
    pub async fn names(&self, tenant: &TenantId) -> Result<Vec<String>, BlobError> {
        use futures_util::TryStreamExt as _;
        let client = self.container()?;
        let prefix = format!("{tenant}/");
        let options = azure_storage_blob::models::BlobContainerClientListBlobsOptions {
            prefix: Some(prefix.clone()),
            ..Default::default()
        };
        let mut pager = client.list_blobs(Some(options)).map_err(unavailable)?;
        let mut names = Vec::new();
        loop {
            match pager.try_next().await {
                Ok(Some(item)) => {
                    if let Some(name) = item.name.and_then(|n| n.strip_prefix(&prefix).map(str::to_string)) {
                        names.push(name);
                    }
                }
                Ok(None) => break,
                // No container: nothing was ever written.
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => break,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(names)
    }

    /// Deletes every state blob of the tenant (offboarding). Returns how many there were.
    pub async fn delete_tenant(&self, tenant: &TenantId) -> Result<u64, BlobError> {
        let names = self.names(tenant).await?;
        for name in &names {
            let url = self.url(&format!("{CONTAINER}/{tenant}/{name}"))?;
            let blob = azure_storage_blob::BlobClient::new(url, self.credential.clone(), None).map_err(unavailable)?;
            match blob.delete(None).await {
                Ok(_) => {}
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(names.len() as u64)
    }

    /// Deletes the blob; one that does not exist is already deleted.
    pub async fn delete(&self, tenant: &TenantId, name: &str) -> Result<(), BlobError> {
        match self.blob(tenant, name)?.delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Writes `value` if the blob's ETag is still `expected` (`None`: only if it does not
    /// exist); returns the new ETag, or `Conflict`.
    pub async fn save(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        expected: Option<&str>,
    ) -> Result<String, BlobError> {
        let blob = self.blob(tenant, name)?;
        match upload(&blob, value, expected).await {
            Err(e) if container_missing(&e) => {
                self.ensure_container().await?;
                upload(&blob, value, expected).await.map_err(classify)
            }
            other => other.map_err(classify),
        }
    }
}

async fn upload(
    blob: &azure_storage_blob::BlobClient,
    value: &str,
    expected: Option<&str>,
) -> Result<String, azure_core::Error> {
    let mut options = azure_storage_blob::models::BlobClientUploadOptions::default();
    match expected {
        Some(v) => options.if_match = Some(v.to_string().into()),
        None => options.if_none_match = Some("*".into()),
    }
    let content = azure_core::http::RequestContent::from(value.as_bytes().to_vec());
    let r = blob.upload(content, Some(options)).await?;
    Ok(r.etag.map(|e| e.to_string()).unwrap_or_default())
}

/// `ContainerNotFound` (404), as Blob Storage answers a write into a missing container.
fn container_missing(e: &azure_core::Error) -> bool {
    matches!(e.kind(), ErrorKind::HttpResponse { status: StatusCode::NotFound, error_code, .. }
        if error_code.as_deref() == Some("ContainerNotFound"))
}

fn classify(e: azure_core::Error) -> BlobError {
    match e.http_status() {
        // 412 ConditionNotMet (If-Match lost), 409 BlobAlreadyExists (If-None-Match lost).
        Some(StatusCode::PreconditionFailed | StatusCode::Conflict) => BlobError::Conflict,
        _ => unavailable(e),
    }
}
