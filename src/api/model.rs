//! The bodies the HTTP API answers and accepts (ARCHITECTURE.md §4), as types: handlers
//! serialise the answers and deserialise the requests with these, and `openapi.rs` publishes
//! their schemas, so the description cannot drift from what is sent or accepted. A request
//! body becomes a domain type (`NewGroup`, `GroupUpdate`, …) with `TryFrom`, which applies
//! the rules a schema cannot state.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::customer_list::GroupRow;
pub use crate::domain::Visibility;
use crate::domain::{Description, DisplayName, GroupUpdate, InvalidInput, MailNickname, NewGroup, ObjectId};
use crate::microsoft::graph::{DirectoryObject, GraphGroup};

/// RFC 3339 UTC with whole seconds, as every timestamp of the API.
fn rfc3339<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

/// `GET /api/health`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0"}))]
pub struct Health {
    pub status: HealthStatus,
    /// The handler's version.
    pub version: &'static str,
    /// Why it is unavailable (503 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

/// A group's last activity; each `null` when never seen.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_teams_activity: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_share_point_activity: Option<DateTime<Utc>>,
    /// The group mailbox's last activity (the Microsoft 365 groups activity report: a day on
    /// which the group was last active while its mailbox received mail).
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_mail_activity: Option<DateTime<Utc>>,
    /// The latest of the three.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_activity: Option<DateTime<Utc>>,
}

impl Activity {
    /// From the tenant's SharePoint row (none yet: all `null`).
    pub fn of(row: Option<&GroupRow>) -> Self {
        row.map_or_else(Self::default, |r| Self {
            last_teams_activity: r.last_teams_activity,
            last_share_point_activity: r.last_sharepoint_activity,
            last_mail_activity: r.last_mail_activity,
            last_activity: r.last_activity,
        })
    }
}

/// A Microsoft 365 group with GroupMgr's data.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "0b3b3f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "displayName": "Project X", "description": "Team of project X", "mailNickname": "projectx", "visibility": "Private", "createdDateTime": "2026-03-02T09:14:00Z", "teamsEnabled": true, "ownerCount": 2, "memberCount": 14, "activity": {"lastTeamsActivity": "2026-11-30T00:00:00Z", "lastSharePointActivity": "2026-11-28T16:05:12Z", "lastMailActivity": null, "lastActivity": "2026-11-30T00:00:00Z"}}))]
pub struct Group {
    pub id: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub mail_nickname: Option<String>,
    /// `Public`, `Private` or `HiddenMembership`.
    #[schema(required = true)]
    pub visibility: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub created_date_time: Option<String>,
    /// Whether the group has a team.
    pub teams_enabled: bool,
    /// Live on `GET /api/groups/{id}`; from the last sync in lists; `null` when unknown.
    #[schema(required = true)]
    pub owner_count: Option<u64>,
    #[schema(required = true)]
    pub member_count: Option<u64>,
    pub activity: Activity,
    /// Whether an owner can act, as the last ownership check after a sync found it: `none` (no
    /// owner), `disabled` (every owner's account disabled) or `owned`; `null` until checked.
    #[schema(required = true)]
    pub ownership: Option<crate::customer_list::Ownership>,
    /// Since when the group has been ownerless (`null` when it is not).
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub ownerless_since: Option<DateTime<Utc>>,
    /// Its sensitivity labels as the last sync read them (the ids a lifecycle policy's
    /// `exclusions.sensitivityLabels` names); `null` until a sync read them.
    #[schema(required = true)]
    pub sensitivity_labels: Option<Vec<SensitivityLabel>>,
}

/// A sensitivity label on a group (Graph `assignedLabel`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SensitivityLabel {
    pub label_id: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
}

fn labels(row: Option<&GroupRow>) -> Option<Vec<SensitivityLabel>> {
    row.and_then(|r| r.labels.as_ref()).map(|ls| {
        ls.iter()
            .map(|l| SensitivityLabel {
                label_id: l.label_id.clone(),
                display_name: l.display_name.clone(),
            })
            .collect()
    })
}

