//! Settings from the environment (Function App settings in production, `local.settings.json`
//! locally), exactly as ARCHITECTURE.md §3 lists them.
//!
//! Loading is split in two so that every command reads the same names the same way: `Settings`
//! parses whatever is present (an invalid value is an error whatever the command), and each
//! command then asks for what it needs (`Settings::for_serve`). Every failure is one line that
//! names the setting and what is wrong with it; secret values never appear in it.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use url::Url;

use crate::crypto::IndexKey;
use crate::secret::Secret;
use crate::storage::{StorageAccess, StorageSettings, parse_storage};
use crate::store::DatabaseSetting;

/// One setting that is missing or wrong. Displayed as `NAME: problem`, one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }
}

/// The Microsoft cloud a deployment talks to; it chooses the default login, Graph and
/// Management Activity API hosts (aad-tokens.md §6, management-activity-api.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Public,
    /// Microsoft 365 GCC: global login and Graph, its own Management API host.
    UsGov,
    UsGovHigh,
    Dod,
    /// Operated by 21Vianet. Microsoft documents no Management Activity API host for it
    /// (MicrosoftDocs/office-365-management-api#249), so none is assumed.
    China,
}

impl Cloud {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Self::Public),
            "usgov" => Ok(Self::UsGov),
            "usgovhigh" => Ok(Self::UsGovHigh),
            "dod" => Ok(Self::Dod),
            "china" => Ok(Self::China),
            _ => Err(ConfigError::new(
                "GROUPMGR_CLOUD",
                "must be one of public, usgov, usgovhigh, dod, china",
            )),
        }
    }

    /// Whether Graph offers the usage reports GroupMgr reads (Teams team activity, Microsoft 365
    /// groups activity) here. Graph docs, reportroot-getteamsteamactivitydetail and
    /// reportroot-getoffice365groupsactivitydetail, "This API is available in the following
    /// national cloud deployments": the global service only (GCC tenants use it) — not US
    /// Government L4 (GCC High), L5 (DoD) or China operated by 21Vianet.
    pub fn has_teams_report(&self) -> bool {
        matches!(self, Cloud::Public | Cloud::UsGov)
    }

    pub fn authority_host(&self) -> &'static str {
        match self {
            Cloud::Public | Cloud::UsGov => "https://login.microsoftonline.com",
            Cloud::UsGovHigh | Cloud::Dod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.partner.microsoftonline.cn",
        }
    }

    pub fn graph_endpoint(&self) -> &'static str {
        match self {
            Cloud::Public | Cloud::UsGov => "https://graph.microsoft.com",
            Cloud::UsGovHigh => "https://graph.microsoft.us",
            Cloud::Dod => "https://dod-graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    pub fn management_endpoint(&self) -> Option<&'static str> {
        match self {
            Cloud::Public => Some("https://manage.office.com"),
            Cloud::UsGov => Some("https://manage-gcc.office.com"),
            Cloud::UsGovHigh => Some("https://manage.office365.us"),
            Cloud::Dod => Some("https://manage.protection.apps.mil"),
            Cloud::China => None,
        }
    }
}

/// The origin (scheme, host, port) of a Microsoft service. `https` always, except on loopback
/// hosts, where `http` is allowed so that m365-sim can stand in for Microsoft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(Url);

impl Endpoint {
    pub fn parse(setting: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let url = Url::parse(raw.trim())
            .map_err(|_| ConfigError::new(setting, "must be an absolute URL like https://host"))?;
        let host = url
            .host_str()
            .ok_or_else(|| ConfigError::new(setting, "must name a host"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::new(setting, "must not contain credentials"));
        }
        if (url.path() != "/" && !url.path().is_empty()) || url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::new(
                setting,
                "must be scheme and host only, without a path or query",
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(host) => {}
            "http" => {
                return Err(ConfigError::new(
                    setting,
                    "must use https (http is allowed only for loopback hosts)",
                ));
            }
            _ => return Err(ConfigError::new(setting, "must use https")),
        }
        Ok(Self(url))
    }

    /// `scheme://host[:port]`, without a trailing slash, ready for a path to be appended.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

/// Whether `host` (as in a URL) is a loopback name or address: `localhost`, 127.0.0.0/8, ::1.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// How GroupMgr proves its own identity to Entra ID (OBO and app-only tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredential {
    Secret(Secret),
    /// Path of a PEM file holding the certificate and its private key.
    Certificate(PathBuf),
}

