//! GroupMgr's own per-group data, kept in the customer's tenant: a SharePoint list named
//! "GroupMgr Groups" on `GROUPMGR_SHAREPOINT_SITE` (ARCHITECTURE.md §6). One item per group,
//! keyed by the indexed `GroupId` column. Found (or created) on the first sync; where it is
//! is remembered in the tenant's state.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain::TenantId;
use crate::microsoft::graph::{Column, ColumnKind, Graph, GraphError, ItemWrite, ListDefinition, ListItem, MAX_BATCH};
use crate::store::{Store, StoreError};

pub const LIST_NAME: &str = "GroupMgr Groups";
const STATE_KEY: &str = "customer_list";

/// Where the list is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListLocation {
    pub site_id: String,
    pub list_id: String,
}

/// Whether a group still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    /// Deleted (restorable for 30 days) or gone.
    Deleted,
}

/// One row: what GroupMgr knows about a group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub group_id: String,
    pub name: String,
    pub owner_count: Option<u64>,
    pub member_count: Option<u64>,
    pub teams_enabled: bool,
    /// The team's thread id (`19:…@thread.skype`, Graph `internalId`): how Teams audit
    /// records name the team.
    pub teams_thread_id: Option<String>,
    /// The group's SharePoint site (how SharePoint audit records name the group).
    pub site_url: Option<String>,
    pub last_teams_activity: Option<DateTime<Utc>>,
    pub last_sharepoint_activity: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    pub lifecycle: Lifecycle,
    pub synced_at: Option<DateTime<Utc>>,
}

/// The list and its columns (besides the built-in `Title`, which holds the group's name).
pub fn list_definition() -> ListDefinition {
    let col = |name, kind| Column { name, kind };
    ListDefinition {
        display_name: LIST_NAME,
        description: "Per-group data kept by GroupMgr. Maintained automatically; do not edit.",
        columns: vec![
            col("GroupId", ColumnKind::Text { unique: true }),
            col("OwnerCount", ColumnKind::Number),
            col("MemberCount", ColumnKind::Number),
            col("TeamsEnabled", ColumnKind::Boolean),
            col("TeamsThreadId", ColumnKind::Text { unique: false }),
            col("SiteUrl", ColumnKind::Text { unique: false }),
            col("LastTeamsActivity", ColumnKind::DateTime),
            col("LastSharePointActivity", ColumnKind::DateTime),
            col("LastActivity", ColumnKind::DateTime),
            col("LifecycleStatus", ColumnKind::Choice(&["active", "deleted"])),
            col("SyncedAt", ColumnKind::DateTime),
        ],
    }
}

