//! What a sync could not finish for single groups, kept in the tenant's job state and tried
//! again on the next run, so that one bad row never fails a tenant and nothing computed is
//! lost: rows SharePoint refused (with the values they were to get), activity that could not
//! be written, and groups whose SharePoint site did not exist yet.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::{StateError, TenantState, Version, load_doc, save_doc};
use crate::activity::LastActivity;
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
}

/// Activity still to be written to a row (merged, the later of each time).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingActivity {
    #[serde(flatten)]
    pub activity: LastActivity,
    pub attempts: u32,
    pub error: String,
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
    /// People's active days left out of what is kept here (they may only be in the customer's
    /// list): how many, this run.
    pub people_dropped: usize,
}

impl Pending {
    pub async fn load(state: &dyn TenantState, tenant: &TenantId) -> Result<Self, StateError> {
        Ok(match load_doc::<PendingDoc>(state, tenant, NAME).await? {
            Some((doc, version)) => Self {
                doc,
                version: Some(version),
                ..Default::default()
            },
            None => Self::default(),
        })
    }

    /// Writes the pending work if it changed.
    pub async fn save(&mut self, state: &dyn TenantState, tenant: &TenantId) -> Result<(), StateError> {
        if !self.changed {
            return Ok(());
        }
        self.version = Some(save_doc(state, tenant, NAME, &self.doc, self.version.as_ref()).await?);
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
            // Who was active stays in the customer's list only, never in our job state.
            let mut kept = row.clone();
            self.people_dropped += kept.activity_days.clear_people();
            fields.extend(kept.activity_fields());
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
        for (r, mut a) in refused {
            self.people_dropped += a.days.clear_people();
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
    pub fn keep_activity(&mut self, group: &str, mut a: LastActivity) {
        self.people_dropped += a.days.clear_people();
        let entry = self.doc.activity.entry(group.to_string()).or_default();
        entry.activity.merge(a);
        entry.error = "not written yet".into();
        self.changed = true;
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
