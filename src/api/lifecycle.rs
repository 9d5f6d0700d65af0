//! The lifecycle policy and its dry run (issue 16, items 2 and 3), role `GroupMgr.Admin`:
//! - `GET`/`PUT /api/lifecycle/policy`: the policy, kept in the customer's GroupMgr site
//!   (`lifecycle::site`): read with the caller's rights, written — once the caller's role is
//!   checked — with GroupMgr's own grant on that one site (`Sites.Selected`), so that no
//!   delegated write permission to SharePoint is needed;
//! - `GET /api/lifecycle/candidates`: the groups the policy would act on now, each with its
//!   evidence and next step, or why there are none. A dry run: it reads the customer's list
//!   and GroupMgr's job state, and writes nothing anywhere.

use bytes::Bytes;
use warp::http::{Response, StatusCode};

use super::model::{CandidateItem, CandidatePage};
use super::{ApiError, ErrorCode, Request, app_graph, caller_graph, require_admin};
use crate::app::App;
use crate::auth::Caller;
use crate::customer_list::{self, ListError};
use crate::lifecycle::site::{self, SettingsError};
use crate::lifecycle::{LifecyclePolicy, facts};

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::List(ListError::Graph(g)) => g.into(),
            SettingsError::List(ListError::State(_)) => ApiError::store_unavailable(),
            // Someone edited the item by hand: a PUT replaces it.
            e @ SettingsError::Invalid { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                format!("{e}; PUT /api/lifecycle/policy replaces it"),
            ),
        }
    }
}

fn no_policy() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no lifecycle policy is set for this tenant; PUT /api/lifecycle/policy sets one",
    )
}

/// The tenant's policy, read with the caller's rights.
async fn load(app: &App, caller: &Caller) -> Result<LifecyclePolicy, ApiError> {
    let graph = caller_graph(app, caller).await?;
    site::load_policy(
        &graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
    )
    .await?
    .ok_or_else(no_policy)
}

/// `GET /api/lifecycle/policy`.
pub async fn get_policy(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let policy = load(app, caller).await?;
    Ok(super::json(StatusCode::OK, &policy))
}

/// `PUT /api/lifecycle/policy`: the whole policy, validated, then stored.
pub async fn put_policy(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let policy: LifecyclePolicy = req.json()?;
    policy.validate()?;
    let graph = app_graph(app, caller).await?;
    site::save_policy(
        &graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
        &policy,
    )
    .await?;
    Ok(super::json(StatusCode::OK, &policy))
}

/// `GET /api/lifecycle/candidates`.
pub async fn candidates(app: &App, caller: &Caller, _req: &Request) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let policy = load(app, caller).await?;
    let tenant = &caller.tenant.tenant_id;
    let state = app.state.as_ref();
    let data = facts::data_state(
        state,
        tenant,
        app.settings.cloud.has_teams_report(),
        app.management.is_some(),
    )
    .await
    .map_err(|_| ApiError::store_unavailable())?;
    let location = customer_list::location(state, tenant)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    let rows = match location {
        Some(loc) if data.complete_until.is_some() => {
            let graph = caller_graph(app, caller).await?;
            customer_list::all_rows(&graph, &loc).await?
        }
        // No sync has finished: nothing to judge (the evaluation says so).
        _ => Default::default(),
    };
    let names: std::collections::HashMap<uuid::Uuid, String> = rows
        .values()
        .filter_map(|r| Some((uuid::Uuid::parse_str(&r.row.group_id).ok()?, r.row.name.clone())))
        .collect();
    let groups: Vec<_> = rows.values().filter_map(|r| facts::of_row(&r.row)).collect();
    let judged = groups.len();
    let page = match crate::lifecycle::candidates(&policy, &data, &groups, app.clock.now()) {
        Ok(found) => CandidatePage {
            value: found.into_iter().map(|c| CandidateItem::of(c, &names)).collect(),
            withheld: None,
            groups_judged: judged,
            data_complete_until: data.complete_until,
            policy,
        },
        Err(why) => CandidatePage {
            value: Vec::new(),
            withheld: Some(why.into()),
            groups_judged: judged,
            data_complete_until: data.complete_until,
            policy,
        },
    };
    Ok(super::json(StatusCode::OK, &page))
}
