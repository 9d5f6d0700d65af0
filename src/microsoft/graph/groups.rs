//! Groups, owners and members, delta, group settings and teams (graph-groups.md,
//! graph-settings-activity.md §1).

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    BatchRequest, BatchResponse, ErrorDetail, Graph, GraphError, MAX_BATCH, NextLink, Page, enc, odata_string,
};
use crate::domain::{GroupId, GroupUpdate, NewGroup, ObjectId, Relation};
use crate::microsoft::retry::{Failure, Idempotency};

/// The group properties GroupMgr reads.
pub const GROUP_SELECT: &str = "id,displayName,description,mailNickname,visibility,createdDateTime,groupTypes,resourceProvisioningOptions,securityEnabled";
/// What the group sync selects besides `GROUP_SELECT`: the sensitivity labels (which the
/// lifecycle policy may exclude). A delta link remembers its round's `$select`, so a change
/// here must start a new full round (`group_sync::DELTA_KEY`).
pub const DELTA_ALSO: &str = "assignedLabels";
/// `$filter` for Microsoft 365 (Unified) groups.
pub const UNIFIED_FILTER: &str = "groupTypes/any(c:c eq 'Unified')";
/// The tenant-wide Microsoft 365 groups settings template (`Group.Unified`).
pub const GROUP_UNIFIED_TEMPLATE: &str = "62375ab9-6b52-47ed-826b-58e47e0e304b";

/// A group as Graph returns it (only what we select).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphGroup {
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
    pub visibility: Option<String>,
    pub created_date_time: Option<String>,
    #[serde(default)]
    pub group_types: Vec<String>,
    #[serde(default)]
    pub resource_provisioning_options: Vec<String>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
    /// Present in delta responses for removed groups.
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Value>,
    /// Membership in delta responses (`$select=members`): the whole relationship in the first
    /// round, net changes after.
    #[serde(rename = "members@delta", default, skip_serializing_if = "Option::is_none")]
    pub members_delta: Option<Vec<DeltaRef>>,
    #[serde(rename = "owners@delta", default, skip_serializing_if = "Option::is_none")]
    pub owners_delta: Option<Vec<DeltaRef>>,
    /// Its sensitivity labels, when the answer says (`assignedLabels` is returned only when
    /// selected; `None` when absent, `Some(vec![])` for a group without a label, whether
    /// Graph answers `[]` or `null`, which the documentation leaves open).
    #[serde(
        default,
        deserialize_with = "present_labels",
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_labels: Option<Vec<AssignedLabel>>,
}

/// A sensitivity label on a group (Graph `assignedLabel`: resources/assignedlabel).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLabel {
    /// Empty when Graph gives none (the schema has it nullable): such a label is unknown, so
    /// it holds its group out of a policy that excludes labels instead of failing the page.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub label_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// `assignedLabels` present: its labels, `null` being none (absent is `None`, by `default`).
fn present_labels<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<AssignedLabel>>, D::Error> {
    Ok(Some(Option::<Vec<AssignedLabel>>::deserialize(d)?.unwrap_or_default()))
}

/// A related object in a delta response: its id, and `@removed` when it left.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DeltaRef {
    pub id: String,
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Value>,
}

impl GraphGroup {
    pub fn is_unified(&self) -> bool {
        self.group_types.iter().any(|t| t == "Unified")
    }

    pub fn teams_enabled(&self) -> bool {
        self.resource_provisioning_options.iter().any(|o| o == "Team")
    }
}

/// An owner or member (a directoryObject).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    pub id: String,
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    /// A user's `Member` or `Guest` (when selected and the caller may read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// A user's `accountEnabled` (when selected and the caller may read it: `User.Read.All`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
}

impl DirectoryObject {
    /// A B2B guest: `userType` `Guest`, or (where the type was not given) a user principal
    /// name with `#EXT#`, as every invited guest's has.
    pub fn is_guest(&self) -> bool {
        self.user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Guest"))
            || self
                .user_principal_name
                .as_deref()
                .is_some_and(|u| u.to_ascii_uppercase().contains("#EXT#"))
    }

    pub fn is_user(&self) -> bool {
        self.odata_type.as_deref().is_none_or(|t| t == "#microsoft.graph.user")
    }
}

