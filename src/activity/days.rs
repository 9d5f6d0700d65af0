//! Active days: on which days (UTC) a group saw activity of each signal, and on which days
//! each person was active in it, over the last `DAYS` days. Sets, not counts: a record read
//! twice (a window re-read, a blob fetched again after a crash, a repeat Microsoft sends)
//! adds a day already there, so the numbers shown (`activeDays` of the last 7, 30, 90 days,
//! successors' active days) cannot be inflated by replays, as event counts would be.
//!
//! People are never named here: each is a pseudonym (`crate::crypto::Pseudonyms`, a keyed
//! hash of the user principal name), so the customer's list holds "someone was active on
//! these days", and only GroupMgr, given the group's members, can tell who.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many days a set spans (the latest day and the 95 before it): the 90 days shown, and
/// room for a sync that is some days late.
pub const DAYS: i64 = 96;
/// People kept per group: the most active (by days, then the latest day). Far more than a
/// successor list needs; bounds a row of a group the whole company uses.
pub const MAX_PEOPLE: usize = 200;
/// The signals with their own set, as `lifecycle::Signal` orders them (Teams, SharePoint
/// file edit, file view, page, list, group mailbox).
pub const SIGNALS: usize = 6;

/// Days since 1970-01-01 (UTC).
pub type Day = i32;

pub fn day_of(t: DateTime<Utc>) -> Day {
    t.timestamp().div_euclid(86_400) as Day
}

/// The start (00:00 UTC) of a date.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    // 00:00:00 exists on every date.
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// The date of a day number.
pub fn date(day: Day) -> Option<NaiveDate> {
    DateTime::from_timestamp(i64::from(day) * 86_400, 0).map(|t| t.date_naive())
}

/// A set of days within `DAYS` of its latest: bit `i` of `bits` is day `end - i`. Empty when
/// `bits` is 0. Bit 0 is always set in a non-empty set (`end` is its latest day).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct DaySet {
    end: Day,
    bits: u128,
}

const MASK: u128 = (1u128 << DAYS) - 1;

impl DaySet {
    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// The latest day in the set.
    pub fn latest(&self) -> Option<Day> {
        (!self.is_empty()).then_some(self.end)
    }

    pub fn of(day: Day) -> Self {
        Self { end: day, bits: 1 }
    }

    /// The bits as seen from `end` (later than or equal to the set's own).
    fn aligned(&self, end: Day) -> u128 {
        let shift = i64::from(end) - i64::from(self.end);
        if self.is_empty() || shift >= DAYS {
            0
        } else {
            (self.bits << shift) & MASK
        }
    }

    pub fn insert(&mut self, day: Day) {
        self.merge(Self::of(day));
    }

    /// The union (days older than `DAYS` before the latest fall out).
    pub fn merge(&mut self, other: DaySet) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other;
            return;
        }
        let end = self.end.max(other.end);
        self.bits = self.aligned(end) | other.aligned(end);
        self.end = end;
    }

    /// Forgets the days after `last` (a record stamped in the future would otherwise make
    /// every real day older than 96 days before it, and so drop them all).
    pub fn forget_after(&mut self, last: Day) {
        if self.is_empty() || self.end <= last {
            return;
        }
        let shift = i64::from(self.end) - i64::from(last);
        if shift >= DAYS {
            *self = DaySet::default();
            return;
        }
        let bits = self.bits >> shift;
        *self = if bits == 0 {
            DaySet::default()
        } else {
            let gap = bits.trailing_zeros();
            DaySet {
                end: last - gap as Day,
                bits: bits >> gap,
            }
        };
    }

    /// Days in the set among the `n` days that end with `today` (days after `today`, from a
    /// clock ahead of ours, count as `today`'s window too).
    pub fn count(&self, today: Day, n: u32) -> u32 {
        if self.is_empty() || n == 0 {
            return 0;
        }
        let first = i64::from(today) - i64::from(n) + 1;
        let oldest_kept = i64::from(self.end) - DAYS + 1;
        (0..DAYS)
            .filter(|i| self.bits >> i & 1 == 1)
            .map(|i| i64::from(self.end) - i)
            .filter(|d| *d >= first.max(oldest_kept))
            .count() as u32
    }

    /// All days in the set.
    pub fn len(&self) -> u32 {
        self.bits.count_ones()
    }

    /// `2026-12-03:1f` — the latest day, then the bits in hex (bit 0: that day).
    fn encode(&self) -> Option<String> {
        let date = date(self.latest()?)?;
        Some(format!("{}:{:x}", date.format("%Y-%m-%d"), self.bits))
    }

    fn decode(s: &str) -> Option<Self> {
        let (date, bits) = s.split_once(':')?;
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let bits = u128::from_str_radix(bits, 16).ok()? & MASK;
        let end = day_of(date.and_hms_opt(0, 0, 0)?.and_utc());
        // A set whose latest day's bit is not set is normalised, not trusted.
        let mut set = DaySet::default();
        for i in (0..DAYS).filter(|i| bits >> i & 1 == 1) {
            set.insert(end - i as Day);
        }
        Some(set)
    }
}

