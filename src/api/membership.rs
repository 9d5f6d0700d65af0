//! Owners and members of a Microsoft 365 group: list (paged), add (`$ref`), remove.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::http::{Response, StatusCode};

use super::groups::{group_id, unified_group};
use super::model::{Principal, PrincipalPage, PrincipalRef};
use super::paging::{Cursor, CursorScope, Top, invalid_cursor};
use super::{ApiError, Request, caller_graph};
use crate::app::App;
use crate::auth::Caller;
use crate::domain::{ObjectId, Relation};
use crate::microsoft::graph::Collection;

const DEFAULT_TOP: u32 = 100;
const MAX_TOP: u32 = 999;

/// What a membership cursor carries: Graph's next link of this group's relation.
#[derive(Serialize, Deserialize)]
struct RelationCursor {
    #[serde(rename = "l")]
    link: String,
}

/// `GET /api/groups/{id}/{owners|members}?top=&cursor=`.
pub async fn list(app: &App, caller: &Caller, req: &Request, rel: Relation) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(req)?;
    let mut top = Top::default_of(DEFAULT_TOP);
    let mut cursor = None;
    // Bound to this group and relation: a cursor is handed out only after the group was
    // found to be a Microsoft 365 group.
    let scope = CursorScope {
        key: &app.cursors,
        tenant: &caller.tenant.tenant_id,
        route: format!("groups/{id}/{}", rel.path()),
    };
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "top" => top = Top::parse(&v, MAX_TOP)?,
            "cursor" => {
                let c: RelationCursor = Cursor::decode(&scope, &v)?;
                let link = app
                    .graph
                    .resume(&c.link, Collection::Relation(id, rel))
                    .map_err(|_| invalid_cursor())?;
                cursor = Some(link);
            }
            _ => {}
        }
    }
    let graph = caller_graph(app, caller).await?;
    let page = match cursor {
        Some(link) => graph.list_relation_next(&link).await?,
        None => {
            unified_group(&graph, &id).await?;
            graph.list_relation(&id.to_string(), rel, top.get()).await?
        }
    };
    let value = page.value.iter().map(Principal::of).collect();
    let next_cursor = page
        .next_link
        .map(|link| Cursor::encode(&scope, &RelationCursor { link }));
    Ok(super::json(StatusCode::OK, &PrincipalPage { value, next_cursor }))
}

/// `POST /api/groups/{id}/{owners|members}` with `{"id":"<user id>"}`: 204; adding someone
/// who is already there is not an error.
pub async fn add(app: &App, caller: &Caller, req: &Request, rel: Relation) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(req)?;
    let user = ObjectId::parse("id", &req.json::<PrincipalRef>()?.id)?;
    let graph = caller_graph(app, caller).await?;
    unified_group(&graph, &id).await?;
    graph.add_relation(&id.to_string(), rel, &user.to_string()).await?;
    tracing::info!(event = "membership_added", tenant_id = %caller.tenant.tenant_id, group_id = %id, relation = rel.path(), object_id = %user);
    Ok(super::no_content())
}

/// `DELETE /api/groups/{id}/{owners|members}/{userId}`: 204.
pub async fn remove(app: &App, caller: &Caller, req: &Request, rel: Relation) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(req)?;
    let user = ObjectId::parse("userId", req.param("userId"))?;
    let graph = caller_graph(app, caller).await?;
    unified_group(&graph, &id).await?;
    graph.remove_relation(&id.to_string(), rel, &user.to_string()).await?;
    tracing::info!(event = "membership_removed", tenant_id = %caller.tenant.tenant_id, group_id = %id, relation = rel.path(), object_id = %user);
    Ok(super::no_content())
}
