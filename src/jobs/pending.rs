//! What a sync could not finish for single groups, kept in the tenant's job state and tried
//! again on the next run, so that one bad row never fails a tenant and nothing computed is
//! lost: rows SharePoint refused (with the values they were to get), activity that could not
//! be written, and groups whose SharePoint site did not exist yet.
//!
//! Who was active in a group and what the usage reports count for it belong in the customer's
//! list only: while they wait here they are sealed to the tenant (`PeopleSeal`), and without
//! the key they are dropped and counted, never kept readable.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::{StateError, TenantState, Version, load_doc, save_doc};
use crate::activity::{ActivityDays, LastActivity, ReportedCounts};
use crate::customer_list::{GroupRow, RefusedRow};
use crate::domain::TenantId;

const NAME: &str = "sync_pending";

/// A group row still to be written: its values, and how it went so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRow {
    /// The row's fields (group and activity columns), as `GroupRow::from_fields` reads them.
    pub fields: Map<String, Value>,
    pub attempts: u32,
    pub error: String,
    /// Who was active in the group (the people part of `ActivityDays`), sealed: in memory it
    /// is in `fields`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_people: Option<String>,
    /// The `ReportCounts` column, sealed: in memory it is in `fields`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_counts: Option<String>,
}

/// Activity still to be written to a row (merged, the later of each time).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingActivity {
    #[serde(flatten)]
    pub activity: LastActivity,
    pub attempts: u32,
    pub error: String,
    /// Who was active (`activity.days`' people), sealed: in memory it is in `activity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_people: Option<String>,
    /// The report counts (`activity.reported`), sealed: in memory they are in `activity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_counts: Option<String>,
}

/// The pending work of one tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDoc {
    #[serde(default)]
    pub rows: BTreeMap<String, PendingRow>,
    #[serde(default)]
    pub activity: BTreeMap<String, PendingActivity>,
    /// Groups without a site yet, with when the group was made.
    #[serde(default)]
    pub sites: BTreeMap<String, DateTime<Utc>>,
}

/// The pending work, loaded at the start of a run and saved as it changes.
#[derive(Debug, Default)]
pub struct Pending {
    pub doc: PendingDoc,
    version: Option<Version>,
    /// Rows of this run, by group id, whose refusal would be kept (set by the writers).
    rows_in_flight: BTreeMap<String, GroupRow>,
    changed: bool,
    /// Seals who was active in a group before the work is saved (our job state never holds
    /// it readable); `None`: people's days are not kept here at all.
    seal: Option<crate::crypto::PeopleSeal>,
    /// People's active days that could not be kept (no seal) or opened again (the key
    /// changed): how many groups' worth, this run.
    pub people_dropped: usize,
    /// Report counts that could not be kept or opened again (the next report writes them).
    pub counts_dropped: usize,
}

impl Pending {
    pub async fn load(state: &dyn TenantState, tenant: &TenantId) -> Result<Self, StateError> {
        Self::load_sealed(state, tenant, None).await
    }

    /// `load`, opening who was active with `seal` (and sealing it again on `save`).
    pub async fn load_sealed(
        state: &dyn TenantState,
        tenant: &TenantId,
        seal: Option<crate::crypto::PeopleSeal>,
    ) -> Result<Self, StateError> {
        let mut me = match load_doc::<PendingDoc>(state, tenant, NAME).await? {
            Some((doc, version)) => Self {
                doc,
                version: Some(version),
                ..Default::default()
            },
            None => Self::default(),
        };
        me.seal = seal;
        me.open_people();
        Ok(me)
    }

