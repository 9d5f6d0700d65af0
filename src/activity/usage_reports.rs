//! The usage report CSVs (graph-settings-activity.md §2 and §3), read with a maintained CSV
//! reader (the `csv` crate: RFC 4180 quoting, quoted line breaks, a byte-order mark) and by
//! column name, so extra or reordered columns do not matter:
//! - the Teams team activity report: `Team Id` and `Last Activity Date`;
//! - the Microsoft 365 groups activity report: `Group Id`, `Last Activity Date` and
//!   `Exchange Received Email Count` — a group whose mailbox received mail in the period has
//!   mail activity up to its last activity date.
//!
//! No message content exists in either report.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone, Utc};

use super::LastActivity;

/// Why a report could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{report}: {problem}")]
pub struct ReportError {
    pub report: &'static str,
    pub problem: String,
}

/// A report row: the id (lower-cased), the last activity day, and the `extra` columns.
type Row = (String, NaiveDate, Vec<String>);

/// The rows of a report that have both an id and a last activity day.
fn rows(report: &'static str, csv_text: &str, id_column: &str, extra: &[&str]) -> Result<Vec<Row>, ReportError> {
    let err = |problem: String| ReportError { report, problem };
    let text = csv_text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| err(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| *h == name.to_ascii_lowercase())
            .ok_or_else(|| err(format!("no `{name}` column")))
    };
    let id = col(id_column)?;
    let date = col("Last Activity Date")?;
    let extra: Vec<usize> = extra.iter().map(|c| col(c)).collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for record in reader.records() {
        // A malformed row is skipped, not the report.
        let Ok(record) = record else { continue };
        let (Some(group), Some(day)) = (record.get(id), record.get(date)) else {
            continue;
        };
        let group = group.trim().to_lowercase();
        // Groups with no activity in the period have an empty date.
        let Ok(day) = NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d") else {
            continue;
        };
        if group.is_empty() {
            continue;
        }
        let values = extra
            .iter()
            .map(|&i| record.get(i).unwrap_or_default().trim().to_string())
            .collect();
        out.push((group, day, values));
    }
    Ok(out)
}

fn midnight(day: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// Last Teams activity per team id (= the group's object id), lower-cased.
pub fn teams(csv_text: &str) -> Result<HashMap<String, LastActivity>, ReportError> {
    let mut out: HashMap<String, LastActivity> = HashMap::new();
    for (id, day, _) in rows("Teams activity report", csv_text, "Team Id", &[])? {
        // A time, not a day of activity: the report names the last day only, so days seen
        // this way would be a fraction of the days there were (`days.rs` counts the feed's).
        out.entry(id).or_default().merge(LastActivity {
            teams: Some(midnight(day)),
            ..Default::default()
        });
    }
    Ok(out)
}

/// Last mail activity per group id, lower-cased: groups whose mailbox received mail in the
/// period. The report's date is the group's last activity over mail, files and Yammer; it is
/// the group's own activity whichever it was.
pub fn groups(csv_text: &str) -> Result<HashMap<String, LastActivity>, ReportError> {
    let mut out: HashMap<String, LastActivity> = HashMap::new();
    let report = "Microsoft 365 groups activity report";
    for (id, day, values) in rows(report, csv_text, "Group Id", &["Exchange Received Email Count"])? {
        let received: u64 = values[0].parse().unwrap_or(0);
        if received > 0 {
            out.entry(id).or_default().merge(LastActivity {
                mail: Some(midnight(day)),
                ..Default::default()
            });
        }
    }
    Ok(out)
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
