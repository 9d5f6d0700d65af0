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

use std::collections::HashMap;

use super::model::{
    CandidateItem, CandidatePage, ConfirmActions, ConfirmedActions, DecisionBody, DueAction, DueActionList, DueStep,
    OpenReviews, OpenedReviews, ReviewList, Skipped, Webhook, WebhookBody,
};
use super::{ApiError, ErrorCode, Request, app_graph, caller_graph, require_admin};
use crate::app::App;
use crate::auth::Caller;
use crate::customer_list::{self, ListError};
use crate::lifecycle::decide::{DecideError, Decider};
use crate::lifecycle::reviews::{Review, Reviews, WriteError};
use crate::lifecycle::site::{self, SettingsError};
use crate::lifecycle::{Candidate, LifecyclePolicy, Withheld, facts, no_answer, webhooks};

/// The most groups one `POST /api/lifecycle/reviews` opens reviews for, or one
/// `POST /api/lifecycle/actions` confirms.
const MAX_BATCH: usize = 500;

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
    if policy.execution == crate::lifecycle::Execution::Automatic {
        // Automatic actions run with application permissions the tenant grants GroupMgr for
        // this alone: refused until it has (the token says which roles it carries).
        let token = app
            .tokens
            .app_token(&caller.tenant.tenant_id, &app.graph_resource)
            .await?;
        let missing = crate::auth::missing_app_roles(&token, &crate::lifecycle::automatic::ROLES);
        if !missing.is_empty() {
            return Err(ApiError::forbidden(
                ErrorCode::ConsentRequired,
                format!(
                    "execution automatic needs the application permissions {}, which this tenant \
                     has not granted GroupMgr (see the README's permissions table); manual \
                     execution needs none",
                    missing.join(" and ")
                ),
            ));
        }
    }
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

/// The dry run's judgement: the policy, the data state, each group's facts (with what its
/// review says) and the candidates or why there are none. Reads only.
struct Judgement {
    policy: LifecyclePolicy,
    data_complete_until: Option<chrono::DateTime<chrono::Utc>>,
    names: HashMap<uuid::Uuid, String>,
    judged: usize,
    outcome: Result<Vec<Candidate>, Withheld>,
    now: chrono::DateTime<chrono::Utc>,
}

async fn judge(app: &App, caller: &Caller) -> Result<Judgement, ApiError> {
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
    let (rows, reviews) = match location {
        Some(loc) if data.complete_until.is_some() => {
            let graph = caller_graph(app, caller).await?;
            let reviews = match Reviews::find(&graph, &loc.site_id).await? {
                Some(list) => list.all(&graph).await?,
                None => Vec::new(),
            };
            (customer_list::all_rows(&graph, &loc).await?, reviews)
        }
        // No sync has finished: nothing to judge (the evaluation says so).
        _ => Default::default(),
    };
    let names = rows
        .values()
        .filter_map(|r| Some((uuid::Uuid::parse_str(&r.row.group_id).ok()?, r.row.name.clone())))
        .collect();
    let groups = facts::of_rows(rows.values().map(|r| &r.row), &reviews, |_| false);
    let now = app.clock.now();
    Ok(Judgement {
        outcome: crate::lifecycle::candidates(&policy, &data, &groups, now),
        judged: groups.len(),
        data_complete_until: data.complete_until,
        names,
        policy,
        now,
    })
}

/// `GET /api/lifecycle/candidates`.
pub async fn candidates(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let j = judge(app, caller).await?;
    let (value, withheld) = match j.outcome {
        Ok(found) => (
            found.into_iter().map(|c| CandidateItem::of(c, &j.names)).collect(),
            None,
        ),
        Err(why) => (Vec::new(), Some(why.into())),
    };
    let page = CandidatePage {
        value,
        withheld,
        groups_judged: j.judged,
        data_complete_until: j.data_complete_until,
        policy: j.policy,
    };
    Ok(super::json(StatusCode::OK, &page))
}

/// The reviews list of the caller's tenant, made if it does not exist (with GroupMgr's grant
/// on its site).
async fn reviews_list(
    app: &App,
    caller: &Caller,
    site_graph: &crate::microsoft::graph::Graph<'_>,
) -> Result<Reviews, ApiError> {
    let site = customer_list::site_id(
        site_graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
    )
    .await
    .map_err(|e| ApiError::from(SettingsError::List(e)))?;
    Ok(Reviews::ensure(site_graph, &site).await?)
}

