//! Small per-tenant state the jobs keep between runs — Graph delta links, audit checkpoints,
//! where the customer's list is — with compare-and-swap writes so that two workers on one
//! tenant cannot both advance it. Two backends (ARCHITECTURE.md §6):
//! - Azure Blob Storage when `AzureWebJobsStorage` is configured: one blob per tenant and
//!   name in the `groupmgr-state` container, writes conditional on the blob's ETag
//!   (`If-Match`, or `If-None-Match: *` to create);
//! - otherwise the embedded store's `tenant_state` table, its version column as the ETag.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;

use crate::config::Secret;
use crate::domain::TenantId;
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
}

/// The embedded store's `tenant_state` table.
pub struct EmbeddedState(pub Arc<dyn Store>);

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
}

/// The storage account Azurite emulates (its documented, public development credentials).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How GroupMgr reaches its storage account.
#[derive(Debug, Clone)]
pub enum StorageAccess {
    /// Account name and key (Azurite in tests and local runs): requests carry an account SAS.
    SharedKey {
        blob_endpoint: url::Url,
        account: String,
        key: Secret,
    },
    /// Managed identity (production): an Entra token for `https://storage.azure.com/`.
    ManagedIdentity { blob_endpoint: url::Url },
}

/// Parses `AzureWebJobsStorage` (a connection string, or `UseDevelopmentStorage=true`), or
/// the identity-based `AzureWebJobsStorage__blobServiceUri` / `__accountName` settings.
pub fn parse_storage(
    conn: Option<&str>,
    blob_service_uri: Option<&str>,
    account_name: Option<&str>,
) -> Result<Option<StorageAccess>, String> {
    if let Some(uri) = blob_service_uri {
        let url = url::Url::parse(uri).map_err(|_| "AzureWebJobsStorage__blobServiceUri: not a URL".to_string())?;
        return Ok(Some(StorageAccess::ManagedIdentity { blob_endpoint: url }));
    }
    if let Some(name) = account_name {
        let url = url::Url::parse(&format!("https://{name}.blob.core.windows.net"))
            .map_err(|_| "AzureWebJobsStorage__accountName: invalid".to_string())?;
        return Ok(Some(StorageAccess::ManagedIdentity { blob_endpoint: url }));
    }
    let Some(conn) = conn else { return Ok(None) };
    let pairs: Vec<(String, String)> = conn
        .split(';')
        .filter_map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let endpoint = get("developmentstorageproxyuri").map_or_else(
            || "http://127.0.0.1:10000".to_string(),
            |p| format!("{}:10000", p.trim_end_matches('/')),
        );
        let url = url::Url::parse(&format!("{endpoint}/{AZURITE_ACCOUNT}"))
            .map_err(|_| "AzureWebJobsStorage: bad development proxy".to_string())?;
        return Ok(Some(StorageAccess::SharedKey {
            blob_endpoint: url,
            account: AZURITE_ACCOUNT.into(),
            key: Secret::new(AZURITE_KEY),
        }));
    }
    let account = get("accountname").ok_or("AzureWebJobsStorage: AccountName is missing")?;
    let key = get("accountkey").ok_or("AzureWebJobsStorage: AccountKey is missing (use identity-based AzureWebJobsStorage__blobServiceUri for managed identity)")?;
    base64::engine::general_purpose::STANDARD
        .decode(&key)
        .map_err(|_| "AzureWebJobsStorage: AccountKey is not base64".to_string())?;
    let endpoint = match get("blobendpoint") {
        Some(e) => e,
        None => {
            let protocol = get("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
            let suffix = get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
            format!("{protocol}://{account}.blob.{suffix}")
        }
    };
    let url = url::Url::parse(&endpoint).map_err(|_| "AzureWebJobsStorage: BlobEndpoint is not a URL".to_string())?;
    Ok(Some(StorageAccess::SharedKey {
        blob_endpoint: url,
        account,
        key: Secret::new(key),
    }))
}

