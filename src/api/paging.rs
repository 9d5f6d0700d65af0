//! Paging parameters shared by every collection route: `top` (a page size within the route's
//! bounds) and `cursor` (an opaque continuation this API handed out). One parser, one error
//! for a cursor that is not ours, one encoding: base64url of the cursor's JSON.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, ErrorCode};

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

/// An opaque cursor carrying a `T` (what the route needs to continue).
pub struct Cursor;

impl Cursor {
    pub fn encode<T: Serialize>(value: &T) -> String {
        // Our cursor payloads are plain structs: serialising cannot fail.
        B64URL.encode(serde_json::to_vec(value).expect("cursor payloads serialise to JSON"))
    }

    pub fn decode<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
        B64URL
            .decode(raw)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid_cursor)
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
        let c = Cursor::encode(&At { offset: 7 });
        assert_eq!(Cursor::decode::<At>(&c).unwrap(), At { offset: 7 });
        for bad in ["zzz", "", "e30", &B64URL.encode(r#"{"offset":-1}"#)] {
            assert_eq!(
                Cursor::decode::<At>(bad).unwrap_err().code,
                ErrorCode::InvalidCursor,
                "{bad}"
            );
        }
    }
}
