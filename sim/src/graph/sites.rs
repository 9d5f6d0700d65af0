//! SharePoint through Graph (graph-settings-activity.md §5): the root site, sites by path,
//! lists (find by `displayName`, create with columns) and list items (create, update fields,
//! filter on an indexed column, expand fields).

use serde_json::{Map, Value, json};
use uuid::Uuid;
use warp::http::StatusCode;

use super::GraphCaller;
use super::model::{SiteRole, SpList, TenantGraph};
use super::{GraphReply, GraphRequest, page};
use crate::SimState;

const READ: &[&str] = &[
    "Sites.Read.All",
    "Sites.ReadWrite.All",
    "Sites.Manage.All",
    "Sites.FullControl.All",
];
const WRITE: &[&str] = &["Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"];
const MANAGE: &[&str] = &["Sites.Manage.All", "Sites.FullControl.All"];
const SELECTED: &[&str] = &["Sites.Selected"];

/// What the caller may do on one site: its tenant-wide `Sites.*` permission, or — for an app
/// holding `Sites.Selected` — the role a tenant admin granted it on that site (no grant: no
/// access, Graph's 403).
fn access(c: &GraphCaller, t: &TenantGraph, site: &str) -> SiteRole {
    let wide = if c.has_any(MANAGE) {
        SiteRole::Manage
    } else if c.has_any(WRITE) {
        SiteRole::Write
    } else if c.has_any(READ) {
        SiteRole::Read
    } else {
        SiteRole::None
    };
    let selected = if c.user.is_none() && c.has_any(SELECTED) {
        t.selected_sites.get(site).copied().unwrap_or(SiteRole::None)
    } else {
        SiteRole::None
    };
    wide.max(selected)
}

fn site_json(state: &SimState, host: &str, id: &str, path: &str) -> Value {
    let name = path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("Communication site");
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#sites/$entity", state.base_url()),
        "id": id,
        "name": name,
        "displayName": name,
        "webUrl": format!("https://{host}{}", if path == "/" { "" } else { path }),
        "siteCollection": {"hostname": host},
    })
}

fn item_json(list: &SpList, id: u64, fields: &Map<String, Value>, expand: bool) -> Value {
    let mut f = fields.clone();
    f.insert("id".into(), json!(id.to_string()));
    f.insert("@odata.etag".into(), json!(list.etag(id)));
    let mut v = json!({
        "id": id.to_string(),
        "eTag": list.etag(id),
        "createdDateTime": "2026-01-01T00:00:00Z",
    });
    if expand {
        v["fields"] = Value::Object(f);
    }
    v
}

/// The most characters a text column holds: its `maxLength`, 255 for a single line of text
/// (Graph `textColumn`: "maxLength … The maximum number of characters for the value";
/// SharePoint "List and library column types and options": single line of text, up to 255
/// characters). `Title` is a single line of text. Multiple lines (`allowMultipleLines`) are
/// not held to 255. SharePoint counts characters as .NET does, in UTF-16 code units.
fn text_limit(list: &SpList, name: &str) -> Option<usize> {
    if name == "Title" {
        return Some(255);
    }
    let col = list
        .columns
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))?;
    let text = col.get("text")?;
    if text.get("allowMultipleLines") == Some(&json!(true)) {
        return None;
    }
    Some(
        text.get("maxLength")
            .and_then(Value::as_u64)
            .map_or(255, |n| n as usize),
    )
}

/// SharePoint refuses a value longer than its column holds, whole item and all (the 400 a
/// 256-character group name meets in `Title`).
fn too_long(list: &SpList, fields: &Map<String, Value>) -> Option<GraphReply> {
    fields.iter().find_map(|(name, v)| {
        let limit = text_limit(list, name)?;
        let len = v.as_str()?.encode_utf16().count();
        (len > limit).then(|| {
            GraphReply::error(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                &format!("The value of field '{name}' exceeds the maximum length of {limit} characters."),
            )
        })
    })
}

/// SharePoint throttles heavy list writers (Microsoft Learn, "Avoid getting throttled or
/// blocked in SharePoint Online": 429 with `Retry-After`). The sim answers one write in
/// `every` with a 429 when its option says so.
fn throttle_write(state: &SimState, t: &mut TenantGraph) -> Option<GraphReply> {
    let every = state.options.list_write_throttle?;
    t.list_writes += 1;
    t.list_writes
        .is_multiple_of(every.max(1))
        .then(|| GraphReply::throttled("1"))
}

