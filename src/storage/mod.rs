//! GroupMgr's Azure Storage account, in one place: how it is reached (`AzureWebJobsStorage`
//! and its identity-based forms, parsed once into `StorageAccess`; an account SAS for Azurite,
//! managed identity in production), the job state in Blob Storage (`BlobState`) and the
//! `tenant-sync` queue writer (`QueueSender`).

mod blob_state;
mod queue;

pub use blob_state::{BlobError, BlobState};
pub use queue::{QueueSender, QueueUnavailable};

use std::sync::Arc;

use base64::Engine as _;

use crate::secret::Secret;

/// The storage account Azurite emulates (its documented, public development credentials).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How GroupMgr reaches its storage account: the blob service (job state) and the queue
/// service (`tenant-sync` messages), with a shared key or with managed identity.
#[derive(Debug, Clone)]
pub struct StorageAccess {
    pub blob_endpoint: url::Url,
    pub queue_endpoint: url::Url,
    pub auth: StorageAuth,
}

#[derive(Debug, Clone)]
pub enum StorageAuth {
    /// Account name and key (Azurite in tests and local runs): requests carry an account SAS.
    SharedKey { account: String, key: Secret },
    /// Managed identity (production): an Entra token for `https://storage.azure.com/`.
    ManagedIdentity,
}

impl StorageAccess {
    /// The endpoint with an account SAS when using a shared key.
    pub fn signed(&self, endpoint: &url::Url, path: &str) -> Result<url::Url, String> {
        let mut url = url::Url::parse(&format!("{}/{path}", endpoint.as_str().trim_end_matches('/')))
            .map_err(|e| e.to_string())?;
        if let StorageAuth::SharedKey { account, key } = &self.auth {
            url.set_query(Some(&account_sas(
                account,
                key,
                chrono::Utc::now() + chrono::TimeDelta::hours(1),
            )?));
        }
        Ok(url)
    }

    /// The credential for managed identity; `None` with a shared key (the SAS is in the URL).
    pub fn credential(&self) -> anyhow::Result<Option<Arc<dyn azure_core::credentials::TokenCredential>>> {
        Ok(match self.auth {
            StorageAuth::ManagedIdentity => Some(azure_identity::ManagedIdentityCredential::new(None)?),
            StorageAuth::SharedKey { .. } => None,
        })
    }
}

/// The storage settings: `AzureWebJobsStorage` (a connection string, or
/// `UseDevelopmentStorage=true`), or the identity-based `AzureWebJobsStorage__*ServiceUri` /
/// `__accountName` settings (Functions' identity-based connection names).
#[derive(Debug, Clone, Default)]
pub struct StorageSettings<'a> {
    pub connection_string: Option<&'a str>,
    pub blob_service_uri: Option<&'a str>,
    pub queue_service_uri: Option<&'a str>,
    pub account_name: Option<&'a str>,
}

/// Parses the storage settings; `None` when none is set. Endpoints must use https, except on
/// loopback hosts (Azurite): the shared key signs requests but does not hide what they carry.
pub fn parse_storage(settings: &StorageSettings<'_>) -> Result<Option<StorageAccess>, String> {
    let access = parse_endpoints(settings)?;
    if let Some(a) = &access {
        for (endpoint, which) in [(&a.blob_endpoint, "blob"), (&a.queue_endpoint, "queue")] {
            let loopback = endpoint.host_str().is_some_and(crate::config::is_loopback_host);
            match endpoint.scheme() {
                "https" => {}
                "http" if loopback => {}
                _ => {
                    return Err(format!(
                        "AzureWebJobsStorage: the {which} endpoint must use https (http is allowed only for loopback hosts)"
                    ));
                }
            }
        }
    }
    Ok(access)
}