impl Group {
    /// From Graph's group and, when synced, the SharePoint row; `counts` are live
    /// (owners, members) counts when the caller asked for one group.
    pub fn of(g: &GraphGroup, row: Option<&GroupRow>, counts: Option<(u64, u64)>) -> Self {
        let (owner_count, member_count) = match counts {
            Some((o, m)) => (Some(o), Some(m)),
            None => (row.and_then(|r| r.owner_count), row.and_then(|r| r.member_count)),
        };
        Self {
            id: g.id.clone(),
            display_name: g.display_name.clone(),
            description: g.description.clone(),
            mail_nickname: g.mail_nickname.clone(),
            visibility: g.visibility.clone(),
            created_date_time: g.created_date_time.clone(),
            teams_enabled: g.teams_enabled(),
            owner_count,
            member_count,
            activity: Activity::of(row),
            ownership: row.and_then(|r| r.ownership),
            ownerless_since: row.and_then(|r| r.ownerless_since),
            sensitivity_labels: labels(row),
        }
    }

    /// From the last sync's row alone (ownership lists): what Graph alone knows — the
    /// description, nickname and visibility — is `null`; `GET /api/groups/{id}` has it.
    pub fn of_row(row: &GroupRow) -> Self {
        Self {
            id: row.group_id.clone(),
            display_name: Some(row.name.clone()),
            description: None,
            mail_nickname: None,
            visibility: None,
            created_date_time: row.created.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            teams_enabled: row.teams_enabled,
            owner_count: row.owner_count,
            member_count: row.member_count,
            activity: Activity::of(Some(row)),
            ownership: row.ownership,
            ownerless_since: row.ownerless_since,
            sensitivity_labels: labels(Some(row)),
        }
    }
}

/// `GET /api/groups?ownership=`: which ownerless groups (documentation only; the route parses
/// it as `customer_list::Ownership`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub enum OwnershipFilter {
    /// No owner at all.
    None,
    /// Every owner's account is disabled.
    Disabled,
}

/// A page of groups.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"value": [{"id": "0b3b3f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "displayName": "Project X", "description": null, "mailNickname": "projectx", "visibility": "Private", "createdDateTime": "2026-03-02T09:14:00Z", "teamsEnabled": true, "ownerCount": 2, "memberCount": 14, "activity": {"lastTeamsActivity": null, "lastSharePointActivity": "2026-11-28T16:05:12Z", "lastActivity": "2026-11-28T16:05:12Z"}}], "nextCursor": "eyJsIjoi…"}))]
pub struct GroupPage {
    pub value: Vec<Group>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `ownership`: when the groups' owners were last checked (after a sync); absent
    /// otherwise, `null` when no check has finished yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ownership_checked_at: Option<Option<String>>,
}

/// One group's activity in `GET /api/activity`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityItem {
    pub group_id: String,
    pub display_name: String,
    #[serde(flatten)]
    pub activity: Activity,
    /// The sources this group's activity rests on (see `GET /api/sync` for those the tenant
    /// lacks, and why): Teams sources for a team, SharePoint's for a group with a site.
    pub sources: Vec<crate::jobs::activity_sync::Source>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"value": [{"groupId": "0b3b3f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "displayName": "Project X", "lastTeamsActivity": null, "lastSharePointActivity": "2026-08-01T10:00:00Z", "lastMailActivity": "2026-07-30T00:00:00Z", "lastActivity": "2026-08-01T10:00:00Z", "sources": ["sharePointAudit", "groupMailbox"]}], "nextCursor": null}))]
pub struct ActivityPage {
    pub value: Vec<ActivityItem>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Activity is complete up to this time (see `GET /api/sync`): a group without activity
    /// since is not yet known to be inactive after it. `null`: no period is complete yet.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub data_complete_until: Option<DateTime<Utc>>,
}

/// An owner or member.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub id: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    #[schema(required = true)]
    pub user_principal_name: Option<String>,
    /// Graph's type without its namespace: `user`, `group`, `servicePrincipal`, `device`, …
    #[serde(rename = "type")]
    pub kind: String,
}

impl Principal {
    pub fn of(o: &DirectoryObject) -> Self {
        Self {
            id: o.id.clone(),
            display_name: o.display_name.clone(),
            user_principal_name: o.user_principal_name.clone(),
            kind: o
                .odata_type
                .as_deref()
                .map_or("directoryObject", |t| t.trim_start_matches("#microsoft.graph."))
                .to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"value": [{"id": "99e44b05-c10b-4e95-a523-e2732bbaba1e", "displayName": "Adele Vance", "userPrincipalName": "adelev@contoso.onmicrosoft.com", "type": "user"}], "nextCursor": null}))]