/// All settings, parsed. Optional ones are `None` when absent; commands check what they need.
#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    pub client_id: Option<uuid::Uuid>,
    pub credential: Option<ClientCredential>,
    pub cloud: Cloud,
    pub authority_host: Endpoint,
    pub graph_endpoint: Endpoint,
    /// `None` only for a cloud without a documented host and no explicit setting.
    pub management_endpoint: Option<Endpoint>,
    pub publisher_id: Option<uuid::Uuid>,
    pub database: DatabaseSetting,
    pub index_key: Option<IndexKey>,
    /// `GROUPMGR_PUBLISHER_KEY`: GroupMgr's own key pair, with which tenant log data keys are
    /// sealed in HPKE Auth mode (readers can then tell our entries from forged ones). Unset:
    /// entries are sealed as before and reported as unauthenticated.
    pub publisher_key: Option<std::sync::Arc<crate::crypto::PublisherKey>>,
    /// Where job state and the `tenant-sync` queue live (`AzureWebJobsStorage` or its
    /// identity-based forms); `None` without storage settings (state in the database).
    pub storage: Option<StorageAccess>,
    pub sharepoint_site: String,
    /// Whether a Functions host started us (it sets the worker id; functions-custom-handler.md
    /// §1): then the host runs the timer and queue functions, and on-demand syncs go through
    /// the `tenant-sync` queue; otherwise this process runs the schedule itself.
    pub functions_host: bool,
    /// How long one `TenantSync` invocation may work before it saves its progress and
    /// continues in the next (`GROUPMGR_SYNC_BUDGET`, seconds; default 420, well inside the
    /// host's 10-minute `functionTimeout`).
    pub sync_budget: std::time::Duration,
    /// How long a tenant's sync lease lasts unless renewed (`GROUPMGR_SYNC_LEASE`, seconds;
    /// default 60): how soon another worker may take over from one that crashed.
    pub sync_lease: std::time::Duration,
    /// `GROUPMGR_ALLOWED_CLIENTS`: the client applications (the GroupMgr UI) whose user tokens
    /// the API accepts (their `azp`); required to serve.
    pub allowed_clients: Vec<uuid::Uuid>,
}

/// What `serve` cannot run without, checked once at start-up.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub client_id: uuid::Uuid,
    pub credential: ClientCredential,
    pub index_key: IndexKey,
}

pub const DEFAULT_PORT: u16 = 7071;