/// One name/value of a directory setting (values are strings).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingValue {
    pub name: String,
    pub value: String,
}

/// A group setting object (`Group.Unified` and others).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSetting {
    pub id: String,
    pub display_name: Option<String>,
    pub template_id: Option<String>,
    #[serde(default)]
    pub values: Vec<SettingValue>,
}

/// A setting template's declared values with their defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingTemplate {
    pub id: String,
    #[serde(default)]
    pub values: Vec<TemplateValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateValue {
    pub name: String,
    pub default_value: Option<String>,
}

impl<'a> Graph<'a> {
    /// First page of the tenant's Microsoft 365 groups; `search` uses `$search` on
    /// displayName (an advanced query: `ConsistencyLevel: eventual` + `$count=true`).
    pub async fn list_groups(&self, search: Option<&str>, top: u32) -> Result<Page<GraphGroup>, GraphError> {
        let mut url = format!(
            "{}?$filter={}&$select={GROUP_SELECT}&$top={top}",
            self.url("/groups"),
            enc(UNIFIED_FILTER)
        );
        match search {
            Some(term) => {
                // The search term is quoted; a double quote inside it would end the phrase.
                let term = term.replace('"', "");
                url.push_str(&format!(
                    "&$count=true&$search={}",
                    enc(&format!("\"displayName:{term}\""))
                ));
                self.get_json(&url, &[("ConsistencyLevel", "eventual")]).await
            }
            None => self.get_json(&url, &[]).await,
        }
    }

    /// A further page of `list_groups`, re-sending `ConsistencyLevel` when searching (it is
    /// not carried in the link; graph-groups.md §1).
    pub async fn list_groups_next(&self, link: &NextLink, searching: bool) -> Result<Page<GraphGroup>, GraphError> {
        let headers: &[(&str, &str)] = if searching {
            &[("ConsistencyLevel", "eventual")]
        } else {
            &[]
        };
        self.next_page(link.as_str(), headers).await
    }

    pub async fn get_group(&self, id: &str) -> Result<GraphGroup, GraphError> {
        self.get_json(
            &format!("{}?$select={GROUP_SELECT}", self.url(&format!("/groups/{}", enc(id)))),
            &[],
        )
        .await
    }

    /// The Microsoft 365 group with this mail nickname, if any (used to make a retried create
    /// safe: a create that timed out may have succeeded).
    pub async fn find_group_by_nickname(&self, nickname: &str) -> Result<Option<GraphGroup>, GraphError> {
        let filter = format!("mailNickname eq {}", odata_string(nickname));
        let url = format!(
            "{}?$filter={}&$select={GROUP_SELECT}",
            self.url("/groups"),
            enc(&filter)
        );
        let page: Page<GraphGroup> = self.get_json(&url, &[]).await?;
        Ok(page.value.into_iter().find(GraphGroup::is_unified))
    }

    /// How the tenant's naming policy judges these names for `user` (`POST
    /// /directoryObjects/validateProperties`, Graph docs directoryobject-validateproperties):
    /// no details when they comply (204), else the failures of its 422 answer: every
    /// `MissingPrefixSuffix` with the user's `prefix` and `suffix`, or the first other failure
    /// (a blocked word, a taken nickname). A check: nothing changes, so it is safe to retry.
    pub async fn validate_group_names(
        &self,
        display_name: Option<&str>,
        mail_nickname: Option<&str>,
        user: Option<ObjectId>,
    ) -> Result<Vec<ErrorDetail>, GraphError> {
        let mut body = json!({ "entityType": "Group" });
        if let Some(d) = display_name {
            body["displayName"] = json!(d);
        }
        if let Some(n) = mail_nickname {
            body["mailNickname"] = json!(n);
        }
        if let Some(u) = user {
            body["onBehalfOfUserId"] = json!(u.to_string());
        }
        let url = self.url("/directoryObjects/validateProperties");
        match self.send(Method::POST, &url, Some(&body), &[], Idempotency::Safe).await {
            Ok(_) => Ok(Vec::new()),
            // A refusal without details still refuses.
            Err(GraphError::Service {
                status: 422,
                details,
                code,
                message,
                ..
            }) if details.is_empty() => Ok(vec![ErrorDetail {
                code,
                message,
                ..ErrorDetail::default()
            }]),
            Err(GraphError::Service {
                status: 422, details, ..
            }) => Ok(details),
            Err(e) => Err(e),
        }
    }

