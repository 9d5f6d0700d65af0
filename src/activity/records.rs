//! Audit records (management-activity-api.md §4), streamed out of a content blob one at a
//! time: only the fields activity needs are read (message bodies, `MessageURLs`,
//! `HostedContents` and everything else are skipped by the parser, never materialised), and a
//! blob is never held as a vector of records.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

/// The fields of an audit record that activity mapping uses.
#[derive(Debug, Deserialize)]
pub struct AuditRecord<'a> {
    #[serde(rename = "Id", borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "CreationTime", borrow)]
    pub creation_time: Cow<'a, str>,
    #[serde(rename = "RecordType", default, deserialize_with = "int_or_string")]
    pub record_type: Option<i64>,
    #[serde(rename = "UserType", default, deserialize_with = "int_or_string")]
    pub user_type: Option<i64>,
    #[serde(rename = "Workload", default, borrow)]
    pub workload: Option<Cow<'a, str>>,
    #[serde(rename = "Operation", default, borrow)]
    pub operation: Option<Cow<'a, str>>,
    #[serde(rename = "UserId", default, borrow)]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(rename = "SiteUrl", default, borrow)]
    pub site_url: Option<Cow<'a, str>>,
    #[serde(rename = "ItemType", default, borrow)]
    pub item_type: Option<Cow<'a, str>>,
    #[serde(rename = "TeamGuid", default, borrow)]
    pub team_guid: Option<Cow<'a, str>>,
    #[serde(rename = "AADGroupId", default, borrow)]
    pub aad_group_id: Option<Cow<'a, str>>,
}

/// Records encode `RecordType`/`UserType` as integers (the reference sample) or as strings
/// (seen in real exports): accept both.
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a string holding one")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(i64::try_from(v).ok())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

impl AuditRecord<'_> {
    /// `CreationTime`: UTC without a zone suffix (`2015-06-29T20:03:34`), sometimes with
    /// fractions or a `Z`.
    pub fn time(&self) -> Option<DateTime<Utc>> {
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

/// A record, or `None` when the element is not a usable record.
struct Lenient<'a>(Option<AuditRecord<'a>>);

impl<'de> Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de serde_json::value::RawValue>::deserialize(d)?;
        Ok(Lenient(serde_json::from_str::<AuditRecord<'de>>(raw.get()).ok()))
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
          {"CreationTime":"2020-02-17T16:59:34.123Z","Id":"d7636db2","Operation":"TeamsSessionStarted","RecordType":25,"UserType":0,"Workload":"MicrosoftTeams"}
        ]"#;
        let mut seen = Vec::new();
        let (read, skipped) = for_each_record(blob, |r| {
            seen.push((r.id.to_string(), r.record_type, r.user_type, r.time()))
        })
        .unwrap();
        assert_eq!((read, skipped), (4, 1));
        assert_eq!(seen[0].1, Some(25));
        assert_eq!(seen[1].1, Some(6), "string RecordType");
        assert_eq!(seen[1].2, Some(0));
        assert_eq!(seen[0].3.unwrap().to_rfc3339(), "2020-02-17T16:59:44+00:00");
        assert!(seen[2].3.is_some(), "fractions and Z");
        assert!(for_each_record(b"{}", |_| ()).is_err());
        assert!(for_each_record(b"[1,2", |_| ()).is_err());
        assert_eq!(for_each_record(b"[]", |_| ()).unwrap(), (0, 0));
    }
}
