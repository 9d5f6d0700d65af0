//! Types that are valid by construction: once a value of one of these types exists, the rule it
//! stands for has been checked, so handlers and stores never re-validate ("parse, don't
//! validate").

mod group;
mod tenant;

pub use group::*;
pub use tenant::{Seats, TenantId, TenantRecord, TenantStatus};

/// Why a piece of input was refused: which field, and the rule it broke. Rendered to callers
/// as a 400 with code `invalid_input`, and to operators as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub rule: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

/// Parses a GUID in the canonical hyphenated 8-4-4-4-12 form that Entra ID and Graph use
/// (`tid`, object ids), lower-cased. Braced, URN and unhyphenated forms are refused so that one
/// identity has exactly one spelling in our data.
pub fn parse_guid(field: &'static str, raw: &str) -> Result<uuid::Uuid, InvalidInput> {
    let rule = || InvalidInput::new(field, "must be a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47");
    if raw.len() != 36 {
        return Err(rule());
    }
    uuid::Uuid::try_parse(raw).map_err(|_| rule())
}
