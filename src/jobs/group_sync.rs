//! Group sync for one tenant: Graph's `/groups/delta` (a full round the first time,
//! incremental after; an expired delta token restarts cleanly) feeds the tenant's
//! "GroupMgr Groups" SharePoint list, and only rows whose data changed are written.
//!
//! Counts come from the delta itself (`$select=members,owners`): the first round carries
//! every owner and member, so a full sync needs no per-group requests for them; later rounds
//! carry only changes, and the groups they touch are re-counted with `$count` in `$batch`
//! (re-counting, not adding up, so that replaying a round cannot skew a count). Teams thread
//! ids (`internalId`) are fetched once per team, 20 to a `$batch`.
//!
//! The delta link is saved only after every row of the round is written, so a sync stopped
//! anywhere re-reads the same round when it runs again and ends with the same list.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::customer_list::{self, GroupRow, Lifecycle, ListError, ListLocation};
use crate::domain::TenantId;
use crate::microsoft::graph::{BatchRequest, Graph, GraphError, GraphGroup, MAX_BATCH, enc};
use crate::store::{Store, StoreError};

const DELTA_KEY: &str = "groups_delta";

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// A full round (first run, `--full`, or after an expired delta token).
    pub full: bool,
    /// The delta token had expired and the round was restarted as a full one.
    pub restarted: bool,
    /// Microsoft 365 groups seen in the round.
    pub groups: usize,
    /// Rows created or updated.
    pub written: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ListError> for SyncError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Graph(g) => Self::Graph(g),
            ListError::Store(s) => Self::Store(s),
        }
    }
}

/// What a delta round said about one group.
#[derive(Default)]
struct Seen {
    group: Option<GraphGroup>,
    removed: bool,
    owners: HashSet<String>,
    members: HashSet<String>,
    /// An incremental round changed its owners or members.
    relations_changed: bool,
}

struct Round {
    full: bool,
    groups: HashMap<String, Seen>,
    delta_link: String,
}

async fn read_round(graph: &Graph<'_>, start: Option<&str>) -> Result<Round, GraphError> {
    let full = start.is_none();
    let mut groups: HashMap<String, Seen> = HashMap::new();
    let mut page = graph.group_delta(start).await?;
    loop {
        for g in page.value.drain(..) {
            let seen = groups.entry(g.id.clone()).or_default();
            if g.removed.is_some() {
                *seen = Seen {
                    removed: true,
                    ..Default::default()
                };
                continue;
            }
            seen.removed = false;
            // A large group may come in several pages: merge what each page says.
            for (refs, set) in [
                (&g.owners_delta, &mut seen.owners),
                (&g.members_delta, &mut seen.members),
            ] {
                if let Some(refs) = refs {
                    seen.relations_changed |= !refs.is_empty();
                    for r in refs {
                        if r.removed.is_some() {
                            set.remove(&r.id);
                        } else {
                            set.insert(r.id.clone());
                        }
                    }
                }
            }
            // Later pages may carry only relationship data; keep the properties seen.
            if g.display_name.is_some() || seen.group.is_none() {
                seen.group = Some(g);
            }
        }
        if let Some(link) = page.delta_link.take() {
            return Ok(Round {
                full,
                groups,
                delta_link: link,
            });
        }
        let next = page
            .next_link
            .take()
            .ok_or_else(|| GraphError::Protocol("delta page without next or delta link".into()))?;
        page = graph.group_delta(Some(&next)).await?;
    }
}

/// Re-counts owners and members of the given groups, two `$count` items per group.
async fn recount(
    graph: &Graph<'_>,
    ids: &[String],
) -> Result<HashMap<String, (u64, u64)>, GraphError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(MAX_BATCH / 2) {
        let mut requests = Vec::with_capacity(chunk.len() * 2);
        for id in chunk {
            requests.push(BatchRequest::get_eventual(format!(
                "/groups/{}/owners/$count",
                enc(id)
            )));
            requests.push(BatchRequest::get_eventual(format!(
                "/groups/{}/members/$count",
                enc(id)
            )));
        }
        let answers = graph.batch(&requests).await?;
        for (i, id) in chunk.iter().enumerate() {
            let count = |r: &crate::microsoft::graph::BatchResponse| -> Result<u64, GraphError> {
                if !r.ok() {
                    return r.clone().into_result::<Value>().map(|_| 0);
                }
                match &r.body {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| GraphError::Protocol("$count answer is not a number".into()))
            };
            out.insert(
                id.clone(),
                (count(&answers[2 * i])?, count(&answers[2 * i + 1])?),
            );
        }
    }
    Ok(out)
}

