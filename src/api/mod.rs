//! HTTP functions, one file per resource: parse the request into domain types, call the
//! domain and clients, map errors to `ApiError`. Handlers never build URLs or SQL, and never
//! see the host protocol: they get a `Request` (route parameters, query, body).

pub mod activity;
mod error;
pub mod groups;
pub mod health;
pub mod lifecycle;
pub mod logs;
pub mod membership;
pub mod model;
pub mod naming;
pub mod openapi;
mod paging;
pub mod policy;
pub mod successors;
pub mod sync;
mod upstream;

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use upstream::{app_graph, caller_graph};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use warp::http::{Response, StatusCode};

/// What a handler gets of an HTTP request.
#[derive(Debug, Default)]
pub struct Request {
    /// Route parameters (`{id}`, `{userId}`), percent-decoded.
    pub params: Vec<(&'static str, String)>,
    /// The raw query string, without `?`.
    pub query: String,
    pub body: Bytes,
}

impl Request {
    /// A route parameter; the router guarantees the template's parameters are present.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The decoded `name=value` pairs of the query string.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// The JSON object body as `T`. A missing body, one that is not one JSON object (with
    /// nothing after it), or one that does not fit `T` is `400 invalid_input` whose message
    /// starts with the property at fault (`body` for the whole of it).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let invalid = |m: String| ApiError::bad_request(ErrorCode::InvalidInput, m);
        let first = self.body.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            None => return Err(invalid("body: a JSON object is required".into())),
            // serde accepts a struct written as an array; the API's bodies are objects only.
            Some(b) if *b != b'{' => return Err(invalid("body: must be a JSON object".into())),
            Some(_) => {}
        }
        let de = &mut serde_json::Deserializer::from_slice(&self.body);
        let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return invalid("body: not valid JSON".into());
            }
            // serde_json appends " at line L column C"; the property name says more.
            let reason = inner.to_string();
            let reason = reason.split(" at line ").next().unwrap_or_default();
            if let Some(missing) = reason.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
                return invalid(format!("{missing}: is required"));
            }
            // An unknown property is a fault of the body as a whole (it names the property).
            let field = if path == "." || reason.starts_with("unknown field") {
                "body"
            } else {
                path.as_str()
            };
            invalid(format!("{field}: {reason}"))
        })?;
        // Nothing but white space may follow the object.
        de.end().map_err(|_| invalid("body: not valid JSON".into()))?;
        Ok(value)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(raw: &str) -> Request {
        Request {
            body: Bytes::from(raw.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn body_errors_start_with_the_property_at_fault() {
        let err = |raw: &str| body(raw).json::<model::NewGroupBody>().unwrap_err().message;
        assert!(err("{not json").starts_with("body: not valid JSON"));
        assert!(err("").starts_with("body:"));
        assert!(err(r#"{"displayName":"x","mailNickname":"x","members":[1]}"#).starts_with("members"));
        assert!(err(r#"{"displayName":5,"mailNickname":"x"}"#).starts_with("displayName"));
        assert!(err(r#"{"displayName":"x","mailNickname":"x","visibility":"Secret"}"#).starts_with("visibility"));
        assert!(err(r#"{"displayName":"x","mailNickname":"x","groupTypes":[]}"#).starts_with("body"));
        assert_eq!(err(r#"{"mailNickname":"x"}"#), "displayName: is required");
        assert!(
            !err(r#"{"displayName":5,"mailNickname":"x"}"#).contains("line"),
            "no positions"
        );
        assert_eq!(
            err(r#"{"displayName":"x","mailNickname":"y"}garbage"#),
            "body: not valid JSON"
        );
        assert_eq!(
            err(r#"{"displayName":"x","mailNickname":"y"}{}"#),
            "body: not valid JSON"
        );
        assert_eq!(err(r#"["x","y"]"#), "body: must be a JSON object");
        assert!(
            body(" {\"displayName\":\"x\",\"mailNickname\":\"y\"}\n")
                .json::<model::NewGroupBody>()
                .is_ok(),
            "white space around the object is fine"
        );
    }
}
