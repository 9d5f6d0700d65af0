//! What Microsoft's answers mean to our callers: Entra token errors and Graph errors become
//! `ApiError`s with stable codes — 403 when Microsoft forbids, 429 (with `Retry-After`) when it
//! throttles and retries are exhausted, 502/504 when it fails — never a 500 for something a
//! caller or Microsoft did. Also the per-request Graph session on behalf of the caller.

use base64::Engine as _;
use warp::http::StatusCode;

use super::{ApiError, ErrorCode};
use crate::app::App;
use crate::auth::{AcquireError, Caller};
use crate::microsoft::graph::{Graph, GraphError};

impl From<AcquireError> for ApiError {
    fn from(e: AcquireError) -> Self {
        let message = e.to_string();
        match e {
            AcquireError::ConsentRequired(_) => ApiError::forbidden(ErrorCode::ConsentRequired, message),
            // Entra docs, "Claims challenges, claims requests, and client capabilities": an
            // API answers 401 with `error="insufficient_claims"` and the challenge's claims,
            // base64-encoded, so MSAL can ask the user for them and retry.
            AcquireError::InteractionRequired { claims, .. } => {
                let mut challenge = String::from("Bearer realm=\"GroupMgr\", error=\"insufficient_claims\"");
                if let Some(c) = claims {
                    challenge.push_str(&format!(
                        ", claims=\"{}\"",
                        base64::engine::general_purpose::STANDARD.encode(c)
                    ));
                }
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InteractionRequired, message)
                    .with_header("www-authenticate", challenge)
            }
            AcquireError::Blocked(_) => ApiError::forbidden(ErrorCode::ForbiddenByMicrosoft, message),
            AcquireError::InvalidGrant(_) => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken, message)
                .with_header("www-authenticate", "Bearer realm=\"GroupMgr\", error=\"invalid_token\""),
            AcquireError::Misconfigured(code) => {
                tracing::error!(event = "token_acquisition_failed", error = %code);
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "GroupMgr could not authenticate itself to Entra ID; the operator has been alerted",
                )
            }
            AcquireError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::IdentityProviderUnavailable,
                message,
            )
            .with_header("retry-after", "5"),
        }
    }
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        let already_exists = e.is_already_exists();
        // Graph refusing a name for the tenant's naming policy (a blocked word, or a prefix or
        // suffix it still finds missing) is the caller's to change.
        let naming = match &e {
            GraphError::Service {
                status: 400 | 422,
                details,
                ..
            } => details
                .iter()
                .find(|d| matches!(d.code.as_str(), "ContainsBlockedWord" | "MissingPrefixSuffix"))
                .map(|d| {
                    let target = d.target.as_deref().unwrap_or("displayName");
                    let reason = if d.message.is_empty() {
                        d.code.as_str()
                    } else {
                        d.message.as_str()
                    };
                    format!("{target}: {reason}")
                }),
            _ => None,
        };
        if let Some(reason) = naming {
            return ApiError::bad_request(ErrorCode::NamingPolicyViolation, reason);
        }
        match e {
            GraphError::Service {
                status,
                code,
                message,
                retry_after,
                ..
            } => {
                let reason = if message.is_empty() {
                    code.clone()
                } else {
                    format!("{code}: {message}")
                };
                match status {
                    400 if already_exists => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, reason),
                    400 | 422 => ApiError::bad_request(ErrorCode::RejectedByMicrosoft, reason),
                    401 => ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        ErrorCode::MicrosoftAuthFailed,
                        "Microsoft Graph refused GroupMgr's token",
                    ),
                    403 => ApiError::forbidden(ErrorCode::ForbiddenByMicrosoft, reason),
                    404 => ApiError::not_found(),
                    409 | 412 => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, reason),
                    429 => {
                        let secs = retry_after.map_or(5, |d| d.as_secs_f64().ceil().max(1.0) as u64);
                        ApiError::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            ErrorCode::Throttled,
                            "Microsoft Graph is throttling this tenant; retry later",
                        )
                        .with_header("retry-after", secs.to_string())
                    }
                    504 => ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        ErrorCode::MicrosoftTimeout,
                        "Microsoft Graph timed out",
                    ),
                    _ => ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        ErrorCode::MicrosoftUnavailable,
                        format!("Microsoft Graph answered {status}"),
                    ),
                }
            }
            GraphError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::MicrosoftTimeout,
                "Microsoft Graph timed out",
            ),
            GraphError::Transport(_) | GraphError::Protocol(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::MicrosoftUnavailable,
                "Microsoft Graph could not be reached",
            ),
        }
    }
}

/// Graph on behalf of the caller, for this request only (the token is exchanged now and
/// dropped with the session).
pub async fn caller_graph<'a>(app: &'a App, caller: &Caller) -> Result<Graph<'a>, ApiError> {
    let token = app
        .tokens
        .on_behalf_of(&caller.tenant.tenant_id, &caller.token, &app.graph_resource)
        .await?;
    Ok(app.graph.session(token))
}

/// A Graph session with GroupMgr's own application token for the caller's tenant: for writes
/// to GroupMgr's own site, which the tenant granted GroupMgr (`Sites.Selected`) and its
/// users may not be able to write. Only after the caller's role was checked.
pub async fn app_graph<'a>(app: &'a App, caller: &Caller) -> Result<Graph<'a>, ApiError> {
    let token = app
        .tokens
        .app_token(&caller.tenant.tenant_id, &app.graph_resource)
        .await?;
    Ok(app.graph.session(token))
}

impl From<crate::domain::InvalidInput> for ApiError {
    fn from(e: crate::domain::InvalidInput) -> Self {
        ApiError::bad_request(ErrorCode::InvalidInput, e.to_string())
    }
}
