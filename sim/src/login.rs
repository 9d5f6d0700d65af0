//! Entra ID login (aad-tokens.md): OpenID metadata, the JWKS, and the v2 token endpoint with
//! the grants GroupMgr and its tests use — resource-owner password (test users only),
//! client credentials, and on-behalf-of (jwt-bearer). Errors use Entra's OAuth error body
//! (`error`, `error_description` starting with the AADSTS code, `error_codes`, …).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use bytes::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;
use warp::http::{Response, StatusCode};

use crate::directory::{self, GROUPMGR_CLIENT_ID, GROUPMGR_CLIENT_SECRET, SimTenant, SimUser, UI_CLIENT_ID};
use crate::keys::{encode_jwt, header_for};
use crate::{SimRequest, SimState, json_response};

/// Microsoft Graph's resource identifier (the `aud` of Graph tokens).
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// The Office 365 Management APIs' resource identifier.
pub const MANAGE_RESOURCE: &str = "https://manage.office.com";

/// Delegated Graph permissions the seeded tenants consented to for GroupMgr.
/// Exactly what `infra/app-registration/app.json` requests, so that the tests prove that set
/// is enough.
pub const GRAPH_DELEGATED_SCOPES: &str =
    "Group.Read.All Group.ReadWrite.All GroupSettings.ReadWrite.All User.ReadBasic.All Sites.Read.All";
/// Application Graph permissions the seeded tenants granted GroupMgr (for jobs).
/// (As requested by `infra/app-registration/app.json`; `Sites.Selected` with the seeded
/// `manage` grant on `/sites/GroupMgr`.)
pub const GRAPH_APP_ROLES: &[&str] = &[
    "Group.Read.All",
    "Team.ReadBasic.All",
    "Reports.Read.All",
    "ReportSettings.Read.All",
    "Sites.Read.All",
    "Sites.Selected",
    "Channel.ReadBasic.All",
    "User.Read.All",
];
pub const MANAGE_APP_ROLES: &[&str] = &["ActivityFeed.Read"];

const TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// What token to mint for the GroupMgr API.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub tenant: Uuid,
    /// The user's alias (the part of the UPN before `@`).
    pub alias: String,
    pub lifetime: Duration,
    /// Delegated scopes (`scp`), space-joined in the token.
    pub scopes: Vec<String>,
    /// The sign-in did multifactor authentication (`amr` holds "mfa"): what the client gets
    /// after a claims challenge's step-up.
    pub mfa: bool,
}

impl TokenSpec {
    pub fn user(tenant: Uuid, alias: &str) -> Self {
        Self {
            tenant,
            alias: alias.to_string(),
            lifetime: TOKEN_LIFETIME,
            scopes: vec![directory::API_SCOPE.to_string()],
            mfa: false,
        }
    }

    /// The same sign-in, with multifactor authentication done.
    pub fn with_mfa(mut self) -> Self {
        self.mfa = true;
        self
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn opaque(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&B64URL.encode(Uuid::new_v4().as_bytes()));
    }
    s.truncate(n);
    s
}