    /// Puts what was sealed back where it belongs (in memory only).
    fn open_people(&mut self) {
        let (mut dropped, mut counts_dropped) = (0, 0);
        let seal = self.seal.as_ref();
        let open = |group: &str, sealed: Option<String>, dropped: &mut usize| -> Option<String> {
            let sealed = sealed?;
            let text = seal
                .and_then(|s| s.open(group, &sealed))
                .and_then(|plain| String::from_utf8(plain).ok());
            *dropped += usize::from(text.is_none());
            text
        };
        for (group, p) in self.doc.activity.iter_mut() {
            if let Some(people) = open(group, p.sealed_people.take(), &mut dropped) {
                p.activity.days.merge(&ActivityDays::from_column(&people));
            }
            if let Some(counts) = open(group, p.sealed_counts.take(), &mut counts_dropped) {
                p.activity.reported.merge(ReportedCounts::from_column(&counts));
            }
        }
        for (group, p) in self.doc.rows.iter_mut() {
            if let Some(people) = open(group, p.sealed_people.take(), &mut dropped) {
                let mut days = column_days(&p.fields);
                days.merge(&ActivityDays::from_column(&people));
                p.fields.insert("ActivityDays".into(), column_value(&days));
            }
            if let Some(counts) = open(group, p.sealed_counts.take(), &mut counts_dropped) {
                p.fields.insert("ReportCounts".into(), Value::String(counts));
            }
        }
        self.people_dropped += dropped;
        self.counts_dropped += counts_dropped;
    }

    /// The document as it is stored: who was active sealed, or left out without a seal.
    fn stored_doc(&mut self) -> PendingDoc {
        let mut doc = self.doc.clone();
        let (mut dropped, mut counts_dropped) = (0, 0);
        let seal = self.seal.as_ref();
        let seal_text = |group: &str, text: Option<String>, dropped: &mut usize| -> Option<String> {
            let text = text?;
            let sealed = seal.map(|s| s.seal(group, text.as_bytes()));
            *dropped += usize::from(sealed.is_none());
            sealed
        };
        for (group, p) in doc.activity.iter_mut() {
            let people = p.activity.days.take_people();
            if !people.is_empty() {
                p.sealed_people = seal_text(group, people.to_column(), &mut dropped);
            }
            let counts = std::mem::take(&mut p.activity.reported);
            if !counts.is_empty() {
                p.sealed_counts = seal_text(group, counts.to_column(), &mut counts_dropped);
            }
        }
        for (group, p) in doc.rows.iter_mut() {
            let mut days = column_days(&p.fields);
            let people = days.take_people();
            if !people.is_empty() {
                p.fields.insert("ActivityDays".into(), column_value(&days));
                p.sealed_people = seal_text(group, people.to_column(), &mut dropped);
            }
            if let Some(Value::String(counts)) = p.fields.remove("ReportCounts") {
                p.sealed_counts = seal_text(group, Some(counts), &mut counts_dropped);
            }
        }
        self.people_dropped += dropped;
        self.counts_dropped += counts_dropped;
        doc
    }

    /// Writes the pending work if it changed.
    pub async fn save(&mut self, state: &dyn TenantState, tenant: &TenantId) -> Result<(), StateError> {
        if !self.changed {
            return Ok(());
        }
        let stored = self.stored_doc();
        self.version = Some(save_doc(state, tenant, NAME, &stored, self.version.as_ref()).await?);
        self.changed = false;
        Ok(())
    }

    /// The rows about to be written (so that a refusal keeps their values).
    pub fn writing(&mut self, rows: &[(Option<String>, GroupRow)]) {
        for (_, row) in rows {
            self.rows_in_flight.insert(row.group_id.clone(), row.clone());
        }
    }