pub struct PrincipalPage {
    pub value: Vec<Principal>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The tenant-wide group creation policy (the `Group.Unified` directory setting). Both
/// properties are required in a `PUT` (`allowedGroupId: null` clears it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"enabled": false, "allowedGroupId": "5f8ac3e2-5d2f-4d9a-9b1c-7a1f2e3d4c5b"}))]
pub struct CreationPolicy {
    /// `EnableGroupCreation`: whether everyone may create Microsoft 365 groups.
    pub enabled: bool,
    /// `GroupCreationAllowedGroupId`: a security group whose members may always create them.
    #[serde(deserialize_with = "nullable")]
    #[schema(format = Uuid, required = true)]
    pub allowed_group_id: Option<String>,
}

/// `GET /api/policy/naming/preview`: the names a group would get under the tenant's naming
/// policy for the caller (prefix + name + suffix, with the caller's own attributes such as
/// their department), and what the policy objects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"displayName": "GRP_Retail_Budget 2027_US", "mailNickname": "GRP_Retail_budget2027_US", "affixesAdded": true, "allowed": true, "problems": []}))]
pub struct NamingPreview {
    /// The display name the group gets.
    pub display_name: String,
    /// The mail nickname it gets (`null` when none was given to check).
    #[schema(required = true)]
    pub mail_nickname: Option<String>,
    /// Whether the policy's prefix or suffix was added to what was entered.
    pub affixes_added: bool,
    /// Whether a group may be created under these names (no problem).
    pub allowed: bool,
    pub problems: Vec<NamingProblem>,
}

/// Something the naming policy (or the directory) objects to in a proposed name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamingProblem {
    /// The property at fault.
    pub property: NamingProperty,
    pub code: NamingProblemCode,
    /// For people; Microsoft's reason where it gave one.
    pub message: String,
    /// The blocked word the name contains (`blocked_word` only; otherwise `null`).
    #[schema(required = true)]
    pub blocked_word: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum NamingProperty {
    DisplayName,
    MailNickname,
}

impl NamingProperty {
    pub fn as_str(self) -> &'static str {
        match self {
            NamingProperty::DisplayName => "displayName",
            NamingProperty::MailNickname => "mailNickname",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamingProblemCode {
    /// The name holds one of the tenant's custom blocked words.
    BlockedWord,
    /// Another Microsoft 365 group has this mail nickname.
    NicknameTaken,
    /// With the prefix and suffix the name is too long (or otherwise invalid).
    InvalidName,
    /// The policy still finds a prefix or suffix missing (it changed while checking).
    MissingPrefixSuffix,
    /// Another objection of the policy; the message says which.
    Other,
}

/// A property that must be given but may be `null` (no `default`: absent is an error).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// `GET /api/logs`: sealed entries and the sealed data keys they need.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "value": [{"id": "0195f0c2-7b1e-7c3a-9f00-4d2b1a0c9e11", "time": "2026-11-27T10:00:00.123456Z", "level": "INFO", "event": "group_created", "message": "group {group_name} created", "keyId": "0195f0c2-7a00-7000-8000-000000000001", "nonce": "AAAAAAAAAAAAAAAB", "sealed": "q83vASNFZ4mrze8BI0VniQ=="}], "keys": [{"keyId": "0195f0c2-7a00-7000-8000-000000000001", "publicKeyId": "k-3f9a1c", "enc": "3q2+7w==", "sealedKey": "ASNFZ4mrze8=", "senderPublicKey": "8J+Ri2Jhc2U2NC1vZi0zMi1ieXRlcy1wdWJsaWMta2U="}], "publisherKey": "8J-Ri2Jhc2U2NC1vZi0zMi1ieXRlcy1wdWJsaWMta2U", "nextCursor": null}))]
pub struct LogPage {
    #[schema(format = Uuid)]
    pub tenant_id: String,
    pub value: Vec<LogEntry>,
    pub keys: Vec<LogKey>,
    /// GroupMgr's publisher public key (base64url, as `groupmgr keys publisher` prints it),
    /// from this deployment's configuration, not from the database: data keys whose
    /// `senderPublicKey` is another key were not sealed by GroupMgr. `null` when the
    /// deployment has none (its entries are unauthenticated).
    #[schema(required = true)]
    pub publisher_key: Option<String>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One log entry; its sensitive fields are sealed (AES-256-GCM under `keyId`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[schema(format = Uuid)]
    pub id: String,
    /// RFC 3339 UTC with microseconds.
    #[schema(format = DateTime)]
    pub time: String,
    pub level: String,
    pub event: String,
    pub message: String,
    #[schema(format = Uuid)]
    pub key_id: String,
    /// Base64 (standard).
    pub nonce: String,
    /// Base64 (standard): ciphertext and tag.
    pub sealed: String,
}

/// A data key, HPKE-sealed to the tenant's public key (RFC 9180, DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, AES-256-GCM; `info` "groupmgr/log-data-key/v1", `aad` tenant id ‖ key id).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogKey {
    #[schema(format = Uuid)]
    pub key_id: String,
    pub public_key_id: String,
    /// Base64 (standard): the HPKE encapsulated key.
    pub enc: String,
    /// Base64 (standard).
    pub sealed_key: String,
    /// Base64 (standard), 32 bytes: the sender's public key when the data key is sealed in
    /// HPKE Auth mode (open it with this key as the sender); `null` for Base mode.
    #[schema(required = true)]
    pub sender_public_key: Option<String>,
}

/// `POST /api/sync`: 202, the sync is queued.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "status": "queued", "full": false}))]
pub struct SyncQueued {
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// `queued` (on the `tenant-sync` queue) or `started` (in this process, standalone).
    pub status: SyncStatus,
    /// Whether Graph delta links are ignored (a full resync).
    pub full: bool,
}

/// `GET /api/sync`: where the tenant's sync stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "lastRun": {"startedAt": "2026-12-02T08:00:00Z", "endedAt": "2026-12-02T08:06:12Z", "outcome": "continues",
        "groups": 41250, "rowsWritten": 41250, "rowsRefused": 0, "auditBlobs": 96, "auditRecords": 2150433,
        "auditBlobsLost": 0, "requests": 5120},
    "running": false, "runningUntil": null, "nextDue": "2026-12-02T08:15:00Z", "condition": null,
    "dataCompleteUntil": "2026-12-01T00:00:00Z",
    "sources": [{"source": "teamsReport", "available": false, "reason": "the tenant conceals user, group and site names in usage reports, so the report cannot be matched to groups (Microsoft 365 admin center: Settings > Org settings > Reports)"},
        {"source": "teamsAudit", "available": true, "reason": null}, {"source": "sharePointAudit", "available": true, "reason": null}]}))]