    /// `POST /groups` for `new`; with no owners given, `default_owner` (the caller) becomes
    /// the owner, so the group is never ownerless (graph-groups.md §3).
    ///
    /// Safe to retry: a create is not idempotent, so before trying again after a transient
    /// failure the nickname is looked up — a create whose answer was lost is found (same
    /// nickname and name, created since this call began) instead of made twice.
    pub async fn create_group(
        &self,
        new: &NewGroup,
        default_owner: Option<ObjectId>,
    ) -> Result<GraphGroup, GraphError> {
        let body = self.new_group_body(new, default_owner);
        let url = self.url("/groups");
        let started = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
        self.policy()
            .run(Idempotency::Safe, |attempt| {
                let (body, url) = (&body, &url);
                async move {
                    if attempt > 1
                        && let Some(existing) = self
                            .find_group_by_nickname(new.mail_nickname().as_str())
                            .await
                            .map_err(Failure::fatal)?
                        && existing.display_name.as_deref() == Some(new.display_name().as_str())
                        && existing
                            .created_date_time
                            .as_deref()
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            .is_some_and(|t| t >= started)
                    {
                        return Ok(existing);
                    }
                    self.attempt(&Method::POST, url, Some(body), &[])
                        .await?
                        .json()
                        .map_err(Failure::fatal)
                }
            })
            .await
    }

    /// The `POST /groups` body of a new Microsoft 365 group.
    fn new_group_body(&self, new: &NewGroup, default_owner: Option<ObjectId>) -> Value {
        let owners: Vec<ObjectId> = if new.owners().is_empty() {
            default_owner.into_iter().collect()
        } else {
            new.owners().to_vec()
        };
        let bind = |ids: &[ObjectId]| {
            ids.iter()
                .map(|id| self.url(&format!("/users/{id}")))
                .collect::<Vec<_>>()
        };
        let mut body = json!({
            "displayName": new.display_name().as_str(),
            "mailNickname": new.mail_nickname().as_str(),
            "mailEnabled": true,
            "securityEnabled": false,
            "groupTypes": ["Unified"],
            "visibility": new.visibility().as_str(),
        });
        if let Some(d) = new.description() {
            body["description"] = json!(d.as_str());
        }
        if !owners.is_empty() {
            body["owners@odata.bind"] = json!(bind(&owners));
        }
        if !new.members().is_empty() {
            body["members@odata.bind"] = json!(bind(new.members()));
        }
        body
    }

