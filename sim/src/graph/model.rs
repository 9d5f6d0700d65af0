//! The sim's directory and SharePoint data for one tenant, and how it is seeded.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::directory::{SimTenant, stable_id};

/// A group, Microsoft 365 or security.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub visibility: Option<String>,
    pub group_types: Vec<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub created: DateTime<Utc>,
    pub owners: BTreeSet<Uuid>,
    pub members: BTreeSet<Uuid>,
    /// The team's thread id (`internalId`) when the group is Teams-enabled.
    pub team: Option<String>,
    /// Set while the group sits in deleted items (restorable).
    pub deleted: Option<DateTime<Utc>>,
    /// The group's SharePoint site (Microsoft 365 groups): named after the nickname it was
    /// created with, and not renamed with it.
    pub site: Option<String>,
    /// When the site exists: Microsoft provisions a new group's site asynchronously, so
    /// `GET /groups/{id}/sites/root` answers 404 until then and the site sees no activity.
    pub site_ready: DateTime<Utc>,
    /// The team is archived (`team.isArchived`; `teams.rs`).
    pub archived: bool,
    /// Its sensitivity labels (Graph `assignedLabels`, ids of `sensitivity_labels`): a
    /// Microsoft 365 group carries at most one ("Use sensitivity labels to protect content in
    /// Microsoft Teams, Microsoft 365 groups, and SharePoint sites", Microsoft Learn).
    /// `None` while no label was ever set on it, which `/groups/delta` tells apart: "If the
    /// property has never been set before it will not be included in the response at all"
    /// (group: delta, "Properties"); a label removed leaves `Some(vec![])`, sent as `[]`.
    pub labels: Option<Vec<Uuid>>,
    /// When its mailbox stopped receiving mail (`SimState::stop_mail`): no mail after it.
    pub mail_stopped: Option<DateTime<Utc>>,
}

/// The sensitivity labels a tenant has published for groups and sites: the ones Microsoft
/// Purview suggests creating first ("Get started with sensitivity labels": General,
/// Confidential, Highly Confidential). Ids are the tenant's own.
pub const LABEL_NAMES: [&str; 3] = ["General", "Confidential", "Highly Confidential"];

/// The id of the tenant's label `name` (one of `LABEL_NAMES`).
pub fn label_id(tenant: Uuid, name: &str) -> Uuid {
    stable_id("label", &format!("{tenant}:{name}"))
}

/// Graph `assignedLabels` of a group labelled `labels` in `tenant` (resources/assignedlabel:
/// `labelId` and `displayName`). Graph returns the property only when `$select`ed
/// (resources/group, "assignedLabels").
pub fn assigned_labels_json(tenant: Uuid, labels: &[Uuid]) -> Value {
    Value::Array(
        labels
            .iter()
            .map(|l| {
                let name = LABEL_NAMES.iter().find(|n| label_id(tenant, n) == *l).copied();
                json!({"labelId": l.to_string(), "displayName": name})
            })
            .collect(),
    )
}

/// The label seeded group `i` carries: one group in eight is Confidential, one in eight
/// General, one in forty Highly Confidential, the rest none (labels are applied by owners
/// when they create a group, or by policy, and many groups predate them).
fn seeded_labels(tenant: Uuid, i: usize) -> Option<Vec<Uuid>> {
    let name = match (i % 8, i % 40) {
        (_, 17) => "Highly Confidential",
        (2, _) => "Confidential",
        (5, _) => "General",
        _ => return None,
    };
    Some(vec![label_id(tenant, name)])
}

/// A team's channel with a site of its own. Private and shared channels get their own
/// SharePoint site, named `<team site>-<channel name>` (Teams docs: "Private channels in
/// Microsoft Teams" and "Shared channels": "each private/shared channel has its own SharePoint
/// site"); records on it are the team's activity.
#[derive(Debug, Clone)]
pub struct SimChannel {
    pub id: String,
    pub name: String,
    /// `private` or `shared` (Graph `membershipType`).
    pub membership: &'static str,
    pub site: String,
}

impl Group {
    pub fn is_unified(&self) -> bool {
        self.group_types.iter().any(|t| t == "Unified")
    }

