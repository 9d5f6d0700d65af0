//! Outbound tokens: on-behalf-of the calling user (for UI requests) and client credentials
//! (for jobs), from the tenant's v2 token endpoint (aad-tokens.md §4–5). The app proves itself
//! with a client secret or a certificate assertion (PS256, `x5t#S256`). Tokens are returned to
//! the caller for one request or job run and never stored, cached or logged.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use serde::Deserialize;

use super::token::BearerToken;
use crate::config::ClientCredential;
use crate::domain::TenantId;
use crate::microsoft::retry::{Failure, Idempotency, Retry, RetryPolicy, retry_after};
use crate::secret::{AccessToken, Secret};

/// Why no token could be obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// The tenant has not consented to GroupMgr (or revoked it): an admin must consent.
    #[error("the tenant has not granted GroupMgr the permissions it needs (admin consent required: {0})")]
    ConsentRequired(String),
    /// Conditional access demands more of the user's sign-in (MFA, a compliant device, …):
    /// the client must get a new token carrying `claims` (the challenge Entra gave, as JSON),
    /// for the reason named.
    #[error("the tenant's conditional access policy requires {reason} ({code}): sign in again to satisfy it")]
    InteractionRequired {
        code: String,
        reason: &'static str,
        claims: Option<String>,
    },
    /// Conditional access blocks the sign-in outright (AADSTS53003): no step-up satisfies it.
    #[error("the tenant's conditional access policy blocks this access ({0})")]
    Blocked(String),
    /// The user's own token cannot be exchanged (expired, revoked, disabled user).
    #[error("the caller's token can no longer be exchanged: {0}")]
    InvalidGrant(String),
    /// Our own credential or registration is wrong.
    #[error("GroupMgr's app credential was refused: {0}")]
    Misconfigured(String),
    /// Entra ID did not answer usefully.
    #[error("Entra ID token service unavailable: {0}")]
    Unavailable(String),
}

/// Proof of the app's identity.
enum Credential {
    Secret(Secret),
    Certificate { key: Box<RsaKeyPair>, x5t_s256: String },
}

/// Acquires tokens from one authority for one app registration.
pub struct TokenClient {
    http: reqwest::Client,
    authority: String,
    client_id: uuid::Uuid,
    credential: Credential,
    policy: RetryPolicy,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(Deserialize, Default)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    suberror: Option<String>,
    /// A claims challenge (conditional access).
    #[serde(default)]
    claims: Option<String>,
}

