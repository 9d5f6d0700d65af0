//! Group activity from what Microsoft records: audit records of the Management Activity API
//! (`records.rs`: streamed, one at a time; `mapping.rs`: which group a record concerns) and
//! the usage reports (`usage_reports.rs`: Teams team activity, Microsoft 365 groups activity).
//! The result per group is a maximum of times (`LastActivity`), so replays and duplicate
//! records cannot change it.

pub mod days;
pub mod mapping;
pub mod records;
pub mod reported;
pub mod usage_reports;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

pub use days::{ActivityDays, DaySet, Pseudonym};
use mapping::GroupIndex;
use records::{BlobError, for_each_record};
pub use reported::ReportedCounts;

/// The latest activity seen for one group, and the days it was active (per signal, per
/// person).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastActivity {
    /// The later of the Teams report's and the audit feed's (`teams_by`).
    #[serde(default)]
    pub teams: Option<DateTime<Utc>>,
    /// Teams activity by the source that saw it.
    #[serde(default, skip_serializing_if = "TeamsSources::is_empty")]
    pub teams_by: TeamsSources,
    #[serde(default)]
    pub sharepoint: Option<DateTime<Utc>>,
    /// The group mailbox's (the Microsoft 365 groups activity report).
    #[serde(default)]
    pub mail: Option<DateTime<Utc>>,
    /// SharePoint activity by kind (each is also in `sharepoint`, which has sharing as well):
    /// file edits (uploads, changes, moves, deletions), file views (opened, previewed,
    /// downloaded), page views and list item changes. `None` also for activity recorded
    /// before GroupMgr split SharePoint's records by kind.
    #[serde(default, skip_serializing_if = "SharePointKinds::is_empty")]
    pub kinds: SharePointKinds,
    #[serde(default, skip_serializing_if = "ActivityDays::is_empty")]
    pub days: ActivityDays,
    /// What the usage reports count over their 7, 30 and 90 days (the latest report's).
    #[serde(default, skip_serializing_if = "ReportedCounts::is_empty")]
    pub reported: ReportedCounts,
}

/// The latest Teams activity each source saw: the Teams team activity report (a day) and
/// the audit feed's Teams records (a time). `None` also for activity recorded before GroupMgr
/// kept them apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TeamsSources {
    #[serde(default, rename = "r", skip_serializing_if = "Option::is_none")]
    pub report: Option<DateTime<Utc>>,
    #[serde(default, rename = "a", skip_serializing_if = "Option::is_none")]
    pub audit: Option<DateTime<Utc>>,
}

impl TeamsSources {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The latest SharePoint activity of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharePointKinds {
    #[serde(default, rename = "e", skip_serializing_if = "Option::is_none")]
    pub file_edit: Option<DateTime<Utc>>,
    #[serde(default, rename = "v", skip_serializing_if = "Option::is_none")]
    pub file_view: Option<DateTime<Utc>>,
    #[serde(default, rename = "p", skip_serializing_if = "Option::is_none")]
    pub page: Option<DateTime<Utc>>,
    #[serde(default, rename = "l", skip_serializing_if = "Option::is_none")]
    pub list: Option<DateTime<Utc>>,
}

/// The index of the Teams signal in `ActivityDays::signals` (`lifecycle::Signal`'s order).
pub const TEAMS_SIGNAL: usize = 0;

/// Which kind of SharePoint activity a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharePointKind {
    FileEdit,
    FileView,
    Page,
    List,
}

impl SharePointKind {
    /// Its index in `ActivityDays::signals`.
    pub fn signal(self) -> usize {
        match self {
            SharePointKind::FileEdit => 1,
            SharePointKind::FileView => 2,
            SharePointKind::Page => 3,
            SharePointKind::List => 4,
        }
    }
}

impl SharePointKinds {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn slot(&mut self, kind: SharePointKind) -> &mut Option<DateTime<Utc>> {
        match kind {
            SharePointKind::FileEdit => &mut self.file_edit,
            SharePointKind::FileView => &mut self.file_view,
            SharePointKind::Page => &mut self.page,
            SharePointKind::List => &mut self.list,
        }
    }

    pub fn get(&self, kind: SharePointKind) -> Option<DateTime<Utc>> {
        let mut copy = *self;
        *copy.slot(kind)
    }

