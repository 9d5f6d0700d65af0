//! Microsoft 365 groups: list, get, create, update, delete, restore — through Graph with the
//! caller's rights (on-behalf-of), merged with GroupMgr's own per-group data from the tenant's
//! SharePoint list.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use bytes::Bytes;
use serde_json::{Value, json};
use warp::http::{Response, StatusCode};

use super::model::{Group, GroupPage};
use super::upstream::{graph_token, json_body};
use super::{ApiError, ErrorCode, query_params};
use crate::app::App;
use crate::auth::Caller;
use crate::customer_list;
use crate::domain::{GroupId, GroupUpdate, NewGroup, ObjectId, Relation};
use crate::host::HttpRequest;
use crate::microsoft::graph::{Graph, GraphError, GraphGroup};
use crate::microsoft::retry::RetryPolicy;

const DEFAULT_TOP: u32 = 100;
const MAX_TOP: u32 = 999;
const MAX_SEARCH: usize = 256;

fn encode_cursor(link: &str, searching: bool) -> String {
    B64URL.encode(json!({"l": link, "s": searching}).to_string())
}

fn decode_cursor(app: &App, raw: &str) -> Result<(String, bool), ApiError> {
    let bad = || ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not one this API returned");
    let v: Value = B64URL
        .decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    let link = v["l"].as_str().ok_or_else(bad)?;
    let link = app.graph.checked_link(link).map_err(|_| bad())?;
    // Only group collection pages may be continued through this route.
    let path = url::Url::parse(&link).map_err(|_| bad())?.path().to_string();
    if path != format!("/{}/groups", crate::microsoft::graph::VERSION) {
        return Err(bad());
    }
    Ok((link, v["s"].as_bool().unwrap_or(false)))
}

/// The group, if it is a Microsoft 365 group (others are not ours to manage: a security
/// group deleted through here would be gone for good).
pub(super) async fn unified_group(graph: &Graph<'_>, id: &GroupId) -> Result<GraphGroup, ApiError> {
    let g = graph.get_group(&id.to_string()).await?;
    if g.is_unified() {
        Ok(g)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no Microsoft 365 group with this id",
        ))
    }
}

pub(super) fn group_id(params: &[(&'static str, String)]) -> Result<GroupId, ApiError> {
    let raw = params
        .iter()
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    Ok(GroupId::parse(raw)?)
}

/// `GET /api/groups?search=&top=&cursor=`.
pub async fn list(app: &App, caller: &Caller, req: &HttpRequest) -> Result<Response<Bytes>, ApiError> {
    let mut search = None;
    let mut top = DEFAULT_TOP;
    let mut cursor = None;
    for (k, v) in query_params(&req.query) {
        match k.as_str() {
            "search" => {
                if v.chars().count() > MAX_SEARCH || v.trim().is_empty() {
                    return Err(ApiError::bad_request(
                        ErrorCode::InvalidInput,
                        format!("search: must be 1 to {MAX_SEARCH} characters"),
                    ));
                }
                search = Some(v);
            }
            "top" => {
                top = v.parse().ok().filter(|n| (1..=MAX_TOP).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidInput,
                        format!("top: must be a whole number from 1 to {MAX_TOP}"),
                    )
                })?
            }
            "cursor" => cursor = Some(decode_cursor(app, &v)?),
            _ => {}
        }
    }
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    let (page, searching) = match cursor {
        Some((link, searching)) => (graph.list_groups_next(&link, searching).await?, searching),
        None => (graph.list_groups(search.as_deref(), top).await?, search.is_some()),
    };
    let ids: Vec<String> = page.value.iter().map(|g| g.id.clone()).collect();
    let rows = match customer_list::location(app.store.as_ref(), &caller.tenant.tenant_id).await {
        Ok(Some(loc)) => customer_list::rows_for(&graph, &loc, &ids).await.unwrap_or_default(),
        // Not synced yet (or our own store is down): Graph data alone is still an answer.
        _ => Default::default(),
    };
    let value = page
        .value
        .iter()
        .map(|g| Group::of(g, rows.get(&g.id).map(|(_, r)| r), None))
        .collect();
    let next_cursor = page.next_link.as_deref().map(|l| encode_cursor(l, searching));
    Ok(super::json(StatusCode::OK, &GroupPage { value, next_cursor }))
}

