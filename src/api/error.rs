//! The one error shape of the HTTP API: `{"error":{"code":"<stable_snake_case>","message":"…"}}`
//! with the right status. Codes are a contract with the UI; messages are for people and never
//! contain tokens, UPNs or other caller secrets.

use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use warp::http::{HeaderValue, Response, StatusCode};

use crate::auth::{GateError, Refused, TokenError};

/// Every `error.code` the API answers with: a contract with the UI, published in the
/// OpenAPI description (`GET /api/openapi.json`). Adding a code is a new variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a parameter or body property is invalid; the message names it.
    InvalidInput,
    /// 400: a `cursor` that this API did not hand out.
    InvalidCursor,
    /// 400: the request body could not be read.
    InvalidBody,
    /// 400: Microsoft rejected the request as invalid.
    RejectedByMicrosoft,
    /// 400: the tenant's group naming policy does not allow the name (a blocked word); the
    /// message names the property and the word. `GET /api/policy/naming/preview` shows it
    /// before a create.
    NamingPolicyViolation,
    /// 401: no bearer token.
    MissingToken,
    /// 401: the token is invalid (signature, audience, issuer, expiry, …).
    InvalidToken,
    /// 401: Entra ID needs the user to sign in again (claims challenge).
    InteractionRequired,
    /// 403: the caller's tenant is not registered with GroupMgr.
    TenantNotRegistered,
    /// 403: the caller's tenant is suspended.
    TenantSuspended,
    /// 403: the caller's tenant has been offboarded.
    TenantOffboarded,
    /// 403: the tenant's licence has expired.
    LicenseExpired,
    /// 403: the tenant's licensed seats are all taken.
    LicenseSeatsExhausted,
    /// 403: an app-only token where a user is required.
    UserTokenRequired,
    /// 403: the token was issued to a client application other than the GroupMgr UI.
    ClientNotAllowed,
    /// 403: the `GroupMgr.Admin` app role is required.
    RoleRequired,
    /// 403: the tenant has not consented (or revoked consent) to GroupMgr's permissions.
    ConsentRequired,
    /// 403: Microsoft forbids this for the caller.
    ForbiddenByMicrosoft,
    /// 404: no such resource.
    NotFound,
    /// 405: the route exists, the method does not (`Allow` lists the methods).
    MethodNotAllowed,
    /// 409: the change conflicts with the resource's state.
    Conflict,
    /// 409: a sync of this tenant is already running.
    SyncInProgress,
    /// 409: the tenant's lifecycle actions for today (`maxActionsPerDay`) are all taken.
    ActionCapReached,
    /// 413: the request body is too large.
    BodyTooLarge,
    /// 429: Microsoft is throttling this tenant; `Retry-After` says when to retry.
    Throttled,
    /// 500: GroupMgr is misconfigured (its own credential); never caused by the caller.
    InternalError,
    /// 502: Microsoft refused GroupMgr's own token.
    MicrosoftAuthFailed,
    /// 502: Microsoft failed or could not be reached.
    MicrosoftUnavailable,
    /// 503: Entra ID (signing keys or token endpoint) is unavailable.
    IdentityProviderUnavailable,
    /// 503: GroupMgr's database or storage is unavailable.
    StoreUnavailable,
    /// 504: Microsoft timed out.
    MicrosoftTimeout,
}

/// The error body: `{"error":{"code","message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; never contains tokens, UPNs or other secrets.
    pub message: String,
}

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
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

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such resource")
    }

    /// GroupMgr's own database (or storage) does not answer: 503 with `Retry-After`.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            "GroupMgr's database is unavailable; retry shortly",
        )
        .with_header("retry-after", "5")
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn into_response(self) -> Response<Bytes> {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
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
            GateError::Token(TokenError::Missing) => {
                Self::new(StatusCode::UNAUTHORIZED, ErrorCode::MissingToken, message)
                    .with_header("www-authenticate", "Bearer realm=\"GroupMgr\"")
            }
            GateError::Token(TokenError::Invalid(reason)) => {
                Self::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken, message).with_header(
                    "www-authenticate",
                    format!("Bearer realm=\"GroupMgr\", error=\"invalid_token\", error_description=\"{reason}\""),
                )
            }
            GateError::Token(TokenError::KeysUnavailable) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::IdentityProviderUnavailable,
                "Entra ID signing keys could not be fetched; retry shortly",
            )
            .with_header("retry-after", "5"),
            GateError::TenantNotRegistered => Self::forbidden(ErrorCode::TenantNotRegistered, message),
            GateError::TenantSuspended => Self::forbidden(ErrorCode::TenantSuspended, message),
            GateError::TenantOffboarded => Self::forbidden(ErrorCode::TenantOffboarded, message),
            GateError::LicenceExpired => Self::forbidden(ErrorCode::LicenseExpired, message),
            GateError::SeatsExhausted => Self::forbidden(ErrorCode::LicenseSeatsExhausted, message),
            GateError::UserRequired => Self::forbidden(ErrorCode::UserTokenRequired, message),
            GateError::ClientNotAllowed => Self::forbidden(ErrorCode::ClientNotAllowed, message),
            GateError::Store(_) => Self::store_unavailable(),
        }
    }
}
