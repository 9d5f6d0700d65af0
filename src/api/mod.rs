//! HTTP functions, one file per resource: parse the request into domain types, call the
//! domain and clients, map errors to `ApiError`. Handlers never build URLs or SQL.

mod error;
pub mod health;
pub mod logs;

pub use error::ApiError;

use bytes::Bytes;
use warp::http::{Response, StatusCode};

/// A JSON response.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Bytes::from(body.to_string()))
        .expect("static header names and values are valid")
}
