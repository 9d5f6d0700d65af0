//! Archiving and unarchiving a team, and reading the async operation that does it (Graph
//! v1.0 `team-archive`, `team-unarchive`, `teamsAsyncOperation`). Both answer `202 Accepted`
//! with a `Location` naming the operation. The team changes once that operation succeeds;
//! Microsoft asks for more than 30 seconds between checks (`OPERATION_POLL_INTERVAL`).

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Graph, GraphError, enc};
use crate::microsoft::retry::Idempotency;

/// How long to wait between two reads of a teams async operation ("wait >30 seconds between
/// checks", teamsAsyncOperation resource).
pub const OPERATION_POLL_INTERVAL: Duration = Duration::from_secs(31);

/// What to do with a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamArchival {
    /// Archive it. `read_only_for_members` also makes its SharePoint site read-only for
    /// members; Microsoft supports it only on behalf of a user, not for an application.
    Archive {
        read_only_for_members: bool,
    },
    Unarchive,
}

/// A teams async operation's status (`teamsAsyncOperationStatus`). Values Microsoft adds
/// later (`unknownFutureValue`, …) read as `Other`: a caller polls them to a deadline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationStatus {
    Invalid,
    NotStarted,
    InProgress,
    Succeeded,
    Failed,
    #[serde(other)]
    Other,
}

/// Why an operation failed (`operationError`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OperationError {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// A teams async operation, as read from its location.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsOperation {
    pub id: String,
    pub operation_type: Option<String>,
    pub status: OperationStatus,
    pub target_resource_id: Option<String>,
    pub error: Option<OperationError>,
}

impl TeamsOperation {
    /// Finished, one way or the other (`invalid` is not going anywhere either).
    pub fn done(&self) -> bool {
        matches!(
            self.status,
            OperationStatus::Succeeded | OperationStatus::Failed | OperationStatus::Invalid
        )
    }
}

impl Graph<'_> {
    /// Starts archiving or unarchiving the team of group `group`; returns the operation's
    /// location (a path below the Graph version root, or a URL on our Graph host, as Microsoft
    /// gave it) to read with `teams_operation`.
    ///
    /// Sent at most once unless Microsoft says it did not run it: a repeated request would
    /// start a second operation. The end state would be the same, but the first operation's
    /// location would be lost.
    pub async fn set_team_archived(&self, group: &str, change: TeamArchival) -> Result<String, GraphError> {
        let (action, body) = match change {
            TeamArchival::Archive { read_only_for_members } => (
                "archive",
                read_only_for_members.then(|| json!({"shouldSetSpoSiteReadOnlyForMembers": true})),
            ),
            TeamArchival::Unarchive => ("unarchive", None),
        };
        let url = self.url(&format!("/teams/{}/{action}", enc(group)));
        let reply = self
            .send(Method::POST, &url, body.as_ref(), &[], Idempotency::Once)
            .await?;
        if reply.status != 202 {
            return Err(GraphError::Protocol(format!(
                "team {action}: expected 202 Accepted, got {}",
                reply.status
            )));
        }
        reply
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| GraphError::Protocol(format!("team {action}: 202 without an operation Location")))
    }

    /// Whether the team of group `group` is archived (`GET /teams/{id}`, `isArchived`);
    /// `None` when the group has no team (404).
    pub async fn team_is_archived(&self, group: &str) -> Result<Option<bool>, GraphError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Team {
            #[serde(default)]
            is_archived: bool,
        }
        let url = format!("{}?$select=id,isArchived", self.url(&format!("/teams/{}", enc(group))));
        match self.get_json::<Team>(&url, &[]).await {
            Ok(t) => Ok(Some(t.is_archived)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads a teams async operation at `location` (as `set_team_archived` returned it): a
    /// path below the version root, or a URL on our own Graph host and version, nothing else.
    pub async fn teams_operation(&self, location: &str) -> Result<TeamsOperation, GraphError> {
        let url = if location.starts_with("/teams") && !location.contains("..") {
            self.url(location)
        } else {
            self.client.checked_link(location)?
        };
        self.get_json(&url, &[]).await
    }
}
