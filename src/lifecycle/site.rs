//! Where a tenant's lifecycle settings live: a second list on the customer's GroupMgr site
//! ("GroupMgr Settings", beside "GroupMgr Groups"), one item per setting — the lifecycle
//! policy, the webhook endpoint with its signing secret — its JSON in a plain multi-line text
//! column. The customer keeps them (they are theirs, readable and auditable in SharePoint's
//! own version history, and readable by whoever may read that site); GroupMgr's database
//! never holds them. Written with GroupMgr's grant on that one site once the API checked the
//! caller's role.

use serde_json::{Map, Value, json};

use super::policy::LifecyclePolicy;
use super::webhooks::Endpoint;
use crate::customer_list::{self, ListError};
use crate::domain::TenantId;
use crate::jobs::state::TenantState;
use crate::microsoft::graph::{Column, ColumnKind, Graph, GraphError, ItemWrite, ListDefinition, SpList};

pub const SETTINGS_LIST: &str = "GroupMgr Settings";
/// The setting that holds the lifecycle policy.
const POLICY_KEY: &str = "lifecyclePolicy";
/// The setting that holds the webhook endpoint and its signing secret.
const WEBHOOK_KEY: &str = "webhook";

/// The settings list: `SettingKey` (unique, indexed) and `Value` (the setting's JSON).
pub fn settings_list() -> ListDefinition {
    ListDefinition {
        display_name: SETTINGS_LIST,
        description: "GroupMgr settings of this tenant (the lifecycle policy). Change them in GroupMgr.",
        columns: vec![
            Column {
                name: "SettingKey",
                kind: ColumnKind::Text { unique: true },
            },
            Column {
                name: "Value",
                kind: ColumnKind::Note,
            },
        ],
    }
}

/// The list `definition` names on `site`, made when it does not exist, with any column an
/// older version of it lacks.
pub async fn ensure_list(graph: &Graph<'_>, site: &str, definition: &ListDefinition) -> Result<SpList, GraphError> {
    match graph.find_list(site, definition.display_name).await? {
        Some(l) => {
            graph.add_missing_columns(site, &l.id, &definition.columns).await?;
            Ok(l)
        }
        None => match graph.create_list(site, definition).await {
            Ok(l) => Ok(l),
            // Made by a concurrent request, or our create's answer was lost: look again.
            Err(e) => graph.find_list(site, definition.display_name).await?.ok_or(e),
        },
    }
}

/// Why a stored setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    List(#[from] ListError),
    /// The item holds something that is not a valid policy (edited by hand in SharePoint).
    #[error("the stored {key} is not valid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl From<GraphError> for SettingsError {
    fn from(e: GraphError) -> Self {
        SettingsError::List(ListError::Graph(e))
    }
}

/// The tenant's lifecycle policy, if one was set. Never creates anything.
pub async fn load_policy(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
) -> Result<Option<LifecyclePolicy>, SettingsError> {
    let policy: Option<LifecyclePolicy> = load(graph, state, tenant, site_path, POLICY_KEY).await?;
    if let Some(p) = &policy {
        p.validate().map_err(|e| SettingsError::Invalid {
            key: POLICY_KEY,
            reason: e.to_string(),
        })?;
    }
    Ok(policy)
}

/// Stores the policy (validated by the caller), making the settings list when the site has
/// none yet.
pub async fn save_policy(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
    policy: &LifecyclePolicy,
) -> Result<(), SettingsError> {
    save(graph, state, tenant, site_path, POLICY_KEY, Some(policy)).await
}

/// The tenant's webhook endpoint (its URL and signing secret), if one was registered.
pub async fn load_webhook(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
) -> Result<Option<Endpoint>, SettingsError> {
    load(graph, state, tenant, site_path, WEBHOOK_KEY).await
}

/// Registers (`Some`) or removes (`None`) the tenant's webhook endpoint.
pub async fn save_webhook(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
    endpoint: Option<&Endpoint>,
) -> Result<(), SettingsError> {
    save(graph, state, tenant, site_path, WEBHOOK_KEY, endpoint).await
}

/// A setting's value, if it was set. Never creates anything.
async fn load<T: serde::de::DeserializeOwned>(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
    key: &'static str,
) -> Result<Option<T>, SettingsError> {
    let site = customer_list::site_id(graph, state, tenant, site_path).await?;
    let Some(list) = graph.find_list(&site, SETTINGS_LIST).await? else {
        return Ok(None);
    };
    let items = graph.find_items(&site, &list.id, "SettingKey", key).await?;
    let Some(value) = items
        .iter()
        .find_map(|i| i.fields.get("Value").and_then(Value::as_str))
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    serde_json::from_str(value)
        .map(Some)
        .map_err(|e| SettingsError::Invalid {
            key,
            reason: e.to_string(),
        })
}

/// Writes a setting's value (`None`: empties it), making the settings list when the site
/// has none yet.
async fn save<T: serde::Serialize>(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
    key: &'static str,
    value: Option<&T>,
) -> Result<(), SettingsError> {
    let site = customer_list::site_id(graph, state, tenant, site_path).await?;
    let list = ensure_list(graph, &site, &settings_list()).await?;
    // Settings are plain data: they serialise.
    let value = match value {
        Some(v) => serde_json::to_string(v).map_err(|e| SettingsError::Invalid {
            key,
            reason: e.to_string(),
        })?,
        None => String::new(),
    };
    let mut fields = Map::new();
    fields.insert("Title".into(), json!(key));
    fields.insert("SettingKey".into(), json!(key));
    fields.insert("Value".into(), json!(value));
    let existing = graph.find_items(&site, &list.id, "SettingKey", key).await?;
    if let Some(item) = existing.first() {
        graph.update_item(&site, &list.id, &item.id, &fields).await?;
        return Ok(());
    }
    let answer = graph
        .write_items(&site, &list.id, &[ItemWrite::Create(fields.clone())])
        .await?
        .into_iter()
        .next()
        .unwrap_or(Ok(None));
    match answer {
        Ok(_) => Ok(()),
        // Created meanwhile by another request (the key is unique): replace its value.
        Err(e) if e.status() == Some(409) => {
            let item = graph
                .find_items(&site, &list.id, "SettingKey", key)
                .await?
                .into_iter()
                .next()
                .ok_or(e)?;
            graph.update_item(&site, &list.id, &item.id, &fields).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
