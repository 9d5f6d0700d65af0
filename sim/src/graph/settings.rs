//! `/groupSettings` and `/groupSettingTemplates` (graph-settings-activity.md §1). A tenant
//! starts with no setting objects; one object per template may exist.

use serde_json::{Value, json};
use uuid::Uuid;
use warp::http::StatusCode;

use super::model::{GROUP_UNIFIED_TEMPLATE, Setting, group_unified_template};
use super::{GraphReply, GraphRequest};
use crate::SimState;

const READ: &[&str] = &[
    "GroupSettings.Read.All",
    "GroupSettings.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const WRITE: &[&str] = &["GroupSettings.ReadWrite.All", "Directory.ReadWrite.All"];

fn setting_json(s: &Setting) -> Value {
    json!({
        "id": s.id.to_string(),
        "displayName": if s.template_id == GROUP_UNIFIED_TEMPLATE { json!("Group.Unified") } else { Value::Null },
        "templateId": s.template_id,
        "values": s.values.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
    })
}

fn values_of(body: &Value) -> Option<Vec<(String, String)>> {
    body.get("values")?
        .as_array()?
        .iter()
        .map(|v| {
            Some((
                v.get("name")?.as_str()?.to_string(),
                v.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

pub fn handle(state: &SimState, req: &GraphRequest<'_>, segs: &[&str]) -> GraphReply {
    let c = req.caller;
    let write_allowed = c.has_any(WRITE) && (c.user.is_none() || c.is_directory_admin());
    let mut all = state.graph.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let t = state.ensure_graph(&mut all, &c.tenant);
    let template = group_unified_template();
    match (req.method.as_str(), segs) {
        ("GET", ["groupSettingTemplates", id]) if c.has_any(READ) => {
            if *id != GROUP_UNIFIED_TEMPLATE {
                return GraphReply::not_found(id);
            }
            GraphReply::ok(json!({
                "id": GROUP_UNIFIED_TEMPLATE,
                "displayName": "Group.Unified",
                "description": "Setting templates define the different settings that can be used for the associated ObjectSettings. This template defines settings that can be used for Unified Groups.",
                "values": template.iter().map(|(n, t, d)| json!({"name": n, "type": t, "defaultValue": d, "description": n})).collect::<Vec<_>>(),
            }))
        }
        ("GET", ["groupSettings"]) if c.has_any(READ) => GraphReply::ok(
            json!({"@odata.context": format!("{}/v1.0/$metadata#groupSettings", state.base_url()), "value": t.settings.iter().map(setting_json).collect::<Vec<_>>()}),
        ),
        ("GET", ["groupSettings", id]) if c.has_any(READ) => {
            match t.settings.iter().find(|s| s.id.to_string() == *id) {
                Some(s) => GraphReply::ok(setting_json(s)),
                None => GraphReply::not_found(id),
            }
        }
        ("POST", ["groupSettings"]) if write_allowed => {
            let Some(template_id) = req.body.get("templateId").and_then(Value::as_str) else {
                return GraphReply::bad_request("templateId is required.");
            };
            if template_id != GROUP_UNIFIED_TEMPLATE {
                return GraphReply::bad_request("Invalid templateId.");
            }
            if t.settings.iter().any(|s| s.template_id == template_id) {
                return GraphReply::error(
                    StatusCode::CONFLICT,
                    "Request_BadRequest",
                    "A conflicting object with one or more of the specified property values is present in the directory.",
                );
            }
            let Some(given) = values_of(&req.body) else {
                return GraphReply::bad_request("Invalid values.");
            };
            if let Some((n, _)) = given.iter().find(|(n, _)| !template.iter().any(|(tn, _, _)| tn == n)) {
                return GraphReply::bad_request(&format!("Invalid setting name '{n}'."));
            }
            // Values not given take the template's defaults.
            let values = template
                .iter()
                .map(|(n, _, d)| {
                    (
                        n.to_string(),
                        given
                            .iter()
                            .find(|(gn, _)| gn == n)
                            .map_or(d.to_string(), |(_, v)| v.clone()),
                    )
                })
                .collect();
            let s = Setting {
                id: Uuid::new_v4(),
                template_id: template_id.into(),
                values,
            };
            let mut body = setting_json(&s);
            body["@odata.context"] = json!(format!("{}/v1.0/$metadata#groupSettings/$entity", state.base_url()));
            // The creation response echoes only the values sent (graph-settings-activity.md §1).
            body["values"] = json!(
                given
                    .iter()
                    .map(|(n, v)| json!({"name": n, "value": v}))
                    .collect::<Vec<_>>()
            );
            t.settings.push(s);
            GraphReply::created(body)
        }
        ("PATCH", ["groupSettings", id]) if write_allowed => {
            let Some(given) = values_of(&req.body) else {
                return GraphReply::bad_request("Invalid values.");
            };
            let Some(s) = t.settings.iter_mut().find(|s| s.id.to_string() == *id) else {
                return GraphReply::not_found(id);
            };
            for (n, v) in given {
                match s.values.iter_mut().find(|(k, _)| *k == n) {
                    Some(slot) => slot.1 = v,
                    None => {
                        return GraphReply::bad_request(&format!("Invalid setting name '{n}'."));
                    }
                }
            }
            GraphReply::no_content()
        }
        ("DELETE", ["groupSettings", id]) if write_allowed => {
            let before = t.settings.len();
            t.settings.retain(|s| s.id.to_string() != *id);
            if t.settings.len() == before {
                GraphReply::not_found(id)
            } else {
                GraphReply::no_content()
            }
        }
        _ => GraphReply::denied(),
    }
}