    /// The team's private and shared channels (not its standard ones, which live in the
    /// group's own site): one team in four has a private channel, one in four a shared one.
    pub fn channels(&self) -> Vec<SimChannel> {
        let (Some(_), Some(site)) = (&self.team, &self.site) else {
            return Vec::new();
        };
        let id = self.id.as_u128();
        let (name, membership) = match (id >> 48) % 4 {
            0 => ("Leadership", "private"),
            1 => ("Partners", "shared"),
            _ => return Vec::new(),
        };
        vec![SimChannel {
            id: format!("19:{:032x}@thread.tacv2", id ^ 0x5a5a),
            name: name.to_string(),
            membership,
            site: format!("{site}-{name}"),
        }]
    }

    /// The group as Graph answers a read with `$select` `sel`: the default properties, and
    /// `assignedLabels` only when selected (resources/group: "Requires `$select` to
    /// retrieve").
    pub fn view(&self, tenant: Uuid, domain: &str, sel: Option<&str>) -> Value {
        let mut v = super::select(self.to_json(domain), sel);
        if sel.is_some_and(|s| s.split(',').any(|p| p.trim() == "assignedLabels")) {
            v["assignedLabels"] = assigned_labels_json(tenant, self.labels.as_deref().unwrap_or_default());
        }
        v
    }

    /// The full Graph representation (graph-groups.md §1 example, field for field).
    pub fn to_json(&self, domain: &str) -> Value {
        let mail = self
            .mail_enabled
            .then(|| format!("{}@{domain}", self.mail_nickname.to_lowercase()));
        json!({
            "id": self.id.to_string(),
            "deletedDateTime": self.deleted.map(fmt_time),
            "classification": null,
            "createdDateTime": fmt_time(self.created),
            "description": self.description,
            "displayName": self.display_name,
            "expirationDateTime": null,
            "groupTypes": self.group_types,
            "isAssignableToRole": null,
            "mail": mail,
            "mailEnabled": self.mail_enabled,
            "mailNickname": self.mail_nickname,
            "membershipRule": null,
            "membershipRuleProcessingState": null,
            "onPremisesLastSyncDateTime": null,
            "onPremisesSecurityIdentifier": null,
            "onPremisesSyncEnabled": null,
            "preferredDataLocation": null,
            "preferredLanguage": null,
            "proxyAddresses": mail.iter().map(|m| format!("SMTP:{m}")).collect::<Vec<_>>(),
            "renewedDateTime": fmt_time(self.created),
            "resourceBehaviorOptions": [],
            "resourceProvisioningOptions": if self.team.is_some() { json!(["Team"]) } else { json!([]) },
            "securityEnabled": self.security_enabled,
            "theme": null,
            "visibility": self.visibility,
            "onPremisesProvisioningErrors": []
        })
    }
}

pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A directory setting object.
#[derive(Debug, Clone)]
pub struct Setting {
    pub id: Uuid,
    pub template_id: String,
    pub values: Vec<(String, String)>,
}

impl TenantGraph {
    /// A value of the tenant's `Group.Unified` setting: `None` when there is no such setting
    /// object, `Some("")` when the object does not hold the value.
    pub fn group_unified_value(&self, name: &str) -> Option<String> {
        let setting = self.settings.iter().find(|s| s.template_id == GROUP_UNIFIED_TEMPLATE)?;
        Some(
            setting
                .values
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        )
    }
}

impl Setting {
    /// A `Group.Unified` setting object made from the template, with `given` values set.
    pub fn group_unified(given: &[(&str, &str)]) -> Setting {
        Setting {
            id: Uuid::new_v4(),
            template_id: GROUP_UNIFIED_TEMPLATE.into(),
            values: group_unified_template()
                .iter()
                .map(|(n, _, d)| {
                    let v = given.iter().find(|(g, _)| g == n).map_or(*d, |(_, v)| *v);
                    (n.to_string(), v.to_string())
                })
                .collect(),
        }
    }
}