    /// Rows written: nothing of them is pending any more (a later value replaced it).
    pub fn written_groups<'a>(&mut self, ids: impl Iterator<Item = &'a str>) {
        for id in ids {
            if self.doc.rows.remove(id).is_some() {
                self.changed = true;
            }
        }
    }

    /// Rows SharePoint refused: kept with their values (said in the tenant log). Ends the
    /// write `writing` began: the rows in flight are forgotten (kept for the whole run, they
    /// were a copy of every row of a 100,000-group tenant).
    pub fn refused_groups(&mut self, tenant: &TenantId, refused: Vec<RefusedRow>) {
        let in_flight = std::mem::take(&mut self.rows_in_flight);
        for r in refused {
            let Some(row) = in_flight.get(&r.group_id) else {
                continue;
            };
            let mut fields = row.group_fields();
            fields.extend(row.activity_fields());
            let attempts = self.doc.rows.get(&r.group_id).map_or(0, |p| p.attempts) + 1;
            // Throttled or unavailable is not a refusal: kept the same way, said nowhere.
            if !r.transient() {
                tracing::warn!(event = "row_refused", tenant_id = %tenant, group_id = %r.group_id, attempts, error = %r.error);
            }
            self.doc.rows.insert(
                r.group_id,
                PendingRow {
                    fields,
                    attempts,
                    error: r.error.to_string(),
                    sealed_people: None,
                    sealed_counts: None,
                },
            );
            self.changed = true;
        }
    }

    /// The rows to try again.
    pub fn rows_to_retry(&self) -> Vec<GroupRow> {
        self.doc
            .rows
            .values()
            .filter_map(|p| GroupRow::from_fields(&p.fields))
            .collect()
    }

    /// Activity that could not be written, to merge again later.
    pub fn refused_activity(&mut self, tenant: &TenantId, refused: Vec<(RefusedRow, LastActivity)>) {
        for (r, a) in refused {
            let entry = self.doc.activity.entry(r.group_id.clone()).or_default();
            entry.activity.merge(a);
            entry.attempts += 1;
            entry.error = r.error.to_string();
            if !r.transient() {
                tracing::warn!(event = "row_refused", tenant_id = %tenant, group_id = %r.group_id, attempts = entry.attempts, error = %r.error);
            }
            self.changed = true;
        }
    }

    /// Activity kept for later: its group's row is itself pending (SharePoint refused it), or
    /// the invocation's budget ran out before it was written.
    pub fn keep_activity(&mut self, group: &str, a: LastActivity) {
        let entry = self.doc.activity.entry(group.to_string()).or_default();
        entry.activity.merge(a);
        entry.error = "not written yet".into();
        self.changed = true;
    }

    /// The report counts waiting here, per group (in activity or in a refused row).
    pub fn counts(&self) -> Vec<(String, ReportedCounts)> {
        let rows = self.doc.rows.iter().map(|(g, p)| (g, column_counts(&p.fields)));
        let activity = self.doc.activity.iter().map(|(g, p)| (g, p.activity.reported));
        rows.chain(activity)
            .filter(|(_, c)| !c.is_empty())
            .map(|(g, c)| (g.clone(), c))
            .collect()
    }

    /// A newer report's counts for a group whose activity or row waits here: what waits is
    /// brought up to date, so it never writes older counts when it is finally written.
    pub fn merge_counts(&mut self, group: &str, c: ReportedCounts) {
        if let Some(p) = self.doc.activity.get_mut(group) {
            let before = p.activity.reported;
            p.activity.reported.merge(c);
            self.changed |= p.activity.reported != before;
        }
        if let Some(p) = self.doc.rows.get_mut(group) {
            let mut counts = column_counts(&p.fields);
            let before = counts;
            counts.merge(c);
            if counts != before {
                let text = counts.to_column().map_or(Value::Null, Value::String);
                p.fields.insert("ReportCounts".into(), text);
                self.changed = true;
            }
        }
    }

    /// Whether a group's row is pending.
    pub fn row_pending(&self, group: &str) -> bool {
        self.doc.rows.contains_key(group)
    }

    /// The pending activity (taken: the caller writes it, and refusals come back).
    pub fn take_activity(&mut self) -> Vec<(String, LastActivity)> {
        if self.doc.activity.is_empty() {
            return Vec::new();
        }
        self.changed = true;
        std::mem::take(&mut self.doc.activity)
            .into_iter()
            .map(|(g, p)| (g, p.activity))
            .collect()
    }

    /// A group had no site yet.
    pub fn site_missing(&mut self, group: &str, created: DateTime<Utc>) {
        if !self.doc.sites.contains_key(group) {
            self.doc.sites.insert(group.to_string(), created);
            self.changed = true;
        }
    }

    /// A group's site was found.
    pub fn site_found(&mut self, group: &str) {
        if self.doc.sites.remove(group).is_some() {
            self.changed = true;
        }
    }

    /// The groups to look for a site again: those made after `since` (older ones are given up).
    pub fn sites_to_look_for(&mut self, since: DateTime<Utc>) -> Vec<String> {
        let before = self.doc.sites.len();
        self.doc.sites.retain(|_, created| *created >= since);
        self.changed |= self.doc.sites.len() != before;
        self.doc.sites.keys().cloned().collect()
    }

    /// Rows and activity waiting to be written.
    pub fn waiting(&self) -> usize {
        self.doc.rows.len() + self.doc.activity.len()
    }
}
/// The `ActivityDays` column of a row's fields.
fn column_days(fields: &Map<String, Value>) -> ActivityDays {
    fields
        .get("ActivityDays")
        .and_then(Value::as_str)
        .map(ActivityDays::from_column)
        .unwrap_or_default()
}

