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

use serde_json::Value;

use crate::customer_list::{self, GroupRow, Lifecycle, ListError};
use crate::domain::TenantId;
use crate::microsoft::graph::{BatchRequest, Graph, GraphError, GraphGroup, MAX_BATCH, enc};
use crate::state::{StateError, TenantState};
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
    /// Graph requests the group sync made.
    pub requests: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
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
async fn recount(graph: &Graph<'_>, ids: &[String]) -> Result<HashMap<String, (u64, u64)>, GraphError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(MAX_BATCH / 2) {
        let mut requests = Vec::with_capacity(chunk.len() * 2);
        for id in chunk {
            requests.push(BatchRequest::get_eventual(format!("/groups/{}/owners/$count", enc(id))));
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
            out.insert(id.clone(), (count(&answers[2 * i])?, count(&answers[2 * i + 1])?));
        }
    }
    Ok(out)
}

/// What the sync looks up per group, once: the team's thread id and the group's site.
#[derive(Default)]
struct Lookups {
    threads: HashMap<String, String>,
    sites: HashMap<String, String>,
}

/// Looks up Teams thread ids and group site URLs, 20 requests to a batch.
async fn lookups(graph: &Graph<'_>, threads: &[String], sites: &[String]) -> Result<Lookups, GraphError> {
    let wanted: Vec<(&String, bool)> = threads
        .iter()
        .map(|g| (g, true))
        .chain(sites.iter().map(|g| (g, false)))
        .collect();
    let mut out = Lookups::default();
    for chunk in wanted.chunks(MAX_BATCH) {
        let requests: Vec<BatchRequest> = chunk
            .iter()
            .map(|(id, team)| {
                if *team {
                    Graph::team_internal_id_request(id)
                } else {
                    BatchRequest::get(format!("/groups/{}/sites/root?$select=id,webUrl", enc(id)))
                }
            })
            .collect();
        for ((id, team), r) in chunk.iter().zip(graph.batch(&requests).await?) {
            match r.status {
                200 => {
                    let (key, map) = if *team {
                        ("internalId", &mut out.threads)
                    } else {
                        ("webUrl", &mut out.sites)
                    };
                    if let Some(v) = r.body.get(key).and_then(Value::as_str) {
                        map.insert((*id).clone(), v.to_string());
                    }
                }
                // Not provisioned (yet): no team or no site to record.
                404 => {}
                _ => {
                    r.into_result::<Value>()?;
                }
            }
        }
    }
    Ok(out)
}

/// Runs one group sync for a tenant with an app-only Graph session.
pub async fn sync_groups(
    graph: &Graph<'_>,
    store: &dyn Store,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
    force_full: bool,
) -> Result<SyncReport, SyncError> {
    let requests_before = graph.requests_sent();
    let loc = customer_list::ensure(graph, store, tenant, site_path).await?;
    // The version read now is the one the final write must still find (compare-and-swap):
    // two workers on one tenant cannot both advance the delta link.
    let stored = state.load(tenant, DELTA_KEY).await?;
    let version = stored.as_ref().map(|(_, v)| v.clone());
    let saved = if force_full {
        None
    } else {
        stored.map(|(link, _)| (link, ()))
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
        let need_sites: Vec<String> = unified
            .iter()
            .filter(|g| existing.get(&g.id).and_then(|(_, r)| r.site_url.as_ref()).is_none())
            .map(|g| g.id.clone())
            .collect();
        let found = lookups(graph, &need_threads, &need_sites).await?;

        let mut changes: Vec<(Option<String>, GroupRow)> = Vec::new();
        for g in &unified {
            let seen = &round.groups[&g.id];
            let old = existing.get(&g.id);
            let (owners, members) = if round.full {
                (Some(seen.owners.len() as u64), Some(seen.members.len() as u64))
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
                site_url: None,
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
                row.site_url = o.site_url.clone();
            }
            if let Some(site) = found.sites.get(&g.id) {
                row.site_url = Some(site.clone());
            }
            if row.teams_enabled {
                if let Some(t) = found.threads.get(&g.id) {
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
        written = customer_list::write_rows(graph, &loc, changes).await?;
    }

    // Progress is saved last: a run stopped before this line repeats the round.
    state
        .save(tenant, DELTA_KEY, &round.delta_link, version.as_ref())
        .await?;
    let report = SyncReport {
        full: round.full,
        restarted,
        groups: unified.len(),
        written,
        requests: graph.requests_sent() - requests_before,
    };
    Ok(report)
}