/// `GET /api/lifecycle/reviews`: every review, read with the caller's rights.
pub async fn reviews_get(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let graph = caller_graph(app, caller).await?;
    let site = customer_list::site_id(
        &graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
    )
    .await
    .map_err(|e| ApiError::from(SettingsError::List(e)))?;
    let mut value = match Reviews::find(&graph, &site).await? {
        Some(list) => list.all(&graph).await?,
        None => Vec::new(),
    };
    value.sort_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.group_id.cmp(&b.group_id)));
    Ok(super::json(StatusCode::OK, &ReviewList { value }))
}

/// `POST /api/lifecycle/reviews` `{"groupIds": [...]}`: an administrator confirms a batch of
/// the dry run's candidates; each gets a pending review, due after the policy's window.
/// Groups that are not candidates now are skipped, each with the reason.
pub async fn reviews_post(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let body: OpenReviews = req.json()?;
    if body.group_ids.is_empty() || body.group_ids.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidInput,
            format!("groupIds: from 1 to {MAX_BATCH} group ids"),
        ));
    }
    let j = judge(app, caller).await?;
    let candidates = match j.outcome {
        Ok(c) => c,
        Err(why) => {
            let w: crate::api::model::Withholding = why.into();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                format!("no group may be reviewed now: {}", w.message),
            ));
        }
    };
    let site_graph = app_graph(app, caller).await?;
    let list = reviews_list(app, caller, &site_graph).await?;
    let due = j.now + chrono::TimeDelta::days(i64::from(j.policy.review_window_days));
    let mut opened = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in body.group_ids {
        if !seen.insert(id) {
            continue;
        }
        let Some(c) = candidates.iter().find(|c| c.group_id == id) else {
            skipped.push(Skipped {
                group_id: id.to_string(),
                reason: "not a candidate of the policy now (see GET /api/lifecycle/candidates)".into(),
            });
            continue;
        };
        let reason = crate::lifecycle::evaluate::reason_of(c, j.data_complete_until);
        let name = j.names.get(&id).cloned().unwrap_or_default();
        let review = Review::open(id.to_string(), name, reason, j.now, due);
        let tenant = &caller.tenant.tenant_id;
        match crate::lifecycle::due::open_review(
            &site_graph,
            &list,
            app.state.as_ref(),
            &app.pseudonyms.outbox_seal(tenant),
            tenant,
            review,
            app.clock.now(),
        )
        .await
        {
            Ok(review) => opened.push(review),
            Err(WriteError::Graph(g)) => return Err(g.into()),
            Err(_) => skipped.push(Skipped {
                group_id: id.to_string(),
                reason: "its review changed meanwhile".into(),
            }),
        }
    }
    Ok(super::json(StatusCode::OK, &OpenedReviews { opened, skipped }))
}

/// What the policy's `onNoAnswer` calls for now: the policy, the due reviews (longest overdue
/// first) and how the data judges each group. Read with `reader` (the caller's rights).
struct DueNow {
    policy: LifecyclePolicy,
    due: Vec<(Review, crate::lifecycle::decide::Decision)>,
    judged: no_answer::Judged,
}

async fn due_now(app: &App, caller: &Caller, reader: &crate::microsoft::graph::Graph<'_>) -> Result<DueNow, ApiError> {
    let policy = load(app, caller).await?;
    let tenant = &caller.tenant.tenant_id;
    let state = app.state.as_ref();
    let location = customer_list::location(state, tenant)
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    // No sync has finished: nothing was reviewed.
    let Some(list) = location else {
        return Ok(DueNow {
            policy,
            due: Vec::new(),
            judged: Default::default(),
        });
    };
    let reviews = match Reviews::find(reader, &list.site_id).await? {
        Some(l) => l.all(reader).await?,
        None => Vec::new(),
    };
    let now = app.clock.now();
    let due = no_answer::due(&reviews, &policy, now);
    let data = no_answer::Data {
        list: &list,
        teams_report_offered: app.settings.cloud.has_teams_report(),
        audit_feed: app.management.is_some(),
    };
    let judged = no_answer::read_and_judge(reader, state, tenant, &data, &policy, &reviews, &due, now)
        .await
        .map_err(|e| match e {
            no_answer::JudgeError::Graph(g) => ApiError::from(g),
            no_answer::JudgeError::State(_) => ApiError::store_unavailable(),
        })?;
    Ok(DueNow { policy, due, judged })
}

