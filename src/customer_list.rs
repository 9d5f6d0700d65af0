//! GroupMgr's own per-group data, kept in the customer's tenant: a SharePoint list named
//! "GroupMgr Groups" on `GROUPMGR_SHAREPOINT_SITE` (ARCHITECTURE.md §6). One item per group,
//! keyed by the indexed `GroupId` column. Found (or created) on the first sync; where it is
//! is remembered in the tenant's job state.
//!
//! Two writers share a row and never undo each other: the group sync writes only the group's
//! columns (name, counts, team, site, lifecycle), the activity sync only the activity columns
//! — and those only ever move forward: an update names the version it read (`If-Match`), and
//! one that lost to a concurrent write reads the row again and merges (the later of each
//! time) before it tries again. Values are fitted to their columns (a name longer than the
//! 255 characters of `Title` is shortened there, and kept whole in `DisplayName`); a row that
//! SharePoint still refuses is reported back, not fatal, so that one row cannot fail a sync.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::activity::{ActivityDays, LastActivity, ReportedCounts, SharePointKinds, TeamsSources};
use crate::domain::TenantId;
use crate::jobs::state::{StateError, TenantState, load_doc, save_doc};
use crate::microsoft::graph::{
    AssignedLabel, Column, ColumnKind, Graph, GraphError, ItemWrite, ListDefinition, ListItem, MAX_BATCH,
};

pub const LIST_NAME: &str = "GroupMgr Groups";
const STATE_KEY: &str = "customer_list";
/// SharePoint's limit of a single line of text (the `Title` column): 255 characters.
pub const TITLE_MAX: usize = 255;
/// How often a conditional activity update is re-read and retried when it keeps losing.
const MERGE_ATTEMPTS: usize = 3;

/// Where the list is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListLocation {
    pub site_id: String,
    pub list_id: String,
    /// The list's columns are those of this version of `list_definition` (0: remembered by a
    /// GroupMgr that did not say; its list may lack a column added since).
    #[serde(default)]
    pub columns: u32,
}

/// The version of the list's columns; raised whenever `list_definition` gains a column.
const COLUMNS_VERSION: u32 = 10;

/// Whether a group still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    /// Deleted (restorable for 30 days) or gone.
    Deleted,
}

/// Whether a group has an owner who can act: as the last ownership check found it
/// (`lifecycle::ownership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Ownership {
    /// At least one owner whose account is enabled (or a service principal).
    Owned,
    /// No owner at all (removed, or their accounts deleted: Entra removes a deleted user from
    /// the groups they owned).
    None,
    /// Owners, but every one a disabled account.
    Disabled,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Owned => "owned",
            Ownership::None => "none",
            Ownership::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Ownership::Owned, Ownership::None, Ownership::Disabled]
            .into_iter()
            .find(|o| o.as_str() == s)
    }

    /// No owner who can act.
    pub fn is_ownerless(self) -> bool {
        self != Ownership::Owned
    }
}

/// One row: what GroupMgr knows about a group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub group_id: String,
    /// The group's whole display name (up to Graph's 256 characters).
    pub name: String,
    /// When the group was made (Graph's `createdDateTime`).
    pub created: Option<DateTime<Utc>>,
    pub owner_count: Option<u64>,
    /// The owners' ids (users or service principals); `None` until a sync read them.
    pub owner_ids: Option<Vec<String>>,
    /// Whether an owner can act, as the last check found it (`None`: not checked yet).
    pub ownership: Option<Ownership>,
    /// When the group was first found ownerless (cleared once it has an owner again).
    pub ownerless_since: Option<DateTime<Utc>>,
    /// Its sensitivity labels (`None`: not read yet, as for rows written before GroupMgr
    /// read them).
    pub labels: Option<Vec<AssignedLabel>>,
    pub member_count: Option<u64>,
    pub teams_enabled: bool,
    /// The team's thread id (`19:…@thread.skype`, Graph `internalId`): how Teams audit
    /// records name the team.
    pub teams_thread_id: Option<String>,
    /// The group's SharePoint site (how SharePoint audit records name the group).
    pub site_url: Option<String>,
    /// The sites of the team's private and shared channels (each has its own; their records
    /// are the group's activity too).
    pub channel_sites: Vec<String>,
    pub last_teams_activity: Option<DateTime<Utc>>,
    /// The Teams report's and the audit feed's last Teams activity, apart.
    pub last_teams_by: TeamsSources,
    pub last_sharepoint_activity: Option<DateTime<Utc>>,
    /// The group mailbox's last activity (the Microsoft 365 groups activity report).
    pub last_mail_activity: Option<DateTime<Utc>>,
    /// SharePoint's last activity by kind (file edit, file view, page, list).
    pub last_sharepoint_kinds: SharePointKinds,
    pub last_activity: Option<DateTime<Utc>>,
    /// The days of the last 96 the group was active, per signal and per person (pseudonyms
    /// only: `activity::days`).
    pub activity_days: ActivityDays,
    /// What the usage reports count over 7, 30 and 90 days (`activity::reported`).
    pub report_counts: ReportedCounts,
    pub lifecycle: Lifecycle,
    pub synced_at: Option<DateTime<Utc>>,
}

