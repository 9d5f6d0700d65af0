//! JSON batching (graph-groups.md §10): at most 20 requests; each is answered on its own —
//! throttled or failed items come back inside a 200 — and `dependsOn` failures give 424.
//! Faults armed on the sim apply to items too, so a test can throttle one item of a batch.

use std::collections::HashSet;

use base64::Engine as _;

use serde_json::{Map, Value, json};
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use super::{GraphCaller, GraphReply, GraphRequest, dispatch, parse_query};
use crate::{FaultKind, SimState};

pub fn handle(state: &SimState, caller: &GraphCaller, _headers: &HeaderMap, body: &Value) -> GraphReply {
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return GraphReply::error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid batch payload format.");
    };
    if requests.len() > 20 {
        return GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Number of batch requests must not exceed 20.",
        );
    }
    let mut seen = HashSet::new();
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).unwrap_or_default().to_lowercase();
        if id.is_empty() || !seen.insert(id) {
            return GraphReply::error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Batch request ids must be present and unique.",
            );
        }
    }
    let mut failed: HashSet<String> = HashSet::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let depends: Vec<String> = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let reply = if depends.iter().any(|d| failed.contains(d)) {
            GraphReply::error(StatusCode::FAILED_DEPENDENCY, "BadRequest", "Failed dependency.")
        } else {
            run_item(state, caller, r)
        };
        if !reply.status.is_success() {
            failed.insert(id.clone());
        }
        let mut headers = Map::new();
        for (k, v) in &reply.headers {
            let name = match *k {
                "retry-after" => "Retry-After",
                "content-type" => "Content-Type",
                other => other,
            };
            headers.insert(name.to_string(), json!(v));
        }
        if reply.body.is_some() {
            headers.insert("Content-Type".into(), json!("application/json"));
        }
        let body = match (reply.body, reply.text) {
            (Some(b), _) => b,
            // A body that is not JSON (`$count` answers `text/plain`) comes back base64-encoded
            // inside the JSON batch: by design, as Microsoft Q&A 1352007 ("Using Batching With
            // the Graph API Returns the Body Response As Base64") confirms; the JSON batching
            // page (learn.microsoft.com/graph/json-batching) shows JSON bodies only.
            (None, Some(t)) => json!(base64::engine::general_purpose::STANDARD.encode(t)),
            (None, None) => Value::Null,
        };
        let mut item = json!({"id": id, "status": reply.status.as_u16(), "headers": headers});
        if !body.is_null() {
            item["body"] = body;
        }
        responses.push(item);
    }
    GraphReply::ok(json!({"responses": responses}))
}

fn run_item(state: &SimState, caller: &GraphCaller, r: &Value) -> GraphReply {
    let method = r
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    let url = r.get("url").and_then(Value::as_str);
    let (Some(method), Some(url)) = (method, url) else {
        return GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Each batch request needs a method and a url.",
        );
    };
    let url = if url.starts_with('/') {
        url.to_string()
    } else {
        format!("/{url}")
    };
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    if r.get("body").is_some()
        && r.get("headers")
            .and_then(|h| h.get("Content-Type").or_else(|| h.get("content-type")))
            .is_none()
    {
        return GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Content-Type header is required when a body is given.",
        );
    }
    if let Some(FaultKind::Status {
        status,
        code,
        retry_after,
    }) = state.faults.take(method.as_str(), &format!("/v1.0{path}"))
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut reply = if status == StatusCode::TOO_MANY_REQUESTS {
            GraphReply::throttled(retry_after.as_deref().unwrap_or("1"))
        } else {
            GraphReply::error(status, &code, "Injected fault.")
        };
        if status != StatusCode::TOO_MANY_REQUESTS
            && let Some(ra) = retry_after
        {
            reply.headers.push(("retry-after", ra));
        }
        return reply;
    }
    let mut headers = HeaderMap::new();
    if let Some(h) = r.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(k.to_lowercase().as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                headers.insert(name, value);
            }
        }
    }
    let req = GraphRequest {
        method,
        path: percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned(),
        query: parse_query(query),
        headers: &headers,
        body: r.get("body").cloned().unwrap_or(Value::Null),
        caller,
    };
    dispatch(state, &req)
}