/// Teams thread ids of the given groups, 20 to a batch.
async fn thread_ids(
    graph: &Graph<'_>,
    ids: &[String],
) -> Result<HashMap<String, String>, GraphError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(MAX_BATCH) {
        let requests: Vec<BatchRequest> = chunk
            .iter()
            .map(|id| Graph::team_internal_id_request(id))
            .collect();
        for (id, r) in chunk.iter().zip(graph.batch(&requests).await?) {
            match r.status {
                200 => {
                    if let Some(t) = r.body.get("internalId").and_then(Value::as_str) {
                        out.insert(id.clone(), t.to_string());
                    }
                }
                // Teams-enabled but the team is not provisioned (yet): no thread id.
                404 => {}
                _ => {
                    r.into_result::<Value>()?;
                }
            }
        }
    }
    Ok(out)
}

/// Writes rows (creates and updates), 20 to a batch. A create that meets an existing row
/// (a previous run wrote it but stopped before saving its progress) becomes an update.
async fn write_rows(
    graph: &Graph<'_>,
    loc: &ListLocation,
    rows: Vec<(Option<String>, GroupRow)>,
) -> Result<usize, GraphError> {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let written = rows.len();
    let base = format!(
        "/sites/{}/lists/{}/items",
        enc(&loc.site_id),
        enc(&loc.list_id)
    );
    for chunk in rows.chunks(MAX_BATCH) {
        let requests: Vec<BatchRequest> = chunk
            .iter()
            .map(|(item, row)| {
                let mut fields: Map<String, Value> = row.to_fields();
                fields.insert("SyncedAt".into(), json!(now));
                match item {
                    Some(id) => BatchRequest {
                        method: "PATCH",
                        url: format!("{base}/{}/fields", enc(id)),
                        body: Some(Value::Object(fields)),
                        headers: vec![],
                    },
                    None => BatchRequest {
                        method: "POST",
                        url: base.clone(),
                        body: Some(json!({ "fields": fields })),
                        headers: vec![],
                    },
                }
            })
            .collect();
        let answers = graph.batch(&requests).await?;
        for ((_, row), answer) in chunk.iter().zip(answers) {
            if answer.ok() {
                continue;
            }
            if answer.status == 409
                && let Some((item, _)) = customer_list::row(graph, loc, &row.group_id).await?
            {
                let mut fields = row.to_fields();
                fields.insert("SyncedAt".into(), json!(now));
                graph
                    .update_item(&loc.site_id, &loc.list_id, &item, &fields)
                    .await?;
                continue;
            }
            answer.into_result::<Value>()?;
        }
    }
    Ok(written)
}