/// The pairwise `sub` Entra gives a user for one application.
fn pairwise_sub(user: &Uuid, app: &Uuid) -> String {
    let mut input = user.as_bytes().to_vec();
    input.extend_from_slice(app.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    B64URL.encode(&digest.as_ref()[..32])[..43].to_string()
}

fn find_user(state: &SimState, tenant: &Uuid, alias: &str) -> Option<(SimTenant, SimUser)> {
    let t = state.tenant(tenant)?;
    let upn = format!("{alias}@{}", t.domain);
    let u = t.user_by_upn(&upn)?.clone();
    Some((t, u))
}

/// Claims of a v2 access token for the GroupMgr API (aad-tokens.md §1 sample, plus the `upn`
/// optional claim the app registration requests).
pub fn api_claims(state: &SimState, spec: &TokenSpec) -> Value {
    let (tenant, user) = find_user(state, &spec.tenant, &spec.alias)
        .unwrap_or_else(|| panic!("m365-sim: no seeded user {} in tenant {}", spec.alias, spec.tenant));
    let iat = now();
    let mut claims = json!({
        "aud": GROUPMGR_CLIENT_ID.to_string(),
        "iss": format!("{}/{}/v2.0", state.base_url(), tenant.id),
        "iat": iat,
        "nbf": iat,
        "exp": iat + spec.lifetime.as_secs() as i64,
        "aio": opaque(56),
        "amr": if spec.mfa { json!(["pwd", "mfa"]) } else { json!(["pwd"]) },
        "azp": UI_CLIENT_ID.to_string(),
        "azpacr": "0",
        "name": user.display_name,
        "oid": user.id.to_string(),
        "preferred_username": user.upn,
        "rh": "0.AAAA".to_string() + &opaque(40),
        "scp": spec.scopes.join(" "),
        "sub": pairwise_sub(&user.id, &GROUPMGR_CLIENT_ID),
        "tid": tenant.id.to_string(),
        "upn": user.upn,
        "uti": opaque(22),
        "ver": "2.0",
    });
    if !user.app_roles.is_empty() {
        claims["roles"] = json!(user.app_roles);
    }
    claims
}

pub fn mint_api_token(state: &SimState, spec: &TokenSpec) -> String {
    let key = state.signing_key();
    encode_jwt(&key, &header_for(&key), &api_claims(state, spec))
}

/// Claims of a token for a Microsoft resource (Graph, Management API). Those are v1 tokens
/// (aad-tokens.md §1: "Tokens for Microsoft Graph … are proprietary/v1").
fn resource_claims(state: &SimState, tenant: &SimTenant, resource: &str, user: Option<&SimUser>) -> Value {
    let iat = now();
    let mut claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", tenant.id),
        "iat": iat,
        "nbf": iat,
        "exp": iat + TOKEN_LIFETIME.as_secs() as i64,
        "appid": GROUPMGR_CLIENT_ID.to_string(),
        "appidacr": "1",
        "idp": format!("https://sts.windows.net/{}/", tenant.id),
        "tid": tenant.id.to_string(),
        "uti": opaque(22),
        "ver": "1.0",
        "xms_sim_base": state.base_url(),
    });
    match user {
        Some(u) => {
            claims["idtyp"] = json!("user");
            claims["oid"] = json!(u.id.to_string());
            claims["sub"] = json!(pairwise_sub(&u.id, &Uuid::nil()));
            claims["upn"] = json!(u.upn);
            claims["unique_name"] = json!(u.upn);
            claims["name"] = json!(u.display_name);
            claims["scp"] = json!(GRAPH_DELEGATED_SCOPES);
        }
        None => {
            let sp = directory::stable_id("servicePrincipal", &format!("{}:{GROUPMGR_CLIENT_ID}", tenant.id));
            claims["idtyp"] = json!("app");
            claims["oid"] = json!(sp.to_string());
            claims["sub"] = json!(sp.to_string());
            let roles: &[&str] = if resource == MANAGE_RESOURCE {
                MANAGE_APP_ROLES
            } else {
                GRAPH_APP_ROLES
            };
            let added = (resource != MANAGE_RESOURCE).then_some(&tenant.added_app_roles);
            let roles: Vec<&str> = roles
                .iter()
                .copied()
                .chain(added.into_iter().flatten().map(String::as_str))
                .filter(|r| !tenant.removed_app_roles.iter().any(|x| x == r))
                .collect();
            claims["roles"] = json!(roles);
        }
    }
    claims
}

/// A token for a Microsoft resource, app-only (`user` None) or delegated.
pub fn mint_resource_token(state: &SimState, tenant: Uuid, resource: &str, user: Option<&SimUser>) -> String {
    mint_resource_token_with(state, tenant, resource, user, None)
}

/// As [`mint_resource_token`], a delegated one with these scopes instead of the consented ones
/// (a consent given before GroupMgr asked for more).
pub fn mint_resource_token_with(
    state: &SimState,
    tenant: Uuid,
    resource: &str,
    user: Option<&SimUser>,
    scopes: Option<&str>,
) -> String {
    let t = state.tenant(&tenant).expect("seeded tenant");
    let key = state.signing_key();
    let mut claims = resource_claims(state, &t, resource, user);
    if let (Some(s), Some(_)) = (scopes, user) {
        claims["scp"] = json!(s);
    }
    encode_jwt(&key, &header_for(&key), &claims)
}