/// `GET /api/groups/{id}`: Graph data, live owner/member counts, and the SharePoint row.
pub async fn get(app: &App, caller: &Caller, params: &[(&'static str, String)]) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(params)?;
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    let g = unified_group(&graph, &id).await?;
    let (owners, members) = tokio::join!(
        graph.count_relation(&g.id, Relation::Owners),
        graph.count_relation(&g.id, Relation::Members)
    );
    let row = match customer_list::location(app.store.as_ref(), &caller.tenant.tenant_id).await {
        Ok(Some(loc)) => customer_list::row(&graph, &loc, &g.id)
            .await
            .ok()
            .flatten()
            .map(|(_, r)| r),
        _ => None,
    };
    Ok(super::json(
        StatusCode::OK,
        &Group::of(&g, row.as_ref(), Some((owners?, members?))),
    ))
}

fn is_transient(e: &GraphError) -> bool {
    match e {
        GraphError::Transport(_) | GraphError::Timeout => true,
        GraphError::Service { status, .. } => RetryPolicy::is_transient(*status),
        GraphError::Protocol(_) => false,
    }
}

/// `POST /api/groups`: 201 with `Location`. A create is not idempotent, so after a transient
/// failure the nickname is looked up before trying again: a create whose answer was lost is
/// found instead of duplicated.
pub async fn create(app: &App, caller: &Caller, req: &HttpRequest) -> Result<Response<Bytes>, ApiError> {
    let new = NewGroup::parse(&json_body(&req.body)?)?;
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    let owner = caller.principal.object_id.map(ObjectId::from_uuid);
    let body = new.graph_body(&app.graph.base(), owner);
    let started = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let policy = app.graph.policy();
    let mut attempt = 0;
    let created = loop {
        attempt += 1;
        match graph.create_group(&body).await {
            Ok(g) => break g,
            Err(e) if is_transient(&e) && attempt < policy.max_attempts => {
                let ra = match &e {
                    GraphError::Service { retry_after, .. } => *retry_after,
                    _ => None,
                };
                tokio::time::sleep(policy.delay(attempt, ra).min(Duration::from_secs(10))).await;
                if let Some(existing) = graph.find_group_by_nickname(new.mail_nickname.as_str()).await?
                    && existing.display_name.as_deref() == Some(new.display_name.as_str())
                    && existing
                        .created_date_time
                        .as_deref()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| t >= started)
                {
                    break existing;
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(event = "group_created", tenant_id = %caller.tenant.tenant_id, group_id = %created.id, group_name = created.display_name.as_deref().unwrap_or(""));
    let mut resp = super::json(StatusCode::CREATED, &Group::of(&created, None, None));
    if let Ok(v) = warp::http::HeaderValue::from_str(&format!("/api/groups/{}", created.id)) {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

/// `PATCH /api/groups/{id}`: 204.
pub async fn update(
    app: &App,
    caller: &Caller,
    req: &HttpRequest,
    params: &[(&'static str, String)],
) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(params)?;
    let body = json_body(&req.body)?;
    let update = GroupUpdate::parse(&body)?;
    let clear_description = body.get("description").is_some_and(Value::is_null);
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    unified_group(&graph, &id).await?;
    graph
        .update_group(&id.to_string(), &update.graph_body(clear_description))
        .await?;
    tracing::info!(event = "group_updated", tenant_id = %caller.tenant.tenant_id, group_id = %id);
    Ok(super::no_content())
}

/// `DELETE /api/groups/{id}`: 204; Entra keeps the group restorable for 30 days.
pub async fn delete(
    app: &App,
    caller: &Caller,
    params: &[(&'static str, String)],
) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(params)?;
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    unified_group(&graph, &id).await?;
    graph.delete_group(&id.to_string()).await?;
    tracing::info!(event = "group_deleted", tenant_id = %caller.tenant.tenant_id, group_id = %id);
    Ok(super::no_content())
}

/// `POST /api/groups/{id}/restore`: 200 with the restored group.
pub async fn restore(
    app: &App,
    caller: &Caller,
    params: &[(&'static str, String)],
) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(params)?;
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    let g = match graph.restore_group(&id.to_string()).await {
        Ok(g) => g,
        // Not among the deleted items: if the group is alive, say so rather than "not found".
        Err(e) if e.is_not_found() => {
            return Err(match graph.get_group(&id.to_string()).await {
                Ok(_) => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, "the group is not deleted"),
                Err(_) => ApiError::not_found(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(event = "group_restored", tenant_id = %caller.tenant.tenant_id, group_id = %id);
    Ok(super::json(StatusCode::OK, &Group::of(&g, None, None)))
}
