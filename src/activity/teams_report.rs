//! The Teams team activity report CSV (graph-settings-activity.md §2), read robustly: a
//! byte-order mark, quoted fields (with commas and doubled quotes), empty dates, extra or
//! reordered columns. Only `Team Id` and `Last Activity Date` are used; no message content
//! exists in this report.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone, Utc};

use super::LastActivity;

/// Splits one CSV line into fields (RFC 4180 quoting). Lines with quoted newlines are not
/// expected in this report; such a line is read as far as it goes.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Why a report could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("Teams activity report: {0}")]
pub struct ReportError(pub &'static str);

/// Last Teams activity per team id (= the group's object id), lower-cased.
pub fn parse(csv: &str) -> Result<HashMap<String, LastActivity>, ReportError> {
    let text = csv.trim_start_matches('\u{feff}');
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = fields(lines.next().ok_or(ReportError("empty"))?);
    let col = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let id_col = col("Team Id").ok_or(ReportError("no `Team Id` column"))?;
    let date_col = col("Last Activity Date").ok_or(ReportError("no `Last Activity Date` column"))?;
    let mut out: HashMap<String, LastActivity> = HashMap::new();
    for line in lines {
        let f = fields(line);
        let (Some(id), Some(date)) = (f.get(id_col), f.get(date_col)) else {
            continue;
        };
        let id = id.trim().to_lowercase();
        if id.is_empty() {
            continue;
        }
        // Teams with no activity in the period have an empty date.
        let Some(day) = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok() else {
            continue;
        };
        let t = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"));
        out.entry(id).or_default().merge(LastActivity {
            teams: Some(t),
            sharepoint: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_bom_quotes_empty_dates_and_extra_columns() {
        let csv = "\u{feff}Report Refresh Date,Team Name,Team Id,Team Type,Last Activity Date,Report Period,Active Users,Brand New Column\n\
                   2026-11-26,\"Sales, EMEA \"\"North\"\"\",A063D832-AE9A-467D-8CB4-17C073260890,Private,2026-11-25,7,26,x\n\
                   2026-11-26,Quiet Team,b063d832-ae9a-467d-8cb4-17c073260890,Public,,7,0,y\n\
                   2026-11-26,Short row\n";
        let out = parse(csv).unwrap();
        assert_eq!(out.len(), 1);
        let a = out["a063d832-ae9a-467d-8cb4-17c073260890"];
        assert_eq!(a.teams.unwrap().to_rfc3339(), "2026-11-25T00:00:00+00:00");
        assert_eq!(fields("a,\"b,c\",\"d\"\"e\""), vec!["a", "b,c", "d\"e"]);
        // Columns found by name, in any order.
        let reordered = "Last Activity Date,Team Id\r\n2026-11-20,c063d832-ae9a-467d-8cb4-17c073260890\r\n";
        assert_eq!(parse(reordered).unwrap().len(), 1);
        assert!(parse("").is_err());
        assert!(parse("Team Name,Foo\nx,y").is_err());
    }
}