/// A SharePoint list with its items (fields as JSON).
#[derive(Debug, Clone)]
pub struct SpList {
    pub id: Uuid,
    pub display_name: String,
    pub columns: Vec<Value>,
    pub items: BTreeMap<u64, Map<String, Value>>,
    pub next_item: u64,
    /// Each item's version: it starts at 1 and grows with every write, and is the number in
    /// the item's `eTag` (`"{list id},{version}"`, as SharePoint spells list item eTags).
    pub versions: BTreeMap<u64, u64>,
    /// Indexed columns' values → items (SharePoint keeps an index per indexed column; the sim
    /// keeps one so that a lookup in a list of 100,000 items does not read them all). Kept by
    /// the item routes; `reindex` after changing items directly.
    pub index: std::collections::HashMap<String, std::collections::HashMap<String, BTreeSet<u64>>>,
}

impl SpList {
    /// The columns marked `indexed`.
    pub fn indexed_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.get("indexed") == Some(&json!(true)))
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    /// Builds the index again from the items.
    pub fn reindex(&mut self) {
        self.index.clear();
        let items: Vec<(u64, Map<String, Value>)> = self.items.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (id, fields) in items {
            self.index_item(id, &fields, true);
        }
    }

    /// Adds (`add`) or removes an item's indexed values.
    pub fn index_item(&mut self, id: u64, fields: &Map<String, Value>, add: bool) {
        for col in self.indexed_columns() {
            if let Some(v) = fields.get(&col).and_then(Value::as_str) {
                let ids = self.index.entry(col).or_default().entry(v.to_string()).or_default();
                if add {
                    ids.insert(id);
                } else {
                    ids.remove(&id);
                }
            }
        }
    }

    /// The items whose indexed `column` holds `value`.
    pub fn lookup(&self, column: &str, value: &str) -> Vec<u64> {
        self.index
            .get(column)
            .and_then(|m| m.get(value))
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// An item's eTag as Graph returns it (`listItem.eTag`).
    pub fn etag(&self, item: u64) -> String {
        format!("\"{},{}\"", self.id, self.versions.get(&item).copied().unwrap_or(1))
    }

    /// Records a write to an item: its eTag changes.
    pub fn touch(&mut self, item: u64) {
        *self.versions.entry(item).or_insert(1) += 1;
    }
}

/// Everything the Graph part of the sim knows about one tenant.
#[derive(Debug, Clone)]
pub struct TenantGraph {
    pub groups: BTreeMap<Uuid, Group>,
    /// Change log for delta, appended on every change.
    pub changes: Vec<Change>,
    pub seq: u64,
    pub settings: Vec<Setting>,
    pub hostname: String,
    pub root_site: String,
    /// Sites by server-relative path (e.g. `/sites/GroupMgr`) → site id.
    pub sites: BTreeMap<String, String>,
    /// Lists by site id.
    pub lists: BTreeMap<String, Vec<SpList>>,
    /// `Sites.Selected` grants of the GroupMgr app, by site id: what a tenant admin granted
    /// with `POST /sites/{id}/permissions` (seeded: `manage` on `/sites/GroupMgr`).
    pub selected_sites: BTreeMap<String, SiteRole>,
    /// List item writes so far (the sim's write throttling counts them).
    pub list_writes: u64,
    /// Team archive and unarchive operations by id (`teams.rs`).
    pub team_operations: BTreeMap<String, super::teams::TeamOperation>,
    /// Teams whose next archive or unarchive operation fails (`SimState::fail_next_team_operation`).
    pub failing_team_operations: std::collections::BTreeSet<Uuid>,
    /// The tenant's people by id: their user principal names, as audit records name them
    /// (`UserId`), guests' with `#EXT#`.
    pub upns: BTreeMap<Uuid, String>,
}

/// A role on one site (`Sites.Selected` grants: read, write, manage, fullcontrol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteRole {
    None,
    Read,
    Write,
    Manage,
}

/// What changed about a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Its properties, or its existence.
    Object,
    Member {
        user: Uuid,
        added: bool,
    },
    Owner {
        user: Uuid,
        added: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub group: Uuid,
    pub kind: ChangeKind,
}

impl TenantGraph {
    /// Records a change to a group (for delta).
    pub fn touch(&mut self, id: Uuid) {
        self.record(id, ChangeKind::Object);
    }

    pub fn record(&mut self, group: Uuid, kind: ChangeKind) {
        self.seq += 1;
        self.changes.push(Change {
            seq: self.seq,
            group,
            kind,
        });
    }