pub struct SyncState {
    /// The last invocation of the tenant's sync (`null`: none yet).
    #[schema(required = true)]
    pub last_run: Option<crate::jobs::status::RunRecord>,
    /// Whether a sync of the tenant is running now.
    pub running: bool,
    /// Until when the running sync holds the tenant (renewed while it works).
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub running_until: Option<DateTime<Utc>>,
    /// When the schedule next syncs the tenant.
    #[schema(value_type = String, format = DateTime)]
    pub next_due: DateTime<Utc>,
    /// What stops the tenant's sync until the tenant fixes it (`null`: nothing).
    #[schema(required = true)]
    pub condition: Option<SyncCondition>,
    /// Activity is complete up to this time: the older of the audit checkpoint and the Teams
    /// report's last day. A group without activity since is inactive only if this is later
    /// than the period asked about; `null`: not yet known for any period.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub data_complete_until: Option<DateTime<Utc>>,
    /// Each activity source and whether it informs the tenant's activity (if not, why: names
    /// concealed in reports, no report in this cloud, no audit feed configured, not read yet).
    pub sources: Vec<crate::jobs::activity_sync::SourceState>,
}

/// A recorded reason the tenant's sync cannot proceed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncCondition {
    pub kind: crate::jobs::conditions::ConditionKind,
    /// What Microsoft answered (an AADSTS or Graph error code).
    pub detail: String,
    #[schema(value_type = String, format = DateTime)]
    pub since: DateTime<Utc>,
    /// Syncs that met it.
    pub attempts: u32,
    /// When the sync tries again (an administrator's `POST /api/sync` tries at once).
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Queued,
    Started,
}

/// `POST /api/groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"displayName": "Project X", "mailNickname": "projectx", "description": "Team of project X", "visibility": "Private"}))]
pub struct NewGroupBody {
    /// 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256)]
    pub display_name: String,
    /// 1 to 64 printable ASCII characters, none of `@ ( ) \\ [ ] " ; : . < > ,` or space.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")]
    pub mail_nickname: String,
    /// Up to 1024 characters.
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// `Public` (default) or `Private`.
    pub visibility: Option<Visibility>,
    /// Owner user ids; the caller when empty. Owners and members together: at most 20.
    #[schema(format = Uuid)]
    pub owners: Option<Vec<String>>,
    #[schema(format = Uuid)]
    pub members: Option<Vec<String>>,
}

