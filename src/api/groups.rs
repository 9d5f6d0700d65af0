//! Microsoft 365 groups: list, get, create, update, delete, restore — through Graph with the
//! caller's rights (on-behalf-of), merged with GroupMgr's own per-group data from the tenant's
//! SharePoint list.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::http::{Response, StatusCode};

use super::model::{Group, GroupPage, GroupUpdateBody, NewGroupBody};
use super::paging::{Cursor, CursorScope, Top, invalid_cursor};
use super::{ApiError, ErrorCode, Request, caller_graph, naming, require_admin};
use crate::app::App;
use crate::auth::Caller;
use crate::customer_list::{self, Ownership};
use crate::domain::{DisplayName, GroupId, GroupUpdate, MailNickname, NewGroup, Relation};
use crate::lifecycle::ownership;
use crate::microsoft::graph::{Collection, Graph, GraphGroup};

const DEFAULT_TOP: u32 = 100;
const MAX_TOP: u32 = 999;
const MAX_SEARCH: usize = 256;

/// What a groups cursor carries: Graph's next link, and whether the list is a search (whose
/// pages need `ConsistencyLevel` again).
#[derive(Serialize, Deserialize)]
struct GroupsCursor {
    #[serde(rename = "l")]
    link: String,
    #[serde(rename = "s", default)]
    searching: bool,
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

/// The `{id}` route parameter.
pub(super) fn group_id(req: &Request) -> Result<GroupId, ApiError> {
    Ok(GroupId::parse(req.param("id"))?)
}

/// `GET /api/groups?search=&top=&cursor=`.
pub async fn list(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let mut search = None;
    let mut top = Top::default_of(DEFAULT_TOP);
    let mut cursor: Option<(crate::microsoft::graph::NextLink, bool)> = None;
    let mut ownership = None;
    let mut raw_cursor = None;
    let scope = CursorScope {
        key: &app.cursors,
        tenant: &caller.tenant.tenant_id,
        route: "groups".into(),
    };
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "ownership" => {
                ownership = Some(match Ownership::parse(&v) {
                    Some(o) if o.is_ownerless() => o,
                    _ => {
                        return Err(ApiError::bad_request(
                            ErrorCode::InvalidInput,
                            "ownership: must be none or disabled",
                        ));
                    }
                })
            }
            "search" => {
                if v.chars().count() > MAX_SEARCH || v.trim().is_empty() {
                    return Err(ApiError::bad_request(
                        ErrorCode::InvalidInput,
                        format!("search: must be 1 to {MAX_SEARCH} characters"),
                    ));
                }
                search = Some(v);
            }
            "top" => top = Top::parse(&v, MAX_TOP)?,
            "cursor" => raw_cursor = Some(v),
            _ => {}
        }
    }
    if let Some(which) = ownership {
        if search.is_some() {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidInput,
                "search: cannot be combined with ownership",
            ));
        }
        return ownerless(app, caller, which, top, raw_cursor).await;
    }
    if let Some(v) = raw_cursor {
        let c: GroupsCursor = Cursor::decode(&scope, &v)?;
        let link = app
            .graph
            .resume(&c.link, Collection::Groups)
            .map_err(|_| invalid_cursor())?;
        cursor = Some((link, c.searching));
    }
    let graph = caller_graph(app, caller).await?;
    let (page, searching) = match cursor {
        Some((link, searching)) => (graph.list_groups_next(&link, searching).await?, searching),
        None => (graph.list_groups(search.as_deref(), top.get()).await?, search.is_some()),
    };
    let ids: Vec<String> = page.value.iter().map(|g| g.id.clone()).collect();
    let rows = match customer_list::location(app.state.as_ref(), &caller.tenant.tenant_id).await {
        Ok(Some(loc)) => customer_list::rows_for(&graph, &loc, &ids).await.unwrap_or_default(),
        // Not synced yet (or our own store is down): Graph data alone is still an answer.
        _ => Default::default(),
    };
    let value = page
        .value
        .iter()
        .map(|g| Group::of(g, rows.get(&g.id).map(|r| &r.row), None))
        .collect();
    let next_cursor = page
        .next_link
        .map(|link| Cursor::encode(&scope, &GroupsCursor { link, searching }));
    Ok(super::json(
        StatusCode::OK,
        &GroupPage {
            value,
            next_cursor,
            ownership_checked_at: None,
        },
    ))
}