fn pem_blocks(pem: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let b64: String = after[..stop].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = B64.decode(b64) {
            out.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    out
}

impl TokenClient {
    /// `authority` is the login host origin. A certificate credential is a PEM file with the
    /// certificate and its RSA private key (PKCS#8 or PKCS#1).
    pub fn new(
        http: reqwest::Client,
        authority: &str,
        client_id: uuid::Uuid,
        credential: &ClientCredential,
    ) -> anyhow::Result<Self> {
        let credential = match credential {
            ClientCredential::Secret(s) => Credential::Secret(s.clone()),
            ClientCredential::Certificate(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("GROUPMGR_CLIENT_CERTIFICATE: cannot read {}: {e}", path.display()))?;
                let cert = pem_blocks(&pem, "CERTIFICATE").into_iter().next().ok_or_else(|| {
                    anyhow::anyhow!("GROUPMGR_CLIENT_CERTIFICATE: no CERTIFICATE block in the PEM file")
                })?;
                let key = pem_blocks(&pem, "PRIVATE KEY")
                    .into_iter()
                    .find_map(|der| RsaKeyPair::from_pkcs8(&der).ok())
                    .or_else(|| {
                        pem_blocks(&pem, "RSA PRIVATE KEY")
                            .into_iter()
                            .find_map(|der| RsaKeyPair::from_der(&der).ok())
                    })
                    .ok_or_else(|| {
                        anyhow::anyhow!("GROUPMGR_CLIENT_CERTIFICATE: no RSA private key in the PEM file")
                    })?;
                let digest = ring::digest::digest(&ring::digest::SHA256, &cert);
                Credential::Certificate {
                    key: Box::new(key),
                    x5t_s256: B64URL.encode(digest.as_ref()),
                }
            }
        };
        Ok(Self {
            http,
            authority: authority.trim_end_matches('/').to_string(),
            client_id,
            credential,
            policy: RetryPolicy {
                max_attempts: 3,
                deadline: Duration::from_secs(20),
                ..Default::default()
            },
        })
    }

    fn token_endpoint(&self, tenant: &TenantId) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority)
    }

    /// The signed client assertion (aad-tokens.md §5): PS256, `x5t#S256`, 10 minutes.
    fn assertion(&self, key: &RsaKeyPair, x5t_s256: &str, audience: &str) -> String {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": x5t_s256});
        let claims = serde_json::json!({
            "aud": audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(&RSA_PSS_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .expect("RSA-PSS signing with a loaded key does not fail");
        format!("{input}.{}", B64URL.encode(sig))
    }

    fn with_credential(&self, form: &mut Vec<(&'static str, String)>, endpoint: &str) {
        form.push(("client_id", self.client_id.to_string()));
        match &self.credential {
            Credential::Secret(s) => form.push(("client_secret", s.expose().to_string())),
            Credential::Certificate { key, x5t_s256 } => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", self.assertion(key, x5t_s256, endpoint)));
            }
        }
    }

    /// Exchanges the caller's token for one to `resource` (e.g. `https://graph.microsoft.com`).
    pub async fn on_behalf_of(
        &self,
        tenant: &TenantId,
        user: &BearerToken,
        resource: &str,
    ) -> Result<AccessToken, AcquireError> {
        let endpoint = self.token_endpoint(tenant);
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
            ("assertion", user.expose().to_string()),
            ("requested_token_use", "on_behalf_of".to_string()),
            ("scope", format!("{resource}/.default")),
        ];
        self.with_credential(&mut form, &endpoint);
        self.request(&endpoint, &form).await
    }

    /// An app-only token for a tenant (client credentials).
    pub async fn app_token(&self, tenant: &TenantId, resource: &str) -> Result<AccessToken, AcquireError> {
        let endpoint = self.token_endpoint(tenant);
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("scope", format!("{resource}/.default")),
        ];
        self.with_credential(&mut form, &endpoint);
        self.request(&endpoint, &form).await
    }

    /// POSTs a token request; token requests have no side effects, so transient failures are
    /// retried under the shared policy.
    async fn request(&self, endpoint: &str, form: &[(&'static str, String)]) -> Result<AccessToken, AcquireError> {
        self.policy
            .run(Idempotency::Safe, |_| async {
                let no_answer = |e: reqwest::Error| {
                    Failure::new(AcquireError::Unavailable(e.without_url().to_string()), Retry::NO_ANSWER)
                };
                let resp = self.http.post(endpoint).form(form).send().await.map_err(no_answer)?;
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let body = resp.bytes().await.map_err(no_answer)?;
                if (200..300).contains(&status) {
                    return serde_json::from_slice::<TokenResponse>(&body)
                        .map(|t| AccessToken::new(t.access_token))
                        .map_err(|_| Failure::fatal(AcquireError::Unavailable("unreadable token response".into())));
                }
                match Retry::for_status(status, after) {
                    Retry::Never => {
                        let e: ErrorResponse = serde_json::from_slice(&body).unwrap_or_default();
                        Err(Failure::fatal(classify(status, &e)))
                    }
                    retry => Err(Failure::new(
                        AcquireError::Unavailable(format!("token endpoint answered {status}")),
                        retry,
                    )),
                }
            })
            .await
    }
}

/// Maps Entra's OAuth error to what it means for the caller. AADSTS codes are matched by
/// meaning (65001 consent, 7000229/700016 no service principal in the tenant, 50076/50079
/// MFA, 500133 expired assertion, 50053/50057 locked or disabled user).
fn classify(status: u16, e: &ErrorResponse) -> AcquireError {
    let code = |c: u32| e.error_codes.contains(&c) || e.error_description.starts_with(&format!("AADSTS{c}:"));
    // Only the AADSTS code goes into messages: descriptions can name users.
    let first_code = e
        .error_codes
        .first()
        .map_or_else(|| e.error.clone(), |c| format!("AADSTS{c}"));
    if code(65001) || code(7000229) || code(700016) || e.suberror.as_deref() == Some("consent_required") {
        AcquireError::ConsentRequired(first_code)
    } else if code(53003) {
        AcquireError::Blocked(first_code)
    } else if let Some(reason) = interaction_reason(e, code) {
        AcquireError::InteractionRequired {
            code: first_code,
            reason,
            claims: e.claims.clone().filter(|c| !c.trim().is_empty()),
        }
    } else if e.error == "invalid_client" || e.error == "unauthorized_client" {
        AcquireError::Misconfigured(first_code)
    } else if e.error == "invalid_grant" {
        AcquireError::InvalidGrant(first_code)
    } else {
        AcquireError::Unavailable(format!("{status} {first_code}"))
    }
}

/// Why conditional access refused the exchange, if it did. Entra sends a `claims` challenge
/// with these (Entra docs: "Claims challenges, claims requests, and client capabilities";
/// the OBO flow's error example), as `invalid_grant` or as `interaction_required`.
fn interaction_reason(e: &ErrorResponse, code: impl Fn(u32) -> bool) -> Option<&'static str> {
    if code(50076) || code(50079) || code(50074) {
        Some("multifactor authentication")
    } else if code(50158) {
        Some("an external security challenge")
    } else if code(53000) || code(53001) {
        Some("a compliant or managed device")
    } else if e.claims.as_deref().is_some_and(|c| !c.trim().is_empty()) || e.error == "interaction_required" {
        Some("a stronger sign-in")
    } else {
        None
    }
}

/// The app roles of `required` that an app-only token issued to us does not carry.
///
/// A consent given without some of the application permissions still yields tokens, only
/// without those `roles`, and Microsoft then answers a generic 403. Reading the token we were
/// just given (never verifying it, never granting anything on it) names the missing role
/// instead. A token we cannot read (Microsoft may make it opaque) names none.
pub fn missing_app_roles<'r>(token: &AccessToken, required: &[&'r str]) -> Vec<&'r str> {
    #[derive(Deserialize)]
    struct Claims {
        #[serde(default)]
        roles: Vec<String>,
    }
    let claims = token
        .expose()
        .split('.')
        .nth(1)
        .and_then(|p| B64URL.decode(p.trim_end_matches('=')).ok())
        .and_then(|json| serde_json::from_slice::<Claims>(&json).ok());
    match claims {
        Some(c) => required
            .iter()
            .copied()
            .filter(|r| !c.roles.iter().any(|g| g == r))
            .collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(error: &str, codes: &[u32], sub: Option<&str>) -> ErrorResponse {
        ErrorResponse {
            error: error.into(),
            error_description: codes.first().map_or(String::new(), |c| format!("AADSTS{c}: something")),
            error_codes: codes.to_vec(),
            suberror: sub.map(str::to_string),
            claims: None,
        }
    }

    #[test]
    fn entra_errors_are_classified_by_meaning() {
        assert_eq!(
            classify(400, &err("invalid_grant", &[65001], Some("consent_required"))),
            AcquireError::ConsentRequired("AADSTS65001".into())
        );
        assert_eq!(
            classify(400, &err("unauthorized_client", &[7000229], None)),
            AcquireError::ConsentRequired("AADSTS7000229".into())
        );
        assert_eq!(
            classify(400, &err("invalid_grant", &[50076], None)),
            AcquireError::InteractionRequired {
                code: "AADSTS50076".into(),
                reason: "multifactor authentication",
                claims: None
            }
        );
        assert_eq!(
            classify(400, &err("invalid_grant", &[53003], None)),
            AcquireError::Blocked("AADSTS53003".into())
        );
        let challenge = r#"{"access_token":{"capolids":{"essential":true,"values":["p"]}}}"#;
        let with_claims = ErrorResponse {
            claims: Some(challenge.into()),
            ..err("interaction_required", &[53000], None)
        };
        assert_eq!(
            classify(400, &with_claims),
            AcquireError::InteractionRequired {
                code: "AADSTS53000".into(),
                reason: "a compliant or managed device",
                claims: Some(challenge.into())
            }
        );
        assert_eq!(
            classify(401, &err("invalid_client", &[7000215], None)),
            AcquireError::Misconfigured("AADSTS7000215".into())
        );
        assert_eq!(
            classify(400, &err("invalid_grant", &[500133], None)),
            AcquireError::InvalidGrant("AADSTS500133".into())
        );
    }

    #[test]
    fn certificate_credentials_sign_ps256_assertions() {
        // A fixed RSA key and self-signed certificate (m365-sim registers it as GroupMgr's
        // credential), as a customer would put them in Key Vault.
        let pem = m365_sim::client_cert::GROUPMGR_CLIENT_CERTIFICATE_PEM;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, pem).unwrap();
        let client = TokenClient::new(
            reqwest::Client::new(),
            "https://login.example",
            uuid::Uuid::nil(),
            &ClientCredential::Certificate(path),
        )
        .unwrap();
        let Credential::Certificate { key, x5t_s256 } = &client.credential else {
            panic!("a certificate credential")
        };
        assert_eq!(x5t_s256, m365_sim::client_cert::registered_x5t_s256());
        let jwt = client.assertion(key, x5t_s256, "https://login.example/t/oauth2/v2.0/token");
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: serde_json::Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "PS256");
        let claims: serde_json::Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://login.example/t/oauth2/v2.0/token");
        assert_eq!(claims["iss"], uuid::Uuid::nil().to_string());
        assert_eq!(claims["iss"], claims["sub"]);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        // Accepted by the sim's reading of Entra's rules, signature included.
        assert_eq!(
            m365_sim::client_cert::verify(
                &jwt,
                &uuid::Uuid::nil().to_string(),
                "https://login.example/t/oauth2/v2.0/token",
                now
            ),
            Ok(())
        );
        // A PEM without a key is refused at start-up, naming the setting.
        std::fs::write(
            dir.path().join("nokey.pem"),
            pem.split("-----BEGIN PRIVATE KEY-----").next().unwrap(),
        )
        .unwrap();
        let err = TokenClient::new(
            reqwest::Client::new(),
            "https://login.example",
            uuid::Uuid::nil(),
            &ClientCredential::Certificate(dir.path().join("nokey.pem")),
        )
        .err()
        .expect("no key, no client");
        assert!(err.to_string().starts_with("GROUPMGR_CLIENT_CERTIFICATE"), "{err}");
    }
}