/// An account SAS for the blob service (version 2018-11-09 string-to-sign: account,
/// permissions, services, resource types, start, expiry, IP, protocol, version).
pub fn account_sas(account: &str, key: &Secret, expiry: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key.expose())
        .map_err(|_| "account key is not base64".to_string())?;
    let (sp, ss, srt, sv) = ("rwdlac", "b", "sco", "2018-11-09");
    let se = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let to_sign = format!("{account}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n\n{sv}\n");
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.extend_pairs([
        ("sv", sv),
        ("ss", ss),
        ("srt", srt),
        ("sp", sp),
        ("se", se.as_str()),
        ("sig", sig.as_str()),
    ]);
    Ok(q.finish())
}

/// Blob Storage through the Azure SDK for Rust (`azure_storage_blob`).
pub struct BlobState {
    access: StorageAccess,
    credential: Option<Arc<dyn azure_core::credentials::TokenCredential>>,
    container: String,
}

const CONTAINER: &str = "groupmgr-state";

impl BlobState {
    pub fn new(access: StorageAccess) -> anyhow::Result<Self> {
        let credential: Option<Arc<dyn azure_core::credentials::TokenCredential>> = match &access {
            StorageAccess::ManagedIdentity { .. } => Some(azure_identity::ManagedIdentityCredential::new(None)?),
            StorageAccess::SharedKey { .. } => None,
        };
        Ok(Self {
            access,
            credential,
            container: CONTAINER.into(),
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, StateError> {
        let (endpoint, sas) = match &self.access {
            StorageAccess::SharedKey {
                blob_endpoint,
                account,
                key,
            } => (
                blob_endpoint,
                Some(
                    account_sas(account, key, chrono::Utc::now() + chrono::TimeDelta::hours(1))
                        .map_err(StateError::Unavailable)?,
                ),
            ),
            StorageAccess::ManagedIdentity { blob_endpoint } => (blob_endpoint, None),
        };
        let mut url = url::Url::parse(&format!("{}/{path}", endpoint.as_str().trim_end_matches('/')))
            .map_err(|e| StateError::Unavailable(e.to_string()))?;
        if let Some(sas) = sas {
            url.set_query(Some(&sas));
        }
        Ok(url)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_settings_forms() {
        match parse_storage(Some("UseDevelopmentStorage=true"), None, None)
            .unwrap()
            .unwrap()
        {
            StorageAccess::SharedKey {
                blob_endpoint, account, ..
            } => {
                assert_eq!(blob_endpoint.as_str(), "http://127.0.0.1:10000/devstoreaccount1");
                assert_eq!(account, AZURITE_ACCOUNT);
            }
            other => panic!("{other:?}"),
        }
        let conn = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:12345/devstoreaccount1;"
        );
        assert!(matches!(
            parse_storage(Some(&conn), None, None).unwrap().unwrap(),
            StorageAccess::SharedKey { .. }
        ));
        assert!(matches!(
            parse_storage(None, Some("https://acct.blob.core.windows.net"), None)
                .unwrap()
                .unwrap(),
            StorageAccess::ManagedIdentity { .. }
        ));
        assert!(parse_storage(Some("AccountName=x"), None, None).is_err());
        assert!(parse_storage(None, None, None).unwrap().is_none());
    }

    #[test]
    fn sas_is_signed_over_the_documented_string() {
        let expiry = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let sas = account_sas(AZURITE_ACCOUNT, &Secret::new(AZURITE_KEY), expiry).unwrap();
        assert!(
            sas.starts_with("sv=2018-11-09&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig="),
            "{sas}"
        );
        let key = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY).unwrap();
        let expected = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            b"devstoreaccount1\nrwdlac\nb\nsco\n\n2030-01-01T00:00:00Z\n\n\n2018-11-09\n",
        );
        let sig = url::form_urlencoded::parse(sas.as_bytes())
            .find(|(k, _)| k == "sig")
            .unwrap()
            .1
            .to_string();
        assert_eq!(sig, base64::engine::general_purpose::STANDARD.encode(expected.as_ref()));
    }
}
