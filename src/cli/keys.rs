//! `groupmgr keys generate --out <file>`: a new tenant log key pair for a customer.

use std::path::Path;

use super::CommandError;
use crate::crypto::TenantPrivateKey;

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
