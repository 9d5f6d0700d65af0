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

use super::state::{StateError, TenantState};
use crate::customer_list::{self, GroupRow, Lifecycle, ListError, ListLocation};
use crate::domain::TenantId;
use crate::microsoft::graph::{Graph, GraphError, GraphGroup, RelationCounts, TeamsAndSites};
use crate::store::{Store, StoreError};

const DELTA_KEY: &str = "groups_delta";

/// What one group sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSyncReport {
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

/// Why a group sync failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupSyncError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<ListError> for GroupSyncError {
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

/// Runs one group sync for a tenant with an app-only Graph session: reads a delta round
/// (restarting it as a full one if the delta token expired), writes the rows that changed,
/// then saves the round's delta link.
pub async fn sync_groups(
    graph: &Graph<'_>,
    store: &dyn Store,
    state: &dyn TenantState,
    tenant: &TenantId,
    site_path: &str,
    force_full: bool,
) -> Result<GroupSyncReport, GroupSyncError> {
    let requests_before = graph.requests_sent();
    let loc = customer_list::ensure(graph, store, tenant, site_path).await?;
    // The version read now is the one the final write must still find (compare-and-swap):
    // two workers on one tenant cannot both advance the delta link.
    let stored = state.load(tenant, DELTA_KEY).await?;
    let version = stored.as_ref().map(|(_, v)| v.clone());
    let saved = stored.filter(|_| !force_full).map(|(link, _)| link);
    let mut restarted = false;
    let round = match read_round(graph, saved.as_deref()).await {
        Ok(r) => r,
        Err(e) if e.is_resync_required() => {
            tracing::warn!(event = "group_sync_restarted", tenant_id = %tenant);
            restarted = true;
            read_round(graph, None).await?
        }
        Err(e) => return Err(e.into()),
    };
    let changes = round_changes(graph, &loc, &round).await?;
    let written = customer_list::write_rows(graph, &loc, changes).await?;
    // Progress is saved last: a run stopped before this line repeats the round.
    state
        .save(tenant, DELTA_KEY, &round.delta_link, version.as_ref())
        .await?;
    Ok(GroupSyncReport {
        full: round.full,
        restarted,
        groups: round.unified().count(),
        written,
        requests: graph.requests_sent() - requests_before,
    })
}

impl Round {
    /// The Microsoft 365 groups the round saw (other groups are not ours to track).
    fn unified(&self) -> impl Iterator<Item = &GraphGroup> {
        self.groups
            .values()
            .filter_map(|s| s.group.as_ref())
            .filter(|g| g.is_unified())
    }

    /// The groups the round saw removed.
    fn removed(&self) -> impl Iterator<Item = &String> {
        self.groups.iter().filter(|(_, s)| s.removed).map(|(id, _)| id)
    }
}

/// The rows a round changes: new and changed groups, and groups gone (removed in the round,
/// or — in a full round — absent from it).
async fn round_changes(
    graph: &Graph<'_>,
    loc: &ListLocation,
    round: &Round,
) -> Result<Vec<(Option<String>, GroupRow)>, GraphError> {
    let unified: Vec<&GraphGroup> = round.unified().collect();
    let removed: HashSet<&String> = round.removed().collect();
    if unified.is_empty() && removed.is_empty() && !round.full {
        return Ok(Vec::new());
    }
    // The current rows: all of them for a full round, only the touched ones otherwise.
    let existing = if round.full {
        customer_list::all_rows(graph, loc).await?
    } else {
        let ids: Vec<String> = unified
            .iter()
            .map(|g| g.id.clone())
            .chain(removed.iter().map(|s| s.to_string()))
            .collect();
        customer_list::rows_for(graph, loc, &ids).await?
    };
    // Counts: from the delta's membership data in a full round; re-counted (not added up,
    // so a replayed round cannot skew them) for groups whose relations changed otherwise.
    let counts = if round.full {
        HashMap::new()
    } else {
        let touched: Vec<String> = unified
            .iter()
            .filter(|g| round.groups[&g.id].relations_changed || !existing.contains_key(&g.id))
            .map(|g| g.id.clone())
            .collect();
        graph.count_relations(&touched).await?
    };
    let found = find_threads_and_sites(graph, &unified, &existing).await?;

    let mut changes = Vec::new();
    for g in &unified {
        let old = existing.get(&g.id);
        let counts = if round.full {
            let seen = &round.groups[&g.id];
            Some(RelationCounts {
                owners: seen.owners.len() as u64,
                members: seen.members.len() as u64,
            })
        } else {
            counts.get(&g.id).copied()
        };
        let mut row = group_row(g, old.map(|(_, r)| r), counts);
        if let Some(site) = found.sites.get(&g.id) {
            row.site_url = Some(site.clone());
        }
        if let Some(t) = found.threads.get(&g.id).filter(|_| row.teams_enabled) {
            row.teams_thread_id = Some(t.clone());
        }
        if old.is_none_or(|(_, o)| !o.same_data(&row)) {
            changes.push((old.map(|(item, _)| item.clone()), row));
        }
    }
    let present: HashSet<&String> = unified.iter().map(|g| &g.id).collect();
    for (id, (item, row)) in &existing {
        let gone = removed.contains(id) || (round.full && !present.contains(id));
        if gone && row.lifecycle == Lifecycle::Active {
            let mut r = row.clone();
            r.lifecycle = Lifecycle::Deleted;
            changes.push((Some(item.clone()), r));
        }
    }
    Ok(changes)
}

/// Looks up what the rows lack: the thread ids of teams, and the sites of groups.
async fn find_threads_and_sites(
    graph: &Graph<'_>,
    unified: &[&GraphGroup],
    existing: &HashMap<String, (String, GroupRow)>,
) -> Result<TeamsAndSites, GraphError> {
    let lacking = |has: fn(&GroupRow) -> bool, wanted: fn(&GraphGroup) -> bool| -> Vec<String> {
        unified
            .iter()
            .filter(|g| wanted(g) && existing.get(&g.id).is_none_or(|(_, r)| !has(r)))
            .map(|g| g.id.clone())
            .collect()
    };
    graph
        .team_threads_and_sites(
            &lacking(|r| r.teams_thread_id.is_some(), GraphGroup::teams_enabled),
            &lacking(|r| r.site_url.is_some(), |_| true),
        )
        .await
}

/// A group's row from what Graph says now, keeping what other parts of the sync own: the
/// activity (the activity sync's), the thread id and site found before, and — without new
/// counts — the counts last written.
fn group_row(g: &GraphGroup, old: Option<&GroupRow>, counts: Option<RelationCounts>) -> GroupRow {
    let teams_enabled = g.teams_enabled();
    GroupRow {
        group_id: g.id.clone(),
        name: g.display_name.clone().unwrap_or_default(),
        owner_count: counts.map(|c| c.owners).or(old.and_then(|o| o.owner_count)),
        member_count: counts.map(|c| c.members).or(old.and_then(|o| o.member_count)),
        teams_enabled,
        teams_thread_id: old.and_then(|o| o.teams_thread_id.clone()).filter(|_| teams_enabled),
        site_url: old.and_then(|o| o.site_url.clone()),
        last_teams_activity: old.and_then(|o| o.last_teams_activity),
        last_sharepoint_activity: old.and_then(|o| o.last_sharepoint_activity),
        last_activity: old.and_then(|o| o.last_activity),
        lifecycle: Lifecycle::Active,
        synced_at: None,
    }
}