/// Where an ownership listing stands: which one, and how far it got.
#[derive(Serialize, Deserialize)]
struct OwnershipCursor {
    #[serde(rename = "w")]
    which: Ownership,
    #[serde(rename = "o")]
    offset: usize,
}

/// `GET /api/groups?ownership=none|disabled` (role `GroupMgr.Admin`): the ownerless groups as
/// the last ownership check after a sync found them (`lifecycle::ownership`), longest
/// ownerless first, read from the customer's list with the caller's rights.
async fn ownerless(
    app: &App,
    caller: &Caller,
    which: Ownership,
    top: Top,
    cursor: Option<String>,
) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let tenant = &caller.tenant.tenant_id;
    let scope = CursorScope {
        key: &app.cursors,
        tenant,
        route: "groups-ownership".into(),
    };
    let offset = match cursor {
        Some(c) => {
            let c: OwnershipCursor = Cursor::decode(&scope, &c)?;
            if c.which != which {
                return Err(invalid_cursor());
            }
            c.offset
        }
        None => 0,
    };
    let state = app.state.as_ref();
    let check = ownership::last_check(state, tenant)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    if which == Ownership::Disabled && check.is_some_and(|c| !c.disabled_known) {
        return Err(ApiError::forbidden(
            ErrorCode::ConsentRequired,
            "telling disabled owners needs the application permission User.Read.All, which this \
             tenant has not granted GroupMgr; ownership=none still works",
        ));
    }
    let location = customer_list::location(state, tenant)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let mut rows = match (location, check) {
        (Some(loc), Some(_)) => {
            let graph = caller_graph(app, caller).await?;
            customer_list::all_rows(&graph, &loc).await?
        }
        // Not checked yet: nothing is known.
        _ => Default::default(),
    }
    .into_values()
    .map(|r| r.row)
    .filter(|r| r.lifecycle == customer_list::Lifecycle::Active && r.ownership == Some(which))
    .collect::<Vec<_>>();
    rows.sort_by(|a, b| {
        a.ownerless_since
            .cmp(&b.ownerless_since)
            .then_with(|| a.group_id.cmp(&b.group_id))
    });
    let end = offset.saturating_add(top.get() as usize);
    let value = rows
        .iter()
        .skip(offset)
        .take(top.get() as usize)
        .map(Group::of_row)
        .collect();
    let next_cursor = (end < rows.len()).then(|| Cursor::encode(&scope, &OwnershipCursor { which, offset: end }));
    let checked = check.map(|c| c.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    Ok(super::json(
        StatusCode::OK,
        &GroupPage {
            value,
            next_cursor,
            ownership_checked_at: Some(checked),
        },
    ))
}

/// `GET /api/groups/{id}`: Graph data, live owner/member counts, and the SharePoint row.
pub async fn get(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(req)?;
    let graph = caller_graph(app, caller).await?;
    let g = unified_group(&graph, &id).await?;
    let (owners, members) = tokio::join!(
        graph.count_relation(&g.id, Relation::Owners),
        graph.count_relation(&g.id, Relation::Members)
    );
    let row = match customer_list::location(app.state.as_ref(), &caller.tenant.tenant_id).await {
        Ok(Some(loc)) => customer_list::row(&graph, &loc, &g.id)
            .await
            .ok()
            .flatten()
            .map(|r| r.row),
        _ => None,
    };
    Ok(super::json(
        StatusCode::OK,
        &Group::of(&g, row.as_ref(), Some((owners?, members?))),
    ))
}

