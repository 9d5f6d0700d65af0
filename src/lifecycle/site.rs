//! Where a tenant's lifecycle settings live: a second list on the customer's GroupMgr site
//! ("GroupMgr Settings", beside "GroupMgr Groups"), one item per setting, its JSON in a plain
//! multi-line text column. The customer keeps the policy (it is theirs, and readable and
//! auditable in SharePoint's own version history); GroupMgr's database never holds it.
//! Read and written with the caller's rights (on-behalf-of), so only someone who may edit
//! the site can change it.

use serde_json::{Map, Value, json};

use super::policy::LifecyclePolicy;
use crate::customer_list::{self, ListError};
use crate::domain::TenantId;
use crate::jobs::state::TenantState;
use crate::microsoft::graph::{Column, ColumnKind, Graph, GraphError, ItemWrite, ListDefinition, SpList};

pub const SETTINGS_LIST: &str = "GroupMgr Settings";
/// The setting that holds the lifecycle policy.
const POLICY_KEY: &str = "lifecyclePolicy";

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

/// The list `definition` names on `site`, made when it does not exist.
pub async fn ensure_list(graph: &Graph<'_>, site: &str, definition: &ListDefinition) -> Result<SpList, GraphError> {
    match graph.find_list(site, definition.display_name).await? {
        Some(l) => Ok(l),
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
    let site = customer_list::site_id(graph, state, tenant, site_path).await?;
    let Some(list) = graph.find_list(&site, SETTINGS_LIST).await? else {
        return Ok(None);
    };
    let items = graph.find_items(&site, &list.id, "SettingKey", POLICY_KEY).await?;
    let Some(value) = items.iter().find_map(|i| i.fields.get("Value").and_then(Value::as_str)) else {
        return Ok(None);
    };
    let invalid = |reason: String| SettingsError::Invalid {
        key: POLICY_KEY,
        reason,
    };
    let policy: LifecyclePolicy = serde_json::from_str(value).map_err(|e| invalid(e.to_string()))?;
    policy.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(Some(policy))
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
    let site = customer_list::site_id(graph, state, tenant, site_path).await?;
    let list = ensure_list(graph, &site, &settings_list()).await?;
    // A policy serialises: its fields are plain data.
    let value = serde_json::to_string(policy).map_err(|e| SettingsError::Invalid {
        key: POLICY_KEY,
        reason: e.to_string(),
    })?;
    let mut fields = Map::new();
    fields.insert("Title".into(), json!(POLICY_KEY));
    fields.insert("SettingKey".into(), json!(POLICY_KEY));
    fields.insert("Value".into(), json!(value));
    let existing = graph.find_items(&site, &list.id, "SettingKey", POLICY_KEY).await?;
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
                .find_items(&site, &list.id, "SettingKey", POLICY_KEY)
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