    /// A unified group that is not deleted.
    pub fn live_group(&self, id: &Uuid) -> Option<&Group> {
        self.groups.get(id).filter(|g| g.deleted.is_none())
    }
}

/// A deterministic pseudo-random sequence (so seeded tenants are the same on every run).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

const TOPICS: &[&str] = &[
    "Marketing",
    "Sales",
    "Finance",
    "Engineering",
    "Design",
    "Legal",
    "Support",
    "Research",
    "Operations",
    "Product",
    "Recruiting",
    "Training",
    "Events",
    "Partners",
    "Security",
    "Data",
    "Mobile",
    "Cloud",
    "Retail",
    "Logistics",
];

/// Seeds a tenant with `count` Microsoft 365 groups (about 40 % Teams-enabled), three
/// security groups, the GroupMgr SharePoint site, and the tenant's root site.
pub fn seed(tenant: &SimTenant, count: usize) -> TenantGraph {
    let mut rng = Lcg::new(tenant.id.as_u128() as u64);
    let base_time = DateTime::parse_from_rfc3339("2024-01-15T09:00:00Z")
        .expect("valid")
        .with_timezone(&Utc);
    // Groups are made by, and filled with, current employees; people who left and guests
    // join below.
    let users: Vec<Uuid> = tenant
        .users
        .iter()
        .filter(|u| u.enabled && !u.guest)
        .map(|u| u.id)
        .collect();
    let left: Vec<Uuid> = tenant.users.iter().filter(|u| !u.enabled).map(|u| u.id).collect();
    let guest = tenant.users.iter().find(|u| u.guest).map(|u| u.id);
    let mut groups = BTreeMap::new();
    let mut changes = Vec::new();
    let mut seq = 0;
    for i in 0..count {
        let topic = TOPICS[i % TOPICS.len()];
        let nickname = format!("{}{}", topic.to_lowercase(), i + 1);
        let id = stable_id("group", &format!("{}:{nickname}", tenant.id));
        let owner = users[rng.below(users.len() as u64) as usize];
        let mut members: BTreeSet<Uuid> = (0..rng.below(6))
            .map(|_| users[rng.below(users.len() as u64) as usize])
            .collect();
        members.insert(owner);
        let team = (rng.below(10) < 4).then(|| format!("19:{}@thread.skype", id.simple()));
        let owners = seeded_owners(i, owner, &left);
        members.extend(owners.iter().copied());
        if let Some(guest) = guest.filter(|_| i % 10 == 3) {
            members.insert(guest);
        }
        groups.insert(
            id,
            Group {
                id,
                display_name: format!("{topic} Team {}", i + 1),
                description: Some(format!("Collaboration space for {topic} ({})", i + 1)),
                mail_nickname: nickname,
                // One group in 25 hides its membership (an option of Outlook and Graph
                // groups: graph docs resources/group "visibility").
                visibility: Some(
                    match rng.below(3) {
                        _ if i % 25 == 12 => "HiddenMembership",
                        0 => "Private",
                        _ => "Public",
                    }
                    .into(),
                ),
                group_types: vec!["Unified".into()],
                mail_enabled: true,
                security_enabled: false,
                created: seeded_created(base_time, i),
                owners,
                members,
                team,
                deleted: None,
                site: Some(format!(
                    "https://{}.sharepoint.com/sites/{}",
                    tenant.name.to_lowercase(),
                    nickname_for_site(&tenant.id, i)
                )),
                site_ready: seeded_created(base_time, i),
                archived: false,
                mail_stopped: None,
                labels: seeded_labels(tenant.id, i),
            },
        );
        seq += 1;
        changes.push(Change {
            seq,
            group: id,
            kind: ChangeKind::Object,
        });
    }
    for name in ["GroupCreators", "IT Admins", "All Staff Security"] {
        let id = stable_id("group", &format!("{}:{name}", tenant.id));
        groups.insert(
            id,
            Group {
                id,
                display_name: name.into(),
                description: None,
                mail_nickname: name.replace(' ', "").to_lowercase(),
                visibility: None,
                group_types: vec![],
                mail_enabled: false,
                security_enabled: true,
                created: base_time,
                owners: BTreeSet::new(),
                members: users.iter().take(2).copied().collect(),
                team: None,
                deleted: None,
                site: None,
                site_ready: base_time,
                archived: false,
                mail_stopped: None,
                labels: None,
            },
        );
        seq += 1;
        changes.push(Change {
            seq,
            group: id,
            kind: ChangeKind::Object,
        });
    }
    let host = format!("{}.sharepoint.com", tenant.name.to_lowercase());
    let site_id = |path: &str| {
        let site = stable_id("site", &format!("{}:{path}", tenant.id));
        let web = stable_id("web", &format!("{}:{path}", tenant.id));
        format!("{host},{site},{web}")
    };
    let root = site_id("/");
    let groupmgr = site_id("/sites/GroupMgr");
    TenantGraph {
        groups,
        changes,
        seq,
        settings: Vec::new(),
        hostname: host,
        root_site: root.clone(),
        sites: BTreeMap::from([
            ("/".to_string(), root),
            ("/sites/GroupMgr".to_string(), groupmgr.clone()),
        ]),
        selected_sites: BTreeMap::from([(groupmgr, SiteRole::Manage)]),
        lists: BTreeMap::new(),
        list_writes: 0,
        team_operations: BTreeMap::new(),
        failing_team_operations: Default::default(),
        upns: tenant.users.iter().map(|u| (u.id, u.upn.clone())).collect(),
    }
}

