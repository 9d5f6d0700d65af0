//! Microsoft Graph v1.0 as GroupMgr uses it (graph-groups.md, graph-settings-activity.md):
//! groups, owners and members, delta, group settings, SharePoint sites/lists/items, teams, and
//! JSON batching. Requests are authorised the way Graph does it: a token for the Graph
//! resource signed by the sim's keys, delegated scopes or application roles, and for
//! delegated writes the caller must own the group or be a directory admin.

mod batch;
mod groups;
pub mod model;
pub mod naming;
pub mod reports;
mod settings;
mod sites;
pub mod teams;
mod users;

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use bytes::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;
use warp::http::{Method, Response, StatusCode};

use crate::SimState;
use crate::directory::SimTenant;
use crate::login::GRAPH_RESOURCE;
pub use model::TenantGraph;
pub(crate) use reports::report_download;

/// Graph data of every tenant.
#[derive(Default)]
pub struct GraphData {
    pub tenants: Mutex<HashMap<Uuid, TenantGraph>>,
}

/// Who is calling Graph.
#[derive(Debug, Clone)]
pub struct GraphCaller {
    pub tenant: SimTenant,
    /// The signed-in user (delegated tokens); `None` for app-only tokens.
    pub user: Option<Uuid>,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
}

impl GraphCaller {
    /// Whether any of `permissions` was granted (as a delegated scope or an app role).
    pub fn has_any(&self, permissions: &[&str]) -> bool {
        permissions
            .iter()
            .any(|p| self.scopes.iter().any(|s| s == p) || self.roles.iter().any(|r| r == p))
    }

    pub fn is_directory_admin(&self) -> bool {
        self.user
            .and_then(|u| self.tenant.user_by_id(&u))
            .is_some_and(|u| u.directory_admin)
    }
}

/// A request as a Graph handler sees it (top-level or inside a `$batch`).
pub struct GraphRequest<'a> {
    pub method: Method,
    /// Path below `/v1.0`, e.g. `/groups/{id}`.
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: &'a warp::http::HeaderMap,
    pub body: Value,
    pub caller: &'a GraphCaller,
}

impl GraphRequest<'_> {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A Graph answer before it becomes HTTP.
pub struct GraphReply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// A non-JSON body (`$count`).
    pub text: Option<String>,
}

impl GraphReply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            headers: vec![],
            text: None,
        }
    }
    pub fn created(body: Value) -> Self {
        Self {
            status: StatusCode::CREATED,
            body: Some(body),
            headers: vec![],
            text: None,
        }
    }
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: vec![],
            text: None,
        }
    }
    pub fn text(t: String) -> Self {
        Self {
            status: StatusCode::OK,
            body: None,
            headers: vec![("content-type", "text/plain".into())],
            text: Some(t),
        }
    }
    /// Graph's error envelope (graph-groups.md §8).
    pub fn error(status: StatusCode, code: &str, message: &str) -> Self {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        Self {
            status,
            body: Some(json!({"error": {"code": code, "message": message, "innerError": {
                "date": now, "request-id": Uuid::new_v4().to_string(), "client-request-id": Uuid::new_v4().to_string()
            }}})),
            headers: vec![],
            text: None,
        }
    }
    /// The error with Graph's `details` (validation failures).
    pub fn with_details(mut self, details: Vec<Value>) -> Self {
        if let Some(body) = self.body.as_mut() {
            body["error"]["details"] = Value::Array(details);
        }
        self
    }
    pub fn denied() -> Self {
        Self::error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }
    pub fn not_found(id: &str) -> Self {
        Self::error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }
    pub fn bad_request(message: &str) -> Self {
        Self::error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }
    pub fn throttled(retry_after: &str) -> Self {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: Some(json!({"error": {"code": "TooManyRequests", "innerError": {
                "code": "429", "date": now, "message": "Please retry after", "request-id": Uuid::new_v4().to_string(), "status": "429"
            }, "message": "Please retry again later."}})),
            headers: vec![("retry-after", retry_after.to_string())],
            text: None,
        }
    }

    pub fn into_response(self) -> Response<Bytes> {
        let mut builder = Response::builder().status(self.status);
        for (k, v) in &self.headers {
            builder = builder.header(*k, v.as_str());
        }
        let body = match (self.text, self.body) {
            (Some(t), _) => Bytes::from(t),
            (None, Some(b)) => {
                builder = builder.header("content-type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8");
                Bytes::from(b.to_string())
            }
            (None, None) => Bytes::new(),
        };
        builder.body(body).expect("valid response")
    }
}