/// The list column names a fields object may use.
fn known_columns(list: &SpList) -> Vec<String> {
    let mut names: Vec<String> = list
        .columns
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    names.push("Title".into());
    names
}

pub fn handle(state: &SimState, req: &GraphRequest<'_>, segs: &[&str]) -> GraphReply {
    let c = req.caller;
    if !c.has_any(READ) && !c.has_any(SELECTED) {
        return GraphReply::denied();
    }
    let mut all = state.graph.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let t = state.ensure_graph(&mut all, &c.tenant);
    let host = t.hostname.clone();
    let m = req.method.as_str();
    // /sites/{hostname}:/{path}
    if m == "GET" && segs.len() >= 2 && segs[1].ends_with(':') {
        let hostname = segs[1].trim_end_matches(':');
        let path = format!("/{}", segs[2..].join("/"));
        return match t.sites.get(&path) {
            Some(id) if hostname.eq_ignore_ascii_case(&host) && access(c, t, id) == SiteRole::None => {
                GraphReply::denied()
            }
            Some(id) if hostname.eq_ignore_ascii_case(&host) => GraphReply::ok(site_json(state, &host, id, &path)),
            _ => GraphReply::error(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "Requested site could not be found",
            ),
        };
    }
    let site_of = |id: &str| {
        t.sites
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, v)| (k.clone(), v.clone()))
    };
    match (m, segs) {
        ("GET", ["sites", "root"]) => {
            let id = t.root_site.clone();
            if access(c, t, &id) == SiteRole::None {
                return GraphReply::denied();
            }
            GraphReply::ok(site_json(state, &host, &id, "/"))
        }
        ("GET", ["sites", id]) => match site_of(id) {
            Some((_, id)) if access(c, t, &id) == SiteRole::None => GraphReply::denied(),
            Some((path, id)) => GraphReply::ok(site_json(state, &host, &id, &path)),
            None => GraphReply::error(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "Requested site could not be found",
            ),
        },
        ("GET", ["sites", site, "lists"]) => {
            if access(c, t, site) == SiteRole::None {
                return GraphReply::denied();
            }
            if site_of(site).is_none() {
                return GraphReply::error(
                    StatusCode::NOT_FOUND,
                    "itemNotFound",
                    "Requested site could not be found",
                );
            }
            let lists = t.lists.get(*site).cloned().unwrap_or_default();
            let wanted = req
                .q("$filter")
                .and_then(|f| f.strip_prefix("displayName eq '"))
                .and_then(|r| r.strip_suffix('\''))
                .map(|n| n.replace("''", "'"));
            let value: Vec<Value> = lists
                .iter()
                .filter(|l| wanted.as_ref().is_none_or(|w| *w == l.display_name))
                .map(|l| json!({"id": l.id.to_string(), "displayName": l.display_name, "name": l.display_name.replace(' ', "")}))
                .collect();
            GraphReply::ok(json!({"value": value}))
        }
        ("POST", ["sites", site, "lists"]) => {
            if access(c, t, site) < SiteRole::Manage {
                return GraphReply::denied();
            }
            if site_of(site).is_none() {
                return GraphReply::error(
                    StatusCode::NOT_FOUND,
                    "itemNotFound",
                    "Requested site could not be found",
                );
            }
            let Some(name) = req.body.get("displayName").and_then(Value::as_str) else {
                return GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "displayName is required");
            };
            let lists = t.lists.entry(site.to_string()).or_default();
            if lists.iter().any(|l| l.display_name == name) {
                return GraphReply::error(
                    StatusCode::CONFLICT,
                    "nameAlreadyExists",
                    "A list with this name already exists.",
                );
            }
            let list = SpList {
                id: Uuid::new_v4(),
                display_name: name.to_string(),
                columns: req
                    .body
                    .get("columns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                items: Default::default(),
                next_item: 1,
                versions: Default::default(),
                index: Default::default(),
            };
            let body = json!({"id": list.id.to_string(), "displayName": list.display_name, "list": {"template": "genericList"}});
            lists.push(list);
            GraphReply::created(body)
        }
        // Graph "Delete list": 204, the list and its items gone.
        ("DELETE", ["sites", site, "lists", list]) => {
            if access(c, t, site) < SiteRole::Manage {
                return GraphReply::denied();
            }
            let lists = t.lists.entry(site.to_string()).or_default();
            let before = lists.len();
            lists.retain(|l| l.id.to_string() != *list);
            if lists.len() == before {
                return GraphReply::error(StatusCode::NOT_FOUND, "itemNotFound", "The list was not found");
            }
            GraphReply::no_content()
        }
        (_, ["sites", site, "lists", list, rest @ ..]) => {
            let role = access(c, t, site);
            if role == SiteRole::None {
                return GraphReply::denied();
            }
            if m != "GET"
                && matches!(rest, ["items", ..])
                && role >= SiteRole::Write
                && let Some(r) = throttle_write(state, t)
            {
                return r;
            }
            let Some(l) = t
                .lists
                .get_mut(*site)
                .and_then(|ls| ls.iter_mut().find(|l| l.id.to_string() == *list))
            else {
                return GraphReply::error(StatusCode::NOT_FOUND, "itemNotFound", "The list was not found");
            };
            match rest {
                ["items", rest @ ..] => items(state, req, l, m, rest, role),
                ["columns"] => columns(req, l, m, role),
                _ => GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid request"),
            }
        }
        _ => GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid request"),
    }
}

