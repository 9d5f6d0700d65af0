//! The usage report CSVs (graph-settings-activity.md §2 and §3), read with a maintained CSV
//! reader (the `csv` crate: RFC 4180 quoting, quoted line breaks, a byte-order mark) and by
//! column name, so extra or reordered columns do not matter:
//! - the Teams team activity report: `Team Id`, `Last Activity Date`, and the period's
//!   `Channel Messages`, `Meetings Organized` and `Reactions`;
//! - the Microsoft 365 groups activity report: `Group Id`, `Last Activity Date` and
//!   `Exchange Received Email Count` — a group whose mailbox received mail in the period has
//!   mail activity up to its last activity date.
//!
//! Each report says its `Report Refresh Date` (the latest day of its data; usually a day or
//! two before today: "data for a given day will show up within 48 hours", Microsoft 365
//! reports in the admin center, Microsoft Teams usage activity).
//!
//! No message content exists in either report.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::LastActivity;
use super::reported::{PERIODS, Reported, TeamsCounts};

/// Why a report could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{report}: {problem}")]
pub struct ReportError {
    pub report: &'static str,
    pub problem: String,
}

/// One read of a report: its `Report Refresh Date`, and per group id (lower-cased) the last
/// activity day and the counts of the period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report<T> {
    pub refreshed: Option<NaiveDate>,
    /// `false` when a count column is missing: the counts are not known (the days still are).
    pub counts_known: bool,
    pub groups: HashMap<String, (NaiveDate, T)>,
}

