//! The sim's token signing keys and its JWKS, in Entra's published format
//! (aad-tokens.md §2): RSA 2048, `kid`/`x5t`, `n`/`e` base64url, and an `issuer` template.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

/// One RSA signing key with its key id.
pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
}

impl SigningKey {
    /// A fresh RSA-2048 key. The `kid` looks like Entra's (27 base64url characters).
    pub fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation does not fail");
        let id = uuid::Uuid::new_v4();
        let kid = B64URL.encode(&id.as_bytes()[..]).chars().take(27).collect::<String>();
        let kid = format!("{kid:A<27}");
        Self { kid, pair }
    }

    /// The JWK of the public half, as Entra publishes it.
    pub fn jwk(&self, issuer_template: &str) -> Value {
        let components = PublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": B64URL.encode(&components.n),
            "e": B64URL.encode(&components.e),
            "issuer": issuer_template,
        })
    }

    /// RS256 signature over `header.payload`.
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input, &mut sig)
            .expect("RSA signing with a valid key does not fail");
        sig
    }
}

/// Encodes and signs a JWT: `base64url(header).base64url(payload).base64url(signature)`.
/// The header is used as given (tests use this to forge bad headers), so `alg` and `kid`
/// are whatever the caller put there.
pub fn encode_jwt(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", B64URL.encode(sig))
}

/// The standard header Entra puts on v2 access tokens for a given key.
pub fn header_for(key: &SigningKey) -> Value {
    json!({"typ": "JWT", "alg": "RS256", "kid": key.kid})
}

impl SigningKey {
    /// Verifies an RS256 signature made by this key (used when the sim checks assertions).
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let components = PublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        components
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                signing_input,
                signature,
            )
            .is_ok()
    }
}