impl TryFrom<NewGroupBody> for NewGroup {
    type Error = InvalidInput;

    fn try_from(b: NewGroupBody) -> Result<Self, InvalidInput> {
        let ids = |field: &'static str, ids: Option<Vec<String>>| -> Result<Vec<ObjectId>, InvalidInput> {
            ids.unwrap_or_default()
                .iter()
                .map(|id| ObjectId::parse(field, id))
                .collect()
        };
        NewGroup::new(
            DisplayName::parse(&b.display_name)?,
            MailNickname::parse(&b.mail_nickname)?,
            b.description.as_deref().map(Description::parse).transpose()?,
            b.visibility.unwrap_or(Visibility::Public),
            ids("owners", b.owners)?,
            ids("members", b.members)?,
        )
    }
}

/// `PATCH /api/groups/{id}`: only the properties given change; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"displayName": "Project X (archive)"}), min_properties = 1)]
pub struct GroupUpdateBody {
    /// Cannot be cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 256)]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required = false, max_length = 1024)]
    pub description: Option<Option<String>>,
    pub visibility: Option<Visibility>,
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")]
    pub mail_nickname: Option<String>,
}

/// A property that may be `null`: `Some(None)` when it is, `None` (by `default`) when absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl TryFrom<GroupUpdateBody> for GroupUpdate {
    type Error = InvalidInput;

    fn try_from(b: GroupUpdateBody) -> Result<Self, InvalidInput> {
        let display_name = match b.display_name {
            Some(None) => return Err(InvalidInput::new("displayName", "cannot be cleared")),
            Some(Some(name)) => Some(DisplayName::parse(&name)?),
            None => None,
        };
        GroupUpdate::new(
            display_name,
            b.description
                .map(|d| d.as_deref().map(Description::parse).transpose())
                .transpose()?,
            b.visibility,
            b.mail_nickname.as_deref().map(MailNickname::parse).transpose()?,
        )
    }
}

/// `POST /api/groups/{id}/owners` (or `members`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "99e44b05-c10b-4e95-a523-e2732bbaba1e"}))]
pub struct PrincipalRef {
    /// The user's object id.
    #[schema(format = Uuid)]
    pub id: String,
}

/// Why the dry run finds no candidate now, whatever the groups' activity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum WithheldReason {
    /// No sync has completed a period of activity yet.
    NoData,
    /// The data is complete only up to `completeUntil`, more than 48 hours ago.
    Stale,
    /// A counted signal's source cannot be read now (`GET /api/sync` says why).
    SourceUnavailable,
    /// A counted signal has not been observed for the whole threshold yet: GroupMgr sees the
    /// audit feed only from 7 days before the tenant connected, and a gap restarts it.
    HistoryTooShort,
}

/// Why there are no candidates.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Withholding {
    pub reason: WithheldReason,
    /// For people.
    pub message: String,
    /// The signals concerned (`sourceUnavailable`, `historyTooShort`).
    pub signals: Vec<crate::lifecycle::Signal>,
    /// `stale`: how far the data is complete.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub complete_until: Option<DateTime<Utc>>,
    /// `historyTooShort`: when every counted signal will have been observed for the whole
    /// threshold (if nothing interrupts it).
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub until: Option<DateTime<Utc>>,
}