    /// `PATCH /groups/{id}` with the update's absolute values (so it is safe to repeat).
    pub async fn update_group(&self, id: &GroupId, update: &GroupUpdate) -> Result<(), GraphError> {
        self.send(
            Method::PATCH,
            &self.url(&format!("/groups/{id}")),
            Some(&update_body(update)),
            &[],
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_group(&self, id: &str) -> Result<(), GraphError> {
        self.send(
            Method::DELETE,
            &self.url(&format!("/groups/{}", enc(id))),
            None,
            &[],
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /groups/{id}` sent at most once (a lost answer is not retried): for a caller
    /// that records the deletion as intended and asks Graph afterwards whether it happened.
    pub async fn delete_group_once(&self, id: &str) -> Result<(), GraphError> {
        self.send(
            Method::DELETE,
            &self.url(&format!("/groups/{}", enc(id))),
            None,
            &[],
            Idempotency::Once,
        )
        .await
        .map(|_| ())
    }

    /// `POST /directory/deletedItems/{id}/restore`: restoring twice is harmless (the second
    /// answers 404), so it is retried like an idempotent call.
    pub async fn restore_group(&self, id: &str) -> Result<GraphGroup, GraphError> {
        self.send(
            Method::POST,
            &self.url(&format!("/directory/deletedItems/{}/restore", enc(id))),
            None,
            &[],
            Idempotency::Safe,
        )
        .await?
        .json()
    }

    /// A page of a group's owners or members.
    pub async fn list_relation(
        &self,
        group: &str,
        rel: Relation,
        top: u32,
    ) -> Result<Page<DirectoryObject>, GraphError> {
        let url = format!(
            "{}?$select=id,displayName,userPrincipalName&$top={top}",
            self.url(&format!("/groups/{}/{}", enc(group), rel.path()))
        );
        self.get_json(&url, &[]).await
    }

    /// Every member of a group that is a user, with their `userType` and `accountEnabled`
    /// (groups/{id}/members cast to microsoft.graph.user: api/group-list-members "List
    /// members": `$select` and paging as for any directoryObject collection). Both come only
    /// to a caller that may read full profiles (`User.Read.All`); with `User.ReadBasic.All`
    /// they are absent.
    pub async fn member_users(&self, group: &str) -> Result<Vec<DirectoryObject>, GraphError> {
        let url = format!(
            "{}?$select=id,displayName,userPrincipalName,userType,accountEnabled&$top=999",
            self.url(&format!("/groups/{}/members/microsoft.graph.user", enc(group)))
        );
        self.collect_all(&url, &[]).await
    }

    /// A further page of `list_relation`.
    pub async fn list_relation_next(&self, link: &NextLink) -> Result<Page<DirectoryObject>, GraphError> {
        self.next_page(link.as_str(), &[]).await
    }

    /// Adds a directory object by `$ref`. Adding one that is already there is success (Graph
    /// answers 400 "already exist", `GraphError::is_already_exists`), so this is safe to repeat.
    pub async fn add_relation(&self, group: &str, rel: Relation, object: &str) -> Result<(), GraphError> {
        let body = json!({"@odata.id": self.url(&format!("/directoryObjects/{}", enc(object)))});
        match self
            .send(
                Method::POST,
                &self.url(&format!("/groups/{}/{}/$ref", enc(group), rel.path())),
                Some(&body),
                &[],
                Idempotency::Safe,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn remove_relation(&self, group: &str, rel: Relation, object: &str) -> Result<(), GraphError> {
        self.send(
            Method::DELETE,
            &self.url(&format!("/groups/{}/{}/{}/$ref", enc(group), rel.path(), enc(object))),
            None,
            &[],
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }

    /// `GET /groups/delta` (first call, tracking owners and members too) or a stored delta /
    /// next link (which carries the query of the first call).
    pub async fn group_delta(&self, link: Option<&str>) -> Result<Page<GraphGroup>, GraphError> {
        match link {
            Some(l) => self.next_page(l, &[]).await,
            None => {
                let url = format!(
                    "{}?$select={GROUP_SELECT},{DELTA_ALSO},members,owners",
                    self.url("/groups/delta")
                );
                self.get_json(&url, &[]).await
            }
        }
    }

    pub async fn group_settings(&self) -> Result<Vec<GroupSetting>, GraphError> {
        self.collect_all(&self.url("/groupSettings"), &[]).await
    }

    pub async fn setting_template(&self, id: &str) -> Result<SettingTemplate, GraphError> {
        self.get_json(&self.url(&format!("/groupSettingTemplates/{}", enc(id))), &[])
            .await
    }

    /// `POST /groupSettings` from a template. Graph allows one object per template: a retry
    /// after a lost answer fails with a conflict, which the caller resolves by re-reading.
    pub async fn create_group_setting(
        &self,
        template: &str,
        values: &[SettingValue],
    ) -> Result<GroupSetting, GraphError> {
        let body = json!({"templateId": template, "values": values});
        self.send(
            Method::POST,
            &self.url("/groupSettings"),
            Some(&body),
            &[],
            Idempotency::Once,
        )
        .await?
        .json()
    }

    /// `PATCH /groupSettings/{id}` with the entire values collection (graph-settings-activity.md §1).
    pub async fn update_group_setting(&self, id: &str, values: &[SettingValue]) -> Result<(), GraphError> {
        let body = json!({"values": values});
        self.send(
            Method::PATCH,
            &self.url(&format!("/groupSettings/{}", enc(id))),
            Some(&body),
            &[],
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }
}

impl<'a> Graph<'a> {
    /// `GET /groups/{id}/{owners|members}/$count` (an advanced query; text/plain answer).
    pub async fn count_relation(&self, group: &str, rel: Relation) -> Result<u64, GraphError> {
        let url = self.url(&format!("/groups/{}/{}/$count", enc(group), rel.path()));
        let reply = self
            .send(
                Method::GET,
                &url,
                None,
                &[("ConsistencyLevel", "eventual")],
                Idempotency::Safe,
            )
            .await?;
        std::str::from_utf8(&reply.body)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| GraphError::Protocol("$count is not a number".into()))
    }

    /// Owners (their ids) and member counts of many groups, two items per group in each
    /// `$batch`: the owners listed (a group has at most 100 owners, "Microsoft Entra service
    /// limits and restrictions", so one page of 999 holds them all; a further page is read if
    /// Graph ever sends one), the members counted with `$count`.
    pub async fn count_relations(&self, ids: &[String]) -> Result<HashMap<String, Relations>, GraphError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(MAX_BATCH / 2) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .flat_map(|id| {
                    [
                        BatchRequest::get(format!("/groups/{}/owners?$select=id&$top=999", enc(id))),
                        BatchRequest::get_eventual(format!("/groups/{}/members/$count", enc(id))),
                    ]
                })
                .collect();
            let answers = self.batch(&requests).await?;
            for (id, pair) in chunk.iter().zip(answers.chunks(2)) {
                let mut page: Page<DirectoryObject> = pair[0].clone().into_result()?;
                let mut owners: Vec<String> = std::mem::take(&mut page.value).into_iter().map(|o| o.id).collect();
                if let Some(next) = page.next_link.take() {
                    let rest: Vec<DirectoryObject> = self.collect_all(&next, &[]).await?;
                    owners.extend(rest.into_iter().map(|o| o.id));
                }
                let relations = Relations {
                    owners,
                    // "To list the members of a group with hidden membership, the
                    // Member.Read.Hidden permission is required" (group-list-members): refused
                    // is unknown.
                    members: match pair[1].status {
                        403 => None,
                        _ => Some(count_answer(&pair[1])?),
                    },
                };
                out.insert(id.clone(), relations);
            }
        }
        Ok(out)
    }

    /// The ids of the tenant's disabled user accounts (`accountEnabled eq false`, a default
    /// filter of `GET /users`; application permission `User.Read.All`, since
    /// `User.ReadBasic.All` does not show `accountEnabled`).
    pub async fn disabled_users(&self) -> Result<HashSet<String>, GraphError> {
        let url = format!(
            "{}?$filter={}&$select=id&$top=999",
            self.url("/users"),
            enc("accountEnabled eq false")
        );
        let users: Vec<DirectoryObject> = self.collect_all(&url, &[]).await?;
        Ok(users.into_iter().map(|u| u.id).collect())
    }

    /// Teams thread ids (`internalId`) of the given teams and site URLs of the given groups,
    /// 20 lookups to a `$batch`. A team or site not provisioned (yet) is absent.
    pub async fn team_threads_and_sites(
        &self,
        teams: &[String],
        sites: &[String],
    ) -> Result<TeamsAndSites, GraphError> {
        let wanted: Vec<(&String, bool)> = teams
            .iter()
            .map(|g| (g, true))
            .chain(sites.iter().map(|g| (g, false)))
            .collect();
        let mut out = TeamsAndSites::default();
        for chunk in wanted.chunks(MAX_BATCH) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .map(|(id, team)| {
                    if *team {
                        BatchRequest::get(format!("/teams/{}?$select=id,internalId", enc(id)))
                    } else {
                        BatchRequest::get(format!("/groups/{}/sites/root?$select=id,webUrl", enc(id)))
                    }
                })
                .collect();
            let answers = self.batch(&requests).await?;
            // A 403 for one site is that site's lock (or a tenant policy on it); a 403 for all
            // of them is GroupMgr's permission, and an error.
            let all_denied = answers.iter().all(|r| r.status == 403);
            for ((id, team), r) in chunk.iter().zip(answers) {
                match r.status {
                    200 => {
                        let (key, map) = if *team {
                            ("internalId", &mut out.threads)
                        } else {
                            ("webUrl", &mut out.sites)
                        };
                        if let Some(v) = r.body.get(key).and_then(Value::as_str) {
                            map.insert((*id).clone(), v.to_string());
                        }
                    }
                    // Not provisioned (yet): no team or no site to record.
                    404 => {}
                    // A locked site (`423`, "NoAccess" lock) or one closed to us: recorded as
                    // no site, and looked for again later.
                    403 | 423 if !all_denied => {}
                    _ => {
                        r.into_result::<Value>()?;
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Graph<'_> {
    /// The sites of the given teams' private and shared channels, by team (group) id; a team
    /// whose channels could not be listed (gone, or closed to us) is absent, so its row keeps
    /// what it had. Each such channel has its own SharePoint site (Teams docs: "Private
    /// channels in Microsoft Teams", "Shared channels"), found from the channel's files folder
    /// (api-reference channel-get-filesfolder: a driveItem whose `webUrl` is inside it). A
    /// folder that cannot be read (not provisioned yet, refused) leaves the team's sites as
    /// they were, looked for again at the team's next sync.
    pub async fn channel_sites(&self, teams: &[String]) -> Result<HashMap<String, Vec<String>>, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Channel {
            id: String,
            #[serde(default)]
            membership_type: Option<String>,
        }
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let mut wanted: Vec<(String, String)> = Vec::new();
        for chunk in teams.chunks(MAX_BATCH) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .map(|id| BatchRequest::get(format!("/teams/{}/channels?$select=id,membershipType", enc(id))))
                .collect();
            for (id, r) in chunk.iter().zip(self.batch(&requests).await?) {
                // Gone, closed to us, or any other failure: its sites stay as they were.
                if r.status == 200
                    && let Ok(page) = r.into_result::<Page<Channel>>()
                {
                    out.insert(id.clone(), Vec::new());
                    wanted.extend(
                        page.value
                            .into_iter()
                            .filter(|c| c.membership_type.as_deref().is_some_and(|m| m != "standard"))
                            .map(|c| (id.clone(), c.id)),
                    );
                }
            }
        }
        // A team with a channel whose folder could not be read keeps the sites it had.
        let mut incomplete: HashSet<String> = HashSet::new();
        for chunk in wanted.chunks(MAX_BATCH) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .map(|(team, channel)| {
                    // No query options: the filesFolder call takes none.
                    BatchRequest::get(format!("/teams/{}/channels/{}/filesFolder", enc(team), enc(channel)))
                })
                .collect();
            for ((team, _), r) in chunk.iter().zip(self.batch(&requests).await?) {
                let site = (r.status == 200)
                    .then(|| r.body.get("webUrl").and_then(Value::as_str).and_then(site_of))
                    .flatten();
                match (site, out.get_mut(team)) {
                    (Some(site), Some(sites)) => {
                        if !sites.contains(&site) {
                            sites.push(site);
                        }
                    }
                    // Not provisioned yet (404), closed to us, or refused (Graph answers 400
                    // for some channel names, microsoft-graph-docs#18357): one channel never
                    // stops the sync.
                    _ => {
                        incomplete.insert(team.clone());
                    }
                }
            }
        }
        out.retain(|team, _| !incomplete.contains(team));
        for sites in out.values_mut() {
            sites.sort();
        }
        Ok(out)
    }
}

/// The site a document's URL is in: `https://host/sites/<name>` (or `/teams/<name>`).
fn site_of(web_url: &str) -> Option<String> {
    let url = url::Url::parse(web_url).ok()?;
    let mut path = url.path_segments()?;
    let (kind, name) = (path.next()?, path.next()?);
    (matches!(kind, "sites" | "teams") && !name.is_empty()).then(|| {
        format!(
            "{}://{}/{kind}/{name}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        )
    })
}

/// A group's owner and member counts. The members of a group with hidden membership are not
/// ours to list (that takes `Member.Read.Hidden`, which GroupMgr does not ask for): their count
/// is unknown, never a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relations {
    /// The owners' ids (users, or service principals).
    pub owners: Vec<String>,
    pub members: Option<u64>,
}

impl GraphGroup {
    /// Whether only members (and the privileged) may see who the members are.
    pub fn hidden_membership(&self) -> bool {
        self.visibility
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("HiddenMembership"))
    }
}

/// What `team_threads_and_sites` found, by group id.
#[derive(Debug, Default)]
pub struct TeamsAndSites {
    pub threads: HashMap<String, String>,
    pub sites: HashMap<String, String>,
}

/// A `$count` answer inside a batch: a number, or the number as text.
fn count_answer(r: &BatchResponse) -> Result<u64, GraphError> {
    if !r.ok() {
        return r.clone().into_result::<Value>().map(|_| 0);
    }
    match &r.body {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| GraphError::Protocol("$count answer is not a number".into()))
}

/// The `PATCH /groups/{id}` body: absolute values; `description: null` clears it.
fn update_body(update: &GroupUpdate) -> Value {
    let mut b = Map::new();
    if let Some(v) = update.display_name() {
        b.insert("displayName".into(), json!(v.as_str()));
    }
    match update.description() {
        Some(Some(d)) => {
            b.insert("description".into(), json!(d.as_str()));
        }
        Some(None) => {
            b.insert("description".into(), Value::Null);
        }
        None => {}
    }
    if let Some(v) = update.visibility() {
        b.insert("visibility".into(), json!(v.as_str()));
    }
    if let Some(v) = update.mail_nickname() {
        b.insert("mailNickname".into(), json!(v.as_str()));
    }
    Value::Object(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Description, DisplayName, MailNickname, Visibility};

    #[test]
    fn labels_absent_are_unknown_and_null_or_empty_are_none() {
        let parse = |v: Value| serde_json::from_value::<GraphGroup>(v).unwrap().assigned_labels;
        assert_eq!(parse(json!({"id": "g"})), None);
        assert_eq!(parse(json!({"id": "g", "assignedLabels": null})), Some(vec![]));
        assert_eq!(parse(json!({"id": "g", "assignedLabels": []})), Some(vec![]));
        let one = parse(json!({"id": "g", "assignedLabels": [{"labelId": "l", "displayName": "General"}]}));
        assert_eq!(one.unwrap()[0].display_name.as_deref(), Some("General"));
        // A label without an id does not fail the group (nor its page): it is unknown.
        let odd = parse(json!({"id": "g", "assignedLabels": [{"labelId": null}, {}]})).unwrap();
        assert!(odd.iter().all(|l| l.label_id.is_empty()));
        // A group kept in a round's saved progress reads back the same.
        let g: GraphGroup = serde_json::from_value(json!({"id": "g", "assignedLabels": []})).unwrap();
        let back: GraphGroup = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back.assigned_labels, Some(vec![]));
    }

    #[test]
    fn update_bodies_are_absolute_and_clear_the_description_explicitly() {
        let private = GroupUpdate::new(None, None, Some(Visibility::Private), None).unwrap();
        assert_eq!(update_body(&private), json!({"visibility": "Private"}));
        let cleared = GroupUpdate::new(None, Some(None), None, None).unwrap();
        assert_eq!(update_body(&cleared), json!({"description": null}));
        let described = GroupUpdate::new(None, Some(Some(Description::parse("d").unwrap())), None, None).unwrap();
        assert_eq!(update_body(&described), json!({"description": "d"}));
    }

    #[test]
    fn new_group_bodies_bind_owners_and_members_by_url() {
        let client = super::super::GraphClient::new(
            &crate::config::Endpoint::parse("X", "https://graph.microsoft.com").unwrap(),
            reqwest::Client::new(),
            Default::default(),
        );
        let graph = client.session(crate::secret::AccessToken::new("t"));
        let owner = ObjectId::parse("owners", "99e44b05-c10b-4e95-a523-e2732bbaba1e").unwrap();
        let group = |owners| {
            NewGroup::new(
                DisplayName::parse("Library Assist").unwrap(),
                MailNickname::parse("library").unwrap(),
                None,
                Visibility::Public,
                owners,
                Vec::new(),
            )
            .unwrap()
        };
        let new = group(vec![owner]);
        let body = graph.new_group_body(&new, None);
        assert_eq!(body["groupTypes"], json!(["Unified"]));
        assert_eq!(body["mailEnabled"], true);
        assert_eq!(body["securityEnabled"], false);
        assert_eq!(
            body["owners@odata.bind"],
            json!([format!("https://graph.microsoft.com/v1.0/users/{owner}")])
        );
        assert!(body.get("members@odata.bind").is_none());
        let new = group(Vec::new());
        let caller = ObjectId::parse("id", "11111111-2222-3333-4444-555555555555").unwrap();
        assert_eq!(
            graph.new_group_body(&new, Some(caller))["owners@odata.bind"],
            json!(["https://graph.microsoft.com/v1.0/users/11111111-2222-3333-4444-555555555555"]),
            "the caller owns a group created without owners"
        );
    }
}
