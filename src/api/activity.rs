//! `GET /api/activity?inactiveDays=N&top=&cursor=`: each group's last Teams, SharePoint and
//! overall activity, from the tenant's GroupMgr list (read with the caller's rights). With
//! `inactiveDays`, only groups with no activity in that many days (or none recorded at all).
//! Least recently active first.

use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use warp::http::{Response, StatusCode};

use super::model::{
    ActiveDays, Activity, ActivityItem, ActivityPage, GroupActivity, ReportedCounts, SignalDetail, SourceLast,
};
use super::paging::{Cursor, CursorScope, Top, invalid_cursor};
use super::{ApiError, ErrorCode, Request, caller_graph};
use crate::app::App;
use crate::auth::Caller;
use crate::customer_list::{self, Lifecycle};

const DEFAULT_TOP: u32 = 500;
const MAX_TOP: u32 = 5000;
const MAX_DAYS: i64 = 3650;

/// Where the next page starts in the sorted rows.
#[derive(Serialize, Deserialize)]
struct ActivityCursor {
    #[serde(rename = "o")]
    offset: usize,
    /// The `inactiveDays` the pages are of.
    #[serde(rename = "d", default)]
    inactive_days: Option<i64>,
}

pub async fn get(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let mut inactive_days = None;
    let mut top = Top::default_of(DEFAULT_TOP);
    let mut cursor: Option<ActivityCursor> = None;
    let scope = CursorScope {
        key: &app.cursors,
        tenant: &caller.tenant.tenant_id,
        route: "activity".into(),
    };
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "inactiveDays" => {
                inactive_days = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| (0..=MAX_DAYS).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                ErrorCode::InvalidInput,
                                format!("inactiveDays: must be a whole number from 0 to {MAX_DAYS}"),
                            )
                        })?,
                )
            }
            "top" => top = Top::parse(&v, MAX_TOP)?,
            "cursor" => cursor = Some(Cursor::decode(&scope, &v)?),
            _ => {}
        }
    }
    // A cursor continues the listing it was handed out for: given again, `inactiveDays` must
    // be the same.
    let offset = match cursor {
        Some(c) if inactive_days.is_some_and(|d| Some(d) != c.inactive_days) => return Err(invalid_cursor()),
        Some(c) => {
            inactive_days = c.inactive_days;
            c.offset
        }
        None => 0,
    };
    let Some(loc) = customer_list::location(app.state.as_ref(), &caller.tenant.tenant_id)
        .await
        .map_err(|_| ApiError::store_unavailable())?
    else {
        // No sync has run yet: nothing is known about activity.
        let empty = ActivityPage {
            value: Vec::new(),
            next_cursor: None,
            data_complete_until: None,
        };
        return Ok(super::json(StatusCode::OK, &empty));
    };
    let graph = caller_graph(app, caller).await?;
    let cutoff = inactive_days.map(|d| Utc::now() - TimeDelta::days(d));
    let mut rows: Vec<_> = customer_list::all_rows(&graph, &loc)
        .await?
        .into_values()
        .map(|r| r.row)
        .filter(|r| r.lifecycle == Lifecycle::Active)
        .filter(|r| cutoff.is_none_or(|c| r.last_activity.is_none_or(|t| t < c)))
        .collect();
    rows.sort_by(|a, b| {
        a.last_activity
            .cmp(&b.last_activity)
            .then_with(|| a.group_id.cmp(&b.group_id))
    });
    let sources = crate::jobs::activity_sync::sources(
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        app.settings.cloud.has_teams_report(),
        app.management.is_some(),
    )
    .await
    .map_err(|_| ApiError::store_unavailable())?;
    let value = rows
        .iter()
        .skip(offset)
        .take(top.as_usize())
        .map(|r| ActivityItem {
            group_id: r.group_id.clone(),
            display_name: r.name.clone(),
            activity: Activity::of(Some(r)),
            sources: crate::jobs::activity_sync::sources_of(r, &sources),
        })
        .collect();
    let end = offset.saturating_add(top.as_usize());
    let next_cursor = (end < rows.len()).then(|| {
        Cursor::encode(
            &scope,
            &ActivityCursor {
                offset: end,
                inactive_days,
            },
        )
    });
    let data_complete_until = crate::jobs::activity_sync::data_complete_until(
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        app.management.is_some(),
    )
    .await
    .map_err(|_| ApiError::store_unavailable())?;
    let page = ActivityPage {
        value,
        next_cursor,
        data_complete_until,
    };
    Ok(super::json(StatusCode::OK, &page))
}