/// Verifies an access token the sim issued for `resource` and returns its claims.
pub(crate) fn verify_token(
    state: &SimState,
    headers: &warp::http::HeaderMap,
    resource: &str,
) -> Result<Value, &'static str> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("Access token is empty.")?;
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("Access token is malformed.");
    };
    let header: Value = B64URL
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("Access token is malformed.")?;
    let claims: Value = B64URL
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("Access token is malformed.")?;
    let sig = B64URL.decode(s).map_err(|_| "Access token is malformed.")?;
    let kid = header["kid"].as_str().unwrap_or_default();
    let key = state
        .published_keys()
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or("Access token signature is invalid.")?;
    if !key.verify(format!("{h}.{p}").as_bytes(), &sig) {
        return Err("Access token signature is invalid.");
    }
    if claims["aud"] != resource {
        return Err("Access token validation failure. Invalid audience.");
    }
    if claims["exp"].as_i64().unwrap_or(0) <= chrono::Utc::now().timestamp() {
        return Err("Lifetime validation failed, the token is expired.");
    }
    Ok(claims)
}

/// Verifies a Graph access token the sim issued and returns the caller.
fn authenticate(state: &SimState, headers: &warp::http::HeaderMap) -> Result<GraphCaller, GraphReply> {
    let unauth = |m: &str| GraphReply::error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let claims = verify_token(state, headers, GRAPH_RESOURCE).map_err(unauth)?;
    let tenant = claims["tid"]
        .as_str()
        .and_then(|t| t.parse::<Uuid>().ok())
        .and_then(|t| state.tenant(&t))
        .ok_or_else(|| unauth("Access token validation failure."))?;
    let user = if claims["idtyp"] == "user" {
        claims["oid"].as_str().and_then(|o| o.parse().ok())
    } else {
        None
    };
    let scopes = claims["scp"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let roles = claims["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(GraphCaller {
        tenant,
        user,
        scopes,
        roles,
    })
}

pub(crate) fn parse_query(raw: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

/// An absolute URL on the sim's Graph for a path below `/v1.0` and a query. Names are
/// written as Graph writes them (`$skiptoken`, not `%24skiptoken`); values are encoded.
pub(crate) fn absolute(state: &SimState, path: &str, query: &[(&str, String)]) -> String {
    const VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut url = format!("{}/v1.0{path}", state.base_url());
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        url.push_str(&percent_encoding::utf8_percent_encode(v, VALUE).to_string());
    }
    url
}

/// Pages a collection: `$top` (default `default_top`, capped at `max_top`) and an opaque
/// `$skiptoken` carrying the offset. Returns the page and its `@odata.nextLink`.
/// One page of `items` by `$top` (default `default_top`, at most `max_top`) and `$skiptoken`;
/// the server returns at most `server_max` whatever `$top` asks (server-driven paging).
pub(crate) fn page<T: Clone>(
    state: &SimState,
    req: &GraphRequest<'_>,
    items: &[T],
    default_top: usize,
    max_top: usize,
    server_max: usize,
) -> Result<(Vec<T>, Option<String>), GraphReply> {
    let top = match req.q("$top") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max_top).contains(n))
            .ok_or_else(|| {
                GraphReply::bad_request(&format!(
                    "Invalid page size specified: '{t}'. Must be between 1 and {max_top} inclusive."
                ))
            })?,
        None => default_top,
    }
    .min(server_max);
    let offset = match req.q("$skiptoken") {
        Some(t) => B64URL
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| GraphReply::bad_request("Invalid $skiptoken."))?,
        None => 0,
    };
    let end = (offset + top).min(items.len());
    let page = items.get(offset..end).unwrap_or_default().to_vec();
    let next = (end < items.len()).then(|| {
        let mut q: Vec<(&str, String)> = req
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "$skiptoken")
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        q.sort();
        q.push(("$skiptoken", B64URL.encode(format!("o:{end}"))));
        absolute(state, &req.path, &q)
    });
    Ok((page, next))
}

