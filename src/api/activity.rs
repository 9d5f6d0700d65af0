//! `GET /api/activity?inactiveDays=N&top=&cursor=`: each group's last Teams, SharePoint and
//! overall activity, from the tenant's GroupMgr list (read with the caller's rights). With
//! `inactiveDays`, only groups with no activity in that many days (or none recorded at all).
//! Least recently active first.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use warp::http::{Response, StatusCode};

use super::model::{Activity, ActivityItem, ActivityPage};
use super::upstream::graph_token;
use super::{ApiError, ErrorCode, query_params};
use crate::app::App;
use crate::auth::Caller;
use crate::customer_list::{self, Lifecycle};
use crate::host::HttpRequest;

const DEFAULT_TOP: usize = 500;
const MAX_TOP: usize = 5000;
const MAX_DAYS: i64 = 3650;

pub async fn get(app: &App, caller: &Caller, req: &HttpRequest) -> Result<Response<Bytes>, ApiError> {
    let bad = |m: String| ApiError::bad_request(ErrorCode::InvalidInput, m);
    let mut inactive_days = None;
    let mut top = DEFAULT_TOP;
    let mut offset = 0usize;
    for (k, v) in query_params(&req.query) {
        match k.as_str() {
            "inactiveDays" => {
                inactive_days = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| (0..=MAX_DAYS).contains(n))
                        .ok_or_else(|| bad(format!("inactiveDays: must be a whole number from 0 to {MAX_DAYS}")))?,
                )
            }
            "top" => {
                top = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_TOP).contains(n))
                    .ok_or_else(|| bad(format!("top: must be a whole number from 1 to {MAX_TOP}")))?
            }
            "cursor" => {
                offset = B64URL
                    .decode(&v)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse().ok()))
                    .ok_or_else(|| {
                        ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not one this API returned")
                    })?
            }
            _ => {}
        }
    }
    let Some(loc) = customer_list::location(app.store.as_ref(), &caller.tenant.tenant_id)
        .await
        .map_err(|_| ApiError::store_unavailable())?
    else {
        // No sync has run yet: nothing is known about activity.
        let empty = ActivityPage {
            value: Vec::new(),
            next_cursor: None,
        };
        return Ok(super::json(StatusCode::OK, &empty));
    };
    let token = graph_token(app, caller).await?;
    let graph = app.graph.session(&token);
    let cutoff = inactive_days.map(|d| Utc::now() - TimeDelta::days(d));
    let mut rows: Vec<_> = customer_list::all_rows(&graph, &loc)
        .await?
        .into_values()
        .map(|(_, r)| r)
        .filter(|r| r.lifecycle == Lifecycle::Active)
        .filter(|r| cutoff.is_none_or(|c| r.last_activity.is_none_or(|t| t < c)))
        .collect();
    rows.sort_by(|a, b| {
        a.last_activity
            .cmp(&b.last_activity)
            .then_with(|| a.group_id.cmp(&b.group_id))
    });
    let value = rows
        .iter()
        .skip(offset)
        .take(top)
        .map(|r| ActivityItem {
            group_id: r.group_id.clone(),
            display_name: r.name.clone(),
            activity: Activity::of(Some(r)),
        })
        .collect();
    let next_cursor = (offset + top < rows.len()).then(|| B64URL.encode(format!("o:{}", offset + top)));
    Ok(super::json(StatusCode::OK, &ActivityPage { value, next_cursor }))
}
