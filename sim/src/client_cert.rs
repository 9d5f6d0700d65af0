//! GroupMgr's certificate credential as Entra ID holds it: the app registration's registered
//! certificate (`keyCredentials`), against which the token endpoint checks a
//! `private_key_jwt` client assertion.
//!
//! Source: Microsoft Learn, "Microsoft identity platform application authentication
//! certificate credentials" (header `alg` PS256 — RS256 still accepted —, `x5t#S256` =
//! base64url SHA-256 of the certificate's DER, legacy `x5t` = SHA-1; claims `aud` = the token
//! endpoint, `iss` = `sub` = the client id, `jti`, `nbf`, `exp`), and the error codes of
//! "Troubleshoot Azure SDK authentication with a service principal": AADSTS700027 (invalid
//! signature / key not found), AADSTS700024 (not within its valid time range), AADSTS700021
//! (issuer/subject is not the client id), AADSTS700023 (audience is not this token
//! endpoint). All answer 401 `invalid_client`.
//!
//! The key pair is a fixed test key (`data/groupmgr-test-client.pem`, certificate then
//! PKCS#8 key): it protects nothing, m365-sim's users and tenants being fictional. Tests write
//! the PEM to a file and point `GROUPMGR_CLIENT_CERTIFICATE` at it.

use std::sync::OnceLock;

use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use serde_json::Value;

/// The certificate and its private key, as GroupMgr's operator would hold them (PEM).
pub const GROUPMGR_CLIENT_CERTIFICATE_PEM: &str = include_str!("../data/groupmgr-test-client.pem");

/// Why an assertion was refused: the AADSTS code and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionRefused {
    pub code: u32,
    pub description: &'static str,
}

fn refused(code: u32, description: &'static str) -> AssertionRefused {
    AssertionRefused { code, description }
}

/// The registered certificate: its DER and public key.
struct Registered {
    x5t_s256: String,
    x5t: String,
    public_key: Vec<u8>,
}

fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem.split(&begin).nth(1)?.split(&end).next()?;
    B64.decode(body.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .ok()
}

fn registered() -> &'static Registered {
    static REGISTERED: OnceLock<Registered> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // The PEM is a constant of this crate: a block missing is a build mistake.
        let cert = pem_block(GROUPMGR_CLIENT_CERTIFICATE_PEM, "CERTIFICATE").expect("test PEM has a certificate");
        let key = pem_block(GROUPMGR_CLIENT_CERTIFICATE_PEM, "PRIVATE KEY").expect("test PEM has a PKCS#8 key");
        let key = RsaKeyPair::from_pkcs8(&key).expect("test PEM key is an RSA PKCS#8 key");
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert);
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        Registered {
            x5t_s256: B64URL.encode(sha256.as_ref()),
            x5t: B64URL.encode(sha1.as_ref()),
            public_key: key.public_key().as_ref().to_vec(),
        }
    })
}

/// `x5t#S256` of the registered certificate.
pub fn registered_x5t_s256() -> &'static str {
    &registered().x5t_s256
}

/// Checks a client assertion for `client_id` presented at `token_endpoint` at time `now`
/// (Unix seconds).
pub fn verify(assertion: &str, client_id: &str, token_endpoint: &str, now: i64) -> Result<(), AssertionRefused> {
    let malformed = || {
        refused(
            700027,
            "Client assertion failed signature validation. The assertion is malformed.",
        )
    };
    let [h, p, s] = assertion.split('.').collect::<Vec<_>>()[..] else {
        return Err(malformed());
    };
    let decode = |part: &str| -> Option<Value> { serde_json::from_slice(&B64URL.decode(part).ok()?).ok() };
    let (Some(header), Some(claims)) = (decode(h), decode(p)) else {
        return Err(malformed());
    };
    let signature = B64URL.decode(s).map_err(|_| malformed())?;
    let reg = registered();
    let key_known =
        header["x5t#S256"].as_str() == Some(reg.x5t_s256.as_str()) || header["x5t"].as_str() == Some(reg.x5t.as_str());
    if !key_known {
        return Err(refused(
            700027,
            "Client assertion contains an invalid signature. [Reason - The key was not found.]",
        ));
    }
    let algorithm: &'static dyn signature::VerificationAlgorithm = match header["alg"].as_str() {
        Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        _ => {
            return Err(refused(
                700027,
                "Client assertion contains an invalid signature. [Reason - The algorithm is not supported.]",
            ));
        }
    };
    UnparsedPublicKey::new(algorithm, &reg.public_key)
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .map_err(|_| refused(700027, "Client assertion contains an invalid signature."))?;
    if claims["iss"].as_str() != Some(client_id) || claims["sub"].as_str() != Some(client_id) {
        return Err(refused(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    if claims["aud"].as_str() != Some(token_endpoint) {
        return Err(refused(
            700023,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    // Entra allows a few minutes of clock skew; the sim allows none beyond `exp`/`nbf`.
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let nbf = claims["nbf"].as_i64().unwrap_or(i64::MIN);
    if exp <= now || nbf > now {
        return Err(refused(700024, "Client assertion is not within its valid time range."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs an assertion with the test key, as GroupMgr does.
    fn sign(header: &Value, claims: &Value) -> String {
        let key = pem_block(GROUPMGR_CLIENT_CERTIFICATE_PEM, "PRIVATE KEY").unwrap();
        let key = RsaKeyPair::from_pkcs8(&key).unwrap();
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            &signature::RSA_PSS_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", B64URL.encode(sig))
    }

    #[test]
    fn assertions_are_checked_as_entra_checks_them() {
        let endpoint = "http://127.0.0.1:1/t/oauth2/v2.0/token";
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": registered_x5t_s256()});
        let claims =
            serde_json::json!({"aud": endpoint, "iss": "app", "sub": "app", "jti": "1", "nbf": 100, "exp": 700});
        let good = sign(&header, &claims);
        assert_eq!(verify(&good, "app", endpoint, 500), Ok(()));
        let code = |r: Result<(), AssertionRefused>| r.unwrap_err().code;
        assert_eq!(code(verify(&good, "app", endpoint, 700)), 700024, "expired");
        assert_eq!(code(verify(&good, "app", endpoint, 99)), 700024, "not yet valid");
        assert_eq!(code(verify(&good, "other", endpoint, 500)), 700021);
        assert_eq!(
            code(verify(&good, "app", "http://127.0.0.1:1/x/oauth2/v2.0/token", 500)),
            700023
        );
        let mut unknown = header.clone();
        unknown["x5t#S256"] = "not-the-registered-thumbprint".into();
        assert_eq!(code(verify(&sign(&unknown, &claims), "app", endpoint, 500)), 700027);
        let tampered = good.replacen('.', ".e30", 1);
        assert_eq!(code(verify(&tampered, "app", endpoint, 500)), 700027);
    }
}