impl fmt::Debug for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode().as_deref().unwrap_or("{}"))
    }
}

/// One person's pseudonym: 9 bytes of a keyed hash (72 bits: among a tenant's people a
/// collision is as likely as 1 in 10^13 at a million users).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pseudonym(pub [u8; 9]);

impl Pseudonym {
    fn encode(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    fn decode(s: &str) -> Option<Self> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A group's active days: per signal, and per person (by pseudonym, sorted, at most
/// `MAX_PEOPLE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityDays {
    pub signals: [DaySet; SIGNALS],
    people: Vec<(Pseudonym, DaySet)>,
}

impl ActivityDays {
    pub fn is_empty(&self) -> bool {
        self.signals.iter().all(DaySet::is_empty) && self.people.is_empty()
    }

    /// Who was active, taken out (what is left has the signals only).
    pub fn take_people(&mut self) -> ActivityDays {
        ActivityDays {
            signals: Default::default(),
            people: std::mem::take(&mut self.people),
        }
    }

    pub fn people(&self) -> &[(Pseudonym, DaySet)] {
        &self.people
    }

    pub fn person(&self, who: &Pseudonym) -> Option<DaySet> {
        self.people
            .binary_search_by(|(p, _)| p.cmp(who))
            .ok()
            .map(|i| self.people[i].1)
    }

    pub fn add_person(&mut self, who: Pseudonym, days: DaySet) {
        if days.is_empty() {
            return;
        }
        match self.people.binary_search_by(|(p, _)| p.cmp(&who)) {
            Ok(i) => self.people[i].1.merge(days),
            Err(i) => {
                self.people.insert(i, (who, days));
                self.trim();
            }
        }
    }

    /// Keeps the `MAX_PEOPLE` most active: by days, then the latest day, then the pseudonym
    /// (so that the same people are kept whatever the order things were merged in).
    fn trim(&mut self) {
        if self.people.len() <= MAX_PEOPLE {
            return;
        }
        // Days are counted in the window of the latest day anyone was active, so people
        // compare over the same days.
        let today = self
            .people
            .iter()
            .filter_map(|(_, d)| d.latest())
            .max()
            .unwrap_or_default();
        self.people.sort_by(|(pa, a), (pb, b)| {
            (b.count(today, DAYS as u32), b.latest())
                .cmp(&(a.count(today, DAYS as u32), a.latest()))
                .then(pa.cmp(pb))
        });
        self.people.truncate(MAX_PEOPLE);
        self.people.sort_by_key(|(a, _)| *a);
    }

    /// Forgets the days after `last` (`DaySet::forget_after`), and people left without days.
    pub fn forget_after(&mut self, last: Day) {
        for s in &mut self.signals {
            s.forget_after(last);
        }
        for (_, d) in &mut self.people {
            d.forget_after(last);
        }
        self.people.retain(|(_, d)| !d.is_empty());
    }

    pub fn merge(&mut self, other: &ActivityDays) {
        for (mine, theirs) in self.signals.iter_mut().zip(other.signals) {
            mine.merge(theirs);
        }
        for (who, days) in &other.people {
            self.add_person(*who, *days);
        }
    }
}

/// The list column's JSON: `{"s":["2026-12-03:1f", null, …], "p":{"<pseudonym>":"…"}}`.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default)]
    s: Vec<Option<String>>,
    #[serde(default)]
    p: std::collections::BTreeMap<String, String>,
}

impl ActivityDays {
    /// As the `ActivityDays` column holds it (`None` when empty).
    pub fn to_column(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        serde_json::to_string(&self.wire()).ok()
    }

    /// What the column holds; anything unreadable is left out (an empty set), never fails the
    /// row.
    pub fn from_column(text: &str) -> Self {
        serde_json::from_str::<Wire>(text)
            .map(Self::of_wire)
            .unwrap_or_default()
    }

