//! Usage reports (graph-settings-activity.md §2): `getTeamsTeamActivityDetail` answers 302 to
//! a pre-authenticated download (the CSV, with a byte-order mark), and `/admin/reportSettings`
//! says whether names are concealed — when they are, team ids and names in the CSV are
//! replaced by hashes, so the report cannot be joined to groups.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;
use warp::http::{Response, StatusCode};

use super::{GraphReply, GraphRequest};
use crate::SimState;

pub fn handle(state: &SimState, req: &GraphRequest<'_>, segs: &[&str]) -> GraphReply {
    let c = req.caller;
    if !c.has_any(&[
        "Reports.Read.All",
        "ReportSettings.Read.All",
        "ReportSettings.ReadWrite.All",
    ]) {
        return GraphReply::denied();
    }
    match (req.method.as_str(), segs) {
        ("GET", ["admin", "reportSettings"]) => {
            let concealed = state
                .concealed_reports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&c.tenant.id);
            GraphReply::ok(
                json!({"@odata.context": format!("{}/v1.0/$metadata#admin/reportSettings/$entity", state.base_url()), "displayConcealedNames": concealed}),
            )
        }
        ("GET", ["reports", call])
            if call.starts_with("getTeamsTeamActivityDetail(")
                || call.starts_with("getOffice365GroupsActivityDetail(") =>
        {
            let (function, period) = call.split_once('(').unwrap_or_default();
            let period = period.trim_end_matches(')');
            // Both reports answer 302 to a pre-authenticated CSV (graph-settings-activity.md
            // §2, §3: reportroot-getteamsteamactivitydetail, -getoffice365groupsactivitydetail).
            let file = if function == "getOffice365GroupsActivityDetail" {
                "groups-D"
            } else {
                "D"
            };
            let days = match period {
                "period='D7'" => 7,
                "period='D30'" => 30,
                "period='D90'" => 90,
                "period='D180'" => 180,
                _ => {
                    return GraphReply::error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid period.");
                }
            };
            let mut reply = GraphReply {
                status: StatusCode::FOUND,
                body: None,
                headers: vec![("content-type", "text/plain".into())],
                text: Some(String::new()),
            };
            reply.headers.push((
                "location",
                format!("{}/_reports/{}/{file}{days}.csv", state.base_url(), c.tenant.id),
            ));
            reply
        }
        _ => GraphReply::error(StatusCode::BAD_REQUEST, "BadRequest", "Unsupported report."),
    }
}

/// A team's counts in the Teams team activity report over `days` before `now` (period sums,
/// reportroot-getteamsteamactivitydetail: "Post Messages", "Reply Messages", "Channel
/// Messages", "Reactions", "Meetings Organized"). Microsoft does not document "Channel
/// Messages" as posts plus replies; the sim keeps it so. Counts stop at `last`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamsCounts {
    pub posts: u64,
    pub replies: u64,
    pub reactions: u64,
    pub meetings: u64,
    pub active_days: u64,
    pub last_day: Option<NaiveDate>,
}

