//! Group activity from what Microsoft records: audit records of the Management Activity API
//! (`records.rs`: streamed, one at a time; `mapping.rs`: which group a record concerns) and
//! the Teams team activity report (`teams_report.rs`). The result per group is a maximum of
//! times (`LastActivity`), so replays and duplicate records cannot change it.

pub mod mapping;
pub mod records;
pub mod teams_report;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

/// The latest activity seen for one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastActivity {
    pub teams: Option<DateTime<Utc>>,
    pub sharepoint: Option<DateTime<Utc>>,
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl LastActivity {
    /// Merges another observation (a maximum per kind).
    pub fn merge(&mut self, other: LastActivity) {
        self.teams = later(self.teams, other.teams);
        self.sharepoint = later(self.sharepoint, other.sharepoint);
    }

    /// The overall last activity.
    pub fn overall(&self) -> Option<DateTime<Utc>> {
        later(self.teams, self.sharepoint)
    }
}

/// Per-group last activity, merged from any number of sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityMap(pub HashMap<String, LastActivity>);

impl ActivityMap {
    pub fn record(&mut self, group: &str, seen: LastActivity) {
        self.0.entry(group.to_string()).or_default().merge(seen);
    }

    pub fn merge(&mut self, other: ActivityMap) {
        for (g, a) in other.0 {
            self.record(&g, a);
        }
    }
}