/// Graph "List columnDefinitions in a list" and "Create columnDefinition" (on a list): the
/// list's own columns plus the built-in `Title`; a new column's name must be unused.
fn columns(req: &GraphRequest<'_>, l: &mut SpList, m: &str, role: SiteRole) -> GraphReply {
    match m {
        "GET" => {
            let mut value = vec![
                json!({"name": "Title", "displayName": "Title", "text": {"allowMultipleLines": false, "maxLength": 255}}),
            ];
            value.extend(l.columns.iter().cloned());
            GraphReply::ok(json!({"value": value}))
        }
        "POST" => {
            if role < SiteRole::Manage {
                return GraphReply::denied();
            }
            let Some(name) = req.body.get("name").and_then(Value::as_str) else {
                return GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "name is required");
            };
            if known_columns(l).iter().any(|k| k == name) {
                return GraphReply::error(
                    StatusCode::CONFLICT,
                    "nameAlreadyExists",
                    &format!("A duplicate field name \"{name}\" was found."),
                );
            }
            l.columns.push(req.body.clone());
            GraphReply::created(req.body.clone())
        }
        _ => GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid request"),
    }
}

fn items(
    state: &SimState,
    req: &GraphRequest<'_>,
    l: &mut SpList,
    m: &str,
    rest: &[&str],
    role: SiteRole,
) -> GraphReply {
    let expand = req
        .q("expand")
        .or(req.q("$expand"))
        .is_some_and(|e| e.starts_with("fields"));
    match (m, rest) {
        ("GET", []) => {
            let rows: Vec<(u64, &Map<String, Value>)>;
            if let Some(filter) = req.q("$filter") {
                // fields/<Column> eq '<value>' — only on indexed columns, as SharePoint requires.
                let Some((col, val)) = filter
                    .strip_prefix("fields/")
                    .and_then(|r| r.split_once(" eq '"))
                    .map(|(c, v)| (c.to_string(), v.trim_end_matches('\'').replace("''", "'")))
                else {
                    return GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid filter clause");
                };
                let indexed = l.columns.iter().any(|cd| {
                    cd.get("name").and_then(Value::as_str) == Some(col.as_str())
                        && cd.get("indexed") == Some(&json!(true))
                });
                if !indexed
                    && req
                        .header("prefer")
                        .is_none_or(|p| !p.contains("HonorNonIndexedQueriesWarningMayFailRandomly"))
                {
                    return GraphReply::error(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        &format!(
                            "Field '{col}' cannot be referenced in filter or orderby as it is not indexed. Provide the 'Prefer: HonorNonIndexedQueriesWarningMayFailRandomly' header to allow this, but be warned that such queries may fail on large lists."
                        ),
                    );
                }
                if indexed {
                    rows = l
                        .lookup(&col, &val)
                        .into_iter()
                        .filter_map(|id| l.items.get(&id).map(|f| (id, f)))
                        .collect();
                } else {
                    rows = l
                        .items
                        .iter()
                        .filter(|(_, f)| f.get(&col).and_then(Value::as_str) == Some(val.as_str()))
                        .map(|(k, v)| (*k, v))
                        .collect();
                }
            } else {
                rows = l.items.iter().map(|(k, v)| (*k, v)).collect();
            }
            // SharePoint pages server-side: never more than the sim's list page, whatever `$top`.
            let list_page = state.options.paging.list_items_page.max(1);
            let (page_rows, next) = match page(state, req, &rows, 200.min(list_page), 999, list_page) {
                Ok(p) => p,
                Err(e) => return e,
            };
            let value: Vec<Value> = page_rows.iter().map(|(id, f)| item_json(l, *id, f, expand)).collect();
            let mut body = json!({"value": value});
            if let Some(n) = next {
                body["@odata.nextLink"] = json!(n);
            }
            GraphReply::ok(body)
        }
        ("POST", []) => {
            if role < SiteRole::Write {
                return GraphReply::denied();
            }
            let Some(fields) = req.body.get("fields").and_then(Value::as_object).cloned() else {
                return GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "fields are required");
            };
            let known = known_columns(l);
            if let Some(k) = fields.keys().find(|k| !known.contains(k)) {
                return GraphReply::error(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    &format!("Field '{k}' is not recognized"),
                );
            }
            // Unique columns stay unique (they are indexed, as SharePoint requires).
            for cd in &l.columns {
                if cd.get("enforceUniqueValues") == Some(&json!(true))
                    && let Some(name) = cd.get("name").and_then(Value::as_str)
                    && let Some(v) = fields.get(name)
                    && match v.as_str() {
                        Some(text) if cd.get("indexed") == Some(&json!(true)) => !l.lookup(name, text).is_empty(),
                        _ => l.items.values().any(|f| f.get(name) == Some(v)),
                    }
                {
                    return GraphReply::error(
                        StatusCode::CONFLICT,
                        "nameAlreadyExists",
                        "The list item could not be added or updated because duplicate values were found in one or more fields in the list.",
                    );
                }
            }
            if let Some(refused) = too_long(l, &fields) {
                return refused;
            }
            let id = l.next_item;
            l.next_item += 1;
            let fields: Map<String, Value> = fields.into_iter().filter(|(_, v)| !v.is_null()).collect();
            l.items.insert(id, fields.clone());
            l.versions.insert(id, 1);
            l.index_item(id, &fields, true);
            GraphReply::created(item_json(l, id, &fields, true))
        }
        ("PATCH", [id, "fields"]) => {
            if role < SiteRole::Write {
                return GraphReply::denied();
            }
            let Some(id) = id.parse::<u64>().ok().filter(|i| l.items.contains_key(i)) else {
                return GraphReply::error(
                    StatusCode::NOT_FOUND,
                    "itemNotFound",
                    "The specified list item was not found",
                );
            };
            let Some(patch) = req.body.as_object().cloned() else {
                return GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid request");
            };
            let known = known_columns(l);
            if let Some(k) = patch.keys().find(|k| !known.contains(k)) {
                return GraphReply::error(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    &format!("Field '{k}' is not recognized"),
                );
            }
            if let Some(refused) = too_long(l, &patch) {
                return refused;
            }
            // Graph "Update listItem": with `If-Match`, an item whose eTag has moved on is left
            // alone and the answer is 412 (Graph errors: 412 Precondition Failed,
            // `resourceModified` "usually an eTag mismatch").
            if let Some(tag) = req.header("if-match")
                && tag != "*"
                && tag != l.etag(id)
            {
                return GraphReply::error(
                    StatusCode::PRECONDITION_FAILED,
                    "resourceModified",
                    "The item has been modified since it was last read.",
                );
            }
            l.touch(id);
            if let Some(old) = l.items.get(&id).cloned() {
                l.index_item(id, &old, false);
            }
            let Some(fields) = l.items.get_mut(&id) else {
                return GraphReply::error(
                    StatusCode::NOT_FOUND,
                    "itemNotFound",
                    "The specified list item was not found",
                );
            };
            for (k, v) in patch {
                if v.is_null() {
                    fields.remove(&k);
                } else {
                    fields.insert(k, v);
                }
            }
            let mut out = fields.clone();
            l.index_item(id, &out, true);
            out.insert("@odata.etag".into(), json!(l.etag(id)));
            GraphReply::ok(Value::Object(out))
        }
        ("DELETE", [id]) => {
            if role < SiteRole::Write {
                return GraphReply::denied();
            }
            match id.parse::<u64>().ok().and_then(|i| l.items.remove(&i).map(|f| (i, f))) {
                Some((i, f)) => {
                    l.index_item(i, &f, false);
                    GraphReply::no_content()
                }
                None => GraphReply::error(
                    StatusCode::NOT_FOUND,
                    "itemNotFound",
                    "The specified list item was not found",
                ),
            }
        }
        _ => GraphReply::error(StatusCode::BAD_REQUEST, "invalidRequest", "Invalid request"),
    }
}