impl From<crate::lifecycle::Withheld> for Withholding {
    fn from(w: crate::lifecycle::Withheld) -> Self {
        use crate::lifecycle::Withheld::*;
        let names = |s: &[crate::lifecycle::Signal]| {
            s.iter()
                .map(|x| {
                    serde_json::to_value(x)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = Withholding {
            reason: WithheldReason::NoData,
            message: String::new(),
            signals: Vec::new(),
            complete_until: None,
            until: None,
        };
        match w {
            NoData => out.message = "no sync has completed a period of activity yet".into(),
            Stale { complete_until } => {
                out.reason = WithheldReason::Stale;
                out.message = "activity data is more than 48 hours old; no group is judged on it".into();
                out.complete_until = Some(complete_until);
            }
            SourceUnavailable { signals } => {
                out.reason = WithheldReason::SourceUnavailable;
                out.message = format!("the policy counts signals that cannot be read now: {}", names(&signals));
                out.signals = signals;
            }
            HistoryTooShort { signals, until } => {
                out.reason = WithheldReason::HistoryTooShort;
                out.message = format!(
                    "these signals have not been observed for the policy's whole threshold yet: {}",
                    names(&signals)
                );
                out.signals = signals;
                out.until = Some(until);
            }
        }
        out
    }
}

/// A counted signal's latest activity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalActivity {
    pub signal: crate::lifecycle::Signal,
    /// `null`: none seen since the signal has been observed.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last: Option<DateTime<Utc>>,
}

/// What would happen to a candidate next.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateStep {
    /// `review`: a review opens, for its owners (or an administrator) to decide by `due`.
    pub step: String,
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub due: Option<DateTime<Utc>>,
}

/// A group the lifecycle policy would act on, with its evidence.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateItem {
    pub group_id: String,
    pub display_name: String,
    /// The later of its last counted activity and its creation.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub inactive_since: Option<DateTime<Utc>>,
    /// Whole days from `inactiveSince` to `dataCompleteUntil`.
    pub inactive_days: i64,
    /// Each counted signal's latest activity.
    pub signals: Vec<SignalActivity>,
    pub next_step: CandidateStep,
}

impl CandidateItem {
    pub fn of(c: crate::lifecycle::Candidate, names: &std::collections::HashMap<uuid::Uuid, String>) -> Self {
        let crate::lifecycle::NextStep::Review { due } = c.next_step;
        CandidateItem {
            group_id: c.group_id.to_string(),
            display_name: names.get(&c.group_id).cloned().unwrap_or_default(),
            inactive_since: Some(c.inactive_since),
            inactive_days: c.inactive_days,
            signals: c
                .last_by_signal
                .into_iter()
                .map(|(signal, last)| SignalActivity { signal, last })
                .collect(),
            next_step: CandidateStep {
                step: "review".into(),
                due: Some(due),
            },
        }
    }
}

/// `GET /api/lifecycle/candidates`: the dry run of the tenant's policy.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidatePage {
    /// Longest inactive first (the order a daily cap takes them in).
    pub value: Vec<CandidateItem>,
    /// Why there are no candidates whatever the activity (`null` when groups were judged).
    #[schema(required = true)]
    pub withheld: Option<Withholding>,
    /// Groups whose facts were judged (active groups in GroupMgr's list).
    pub groups_judged: usize,
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub data_complete_until: Option<DateTime<Utc>>,
    /// The policy judged by.
    pub policy: crate::lifecycle::LifecyclePolicy,
}

/// `POST /api/lifecycle/reviews`: the candidates an administrator confirms for review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenReviews {
    /// 1 to 500 group ids, each a current candidate (`GET /api/lifecycle/candidates`).
    #[schema(min_items = 1, max_items = 500)]
    pub group_ids: Vec<uuid::Uuid>,
}

/// A group for which no review was opened, and why.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub group_id: String,
    pub reason: String,
}

/// What `POST /api/lifecycle/reviews` did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenedReviews {
    pub opened: Vec<crate::lifecycle::reviews::Review>,
    pub skipped: Vec<Skipped>,
}

/// What confirming a due action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum DueStep {
    /// Archive the group's team: its review is past due and its owners did not answer.
    Archive,
    /// Delete the group (restorable for 30 days): its team was archived for want of an
    /// answer `deleteAfterDays` ago.
    Delete,
    /// End the review, kept: the group was used again since its review opened.
    Keep,
}

/// An action the policy's `onNoAnswer` calls for now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DueAction {
    pub group_id: String,
    pub display_name: String,
    pub step: DueStep,
    /// Since when it has been due.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub due_since: Option<DateTime<Utc>>,
    /// Why the group was reviewed (its review's reason).
    pub reason: String,
    /// Already sent and not yet known to be done: confirming it asks Microsoft what happened
    /// and only sends again what did not.
    pub in_progress: bool,
    /// Why confirming it does nothing now (`null`: it is carried out).
    #[schema(required = true)]
    pub not_now: Option<String>,
}

/// `GET /api/lifecycle/actions`: what the policy's `onNoAnswer` calls for now, longest
/// overdue first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DueActionList {
    pub value: Vec<DueAction>,
    pub execution: crate::lifecycle::Execution,
    /// Archives and deletes taken today (UTC), of `maxActionsPerDay`.
    pub taken_today: u32,
    pub max_actions_per_day: u32,
}