    fn merge(&mut self, other: SharePointKinds) {
        self.file_edit = later(self.file_edit, other.file_edit);
        self.file_view = later(self.file_view, other.file_view);
        self.page = later(self.page, other.page);
        self.list = later(self.list, other.list);
    }
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl LastActivity {
    /// Merges another observation (a maximum per kind, a union of days).
    pub fn merge(&mut self, other: LastActivity) {
        self.teams = later(self.teams, other.teams);
        self.teams_by.report = later(self.teams_by.report, other.teams_by.report);
        self.teams_by.audit = later(self.teams_by.audit, other.teams_by.audit);
        self.sharepoint = later(self.sharepoint, other.sharepoint);
        self.mail = later(self.mail, other.mail);
        self.kinds.merge(other.kinds);
        self.days.merge(&other.days);
        self.reported.merge(other.reported);
    }

    /// SharePoint activity of one kind at `time` (it is SharePoint activity too).
    pub fn sharepoint_at(time: DateTime<Utc>, kind: Option<SharePointKind>) -> Self {
        let mut a = LastActivity {
            sharepoint: Some(time),
            ..Default::default()
        };
        if let Some(k) = kind {
            *a.kinds.slot(k) = Some(time);
            a.days.signals[k.signal()].insert(days::day_of(time));
        }
        a
    }

    /// Teams activity at `time`.
    pub fn teams_at(time: DateTime<Utc>) -> Self {
        let mut a = LastActivity {
            teams: Some(time),
            teams_by: TeamsSources {
                audit: Some(time),
                report: None,
            },
            ..Default::default()
        };
        a.days.signals[TEAMS_SIGNAL].insert(days::day_of(time));
        a
    }

    /// The Teams report's last activity day (a time: the report names no day's activity
    /// but the last, so it adds no active day).
    pub fn teams_report_day(day: chrono::NaiveDate) -> Self {
        let time = days::midnight(day);
        LastActivity {
            teams: Some(time),
            teams_by: TeamsSources {
                report: Some(time),
                audit: None,
            },
            ..Default::default()
        }
    }

    /// The groups report's last activity day of a group whose mailbox received mail.
    pub fn mail_report_day(day: chrono::NaiveDate) -> Self {
        LastActivity {
            mail: Some(days::midnight(day)),
            ..Default::default()
        }
    }

    /// The Teams report's counts over its periods.
    pub fn reported_teams(c: reported::Reported<reported::TeamsCounts>) -> Self {
        let mut a = LastActivity::default();
        a.reported.teams = Some(c);
        a
    }

    /// The groups report's received mail over its periods.
    pub fn reported_mail(c: reported::Reported<u64>) -> Self {
        let mut a = LastActivity::default();
        a.reported.mail = Some(c);
        a
    }

    /// This activity, done by `who` (on the days it holds).
    pub fn by(mut self, who: Pseudonym) -> Self {
        let mut all = DaySet::default();
        for s in self.days.signals {
            all.merge(s);
        }
        if let Some(t) = self.teams.or(self.sharepoint).or(self.mail) {
            all.insert(days::day_of(t));
        }
        self.days.add_person(who, all);
        self
    }

    /// The overall last activity.
    pub fn overall(&self) -> Option<DateTime<Utc>> {
        later(later(self.teams, self.sharepoint), self.mail)
    }
}

/// Per-group last activity, merged from any number of sources; groups by GUID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityMap(pub HashMap<uuid::Uuid, LastActivity>);

impl ActivityMap {
    pub fn record(&mut self, group: uuid::Uuid, seen: LastActivity) {
        match self.0.entry(group) {
            std::collections::hash_map::Entry::Occupied(mut a) => a.get_mut().merge(seen),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(seen);
            }
        }
    }

    /// `record` for a group id as text (a report's, the pending work's); one that is not a
    /// GUID names no group of ours and is skipped.
    pub fn record_id(&mut self, group: &str, seen: LastActivity) {
        if let Ok(g) = uuid::Uuid::parse_str(group) {
            self.record(g, seen);
        }
    }

    pub fn merge(&mut self, other: ActivityMap) {
        for (g, a) in other.0 {
            self.record(g, a);
        }
    }
}

/// Record ids seen recently in this run, for counts that do not count Microsoft's repeats
/// twice. Kept as 64-bit digests (8 bytes a record; a false repeat among a million records has
/// odds of about 1 in 4·10^7), never the ids themselves. Only the current and the previous
/// window's ids are kept (`next_window`): repeats come in nearby blobs, and activity is a
/// maximum, so a repeat counted twice changes a count, never a row; memory stays bounded by two
/// windows, not by the 7 days.
#[derive(Default)]
pub struct SeenIds(DigestSet, DigestSet);

type DigestSet = HashSet<u64, std::hash::BuildHasherDefault<DigestHasher>>;

/// The digests are already well mixed: hashing them again (SipHash) would only cost time.
#[derive(Default)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl SeenIds {
    /// Room for `n` ids without growing.
    pub fn with_capacity(n: usize) -> Self {
        Self(
            HashSet::with_capacity_and_hasher(n, Default::default()),
            DigestSet::default(),
        )
    }

    /// A new window begins: the one before last is forgotten.
    pub fn next_window(&mut self) {
        self.1 = std::mem::take(&mut self.0);
    }

    /// Whether `id` is new.
    pub fn insert(&mut self, id: &str) -> bool {
        let digest = match uuid::Uuid::try_parse(id) {
            Ok(u) => {
                let v = u.as_u128();
                (v as u64) ^ ((v >> 64) as u64).rotate_left(29)
            }
            Err(_) => {
                use std::hash::{Hash, Hasher};
                // SipHash with fixed keys: stable within the run, which is all that matters.
                let mut h = std::hash::DefaultHasher::new();
                id.hash(&mut h);
                h.finish()
            }
        };
        !self.1.contains(&digest) && self.0.insert(digest)
    }

    pub fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_empty()
    }

    /// Heap bytes the sets hold (their tables: a digest and a control byte per bucket).
    pub fn heap_bytes(&self) -> usize {
        (self.0.capacity() + self.1.capacity()) * (std::mem::size_of::<u64>() + 1) * 8 / 7
    }
}