/// A row as read from the list: its item id and version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub item: String,
    pub etag: Option<String>,
    pub row: GroupRow,
}

/// What the activity sync keeps of a row: its group, where it is, its version and its
/// activity (the rest is the group sync's). A fraction of a `StoredRow`, which matters when
/// every row of a 100,000-group tenant is held: the group id is 16 bytes, not a string.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub group_id: uuid::Uuid,
    pub item: Box<str>,
    pub etag: Option<Box<str>>,
    pub activity: LastActivity,
}

impl ActivityRow {
    /// The row of a stored row whose group id is a GUID (every row the group sync writes).
    pub fn of(s: &StoredRow) -> Option<Self> {
        Some(Self {
            group_id: uuid::Uuid::parse_str(&s.row.group_id).ok()?,
            item: s.item.as_str().into(),
            etag: s.etag.as_deref().map(Into::into),
            activity: s.row.activity(),
        })
    }

    /// The group id as the list spells it (lower case).
    pub fn group(&self) -> String {
        self.group_id.to_string()
    }
}

/// The columns the group sync owns (besides the built-in `Title`).
fn group_columns() -> Vec<Column> {
    let col = |name, kind| Column { name, kind };
    vec![
        col("GroupId", ColumnKind::Text { unique: true }),
        col("DisplayName", ColumnKind::Note),
        col("OwnerCount", ColumnKind::Number),
        col("OwnerIds", ColumnKind::Note),
        col("Ownership", ColumnKind::Choice(&["owned", "none", "disabled"])),
        col("OwnerlessSince", ColumnKind::DateTime),
        col("SensitivityLabels", ColumnKind::Note),
        col("MemberCount", ColumnKind::Number),
        col("TeamsEnabled", ColumnKind::Boolean),
        col("TeamsThreadId", ColumnKind::Text { unique: false }),
        col("SiteUrl", ColumnKind::Text { unique: false }),
        col("ChannelSiteUrls", ColumnKind::Note),
        col("LifecycleStatus", ColumnKind::Choice(&["active", "deleted"])),
        col("CreatedAt", ColumnKind::DateTime),
        col("SyncedAt", ColumnKind::DateTime),
    ]
}

/// The columns the activity sync owns.
fn activity_columns() -> Vec<Column> {
    [
        "LastTeamsActivity",
        "LastTeamsReport",
        "LastTeamsAudit",
        "LastSharePointActivity",
        "LastMailActivity",
        "LastFileEdit",
        "LastFileView",
        "LastPageView",
        "LastListActivity",
        "LastActivity",
    ]
    .into_iter()
    .map(|name| Column {
        name,
        kind: ColumnKind::DateTime,
    })
    .chain(["ActivityDays", "ReportCounts"].into_iter().map(|name| Column {
        name,
        kind: ColumnKind::Note,
    }))
    .collect()
}

/// The list and its columns (besides the built-in `Title`, which holds the group's name).
pub fn list_definition() -> ListDefinition {
    ListDefinition {
        display_name: LIST_NAME,
        description: "Per-group data kept by GroupMgr. Maintained automatically; do not edit.",
        columns: group_columns().into_iter().chain(activity_columns()).collect(),
    }
}

