//! What Microsoft's usage reports count for a group over their last 7, 30 and 90 days
//! (graph-settings-activity.md §2, §3): the Teams team activity report's channel messages,
//! meetings organized and reactions, and the Microsoft 365 groups activity report's mail
//! received by the group mailbox. These are Microsoft's own sums per period, read as they are
//! (each period is its own download), so they are exact where the audit feed's are not: the
//! feed repeats records, and its mail is not the group's.
//!
//! Kept in the customer's list (`ReportCounts`), never in our database: the job state holds
//! them only sealed while a write waits (`jobs::pending`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The report periods, in days, in the order of `Reported::periods`.
pub const PERIODS: [u32; 3] = [7, 30, 90];

/// One period's Teams counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamsCounts {
    /// `Channel Messages`.
    #[serde(rename = "m", default)]
    pub channel_messages: u64,
    /// `Meetings Organized`.
    #[serde(rename = "o", default)]
    pub meetings_organized: u64,
    /// `Reactions`.
    #[serde(rename = "r", default)]
    pub reactions: u64,
}

impl TeamsCounts {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// One report's counts for a group over `PERIODS`, as of the report's refresh date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported<T> {
    /// The report's `Report Refresh Date` when these counts were first read (a later report
    /// with the same counts does not move it, so an unchanged group is not written again).
    #[serde(rename = "r")]
    pub refreshed: NaiveDate,
    #[serde(rename = "c")]
    pub periods: [T; 3],
}

impl<T: Default + Copy + PartialEq> Reported<T> {
    /// Nothing in any period, as of `refreshed`.
    pub fn zero(refreshed: NaiveDate) -> Self {
        Self {
            refreshed,
            periods: [T::default(); 3],
        }
    }

    pub fn is_zero(&self) -> bool {
        self.periods.iter().all(|p| *p == T::default())
    }
}

/// A group's report counts: the Teams report's and the group mailbox's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedCounts {
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Reported<TeamsCounts>>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<Reported<u64>>,
}

impl ReportedCounts {
    pub fn is_empty(&self) -> bool {
        self.teams.is_none() && self.mail.is_none()
    }

    /// Takes the other's counts where they differ and are of a report at least as recent;
    /// equal counts keep the date they were first read.
    pub fn merge(&mut self, other: ReportedCounts) {
        merge_part(&mut self.teams, other.teams);
        merge_part(&mut self.mail, other.mail);
    }

    /// The list column's text (`None`: nothing to keep).
    pub fn to_column(&self) -> Option<String> {
        // Serializing plain numbers and dates cannot fail.
        (!self.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// The column's text read back; anything unreadable is nothing (the next report writes
    /// it again).
    pub fn from_column(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }
}

fn merge_part<T: PartialEq + Copy>(mine: &mut Option<Reported<T>>, theirs: Option<Reported<T>>) {
    let Some(theirs) = theirs else { return };
    match mine {
        Some(m) if m.periods == theirs.periods || m.refreshed > theirs.refreshed => {}
        _ => *mine = Some(theirs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn newer_different_counts_win_and_equal_counts_keep_their_date() {
        let teams = |r, m| Reported {
            refreshed: day(r),
            periods: [TeamsCounts {
                channel_messages: m,
                ..Default::default()
            }; 3],
        };
        let mut a = ReportedCounts {
            teams: Some(teams(10, 5)),
            mail: None,
        };
        // The same counts a day later: nothing to write.
        let before = a;
        a.merge(ReportedCounts {
            teams: Some(teams(11, 5)),
            mail: None,
        });
        assert_eq!(a, before);
        // An older report never replaces a newer one.
        a.merge(ReportedCounts {
            teams: Some(teams(9, 7)),
            mail: Some(Reported::zero(day(9))),
        });
        assert_eq!(a.teams, Some(teams(10, 5)));
        assert_eq!(a.mail, Some(Reported::zero(day(9))));
        // A newer report with other counts does, zeros included.
        a.merge(ReportedCounts {
            teams: Some(Reported::zero(day(12))),
            mail: None,
        });
        assert!(a.teams.unwrap().is_zero());
        let text = a.to_column().unwrap();
        assert_eq!(ReportedCounts::from_column(&text), a);
        assert_eq!(ReportedCounts::from_column("{not json"), ReportedCounts::default());
        assert_eq!(ReportedCounts::default().to_column(), None);
    }
}