/// Whether report counts of `group` wait here to be written (sealed: only their presence is
/// looked at), so that its row's counts are not the latest read.
pub async fn counts_waiting(state: &dyn TenantState, tenant: &TenantId, group: &str) -> Result<bool, StateError> {
    Ok(load_doc::<PendingDoc>(state, tenant, NAME)
        .await?
        .is_some_and(|(doc, _)| {
            doc.activity.get(group).is_some_and(|p| p.sealed_counts.is_some())
                || doc.rows.get(group).is_some_and(|p| p.sealed_counts.is_some())
        }))
}

/// The `ReportCounts` column of a row's fields.
fn column_counts(fields: &Map<String, Value>) -> ReportedCounts {
    fields
        .get("ReportCounts")
        .and_then(Value::as_str)
        .map(ReportedCounts::from_column)
        .unwrap_or_default()
}

fn column_value(days: &ActivityDays) -> Value {
    days.to_column().map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Pseudonym;
    use crate::crypto::{IndexKey, PseudonymKey};

    fn tenant() -> TenantId {
        TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap()
    }

    fn seal() -> crate::crypto::PeopleSeal {
        PseudonymKey::new(&IndexKey::from_bytes([4; 32])).seal(&tenant())
    }

    #[test]
    fn who_was_active_is_stored_sealed_and_comes_back_whole() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let someone = Pseudonym([7; 9]);
        let mut a = LastActivity::teams_at(t).by(someone);
        a.reported.mail = Some(crate::activity::reported::Reported {
            refreshed: t.date_naive(),
            periods: [4_242_001, 4_242_002, 4_242_003],
        });
        let mut row = GroupRow::new("g-row");
        row.set_activity(a.clone());

        let mut pending = Pending {
            seal: Some(seal()),
            ..Default::default()
        };
        pending.keep_activity("g-act", a.clone());
        pending.writing(&[(None, row.clone())]);
        pending.refused_groups(
            &tenant(),
            vec![RefusedRow {
                group_id: "g-row".into(),
                error: crate::microsoft::graph::GraphError::Timeout,
            }],
        );
        let stored = serde_json::to_string(&pending.stored_doc()).unwrap();
        let pseudonym = serde_json::to_string(&a.days).unwrap();
        assert!(pseudonym.contains("BwcHBwcHBwcH"), "{pseudonym}");
        assert!(!stored.contains("BwcHBwcHBwcH"), "{stored}");
        assert!(!stored.contains("4242001"), "report counts are sealed: {stored}");
        assert_eq!((pending.people_dropped, pending.counts_dropped), (0, 0));

        // Read back with the key: as it was; without it (or with another): people dropped.
        let doc: PendingDoc = serde_json::from_str(&stored).unwrap();
        let mut back = Pending {
            doc: doc.clone(),
            seal: Some(seal()),
            ..Default::default()
        };
        back.open_people();
        assert_eq!(back.people_dropped, 0);
        assert_eq!(back.doc.activity["g-act"].activity, a);
        assert_eq!(
            GroupRow::from_fields(&back.doc.rows["g-row"].fields)
                .unwrap()
                .activity(),
            a
        );
        let mut keyless = Pending {
            doc,
            ..Default::default()
        };
        keyless.open_people();
        assert_eq!((keyless.people_dropped, keyless.counts_dropped), (2, 2));
        assert!(keyless.doc.activity["g-act"].activity.days.people().is_empty());
        assert!(keyless.doc.activity["g-act"].activity.reported.is_empty());
    }
}