/// An Entra OAuth error, rendered as Entra renders it (`error`, `error_description` starting
/// with the AADSTS code, `error_codes`, `timestamp`, `trace_id`, `correlation_id`, …).
pub struct AadError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
    suberror: Option<&'static str>,
    /// A claims challenge (conditional access): the claims the client must obtain.
    claims: Option<String>,
}

impl AadError {
    fn into_response(self) -> Response<Bytes> {
        let trace = Uuid::new_v4();
        let correlation = Uuid::new_v4();
        let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let code = self.code;
        let mut body = json!({
            "error": self.error,
            "error_description": format!("AADSTS{code}: {} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}", self.description),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace.to_string(),
            "correlation_id": correlation.to_string(),
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        });
        if let Some(s) = self.suberror {
            body["suberror"] = json!(s);
        }
        if let Some(c) = self.claims {
            body["claims"] = json!(c);
        }
        json_response(self.status, &body)
    }
}

fn aad_error(
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: &str,
    suberror: Option<&'static str>,
) -> AadError {
    AadError {
        status,
        error,
        code,
        description: description.to_string(),
        suberror,
        claims: None,
    }
}

/// The conditional-access policy the sim applies to users it marks (`SimUser::mfa_policy`):
/// "Require multifactor authentication" for all cloud apps.
pub const MFA_POLICY_ID: &str = "9ab03e19-ed42-4168-b6b7-7001fb3e933a";

/// On-behalf-of for a user under a conditional-access policy the presented token does not
/// satisfy. The OBO flow page (Entra docs: "Microsoft identity platform and OAuth 2.0
/// On-Behalf-Of flow", "Error response example") shows AADSTS50079 with a `claims` value the
/// middle tier must return to its client; the claims-challenge page ("Claims challenges,
/// claims requests, and client capabilities") names 50076/50079/50158 among the codes that
/// carry one. Entra renders the error as `invalid_grant` on some paths and
/// `interaction_required` on others (MSAL's issue trackers show both); the sim uses
/// `invalid_grant`, the form the step-up guidance for APIs describes.
fn mfa_challenge() -> AadError {
    let mut e = aad_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.",
        None,
    );
    e.claims = Some(json!({"access_token": {"capolids": {"essential": true, "values": [MFA_POLICY_ID]}}}).to_string());
    e
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub fn openid_configuration(state: &SimState, tenant: &str) -> Response<Bytes> {
    let base = state.base_url();
    let issuer_tenant = match tenant {
        "common" | "organizations" | "consumers" => "{tenantid}".to_string(),
        other => match other.parse::<Uuid>().ok().and_then(|id| state.tenant(&id)) {
            Some(t) => t.id.to_string(),
            None => {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_tenant",
                    90002,
                    &format!("Tenant '{tenant}' not found."),
                    None,
                )
                .into_response();
            }
        },
    };
    json_response(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{issuer_tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "tenant_region_scope": null,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net"
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub fn jwks(state: &SimState) -> Response<Bytes> {
    let template = format!("{}/{{tenantid}}/v2.0", state.base_url());
    let keys: Vec<Value> = state.published_keys().iter().map(|k| k.jwk(&template)).collect();
    json_response(StatusCode::OK, &json!({ "keys": keys }))
}

fn form(req: &SimRequest) -> std::collections::HashMap<String, String> {
    serde_urlencoded::from_bytes(&req.body).unwrap_or_default()
}

/// Client authentication: `client_secret` in the body or HTTP Basic, or a certificate
/// assertion (`private_key_jwt`: `client_assertion_type` jwt-bearer + `client_assertion`),
/// checked against GroupMgr's registered certificate (`client_cert.rs`).
fn authenticate_client(
    state: &SimState,
    tenant_segment: &str,
    req: &SimRequest,
    f: &std::collections::HashMap<String, String>,
) -> Result<Uuid, AadError> {
    let basic = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| B64.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())));
    let (client_id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (f.get("client_id").cloned(), f.get("client_secret").cloned()),
    };
    let client_id = client_id.and_then(|c| c.parse::<Uuid>().ok()).ok_or_else(|| {
        aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            None,
        )
    })?;
    if client_id != GROUPMGR_CLIENT_ID {
        return Err(aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
            None,
        ));
    }
    if let Some(assertion) = f.get("client_assertion") {
        if f.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err(aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'.",
                None,
            ));
        }
        let endpoint = format!("{}/{tenant_segment}/oauth2/v2.0/token", state.base_url());
        return crate::client_cert::verify(assertion, &client_id.to_string(), &endpoint, now())
            .map(|()| client_id)
            .map_err(|r| aad_error(StatusCode::UNAUTHORIZED, "invalid_client", r.code, r.description, None));
    }
    match secret {
        Some(s) if s == GROUPMGR_CLIENT_SECRET => Ok(client_id),
        Some(_) => Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            None,
        )),
        None => Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            None,
        )),
    }
}