/// The rows of a report that have both an id and a last activity day, with the `counts`
/// columns (0 where empty; all `None` when one of them is missing).
fn rows(
    report: &'static str,
    csv_text: &str,
    id_column: &str,
    counts: &[&str],
) -> Result<Report<Option<Vec<u64>>>, ReportError> {
    let err = |problem: String| ReportError { report, problem };
    let text = csv_text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| err(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let find = |name: &str| headers.iter().position(|h| *h == name.to_ascii_lowercase());
    let col = |name: &str| find(name).ok_or_else(|| err(format!("no `{name}` column")));
    let id = col(id_column)?;
    let date = col("Last Activity Date")?;
    let refresh = find("Report Refresh Date");
    let counts: Option<Vec<usize>> = counts.iter().map(|c| find(c)).collect();
    let day = |text: Option<&str>| NaiveDate::parse_from_str(text?.trim(), "%Y-%m-%d").ok();
    let mut out = Report {
        counts_known: counts.is_some(),
        ..Default::default()
    };
    for record in reader.records() {
        // A malformed row is skipped, not the report.
        let Ok(record) = record else { continue };
        if let Some(r) = day(refresh.and_then(|i| record.get(i))) {
            out.refreshed = out.refreshed.max(Some(r));
        }
        // Groups with no activity in the period have an empty date.
        let (Some(group), Some(last)) = (record.get(id), day(record.get(date))) else {
            continue;
        };
        let group = group.trim().to_lowercase();
        if group.is_empty() {
            continue;
        }
        // A count Microsoft left empty is none; one that is not a number makes the report's
        // counts untrusted (a zero read from it would be written over real counts).
        let values = counts.as_ref().map(|cols| {
            cols.iter()
                .map(|&i| match record.get(i).unwrap_or_default().trim() {
                    "" => 0,
                    n => n.parse::<u64>().unwrap_or_else(|_| {
                        out.counts_known = false;
                        0
                    }),
                })
                .collect()
        });
        out.groups.insert(group, (last, values));
    }
    Ok(out)
}

/// The Teams team activity report: each team's (by team id = the group's object id) last
/// activity day and its channel messages, meetings organized and reactions in the period.
pub fn teams_report(csv_text: &str) -> Result<Report<TeamsCounts>, ReportError> {
    let r = rows(
        "Teams activity report",
        csv_text,
        "Team Id",
        &["Channel Messages", "Meetings Organized", "Reactions"],
    )?;
    Ok(Report {
        refreshed: r.refreshed,
        counts_known: r.counts_known,
        groups: r
            .groups
            .into_iter()
            .map(|(id, (day, c))| {
                let c = c.unwrap_or_default();
                let n = |i: usize| c.get(i).copied().unwrap_or(0);
                let counts = TeamsCounts {
                    channel_messages: n(0),
                    meetings_organized: n(1),
                    reactions: n(2),
                };
                (id, (day, counts))
            })
            .collect(),
    })
}

/// The Microsoft 365 groups activity report: each group's last activity day (over mail, files
/// and Yammer) and the mail its mailbox received in the period.
pub fn groups_report(csv_text: &str) -> Result<Report<u64>, ReportError> {
    let r = rows(
        "Microsoft 365 groups activity report",
        csv_text,
        "Group Id",
        &["Exchange Received Email Count"],
    )?;
    Ok(Report {
        refreshed: r.refreshed,
        counts_known: r.counts_known,
        groups: r
            .groups
            .into_iter()
            .map(|(id, (day, c))| (id, (day, c.and_then(|c| c.first().copied()).unwrap_or(0))))
            .collect(),
    })
}

/// The counts of one report read over 7, 30 and 90 days (`reported::PERIODS` order), per
/// group id: a group active in none of them is not in the map. `None` when they cannot be
/// put side by side: a count column is missing, or the reads are of different refresh
/// dates (the report was refreshed between them).
pub fn per_period<T: Copy + Default + PartialEq>(
    reads: &[Report<T>; 3],
) -> Option<(NaiveDate, HashMap<String, Reported<T>>)> {
    let refreshed = reads[0].refreshed?;
    if reads.iter().any(|r| !r.counts_known || r.refreshed != Some(refreshed)) {
        return None;
    }
    let mut out: HashMap<String, Reported<T>> = HashMap::new();
    for (i, read) in reads.iter().enumerate() {
        for (group, (_, counts)) in &read.groups {
            out.entry(group.clone())
                .or_insert_with(|| Reported::zero(refreshed))
                .periods[i] = *counts;
        }
    }
    out.retain(|_, r| !r.is_zero());
    Some((refreshed, out))
}

/// The last day each group's mailbox received mail, as closely as the groups report tells
/// it. Its `Last Activity Date` is the group's last activity of any kind (mail, files,
/// Yammer), so it stands for the mail only in the shortest period with mail received; when a
/// shorter period had none, the mail is no later than the day before that period began
/// (`Report Refresh Date` less its days).
pub fn last_mail(reads: &[Report<u64>; 3]) -> HashMap<String, NaiveDate> {
    let mut out = HashMap::new();
    for read in reads {
        for group in read.groups.iter().filter(|(_, (_, n))| *n > 0).map(|(g, _)| g) {
            if out.contains_key(group) {
                continue;
            }
            // The shortest period with mail (this one at the latest).
            let Some(i) = reads
                .iter()
                .position(|r| r.groups.get(group).is_some_and(|(_, n)| *n > 0))
            else {
                continue;
            };
            let mut day = reads[i].groups[group].0;
            if let Some(shorter) = i.checked_sub(1)
                && let Some(r) = reads[shorter].refreshed
            {
                day = day.min(r - chrono::Days::new(u64::from(PERIODS[shorter])));
            }
            out.insert(group.clone(), day);
        }
    }
    out
}

/// Last Teams activity per team id (= the group's object id), lower-cased.
pub fn teams(csv_text: &str) -> Result<HashMap<String, LastActivity>, ReportError> {
    Ok(teams_report(csv_text)?
        .groups
        .into_iter()
        // A time, not a day of activity: the report names the last day only, so days seen
        // this way would be a fraction of the days there were (`days.rs` counts the feed's).
        .map(|(id, (day, _))| (id, LastActivity::teams_report_day(day)))
        .collect())
}

/// Last mail activity per group id, lower-cased: groups whose mailbox received mail in the
/// period. The report's date is the group's last activity over mail, files and Yammer; it is
/// the group's own activity whichever it was. Without the received-mail column no group is
/// known to have had mail.
pub fn groups(csv_text: &str) -> Result<HashMap<String, LastActivity>, ReportError> {
    Ok(groups_report(csv_text)?
        .groups
        .into_iter()
        .filter(|(_, (_, received))| *received > 0)
        .map(|(id, (day, _))| (id, LastActivity::mail_report_day(day)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_bom_quotes_line_breaks_empty_dates_and_extra_columns() {
        let csv = "\u{feff}Report Refresh Date,Team Name,Team Id,Team Type,Last Activity Date,Report Period,Active Users,Brand New Column\n\
                   2026-11-26,\"Sales, EMEA \"\"North\"\"\",A063D832-AE9A-467D-8CB4-17C073260890,Private,2026-11-25,7,26,x\n\
                   2026-11-26,\"Two\nlines\",d063d832-ae9a-467d-8cb4-17c073260890,Public,2026-11-24,7,3,z\n\
                   2026-11-26,Quiet Team,b063d832-ae9a-467d-8cb4-17c073260890,Public,,7,0,y\n\
                   2026-11-26,Short row\n";
        let out = teams(csv).unwrap();
        assert_eq!(out.len(), 2);
        let a = &out["a063d832-ae9a-467d-8cb4-17c073260890"];
        assert_eq!(a.teams.unwrap().to_rfc3339(), "2026-11-25T00:00:00+00:00");
        // A quoted line break in a name (the hand-written splitter broke on it).
        assert!(out.contains_key("d063d832-ae9a-467d-8cb4-17c073260890"));
        // Columns found by name, in any order.
        let reordered = "Last Activity Date,Team Id\r\n2026-11-20,c063d832-ae9a-467d-8cb4-17c073260890\r\n";
        assert_eq!(teams(reordered).unwrap().len(), 1);
        assert!(teams("").is_err());
        assert!(teams("Team Name,Foo\nx,y").is_err());
    }

    #[test]
    fn counts_are_read_by_column_and_put_side_by_side_per_period() {
        let head = "Report Refresh Date,Team Id,Last Activity Date,Reactions,Meetings Organized,Channel Messages,Report Period\n";
        let a = "a063d832-ae9a-467d-8cb4-17c073260890";
        let b = "b063d832-ae9a-467d-8cb4-17c073260890";
        let d7 = format!("{head}2026-11-29,{a},2026-11-28,2,1,5,7\n2026-11-29,{b},,0,0,0,7\n");
        let d30 = format!("{head}2026-11-29,{a},2026-11-28,3,1,9,30\n2026-11-29,{b},2026-11-10,,0,4,30\n");
        let d90 = format!("{head}2026-11-29,{a},2026-11-28,3,2,12,90\n2026-11-29,{b},2026-11-10,1,0,,90\n");
        let reads = [&d7, &d30, &d90].map(|t| teams_report(t).unwrap());
        let (day, counts) = per_period(&reads).unwrap();
        assert_eq!(day.to_string(), "2026-11-29");
        let c = |m, o, r| TeamsCounts {
            channel_messages: m,
            meetings_organized: o,
            reactions: r,
        };
        assert_eq!(counts[a].periods, [c(5, 1, 2), c(9, 1, 3), c(12, 2, 3)]);
        // Not in the 7 days (no date): zeros there; an empty count is none.
        assert_eq!(counts[b].periods, [c(0, 0, 0), c(4, 0, 0), c(0, 0, 1)]);
        // A count that is not a number: the report's counts are not trusted.
        let bad = d90.replace(",1,0,,90", ",1,0,seven,90");
        assert_ne!(bad, d90);
        let reads = [&d7, &d30, &bad].map(|t| teams_report(t).unwrap());
        assert_eq!(per_period(&reads), None);
        // A report refreshed between two reads: its periods are not put side by side.
        let later = d7.replace("2026-11-29", "2026-11-30");
        let mixed = [&later, &d30, &d90].map(|t| teams_report(t).unwrap());
        assert_eq!(per_period(&mixed), None);
        // Without a count column the days are still known, the counts are not.
        let bare = format!("Report Refresh Date,Team Id,Last Activity Date\n2026-11-29,{a},2026-11-28\n");
        let r = teams_report(&bare).unwrap();
        assert!(!r.counts_known && r.groups.contains_key(a));
        assert_eq!(per_period(&[r.clone(), r.clone(), r]), None);
        let mail = "Report Refresh Date,Group Id,Last Activity Date,Exchange Received Email Count\n2026-11-29,G1,2026-11-20,7\n";
        let m = groups_report(mail).unwrap();
        assert_eq!(m.groups["g1"].1, 7);
    }

    #[test]
    fn the_last_mail_is_bounded_by_the_shortest_period_that_had_none() {
        let head = "Report Refresh Date,Group Id,Last Activity Date,Exchange Received Email Count\n";
        // g1: mail in the last 7 days; g2: files yesterday, mail only in the 30 days; g3:
        // files yesterday, mail only in the 90 days; g4: files only.
        let d7 = format!(
            "{head}2026-11-29,g1,2026-11-28,3\n2026-11-29,g2,2026-11-28,0\n2026-11-29,g3,2026-11-28,0\n2026-11-29,g4,2026-11-28,0\n"
        );
        let d30 = format!(
            "{head}2026-11-29,g1,2026-11-28,9\n2026-11-29,g2,2026-11-28,2\n2026-11-29,g3,2026-11-28,0\n2026-11-29,g4,2026-11-28,0\n"
        );
        let d90 = format!(
            "{head}2026-11-29,g1,2026-11-28,9\n2026-11-29,g2,2026-11-28,2\n2026-11-29,g3,2026-11-28,1\n2026-11-29,g4,2026-11-28,0\n"
        );
        let reads = [&d7, &d30, &d90].map(|t| groups_report(t).unwrap());
        let last = last_mail(&reads);
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        assert_eq!(last["g1"], day("2026-11-28"));
        assert_eq!(last["g2"], day("2026-11-22"), "none in the 7 days up to the 29th");
        assert_eq!(last["g3"], day("2026-10-30"), "none in the 30 days up to the 29th");
        assert!(!last.contains_key("g4"));
    }

    #[test]
    fn groups_with_mail_received_have_mail_activity() {
        let csv = "Report Refresh Date,Group Display Name,Is Deleted,Owner Principal Name,Last Activity Date,Group Type,Member Count,External Member Count,Exchange Received Email Count,SharePoint Active File Count,Group Id,Report Period\n\
                   2026-11-30,Mail only,False,a@contoso.com,2026-11-28,Private,4,0,12,0,A1111111-0000-0000-0000-000000000001,7\n\
                   2026-11-30,Files only,False,a@contoso.com,2026-11-29,Public,4,0,0,3,a1111111-0000-0000-0000-000000000002,7\n\
                   2026-11-30,Nothing,False,a@contoso.com,,Public,4,0,0,0,a1111111-0000-0000-0000-000000000003,7\n";
        let out = groups(csv).unwrap();
        assert_eq!(out.len(), 1);
        let m = &out["a1111111-0000-0000-0000-000000000001"];
        assert_eq!(m.mail.unwrap().to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert_eq!((m.teams, m.sharepoint), (None, None));
        // The older form of the report has no `Group Id`: it cannot be joined.
        assert!(groups("Group Display Name,Last Activity Date,Exchange Received Email Count\nx,2026-11-28,3").is_err());
    }
}
