//! Paging parameters shared by every collection route: `top` (a page size within the route's
//! bounds) and `cursor` (an opaque continuation this API handed out). One parser, one error
//! for a cursor that is not ours, one encoding: base64url of the cursor's JSON, a dot, and
//! base64url of its HMAC-SHA256 tag over the tenant, the route (with its ids) and the JSON
//! (the query the page was for is in the JSON). A cursor edited, made up, or presented by
//! another tenant or on another route is `400 invalid_cursor`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, ErrorCode};
use crate::crypto::CursorKey;
use crate::domain::TenantId;

/// A page size: `top`, from 1 to the route's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Top(u32);

impl Top {
    /// Parses the `top` query value, or says the bounds.
    pub fn parse(raw: &str, max: u32) -> Result<Self, ApiError> {
        raw.parse()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .map(Self)
            .ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidInput,
                    format!("top: must be a whole number from 1 to {max}"),
                )
            })
    }

    /// A route's default page size (a constant within its bounds).
    pub const fn default_of(n: u32) -> Self {
        Self(n)
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

/// The `400 invalid_cursor` answer.
pub fn invalid_cursor() -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not one this API returned")
}

/// What a cursor is bound to: the tenant and the route it was handed out on.
pub struct CursorScope<'a> {
    pub key: &'a CursorKey,
    pub tenant: &'a TenantId,
    /// The route with its ids, e.g. `groups/{id}/members`.
    pub route: String,
}

/// An opaque, authenticated cursor carrying a `T` (what the route needs to continue).
pub struct Cursor;

const CURSOR_VERSION: &[u8] = b"v1";

impl Cursor {
    pub fn encode<T: Serialize>(scope: &CursorScope<'_>, value: &T) -> String {
        // Our cursor payloads are plain structs: serialising cannot fail.
        let json = serde_json::to_vec(value).expect("cursor payloads serialise to JSON");
        let tag = scope.key.sign(&Self::parts(scope, &json));
        format!("{}.{}", B64URL.encode(&json), B64URL.encode(tag.as_ref()))
    }

    pub fn decode<T: DeserializeOwned>(scope: &CursorScope<'_>, raw: &str) -> Result<T, ApiError> {
        let (json, tag) = raw.split_once('.').ok_or_else(invalid_cursor)?;
        let (json, tag) = (
            B64URL.decode(json).map_err(|_| invalid_cursor())?,
            B64URL.decode(tag).map_err(|_| invalid_cursor())?,
        );
        if !scope.key.verify(&Self::parts(scope, &json), &tag) {
            return Err(invalid_cursor());
        }
        serde_json::from_slice(&json).map_err(|_| invalid_cursor())
    }

    fn parts<'a>(scope: &'a CursorScope<'_>, json: &'a [u8]) -> [&'a [u8]; 4] {
        [
            CURSOR_VERSION,
            scope.tenant.as_uuid().as_bytes(),
            scope.route.as_bytes(),
            json,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_bounds() {
        assert_eq!(Top::parse("1", 10).unwrap().get(), 1);
        assert_eq!(Top::parse("10", 10).unwrap().get(), 10);
        for bad in ["0", "11", "-1", "x", ""] {
            assert_eq!(Top::parse(bad, 10).unwrap_err().code, ErrorCode::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct At {
            offset: usize,
        }
        let key = CursorKey::derive(&crate::crypto::IndexKey::from_bytes([7; 32]));
        let (t1, t2) = (
            TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            TenantId::parse("11111111-2222-3333-4444-555555555555").unwrap(),
        );
        let scope = |tenant, route: &str| CursorScope {
            key: &key,
            tenant,
            route: route.to_string(),
        };
        let here = scope(&t1, "activity");
        let c = Cursor::encode(&here, &At { offset: 7 });
        assert_eq!(Cursor::decode::<At>(&here, &c).unwrap(), At { offset: 7 });
        // Another tenant, another route, another key: refused.
        let other_key = CursorKey::derive(&crate::crypto::IndexKey::from_bytes([8; 32]));
        for (s, what) in [
            (scope(&t2, "activity"), "tenant"),
            (scope(&t1, "groups"), "route"),
            (
                CursorScope {
                    key: &other_key,
                    tenant: &t1,
                    route: "activity".into(),
                },
                "key",
            ),
        ] {
            assert_eq!(
                Cursor::decode::<At>(&s, &c).unwrap_err().code,
                ErrorCode::InvalidCursor,
                "{what}"
            );
        }
        // Edited payload (same tag), made-up cursors, garbage.
        let (_, tag) = c.split_once('.').unwrap();
        let edited = format!("{}.{tag}", B64URL.encode(r#"{"offset":8}"#));
        for bad in ["zzz", "", "e30", &edited, &B64URL.encode(r#"{"offset":7}"#), "a.b.c"] {
            assert_eq!(
                Cursor::decode::<At>(&here, bad).unwrap_err().code,
                ErrorCode::InvalidCursor,
                "{bad}"
            );
        }
    }
}