/// The name as the `Title` column can hold it: at most 255 characters (counted as SharePoint
/// counts them, in UTF-16 units), shortened with an ellipsis when longer.
pub fn fit_title(name: &str) -> String {
    if name.encode_utf16().count() <= TITLE_MAX {
        return name.to_string();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in name.chars() {
        if units + c.len_utf16() > TITLE_MAX - 1 {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
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

fn opt<T: Serialize>(v: &Option<T>) -> Value {
    v.as_ref().map_or(Value::Null, |x| json!(x))
}

impl GroupRow {
    /// A row for a group that has none yet: no counts, no activity.
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            name: String::new(),
            created: None,
            owner_count: None,
            owner_ids: None,
            ownership: None,
            ownerless_since: None,
            labels: None,
            member_count: None,
            teams_enabled: false,
            teams_thread_id: None,
            site_url: None,
            channel_sites: Vec::new(),
            last_teams_activity: None,
            last_teams_by: TeamsSources::default(),
            last_sharepoint_activity: None,
            last_mail_activity: None,
            last_sharepoint_kinds: SharePointKinds::default(),
            last_activity: None,
            activity_days: ActivityDays::default(),
            report_counts: ReportedCounts::default(),
            lifecycle: Lifecycle::Active,
            synced_at: None,
        }
    }

    /// The fields of the group's columns (not `SyncedAt`, which is stamped on write, so that
    /// comparing rows ignores it).
    pub fn group_fields(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("Title".into(), json!(fit_title(&self.name)));
        f.insert("DisplayName".into(), json!(self.name));
        f.insert("GroupId".into(), json!(self.group_id));
        f.insert("CreatedAt".into(), time(&self.created));
        f.insert("OwnerCount".into(), opt(&self.owner_count));
        f.insert(
            "OwnerIds".into(),
            self.owner_ids.as_ref().map_or(Value::Null, |ids| json!(ids.join("\n"))),
        );
        f.insert(
            "Ownership".into(),
            self.ownership.map_or(Value::Null, |o| json!(o.as_str())),
        );
        f.insert("OwnerlessSince".into(), time(&self.ownerless_since));
        // As Graph spells them (`[]`: none), so that an empty value is not read as unknown.
        f.insert(
            "SensitivityLabels".into(),
            self.labels
                .as_ref()
                .map_or(Value::Null, |l| json!(json!(l).to_string())),
        );
        f.insert("MemberCount".into(), opt(&self.member_count));
        f.insert("TeamsEnabled".into(), json!(self.teams_enabled));
        f.insert("TeamsThreadId".into(), opt(&self.teams_thread_id));
        f.insert("SiteUrl".into(), opt(&self.site_url));
        f.insert(
            "ChannelSiteUrls".into(),
            if self.channel_sites.is_empty() {
                Value::Null
            } else {
                json!(self.channel_sites.join("\n"))
            },
        );
        f.insert(
            "LifecycleStatus".into(),
            json!(match self.lifecycle {
                Lifecycle::Active => "active",
                Lifecycle::Deleted => "deleted",
            }),
        );
        f
    }

    /// The fields of the activity columns.
    pub fn activity_fields(&self) -> Map<String, Value> {
        activity_fields(&self.activity())
    }

    /// The activity as recorded.
    pub fn activity(&self) -> LastActivity {
        LastActivity {
            teams: self.last_teams_activity,
            teams_by: self.last_teams_by,
            sharepoint: self.last_sharepoint_activity,
            mail: self.last_mail_activity,
            kinds: self.last_sharepoint_kinds,
            days: self.activity_days.clone(),
            reported: self.report_counts,
        }
    }

    /// Sets the activity columns (`LastActivity` is the later of the two).
    pub fn set_activity(&mut self, a: LastActivity) {
        self.last_teams_activity = a.teams;
        self.last_teams_by = a.teams_by;
        self.last_sharepoint_activity = a.sharepoint;
        self.last_mail_activity = a.mail;
        self.last_sharepoint_kinds = a.kinds;
        self.last_activity = a.overall();
        self.activity_days = a.days;
        self.report_counts = a.reported;
    }

    pub fn from_fields(f: &Map<String, Value>) -> Option<Self> {
        let count = |k: &str| f.get(k).and_then(Value::as_f64).map(|n| n.max(0.0) as u64);
        let text = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            group_id: f.get("GroupId")?.as_str()?.to_string(),
            // Rows written before the DisplayName column existed have the name in Title only.
            name: text("DisplayName").or_else(|| text("Title")).unwrap_or_default(),
            created: parse_time(f.get("CreatedAt")),
            owner_count: count("OwnerCount"),
            owner_ids: text("OwnerIds").map(|t| t.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()),
            ownership: text("Ownership").as_deref().and_then(Ownership::parse),
            ownerless_since: parse_time(f.get("OwnerlessSince")),
            labels: text("SensitivityLabels").and_then(|t| serde_json::from_str(&t).ok()),
            member_count: count("MemberCount"),
            teams_enabled: f.get("TeamsEnabled").and_then(Value::as_bool).unwrap_or(false),
            teams_thread_id: text("TeamsThreadId"),
            site_url: text("SiteUrl"),
            channel_sites: text("ChannelSiteUrls")
                .map(|t| t.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
            last_teams_activity: parse_time(f.get("LastTeamsActivity")),
            last_teams_by: TeamsSources {
                report: parse_time(f.get("LastTeamsReport")),
                audit: parse_time(f.get("LastTeamsAudit")),
            },
            last_sharepoint_activity: parse_time(f.get("LastSharePointActivity")),
            last_mail_activity: parse_time(f.get("LastMailActivity")),
            last_sharepoint_kinds: SharePointKinds {
                file_edit: parse_time(f.get("LastFileEdit")),
                file_view: parse_time(f.get("LastFileView")),
                page: parse_time(f.get("LastPageView")),
                list: parse_time(f.get("LastListActivity")),
            },
            last_activity: parse_time(f.get("LastActivity")),
            activity_days: text("ActivityDays")
                .map(|t| ActivityDays::from_column(&t))
                .unwrap_or_default(),
            report_counts: text("ReportCounts")
                .map(|t| ReportedCounts::from_column(&t))
                .unwrap_or_default(),
            lifecycle: match f.get("LifecycleStatus").and_then(Value::as_str) {
                Some("deleted") => Lifecycle::Deleted,
                _ => Lifecycle::Active,
            },
            synced_at: parse_time(f.get("SyncedAt")),
        })
    }

    /// Equal in every column the group sync writes.
    pub fn same_group_data(&self, other: &GroupRow) -> bool {
        self.group_fields() == other.group_fields()
    }
}

impl StoredRow {
    fn of(item: ListItem) -> Option<Self> {
        GroupRow::from_fields(&item.fields).map(|row| StoredRow {
            item: item.id,
            etag: item.e_tag,
            row,
        })
    }
}

/// Why the list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Where the tenant's list is, if a sync has found or made it.
pub async fn location(state: &dyn TenantState, tenant: &TenantId) -> Result<Option<ListLocation>, StateError> {
    Ok(load_doc(state, tenant, STATE_KEY).await?.map(|(loc, _)| loc))
}

/// Forgets where the list is (it was deleted): the next `ensure` finds or creates it again.
pub async fn forget(state: &dyn TenantState, tenant: &TenantId) -> Result<(), StateError> {
    state.delete(tenant, STATE_KEY).await
}

/// Finds or creates the list on the configured site (with any column an older version of it
/// lacks), and remembers where it is.
pub async fn ensure(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
) -> Result<ListLocation, ListError> {
    if let Some((mut loc, version)) = load_doc::<ListLocation>(state, tenant, STATE_KEY).await? {
        if loc.columns < COLUMNS_VERSION {
            graph
                .add_missing_columns(&loc.site_id, &loc.list_id, &list_definition().columns)
                .await?;
            loc.columns = COLUMNS_VERSION;
            match save_doc(state, tenant, STATE_KEY, &loc, Some(&version)).await {
                Ok(_) | Err(StateError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(loc);
    }
    let site = configured_site(graph, site_path).await?;
    let list = match graph.find_list(&site.id, LIST_NAME).await? {
        Some(l) => {
            graph
                .add_missing_columns(&site.id, &l.id, &list_definition().columns)
                .await?;
            l
        }
        None => match graph.create_list(&site.id, &list_definition()).await {
            Ok(l) => l,
            // Made by a concurrent run, or our create's answer was lost: look again.
            Err(e) => graph.find_list(&site.id, LIST_NAME).await?.ok_or(e)?,
        },
    };
    let loc = ListLocation {
        site_id: site.id,
        list_id: list.id,
        columns: COLUMNS_VERSION,
    };
    match save_doc(state, tenant, STATE_KEY, &loc, None).await {
        Ok(_) | Err(StateError::Conflict) => Ok(loc),
        Err(e) => Err(e.into()),
    }
}

/// The configured site (`GROUPMGR_SHAREPOINT_SITE`'s path on the tenant's SharePoint host).
async fn configured_site(graph: &Graph<'_>, site_path: &str) -> Result<crate::microsoft::graph::Site, GraphError> {
    let root = graph.root_site().await?;
    let hostname = root
        .site_collection
        .and_then(|c| c.hostname)
        .ok_or_else(|| GraphError::Protocol("root site has no hostname".into()))?;
    graph.site_by_path(&hostname, site_path).await
}

/// The id of the tenant's GroupMgr site: the one the list is on, when a sync found it, else
/// the configured one looked up now.
pub async fn site_id(
    graph: &Graph<'_>,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
) -> Result<String, ListError> {
    if let Some(loc) = location(state, tenant).await? {
        return Ok(loc.site_id);
    }
    Ok(configured_site(graph, site_path).await?.id)
}

/// Adds the columns a list made by an earlier GroupMgr lacks (e.g. `DisplayName`).
/// The row of one group.
pub async fn row(graph: &Graph<'_>, loc: &ListLocation, group_id: &str) -> Result<Option<StoredRow>, GraphError> {
    let items = graph
        .find_items(&loc.site_id, &loc.list_id, "GroupId", group_id)
        .await?;
    Ok(items.into_iter().find_map(StoredRow::of))
}

/// The rows of several groups, looked up 20 at a time with `$batch`. Groups without a row
/// are absent from the map; a lookup that failed is an error, never "no row".
pub async fn rows_for(
    graph: &Graph<'_>,
    loc: &ListLocation,
    ids: &[String],
) -> Result<HashMap<String, StoredRow>, GraphError> {
    let found = graph
        .find_items_batched(&loc.site_id, &loc.list_id, "GroupId", ids)
        .await?;
    let mut out = HashMap::new();
    for items in found.into_values() {
        for r in items?.into_iter().filter_map(StoredRow::of) {
            out.insert(r.row.group_id.clone(), r);
        }
    }
    Ok(out)
}

/// Every row, keyed by group id.
pub async fn all_rows(graph: &Graph<'_>, loc: &ListLocation) -> Result<HashMap<String, StoredRow>, GraphError> {
    Ok(graph
        .all_items(&loc.site_id, &loc.list_id, 999, StoredRow::of)
        .await?
        .into_iter()
        .map(|r| (r.row.group_id.clone(), r))
        .collect())
}

/// The rows `change` changes, with their item ids, reading the list page by page (only the
/// changed rows are kept).
pub async fn changed_rows(
    graph: &Graph<'_>,
    loc: &ListLocation,
    mut change: impl FnMut(&GroupRow) -> Option<GroupRow>,
) -> Result<Vec<(Option<String>, GroupRow)>, GraphError> {
    graph
        .all_items(&loc.site_id, &loc.list_id, 999, |item| {
            let stored = StoredRow::of(item)?;
            change(&stored.row).map(|row| (Some(stored.item), row))
        })
        .await
}

/// The activity columns' values for `a` (`LastActivity` the latest).
fn activity_fields(a: &LastActivity) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("LastTeamsActivity".into(), time(&a.teams));
    f.insert("LastTeamsReport".into(), time(&a.teams_by.report));
    f.insert("LastTeamsAudit".into(), time(&a.teams_by.audit));
    f.insert("LastSharePointActivity".into(), time(&a.sharepoint));
    f.insert("LastMailActivity".into(), time(&a.mail));
    f.insert("LastFileEdit".into(), time(&a.kinds.file_edit));
    f.insert("LastFileView".into(), time(&a.kinds.file_view));
    f.insert("LastPageView".into(), time(&a.kinds.page));
    f.insert("LastListActivity".into(), time(&a.kinds.list));
    f.insert("LastActivity".into(), time(&a.overall()));
    f.insert("ActivityDays".into(), opt(&a.days.to_column()));
    f.insert("ReportCounts".into(), opt(&a.reported.to_column()));
    f
}

/// Every row as the activity sync keeps it, reading the list page by page; `each` sees each
/// whole row once (to index its sites and team) before only its `ActivityRow` is kept.
pub async fn activity_rows(
    graph: &Graph<'_>,
    loc: &ListLocation,
    mut each: impl FnMut(&GroupRow),
) -> Result<HashMap<uuid::Uuid, ActivityRow>, GraphError> {
    let mut rows = HashMap::new();
    // Straight into the map, page by page (no list of every row beside it).
    graph
        .all_items(&loc.site_id, &loc.list_id, 999, |item| {
            let stored = StoredRow::of(item)?;
            each(&stored.row);
            if let Some(r) = ActivityRow::of(&stored) {
                rows.insert(r.group_id, r);
            }
            None::<()>
        })
        .await?;
    rows.shrink_to_fit();
    Ok(rows)
}

/// A row SharePoint would not take.
#[derive(Debug, Clone)]
pub struct RefusedRow {
    pub group_id: String,
    pub error: GraphError,
}

impl RefusedRow {
    /// Whether the write was not refused but not done: throttled, or SharePoint unavailable,
    /// with no time left in the budget to wait for it. Kept like a refusal, but the sync is
    /// not finished until it is written.
    pub fn transient(&self) -> bool {
        match &self.error {
            GraphError::Service { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            GraphError::Transport(_) | GraphError::Timeout => true,
            GraphError::Protocol(_) => false,
        }
    }

    /// The wait Microsoft asked for, when it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match &self.error {
            GraphError::Service { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What a write did: rows written, and rows refused (each with its reason).
#[derive(Debug, Default)]
pub struct WriteOutcome {
    pub written: usize,
    pub refused: Vec<RefusedRow>,
    /// The new eTag of each row written, by group id (`None`: Graph did not say).
    pub etags: HashMap<String, Option<String>>,
    /// The activity each row written now holds (merged with the row as it was read last, which
    /// may be newer than the caller's copy), by group id.
    pub activity: HashMap<String, LastActivity>,
}

/// Writes the group columns of rows: creates the missing ones (activity empty), updates the
/// others' group columns only, 20 to a batch. A create that meets an existing row (a previous
/// run wrote it but stopped before saving its progress) becomes an update.
pub async fn write_group_rows(
    graph: &Graph<'_>,
    loc: &ListLocation,
    rows: Vec<(Option<String>, GroupRow)>,
) -> Result<WriteOutcome, GraphError> {
    let now = json!(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let fields = |row: &GroupRow| {
        let mut f = row.group_fields();
        f.insert("SyncedAt".into(), now.clone());
        f
    };
    let mut outcome = WriteOutcome::default();
    // One batch at a time, its conflicts resolved before the next is sent.
    for chunk in rows.chunks(MAX_BATCH) {
        let writes: Vec<ItemWrite> = chunk
            .iter()
            .map(|(item, row)| match item {
                Some(id) => ItemWrite::Update {
                    item: id.clone(),
                    fields: fields(row),
                    if_match: None,
                },
                None => {
                    let mut f = fields(row);
                    f.extend(row.activity_fields());
                    ItemWrite::Create(f)
                }
            })
            .collect();
        let answers = graph.write_items(&loc.site_id, &loc.list_id, &writes).await?;
        let mut found = Vec::new();
        for ((_, row), answer) in chunk.iter().zip(answers) {
            let answer = match answer {
                Err(e) if e.status() == Some(409) => match self::row(graph, loc, &row.group_id).await? {
                    Some(existing) => {
                        let updated = graph
                            .update_item(&loc.site_id, &loc.list_id, &existing.item, &fields(row))
                            .await;
                        // The activity the create carried goes forward onto the row found.
                        if updated.is_ok()
                            && row.activity() != LastActivity::default()
                            && let Some(r) = ActivityRow::of(&existing)
                        {
                            found.push((r, row.activity()));
                        }
                        updated.map(|()| None)
                    }
                    None => Err(e),
                },
                other => other,
            };
            match answer {
                Ok(_) => outcome.written += 1,
                Err(error) => outcome.refused.push(RefusedRow {
                    group_id: row.group_id.clone(),
                    error,
                }),
            }
        }
        if !found.is_empty() {
            let merged = write_activity(graph, loc, found).await?;
            outcome.refused.extend(merged.refused);
        }
    }
    Ok(outcome)
}

/// Moves rows' activity forward: each column becomes the later of what the row holds and what
/// was seen; a row already as recent is not written. Updates are conditional on the version
/// read; one that lost to a concurrent write is read again and merged before it is retried.
pub async fn write_activity(
    graph: &Graph<'_>,
    loc: &ListLocation,
    seen: Vec<(ActivityRow, LastActivity)>,
) -> Result<WriteOutcome, GraphError> {
    let mut outcome = WriteOutcome::default();
    let mut pending: Vec<(ActivityRow, LastActivity)> = seen;
    for attempt in 1..=MERGE_ATTEMPTS {
        let mut writes = Vec::new();
        for (stored, a) in pending.drain(..) {
            let mut merged = stored.activity.clone();
            merged.merge(a.clone());
            if merged != stored.activity {
                writes.push((stored, a, merged));
            }
        }
        let mut lost = Vec::new();
        for chunk in writes.chunks(MAX_BATCH) {
            let items: Vec<ItemWrite> = chunk
                .iter()
                .map(|(stored, _, merged)| ItemWrite::Update {
                    item: stored.item.to_string(),
                    fields: activity_fields(merged),
                    if_match: stored.etag.as_deref().map(str::to_string),
                })
                .collect();
            let answers = graph.write_items(&loc.site_id, &loc.list_id, &items).await?;
            for ((stored, a, merged), answer) in chunk.iter().zip(answers) {
                match answer {
                    Ok(etag) => {
                        outcome.written += 1;
                        outcome.etags.insert(stored.group(), etag);
                        outcome.activity.insert(stored.group(), merged.clone());
                    }
                    // Changed since it was read: read it again and merge.
                    Err(e) if e.status() == Some(412) && attempt < MERGE_ATTEMPTS => {
                        lost.push((stored.group(), a.clone()))
                    }
                    Err(error) => outcome.refused.push(RefusedRow {
                        group_id: stored.group(),
                        error,
                    }),
                }
            }
        }
        if lost.is_empty() {
            break;
        }
        let ids: Vec<String> = lost.iter().map(|(g, _)| g.clone()).collect();
        let current = rows_for(graph, loc, &ids).await?;
        pending = lost
            .into_iter()
            .filter_map(|(g, a)| current.get(&g).and_then(ActivityRow::of).map(|r| (r, a)))
            .collect();
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fitted_to_the_title_column() {
        assert_eq!(fit_title("Project X"), "Project X");
        let long = "é".repeat(256);
        let title = fit_title(&long);
        assert_eq!(title.encode_utf16().count(), TITLE_MAX);
        assert!(title.ends_with('…'));
        // UTF-16: a character outside the BMP counts twice, and is never split.
        let emoji = "😀".repeat(200);
        let title = fit_title(&emoji);
        assert!(title.encode_utf16().count() <= TITLE_MAX);
        assert!(title.chars().all(|c| c == '😀' || c == '…'));
        let mut row = GroupRow::new("g");
        row.name = long.clone();
        let f = row.group_fields();
        assert_eq!(f["DisplayName"], json!(long), "the whole name is kept");
        assert_eq!(GroupRow::from_fields(&f).unwrap().name, long);
    }

    #[test]
    fn group_and_activity_columns_do_not_overlap() {
        let mut row = GroupRow::new("g");
        // The list keeps whole seconds.
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0);
        row.set_activity(LastActivity {
            teams: now,
            ..Default::default()
        });
        let g = row.group_fields();
        let a = row.activity_fields();
        assert!(g.keys().all(|k| !a.contains_key(k)));
        let mut all = g.clone();
        all.extend(a);
        assert_eq!(GroupRow::from_fields(&all).unwrap().activity(), row.activity());
    }
}
