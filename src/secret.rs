//! Values that must never be printed: `Secret` (client secrets, connection strings, storage
//! keys) and `AccessToken` (a token GroupMgr obtained for a Microsoft API). A leaf module, so
//! that settings, storage, stores, token acquisition and the Microsoft clients can all hold
//! them without importing one another.

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

/// Tokens and passwords leave no copy behind in freed memory.
impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An access token for a Microsoft API (Graph, the Management Activity API), held for one
/// request or job run and never stored. Not `Display`; `Debug` is redacted.
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}