/// `POST /api/lifecycle/actions`: the due actions an administrator confirms.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfirmActions {
    /// 1 to 500 group ids, each with a due action (`GET /api/lifecycle/actions`).
    #[schema(min_items = 1, max_items = 500)]
    pub group_ids: Vec<uuid::Uuid>,
}

/// What `POST /api/lifecycle/actions` did.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmedActions {
    /// Archived or deleted, each review as it now stands.
    pub done: Vec<crate::lifecycle::reviews::Review>,
    /// Sent, and still being carried out by Teams (an archive is an asynchronous operation):
    /// the next sync, or confirming again, records it done.
    pub underway: Vec<crate::lifecycle::reviews::Review>,
    /// Used again since their review opened: the review ended, kept.
    pub kept: Vec<crate::lifecycle::reviews::Review>,
    pub skipped: Vec<Skipped>,
}

/// `GET /api/lifecycle/reviews`: every review, soonest due first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewList {
    pub value: Vec<crate::lifecycle::reviews::Review>,
}

/// `POST /api/groups/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionBody {
    pub decision: crate::lifecycle::decide::Decision,
}

/// One activity signal of a group, with how far it can be trusted.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalDetail {
    pub signal: crate::lifecycle::Signal,
    /// The latest activity of this kind GroupMgr has seen (`null`: none since
    /// `observedSince`).
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last: Option<DateTime<Utc>>,
    /// Since when the tenant's source of this signal has been read without a gap: "no
    /// activity" means none only after this time. `null`: not observed yet.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub observed_since: Option<DateTime<Utc>>,
    /// Whether the tenant's source of this signal can be read now (`GET /api/sync` says why
    /// not).
    pub available: bool,
    /// Whether this group's activity of this kind can be matched to it (`false`: its site or
    /// its team's thread id is not known yet).
    pub observable: bool,
    /// On how many days of the last 7, 30 and 90 the audit feed saw it. `null` where days
    /// cannot be known: for `mail` (the groups activity report names only the last day) and
    /// for every signal when the tenant's audit feed is not read.
    #[schema(required = true)]
    pub active_days: Option<ActiveDays>,
    /// How many events Microsoft's usage report counts for this signal in its last 7, 30 and
    /// 90 days: `teams` (the Teams team activity report) and `mail` (the Microsoft 365 groups
    /// activity report). `null` for the SharePoint kinds (no report counts them per group),
    /// for `teams` of a group without a team, for a group no sync has found yet, and when the
    /// report cannot be read or matched to groups (`sources` says why), or the group's first
    /// counts still wait to be written.
    #[schema(required = true)]
    pub reported: Option<ReportedCounts>,
    /// The latest activity of this kind each source saw: for `teams`, the Teams team activity
    /// report's (a day) and the audit feed's Teams records' (a time), apart; for the
    /// SharePoint kinds the audit feed's, for `mail` the groups activity report's (both the
    /// same as `last`). `null` where a source has seen none since it was kept apart.
    pub by_source: Vec<SourceLast>,
}

/// One source's latest activity of a signal.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceLast {
    pub source: crate::jobs::activity_sync::Source,
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last: Option<DateTime<Utc>>,
}

/// A usage report's counts for one group, each period ending with `reportRefreshDate`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportedCounts {
    /// The Graph report function: `getTeamsTeamActivityDetail` or
    /// `getOffice365GroupsActivityDetail`.
    pub report: &'static str,
    /// The latest day of the report's data (Microsoft's data is a day or two behind).
    #[schema(value_type = String, format = Date)]
    pub report_refresh_date: chrono::NaiveDate,
    pub last7: ReportedPeriod,
    pub last30: ReportedPeriod,
    pub last90: ReportedPeriod,
}

/// One period's counts, as the report names them: the Teams report's channel messages,
/// meetings organized and reactions, or the group mailbox's received mail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportedPeriod {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub channel_messages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub meetings_organized: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reactions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub received_emails: Option<u64>,
}

impl ReportedCounts {
    /// The Teams report's counts (none: nothing in any period).
    pub fn teams(
        refreshed: chrono::NaiveDate,
        c: Option<crate::activity::reported::Reported<crate::activity::reported::TeamsCounts>>,
    ) -> Self {
        let periods = c.map(|c| c.periods).unwrap_or_default();
        let period = |i: usize| ReportedPeriod {
            channel_messages: Some(periods[i].channel_messages),
            meetings_organized: Some(periods[i].meetings_organized),
            reactions: Some(periods[i].reactions),
            received_emails: None,
        };
        Self {
            report: "getTeamsTeamActivityDetail",
            report_refresh_date: refreshed,
            last7: period(0),
            last30: period(1),
            last90: period(2),
        }
    }