/// Reads one setting: `None` when absent or empty (the Functions host writes absent
/// settings as empty values).
type Get<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get`, so tests can supply them without touching the process
    /// environment. Empty values count as absent, as the Functions host writes them that way.
    pub fn from_source(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = &|name: &str| get(name).filter(|v| !v.trim().is_empty());
        let cloud = get("GROUPMGR_CLOUD")
            .map(|raw| Cloud::parse(&raw))
            .transpose()?
            .unwrap_or(Cloud::Public);
        let endpoint = |name: &'static str, default: &str| match get(name) {
            Some(raw) => Endpoint::parse(name, &raw),
            None => Endpoint::parse(name, default),
        };
        Ok(Self {
            port: port(get)?,
            client_id: guid(get, "GROUPMGR_CLIENT_ID", "must be the app registration's GUID")?,
            credential: credential(get)?,
            cloud,
            authority_host: endpoint("GROUPMGR_AUTHORITY_HOST", cloud.authority_host())?,
            graph_endpoint: endpoint("GROUPMGR_GRAPH_ENDPOINT", cloud.graph_endpoint())?,
            management_endpoint: match get("GROUPMGR_MANAGEMENT_ENDPOINT") {
                Some(raw) => Some(Endpoint::parse("GROUPMGR_MANAGEMENT_ENDPOINT", &raw)?),
                None => cloud
                    .management_endpoint()
                    .map(|d| Endpoint::parse("GROUPMGR_MANAGEMENT_ENDPOINT", d))
                    .transpose()?,
            },
            publisher_id: guid(get, "GROUPMGR_PUBLISHER_ID", "must be our own tenant's GUID")?,
            database: match get("GROUPMGR_DATABASE") {
                Some(raw) => {
                    DatabaseSetting::parse(&raw).map_err(|problem| ConfigError::new("GROUPMGR_DATABASE", problem))?
                }
                None => DatabaseSetting::Sqlite(PathBuf::from("groupmgr.db")),
            },
            index_key: get("GROUPMGR_INDEX_KEY")
                .map(|raw| IndexKey::parse(&raw).map_err(|problem| ConfigError::new("GROUPMGR_INDEX_KEY", problem)))
                .transpose()?,
            publisher_key: get("GROUPMGR_PUBLISHER_KEY")
                .map(|raw| {
                    crate::crypto::PublisherKey::parse(&raw)
                        .map(std::sync::Arc::new)
                        .map_err(|problem| ConfigError::new("GROUPMGR_PUBLISHER_KEY", problem))
                })
                .transpose()?,
            storage: storage(get)?,
            sharepoint_site: sharepoint_site(get)?,
            functions_host: get("FUNCTIONS_CUSTOMHANDLER_WORKER_ID").is_some()
                || get("FUNCTIONS_HTTPWORKER_ID").is_some(),
            sync_budget: seconds(get, "GROUPMGR_SYNC_BUDGET", 420)?,
            sync_lease: seconds(get, "GROUPMGR_SYNC_LEASE", 60)?,
            allowed_clients: guids(get, "GROUPMGR_ALLOWED_CLIENTS")?,
        })
    }

    /// The settings `serve` requires, or the first one missing.
    pub fn for_serve(&self) -> Result<ServeSettings, ConfigError> {
        let client_id = self
            .client_id
            .ok_or_else(|| ConfigError::new("GROUPMGR_CLIENT_ID", "required to serve (the app registration's GUID)"))?;
        let credential = self.credential.clone().ok_or_else(|| {
            ConfigError::new(
                "GROUPMGR_CLIENT_SECRET",
                "required to serve: set it or GROUPMGR_CLIENT_CERTIFICATE",
            )
        })?;
        let index_key = self.index_key.clone().ok_or_else(|| {
            ConfigError::new(
                "GROUPMGR_INDEX_KEY",
                "required to serve (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)",
            )
        })?;
        Ok(ServeSettings {
            client_id,
            credential,
            index_key,
        })
    }

    /// The settings audit sync requires.
    pub fn for_audit(&self) -> Result<(uuid::Uuid, Endpoint), ConfigError> {
        let publisher = self
            .publisher_id
            .ok_or_else(|| ConfigError::new("GROUPMGR_PUBLISHER_ID", "required for audit sync"))?;
        let endpoint = self.management_endpoint.clone().ok_or_else(|| {
            ConfigError::new(
                "GROUPMGR_MANAGEMENT_ENDPOINT",
                "required for audit sync in this cloud (Microsoft documents no default)",
            )
        })?;
        Ok((publisher, endpoint))
    }
}

fn port(get: Get<'_>) -> Result<u16, ConfigError> {
    match get("FUNCTIONS_CUSTOMHANDLER_PORT") {
        Some(raw) => raw
            .trim()
            .parse::<u16>()
            .map_err(|_| ConfigError::new("FUNCTIONS_CUSTOMHANDLER_PORT", "must be a port number 0-65535")),
        None => Ok(DEFAULT_PORT),
    }
}

/// A whole number of seconds, at least 1.
fn seconds(get: Get<'_>, setting: &'static str, default: u64) -> Result<std::time::Duration, ConfigError> {
    match get(setting) {
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| ConfigError::new(setting, "must be a whole number of seconds, at least 1")),
        None => Ok(std::time::Duration::from_secs(default)),
    }
}

fn guid(get: Get<'_>, setting: &'static str, rule: &'static str) -> Result<Option<uuid::Uuid>, ConfigError> {
    get(setting)
        .map(|raw| crate::domain::parse_guid("guid", raw.trim()).map_err(|_| ConfigError::new(setting, rule)))
        .transpose()
}

/// A comma-separated list of GUIDs (empty when unset).
fn guids(get: Get<'_>, setting: &'static str) -> Result<Vec<uuid::Uuid>, ConfigError> {
    get(setting)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            crate::domain::parse_guid("guid", s)
                .map_err(|_| ConfigError::new(setting, "must be client application ids (GUIDs), comma-separated"))
        })
        .collect()
}

/// `GROUPMGR_CLIENT_SECRET` or `GROUPMGR_CLIENT_CERTIFICATE` (a readable PEM file), not both.
fn credential(get: Get<'_>) -> Result<Option<ClientCredential>, ConfigError> {
    match (get("GROUPMGR_CLIENT_SECRET"), get("GROUPMGR_CLIENT_CERTIFICATE")) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "GROUPMGR_CLIENT_SECRET",
            "set either it or GROUPMGR_CLIENT_CERTIFICATE, not both",
        )),
        (Some(secret), None) => Ok(Some(ClientCredential::Secret(Secret::new(secret)))),
        (None, Some(path)) => {
            let path = PathBuf::from(path.trim());
            if !path.is_file() {
                return Err(ConfigError::new(
                    "GROUPMGR_CLIENT_CERTIFICATE",
                    format!("no readable PEM file at {}", path.display()),
                ));
            }
            Ok(Some(ClientCredential::Certificate(path)))
        }
        (None, None) => Ok(None),
    }
}

/// `AzureWebJobsStorage` (a connection string), or the identity-based
/// `AzureWebJobsStorage__blobServiceUri` / `__queueServiceUri` / `__accountName`.
fn storage(get: Get<'_>) -> Result<Option<StorageAccess>, ConfigError> {
    let connection_string = get("AzureWebJobsStorage").map(Secret::new);
    let blob_service_uri = get("AzureWebJobsStorage__blobServiceUri");
    let queue_service_uri = get("AzureWebJobsStorage__queueServiceUri");
    let account_name = get("AzureWebJobsStorage__accountName");
    parse_storage(&StorageSettings {
        connection_string: connection_string.as_ref().map(Secret::expose),
        blob_service_uri: blob_service_uri.as_deref(),
        queue_service_uri: queue_service_uri.as_deref(),
        account_name: account_name.as_deref(),
    })
    .map_err(|problem| ConfigError::new("AzureWebJobsStorage", problem))
}

fn sharepoint_site(get: Get<'_>) -> Result<String, ConfigError> {
    let site = get("GROUPMGR_SHAREPOINT_SITE").unwrap_or_else(|| "/sites/GroupMgr".into());
    if !site.starts_with('/') || site.contains("://") || site.contains(char::is_whitespace) {
        return Err(ConfigError::new(
            "GROUPMGR_SHAREPOINT_SITE",
            "must be a server-relative path like /sites/GroupMgr",
        ));
    }
    Ok(site)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_source(|k| map.get(k).cloned())
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn defaults_are_public_cloud_and_local_sqlite() {
        let s = load(&[]).unwrap();
        assert_eq!(s.port, 7071);
        assert_eq!(s.cloud, Cloud::Public);
        assert_eq!(s.authority_host.origin(), "https://login.microsoftonline.com");
        assert_eq!(s.graph_endpoint.origin(), "https://graph.microsoft.com");
        assert_eq!(s.management_endpoint.unwrap().origin(), "https://manage.office.com");
        assert_eq!(s.database, DatabaseSetting::Sqlite("groupmgr.db".into()));
        assert_eq!(s.sharepoint_site, "/sites/GroupMgr");
    }

    #[test]
    fn each_cloud_has_its_documented_hosts() {
        let cases = [
            (
                "usgov",
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                Some("https://manage-gcc.office.com"),
            ),
            (
                "usgovhigh",
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                Some("https://manage.office365.us"),
            ),
            (
                "dod",
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
                Some("https://manage.protection.apps.mil"),
            ),
            (
                "china",
                "https://login.partner.microsoftonline.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                None,
            ),
        ];
        for (cloud, login, graph, manage) in cases {
            let s = load(&[("GROUPMGR_CLOUD", cloud)]).unwrap();
            assert_eq!(s.authority_host.origin(), login, "{cloud}");
            assert_eq!(s.graph_endpoint.origin(), graph, "{cloud}");
            assert_eq!(s.management_endpoint.map(|e| e.origin()).as_deref(), manage, "{cloud}");
        }
        let china = load(&[
            ("GROUPMGR_CLOUD", "china"),
            ("GROUPMGR_PUBLISHER_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ])
        .unwrap();
        assert_eq!(china.for_audit().unwrap_err().setting, "GROUPMGR_MANAGEMENT_ENDPOINT");
    }

    #[test]
    fn https_required_except_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.9.9.9",
            "https://example.com",
        ] {
            assert!(Endpoint::parse("X", ok).is_ok(), "{ok} refused");
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "https://x.com/v1.0",
            "https://u:p@x.com",
            "graph.microsoft.com",
            "http://127.0.0.1.evil.com",
        ] {
            assert!(Endpoint::parse("X", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn errors_name_the_setting_on_one_line_without_the_value() {
        let cases: &[(&str, &str)] = &[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "seventy"),
            ("GROUPMGR_CLIENT_ID", "not-a-guid"),
            ("GROUPMGR_CLOUD", "mars"),
            ("GROUPMGR_AUTHORITY_HOST", "http://login.example.com"),
            ("GROUPMGR_GRAPH_ENDPOINT", "nope"),
            ("GROUPMGR_MANAGEMENT_ENDPOINT", "http://10.1.1.1"),
            ("GROUPMGR_PUBLISHER_ID", "x"),
            ("GROUPMGR_DATABASE", "postgres://x"),
            ("GROUPMGR_INDEX_KEY", "c2hvcnQ="),
            ("GROUPMGR_SHAREPOINT_SITE", "https://contoso.sharepoint.com/sites/x"),
            ("GROUPMGR_CLIENT_CERTIFICATE", "/nonexistent/cert.pem"),
        ];
        for (name, value) in cases {
            let err = load(&[(name, value)]).unwrap_err();
            assert_eq!(err.setting, *name);
            let line = err.to_string();
            assert!(line.starts_with(name) && !line.contains('\n'), "{line}");
            // Values are not echoed (they may be secrets); a file path is named to help.
            if *name != "GROUPMGR_CLIENT_CERTIFICATE" {
                assert!(!line.contains(value), "value echoed: {line}");
            }
        }
    }

    #[test]
    fn serve_requirements() {
        let s = load(&[]).unwrap();
        assert_eq!(s.for_serve().unwrap_err().setting, "GROUPMGR_CLIENT_ID");
        let s = load(&[("GROUPMGR_CLIENT_ID", "6e74172b-be56-4843-9ff4-e66a39bb12e3")]).unwrap();
        assert_eq!(s.for_serve().unwrap_err().setting, "GROUPMGR_CLIENT_SECRET");
        let s = load(&[
            ("GROUPMGR_CLIENT_ID", "6e74172b-be56-4843-9ff4-e66a39bb12e3"),
            ("GROUPMGR_CLIENT_SECRET", "s3cret"),
        ])
        .unwrap();
        assert_eq!(s.for_serve().unwrap_err().setting, "GROUPMGR_INDEX_KEY");
        let s = load(&[
            ("GROUPMGR_CLIENT_ID", "6e74172b-be56-4843-9ff4-e66a39bb12e3"),
            ("GROUPMGR_CLIENT_SECRET", "s3cret"),
            ("GROUPMGR_INDEX_KEY", KEY),
        ])
        .unwrap();
        let serve = s.for_serve().unwrap();
        assert!(!format!("{serve:?}").contains("s3cret"));
    }

    #[test]
    fn secret_and_certificate_are_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("c.pem");
        std::fs::write(&pem, "x").unwrap();
        let err = load(&[
            ("GROUPMGR_CLIENT_SECRET", "a"),
            ("GROUPMGR_CLIENT_CERTIFICATE", pem.to_str().unwrap()),
        ])
        .unwrap_err();
        assert_eq!(err.setting, "GROUPMGR_CLIENT_SECRET");
    }

    #[test]
    fn database_forms() {
        let s = load(&[("GROUPMGR_DATABASE", "sqlite:/tmp/x.db")]).unwrap();
        assert_eq!(s.database, DatabaseSetting::Sqlite("/tmp/x.db".into()));
        let s = load(&[(
            "GROUPMGR_DATABASE",
            "Server=tcp:x.database.windows.net,1433;Database=g;Authentication=Active Directory Managed Identity",
        )])
        .unwrap();
        assert!(matches!(s.database, DatabaseSetting::SqlServer(_)));
        assert!(!format!("{:?}", s.database).contains("windows.net"));
    }
}
