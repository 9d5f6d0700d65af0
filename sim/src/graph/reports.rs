//! Usage reports (graph-settings-activity.md §2): `getTeamsTeamActivityDetail` answers 302 to
//! a pre-authenticated download (the CSV, with a byte-order mark), and `/admin/reportSettings`
//! says whether names are concealed — when they are, team ids and names in the CSV are
//! replaced by hashes, so the report cannot be joined to groups.

use bytes::Bytes;
use chrono::TimeDelta;
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
            let refresh = (now - TimeDelta::days(1)).format("%Y-%m-%d");
            let mut out = String::from("\u{feff}Report Refresh Date,Team Name,Team Id,Team Type,Last Activity Date,Report Period,Active Users,Active Channels,Guests,Reactions,Meetings Organized,Post Messages,Reply Messages,Channel Messages,Urgent Messages,Mentions,Active Shared Channels,Active External Users\r\n");
            for grp in g.groups.values().filter(|x| x.team.is_some() && x.deleted.is_none()) {
                let last = truth
                    .get(&grp.id)
                    .and_then(|(teams, _)| *teams)
                    .filter(|t| *t >= now - TimeDelta::days(days))
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let (name, id) = if concealed { (conceal(&grp.display_name), conceal(&grp.id.to_string())) } else { (grp.display_name.clone(), grp.id.to_string()) };
                let name = if name.contains(',') || name.contains('"') { format!("\"{}\"", name.replace('"', "\"\"")) } else { name };
                out.push_str(&format!(
                    "{refresh},{name},{id},{},{last},{days},3,2,0,1,0,0,0,0,0,0,0,0\r\n",
                    grp.visibility.as_deref().unwrap_or("Public")
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
    let refresh = (now - TimeDelta::days(1)).format("%Y-%m-%d");
    let since = now - TimeDelta::days(days);
    let mut out = String::from(
        "\u{feff}Report Refresh Date,Group Display Name,Is Deleted,Owner Principal Name,Last Activity Date,Group Type,Member Count,External Member Count,Exchange Received Email Count,SharePoint Active File Count,Yammer Posted Message Count,Yammer Read Message Count,Yammer Liked Message Count,Exchange Mailbox Total Item Count,Exchange Mailbox Storage Used (Byte),SharePoint Total File Count,SharePoint Site Storage Used (Byte),Group Id,Report Period\r\n",
    );
    for grp in g.groups.values().filter(|x| x.is_unified() && x.deleted.is_none()) {
        let mail = crate::audit::mail_history(grp.id, now).filter(|t| *t >= since);
        let files = truth.get(&grp.id).and_then(|(_, sp)| *sp).filter(|t| *t >= since);
        let last = match (mail, files) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
        let received = mail.map_or(0, |_| 1 + grp.id.as_u128() % 40);
        let active_files = files.map_or(0, |_| 1 + grp.id.as_u128() % 9);
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
