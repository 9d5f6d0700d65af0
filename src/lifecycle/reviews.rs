//! Reviews (issue 16, items 4 and 5): one item per group in a list of the customer's GroupMgr
//! site, "GroupMgr Reviews" — the group, why it is reviewed, when it is due, its state, who
//! decided and when, and the action taken. Who decided is the decider's object id, and it
//! stays in the customer's tenant: GroupMgr's database never learns it.
//!
//! An action is recorded as intended (`ActionState` `intended`, with when) before it is sent
//! to Microsoft and as done after, each write conditional on the item's version (`If-Match`),
//! so two requests never both act, and a request that finds an action intended but not done
//! (the previous one died between the two) first asks Microsoft whether it happened.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::microsoft::graph::{Column, ColumnKind, Graph, GraphError, ItemWrite, ListDefinition, ListItem};

pub const REVIEWS_LIST: &str = "GroupMgr Reviews";

/// Where a group's review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReviewState {
    Pending,
    Kept,
    Archived,
    Deleted,
    Restored,
}

/// An action on a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Archive its team (members' SharePoint access read-only).
    Archive,
    /// Delete the group (soft: restorable for 30 days).
    Delete,
    /// Restore the deleted group and unarchive its team.
    Restore,
}

/// How far an action got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ActionState {
    /// Recorded before it was sent; not known to be done.
    Intended,
    Done,
}

const STATES: &[&str] = &["pending", "kept", "archived", "deleted", "restored"];
const ACTIONS: &[&str] = &["archive", "delete", "restore"];
const ACTION_STATES: &[&str] = &["intended", "done"];

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn parse<T: Copy + Serialize>(all: &[T], s: Option<&str>) -> Option<T> {
    let s = s?;
    all.iter().copied().find(|v| name(v) == s)
}

/// The list's columns (besides `Title`, the group's name).
pub fn reviews_list() -> ListDefinition {
    let col = |name, kind| Column { name, kind };
    ListDefinition {
        display_name: REVIEWS_LIST,
        description: "Lifecycle reviews of Microsoft 365 groups, kept by GroupMgr. Decide in GroupMgr.",
        columns: vec![
            col("GroupId", ColumnKind::Text { unique: true }),
            col("Reason", ColumnKind::Note),
            col("OpenedAt", ColumnKind::DateTime),
            col("DueAt", ColumnKind::DateTime),
            col("State", ColumnKind::Choice(STATES)),
            col("DecidedBy", ColumnKind::Text { unique: false }),
            col("DecidedAt", ColumnKind::DateTime),
            col("Action", ColumnKind::Choice(ACTIONS)),
            col("ActionState", ColumnKind::Choice(ACTION_STATES)),
            col("ActionAt", ColumnKind::DateTime),
            col("ActionDoneAt", ColumnKind::DateTime),
            col("Operation", ColumnKind::Note),
            col("DueNotifiedAt", ColumnKind::DateTime),
            col("CreatedNotifiedAt", ColumnKind::DateTime),
            col("NoAnswer", ColumnKind::Boolean),
            col("PriorNoAnswer", ColumnKind::Boolean),
        ],
    }
}