fn due_step(decision: crate::lifecycle::decide::Decision, verdict: no_answer::Verdict) -> DueStep {
    use crate::lifecycle::decide::Decision;
    match (decision, verdict) {
        (_, no_answer::Verdict::Keep) => DueStep::Keep,
        (Decision::Delete, _) => DueStep::Delete,
        _ => DueStep::Archive,
    }
}

/// `GET /api/lifecycle/actions`: what the policy's `onNoAnswer` calls for now — each due
/// review's step, and why one would do nothing now. Reads only.
pub async fn actions_get(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let graph = caller_graph(app, caller).await?;
    let DueNow { policy, due, judged } = due_now(app, caller, &graph).await?;
    let value = due
        .iter()
        .map(|(review, decision)| {
            let verdict = no_answer::Verdict::of(review, *decision, &judged);
            DueAction {
                group_id: review.group_id.clone(),
                display_name: review.display_name.clone(),
                step: due_step(*decision, verdict),
                due_since: no_answer::due_since(review, &policy),
                reason: review.reason.clone(),
                in_progress: review.action_state == Some(crate::lifecycle::reviews::ActionState::Intended),
                not_now: verdict.why_not().map(str::to_string),
            }
        })
        .collect();
    let taken_today = crate::lifecycle::cap::taken(app.state.as_ref(), &caller.tenant.tenant_id, app.clock.now())
        .await
        .map_err(|_| ApiError::store_unavailable())?;
    Ok(super::json(
        StatusCode::OK,
        &DueActionList {
            value,
            execution: policy.execution,
            taken_today,
            max_actions_per_day: policy.max_actions_per_day,
        },
    ))
}