fn parse_endpoints(settings: &StorageSettings<'_>) -> Result<Option<StorageAccess>, String> {
    let url = |raw: &str, setting: &str| url::Url::parse(raw).map_err(|_| format!("{setting}: not a URL"));
    if let Some(blob) = settings.blob_service_uri {
        let blob_endpoint = url(blob, "AzureWebJobsStorage__blobServiceUri")?;
        let queue_endpoint = match settings.queue_service_uri {
            Some(q) => url(q, "AzureWebJobsStorage__queueServiceUri")?,
            None => {
                let host = blob_endpoint.host_str().unwrap_or_default();
                let queue_host = host.replacen(".blob.", ".queue.", 1);
                if queue_host == host {
                    return Err("AzureWebJobsStorage__queueServiceUri: required when the blob URI is not <account>.blob.<suffix>".into());
                }
                let mut q = blob_endpoint.clone();
                q.set_host(Some(&queue_host)).map_err(|e| e.to_string())?;
                q
            }
        };
        return Ok(Some(StorageAccess {
            blob_endpoint,
            queue_endpoint,
            auth: StorageAuth::ManagedIdentity,
        }));
    }
    if let Some(name) = settings.account_name {
        let invalid = || "AzureWebJobsStorage__accountName: invalid".to_string();
        return Ok(Some(StorageAccess {
            blob_endpoint: url::Url::parse(&format!("https://{name}.blob.core.windows.net")).map_err(|_| invalid())?,
            queue_endpoint: url::Url::parse(&format!("https://{name}.queue.core.windows.net"))
                .map_err(|_| invalid())?,
            auth: StorageAuth::ManagedIdentity,
        }));
    }
    match settings.connection_string {
        Some(conn) => from_connection_string(conn).map(Some),
        None => Ok(None),
    }
}

/// `AzureWebJobsStorage` as a connection string: `UseDevelopmentStorage=true` (Azurite), or an
/// account name and key with optional explicit endpoints.
fn from_connection_string(conn: &str) -> Result<StorageAccess, String> {
    let pairs: Vec<(String, String)> = conn
        .split(';')
        .filter_map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let proxy = get("developmentstorageproxyuri").map_or_else(
            || "http://127.0.0.1".to_string(),
            |p| p.trim_end_matches('/').to_string(),
        );
        let bad = |_| "AzureWebJobsStorage: bad development proxy".to_string();
        return Ok(StorageAccess {
            blob_endpoint: url::Url::parse(&format!("{proxy}:10000/{AZURITE_ACCOUNT}")).map_err(bad)?,
            queue_endpoint: url::Url::parse(&format!("{proxy}:10001/{AZURITE_ACCOUNT}")).map_err(bad)?,
            auth: StorageAuth::SharedKey {
                account: AZURITE_ACCOUNT.into(),
                key: Secret::new(AZURITE_KEY),
            },
        });
    }
    let account = get("accountname").ok_or("AzureWebJobsStorage: AccountName is missing")?;
    let key = get("accountkey").ok_or("AzureWebJobsStorage: AccountKey is missing (use identity-based AzureWebJobsStorage__blobServiceUri for managed identity)")?;
    base64::engine::general_purpose::STANDARD
        .decode(&key)
        .map_err(|_| "AzureWebJobsStorage: AccountKey is not base64".to_string())?;
    let endpoint = |service: &str, setting: &str| {
        let raw = get(&format!("{service}endpoint")).unwrap_or_else(|| {
            let protocol = get("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
            let suffix = get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
            format!("{protocol}://{account}.{service}.{suffix}")
        });
        url::Url::parse(&raw).map_err(|_| format!("AzureWebJobsStorage: {setting} is not a URL"))
    };
    Ok(StorageAccess {
        blob_endpoint: endpoint("blob", "BlobEndpoint")?,
        queue_endpoint: endpoint("queue", "QueueEndpoint")?,
        auth: StorageAuth::SharedKey {
            account,
            key: Secret::new(key),
        },
    })
}

