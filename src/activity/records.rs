//! Audit records (management-activity-api.md §4), streamed out of a content blob one at a
//! time: only the fields activity needs are read (message bodies, `MessageURLs`,
//! `HostedContents` and everything else are skipped by the parser, never materialised), and a
//! blob is never held as a vector of records.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Visitor methods that turn every other JSON value into `Self::Value`'s `None` (wrapped),
/// consuming arrays and objects.
macro_rules! other_values_are_none {
    () => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
}

/// The fields of an audit record that activity mapping uses. Strings borrow from the blob
/// unless they contain escapes.
#[derive(Debug, Default)]
pub struct AuditRecord<'a> {
    pub id: Cow<'a, str>,
    pub creation_time: Cow<'a, str>,
    pub record_type: Option<i64>,
    pub user_type: Option<i64>,
    pub workload: Option<Cow<'a, str>>,
    pub operation: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub site_url: Option<Cow<'a, str>>,
    pub item_type: Option<Cow<'a, str>>,
    pub team_guid: Option<Cow<'a, str>>,
    pub aad_group_id: Option<Cow<'a, str>>,
}

/// A string field, or `None` for any other JSON value (skipped without failing the record).
#[derive(Default)]
struct LenientStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for LenientStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
            other_values_are_none!();
        }
        d.deserialize_any(V)
    }
}

/// `RecordType`/`UserType`: integers in the reference sample, strings in some real exports.
struct LenientInt(Option<i64>);