/// What one blob held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobCounts {
    /// Records not seen before in this run.
    pub records: u64,
    /// Records seen before (Microsoft repeats records across blobs).
    pub duplicates: u64,
    /// New records that concerned a group.
    pub matched: u64,
    /// Elements that were not usable records (no `Id` or `CreationTime`).
    pub unreadable: u64,
}

/// Streams one content blob: each record is parsed (only the fields activity needs), counted
/// once by `Id`, mapped to its group if any, and folded into `activity`. Nothing of the blob
/// outlives the call.
pub fn process_blob(
    blob: &[u8],
    index: &GroupIndex,
    seen: &mut SeenIds,
    activity: &mut ActivityMap,
    mut people: Option<&mut crate::crypto::TenantPseudonyms>,
) -> Result<BlobCounts, BlobError> {
    let mut c = BlobCounts::default();
    let (_, unreadable) = for_each_record(blob, |r| {
        // A repeat changes no maximum: count it as such and move on.
        if !seen.insert(&r.id) {
            c.duplicates += 1;
            return;
        }
        c.records += 1;
        if let Some((group, last)) = index.classify(r) {
            c.matched += 1;
            // Who: a pseudonym, never the name (`days.rs`).
            let last = match (people.as_deref_mut(), mapping::actor(r)) {
                (Some(p), Some(upn)) => last.by(Pseudonym(p.of(upn))),
                _ => last,
            };
            activity.record(group, last);
        }
    })?;
    c.unreadable = unreadable;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_count_each_record_once_whatever_its_id_looks_like() {
        let mut seen = SeenIds::default();
        for id in [
            "4d6f2a1e-0b3c-4e5f-8a9b-0c1d2e3f4a5b",
            "4D6F2A1E-0B3C-4E5F-8A9B-0C1D2E3F4A5B",
            "not-a-guid",
            "",
        ] {
            let first = seen.insert(id);
            assert!(!seen.insert(id), "{id}: a repeat");
            // Upper and lower case spell the same GUID.
            assert_eq!(first, !id.starts_with("4D6F"), "{id}");
        }
        assert_eq!(seen.len(), 3);
        for i in 0..100_000u128 {
            assert!(seen.insert(&uuid::Uuid::from_u128(i << 64 | i.wrapping_mul(2_654_435_761)).to_string()));
        }
        assert_eq!(seen.len(), 100_003);
    }

    #[test]
    fn a_blob_is_counted_once_per_record_and_folded_into_the_map() {
        let mut index = GroupIndex::default();
        index.add_group(
            "aaaa0000-0000-0000-0000-000000000001",
            Some("https://contoso.sharepoint.com/sites/one"),
            Some("19:one@thread.tacv2"),
        );
        let rec = |id: &str, time: &str, site: &str| {
            format!(
                r#"{{"Id":"{id}","CreationTime":"{time}","RecordType":6,"Workload":"SharePoint","SiteUrl":"{site}","UserType":0}}"#
            )
        };
        let blob = format!(
            "[{},{},{},{},{{\"Id\":\"no-time\"}}]",
            rec("a", "2026-11-01T10:00:00", "https://contoso.sharepoint.com/sites/one/"),
            rec("b", "2026-11-02T10:00:00", "https://contoso.sharepoint.com/sites/one"),
            rec("c", "2026-11-03T10:00:00", "https://contoso.sharepoint.com/sites/other"),
            rec("a", "2026-11-01T10:00:00", "https://contoso.sharepoint.com/sites/one/"),
        );
        let (mut seen, mut map) = (SeenIds::default(), ActivityMap::default());
        let c = process_blob(blob.as_bytes(), &index, &mut seen, &mut map, None).unwrap();
        assert_eq!(
            c,
            BlobCounts {
                records: 3,
                duplicates: 1,
                matched: 2,
                unreadable: 1
            }
        );
        // The next blob repeats b: a duplicate, the maximum unchanged.
        let again = format!(
            "[{}]",
            rec("b", "2026-11-02T10:00:00", "https://contoso.sharepoint.com/sites/one")
        );
        let c = process_blob(again.as_bytes(), &index, &mut seen, &mut map, None).unwrap();
        assert_eq!((c.records, c.duplicates), (0, 1));
        assert_eq!(map.0.len(), 1);
        let last = &map.0[&uuid::Uuid::from_u128(0xaaaa0000_0000_0000_0000_000000000001)];
        assert_eq!(last.sharepoint.unwrap().to_rfc3339(), "2026-11-02T10:00:00+00:00");
        assert_eq!(last.teams, None);
        assert!(
            process_blob(b"{}", &index, &mut seen, &mut map, None).is_err(),
            "not an array"
        );
    }
}
