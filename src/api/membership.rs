//! Owners and members of a Microsoft 365 group: list (paged), add (`$ref`), remove.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use bytes::Bytes;
use serde_json::Value;
use warp::http::{Response, StatusCode};

use super::groups::{group_id, unified_group};
use super::model::{Principal, PrincipalPage};
use super::upstream::{graph_token, json_body};
use super::{ApiError, ErrorCode, query_params};
use crate::app::App;
use crate::auth::Caller;
use crate::domain::{ObjectId, Relation};
use crate::host::HttpRequest;
use crate::microsoft::graph::{DirectoryObject, GraphError, Page};

const DEFAULT_TOP: u32 = 100;
const MAX_TOP: u32 = 999;

/// `GET /api/groups/{id}/{owners|members}?top=&cursor=`.
pub async fn list(
    app: &App,
    caller: &Caller,
    req: &HttpRequest,
    params: &[(&'static str, String)],
    rel: Relation,
) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(params)?;
    let mut top = DEFAULT_TOP;
    let mut cursor = None;
    for (k, v) in query_params(&req.query) {
        match k.as_str() {
            "top" => {
                top = v.parse().ok().filter(|n| (1..=MAX_TOP).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidInput,
                        format!("top: must be a whole number from 1 to {MAX_TOP}"),
                    )
                })?
            }
            "cursor" => {
                let bad = || ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not one this API returned");
                let link = B64URL
                    .decode(&v)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(bad)?;
                let link = app.graph.checked_link(&link).map_err(|_| bad())?;
                let expected = format!("/{}/groups/{id}/{}", crate::microsoft::graph::VERSION, rel.path());
                if url::Url::parse(&link).map(|u| u.path().to_string()).ok().as_deref() != Some(expected.as_str()) {
                    return Err(bad());
                }
                cursor = Some(link);
            }
            _ => {}
        }
    }
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    let page: Page<DirectoryObject> = match cursor {
        Some(link) => graph.next_page(&link, &[]).await?,
        None => {
            unified_group(&graph, &id).await?;
            graph.list_relation(&id.to_string(), rel, top).await?
        }
    };
    let value = page.value.iter().map(Principal::of).collect();
    let next_cursor = page.next_link.as_deref().map(|l| B64URL.encode(l));
    Ok(super::json(StatusCode::OK, &PrincipalPage { value, next_cursor }))
}

/// `POST /api/groups/{id}/{owners|members}` with `{"id":"<user id>"}`: 204; adding someone
/// who is already there is not an error.
pub async fn add(
    app: &App,
    caller: &Caller,
    req: &HttpRequest,
    params: &[(&'static str, String)],
    rel: Relation,
) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(params)?;
    let body = json_body(&req.body)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request(ErrorCode::InvalidInput, "body: must be a JSON object"))?;
    if obj.keys().any(|k| k != "id") {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidInput,
            "body: only `id` is allowed",
        ));
    }
    let raw = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(ErrorCode::InvalidInput, "id: is required (a user id)"))?;
    let user = ObjectId::parse("id", raw)?;
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    unified_group(&graph, &id).await?;
    match graph.add_relation(&id.to_string(), rel, &user.to_string()).await {
        Ok(()) => {}
        Err(GraphError::Service {
            status: 400, message, ..
        }) if message.contains("already exist") => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(event = "membership_added", tenant_id = %caller.tenant.tenant_id, group_id = %id, relation = rel.path(), object_id = %user);
    Ok(super::no_content())
}

/// `DELETE /api/groups/{id}/{owners|members}/{userId}`: 204.
pub async fn remove(
    app: &App,
    caller: &Caller,
    params: &[(&'static str, String)],
    rel: Relation,
) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(params)?;
    let raw = params
        .iter()
        .find(|(k, _)| *k == "userId")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let user = ObjectId::parse("userId", raw)?;
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    unified_group(&graph, &id).await?;
    graph.remove_relation(&id.to_string(), rel, &user.to_string()).await?;
    tracing::info!(event = "membership_removed", tenant_id = %caller.tenant.tenant_id, group_id = %id, relation = rel.path(), object_id = %user);
    Ok(super::no_content())
}
