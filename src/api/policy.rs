//! The tenant-wide group-creation policy: the `EnableGroupCreation` and
//! `GroupCreationAllowedGroupId` values of the `Group.Unified` directory setting
//! (graph-settings-activity.md §1). A tenant starts with no setting object (defaults apply);
//! changing the policy creates it from the template, or rewrites the whole values collection
//! with only the two values changed, so no other setting is lost.

use bytes::Bytes;
use serde_json::Value;
use warp::http::{Response, StatusCode};

use super::upstream::{graph_token, json_body};
use super::{ApiError, ErrorCode, model};
use crate::app::App;
use crate::auth::Caller;
use crate::domain::GroupId;
use crate::host::HttpRequest;
use crate::microsoft::graph::{GROUP_UNIFIED_TEMPLATE, Graph, GraphError, GroupSetting, SettingValue};

const ENABLE: &str = "EnableGroupCreation";
const ALLOWED: &str = "GroupCreationAllowedGroupId";

/// The policy as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    pub allowed_group: Option<String>,
}

impl Policy {
    fn from_values(values: &[SettingValue]) -> Self {
        let get = |n: &str| values.iter().find(|v| v.name == n).map(|v| v.value.as_str());
        Self {
            // Defaults when absent: creation enabled, no allowed group.
            enabled: get(ENABLE).is_none_or(|v| !v.eq_ignore_ascii_case("false")),
            allowed_group: get(ALLOWED).filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    fn view(&self) -> model::Policy {
        model::Policy {
            enabled: self.enabled,
            allowed_group_id: self.allowed_group.clone(),
        }
    }

    /// `values` with the two policy values set, everything else kept as it was.
    fn apply(&self, mut values: Vec<SettingValue>) -> Vec<SettingValue> {
        for (name, value) in [
            (
                ENABLE,
                if self.enabled {
                    "true".to_string()
                } else {
                    "false".to_string()
                },
            ),
            (ALLOWED, self.allowed_group.clone().unwrap_or_default()),
        ] {
            match values.iter_mut().find(|v| v.name == name) {
                Some(v) => v.value = value,
                None => values.push(SettingValue {
                    name: name.into(),
                    value,
                }),
            }
        }
        values
    }
}

async fn unified_setting(graph: &Graph<'_>) -> Result<Option<GroupSetting>, GraphError> {
    Ok(graph
        .group_settings()
        .await?
        .into_iter()
        .find(|s| s.template_id.as_deref() == Some(GROUP_UNIFIED_TEMPLATE)))
}

/// `GET /api/policy/group-creation`.
pub async fn get(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    let policy = unified_setting(&graph).await?.map_or(
        Policy {
            enabled: true,
            allowed_group: None,
        },
        |s| Policy::from_values(&s.values),
    );
    Ok(super::json(StatusCode::OK, &policy.view()))
}

fn parse_put(body: &Value) -> Result<Policy, ApiError> {
    let bad = |m: &str| ApiError::bad_request(ErrorCode::InvalidInput, m.to_string());
    let obj = body.as_object().ok_or_else(|| bad("body: must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "enabled" | "allowedGroupId")) {
        return Err(bad(&format!(
            "body: unknown property `{k}`; allowed: enabled, allowedGroupId"
        )));
    }
    let enabled = obj
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("enabled: is required (true or false)"))?;
    let allowed_group = match obj.get("allowedGroupId") {
        None => {
            return Err(bad(
                "allowedGroupId: is required (a security group id, or null to clear it)",
            ));
        }
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            GroupId::parse(s)
                .map_err(|_| bad("allowedGroupId: must be a group id (GUID) or null"))?
                .to_string(),
        ),
        Some(_) => return Err(bad("allowedGroupId: must be a group id (GUID) or null")),
    };
    Ok(Policy { enabled, allowed_group })
}

/// `PUT /api/policy/group-creation` (role `GroupMgr.Admin`).
pub async fn put(app: &App, caller: &Caller, req: &HttpRequest) -> Result<Response<Bytes>, ApiError> {
    super::require_admin(caller)?;
    let policy = parse_put(&json_body(&req.body)?)?;
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    if let Some(id) = &policy.allowed_group {
        // It must be an existing security group (not a Microsoft 365 group).
        let invalid = || {
            ApiError::bad_request(
                ErrorCode::InvalidInput,
                "allowedGroupId: must be an existing security group",
            )
        };
        let g = match graph.get_group(id).await {
            Ok(g) => g,
            Err(e) if e.is_not_found() => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if g.is_unified() || g.security_enabled != Some(true) {
            return Err(invalid());
        }
    }
    match unified_setting(&graph).await? {
        Some(existing) => {
            graph
                .update_group_setting(&existing.id, &policy.apply(existing.values.clone()))
                .await?;
        }
        None => {
            // Start from the template's defaults so the new object holds the full collection.
            let template = graph.setting_template(GROUP_UNIFIED_TEMPLATE).await?;
            let defaults: Vec<SettingValue> = template
                .values
                .iter()
                .map(|v| SettingValue {
                    name: v.name.clone(),
                    value: v.default_value.clone().unwrap_or_default(),
                })
                .collect();
            match graph
                .create_group_setting(GROUP_UNIFIED_TEMPLATE, &policy.apply(defaults))
                .await
            {
                Ok(_) => {}
                // Created concurrently (one object per template): update that one instead.
                Err(e) if matches!(e.status(), Some(400 | 409)) => {
                    let existing = unified_setting(&graph).await?.ok_or(e)?;
                    graph
                        .update_group_setting(&existing.id, &policy.apply(existing.values.clone()))
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    tracing::info!(event = "policy_changed", tenant_id = %caller.tenant.tenant_id, enabled = policy.enabled);
    Ok(super::json(StatusCode::OK, &policy.view()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(n: &str, val: &str) -> SettingValue {
        SettingValue {
            name: n.into(),
            value: val.into(),
        }
    }

    #[test]
    fn values_round_trip_and_other_settings_are_kept() {
        let values = vec![
            v("UsageGuidelinesUrl", "https://x"),
            v(ENABLE, "True"),
            v(ALLOWED, ""),
            v("AllowToAddGuests", "false"),
        ];
        assert_eq!(
            Policy::from_values(&values),
            Policy {
                enabled: true,
                allowed_group: None
            }
        );
        let p = Policy {
            enabled: false,
            allowed_group: Some("11111111-2222-3333-4444-555555555555".into()),
        };
        let out = p.apply(values);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], v("UsageGuidelinesUrl", "https://x"));
        assert_eq!(out[3], v("AllowToAddGuests", "false"));
        assert_eq!(Policy::from_values(&out), p);
        let cleared = Policy {
            enabled: false,
            allowed_group: None,
        }
        .apply(out);
        assert_eq!(cleared.iter().find(|x| x.name == ALLOWED).unwrap().value, "");
    }

    #[test]
    fn put_body_rules() {
        assert!(parse_put(&json!({"enabled": true, "allowedGroupId": null})).is_ok());
        assert!(parse_put(&json!({"enabled": true})).is_err(), "null must be explicit");
        assert!(parse_put(&json!({"allowedGroupId": null})).is_err());
        assert!(parse_put(&json!({"enabled": "yes", "allowedGroupId": null})).is_err());
        assert!(parse_put(&json!({"enabled": true, "allowedGroupId": "x"})).is_err());
        assert!(parse_put(&json!({"enabled": true, "allowedGroupId": null, "extra": 1})).is_err());
    }
}
