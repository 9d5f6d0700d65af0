//! Archiving and unarchiving teams, and the async operations they start.
//!
//! Sources (Graph v1.0): api-reference `team-archive` and `team-unarchive`; resources
//! `teamsAsyncOperation` and `teamsAsyncOperationStatus`.
//! - `POST /teams/{id}/archive` with an optional body `{"shouldSetSpoSiteReadOnlyForMembers":
//!   true}` answers `202 Accepted` with a `Location` header naming the teamsAsyncOperation. The
//!   team is archived once that operation succeeds, which may be after the answer. The read-only
//!   parameter "is not supported in the application context".
//! - "To archive a team, the team and group must have an owner."
//! - `POST /teams/{id}/unarchive` likewise restores the team: users can send messages and
//!   edit it again.
//! - Permissions: delegated `TeamSettings.ReadWrite.All` (or the legacy `Group.ReadWrite.All`,
//!   `Directory.ReadWrite.All`); application `TeamSettings.ReadWrite.Group` (resource-specific
//!   consent, per team), `TeamSettings.ReadWrite.All` and the same legacy two. Teams service
//!   administrators may act on teams they are not in.
//! - The operation is read with a GET on its location. Its `status` is `notStarted`,
//!   `inProgress`, `succeeded` or `failed`. Microsoft asks callers to wait more than 30 seconds
//!   between checks.
//!
//! Where the documentation is silent, and this sim is a reading, not a quotation:
//! - Who may act on behalf of a user: the sim lets owners of the team and directory
//!   administrators (standing in for Teams service administrators), and refuses other users.
//! - `TeamSettings.ReadWrite.Group` is resource-specific consent to one team; the sim grants
//!   no such consent, so it does not accept that permission.
//! - The Location's form: the docs' examples vary (keys quoted or not); the sim answers
//!   `/teams('{id}')/operations('{op}')` and addresses both forms.
//! - The permissions to read an operation: the sim accepts those that read the team.
//! - The error for a team without an owner, and for the read-only flag in the application
//!   context: the sim answers `400 BadRequest` with the documented condition as its message.
//! - How long an operation takes: 20 seconds of the sim's clock (tests move the clock).
//! - Archiving an archived team, or unarchiving an active one: a new operation that succeeds.
//!   The end state is the same either way.
//! - An operation can fail (`SimState::fail_next_team_operation`): its status becomes `failed`
//!   when it would have succeeded, with an `error` (`operationError`: `code`, `message`, as the
//!   teamsAsyncOperation resource documents), and the team is left as it was.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use warp::http::StatusCode;

use super::model::{TenantGraph, fmt_time};
use super::{GraphCaller, GraphReply, GraphRequest};
use crate::SimState;

/// How long the sim takes to archive or unarchive a team.
pub const OPERATION_TAKES: TimeDelta = TimeDelta::seconds(20);

pub const ARCHIVE_PERMISSIONS: &[&str] = &[
    "TeamSettings.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// A team archive or unarchive under way (or done).
#[derive(Debug, Clone)]
pub struct TeamOperation {
    pub id: String,
    pub team: Uuid,
    /// `true`: archive; `false`: unarchive.
    pub archive: bool,
    pub created: DateTime<Utc>,
    pub done_at: DateTime<Utc>,
    /// Its effect is applied to the group (once, when the clock reaches `done_at`).
    pub applied: bool,
    /// It fails when it would have succeeded: nothing is applied.
    pub fails: bool,
}

/// Applies every operation whose time has come.
pub fn settle(t: &mut TenantGraph, now: DateTime<Utc>) {
    let due: Vec<(Uuid, bool)> = t
        .team_operations
        .values_mut()
        .filter(|op| !op.applied && op.done_at <= now)
        .filter_map(|op| {
            op.applied = true;
            (!op.fails).then_some((op.team, op.archive))
        })
        .collect();
    for (team, archive) in due {
        if let Some(g) = t.groups.get_mut(&team) {
            g.archived = archive;
        }
    }
}

/// `POST /teams/{id}/archive` (`archive`) or `/unarchive`.
pub fn change(state: &SimState, t: &mut TenantGraph, req: &GraphRequest<'_>, id: &str, archive: bool) -> GraphReply {
    let c: &GraphCaller = req.caller;
    let Some(g) = Uuid::parse_str(id)
        .ok()
        .and_then(|i| t.live_group(&i))
        .filter(|g| g.team.is_some())
    else {
        return GraphReply::error(StatusCode::NOT_FOUND, "NotFound", "No team found with Group Id");
    };
    if c.user.is_some_and(|u| !g.owners.contains(&u)) && !c.is_directory_admin() {
        return GraphReply::denied();
    }
    let read_only = req
        .body
        .get("shouldSetSpoSiteReadOnlyForMembers")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if archive && read_only && c.user.is_none() {
        return GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "shouldSetSpoSiteReadOnlyForMembers is not supported in the application context.",
        );
    }
    if archive && g.owners.is_empty() {
        return GraphReply::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "To archive a team, the team and group must have an owner.",
        );
    }
    let team = g.id;
    let now = state.now();
    let op = TeamOperation {
        id: Uuid::new_v4().to_string(),
        team,
        archive,
        created: now,
        done_at: now + OPERATION_TAKES,
        applied: false,
        fails: t.failing_team_operations.remove(&team),
    };
    let location = format!("/teams('{team}')/operations('{}')", op.id);
    t.team_operations.insert(op.id.clone(), op);
    GraphReply {
        status: StatusCode::ACCEPTED,
        body: None,
        headers: vec![("location", location), ("content-length", "0".into())],
        text: None,
    }
}

/// `GET /teams/{id}/operations/{opId}`.
pub fn operation(state: &SimState, t: &mut TenantGraph, team: &str, id: &str) -> GraphReply {
    let now = state.now();
    settle(t, now);
    let Some(op) = t.team_operations.get(id).filter(|op| op.team.to_string() == team) else {
        return GraphReply::error(StatusCode::NOT_FOUND, "NotFound", "Operation not found");
    };
    let status = if op.applied && op.fails {
        "failed"
    } else if op.applied {
        "succeeded"
    } else if now >= op.created + OPERATION_TAKES / 4 {
        "inProgress"
    } else {
        "notStarted"
    };
    GraphReply::ok(json!({
        "@odata.context": format!("{}/v1.0/$metadata#teams('{team}')/operations/$entity", state.base_url()),
        "id": op.id,
        "operationType": if op.archive { "archiveTeam" } else { "unarchiveTeam" },
        "createdDateTime": fmt_time(op.created),
        "status": status,
        "lastActionDateTime": fmt_time(if op.applied { op.done_at } else { now }),
        "attemptsCount": 1,
        "targetResourceId": op.team.to_string(),
        "targetResourceLocation": format!("/groups('{}')/team", op.team),
        "error": if op.applied && op.fails {
            json!({"code": "InternalServerError", "message": "The team could not be archived or unarchived."})
        } else {
            Value::Null
        },
    }))
}