/// `POST /api/groups`: 201 with `Location`. The group gets the names the tenant's naming
/// policy gives it (`GET /api/policy/naming/preview` shows them first); the Graph client
/// makes the create safe to retry under those names.
pub async fn create(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let new = NewGroup::try_from(req.json::<NewGroupBody>()?)?;
    let graph = caller_graph(app, caller).await?;
    let owner = naming::subject(caller);
    let new = match naming::check(
        &graph,
        owner,
        Some(new.display_name().as_str()),
        Some(new.mail_nickname().as_str()),
    )
    .await
    {
        Ok(p) if p.allowed => {
            let nick = p.mail_nickname.as_deref().unwrap_or(new.mail_nickname().as_str());
            let (display, nick) = (DisplayName::parse(&p.display_name)?, MailNickname::parse(nick)?);
            new.renamed(display, nick)
        }
        Ok(p) => return Err(naming::refusal(&p)),
        // A consent given before GroupMgr asked for the check's permission: Graph judges the
        // names at the create itself (handled below).
        Err(e) if e.status() == Some(403) => new,
        Err(e) => return Err(e.into()),
    };
    let created = match graph.create_group(&new, owner).await {
        Ok(g) => g,
        // Refused for a missing prefix or suffix (the policy changed since the check, or it
        // could not be made): once more under the names Graph suggests.
        Err(e) => match naming::suggested_names(
            &e,
            Some(new.display_name().as_str()),
            Some(new.mail_nickname().as_str()),
        ) {
            Some((Some(display), Some(nick))) => {
                let new = new.renamed(DisplayName::parse(&display)?, MailNickname::parse(&nick)?);
                graph.create_group(&new, owner).await?
            }
            _ => return Err(e.into()),
        },
    };
    tracing::info!(event = "group_created", tenant_id = %caller.tenant.tenant_id, group_id = %created.id, group_name = created.display_name.as_deref().unwrap_or(""));
    let mut resp = super::json(StatusCode::CREATED, &Group::of(&created, None, None));
    if let Ok(v) = warp::http::HeaderValue::from_str(&format!("/api/groups/{}", created.id)) {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

/// `PATCH /api/groups/{id}`: 204. A new display name or nickname gets the naming policy's
/// prefix and suffix, as a new group's does.
pub async fn update(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(req)?;
    let update = GroupUpdate::try_from(req.json::<GroupUpdateBody>()?)?;
    let graph = caller_graph(app, caller).await?;
    unified_group(&graph, &id).await?;
    let (display, nick) = (
        update.display_name().map(|d| d.as_str().to_string()),
        update.mail_nickname().map(|n| n.as_str().to_string()),
    );
    let renamed =
        |update: GroupUpdate, display: Option<String>, nick: Option<String>| -> Result<GroupUpdate, ApiError> {
            let display = display.as_deref().map(DisplayName::parse).transpose()?;
            let nick = nick.as_deref().map(MailNickname::parse).transpose()?;
            Ok(update.renamed(display, nick))
        };
    let update = if display.is_none() && nick.is_none() {
        update
    } else {
        match naming::check(&graph, naming::subject(caller), display.as_deref(), nick.as_deref()).await {
            Ok(p) if p.allowed => {
                let display = display.map(|_| p.display_name);
                renamed(update, display, p.mail_nickname)?
            }
            Ok(p) => return Err(naming::refusal(&p)),
            // The check is forbidden: Graph judges the names at the update (handled below).
            Err(e) if e.status() == Some(403) => update,
            Err(e) => return Err(e.into()),
        }
    };
    if let Err(e) = graph.update_group(&id, &update).await {
        let names = (
            update.display_name().map(|d| d.as_str().to_string()),
            update.mail_nickname().map(|n| n.as_str().to_string()),
        );
        match naming::suggested_names(&e, names.0.as_deref(), names.1.as_deref()) {
            Some((display, nick)) => graph.update_group(&id, &renamed(update, display, nick)?).await?,
            None => return Err(e.into()),
        }
    }
    tracing::info!(event = "group_updated", tenant_id = %caller.tenant.tenant_id, group_id = %id);
    Ok(super::no_content())
}

/// `DELETE /api/groups/{id}`: 204; Entra keeps the group restorable for 30 days.
pub async fn delete(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(req)?;
    let graph = caller_graph(app, caller).await?;
    unified_group(&graph, &id).await?;
    graph.delete_group(&id.to_string()).await?;
    tracing::info!(event = "group_deleted", tenant_id = %caller.tenant.tenant_id, group_id = %id);
    Ok(super::no_content())
}

/// `POST /api/groups/{id}/restore`: 200 with the restored group.
pub async fn restore(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let id = group_id(req)?;
    let graph = caller_graph(app, caller).await?;
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