/// Runs one group sync for a tenant with an app-only Graph session.
pub async fn sync_groups(
    graph: &Graph<'_>,
    store: &dyn Store,
    tenant: &TenantId,
    site_path: &str,
    force_full: bool,
) -> Result<SyncReport, SyncError> {
    let loc = customer_list::ensure(graph, store, tenant, site_path).await?;
    let saved = if force_full {
        None
    } else {
        store.get_state(tenant, DELTA_KEY).await?
    };
    let mut restarted = false;
    let round = match read_round(graph, saved.as_ref().map(|(l, _)| l.as_str())).await {
        Ok(r) => r,
        Err(e) if e.is_resync_required() => {
            tracing::warn!(event = "group_sync_restarted", tenant_id = %tenant);
            restarted = true;
            read_round(graph, None).await?
        }
        Err(e) => return Err(e.into()),
    };

    let unified: Vec<&GraphGroup> = round
        .groups
        .values()
        .filter_map(|s| s.group.as_ref())
        .filter(|g| g.is_unified())
        .collect();
    let removed: Vec<&String> = round
        .groups
        .iter()
        .filter(|(_, s)| s.removed)
        .map(|(id, _)| id)
        .collect();
    let mut written = 0;
    if !unified.is_empty() || !removed.is_empty() || round.full {
        // The current rows: all of them for a full round, only the touched ones otherwise.
        let existing: HashMap<String, (Option<String>, GroupRow)> = if round.full {
            customer_list::all_rows(graph, &loc)
                .await?
                .into_iter()
                .map(|(k, (item, row))| (k, (Some(item), row)))
                .collect()
        } else {
            let ids: Vec<String> = unified
                .iter()
                .map(|g| g.id.clone())
                .chain(removed.iter().map(|s| s.to_string()))
                .collect();
            customer_list::rows_for(graph, &loc, &ids)
                .await?
                .into_iter()
                .map(|(k, (item, row))| (k, (Some(item), row)))
                .collect()
        };
        let counts = if round.full {
            HashMap::new()
        } else {
            let touched: Vec<String> = unified
                .iter()
                .filter(|g| round.groups[&g.id].relations_changed || !existing.contains_key(&g.id))
                .map(|g| g.id.clone())
                .collect();
            recount(graph, &touched).await?
        };
        let need_threads: Vec<String> = unified
            .iter()
            .filter(|g| {
                g.teams_enabled()
                    && existing
                        .get(&g.id)
                        .and_then(|(_, r)| r.teams_thread_id.as_ref())
                        .is_none()
            })
            .map(|g| g.id.clone())
            .collect();
        let threads = thread_ids(graph, &need_threads).await?;

        let mut changes: Vec<(Option<String>, GroupRow)> = Vec::new();
        for g in &unified {
            let seen = &round.groups[&g.id];
            let old = existing.get(&g.id);
            let (owners, members) = if round.full {
                (
                    Some(seen.owners.len() as u64),
                    Some(seen.members.len() as u64),
                )
            } else if let Some((o, m)) = counts.get(&g.id) {
                (Some(*o), Some(*m))
            } else {
                (
                    old.and_then(|(_, r)| r.owner_count),
                    old.and_then(|(_, r)| r.member_count),
                )
            };
            let mut row = GroupRow {
                group_id: g.id.clone(),
                name: g.display_name.clone().unwrap_or_default(),
                owner_count: owners,
                member_count: members,
                teams_enabled: g.teams_enabled(),
                teams_thread_id: None,
                last_teams_activity: None,
                last_sharepoint_activity: None,
                last_activity: None,
                lifecycle: Lifecycle::Active,
                synced_at: None,
            };
            if let Some((_, o)) = old {
                // Activity belongs to the activity sync; keep it.
                row.last_teams_activity = o.last_teams_activity;
                row.last_sharepoint_activity = o.last_sharepoint_activity;
                row.last_activity = o.last_activity;
                row.teams_thread_id = o.teams_thread_id.clone();
            }
            if row.teams_enabled {
                if let Some(t) = threads.get(&g.id) {
                    row.teams_thread_id = Some(t.clone());
                }
            } else {
                row.teams_thread_id = None;
            }
            if old.is_none_or(|(_, o)| !o.same_data(&row)) {
                changes.push((old.and_then(|(item, _)| item.clone()), row));
            }
        }
        // Gone: removed in this round, or (full round) absent from it.
        let present: HashSet<&String> = unified.iter().map(|g| &g.id).collect();
        for (id, (item, row)) in &existing {
            let gone = removed.contains(&id) || (round.full && !present.contains(id));
            if gone && row.lifecycle == Lifecycle::Active {
                let mut r = row.clone();
                r.lifecycle = Lifecycle::Deleted;
                changes.push((item.clone(), r));
            }
        }
        written = write_rows(graph, &loc, changes).await?;
    }

    // Progress is saved last: a run stopped before this line repeats the round.
    match store.get_state(tenant, DELTA_KEY).await? {
        Some((_, version)) => {
            store
                .put_state(tenant, DELTA_KEY, &round.delta_link, Some(version))
                .await?
        }
        None => {
            store
                .put_state(tenant, DELTA_KEY, &round.delta_link, None)
                .await?
        }
    };
    let report = SyncReport {
        full: round.full,
        restarted,
        groups: unified.len(),
        written,
    };
    Ok(report)
}