fn time(v: &Option<DateTime<Utc>>) -> Value {
    v.map_or(Value::Null, |t| {
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl GroupRow {
    /// The item fields. `SyncedAt` is written separately so that comparing rows ignores it.
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("Title".into(), json!(self.name));
        f.insert("GroupId".into(), json!(self.group_id));
        f.insert("OwnerCount".into(), self.owner_count.map_or(Value::Null, |n| json!(n)));
        f.insert(
            "MemberCount".into(),
            self.member_count.map_or(Value::Null, |n| json!(n)),
        );
        f.insert("TeamsEnabled".into(), json!(self.teams_enabled));
        f.insert(
            "TeamsThreadId".into(),
            self.teams_thread_id.as_ref().map_or(Value::Null, |t| json!(t)),
        );
        f.insert(
            "SiteUrl".into(),
            self.site_url.as_ref().map_or(Value::Null, |t| json!(t)),
        );
        f.insert("LastTeamsActivity".into(), time(&self.last_teams_activity));
        f.insert("LastSharePointActivity".into(), time(&self.last_sharepoint_activity));
        f.insert("LastActivity".into(), time(&self.last_activity));
        f.insert(
            "LifecycleStatus".into(),
            json!(match self.lifecycle {
                Lifecycle::Active => "active",
                Lifecycle::Deleted => "deleted",
            }),
        );
        f
    }

    pub fn from_fields(f: &Map<String, Value>) -> Option<Self> {
        let count = |k: &str| f.get(k).and_then(Value::as_f64).map(|n| n.max(0.0) as u64);
        Some(Self {
            group_id: f.get("GroupId")?.as_str()?.to_string(),
            name: f.get("Title").and_then(Value::as_str).unwrap_or_default().to_string(),
            owner_count: count("OwnerCount"),
            member_count: count("MemberCount"),
            teams_enabled: f.get("TeamsEnabled").and_then(Value::as_bool).unwrap_or(false),
            teams_thread_id: f.get("TeamsThreadId").and_then(Value::as_str).map(str::to_string),
            site_url: f.get("SiteUrl").and_then(Value::as_str).map(str::to_string),
            last_teams_activity: parse_time(f.get("LastTeamsActivity")),
            last_sharepoint_activity: parse_time(f.get("LastSharePointActivity")),
            last_activity: parse_time(f.get("LastActivity")),
            lifecycle: match f.get("LifecycleStatus").and_then(Value::as_str) {
                Some("deleted") => Lifecycle::Deleted,
                _ => Lifecycle::Active,
            },
            synced_at: parse_time(f.get("SyncedAt")),
        })
    }

    /// Equal in everything the sync writes (not `synced_at`).
    pub fn same_data(&self, other: &GroupRow) -> bool {
        self.to_fields() == other.to_fields()
    }
}

/// Why the list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the tenant's list is, if a sync has found or made it.
pub async fn location(store: &dyn Store, tenant: &TenantId) -> Result<Option<ListLocation>, StoreError> {
    Ok(store
        .get_state(tenant, STATE_KEY)
        .await?
        .and_then(|(v, _)| serde_json::from_str(&v).ok()))
}

/// Finds or creates the list on the configured site, and remembers where it is.
pub async fn ensure(
    graph: &Graph<'_>,
    store: &dyn Store,
    tenant: &TenantId,
    site_path: &str,
) -> Result<ListLocation, ListError> {
    if let Some(loc) = location(store, tenant).await? {
        return Ok(loc);
    }
    let root = graph.root_site().await?;
    let hostname = root
        .site_collection
        .and_then(|c| c.hostname)
        .ok_or_else(|| GraphError::Protocol("root site has no hostname".into()))?;
    let site = graph.site_by_path(&hostname, site_path).await?;
    let list = match graph.find_list(&site.id, LIST_NAME).await? {
        Some(l) => l,
        None => match graph.create_list(&site.id, &list_definition()).await {
            Ok(l) => l,
            // Made by a concurrent run, or our create's answer was lost: look again.
            Err(e) => graph.find_list(&site.id, LIST_NAME).await?.ok_or(e)?,
        },
    };
    let loc = ListLocation {
        site_id: site.id,
        list_id: list.id,
    };
    match store
        .put_state(
            tenant,
            STATE_KEY,
            &serde_json::to_string(&loc).expect("plain JSON"),
            None,
        )
        .await
    {
        Ok(_) | Err(StoreError::Conflict) => Ok(loc),
        Err(e) => Err(e.into()),
    }
}

/// The row of one group, with its item id.
pub async fn row(
    graph: &Graph<'_>,
    loc: &ListLocation,
    group_id: &str,
) -> Result<Option<(String, GroupRow)>, GraphError> {
    let items = graph
        .find_items(&loc.site_id, &loc.list_id, "GroupId", group_id)
        .await?;
    Ok(items
        .into_iter()
        .find_map(|i| GroupRow::from_fields(&i.fields).map(|r| (i.id, r))))
}

/// The rows (with their item ids) of several groups, looked up 20 at a time with `$batch`.
/// Groups without a row are absent from the map; so is a group whose lookup failed.
pub async fn rows_for(
    graph: &Graph<'_>,
    loc: &ListLocation,
    ids: &[String],
) -> Result<HashMap<String, (String, GroupRow)>, GraphError> {
    let found = graph
        .find_items_batched(&loc.site_id, &loc.list_id, "GroupId", ids)
        .await?;
    Ok(found
        .into_values()
        .filter_map(Result::ok)
        .flatten()
        .filter_map(|item| GroupRow::from_fields(&item.fields).map(|r| (r.group_id.clone(), (item.id, r))))
        .collect())
}

/// Every row (for sync), keyed by group id, with item ids.
pub async fn all_rows(
    graph: &Graph<'_>,
    loc: &ListLocation,
) -> Result<HashMap<String, (String, GroupRow)>, GraphError> {
    Ok(graph
        .all_items(&loc.site_id, &loc.list_id, 999)
        .await?
        .into_iter()
        .filter_map(|item: ListItem| GroupRow::from_fields(&item.fields).map(|r| (r.group_id.clone(), (item.id, r))))
        .collect())
}

/// Writes rows (creates and updates), 20 to a batch. A create that meets an existing row
/// (a previous run wrote it but stopped before saving its progress) becomes an update.
pub async fn write_rows(
    graph: &Graph<'_>,
    loc: &ListLocation,
    rows: Vec<(Option<String>, GroupRow)>,
) -> Result<usize, GraphError> {
    let now = json!(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let fields = |row: &GroupRow| {
        let mut f = row.to_fields();
        f.insert("SyncedAt".into(), now.clone());
        f
    };
    // One batch at a time, its conflicts resolved before the next is sent.
    for chunk in rows.chunks(MAX_BATCH) {
        let writes: Vec<ItemWrite> = chunk
            .iter()
            .map(|(item, row)| match item {
                Some(id) => ItemWrite::Update {
                    item: id.clone(),
                    fields: fields(row),
                },
                None => ItemWrite::Create(fields(row)),
            })
            .collect();
        let outcomes = graph.write_items(&loc.site_id, &loc.list_id, &writes).await?;
        for ((_, row), outcome) in chunk.iter().zip(outcomes) {
            match outcome {
                Ok(()) => {}
                Err(e) if e.status() == Some(409) => match self::row(graph, loc, &row.group_id).await? {
                    Some((item, _)) => {
                        graph
                            .update_item(&loc.site_id, &loc.list_id, &item, &fields(row))
                            .await?
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }
    Ok(rows.len())
}
