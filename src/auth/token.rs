//! Validation of Entra ID v2 access tokens for the GroupMgr API (aad-tokens.md §1–3).
//!
//! A token passes only if all of these hold: header `alg` is RS256 (nothing else, so `none`
//! and HMAC-with-the-public-key forgeries fail before any key is touched); its `kid` names a
//! key in Entra's JWKS and the signature verifies; `aud` is our client id or `api://<id>`;
//! `ver` is "2.0"; `tid` is a GUID and `iss` is exactly `{authority}/{tid}/v2.0` (and matches
//! the key's published issuer template); `exp` and `nbf` hold within 5 minutes of clock skew;
//! and it carries delegated scopes (`scp`) or app roles (`roles`).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::jwks::{JwksCache, KeyLookupError};
use crate::domain::TenantId;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 300;
/// Entra access tokens are a few KB; anything far larger is refused unparsed.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A bearer token taken from a request. Deliberately not `Debug`/`Display`: it can be
/// passed on (to the on-behalf-of exchange) but never printed.
pub struct BearerToken(String);

impl BearerToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A user principal name. Shown only redacted; the plaintext goes nowhere but the blind
/// index and (sealed) the tenant's encrypted copy.
#[derive(Clone, PartialEq, Eq)]
pub struct Upn(String);

impl Upn {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Upn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Upn(<redacted>)")
    }
}

/// Who a valid token speaks for.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    /// The user's (or app's) object id in the tenant.
    pub object_id: Option<uuid::Uuid>,
    /// `upn`, else `preferred_username`; `None` for app-only tokens.
    pub upn: Option<Upn>,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    /// The client application the token was issued to (`azp`).
    pub client: Option<uuid::Uuid>,
    /// An application's own token (`idtyp` `app`, or roles without scopes): no user.
    pub app_only: bool,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Why a token was refused. The message is safe to return to the caller: it never contains
/// the token or a claim value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// The signing keys could not be fetched: a 503, not the caller's fault.
    #[error("token signing keys are unavailable")]
    KeysUnavailable,
}

/// Extracts the token from an `Authorization` header value: `Bearer <token>`, scheme
/// case-insensitive, exactly one space-free token.
pub fn bearer_from_header(value: Option<&str>) -> Result<BearerToken, TokenError> {
    let value = value.ok_or(TokenError::Missing)?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or(TokenError::Invalid("authorization scheme must be Bearer"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Invalid("authorization scheme must be Bearer"));
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN || token.contains(char::is_whitespace) {
        return Err(TokenError::Invalid("malformed token"));
    }
    Ok(BearerToken(token.to_string()))
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    tid: Option<String>,
    ver: Option<String>,
    oid: Option<String>,
    upn: Option<String>,
    preferred_username: Option<String>,
    scp: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    azp: Option<String>,
    idtyp: Option<String>,
}

/// Validates tokens for one app registration against one authority.
pub struct TokenValidator {
    authority: String,
    jwks: Arc<JwksCache>,
    validation: Validation,
}

impl TokenValidator {
    /// `authority` is the login host origin; `client_id` the app registration's GUID.
    pub fn new(authority: &str, client_id: uuid::Uuid, jwks: Arc<JwksCache>) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(&[client_id.to_string(), format!("api://{client_id}")]);
        // The issuer depends on the token's own `tid`; it is checked below.
        validation.iss = None;
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        Self {
            authority: authority.trim_end_matches('/').to_string(),
            jwks,
            validation,
        }
    }

    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }

    /// Validates a token and returns the principal it speaks for.
    pub async fn validate(&self, token: &BearerToken) -> Result<Principal, TokenError> {
        let raw = token.expose();
        if raw.split('.').count() != 3 {
            return Err(TokenError::Invalid("malformed token"));
        }
        let header = jsonwebtoken::decode_header(raw).map_err(|_| TokenError::Invalid("malformed token header"))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Invalid("signing algorithm must be RS256"));
        }
        let kid = header.kid.ok_or(TokenError::Invalid("token header has no kid"))?;
        let key = self.jwks.key(&kid).await.map_err(|e| match e {
            KeyLookupError::UnknownKey => TokenError::Invalid("unknown signing key"),
            KeyLookupError::Unavailable(_) => TokenError::KeysUnavailable,
        })?;
        let data = jsonwebtoken::decode::<Claims>(raw, &key.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            TokenError::Invalid(match e.kind() {
                K::ExpiredSignature => "token expired",
                K::ImmatureSignature => "token not yet valid",
                K::InvalidAudience => "wrong audience",
                K::InvalidSignature => "bad signature",
                K::MissingRequiredClaim(_) => "required claim missing",
                K::InvalidAlgorithm => "signing algorithm must be RS256",
                _ => "malformed token",
            })
        })?;
        let claims = data.claims;

        if claims.ver.as_deref() != Some("2.0") {
            return Err(TokenError::Invalid("only v2.0 access tokens are accepted"));
        }
        let tid = claims.tid.as_deref().ok_or(TokenError::Invalid("tid claim missing"))?;
        let tenant = TenantId::parse(tid).map_err(|_| TokenError::Invalid("tid is not a GUID"))?;
        let expected_iss = format!("{}/{}/v2.0", self.authority, tid);
        if claims.iss != expected_iss {
            return Err(TokenError::Invalid("wrong issuer"));
        }
        if let Some(template) = &key.issuer
            && template.replace("{tenantid}", tid) != expected_iss
        {
            return Err(TokenError::Invalid("signing key not valid for this issuer"));
        }

        let scopes: Vec<String> = claims
            .scp
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let roles: Vec<String> = claims
            .roles
            .into_iter()
            .filter(|r| !r.is_empty())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if scopes.is_empty() && roles.is_empty() {
            return Err(TokenError::Invalid("token carries neither scp nor roles"));
        }
        let object_id = claims.oid.as_deref().and_then(|o| uuid::Uuid::parse_str(o).ok());
        let upn = claims
            .upn
            .or(claims.preferred_username)
            .filter(|u| !u.trim().is_empty())
            .map(Upn);
        let app_only = claims.idtyp.as_deref() == Some("app") || scopes.is_empty();
        Ok(Principal {
            tenant,
            object_id,
            upn,
            scopes,
            roles,
            client: claims.azp.as_deref().and_then(|a| uuid::Uuid::parse_str(a).ok()),
            app_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        assert!(matches!(bearer_from_header(None), Err(TokenError::Missing)));
        assert!(matches!(bearer_from_header(Some("Bearer ")), Err(TokenError::Missing)));
        assert!(matches!(
            bearer_from_header(Some("Bearer")),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            bearer_from_header(Some("Basic abc")),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            bearer_from_header(Some("Bearer a b")),
            Err(TokenError::Invalid(_))
        ));
        assert_eq!(bearer_from_header(Some("bearer a.b.c")).unwrap().expose(), "a.b.c");
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert!(matches!(bearer_from_header(Some(&huge)), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn upn_debug_is_redacted() {
        let p = Upn("someone@contoso.com".into());
        assert!(!format!("{p:?}").contains("someone"));
    }
}
