//! The one error shape of the HTTP API: `{"error":{"code":"<stable_snake_case>","message":"…"}}`
//! with the right status. Codes are a contract with the UI; messages are for people and never
//! contain tokens, UPNs or other caller secrets.

use bytes::Bytes;
use serde_json::json;
use warp::http::{HeaderValue, Response, StatusCode};

use crate::auth::{GateError, Refused, TokenError};

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// A function whose logic is not built yet: an honest 501, never a fake success.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("{what} is not implemented yet"),
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn into_response(self) -> Response<Bytes> {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = super::json(self.status, &body);
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        r.error.into()
    }
}

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        let message = e.to_string();
        match e {
            GateError::Token(TokenError::Missing) => Self::new(StatusCode::UNAUTHORIZED, "missing_token", message)
                .with_header("www-authenticate", "Bearer realm=\"GroupMgr\""),
            GateError::Token(TokenError::Invalid(reason)) => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_token", message).with_header(
                    "www-authenticate",
                    format!("Bearer realm=\"GroupMgr\", error=\"invalid_token\", error_description=\"{reason}\""),
                )
            }
            GateError::Token(TokenError::KeysUnavailable) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_provider_unavailable",
                "Entra ID signing keys could not be fetched; retry shortly",
            )
            .with_header("retry-after", "5"),
            GateError::TenantNotRegistered => Self::forbidden("tenant_not_registered", message),
            GateError::TenantSuspended => Self::forbidden("tenant_suspended", message),
            GateError::TenantOffboarded => Self::forbidden("tenant_offboarded", message),
            GateError::LicenceExpired => Self::forbidden("license_expired", message),
            GateError::SeatsExhausted => Self::forbidden("license_seats_exhausted", message),
            GateError::UserRequired => Self::forbidden("user_token_required", message),
            GateError::Store(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "GroupMgr's database is unavailable; retry shortly",
            )
            .with_header("retry-after", "5"),
        }
    }
}
