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
        ("GET", ["reports", call]) if call.starts_with("getTeamsTeamActivityDetail(") => {
            let period = call
                .trim_start_matches("getTeamsTeamActivityDetail(")
                .trim_end_matches(')');
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
                format!("{}/_reports/{}/D{days}.csv", state.base_url(), c.tenant.id),
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
