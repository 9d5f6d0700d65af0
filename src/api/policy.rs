//! The tenant-wide group-creation policy: the `EnableGroupCreation` and
//! `GroupCreationAllowedGroupId` values of the `Group.Unified` directory setting
//! (graph-settings-activity.md §1). A tenant starts with no setting object (defaults apply);
//! changing the policy creates it from the template, or rewrites the whole values collection
//! with only the two values changed, so no other setting is lost.

use bytes::Bytes;
use warp::http::{Response, StatusCode};

use super::model::CreationPolicy;
use super::{ApiError, ErrorCode, Request, caller_graph};
use crate::app::App;
use crate::auth::Caller;
use crate::domain::GroupId;
use crate::microsoft::graph::{GROUP_UNIFIED_TEMPLATE, Graph, GraphError, GroupSetting, SettingValue};

const ENABLE: &str = "EnableGroupCreation";
const ALLOWED: &str = "GroupCreationAllowedGroupId";

/// The policy a `Group.Unified` values collection states (absent values: creation enabled,
/// no allowed group).
fn from_values(values: &[SettingValue]) -> CreationPolicy {
    let get = |n: &str| values.iter().find(|v| v.name == n).map(|v| v.value.as_str());
    CreationPolicy {
        enabled: get(ENABLE).is_none_or(|v| !v.eq_ignore_ascii_case("false")),
        allowed_group_id: get(ALLOWED).filter(|v| !v.is_empty()).map(str::to_string),
    }
}

/// `values` with the two policy values set, everything else kept as it was.
fn apply(policy: &CreationPolicy, mut values: Vec<SettingValue>) -> Vec<SettingValue> {
    for (name, value) in [
        (ENABLE, policy.enabled.to_string()),
        (ALLOWED, policy.allowed_group_id.clone().unwrap_or_default()),
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

async fn unified_setting(graph: &Graph<'_>) -> Result<Option<GroupSetting>, GraphError> {
    Ok(graph
        .group_settings()
        .await?
        .into_iter()
        .find(|s| s.template_id.as_deref() == Some(GROUP_UNIFIED_TEMPLATE)))
}

/// `GET /api/policy/group-creation`.
pub async fn get(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    let graph = caller_graph(app, caller).await?;
    let policy = unified_setting(&graph)
        .await?
        .map_or_else(|| from_values(&[]), |s| from_values(&s.values));
    Ok(super::json(StatusCode::OK, &policy))
}

/// The PUT body, with `allowedGroupId` in its canonical form (a GUID or null).
fn parse_put(req: &Request) -> Result<CreationPolicy, ApiError> {
    let mut policy: CreationPolicy = req.json()?;
    if let Some(id) = &policy.allowed_group_id {
        let id = GroupId::parse(id).map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidInput,
                "allowedGroupId: must be a group id (GUID) or null",
            )
        })?;
        policy.allowed_group_id = Some(id.to_string());
    }
    Ok(policy)
}

/// `PUT /api/policy/group-creation` (role `GroupMgr.Admin`).
pub async fn put(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    super::require_admin(caller)?;
    let policy = parse_put(req)?;
    let graph = caller_graph(app, caller).await?;
    if let Some(id) = &policy.allowed_group_id {
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
                .update_group_setting(&existing.id, &apply(&policy, existing.values.clone()))
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
                .create_group_setting(GROUP_UNIFIED_TEMPLATE, &apply(&policy, defaults))
                .await
            {
                Ok(_) => {}
                // Created concurrently (one object per template): update that one instead.
                Err(e) if matches!(e.status(), Some(400 | 409)) => {
                    let existing = unified_setting(&graph).await?.ok_or(e)?;
                    graph
                        .update_group_setting(&existing.id, &apply(&policy, existing.values.clone()))
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    tracing::info!(event = "policy_changed", tenant_id = %caller.tenant.tenant_id, enabled = policy.enabled);
    Ok(super::json(StatusCode::OK, &policy))
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
            from_values(&values),
            CreationPolicy {
                enabled: true,
                allowed_group_id: None
            }
        );
        let p = CreationPolicy {
            enabled: false,
            allowed_group_id: Some("11111111-2222-3333-4444-555555555555".into()),
        };
        let out = apply(&p, values);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], v("UsageGuidelinesUrl", "https://x"));
        assert_eq!(out[3], v("AllowToAddGuests", "false"));
        assert_eq!(from_values(&out), p);
        let cleared = apply(
            &CreationPolicy {
                enabled: false,
                allowed_group_id: None,
            },
            out,
        );
        assert_eq!(cleared.iter().find(|x| x.name == ALLOWED).unwrap().value, "");
    }

    #[test]
    fn put_body_rules() {
        let parse = |v: serde_json::Value| {
            parse_put(&Request {
                body: v.to_string().into(),
                ..Default::default()
            })
        };
        assert!(parse(json!({"enabled": true, "allowedGroupId": null})).is_ok());
        assert!(parse(json!({"enabled": true})).is_err(), "null must be explicit");
        assert!(parse(json!({"allowedGroupId": null})).is_err());
        assert!(parse(json!({"enabled": "yes", "allowedGroupId": null})).is_err());
        assert!(parse(json!({"enabled": true, "allowedGroupId": "x"})).is_err());
        assert!(parse(json!({"enabled": true, "allowedGroupId": null, "extra": 1})).is_err());
        assert_eq!(
            parse(json!({"enabled": true, "allowedGroupId": "11111111-2222-3333-4444-55555555555A"}))
                .unwrap()
                .allowed_group_id
                .as_deref(),
            Some("11111111-2222-3333-4444-55555555555a"),
            "canonical form"
        );
    }
}