/// `POST /api/lifecycle/actions` `{"groupIds": [...]}`: an administrator confirms a batch of
/// the due actions; each runs on behalf of that administrator (no application permission),
/// through the same decider as an owner's decision — recorded as intended before it is sent
/// and as done after, under the daily cap — and is marked as taken for want of an answer.
/// The data is judged again first: a group used again is kept, one no longer inactive is
/// skipped with the reason. Longest overdue first; once the day's cap is reached the rest
/// are skipped.
pub async fn actions_post(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let body: ConfirmActions = req.json()?;
    if body.group_ids.is_empty() || body.group_ids.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidInput,
            format!("groupIds: from 1 to {MAX_BATCH} group ids"),
        ));
    }
    let acting = caller_graph(app, caller).await?;
    let DueNow { policy, due, judged } = due_now(app, caller, &acting).await?;
    let wanted: std::collections::HashSet<String> = body.group_ids.iter().map(|g| g.to_string()).collect();
    let mut out = ConfirmedActions::default();
    for id in &wanted {
        if !due.iter().any(|(r, _)| r.group_id == *id) {
            out.skipped.push(Skipped {
                group_id: id.clone(),
                reason: "no action is due for it under the policy's onNoAnswer (see GET /api/lifecycle/actions)".into(),
            });
        }
    }
    out.skipped.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let site_graph = app_graph(app, caller).await?;
    let list = reviews_list(app, caller, &site_graph).await?;
    let seal = app.pseudonyms.outbox_seal(&caller.tenant.tenant_id);
    let decider = Decider {
        acting: &acting,
        site: &site_graph,
        reviews: &list,
        state: app.state.as_ref(),
        tenant: caller.tenant.tenant_id,
        now: app.clock.now(),
        max_actions_per_day: policy.max_actions_per_day,
        who: caller.principal.object_id.map(|o| o.to_string()).unwrap_or_default(),
        app_only: false,
        for_no_answer: true,
        seal: &seal,
    };
    // What ends the batch: a permission the caller lacks, Microsoft throttling, the store
    // unavailable (every later item would meet it too). The day's cap ends only what would take
    // a place: a keep, or an action already under way, is still carried out.
    let mut stopped: Option<String> = None;
    let mut capped: Option<String> = None;
    for (review, decision) in due.iter().filter(|(r, _)| wanted.contains(&r.group_id)) {
        let skip = |reason: String| Skipped {
            group_id: review.group_id.clone(),
            reason,
        };
        let new_action = no_answer::Verdict::of(review, *decision, &judged) == no_answer::Verdict::Act
            && review.action_state != Some(crate::lifecycle::reviews::ActionState::Intended);
        if let Some(why) = stopped.as_ref().or(capped.as_ref().filter(|_| new_action)) {
            out.skipped.push(skip(format!("not tried: {why}")));
            continue;
        }
        match no_answer::carry_out(&decider, review, *decision, &judged).await {
            no_answer::Step::Kept(Ok(d)) => out.kept.push(d.review),
            no_answer::Step::Acted(Ok(d)) if d.done => out.done.push(d.review),
            no_answer::Step::Acted(Ok(d)) => out.underway.push(d.review),
            no_answer::Step::Kept(Err(e)) | no_answer::Step::Acted(Err(e)) => {
                let cap = matches!(e, DecideError::CapReached(_));
                let ends = matches!(&e, DecideError::State(_)) || matches!(&e, DecideError::Graph(g) if ends_batch(g));
                // Said as an error answer would say it (no upstream detail).
                let why = decide_error(e).message;
                if cap {
                    capped = Some(why.clone());
                } else if ends {
                    stopped = Some(why.clone());
                }
                out.skipped.push(skip(why));
            }
            no_answer::Step::NotActed(verdict) => {
                out.skipped
                    .push(skip(verdict.why_not().unwrap_or_default().to_string()));
            }
            no_answer::Step::TeamChanged => out.skipped.push(skip(
                "its team was archived or unarchived by someone else since; nothing is done".into(),
            )),
            no_answer::Step::Unreadable(g) => {
                let ends = ends_batch(&g);
                let why = format!("Teams could not be asked about its team: {}", ApiError::from(g).message);
                if ends {
                    stopped = Some(why.clone());
                }
                out.skipped.push(skip(why));
            }
        }
    }
    Ok(super::json(StatusCode::OK, &out))
}