    /// The groups report's received mail (none: nothing in any period).
    pub fn mail(refreshed: chrono::NaiveDate, c: Option<crate::activity::reported::Reported<u64>>) -> Self {
        let periods = c.map(|c| c.periods).unwrap_or_default();
        let period = |i: usize| ReportedPeriod {
            channel_messages: None,
            meetings_organized: None,
            reactions: None,
            received_emails: Some(periods[i]),
        };
        Self {
            report: "getOffice365GroupsActivityDetail",
            report_refresh_date: refreshed,
            last7: period(0),
            last30: period(1),
            last90: period(2),
        }
    }
}

/// On how many days a signal was seen, of the last 7, 30 and 90 (UTC days, today included).
/// Days, not events: a day is counted once however many times its records are read, so the
/// numbers cannot be inflated by the audit feed's repeats or a re-read after a failure.
/// Counted from when GroupMgr began keeping days (this version's first sync) and
/// `observedSince`, whichever is later.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveDays {
    pub last7: u32,
    pub last30: u32,
    pub last90: u32,
}

impl ActiveDays {
    pub fn of(set: crate::activity::DaySet, today: crate::activity::days::Day) -> Self {
        Self {
            last7: set.count(today, 7),
            last30: set.count(today, 30),
            last90: set.count(today, 90),
        }
    }
}

/// `GET /api/groups/{id}/successors`: who could own the group next.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Successors {
    pub group_id: String,
    pub display_name: String,
    /// The days of activity that count (the last 90, today included).
    pub window_days: u32,
    /// At most three, most active first: members who are not guests and whose accounts are
    /// not disabled, with at least one active day in the group. Ties: the latest active day,
    /// then the id.
    pub successors: Vec<Successor>,
    /// Members who could be suggested (users, not guests, not disabled).
    pub members_considered: usize,
    /// Of those, how many were active in the group in the window.
    pub active_members: usize,
    /// Guests are never suggested.
    pub guests_left_out: usize,
    /// Members with a disabled account; `null` when GroupMgr cannot tell (the application
    /// permission `User.Read.All` is not granted), in which case they may be among the
    /// successors.
    #[schema(required = true)]
    pub disabled_left_out: Option<usize>,
    /// Whether the tenant's audit feed is read at all (without it nobody's activity is known
    /// and the list is empty).
    pub audit_feed: bool,
    /// Activity is complete up to here for the whole tenant.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub data_complete_until: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    pub as_of: DateTime<Utc>,
}

/// A suggested successor.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Successor {
    pub id: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    pub user_principal_name: String,
    /// Days of the window on which they were active in the group's team or sites.
    pub active_days: u32,
    /// The latest of those days (UTC).
    #[schema(value_type = Option<String>, format = Date, required = true)]
    pub last_active_day: Option<chrono::NaiveDate>,
}

/// `GET /api/groups/{id}/activity`: a group's activity, signal by signal, with its evidence.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupActivity {
    pub group_id: String,
    pub display_name: String,
    /// Teams, the four kinds of SharePoint activity, and the group mailbox.
    pub signals: Vec<SignalDetail>,
    /// Any SharePoint activity, sharing included (the four kinds are part of it).
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_share_point_activity: Option<DateTime<Utc>>,
    /// The latest of all.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_activity: Option<DateTime<Utc>>,
    /// The sources this group's activity rests on.
    pub sources: Vec<crate::jobs::activity_sync::Source>,
    /// Activity is complete up to here for the whole tenant.
    #[serde(serialize_with = "rfc3339")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub data_complete_until: Option<DateTime<Utc>>,
}

/// `PUT /api/lifecycle/webhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookBody {
    /// An https URL on a public address.
    #[schema(max_length = 2048)]
    pub url: String,
}

/// The tenant's webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub url: String,
    /// The signing secret (`whsec_…`, Standard Webhooks): only in the answer to the `PUT`
    /// that made it; `null` otherwise.
    #[schema(required = true)]
    pub secret: Option<String>,
    /// The event types sent.
    pub events: Vec<String>,
}
