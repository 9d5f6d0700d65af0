//! `groupmgr keys generate --out <file>`: a new tenant log key pair for a customer;
//! `groupmgr keys publisher`: GroupMgr's publisher public key, for readers of the logs.

use std::path::Path;

use super::CommandError;
use crate::crypto::{PublisherKey, TenantPrivateKey};

/// Writes the private key file (0600, never overwriting) and returns the two lines to print.
pub fn generate(out: &Path) -> Result<String, CommandError> {
    let key = TenantPrivateKey::generate();
    key.write_new(out)?;
    Ok(format!(
        "public-key: {}\nkey-id: {}",
        key.public().to_text(),
        key.public().id()
    ))
}

/// The two lines `keys publisher` prints: the public half only (never the private key).
pub fn publisher(key: &PublisherKey) -> String {
    format!(
        "publisher-key: {}\nkey-id: {}",
        key.public().to_text(),
        key.public().id()
    )
}