/// The owners of a group (at most 100, Microsoft Entra's limit) include the caller.
async fn is_owner(graph: &crate::microsoft::graph::Graph<'_>, group: &str, caller: &Caller) -> Result<bool, ApiError> {
    let Some(me) = caller.principal.object_id else {
        return Ok(false);
    };
    match graph.list_relation(group, crate::domain::Relation::Owners, 100).await {
        Ok(page) => Ok(page.value.iter().any(|o| o.id.eq_ignore_ascii_case(&me.to_string()))),
        // A deleted group has no owners to ask.
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/groups/{id}/review` `{"decision": …}`: the group's owners (checked with Graph on
/// behalf of the caller) or a `GroupMgr.Admin` decide. `200` with the review when done; `202`
/// when the action was sent and Microsoft is still carrying it out.
pub async fn decide(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let group = crate::domain::GroupId::parse(req.param("id"))
        .map_err(|_| ApiError::bad_request(ErrorCode::InvalidInput, "id: must be a group id (GUID)"))?
        .to_string();
    let body: DecisionBody = req.json()?;
    let acting = caller_graph(app, caller).await?;
    let admin = caller.principal.has_role(crate::auth::ADMIN_ROLE);
    if !admin && !is_owner(&acting, &group, caller).await? {
        return Err(ApiError::forbidden(
            ErrorCode::RoleRequired,
            "only the group's owners or a GroupMgr.Admin may decide its review",
        ));
    }
    // Owners need no access to the GroupMgr site: the policy and the review are read with
    // GroupMgr's grant on it, now that the caller's right to decide is established.
    let site_graph = app_graph(app, caller).await?;
    let policy = site::load_policy(
        &site_graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
    )
    .await?
    .ok_or_else(no_policy)?;
    let list = reviews_list(app, caller, &site_graph).await?;
    let seal = app.pseudonyms.outbox_seal(&caller.tenant.tenant_id);
    let decider = Decider {
        acting: &acting,
        site: &site_graph,
        reviews: &list,
        state: app.state.as_ref(),
        tenant: caller.tenant.tenant_id,
        now: app.clock.now(),
        max_actions_per_day: policy.max_actions_per_day,
        who: caller.principal.object_id.map(|o| o.to_string()).unwrap_or_default(),
        // On behalf of the owner or administrator who decided.
        app_only: false,
        for_no_answer: false,
        seal: &seal,
    };
    // Its events are queued by the decision itself, before it records the action done.
    let decided = decider.decide(&group, body.decision).await.map_err(decide_error)?;
    let status = if decided.done {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(super::json(status, &decided.review))
}

/// A Graph answer that every later item of a batch would meet too: a permission the caller
/// lacks, or Microsoft throttling.
fn ends_batch(g: &crate::microsoft::graph::GraphError) -> bool {
    matches!(g.status(), Some(403 | 429))
}

fn decide_error(e: DecideError) -> ApiError {
    let message = e.to_string();
    match e {
        DecideError::NoReview => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message),
        DecideError::CapReached(_) => ApiError::new(StatusCode::CONFLICT, ErrorCode::ActionCapReached, message),
        DecideError::NotApplicable(_)
        | DecideError::OtherActionInProgress(_)
        | DecideError::NoTeam
        | DecideError::Changed => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message),
        DecideError::Failed(_) => ApiError::new(StatusCode::BAD_GATEWAY, ErrorCode::MicrosoftUnavailable, message),
        DecideError::Graph(g) => g.into(),
        DecideError::State(_) => ApiError::store_unavailable(),
    }
}

/// `GET /api/lifecycle/webhook`: the registered endpoint's URL (never its secret).
pub async fn webhook_get(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let graph = caller_graph(app, caller).await?;
    let endpoint = site::load_webhook(
        &graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no webhook is registered; PUT /api/lifecycle/webhook registers one",
        )
    })?;
    Ok(super::json(
        StatusCode::OK,
        &Webhook {
            url: endpoint.url,
            secret: None,
            events: webhooks::EVENT_TYPES.iter().map(|e| e.to_string()).collect(),
        },
    ))
}

/// `PUT /api/lifecycle/webhook` `{"url": …}`: registers the endpoint with a new signing
/// secret, answered once (it replaces any earlier endpoint and secret).
pub async fn webhook_put(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let body: WebhookBody = req.json()?;
    let url = webhooks::check_url(&body.url, app.webhook_loopback)?;
    webhooks::check_resolves_public(&url, app.webhook_loopback).await?;
    let secret = webhooks::WebhookSecret::generate().encode();
    let endpoint = webhooks::Endpoint {
        url: url.to_string(),
        secret: secret.clone(),
    };
    let graph = app_graph(app, caller).await?;
    site::save_webhook(
        &graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
        Some(&endpoint),
    )
    .await?;
    Ok(super::json(
        StatusCode::OK,
        &Webhook {
            url: endpoint.url,
            secret: Some(secret),
            events: webhooks::EVENT_TYPES.iter().map(|e| e.to_string()).collect(),
        },
    ))
}

/// `DELETE /api/lifecycle/webhook`: no more notifications (waiting ones are discarded).
pub async fn webhook_delete(app: &App, caller: &Caller) -> Result<Response<Bytes>, ApiError> {
    require_admin(caller)?;
    let graph = app_graph(app, caller).await?;
    site::save_webhook(
        &graph,
        app.state.as_ref(),
        &caller.tenant.tenant_id,
        &app.settings.sharepoint_site,
        None,
    )
    .await?;
    Ok(super::no_content())
}

/// Writes a lifecycle event to the tenant's webhook outbox. An outbox that cannot be written
/// does not undo what happened; the tenant log says the event was not queued.
pub async fn notify(app: &App, tenant: &crate::domain::TenantId, kind: &str, data: serde_json::Value) {
    if let Err(e) = webhooks::enqueue(
        app.state.as_ref(),
        &app.pseudonyms.outbox_seal(tenant),
        tenant,
        kind,
        data,
        app.clock.now(),
    )
    .await
    {
        tracing::warn!(event = "webhook_not_queued", tenant_id = %tenant, webhook_type = kind, error = %e);
    }
}
