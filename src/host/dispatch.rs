//! From one HTTP request to one response: resolve the route, pass the gate where required,
//! call the handler, and log one line per request (function, status, duration, invocation
//! id — never headers, bodies or tokens).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use warp::http::{HeaderMap, Method, Response, StatusCode};

use super::functions;
use super::invocation::{InvocationFailure, InvocationRequest};
use super::router::{self, Gated, Invocation, Operation, Resolved};
use crate::api::{self, ApiError, ErrorCode};
use crate::app::App;
use crate::auth::Upn;
use crate::domain::TenantId;

/// A request as the host forwarded it.
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Handles one request end to end.
pub async fn handle(app: &Arc<App>, req: HttpRequest) -> Response<Bytes> {
    let started = Instant::now();
    let resolved = router::resolve(req.method.as_str(), &req.path);
    let function = match &resolved {
        Resolved::Http { function, .. } | Resolved::Invocation(function, _) => *function,
        Resolved::Readiness => "readiness",
        Resolved::MethodNotAllowed { .. } | Resolved::NotFound => "unrouted",
    };
    let mut who: Option<(TenantId, Option<Upn>)> = None;
    let response = match resolved {
        Resolved::Readiness => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Bytes::from_static(b"ready"))
            .expect("static response is valid"),
        Resolved::NotFound => ApiError::not_found().into_response(),
        Resolved::MethodNotAllowed { allow } => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        )
        .with_header("allow", allow.join(", "))
        .into_response(),
        Resolved::Http { operation, params, .. } => {
            let (outcome, caller) = http(app, operation, params, &req).await;
            who = caller;
            outcome.unwrap_or_else(ApiError::into_response)
        }
        Resolved::Invocation(_, inv) => {
            let (response, tenant) = invoke(app, inv, &req).await;
            who = tenant.map(|t| (t, None));
            response
        }
    };
    let response = if req.method == Method::HEAD {
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, Bytes::new())
    } else {
        response
    };
    // `user` and `client_ip` are sensitive: redacted on stdout, sealed in the tenant log.
    let (tenant, user) = who.unzip();
    let status = response.status();
    tracing::info!(
        event = "request",
        invocation_id = req.header("x-azure-functions-invocationid").unwrap_or(""),
        function,
        tenant_id = tenant.map(|t| t.to_string()).unwrap_or_default(),
        method = %req.method,
        status = status.as_u16(),
        outcome = outcome(status),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        user = user.flatten().as_ref().map_or("", |u| u.expose()),
        client_ip = client_ip(&req),
    );
    response
}

/// The invocation's outcome as a word operators can filter on: `success`, `rejected` (the
/// caller's request was refused or invalid: 4xx) or `failed` (5xx: ours or Microsoft's).
fn outcome(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "failed"
    } else if status.is_client_error() {
        "rejected"
    } else {
        "success"
    }
}

/// The caller's address as the Functions front end reports it (first `X-Forwarded-For` hop).
fn client_ip(req: &HttpRequest) -> &str {
    req.header("x-forwarded-for")
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .unwrap_or("")
}

/// Runs an HTTP operation: the gate first unless the operation is anonymous. Returns who
/// called (for the request log) alongside the outcome.
async fn http(
    app: &Arc<App>,
    operation: Operation,
    params: Vec<(&'static str, String)>,
    req: &HttpRequest,
) -> (Result<Response<Bytes>, ApiError>, Option<(TenantId, Option<Upn>)>) {
    let operation = match operation {
        Operation::Health => return (Ok(api::health::get(app).await), None),
        Operation::Gated(op) => op,
    };
    let caller = match app.gate.admit(req.header("authorization")).await {
        Ok(c) => c,
        Err(refused) => {
            let who = refused.tenant.map(|t| (t, refused.upn.clone()));
            return (Err(refused.into()), who);
        }
    };
    let who = Some((caller.tenant.tenant_id, caller.principal.upn.clone()));
    let request = api::Request {
        params,
        query: req.query.clone(),
        body: req.body.clone(),
    };
    let (caller, req) = (&caller, &request);
    use api::{groups, membership, naming, policy};
    let outcome = match operation {
        Gated::Logs => api::logs::get(app, caller, req).await,
        Gated::GroupsList => groups::list(app, caller, req).await,
        Gated::GroupCreate => groups::create(app, caller, req).await,
        Gated::GroupGet => groups::get(app, caller, req).await,
        Gated::GroupUpdate => groups::update(app, caller, req).await,
        Gated::GroupDelete => groups::delete(app, caller, req).await,
        Gated::GroupRestore => groups::restore(app, caller, req).await,
        Gated::RelationList(rel) => membership::list(app, caller, req, rel).await,
        Gated::RelationAdd(rel) => membership::add(app, caller, req, rel).await,
        Gated::RelationRemove(rel) => membership::remove(app, caller, req, rel).await,
        Gated::PolicyGet => policy::get(app, caller).await,
        Gated::PolicyPut => policy::put(app, caller, req).await,
        Gated::NamingPreview => naming::preview(app, caller, req).await,
        Gated::LifecyclePolicyGet => api::lifecycle::get_policy(app, caller).await,
        Gated::LifecyclePolicyPut => api::lifecycle::put_policy(app, caller, req).await,
        Gated::LifecycleCandidates => api::lifecycle::candidates(app, caller).await,
        Gated::LifecycleReviewsGet => api::lifecycle::reviews_get(app, caller).await,
        Gated::LifecycleReviewsPost => api::lifecycle::reviews_post(app, caller, req).await,
        Gated::LifecycleActionsGet => api::lifecycle::actions_get(app, caller).await,
        Gated::LifecycleActionsPost => api::lifecycle::actions_post(app, caller, req).await,
        Gated::GroupReview => api::lifecycle::decide(app, caller, req).await,
        Gated::WebhookGet => api::lifecycle::webhook_get(app, caller).await,
        Gated::WebhookPut => api::lifecycle::webhook_put(app, caller, req).await,
        Gated::WebhookDelete => api::lifecycle::webhook_delete(app, caller).await,
        Gated::Activity => api::activity::get(app, caller, req).await,
        Gated::GroupActivity => api::activity::group(app, caller, req).await,
        Gated::GroupSuccessors => api::successors::get(app, caller, req).await,
        Gated::SyncState => api::sync::get(app, caller).await,
        Gated::Sync => api::sync::post(app, caller, req).await,
        Gated::OpenApi => Ok(api::openapi::get()),
    };
    (outcome, who)
}

/// Answers a timer or queue invocation, and says which tenant it was for (a `TenantSync`
/// message names one). Failures are non-2xx so the host records the invocation as failed
/// (and retries queue messages).
async fn invoke(app: &Arc<App>, inv: Invocation, req: &HttpRequest) -> (Response<Bytes>, Option<TenantId>) {
    let Ok(envelope) = serde_json::from_slice::<InvocationRequest>(&req.body) else {
        let refused = InvocationFailure::new(
            StatusCode::BAD_REQUEST,
            "invalid_invocation",
            "body is not a Functions invocation envelope",
        );
        return (refused.into_response(), None);
    };
    let (outcome, tenant) = match inv {
        Invocation::SyncScheduler => (functions::sync_scheduler(app, &envelope).await, None),
        Invocation::WebhookDispatch => (functions::webhook_dispatch(app).await, None),
        Invocation::TenantSync => (
            functions::tenant_sync(app, &envelope).await,
            functions::tenant_sync_tenant(&envelope),
        ),
    };
    let response = match outcome {
        Ok(resp) => api::json(StatusCode::OK, &resp),
        Err(failure) => failure.into_response(),
    };
    (response, tenant)
}
