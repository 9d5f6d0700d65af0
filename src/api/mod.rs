//! HTTP functions, one file per resource: parse the request into domain types, call the
//! domain and clients, map errors to `ApiError`. Handlers never build URLs or SQL.

pub mod activity;
mod error;
pub mod groups;
pub mod health;
pub mod logs;
pub mod membership;
pub mod model;
pub mod openapi;
pub mod policy;
pub mod sync;
pub mod upstream;

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};

use bytes::Bytes;
use warp::http::{Response, StatusCode};

/// A JSON response.
pub fn json<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Bytes> {
    // Our bodies are structs and JSON values with string keys: serialising cannot fail.
    let body = serde_json::to_vec(body).expect("API bodies serialise to JSON");
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Bytes::from(body))
        .expect("static header names and values are valid")
}

/// A 204 answer.
pub fn no_content() -> Response<Bytes> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Bytes::new())
        .expect("static response is valid")
}

/// Refuses callers without the `GroupMgr.Admin` app role (`403 role_required`).
pub fn require_admin(caller: &crate::auth::Caller) -> Result<(), ApiError> {
    use crate::auth::ADMIN_ROLE;
    if caller.principal.has_role(ADMIN_ROLE) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            ErrorCode::RoleRequired,
            format!("the {ADMIN_ROLE} app role is required"),
        ))
    }
}

/// The decoded `name=value` pairs of a query string.
pub fn query_params(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