impl TeamsCounts {
    pub fn channel_messages(&self) -> u64 {
        self.posts + self.replies
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: a day's counts from the group and the day alone.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A report's `Report Refresh Date` at `now`: its data ends the day before ("Data for a given
/// day will show up within 48 hours", Microsoft 365 admin center, Microsoft Teams usage
/// activity; the sim takes the quick end of it).
pub fn refresh_date(now: DateTime<Utc>) -> NaiveDate {
    (now - TimeDelta::days(1)).date_naive()
}

/// The dates a `days`-day period covers at `now`: the `days` dates up to the refresh date.
fn period(now: DateTime<Utc>, days: i64) -> (NaiveDate, NaiveDate) {
    let end = refresh_date(now);
    (end - TimeDelta::days(days - 1), end)
}

/// The days a group was active in a report's eyes, latest first: the day of `last`, then
/// earlier ones every few days (a group's own rhythm), those of the period only (activity
/// after the refresh date is not in the report yet).
fn active_days(
    group: uuid::Uuid,
    salt: u64,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    days: i64,
) -> impl Iterator<Item = (NaiveDate, u64)> {
    let (first, end) = period(now, days);
    let h = mix(group.as_u128() as u64 ^ (group.as_u128() >> 64) as u64 ^ salt);
    let step = 1 + (h % 5) as i64;
    let earlier = ((h >> 8) % 15) as i64;
    last.into_iter().flat_map(move |t| {
        let latest = t.date_naive();
        (0..=earlier).filter_map(move |j| {
            let d = latest - TimeDelta::days(j * step);
            let n = d.signed_duration_since(NaiveDate::default()).num_days() as u64;
            (first <= d && d <= end).then(|| (d, mix(h ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))))
        })
    })
}

/// The Teams report's row for a team whose last activity is `last`: its counts over the
/// period and its `Last Activity Date` (the latest active day in the period).
pub fn teams_counts(group: uuid::Uuid, last: Option<DateTime<Utc>>, now: DateTime<Utc>, days: i64) -> TeamsCounts {
    let mut c = TeamsCounts::default();
    for (d, h) in active_days(group, 0x7ea5, last, now, days) {
        c.posts += 1 + h % 4;
        c.replies += (h >> 8) % 6;
        c.reactions += (h >> 16) % 9;
        c.meetings += u64::from((h >> 24).is_multiple_of(4));
        c.active_days += 1;
        c.last_day = c.last_day.max(Some(d));
    }
    c
}

/// The groups report's row for a group whose last mail is `mail` and latest SharePoint
/// activity `files`: the mail its mailbox received in the period ("Exchange Received Email
/// Count") and its `Last Activity Date`, "the latest date an activity happened in an email
/// conversation, Viva Engage, or the Site" (reportroot-getoffice365groupsactivitydetail;
/// Microsoft 365 groups activity report, admin center). Site activity after the refresh
/// date is taken as on that date.
pub fn groups_row(
    group: uuid::Uuid,
    mail: Option<DateTime<Utc>>,
    files: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    days: i64,
) -> (u64, Option<NaiveDate>) {
    let (first, end) = period(now, days);
    let mut received = 0;
    let mut last = None;
    for (d, h) in active_days(group, 0x3a11, mail, now, days) {
        received += 1 + (h >> 32) % 12;
        last = last.max(Some(d));
    }
    let files = files.map(|t| t.date_naive().min(end)).filter(|d| *d >= first);
    (received, last.max(files))
}

/// What GroupMgr can know of a group mailbox's last mail from the groups report read over
/// 7, 30 and 90 days at `now`: the `Last Activity Date` of the shortest period with mail,
/// no later than the day before a shorter period without mail began.
pub fn knowable_last_mail(
    group: uuid::Uuid,
    mail: Option<DateTime<Utc>>,
    files: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<NaiveDate> {
    let periods = [7, 30, 90];
    let i = periods
        .iter()
        .position(|d| groups_row(group, mail, files, now, *d).0 > 0)?;
    let last = groups_row(group, mail, files, now, periods[i]).1?;
    Some(match i.checked_sub(1) {
        Some(shorter) => last.min(refresh_date(now) - TimeDelta::days(periods[shorter])),
        None => last,
    })
}

fn conceal(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    d.as_ref()[..16].iter().map(|b| format!("{b:02X}")).collect()
}

/// The pre-authenticated CSV download (no token needed, as on reports.office.com).
pub fn report_download(state: &SimState, tenant: &str, file: &str) -> Response<Bytes> {
    let (groups_report, file) = match file.strip_prefix("groups-") {
        Some(f) => (true, f),
        None => (false, file),
    };
    let (Ok(tenant), Some(days)) = (
        tenant.parse::<Uuid>(),
        file.strip_prefix('D')
            .and_then(|f| f.strip_suffix(".csv"))
            .and_then(|d| d.parse::<i64>().ok()),
    ) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Bytes::new())
            .expect("valid");
    };
    let Some(t) = state.tenant(&tenant) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Bytes::new())
            .expect("valid");
    };
    let concealed = state
        .concealed_reports
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&tenant);
    let host = format!("{}.sharepoint.com", t.name.to_lowercase());
    let now = state.now();
    let opts = state.options.audit.clone();
    if groups_report {
        let csv = state
            .with_graph(&tenant, |g| groups_csv(g, &tenant, &host, &opts, now, days, concealed))
            .unwrap_or_default();
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/octet-stream")
            .body(Bytes::from(csv))
            .expect("valid");
    }
    let csv = state
        .with_graph(&tenant, |g| {
            let truth = crate::audit::expected_activity(g, &tenant, &host, &opts, now);
            let refresh = refresh_date(now);
            let mut out = String::from("\u{feff}Report Refresh Date,Team Name,Team Id,Team Type,Last Activity Date,Report Period,Active Users,Active Channels,Guests,Reactions,Meetings Organized,Post Messages,Reply Messages,Channel Messages,Urgent Messages,Mentions,Active Shared Channels,Active External Users\r\n");
            for grp in g.groups.values().filter(|x| x.team.is_some() && x.deleted.is_none()) {
                let last = truth.get(&grp.id).and_then(|(teams, _)| *teams);
                let c = teams_counts(grp.id, last, now, days);
                let last = c.last_day.map(|d| d.to_string()).unwrap_or_default();
                let (name, id) = if concealed { (conceal(&grp.display_name), conceal(&grp.id.to_string())) } else { (grp.display_name.clone(), grp.id.to_string()) };
                let name = if name.contains(',') || name.contains('"') { format!("\"{}\"", name.replace('"', "\"\"")) } else { name };
                let active_users = if c.active_days == 0 { 0 } else { (1 + c.active_days / 2).min(grp.members.len().max(1) as u64) };
                let active_channels = u64::from(c.active_days > 0) * (1 + c.posts % 3);
                out.push_str(&format!(
                    "{refresh},{name},{id},{},{last},{days},{active_users},{active_channels},0,{},{},{},{},{},0,{},0,0\r\n",
                    grp.visibility.as_deref().unwrap_or("Public"),
                    c.reactions,
                    c.meetings,
                    c.posts,
                    c.replies,
                    c.posts + c.replies,
                    c.posts / 4,
                ));
            }
            out
        })
        .unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .body(Bytes::from(csv))
        .expect("valid")
}