/// Projects a full representation onto `$select` (Graph returns only what is selected).
pub(crate) fn select(full: Value, sel: Option<&str>) -> Value {
    let Some(sel) = sel else { return full };
    let Value::Object(obj) = full else {
        return full;
    };
    let wanted: Vec<&str> = sel.split(',').map(str::trim).collect();
    Value::Object(
        obj.into_iter()
            .filter(|(k, _)| wanted.contains(&k.as_str()) || k.starts_with('@'))
            .collect(),
    )
}

/// Dispatches one Graph request (also used for the items of a `$batch`).
pub(crate) fn dispatch(state: &SimState, req: &GraphRequest<'_>) -> GraphReply {
    if req.method != Method::GET {
        *state
            .graph_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((req.method.to_string(), req.path.to_string()))
            .or_default() += 1;
    }
    // OData keys in parentheses (`teams('{id}')/operations('{op}')`, quoted or not: the form
    // of a teams async operation's Location) address what `teams/{id}/operations/{op}` does
    // (OData URL conventions §4.3, "Addressing entities").
    let segs: Vec<&str> = req
        .path
        .trim_start_matches('/')
        .split('/')
        .flat_map(|s| match s.strip_suffix(')').and_then(|s| s.split_once('(')) {
            // A key, not a function's parameters (`getTeamsTeamActivityDetail(period='D7')`)
            // nor an empty call (`delta()`).
            Some((name, key)) if !name.is_empty() && !key.is_empty() && !key.contains('=') => {
                vec![name, key.trim_matches('\'')]
            }
            _ => vec![s],
        })
        .collect();
    let m = req.method.as_str();
    match (m, segs.as_slice()) {
        (_, ["groups", ..])
        | (_, ["directory", ..])
        | (_, ["directoryObjects", "validateProperties"])
        | (_, ["teams", ..]) => groups::handle(state, req, &segs),
        (_, ["groupSettings", ..]) | (_, ["groupSettingTemplates", ..]) => settings::handle(state, req, &segs),
        (_, ["sites", ..]) => sites::handle(state, req, &segs),
        (_, ["reports", ..]) | (_, ["admin", "reportSettings"]) => reports::handle(state, req, &segs),
        (_, ["users", ..]) => users::handle(state, req, &segs),
        _ => GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{}'.", segs.first().unwrap_or(&"")),
        ),
    }
}

/// Entry point for `/v1.0/...` over HTTP.
pub(crate) fn handle_http(
    state: &SimState,
    method: &Method,
    path: &str,
    query: &str,
    headers: &warp::http::HeaderMap,
    body: &Bytes,
) -> Response<Bytes> {
    let caller = match authenticate(state, headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return GraphReply::bad_request("Unable to read JSON request payload.").into_response();
            }
        }
    };
    let sub_path = path.strip_prefix("/v1.0").unwrap_or(path);
    if sub_path == "/$batch" && method == Method::POST {
        return batch::handle(state, &caller, headers, &body).into_response();
    }
    let req = GraphRequest {
        method: method.clone(),
        path: percent_encoding::percent_decode_str(sub_path)
            .decode_utf8_lossy()
            .into_owned(),
        query: parse_query(query),
        headers,
        body,
        caller: &caller,
    };
    dispatch(state, &req).into_response()
}