/// The resource a `.default` or resource-qualified scope names.
fn resource_of(scope: &str) -> Option<&'static str> {
    let first = scope
        .split_whitespace()
        .find(|s| !matches!(*s, "offline_access" | "openid" | "profile"))?;
    if first.starts_with(GRAPH_RESOURCE) || first.starts_with("00000003-0000-0000-c000-000000000000") {
        Some(GRAPH_RESOURCE)
    } else if first.starts_with(MANAGE_RESOURCE) {
        Some(MANAGE_RESOURCE)
    } else {
        None
    }
}

fn token_response(access_token: String, scope: &str) -> Response<Bytes> {
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "ext_expires_in": TOKEN_LIFETIME.as_secs(),
            "access_token": access_token,
        }),
    )
}

fn tenant_of(state: &SimState, segment: &str) -> Result<SimTenant, AadError> {
    segment
        .parse::<Uuid>()
        .ok()
        .and_then(|id| state.tenant(&id))
        .or_else(|| state.tenants().into_iter().find(|t| t.domain.eq_ignore_ascii_case(segment)))
        .ok_or_else(|| {
            aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                &format!("Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
                None,
            )
        })
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub fn token_endpoint(state: &SimState, tenant_segment: &str, req: &SimRequest) -> Response<Bytes> {
    token_endpoint_inner(state, tenant_segment, req).unwrap_or_else(AadError::into_response)
}

fn token_endpoint_inner(state: &SimState, tenant_segment: &str, req: &SimRequest) -> Result<Response<Bytes>, AadError> {
    let f = form(req);
    let grant = f.get("grant_type").map(String::as_str).unwrap_or_default();
    let scope = f.get("scope").cloned().unwrap_or_default();
    match grant {
        "password" => {
            // Resource-owner password grant: only for the sim's seeded test users.
            let tenant = tenant_of(state, tenant_segment)?;
            let username = f.get("username").cloned().unwrap_or_default();
            let user = tenant.user_by_upn(&username).cloned();
            let ok = user.as_ref().is_some_and(|u| u.enabled)
                && f.get("password").map(String::as_str) == Some(directory::USER_PASSWORD);
            let Some(user) = user.filter(|_| ok) else {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    50126,
                    "Error validating credentials due to invalid username or password.",
                    None,
                ));
            };
            let api = GROUPMGR_CLIENT_ID.to_string();
            if !(scope.contains(&api)) {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    "The provided value for the input parameter 'scope' is not valid.",
                    None,
                ));
            }
            let alias = user.upn.split('@').next().unwrap_or_default().to_string();
            let token = mint_api_token(state, &TokenSpec::user(tenant.id, &alias));
            Ok(token_response(token, &format!("api://{api}/{}", directory::API_SCOPE)))
        }
        "client_credentials" => {
            authenticate_client(state, tenant_segment, req, &f)?;
            let tenant = tenant_of(state, tenant_segment)?;
            let Some(resource) = resource_of(&scope).filter(|_| scope.trim_end().ends_with("/.default")) else {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                    None,
                ));
            };
            if !tenant.consented {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    7000229,
                    &format!(
                        "The client application {GROUPMGR_CLIENT_ID} is missing service principal in the tenant {}.",
                        tenant.id
                    ),
                    None,
                ));
            }
            let key = state.signing_key();
            let token = encode_jwt(
                &key,
                &header_for(&key),
                &resource_claims(state, &tenant, resource, None),
            );
            Ok(token_response(token, &scope))
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            authenticate_client(state, tenant_segment, req, &f)?;
            if f.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'requested_token_use'.",
                    None,
                ));
            }
            let tenant = tenant_of(state, tenant_segment)?;
            let assertion = f.get("assertion").cloned().unwrap_or_default();
            let (user, presented) = validate_assertion(state, &tenant, &assertion)?;
            // The user's conditional-access policy asks for MFA; a token from a sign-in that
            // did it carries "mfa" in `amr` (access-token claims reference).
            let did_mfa = presented["amr"]
                .as_array()
                .is_some_and(|a| a.iter().any(|m| m == "mfa"));
            if user.mfa_policy && !did_mfa {
                return Err(mfa_challenge());
            }
            let Some(resource) = resource_of(&scope) else {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    "The provided value for the input parameter 'scope' is not valid.",
                    None,
                ));
            };
            if !tenant.consented {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    65001,
                    &format!(
                        "The user or administrator has not consented to use the application with ID '{GROUPMGR_CLIENT_ID}' named 'GroupMgr'. Send an interactive authorization request for this user and resource."
                    ),
                    Some("consent_required"),
                ));
            }
            let key = state.signing_key();
            let token = encode_jwt(
                &key,
                &header_for(&key),
                &resource_claims(state, &tenant, resource, Some(&user)),
            );
            Ok(token_response(token, &format!("{resource}/.default")))
        }
        "" => Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
            None,
        )),
        other => Err(aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
            None,
        )),
    }
}

