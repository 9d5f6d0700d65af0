//! Job state in Blob Storage through the Azure SDK for Rust (`azure_storage_blob`): one blob
//! per tenant and name in the `groupmgr-state` container, writes conditional on the blob's
//! ETag (`If-Match`, or `If-None-Match: *` to create), so two workers cannot both advance it.

use std::sync::Arc;

use async_trait::async_trait;

use super::StorageAccess;
use crate::domain::TenantId;
use crate::jobs::state::{StateError, TenantState, Version};

/// Blob Storage through the Azure SDK for Rust (`azure_storage_blob`).
pub struct BlobState {
    access: StorageAccess,
    credential: Option<Arc<dyn azure_core::credentials::TokenCredential>>,
    container: String,
}

const CONTAINER: &str = "groupmgr-state";

impl BlobState {
    pub fn new(access: StorageAccess) -> anyhow::Result<Self> {
        Ok(Self {
            credential: access.credential()?,
            access,
            container: CONTAINER.into(),
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, StateError> {
        self.access
            .signed(&self.access.blob_endpoint, path)
            .map_err(StateError::Unavailable)
    }

    fn blob(&self, tenant: &TenantId, name: &str) -> Result<azure_storage_blob::BlobClient, StateError> {
        let url = self.url(&format!("{}/{tenant}/{}.json", self.container, name.replace('/', "-")))?;
        azure_storage_blob::BlobClient::new(url, self.credential.clone(), None)
            .map_err(|e| StateError::Unavailable(e.to_string()))
    }

    /// Creates the container if it does not exist (called at start-up of jobs).
    pub async fn ensure_container(&self) -> Result<(), StateError> {
        let url = self.url(&self.container)?;
        let client = azure_storage_blob::BlobContainerClient::new(url, self.credential.clone(), None)
            .map_err(|e| StateError::Unavailable(e.to_string()))?;
        match client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::Conflict) => Ok(()),
            Err(e) => Err(StateError::Unavailable(e.to_string())),
        }
    }
}

#[async_trait]
impl TenantState for BlobState {
    async fn load(&self, tenant: &TenantId, name: &str) -> Result<Option<(String, Version)>, StateError> {
        let blob = self.blob(tenant, name)?;
        match blob.download(None).await {
            Ok(result) => {
                let etag = result
                    .properties
                    .etag
                    .clone()
                    .map(|e| e.to_string())
                    .ok_or_else(|| StateError::Unavailable("blob without ETag".into()))?;
                let body = result
                    .body
                    .collect()
                    .await
                    .map_err(|e| StateError::Unavailable(e.to_string()))?;
                let text = String::from_utf8(body.to_vec())
                    .map_err(|_| StateError::Unavailable("state blob is not UTF-8".into()))?;
                Ok(Some((text, Version(etag))))
            }
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => Ok(None),
            Err(e) => Err(StateError::Unavailable(e.to_string())),
        }
    }

    async fn save(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        expected: Option<&Version>,
    ) -> Result<Version, StateError> {
        let blob = self.blob(tenant, name)?;
        let mut options = azure_storage_blob::models::BlobClientUploadOptions::default();
        match expected {
            Some(v) => options.if_match = Some(v.0.clone().into()),
            None => options.if_none_match = Some("*".into()),
        }
        let content = azure_core::http::RequestContent::from(value.as_bytes().to_vec());
        match blob.upload(content, Some(options)).await {
            Ok(r) => Ok(Version(r.etag.map(|e| e.to_string()).unwrap_or_default())),
            Err(e)
                if matches!(
                    e.http_status(),
                    Some(azure_core::http::StatusCode::PreconditionFailed | azure_core::http::StatusCode::Conflict)
                ) =>
            {
                Err(StateError::Conflict)
            }
            Err(e) => Err(StateError::Unavailable(e.to_string())),
        }
    }
}
