//! A customer tenant as GroupMgr knows it: its Entra tenant id, whether it may use the product,
//! and its licence (seat count and expiry).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{InvalidInput, parse_guid};

/// An Entra ID tenant id (the `tid` claim): a GUID, always held lower-case hyphenated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(uuid::Uuid);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        parse_guid("tenantId", raw).map(Self)
    }

    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({self})")
    }
}

impl FromStr for TenantId {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.to_string()
    }
}

/// Whether a tenant may use the product. Only `Active` tenants pass the gate; `Offboarded`
/// tenants have had their keys and users deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
    Offboarded,
}

impl TenantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Offboarded => "offboarded",
        }
    }
}

impl FromStr for TenantStatus {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "offboarded" => Ok(Self::Offboarded),
            _ => Err(InvalidInput::new("status", "must be active, suspended or offboarded")),
        }
    }
}

/// The number of unique users a tenant's licence admits: at least 1, at most 10 million (a
/// bound that keeps arithmetic and SQL `INT` columns safe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Seats(u32);

impl Seats {
    pub const MAX: u32 = 10_000_000;

    pub fn new(n: u32) -> Result<Self, InvalidInput> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(InvalidInput::new(
                "seats",
                format!("must be between 1 and {}", Self::MAX),
            ))
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        raw.trim()
            .parse::<u32>()
            .map_err(|_| InvalidInput::new("seats", "must be a whole number"))
            .and_then(Self::new)
    }

    pub fn get(&self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Seats {
    type Error = InvalidInput;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<Seats> for u32 {
    fn from(s: Seats) -> u32 {
        s.0
    }
}

/// Everything the gate and the operator CLI need to know about one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    pub status: TenantStatus,
    pub seats: Seats,
    /// Last day (UTC, inclusive) on which the licence is valid; `None` = no expiry.
    pub licence_expires: Option<NaiveDate>,
    /// The tenant's current log public key (new data is sealed to it); `None` until the
    /// customer registers one.
    #[serde(skip)]
    pub log_key: Option<crate::crypto::TenantPublicKey>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub offboarded_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TenantRecord {
    /// Whether the licence is still valid on the given UTC day.
    pub fn licence_valid_on(&self, day: NaiveDate) -> bool {
        self.licence_expires.is_none_or(|last| day <= last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_accepts_canonical_guid_and_lowercases() {
        let t = TenantId::parse("72F988BF-86F1-41AF-91AB-2D7CD011DB47").unwrap();
        assert_eq!(t.to_string(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
    }

    #[test]
    fn tenant_id_refuses_other_spellings() {
        for bad in [
            "",
            "common",
            "72f988bf86f141af91ab2d7cd011db47",
            "{72f988bf-86f1-41af-91ab-2d7cd011db47}",
            "urn:uuid:72f988bf-86f1-41af-91ab-2d7cd011db47",
            "72f988bf-86f1-41af-91ab-2d7cd011db4g",
            "72f988bf-86f1-41af-91ab-2d7cd011db47 ",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn seats_bounds() {
        assert!(Seats::parse("0").is_err());
        assert!(Seats::parse("-1").is_err());
        assert!(Seats::parse("ten").is_err());
        assert_eq!(Seats::parse("25").unwrap().get(), 25);
        assert!(Seats::new(Seats::MAX + 1).is_err());
    }

    #[test]
    fn licence_expiry_is_inclusive() {
        let rec = TenantRecord {
            tenant_id: TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
            status: TenantStatus::Active,
            seats: Seats::new(1).unwrap(),
            licence_expires: NaiveDate::from_ymd_opt(2026, 1, 31),
            log_key: None,
            created_at: chrono::Utc::now(),
            offboarded_at: None,
        };
        assert!(rec.licence_valid_on(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()));
        assert!(!rec.licence_valid_on(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()));
    }
}