/// Checks the user token presented for on-behalf-of: signed by us, for GroupMgr, unexpired,
/// from this tenant. Returns the user.
fn validate_assertion(state: &SimState, tenant: &SimTenant, assertion: &str) -> Result<(SimUser, Value), AadError> {
    let bad = |code: u32, msg: &str| aad_error(StatusCode::BAD_REQUEST, "invalid_grant", code, msg, None);
    let parts: Vec<&str> = assertion.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err(bad(50027, "JWT token is invalid or malformed."));
    };
    let header: Value = B64URL
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad(50027, "JWT token is invalid or malformed."))?;
    let claims: Value = B64URL
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad(50027, "JWT token is invalid or malformed."))?;
    let sig = B64URL
        .decode(s)
        .map_err(|_| bad(50027, "JWT token is invalid or malformed."))?;
    let kid = header["kid"].as_str().unwrap_or_default();
    let key = state
        .published_keys()
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| bad(50013, "Assertion failed signature validation."))?;
    if header["alg"] != "RS256" || !key.verify(format!("{h}.{p}").as_bytes(), &sig) {
        return Err(bad(50013, "Assertion failed signature validation."));
    }
    if claims["aud"] != GROUPMGR_CLIENT_ID.to_string() {
        return Err(bad(
            50013,
            "Assertion audience does not match the Client app presenting the assertion.",
        ));
    }
    if claims["exp"].as_i64().unwrap_or(0) <= now() {
        return Err(bad(500133, "Assertion is not within its valid time range."));
    }
    if claims["tid"] != tenant.id.to_string() {
        return Err(bad(50013, "Assertion tenant does not match the tenant of the request."));
    }
    let oid = claims["oid"].as_str().and_then(|o| o.parse::<Uuid>().ok());
    oid.and_then(|o| tenant.user_by_id(&o).cloned())
        .filter(|u| u.enabled)
        .map(|u| (u, claims))
        .ok_or_else(|| bad(50053, "The user account is disabled or does not exist."))
}