/// The owners of seeded group `i`, made by `owner`. As in a real tenant, some groups have lost
/// their owners: one in 50 has none (an owner removed, or whose account was deleted: Entra
/// removes a deleted user from the groups they owned, "Delete or restore a user"), and where
/// the tenant has disabled accounts of people who left, one in 50 is owned by one of them
/// alone, one in 50 by two of them, and one in 50 by one of them and `owner` (not ownerless).
fn seeded_owners(i: usize, owner: Uuid, left: &[Uuid]) -> BTreeSet<Uuid> {
    match (i % 50, left) {
        (7, _) => BTreeSet::new(),
        (19, [a, ..]) => BTreeSet::from([*a]),
        (31, [a, b, ..]) => BTreeSet::from([*a, *b]),
        (43, [a, ..]) => BTreeSet::from([*a, owner]),
        _ => BTreeSet::from([owner]),
    }
}

/// When seeded group `i` was made: every 7 hours from `base`, wrapping within 700 days so that
/// a large seed (100,000 groups) is still all in the past.
fn seeded_created(base: DateTime<Utc>, i: usize) -> DateTime<Utc> {
    base + TimeDelta::seconds((i as i64 * 7 * 3600) % (700 * 86_400))
}

/// The nickname seeded group `i` was created with (its site is named after it).
fn nickname_for_site(_tenant: &Uuid, i: usize) -> String {
    format!("{}{}", TOPICS[i % TOPICS.len()].to_lowercase(), i + 1)
}

/// The id of the seeded security group members of which may create groups.
pub fn group_creators_id(tenant: Uuid) -> Uuid {
    stable_id("group", &format!("{tenant}:GroupCreators"))
}

/// The `Group.Unified` template (graph-settings-activity.md §1: names and defaults).
pub const GROUP_UNIFIED_TEMPLATE: &str = "62375ab9-6b52-47ed-826b-58e47e0e304b";

pub fn group_unified_template() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("EnableGroupCreation", "System.Boolean", "true"),
        ("GroupCreationAllowedGroupId", "System.Guid", ""),
        ("UsageGuidelinesUrl", "System.String", ""),
        ("ClassificationDescriptions", "System.String", ""),
        ("DefaultClassification", "System.String", ""),
        ("PrefixSuffixNamingRequirement", "System.String", ""),
        ("CustomBlockedWordsList", "System.String", ""),
        ("EnableMSStandardBlockedWords", "System.Boolean", "false"),
        ("AllowGuestsToBeGroupOwner", "System.Boolean", "false"),
        ("AllowGuestsToAccessGroups", "System.Boolean", "true"),
        ("GuestUsageGuidelinesUrl", "System.String", ""),
        ("AllowToAddGuests", "System.Boolean", "true"),
        ("ClassificationList", "System.String", ""),
        ("EnableMIPLabels", "System.Boolean", "false"),
        ("NewUnifiedGroupWritebackDefault", "System.Boolean", "true"),
    ]
}