    fn wire(&self) -> Wire {
        Wire {
            s: self.signals.iter().map(DaySet::encode).collect(),
            p: self
                .people
                .iter()
                .filter_map(|(p, d)| Some((p.encode(), d.encode()?)))
                .collect(),
        }
    }

    fn of_wire(w: Wire) -> Self {
        let mut out = ActivityDays::default();
        for (slot, s) in out.signals.iter_mut().zip(w.s) {
            *slot = s.as_deref().and_then(DaySet::decode).unwrap_or_default();
        }
        for (p, d) in w.p {
            if let (Some(p), Some(d)) = (Pseudonym::decode(&p), DaySet::decode(&d)) {
                out.add_person(p, d);
            }
        }
        out
    }
}

impl Serialize for ActivityDays {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ActivityDays {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Wire::deserialize(d).map(Self::of_wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Day {
        day_of(
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc(),
        )
    }

    #[test]
    fn a_day_set_is_a_union_that_replays_cannot_inflate() {
        let mut s = DaySet::default();
        for day in ["2026-12-01", "2026-11-20", "2026-12-01", "2026-09-10", "2026-08-01"] {
            s.insert(d(day));
        }
        // 2026-08-01 is 122 days before 2026-12-01: out of the set.
        assert_eq!(s.len(), 3);
        assert_eq!(s.latest(), Some(d("2026-12-01")));
        let today = d("2026-12-03");
        assert_eq!((s.count(today, 7), s.count(today, 30), s.count(today, 90)), (1, 2, 3));
        // In any order, any number of times: the same set.
        let mut t = DaySet::of(d("2026-09-10"));
        t.merge(DaySet::of(d("2026-12-01")));
        t.merge(DaySet::of(d("2026-11-20")));
        t.merge(s);
        t.merge(s);
        assert_eq!(t, s);
        // A newer day pushes the oldest out.
        s.insert(d("2026-12-20"));
        assert_eq!(s.count(d("2026-12-20"), 96), 3, "2026-09-10 is 101 days before");
        assert_eq!(DaySet::decode(&s.encode().unwrap()), Some(s));
        assert_eq!(DaySet::default().count(today, 90), 0);
        // A set ahead of today (another clock) counts what falls in today's window.
        assert_eq!(DaySet::of(d("2026-12-04")).count(today, 7), 1);
        assert_eq!(DaySet::of(d("2026-12-03")).count(today, 1), 1);
        // A day in the future is forgotten, and the days before it are kept.
        let mut f = s;
        f.insert(d("2027-06-01"));
        assert_eq!(f.len(), 1, "a far-future day pushed every real one out");
        let mut g = s;
        g.insert(d("2026-12-25"));
        g.forget_after(d("2026-12-21"));
        assert_eq!(g, s);
        let mut h = DaySet::of(d("2026-12-25"));
        h.forget_after(d("2026-12-21"));
        assert!(h.is_empty());
    }

    #[test]
    fn people_are_kept_sorted_merged_and_bounded() {
        let mut a = ActivityDays::default();
        let p = |n: u16| {
            let mut b = [0u8; 9];
            b[..2].copy_from_slice(&n.to_be_bytes());
            Pseudonym(b)
        };
        for n in 0..(MAX_PEOPLE as u16 + 50) {
            // Person n was active on n % 5 + 1 days.
            let mut days = DaySet::default();
            for k in 0..=(n % 5) {
                days.insert(d("2026-12-01") - Day::from(k));
            }
            a.add_person(p(n), days);
        }
        assert_eq!(a.people().len(), MAX_PEOPLE);
        // The least active (one day) went first.
        assert!(a.people().iter().all(|(_, s)| s.len() >= 2));
        assert!(a.person(&p(4)).is_some_and(|s| s.len() == 5));
        a.signals[0].insert(d("2026-11-30"));
        let text = a.to_column().unwrap();
        let back = ActivityDays::from_column(&text);
        assert_eq!(back, a);
        assert_eq!(
            serde_json::from_value::<ActivityDays>(serde_json::to_value(&a).unwrap()).unwrap(),
            a
        );
        let mut b = back.clone();
        b.merge(&a);
        assert_eq!(b, a, "merging the same again changes nothing");
        assert_eq!(ActivityDays::from_column("not json"), ActivityDays::default());
        assert_eq!(ActivityDays::default().to_column(), None);
    }
}