/// An account SAS for the blob and queue services (version 2018-11-09 string-to-sign: account,
/// permissions, services, resource types, start, expiry, IP, protocol, version).
pub fn account_sas(account: &str, key: &Secret, expiry: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key.expose())
        .map_err(|_| "account key is not base64".to_string())?;
    let (sp, ss, srt, sv) = ("rwdlac", "bq", "sco", "2018-11-09");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_settings_forms() {
        let parse = |s: StorageSettings<'_>| parse_storage(&s).unwrap().unwrap();
        let dev = parse(StorageSettings {
            connection_string: Some("UseDevelopmentStorage=true"),
            ..Default::default()
        });
        assert_eq!(dev.blob_endpoint.as_str(), "http://127.0.0.1:10000/devstoreaccount1");
        // http anywhere else is refused.
        for conn in [
            format!("DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={AZURITE_KEY}"),
            format!(
                "AccountName=acct;AccountKey={AZURITE_KEY};BlobEndpoint=http://10.0.0.5:10000/acct;QueueEndpoint=https://q.example/acct"
            ),
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://storage.example.com".to_string(),
        ] {
            let err = parse_storage(&StorageSettings {
                connection_string: Some(&conn),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.contains("must use https"), "{conn}: {err}");
        }
        let err = parse_storage(&StorageSettings {
            blob_service_uri: Some("http://acct.blob.core.windows.net"),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("must use https"), "{err}");
        assert_eq!(dev.queue_endpoint.as_str(), "http://127.0.0.1:10001/devstoreaccount1");
        assert!(matches!(dev.auth, StorageAuth::SharedKey { ref account, .. } if account == AZURITE_ACCOUNT));
        let conn = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:12345/devstoreaccount1;QueueEndpoint=http://127.0.0.1:12346/devstoreaccount1;"
        );
        let explicit = parse(StorageSettings {
            connection_string: Some(&conn),
            ..Default::default()
        });
        assert_eq!(
            explicit.queue_endpoint.as_str(),
            "http://127.0.0.1:12346/devstoreaccount1"
        );
        let derived = parse(StorageSettings {
            connection_string: Some(&format!("AccountName=acct;AccountKey={AZURITE_KEY}")),
            ..Default::default()
        });
        assert_eq!(derived.queue_endpoint.as_str(), "https://acct.queue.core.windows.net/");
        let identity = parse(StorageSettings {
            blob_service_uri: Some("https://acct.blob.core.windows.net"),
            ..Default::default()
        });
        assert!(matches!(identity.auth, StorageAuth::ManagedIdentity));
        assert_eq!(identity.queue_endpoint.as_str(), "https://acct.queue.core.windows.net/");
        let named = parse(StorageSettings {
            account_name: Some("acct"),
            ..Default::default()
        });
        assert_eq!(named.blob_endpoint.as_str(), "https://acct.blob.core.windows.net/");
        assert!(
            parse_storage(&StorageSettings {
                blob_service_uri: Some("https://storage.example"),
                ..Default::default()
            })
            .is_err(),
            "no queue URI can be derived"
        );
        assert!(
            parse_storage(&StorageSettings {
                connection_string: Some("AccountName=x"),
                ..Default::default()
            })
            .is_err()
        );
        assert!(parse_storage(&StorageSettings::default()).unwrap().is_none());
    }

    #[test]
    fn sas_is_signed_over_the_documented_string() {
        let expiry = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let sas = account_sas(AZURITE_ACCOUNT, &Secret::new(AZURITE_KEY), expiry).unwrap();
        assert!(
            sas.starts_with("sv=2018-11-09&ss=bq&srt=sco&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig="),
            "{sas}"
        );
        let key = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY).unwrap();
        let expected = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            b"devstoreaccount1\nrwdlac\nbq\nsco\n\n2030-01-01T00:00:00Z\n\n\n2018-11-09\n",
        );
        let sig = url::form_urlencoded::parse(sas.as_bytes())
            .find(|(k, _)| k == "sig")
            .unwrap()
            .1
            .to_string();
        assert_eq!(sig, base64::engine::general_purpose::STANDARD.encode(expected.as_ref()));
    }
}
