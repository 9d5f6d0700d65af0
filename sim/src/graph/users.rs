//! Users: `GET /users` with `$filter=accountEnabled eq false` (who cannot sign in any more),
//! `$select`, `$top` and paging.
//!
//! Graph docs: api-reference/v1.0/api/user-list ("List users": application permission
//! `User.Read.All` least privileged; `User.ReadBasic.All` does not return `accountEnabled`)
//! and resources/user ("accountEnabled … Supports `$filter` (`eq`, `ne`, `not`, and `in`)";
//! `eq` is a default query, `ne` and `not` need the advanced query parameters). A deleted
//! user is not listed (it is in `/directory/deletedItems`).

use serde_json::{Value, json};
use warp::http::StatusCode;

use super::{GraphReply, GraphRequest, page};
use crate::SimState;
use crate::directory::SimUser;

const READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

pub(crate) fn user_json(u: &SimUser) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.user",
        "id": u.id.to_string(),
        "accountEnabled": u.enabled,
        "displayName": u.display_name,
        "userPrincipalName": u.upn,
        "userType": if u.guest { "Guest" } else { "Member" },
    })
}

pub fn handle(state: &SimState, req: &GraphRequest<'_>, segs: &[&str]) -> GraphReply {
    match (req.method.as_str(), segs) {
        ("GET", ["users"]) if req.caller.has_any(READ) => list(state, req),
        ("GET", ["users"]) => GraphReply::denied(),
        _ => GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Resource not found for the segment 'users'.",
        ),
    }
}

fn list(state: &SimState, req: &GraphRequest<'_>) -> GraphReply {
    let enabled = match req.q("$filter").map(str::trim) {
        None => None,
        Some(f) => match f.strip_prefix("accountEnabled eq ").map(str::trim) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            // Other filters exist; GroupMgr uses this one only.
            _ => return GraphReply::bad_request(&format!("Unsupported or invalid query filter clause: {f}")),
        },
    };
    let users: Vec<&SimUser> = req
        .caller
        .tenant
        .users
        .iter()
        .filter(|u| enabled.is_none_or(|e| u.enabled == e))
        .collect();
    // Default page 100, `$top` up to 999 (user-list, "Optional query parameters").
    let (items, next) = match page(state, req, &users, 100, 999, 999) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let value: Vec<Value> = items
        .iter()
        .map(|u| super::select(user_json(u), req.q("$select")))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users", state.base_url()),
        "value": value,
    });
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    GraphReply::ok(body)
}