/// `GET /api/groups/{id}/activity`: one group's activity per signal (Teams; SharePoint file
/// edits, file views, pages, lists; the group mailbox), each with since when it has been
/// observed and whether it can be seen for this group, from the tenant's GroupMgr list (read
/// with the caller's rights) and GroupMgr's job state. A group no sync has found yet is
/// answered with nothing observable.
pub async fn group(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    use crate::lifecycle::{Signal, facts};
    let id = crate::domain::GroupId::parse(req.param("id"))
        .map_err(|_| ApiError::bad_request(ErrorCode::InvalidInput, "id: must be a group id (GUID)"))?
        .to_string();
    let tenant = &caller.tenant.tenant_id;
    let state = app.state.as_ref();
    let loc = customer_list::location(state, tenant)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let graph = caller_graph(app, caller).await?;
    let row = match &loc {
        Some(loc) => customer_list::row(&graph, loc, &id)
            .await?
            .filter(|r| r.row.lifecycle == Lifecycle::Active)
            .map(|r| r.row),
        None => None,
    };
    // Not synced yet (a group made a moment ago): the group exists, nothing of its activity
    // can be seen yet. A group Graph does not know is 404.
    let row = match row {
        Some(r) => r,
        None => {
            let g = graph.get_group(&id).await?;
            let mut r = customer_list::GroupRow::new(&g.id);
            r.name = g.display_name.unwrap_or_default();
            r
        }
    };
    let teams_report = app.settings.cloud.has_teams_report();
    let audit = app.management.is_some();
    let data = facts::data_state(state, tenant, teams_report, audit)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let sources = crate::jobs::activity_sync::sources(state, tenant, teams_report, audit)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let mut group = facts::of_row(&row).ok_or_else(ApiError::not_found)?;
    if row.synced_at.is_none() {
        // Never synced: no signal can be matched to it yet.
        group.unobservable.extend(Signal::OF_ACTIVITY);
    }
    let today = crate::activity::days::day_of(app.clock.now());
    // The reports' counts are current as of the refresh date of the last read (a row keeps
    // counts that did not change since), but for a group whose new counts still wait to be
    // written: its row's are as of their own date, and none are shown if it has none yet. A
    // group without counts in the list was in none of the periods. A group not synced yet, or
    // (for Teams) without a team, has none to show.
    let refreshed = |key| async move {
        let day = state
            .load(tenant, key)
            .await
            .map_err(|_| ApiError::store_unavailable())?;
        Ok::<_, ApiError>(day.and_then(|(d, _)| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
    };
    let teams_refreshed = refreshed(crate::jobs::activity_sync::TEAMS_REFRESHED_KEY).await?;
    let mail_refreshed = refreshed(crate::jobs::activity_sync::GROUPS_REFRESHED_KEY).await?;
    let counts = row.report_counts;
    // Counts of this group still waiting to be written: the row's are as of their own date.
    let waiting = crate::jobs::pending::counts_waiting(state, tenant, &row.group_id)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let as_of = |tenant_day: chrono::NaiveDate, row_day: Option<chrono::NaiveDate>| match (waiting, row_day) {
        (false, d) => Some(d.map_or(tenant_day, |d| d.max(tenant_day))),
        (true, d) => d,
    };
    let signals = Signal::OF_ACTIVITY
        .iter()
        .map(|s| SignalDetail {
            signal: *s,
            last: group.last(*s),
            observed_since: data.observed_since[*s as usize],
            available: !data.unavailable.contains(s),
            observable: !group.unobservable.contains(s),
            active_days: (audit && *s != Signal::Mail)
                .then(|| ActiveDays::of(row.activity_days.signals[*s as usize], today)),
            reported: match s {
                _ if row.synced_at.is_none() => None,
                Signal::Teams if row.teams_enabled => teams_refreshed
                    .and_then(|d| as_of(d, counts.teams.map(|c| c.refreshed)))
                    .map(|d| ReportedCounts::teams(d, counts.teams)),
                Signal::Mail => mail_refreshed
                    .and_then(|d| as_of(d, counts.mail.map(|c| c.refreshed)))
                    .map(|d| ReportedCounts::mail(d, counts.mail)),
                _ => None,
            },
            by_source: {
                use crate::jobs::activity_sync::Source;
                let of = |source, last| SourceLast { source, last };
                match s {
                    Signal::Teams => vec![
                        of(Source::TeamsReport, row.last_teams_by.report),
                        of(Source::TeamsAudit, row.last_teams_by.audit),
                    ],
                    Signal::Mail => vec![of(Source::GroupMailbox, group.last(*s))],
                    _ => vec![of(Source::SharePointAudit, group.last(*s))],
                }
            },
        })
        .collect();
    let body = GroupActivity {
        group_id: row.group_id.clone(),
        display_name: row.name.clone(),
        signals,
        last_share_point_activity: row.last_sharepoint_activity,
        last_activity: row.last_activity,
        sources: crate::jobs::activity_sync::sources_of(&row, &sources),
        data_complete_until: data.complete_until,
    };
    Ok(super::json(StatusCode::OK, &body))
}