/// The Microsoft 365 groups activity report (graph-settings-activity.md §3; newer form, with
/// `Group Id`): a group's last activity over mail and files in the period, and the mail its
/// mailbox received. Names and ids are hashes when the tenant conceals them.
fn groups_csv(
    g: &crate::graph::model::TenantGraph,
    tenant: &Uuid,
    host: &str,
    opts: &crate::audit::AuditOptions,
    now: chrono::DateTime<chrono::Utc>,
    days: i64,
    concealed: bool,
) -> String {
    let truth = crate::audit::feed_activity(g, tenant, host, opts, now);
    let refresh = refresh_date(now);
    let mut out = String::from(
        "\u{feff}Report Refresh Date,Group Display Name,Is Deleted,Owner Principal Name,Last Activity Date,Group Type,Member Count,External Member Count,Exchange Received Email Count,SharePoint Active File Count,Yammer Posted Message Count,Yammer Read Message Count,Yammer Liked Message Count,Exchange Mailbox Total Item Count,Exchange Mailbox Storage Used (Byte),SharePoint Total File Count,SharePoint Site Storage Used (Byte),Group Id,Report Period\r\n",
    );
    for grp in g.groups.values().filter(|x| x.is_unified() && x.deleted.is_none()) {
        let mail = crate::audit::mail_history(grp, now);
        let files = truth.get(&grp.id).and_then(|(_, sp)| *sp);
        let (received, last) = groups_row(grp.id, mail, files, now, days);
        let last = last.map(|d| d.to_string()).unwrap_or_default();
        let active_files = groups_row(grp.id, None, files, now, days)
            .1
            .map_or(0, |_| 1 + grp.id.as_u128() % 9);
        let (name, id) = if concealed {
            (conceal(&grp.display_name), conceal(&grp.id.to_string()))
        } else {
            (grp.display_name.clone(), grp.id.to_string())
        };
        let name = if name.contains(',') || name.contains('"') || name.contains('\n') {
            format!("\"{}\"", name.replace('"', "\"\""))
        } else {
            name
        };
        out.push_str(&format!(
            "{refresh},{name},False,,{last},{},{},0,{received},{active_files},0,0,0,{},{},{},{},{id},{days}\r\n",
            grp.visibility.as_deref().unwrap_or("Public"),
            grp.members.len(),
            received * 3,
            received * 51_200,
            active_files * 4,
            active_files * 1_048_576,
        ));
    }
    out
}