impl<'de> Deserialize<'de> for LenientInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientInt(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientInt(i64::try_from(v).ok()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientInt(v.trim().parse().ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientInt(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientInt(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientInt(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientInt(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientInt(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl AuditRecord<'_> {
    /// `CreationTime`: UTC without a zone suffix (`2015-06-29T20:03:34`), sometimes with
    /// fractions or a `Z`.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        if let Some(t) = fast_time(self.creation_time.as_bytes()) {
            return Some(t);
        }
        let t = self.creation_time.trim_end_matches('Z');
        NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|n| n.and_utc())
            .or_else(|| {
                DateTime::parse_from_rfc3339(&self.creation_time)
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            })
    }
}

/// `YYYY-MM-DDTHH:MM:SS` exactly (what the feed sends), parsed without a format string.
fn fast_time(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    Some(date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?.and_utc())
}

/// Why a blob could not be read.
#[derive(Debug, thiserror::Error)]
#[error("audit blob is not a JSON array of records: {0}")]
pub struct BlobError(String);

/// Calls `f` for each record of a blob (a JSON array), in order, without collecting them.
/// A record that does not parse (missing `Id`/`CreationTime`) is counted and skipped; a blob
/// that is not an array is an error. Returns (records read, records skipped).
pub fn for_each_record<F>(blob: &[u8], f: F) -> Result<(u64, u64), BlobError>
where
    F: FnMut(&AuditRecord<'_>),
{
    struct Each<F>(F);
    impl<'de, F: FnMut(&AuditRecord<'_>)> DeserializeSeed<'de> for &mut Each<F> {
        type Value = (u64, u64);
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de, F: FnMut(&AuditRecord<'_>)> Visitor<'de> for &mut Each<F> {
        type Value = (u64, u64);
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of audit records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let (mut read, mut skipped) = (0, 0);
            // Each element is parsed as a loose value first only when the strict parse
            // fails, so a single odd record cannot abort the blob.
            while let Some(item) = seq.next_element::<Lenient<'de>>()? {
                read += 1;
                match item.0 {
                    Some(r) => (self.0)(&r),
                    None => skipped += 1,
                }
            }
            Ok((read, skipped))
        }
    }
    let mut each = Each(f);
    let mut de = serde_json::Deserializer::from_slice(blob);
    let out = (&mut each).deserialize(&mut de).map_err(|e| BlobError(e.to_string()))?;
    de.end().map_err(|e| BlobError(e.to_string()))?;
    Ok(out)
}

/// A record, or `None` when the element is not a usable record (not an object, or without
/// a string `Id` and `CreationTime`). One pass: fields activity does not use, message
/// contents included, are skipped by the parser, never materialised.
#[derive(Default)]
struct Lenient<'a>(Option<AuditRecord<'a>>);

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an audit record")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = AuditRecord::default();
                let (mut id, mut time) = (None, None);
                while let Some(key) = map.next_key::<LenientStr<'de>>()? {
                    let s = |map: &mut A| map.next_value::<LenientStr<'de>>().map(|v| v.0);
                    match key.0.as_deref().unwrap_or_default() {
                        "Id" => id = s(&mut map)?,
                        "CreationTime" => time = s(&mut map)?,
                        "RecordType" => r.record_type = map.next_value::<LenientInt>()?.0,
                        "UserType" => r.user_type = map.next_value::<LenientInt>()?.0,
                        "Workload" => r.workload = s(&mut map)?,
                        "Operation" => r.operation = s(&mut map)?,
                        "UserId" => r.user_id = s(&mut map)?,
                        "SiteUrl" => r.site_url = s(&mut map)?,
                        "ItemType" => r.item_type = s(&mut map)?,
                        "TeamGuid" => r.team_guid = s(&mut map)?,
                        "AADGroupId" => r.aad_group_id = s(&mut map)?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Lenient(id.zip(time).map(|(id, creation_time)| AuditRecord {
                    id,
                    creation_time,
                    ..r
                })))
            }
            other_values_are_none!();
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reference_samples_and_skips_content_fields() {
        let blob = br#"[
          {"CreationTime":"2020-02-17T16:59:44","Id":"49fa9883-50a9-4c9c-8e12-57e0948a9d8a","Operation":"TeamCreated","OrganizationId":"b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd","RecordType":25,"TeamGuid":"19:5ad83cb367fc48358e759dccff238f46@thread.skype","TeamName":"SIEMTest","UserId":"Application","UserKey":"","UserType":5,"Version":1,"Workload":"MicrosoftTeams","MessageURLs":["https://x/y"],"HostedContents":[{"Id":"aGVsbG8="}]},
          {"ClientIP":"67.43.156.15","CreationTime":"2020-02-07T16:44:08","EventSource":"SharePoint","Id":"25b08f04-48ee-4755-ce22-08d7abecf3a9","ItemType":"File","Operation":"FileAccessed","RecordType":"6","SiteUrl":"https://testsiem-my.sharepoint.com/personal/asr_testsiem_onmicrosoft_com/","UserId":"asr@testsiem.onmicrosoft.com","UserType":"0","Workload":"OneDrive"},
          {"not":"a record"},
          42,
          ["nor", "this"],
          {"Id":7,"CreationTime":"2020-02-17T16:59:44"},
          {"Id":"odd-fields","CreationTime":"2020-02-17T16:59:44","RecordType":{"a":1},"UserType":[1],"SiteUrl":{"nested":["x"]},"Workload":null,"Operation":"Op\u00e9ration"},
          {"CreationTime":"2020-02-17T16:59:34.123Z","Id":"d7636db2","Operation":"TeamsSessionStarted","RecordType":25,"UserType":0,"Workload":"MicrosoftTeams"}
        ]"#;
        let mut seen = Vec::new();
        let (read, skipped) = for_each_record(blob, |r| {
            seen.push((r.id.to_string(), r.record_type, r.user_type, r.time()))
        })
        .unwrap();
        assert_eq!((read, skipped), (8, 4));
        let odd = &seen[2];
        assert_eq!(
            (odd.0.as_str(), odd.1, odd.2),
            ("odd-fields", None, None),
            "wrong types are absent, not fatal"
        );
        assert_eq!(seen[0].1, Some(25));
        assert_eq!(seen[1].1, Some(6), "string RecordType");
        assert_eq!(seen[1].2, Some(0));
        assert_eq!(seen[0].3.unwrap().to_rfc3339(), "2020-02-17T16:59:44+00:00");
        assert!(seen[3].3.is_some(), "fractions and Z");
        let at = |t: &str| {
            AuditRecord {
                creation_time: t.into(),
                ..Default::default()
            }
            .time()
        };
        assert_eq!(
            at("2026-11-01T09:05:07").unwrap().to_rfc3339(),
            "2026-11-01T09:05:07+00:00"
        );
        assert_eq!(at("2026-11-01T09:05:07.5").unwrap().timestamp_subsec_millis(), 500);
        for bad in [
            "2026-02-30T10:00:00",
            "2026-11-01T24:00:00",
            "2026-11-01 10:00:00",
            "2026-1a-01T10:00:00",
            "",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert!(for_each_record(b"{}", |_| ()).is_err());
        assert!(for_each_record(b"[1,2", |_| ()).is_err());
        assert_eq!(for_each_record(b"[]", |_| ()).unwrap(), (0, 0));
    }
}
