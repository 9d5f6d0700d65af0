//! Groups, owners and members, delta, group settings and teams (graph-groups.md,
//! graph-settings-activity.md §1).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{BatchRequest, Graph, GraphError, Idempotency, Page, enc};

/// The group properties GroupMgr reads.
pub const GROUP_SELECT: &str = "id,displayName,description,mailNickname,visibility,createdDateTime,groupTypes,resourceProvisioningOptions,securityEnabled";
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
}

pub use crate::domain::Relation;

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
    pub async fn list_groups_next(&self, link: &str, searching: bool) -> Result<Page<GraphGroup>, GraphError> {
        let headers: &[(&str, &str)] = if searching {
            &[("ConsistencyLevel", "eventual")]
        } else {
            &[]
        };
        self.next_page(link, headers).await
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
        let filter = format!("mailNickname eq '{}'", nickname.replace('\'', "''"));
        let url = format!(
            "{}?$filter={}&$select={GROUP_SELECT}",
            self.url("/groups"),
            enc(&filter)
        );
        let page: Page<GraphGroup> = self.get_json(&url, &[]).await?;
        Ok(page.value.into_iter().find(GraphGroup::is_unified))
    }

    /// `POST /groups`. Not retried blindly: on a transient failure the caller looks the
    /// nickname up before trying again.
    pub async fn create_group(&self, body: &Value) -> Result<GraphGroup, GraphError> {
        self.send(Method::POST, &self.url("/groups"), Some(body), &[], Idempotency::Once)
            .await?
            .json()
    }

    /// `PATCH /groups/{id}` with absolute values (so it is safe to repeat).
    pub async fn update_group(&self, id: &str, patch: &Value) -> Result<(), GraphError> {
        self.send(
            Method::PATCH,
            &self.url(&format!("/groups/{}", enc(id))),
            Some(patch),
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

    /// Adds a directory object by `$ref`. Adding an existing one answers 400 "already exist";
    /// the caller treats that as success.
    pub async fn add_relation(&self, group: &str, rel: Relation, object: &str) -> Result<(), GraphError> {
        let body = json!({"@odata.id": format!("{}/directoryObjects/{}", self.client().base(), enc(object))});
        self.send(
            Method::POST,
            &self.url(&format!("/groups/{}/{}/$ref", enc(group), rel.path())),
            Some(&body),
            &[],
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
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
                let url = format!("{}?$select={GROUP_SELECT},members,owners", self.url("/groups/delta"));
                self.get_json(&url, &[]).await
            }
        }
    }

    /// `GET /teams/{id}?$select=internalId` as a batch item.
    pub fn team_internal_id_request(group: &str) -> BatchRequest {
        BatchRequest::get(format!("/teams/{}?$select=id,internalId", enc(group)))
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
}
