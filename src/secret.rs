//! `Secret`: a string that must never be printed (client secrets, connection strings, storage
//! keys). A leaf module, so that settings, storage and stores can all hold secrets without
//! importing one another.

use std::fmt;

/// A string whose `Debug` is redacted and which has no `Display`; `expose` is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
