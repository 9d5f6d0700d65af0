//! Small per-tenant state the jobs keep between runs — Graph delta links, audit checkpoints,
//! where the customer's list is — with compare-and-swap writes so that two workers on one
//! tenant cannot both advance it. Two backends (ARCHITECTURE.md §6):
//! - Azure Blob Storage when storage is configured (`crate::storage::BlobState`): one blob per
//!   tenant and name, writes conditional on the blob's ETag;
//! - otherwise the embedded store's `tenant_state` table (`EmbeddedState` here), its version
//!   column as the ETag.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::TenantId;
use crate::storage::{BlobError, BlobState};
use crate::store::{Store, StoreError};

/// An opaque version of a stored value (a blob ETag or a row version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The value changed since it was read (another worker wrote it).
    #[error("state changed by another worker")]
    Conflict,
    #[error("state storage unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for StateError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict | StoreError::Duplicate => StateError::Conflict,
            other => StateError::Unavailable(other.to_string()),
        }
    }
}

/// Per-tenant state with conditional writes.
#[async_trait]
pub trait TenantState: Send + Sync {
    async fn load(&self, tenant: &TenantId, name: &str) -> Result<Option<(String, Version)>, StateError>;
    /// Writes `value` if the stored version is still `expected` (`None`: only if absent).
    async fn save(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        expected: Option<&Version>,
    ) -> Result<Version, StateError>;
    /// Removes the value, if any (progress that is finished).
    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<(), StateError>;
    /// Removes every value of the tenant (offboarding). Returns how many there were.
    async fn forget_tenant(&self, tenant: &TenantId) -> Result<u64, StateError>;
}

/// The job state the settings name: Blob Storage when storage is configured, else the
/// embedded store's table.
pub fn open(settings: &crate::config::Settings, store: &Arc<dyn Store>) -> anyhow::Result<Arc<dyn TenantState>> {
    Ok(match &settings.storage {
        Some(access) => Arc::new(BlobState::new(access.clone())?),
        None => Arc::new(EmbeddedState(store.clone())),
    })
}

/// A typed value of the job state (JSON), with the version it was read at.
pub async fn load_doc<T: serde::de::DeserializeOwned>(
    state: &dyn TenantState,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<(T, Version)>, StateError> {
    match state.load(tenant, name).await? {
        Some((text, version)) => serde_json::from_str(&text)
            .map(|doc| Some((doc, version)))
            .map_err(|e| StateError::Unavailable(format!("{name}: unreadable job state ({e})"))),
        None => Ok(None),
    }
}

/// Writes a typed value if its version is still `expected` (`None`: only if absent).
pub async fn save_doc<T: serde::Serialize>(
    state: &dyn TenantState,
    tenant: &TenantId,
    name: &str,
    doc: &T,
    expected: Option<&Version>,
) -> Result<Version, StateError> {
    // Job-state documents are plain structs: serialising cannot fail.
    let text = serde_json::to_string(doc).expect("job state serialises to JSON");
    state.save(tenant, name, &text, expected).await
}

/// The embedded store's `tenant_state` table.
pub struct EmbeddedState(pub Arc<dyn Store>);

#[cfg(test)]
impl EmbeddedState {
    /// Job state in an in-memory SQLite store holding one registered tenant (Contoso's id).
    pub async fn for_test() -> (Self, TenantId) {
        let store: Arc<dyn Store> = Arc::new(crate::store::sqlite::SqliteStore::in_memory().unwrap());
        let tenant = TenantId::parse("6f1c2b4a-3d5e-4f70-8a9b-0c1d2e3f4a5b").unwrap();
        store
            .add_tenant(&crate::store::NewTenant {
                tenant_id: tenant,
                seats: crate::domain::Seats::new(1).unwrap(),
                licence_expires: None,
            })
            .await
            .unwrap();
        (Self(store), tenant)
    }
}

#[async_trait]
impl TenantState for EmbeddedState {
    async fn load(&self, tenant: &TenantId, name: &str) -> Result<Option<(String, Version)>, StateError> {
        Ok(self
            .0
            .get_state(tenant, name)
            .await?
            .map(|(v, ver)| (v, Version(ver.to_string()))))
    }

    async fn save(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        expected: Option<&Version>,
    ) -> Result<Version, StateError> {
        let expected = match expected {
            Some(v) => Some(v.0.parse::<u64>().map_err(|_| StateError::Conflict)?),
            None => None,
        };
        Ok(Version(
            self.0.put_state(tenant, name, value, expected).await?.to_string(),
        ))
    }

    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<(), StateError> {
        Ok(self.0.delete_state(tenant, name).await?)
    }

    async fn forget_tenant(&self, tenant: &TenantId) -> Result<u64, StateError> {
        Ok(self.0.forget_state(tenant).await?)
    }
}

impl From<BlobError> for StateError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Conflict => StateError::Conflict,
            BlobError::Unavailable(m) => StateError::Unavailable(m),
        }
    }
}

/// Blob Storage: the blob's ETag is the version.
#[async_trait]
impl TenantState for BlobState {
    async fn load(&self, tenant: &TenantId, name: &str) -> Result<Option<(String, Version)>, StateError> {
        Ok(BlobState::load(self, tenant, name)
            .await?
            .map(|(text, etag)| (text, Version(etag))))
    }

    async fn save(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        expected: Option<&Version>,
    ) -> Result<Version, StateError> {
        Ok(Version(
            BlobState::save(self, tenant, name, value, expected.map(|v| v.0.as_str())).await?,
        ))
    }

    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<(), StateError> {
        Ok(BlobState::delete(self, tenant, name).await?)
    }

    async fn forget_tenant(&self, tenant: &TenantId) -> Result<u64, StateError> {
        Ok(BlobState::delete_tenant(self, tenant).await?)
    }
}