/// One group's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub group_id: String,
    pub display_name: String,
    /// Why it is reviewed: the policy's signals and how long none was seen.
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: DateTime<Utc>,
    pub state: ReviewState,
    /// The object id of who decided (an owner or an administrator), or `automatic` when
    /// GroupMgr acted by itself (`automatic` execution).
    #[schema(required = true)]
    pub decided_by: Option<String>,
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub action: Option<Action>,
    #[schema(required = true)]
    pub action_state: Option<ActionState>,
    /// When the action was recorded as intended.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub action_at: Option<DateTime<Utc>>,
    /// When the last action done was recorded as done (while another is intended, the one
    /// before it).
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub action_done_at: Option<DateTime<Utc>>,
    /// The action (intended, or else the last done) is taken because the owners did not
    /// answer by the due date (the policy's `onNoAnswer`, confirmed by an administrator or
    /// carried out by `automatic` execution), not chosen by an owner or administrator: only
    /// such an archive is followed by a deletion after `deleteAfterDays`.
    pub no_answer: bool,
    /// The item and its version, for conditional writes.
    #[serde(skip)]
    pub item: Option<String>,
    #[serde(skip)]
    pub etag: Option<String>,
    /// While an action is intended: the mark of the action done before it, put back if the
    /// intended one fails or is refused (an archive for want of an answer stays one).
    #[serde(skip)]
    pub prior_no_answer: bool,
    /// Whether the item holds the marks' values (so a review opened again over it clears them).
    #[serde(skip)]
    pub no_answer_stored: bool,
    /// The teams async operation of an archive or unarchive (its location).
    #[serde(skip)]
    pub operation: Option<String>,
    /// When `review.due` was sent for it.
    #[serde(skip)]
    pub due_notified_at: Option<DateTime<Utc>>,
    /// When `review.created` was queued for it (`due::created_event`).
    #[serde(skip)]
    pub created_notified_at: Option<DateTime<Utc>>,
}

fn time(t: &Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(t.to_rfc3339_opts(SecondsFormat::Secs, true)))
}

fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Review {
    /// A new pending review.
    pub fn open(
        group_id: String,
        display_name: String,
        reason: String,
        now: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> Self {
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        Review {
            group_id,
            display_name,
            reason,
            opened_at: now,
            due_at,
            state: ReviewState::Pending,
            decided_by: None,
            decided_at: None,
            action: None,
            action_state: None,
            action_at: None,
            action_done_at: None,
            no_answer: false,
            item: None,
            etag: None,
            prior_no_answer: false,
            no_answer_stored: false,
            operation: None,
            due_notified_at: None,
            created_notified_at: None,
        }
    }

    fn fields(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert(
            "Title".into(),
            json!(crate::customer_list::fit_title(&self.display_name)),
        );
        f.insert("GroupId".into(), json!(self.group_id));
        f.insert("Reason".into(), json!(self.reason));
        f.insert("OpenedAt".into(), time(&Some(self.opened_at)));
        f.insert("DueAt".into(), time(&Some(self.due_at)));
        f.insert("State".into(), json!(name(&self.state)));
        f.insert("DecidedBy".into(), json!(self.decided_by));
        f.insert("DecidedAt".into(), time(&self.decided_at));
        f.insert("Action".into(), self.action.map_or(Value::Null, |a| json!(name(&a))));
        f.insert(
            "ActionState".into(),
            self.action_state.map_or(Value::Null, |a| json!(name(&a))),
        );
        f.insert("ActionAt".into(), time(&self.action_at));
        f.insert("ActionDoneAt".into(), time(&self.action_done_at));
        f.insert("Operation".into(), json!(self.operation));
        f.insert("DueNotifiedAt".into(), time(&self.due_notified_at));
        f.insert("CreatedNotifiedAt".into(), time(&self.created_notified_at));
        // Written only once set (or to clear it), so that a list made before the column existed
        // (found, not ensured, by a reader) takes every other write.
        if self.no_answer || self.prior_no_answer || self.no_answer_stored {
            f.insert("NoAnswer".into(), json!(self.no_answer));
            f.insert("PriorNoAnswer".into(), json!(self.prior_no_answer));
        }
        f
    }

    fn of(item: ListItem) -> Option<Self> {
        let f = &item.fields;
        let text = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
        use ReviewState::*;
        Some(Review {
            group_id: text("GroupId")?,
            display_name: text("Title").unwrap_or_default(),
            reason: text("Reason").unwrap_or_default(),
            opened_at: parse_time(f.get("OpenedAt"))?,
            due_at: parse_time(f.get("DueAt"))?,
            state: parse(
                &[Pending, Kept, Archived, Deleted, Restored],
                f.get("State").and_then(Value::as_str),
            )?,
            decided_by: text("DecidedBy"),
            decided_at: parse_time(f.get("DecidedAt")),
            action: parse(
                &[Action::Archive, Action::Delete, Action::Restore],
                f.get("Action").and_then(Value::as_str),
            ),
            action_state: parse(
                &[ActionState::Intended, ActionState::Done],
                f.get("ActionState").and_then(Value::as_str),
            ),
            action_at: parse_time(f.get("ActionAt")),
            action_done_at: parse_time(f.get("ActionDoneAt")),
            no_answer: f.get("NoAnswer").and_then(Value::as_bool).unwrap_or(false),
            item: Some(item.id),
            etag: item.e_tag,
            prior_no_answer: f.get("PriorNoAnswer").and_then(Value::as_bool).unwrap_or(false),
            no_answer_stored: ["NoAnswer", "PriorNoAnswer"]
                .iter()
                .any(|k| f.get(*k).is_some_and(|v| !v.is_null())),
            operation: text("Operation"),
            due_notified_at: parse_time(f.get("DueNotifiedAt")),
            created_notified_at: parse_time(f.get("CreatedNotifiedAt")),
        })
    }
}

/// The reviews list of a tenant's site.
#[derive(Debug, Clone)]
pub struct Reviews {
    pub site: String,
    pub list: String,
}

/// Why a review could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Another request changed the item since it was read.
    #[error("the review changed meanwhile")]
    Changed,
    /// A review of the group exists already.
    #[error("the group has a review already")]
    Exists,
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl Reviews {
    /// The list on `site`, if it exists.
    pub async fn find(graph: &Graph<'_>, site: &str) -> Result<Option<Self>, GraphError> {
        Ok(graph.find_list(site, REVIEWS_LIST).await?.map(|l| Reviews {
            site: site.to_string(),
            list: l.id,
        }))
    }

    /// The list on `site`, made if it does not exist.
    pub async fn ensure(graph: &Graph<'_>, site: &str) -> Result<Self, GraphError> {
        let list = super::site::ensure_list(graph, site, &reviews_list()).await?;
        Ok(Reviews {
            site: site.to_string(),
            list: list.id,
        })
    }

    pub async fn all(&self, graph: &Graph<'_>) -> Result<Vec<Review>, GraphError> {
        graph.all_items(&self.site, &self.list, 999, Review::of).await
    }

    pub async fn get(&self, graph: &Graph<'_>, group_id: &str) -> Result<Option<Review>, GraphError> {
        Ok(graph
            .find_items(&self.site, &self.list, "GroupId", group_id)
            .await?
            .into_iter()
            .find_map(Review::of))
    }

    /// Adds a new review (none of the group may exist: the group id is unique).
    pub async fn create(&self, graph: &Graph<'_>, review: &Review) -> Result<(), WriteError> {
        let answer = graph
            .write_items(&self.site, &self.list, &[ItemWrite::Create(review.fields())])
            .await?
            .into_iter()
            .next()
            .unwrap_or(Ok(None));
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(409) => Err(WriteError::Exists),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `review` over the item it was read from, only if that item has not changed
    /// since (`If-Match` its version); `review` gets the new version.
    pub async fn update(&self, graph: &Graph<'_>, review: &mut Review) -> Result<(), WriteError> {
        let Some(item) = review.item.clone() else {
            return Err(WriteError::Graph(GraphError::Protocol(
                "a review without its item".into(),
            )));
        };
        let answer = graph
            .write_items(
                &self.site,
                &self.list,
                &[ItemWrite::Update {
                    item,
                    fields: review.fields(),
                    if_match: review.etag.clone(),
                }],
            )
            .await?
            .into_iter()
            .next()
            .unwrap_or(Ok(None));
        match answer {
            Ok(etag) => {
                review.etag = etag;
                review.no_answer_stored |= review.no_answer || review.prior_no_answer;
                Ok(())
            }
            Err(e) if e.status() == Some(412) => Err(WriteError::Changed),
            Err(e) => Err(e.into()),
        }
    }
}
