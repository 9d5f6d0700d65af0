//! `GET /api/groups/{id}/successors` (role `GroupMgr.Admin`): who could own a group next —
//! its members who are not guests and whose accounts are enabled, ranked by their own
//! activity in the group (days of the last 90 on which the audit feed shows them doing
//! something in its team or its sites), at most three.
//!
//! Who did what is read from the group's row in the customer's list, where the activity sync
//! keeps it under pseudonyms (`activity::days`); the members are read now, with the caller's
//! rights, and only here, for this answer, are pseudonyms turned back into people. Nothing of
//! it is stored by GroupMgr.

use bytes::Bytes;
use warp::http::{Response, StatusCode};

use super::groups::{group_id, unified_group};
use super::model::{Successor, Successors};
use super::upstream::app_graph;
use super::{ApiError, Request, caller_graph, require_admin};
use crate::activity::{DaySet, Pseudonym, days};
use crate::app::App;
use crate::auth::Caller;
use crate::customer_list::{self, Lifecycle};

/// Successors suggested at most.
const SUGGESTED: usize = 3;
/// The days of activity that count.
pub const WINDOW_DAYS: u32 = 90;

/// One member as ranked: days active, latest day, id (the order of the answer).
struct Ranked {
    id: String,
    display_name: Option<String>,
    upn: String,
    days: u32,
    latest: days::Day,
}

pub async fn get(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let id = group_id(req)?;
    let tenant = &caller.tenant.tenant_id;
    let graph = caller_graph(app, caller).await?;
    let group = unified_group(&graph, &id).await?;
    let row = match customer_list::location(app.state.as_ref(), tenant)
        .await
        .map_err(|_| ApiError::store_unavailable())?
    {
        Some(loc) => customer_list::row(&graph, &loc, &group.id)
            .await?
            .map(|r| r.row)
            .filter(|r| r.lifecycle == Lifecycle::Active),
        None => None,
    };
    // Members with GroupMgr's own token (after the role check above): `userType` and
    // `accountEnabled` need `User.Read.All`, which only the application holds (the caller's
    // `User.ReadBasic.All` does not show them). Without it, guests are still told by their
    // `#EXT#` name, disabled accounts not at all, and the answer says so.
    // A group that hides its membership needs `Member.Read.Hidden`, which GroupMgr does not
    // ask for: its members are read with the caller's rights instead (basic profiles).
    // Their accounts' state then comes from the tenant's disabled accounts (`User.Read.All`).
    let app_graph = app_graph(app, caller).await?;
    let mut members = match app_graph.member_users(&group.id).await {
        Err(e) if e.status() == Some(403) => {
            let mut members = graph.member_users(&group.id).await?;
            match app_graph.disabled_users().await {
                Ok(disabled) => {
                    for m in members.iter_mut() {
                        m.account_enabled = Some(!disabled.contains(&m.id));
                    }
                }
                Err(e) if e.status() == Some(403) => {}
                Err(e) => return Err(e.into()),
            }
            members
        }
        other => other?,
    };
    members.retain(|m| m.is_user());
    let disabled_known = members.iter().all(|m| m.account_enabled.is_some());
    let today = days::day_of(app.clock.now());
    let mut pseudonyms = app.pseudonyms.tenant(tenant);
    let (mut guests, mut disabled_members) = (0, 0);
    let mut ranked = Vec::new();
    for m in &members {
        if m.is_guest() {
            guests += 1;
            continue;
        }
        if disabled_known && m.account_enabled == Some(false) {
            disabled_members += 1;
            continue;
        }
        let Some(upn) = m.user_principal_name.as_deref().filter(|u| !u.is_empty()) else {
            continue;
        };
        let active: DaySet = row
            .as_ref()
            .and_then(|r| r.activity_days.person(&Pseudonym(pseudonyms.of(upn))))
            .unwrap_or_default();
        let days = active.count(today, WINDOW_DAYS);
        if days == 0 {
            continue;
        }
        ranked.push(Ranked {
            id: m.id.clone(),
            display_name: m.display_name.clone(),
            upn: upn.to_string(),
            days,
            latest: active.latest().unwrap_or_default(),
        });
    }
    let considered = members.len() - guests - disabled_members;
    ranked.sort_by(|a, b| {
        b.days
            .cmp(&a.days)
            .then(b.latest.cmp(&a.latest))
            .then_with(|| a.id.to_lowercase().cmp(&b.id.to_lowercase()))
    });
    let active_members = ranked.len();
    ranked.truncate(SUGGESTED);
    let data_complete_until =
        crate::jobs::activity_sync::data_complete_until(app.state.as_ref(), tenant, app.management.is_some())
            .await
            .map_err(|_| ApiError::store_unavailable())?;
    let body = Successors {
        group_id: group.id.clone(),
        display_name: group.display_name.clone().unwrap_or_default(),
        window_days: WINDOW_DAYS,
        successors: ranked
            .into_iter()
            .map(|r| Successor {
                id: r.id,
                display_name: r.display_name,
                user_principal_name: r.upn,
                active_days: r.days,
                last_active_day: days::date(r.latest),
            })
            .collect(),
        members_considered: considered,
        active_members,
        guests_left_out: guests,
        disabled_left_out: disabled_known.then_some(disabled_members),
        audit_feed: app.management.is_some(),
        data_complete_until,
        as_of: app.clock.now(),
    };
    Ok(super::json(StatusCode::OK, &body))
}
