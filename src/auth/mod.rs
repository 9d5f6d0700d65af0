//! Who is calling, and may they: inbound Entra ID v2 token validation against the JWKS
//! (`jwks.rs`, `token.rs`) and the tenant + licence gate (`gate.rs`). And how GroupMgr
//! calls Microsoft in turn: outbound token acquisition, on behalf of the caller or app-only
//! (`outbound.rs`).
//!
//! Tokens are held only for the duration of one request, never stored, cached or logged:
//! `BearerToken` has no `Debug`/`Display` that would reveal it.

/// The app role that may change the group-creation policy, start syncs and read logs.
pub const ADMIN_ROLE: &str = "GroupMgr.Admin";

mod gate;
mod jwks;
mod outbound;
mod token;

pub use gate::{Caller, Gate, GateError, Refused};
pub use jwks::{JwksCache, JwksOptions, KeyLookupError};
pub use outbound::{AcquireError, TokenClient, missing_app_roles};
pub use token::{BearerToken, Principal, TokenError, TokenValidator, Upn, bearer_from_header};
