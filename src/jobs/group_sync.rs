//! Group sync for one tenant: Graph's `/groups/delta` (a full round the first time,
//! incremental after; an expired delta token restarts cleanly) feeds the tenant's
//! "GroupMgr Groups" SharePoint list, and only rows whose data changed are written.
//!
//! A round is worked page by page and its progress saved after each page, once that page's
//! rows are written: a sync stopped anywhere (its budget spent, or killed) resumes at the
//! page after the last one saved, and a page done twice writes the same rows twice. The
//! round's delta link is saved only when the whole round is done.
//!
//! Counts come from the delta itself (`$select=members,owners`): the first round carries
//! every owner and member, so a full sync needs no per-group requests for them; later rounds
//! carry only changes, and the groups they touch are re-counted with `$count` in `$batch`
//! (re-counting, not adding up, so that replaying a round cannot skew a count). Graph sends a
//! large group as several objects ("merge locally", graph-groups.md §7): they follow one
//! another, so the group a page ends with is held over (in the saved progress) until the next
//! page shows whether it continues; a group seen again later is re-counted at the round's end.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::Budget;
use super::pending::Pending;
use super::state::{StateError, TenantState, load_doc, save_doc};
use crate::customer_list::{self, GroupRow, Lifecycle, ListLocation, StoredRow, WriteOutcome};
use crate::domain::TenantId;
use crate::microsoft::graph::{Graph, GraphError, GraphGroup, Page, Relations};

/// The delta link of the last finished round.
/// The delta link, per selection: a link remembers the `$select` of its round's first call, so
/// a link of an older selection (`groups_delta`, before `assignedLabels`) would never return
/// what was added; with no link under the current key the next round is a full one.
const DELTA_KEY: &str = "groups_delta_v2";
/// The delta links of older selections, deleted when a round of the current one ends.
const OLD_DELTA_KEYS: [&str; 1] = ["groups_delta"];
/// The selection rounds are made with now (rounds saved with an older one start again).
const SELECTION: u32 = 2;
/// The progress of the round under way.
const ROUND_KEY: &str = "groups_round";
/// The ids of the groups a full round has seen, one document per page.
const SEEN_PREFIX: &str = "groups_round_seen_";
/// How long a group's site may take to appear before it is no longer looked for.
const SITE_WAIT: TimeDelta = TimeDelta::days(7);

/// What one group sync invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSyncReport {
    /// The round is a full one (first run, `--full`, or after an expired delta token).
    pub full: bool,
    /// The delta token had expired and the round was restarted as a full one.
    pub restarted: bool,
    /// The round finished in this invocation (else it continues in the next).
    pub finished: bool,
    /// Delta pages read in this invocation.
    pub pages: usize,
    /// Microsoft 365 groups seen in this invocation.
    pub groups: usize,
    /// Rows created or updated.
    pub written: usize,
    /// Rows SharePoint refused (kept, and tried again on the next run).
    pub refused: usize,
    /// Of those, rows not written for lack of time (throttled at the end of the budget): the
    /// sync is not finished until the next invocation writes them.
    pub deferred: usize,
    /// Graph requests the group sync made.
    pub requests: u64,
}

/// Why a group sync failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupSyncError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<customer_list::ListError> for GroupSyncError {
    fn from(e: customer_list::ListError) -> Self {
        match e {
            customer_list::ListError::Graph(g) => Self::Graph(g),
            customer_list::ListError::State(s) => Self::State(s),
        }
    }
}

/// What a round has said about one group so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Seen {
    id: String,
    /// Its properties (from the object that carried them).
    group: Option<GraphGroup>,
    removed: bool,
    owners: BTreeSet<String>,
    members: BTreeSet<String>,
    /// An incremental round changed its owners or members.
    relations_changed: bool,
}

impl Seen {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            ..Default::default()
        }
    }

    /// Merges one delta object of the group.
    fn merge(&mut self, mut g: GraphGroup) {
        if g.removed.is_some() {
            *self = Seen {
                removed: true,
                ..Seen::new(&self.id)
            };
            return;
        }
        self.removed = false;
        for (refs, set) in [
            (g.owners_delta.take(), &mut self.owners),
            (g.members_delta.take(), &mut self.members),
        ] {
            if let Some(refs) = refs {
                self.relations_changed |= !refs.is_empty();
                for r in refs {
                    if r.removed.is_some() {
                        set.remove(&r.id);
                    } else {
                        set.insert(r.id);
                    }
                }
            }
        }
        // Later objects may carry only relationship data; keep the properties seen.
        if g.display_name.is_some() || self.group.is_none() {
            self.group = Some(g);
        }
    }

    fn unified(&self) -> Option<&GraphGroup> {
        self.group.as_ref().filter(|g| !self.removed && g.is_unified())
    }
}

/// The progress of a round, saved after each page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoundProgress {
    full: bool,
    restarted: bool,
    /// The page to read next (`None`: the round's first page).
    next: Option<String>,
    /// The group the last page ended with: its objects may continue on the next page.
    open: Option<Seen>,
    /// Seen-id documents written (full rounds).
    seen_pages: u32,
    /// Groups seen again after they were written: re-counted when the round ends.
    recount: BTreeSet<String>,
    /// The `$select` the round reads with (`SELECTION`; 0 for rounds saved before it was).
    #[serde(default)]
    selection: u32,
}

/// The inputs of a group sync.
pub struct GroupSync<'a> {
    pub graph: &'a Graph<'a>,
    pub state: &'a dyn TenantState,
    pub tenant: TenantId,
    pub list: &'a ListLocation,
    /// Ignore the saved delta link (a full resync), when starting a round.
    pub force_full: bool,
    pub budget: &'a Budget,
    pub pending: &'a mut Pending,
    pub now: DateTime<Utc>,
}

impl GroupSync<'_> {
    /// Works on the round (starting one if none is under way) until it is done or the budget
    /// is spent; then looks again for the sites of groups that had none.
    pub async fn run(mut self) -> Result<GroupSyncReport, GroupSyncError> {
        let requests_before = self.graph.requests_sent();
        let mut report = GroupSyncReport::default();
        let (mut progress, mut version) = match load_doc::<RoundProgress>(self.state, &self.tenant, ROUND_KEY).await? {
            Some((p, v)) if p.selection == SELECTION => (p, Some(v)),
            // A round of an older selection lacks what the current one reads: a new full
            // round replaces it (its saved version is kept for the conditional save).
            Some((p, v)) => {
                self.clear_seen(&p).await?;
                (fresh(true, None), Some(v))
            }
            None => (self.new_round().await?, None),
        };
        let mut seen_ids = self.seen_ids(&progress).await?;
        let retried = self.retry_pending_rows().await?;
        report.written += retried.written;
        report.deferred += deferred(&retried, self.budget);
        self.pending.save(self.state, &self.tenant).await?;
        loop {
            if self.budget.exhausted() {
                break;
            }
            let page = match self.page(&progress).await {
                Ok(p) => p,
                Err(e) if e.is_resync_required() => {
                    tracing::warn!(event = "group_sync_restarted", tenant_id = %self.tenant);
                    self.clear_seen(&progress).await?;
                    progress = RoundProgress {
                        restarted: true,
                        ..fresh(true, None)
                    };
                    seen_ids.clear();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            report.pages += 1;
            let (done, open) = split_page(progress.open.take(), page.value, page.next_link.is_some());
            for s in &done {
                if progress.full && !seen_ids.insert(s.id.clone()) {
                    // Seen on an earlier page: its counts from that page are partial.
                    progress.recount.insert(s.id.clone());
                }
            }
            report.groups += done.iter().filter(|s| s.unified().is_some()).count();
            let outcome = self.write_page(&done, progress.full).await?;
            report.written += outcome.written;
            report.refused += outcome.refused.len();
            report.deferred += deferred(&outcome, self.budget);
            // Rows refused are durable in the pending work before the page counts as done.
            self.pending.save(self.state, &self.tenant).await?;
            if progress.full {
                let ids: Vec<&String> = done.iter().map(|s| &s.id).collect();
                // Job-state documents are plain: serialising cannot fail.
                let text = serde_json::to_string(&ids).expect("ids serialise");
                replace(self.state, &self.tenant, &seen_key(progress.seen_pages), &text).await?;
                progress.seen_pages += 1;
            }
            match page.delta_link {
                Some(delta) => {
                    report.written += self.finish_round(&progress, &seen_ids).await?;
                    replace(self.state, &self.tenant, DELTA_KEY, &delta).await?;
                    if progress.full {
                        for old in OLD_DELTA_KEYS {
                            self.state.delete(&self.tenant, old).await?;
                        }
                    }
                    // The round is over before its seen pages go: a run stopped in between
                    // starts a new round from the delta link, and never resumes this one
                    // with pages missing (which would take their groups for gone).
                    self.state.delete(&self.tenant, ROUND_KEY).await?;
                    self.clear_seen(&progress).await?;
                    report.finished = true;
                    break;
                }
                None => {
                    progress.next = page.next_link;
                    progress.open = open;
                    version = Some(save_doc(self.state, &self.tenant, ROUND_KEY, &progress, version.as_ref()).await?);
                }
            }
        }
        report.full = progress.full;
        report.restarted = progress.restarted;
        if report.finished {
            report.written += self.look_for_late_sites().await?;
        }
        report.requests = self.graph.requests_sent() - requests_before;
        Ok(report)
    }

    /// A new round: incremental from the last round's delta link, or full.
    async fn new_round(&self) -> Result<RoundProgress, StateError> {
        // The delta link is kept as its text.
        let link = if self.force_full {
            None
        } else {
            self.state.load(&self.tenant, DELTA_KEY).await?.map(|(l, _)| l)
        };
        Ok(fresh(link.is_none(), link))
    }

    async fn page(&self, progress: &RoundProgress) -> Result<Page<GraphGroup>, GraphError> {
        self.graph.group_delta(progress.next.as_deref()).await
    }

    /// The ids a full round under way has already seen (from its saved pages).
    async fn seen_ids(&self, progress: &RoundProgress) -> Result<HashSet<String>, StateError> {
        let mut out = HashSet::new();
        for n in 0..progress.seen_pages {
            if let Some((ids, _)) = load_doc::<Vec<String>>(self.state, &self.tenant, &seen_key(n)).await? {
                out.extend(ids);
            }
        }
        Ok(out)
    }

    async fn clear_seen(&self, progress: &RoundProgress) -> Result<(), StateError> {
        for n in 0..progress.seen_pages {
            self.state.delete(&self.tenant, &seen_key(n)).await?;
        }
        Ok(())
    }

    /// Writes the rows of the groups a page finished: new and changed groups, groups removed.
    async fn write_page(&mut self, done: &[Seen], full: bool) -> Result<WriteOutcome, GroupSyncError> {
        if done.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let ids: Vec<String> = done.iter().map(|s| s.id.clone()).collect();
        // A lookup that fails is an error: a row taken for absent would be written anew.
        let existing = customer_list::rows_for(self.graph, self.list, &ids).await?;
        let unified: Vec<&Seen> = done.iter().filter(|s| s.unified().is_some()).collect();
        // Counts: from the delta's membership data in a full round; re-counted (not added up,
        // so a replayed round cannot skew them) for groups whose relations changed otherwise.
        let counts = if full {
            HashMap::new()
        } else {
            let touched: Vec<String> = unified
                .iter()
                .filter(|s| s.relations_changed || !existing.contains_key(&s.id))
                .map(|s| s.id.clone())
                .collect();
            self.graph.count_relations(&touched).await?
        };
        let groups: Vec<&GraphGroup> = unified.iter().filter_map(|s| s.unified()).collect();
        let found = find_threads_and_sites(self.graph, &groups, &existing).await?;
        // Private and shared channels have sites of their own: looked up whenever the team's
        // row is written (every team in a full round).
        let teams: Vec<String> = groups
            .iter()
            .filter(|g| g.teams_enabled())
            .map(|g| g.id.clone())
            .collect();
        let channel_sites = self.graph.channel_sites(&teams).await?;
        let mut changes = Vec::new();
        for s in &unified {
            let Some(g) = s.unified() else { continue };
            let old = existing.get(&s.id);
            let counts = if full {
                Some(Relations {
                    owners: s.owners.iter().cloned().collect(),
                    // The delta does not show a hidden membership to us.
                    members: (!g.hidden_membership()).then_some(s.members.len() as u64),
                })
            } else {
                counts.get(&s.id).cloned()
            };
            let mut row = group_row(g, old.map(|o| &o.row), counts);
            match found.sites.get(&s.id) {
                Some(site) => row.site_url = Some(site.clone()),
                None if row.site_url.is_none() => self.pending.site_missing(&s.id, created(g).unwrap_or(self.now)),
                None => {}
            }
            if let Some(t) = found.threads.get(&s.id).filter(|_| row.teams_enabled) {
                row.teams_thread_id = Some(t.clone());
            }
            if !row.teams_enabled {
                row.channel_sites.clear();
            } else if let Some(sites) = channel_sites.get(&s.id) {
                row.channel_sites = sites.clone();
            }
            if old.is_none_or(|o| !o.row.same_group_data(&row)) {
                changes.push((old.map(|o| o.item.clone()), row));
            }
        }
        for s in done.iter().filter(|s| s.removed) {
            if let Some(old) = existing.get(&s.id).filter(|o| o.row.lifecycle == Lifecycle::Active) {
                let mut row = old.row.clone();
                row.lifecycle = Lifecycle::Deleted;
                changes.push((Some(old.item.clone()), row));
            }
        }
        self.write(changes).await
    }

    /// Writes group rows, keeping the ones SharePoint refused for the next run.
    async fn write(&mut self, changes: Vec<(Option<String>, GroupRow)>) -> Result<WriteOutcome, GroupSyncError> {
        self.pending.writing(&changes);
        let outcome = customer_list::write_group_rows(self.graph, self.list, changes.clone()).await?;
        let refused: HashSet<&str> = outcome.refused.iter().map(|r| r.group_id.as_str()).collect();
        self.pending.written_groups(
            changes
                .iter()
                .map(|(_, r)| r.group_id.as_str())
                .filter(|g| !refused.contains(g)),
        );
        self.pending.refused_groups(&self.tenant, outcome.refused.clone());
        Ok(outcome)
    }

    /// Rows refused on an earlier run, written again with the values they were to get.
    async fn retry_pending_rows(&mut self) -> Result<WriteOutcome, GroupSyncError> {
        let rows = self.pending.rows_to_retry();
        if rows.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let ids: Vec<String> = rows.iter().map(|r| r.group_id.clone()).collect();
        let existing = customer_list::rows_for(self.graph, self.list, &ids).await?;
        let changes = rows
            .into_iter()
            .map(|r| (existing.get(&r.group_id).map(|e| e.item.clone()), r))
            .collect();
        self.write(changes).await
    }

    /// The end of a round: in a full round, rows of groups it did not see are gone; groups
    /// it saw on more than one page are re-counted. Returns the rows written.
    async fn finish_round(
        &mut self,
        progress: &RoundProgress,
        seen: &HashSet<String>,
    ) -> Result<usize, GroupSyncError> {
        if !progress.full {
            return Ok(0);
        }
        let recount: Vec<String> = progress.recount.iter().cloned().collect();
        let counts = self.graph.count_relations(&recount).await?;
        // Page by page, keeping only the rows that change: at 100,000 groups the whole list
        // would be the sync's largest allocation.
        let changes = customer_list::changed_rows(self.graph, self.list, |stored| {
            let mut row = stored.clone();
            if !seen.contains(&row.group_id) {
                row.lifecycle = Lifecycle::Deleted;
            }
            if let Some(c) = counts.get(&row.group_id) {
                row.owner_count = Some(c.owners.len() as u64);
                row.owner_ids = Some(c.owners.clone());
                row.member_count = c.members.or(row.member_count);
            }
            (!row.same_group_data(stored)).then_some(row)
        })
        .await?;
        Ok(self.write(changes).await?.written)
    }

    /// Groups whose site did not exist yet (Microsoft provisions a new group's site
    /// asynchronously): looked up again on every run, for up to a week after the group was
    /// made. Returns the rows written.
    async fn look_for_late_sites(&mut self) -> Result<usize, GroupSyncError> {
        let ids = self.pending.sites_to_look_for(self.now - SITE_WAIT);
        if ids.is_empty() {
            return Ok(0);
        }
        let found = self.graph.team_threads_and_sites(&[], &ids).await?;
        let with_site: Vec<String> = found.sites.keys().cloned().collect();
        let rows = customer_list::rows_for(self.graph, self.list, &with_site).await?;
        let mut changes = Vec::new();
        for (id, site) in &found.sites {
            if let Some(stored) = rows.get(id) {
                let mut row = stored.row.clone();
                row.site_url = Some(site.clone());
                changes.push((Some(stored.item.clone()), row));
            }
        }
        let outcome = self.write(changes.clone()).await?;
        // Found and written: no need to look again (a refused row keeps its site in its
        // pending values; a group whose row is not written yet is looked for again).
        let refused: HashSet<&str> = outcome.refused.iter().map(|r| r.group_id.as_str()).collect();
        for (_, row) in &changes {
            if !refused.contains(row.group_id.as_str()) {
                self.pending.site_found(&row.group_id);
            }
        }
        Ok(outcome.written)
    }
}

/// Forgets the round under way and the last delta link (the list they wrote to is gone): the
/// next sync starts a full round.
pub async fn forget_round(state: &dyn TenantState, tenant: &TenantId) -> Result<(), StateError> {
    if let Some((progress, _)) = load_doc::<RoundProgress>(state, tenant, ROUND_KEY).await? {
        for n in 0..progress.seen_pages {
            state.delete(tenant, &seen_key(n)).await?;
        }
    }
    state.delete(tenant, ROUND_KEY).await?;
    for old in OLD_DELTA_KEYS {
        state.delete(tenant, old).await?;
    }
    state.delete(tenant, DELTA_KEY).await
}

/// Rows not written for lack of time: throttled or unavailable when the budget left less
/// than the wait (Microsoft's `Retry-After`, or a backoff of up to `RETRY_ROOM`). A transient
/// failure with time left was retried already and counts as refused, so that one item that
/// keeps failing cannot keep the sync continuing forever.
pub fn deferred(outcome: &WriteOutcome, budget: &Budget) -> usize {
    outcome
        .refused
        .iter()
        .filter(|r| r.transient() && budget.remaining() < r.retry_after().unwrap_or_default().max(RETRY_ROOM))
        .count()
}

/// The time a retried write may need (the retry policy's longest backoff).
const RETRY_ROOM: std::time::Duration = std::time::Duration::from_secs(30);

fn fresh(full: bool, next: Option<String>) -> RoundProgress {
    RoundProgress {
        full,
        restarted: false,
        next,
        open: None,
        seen_pages: 0,
        recount: BTreeSet::new(),
        selection: SELECTION,
    }
}

fn seen_key(n: u32) -> String {
    format!("{SEEN_PREFIX}{n}")
}

/// Writes `text` whatever was there (read its version, then write conditionally; the lease
/// keeps other writers away, so a conflict is retried once) — e.g. the seen-ids document of
/// an earlier, interrupted attempt at the same page.
async fn replace(state: &dyn TenantState, tenant: &TenantId, name: &str, text: &str) -> Result<(), StateError> {
    for _ in 0..2 {
        let version = state.load(tenant, name).await?.map(|(_, v)| v);
        match state.save(tenant, name, text, version.as_ref()).await {
            Err(StateError::Conflict) => continue,
            other => return other.map(|_| ()),
        }
    }
    Err(StateError::Conflict)
}

/// Splits a page into the groups it finished and the one it may leave open: objects of one
/// group follow one another, so a group is finished when another follows it — or when the
/// round has no page after this one.
fn split_page(open: Option<Seen>, objects: Vec<GraphGroup>, more: bool) -> (Vec<Seen>, Option<Seen>) {
    let mut done: Vec<Seen> = Vec::new();
    let mut current = open;
    for g in objects {
        match current.as_mut() {
            Some(c) if c.id == g.id => c.merge(g),
            _ => {
                // The same group again, not next to itself: merge into what this page has.
                if let Some(earlier) = done.iter_mut().find(|s| s.id == g.id) {
                    earlier.merge(g);
                    continue;
                }
                let mut s = Seen::new(&g.id);
                s.merge(g);
                if let Some(finished) = current.replace(s) {
                    done.push(finished);
                }
            }
        }
    }
    if !more {
        done.extend(current.take());
    }
    (done, current)
}

/// When the group was made (Graph's `createdDateTime`).
fn created(g: &GraphGroup) -> Option<DateTime<Utc>> {
    g.created_date_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Looks up what the rows lack: the thread ids of teams, and the sites of groups.
async fn find_threads_and_sites(
    graph: &Graph<'_>,
    groups: &[&GraphGroup],
    existing: &HashMap<String, StoredRow>,
) -> Result<crate::microsoft::graph::TeamsAndSites, GraphError> {
    let lacking = |has: fn(&GroupRow) -> bool, wanted: fn(&GraphGroup) -> bool| -> Vec<String> {
        groups
            .iter()
            .filter(|g| wanted(g) && existing.get(&g.id).is_none_or(|r| !has(&r.row)))
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
fn group_row(g: &GraphGroup, old: Option<&GroupRow>, counts: Option<Relations>) -> GroupRow {
    let teams_enabled = g.teams_enabled();
    GroupRow {
        group_id: g.id.clone(),
        name: g.display_name.clone().unwrap_or_default(),
        created: created(g).or(old.and_then(|o| o.created)),
        owner_count: counts
            .as_ref()
            .map(|c| c.owners.len() as u64)
            .or(old.and_then(|o| o.owner_count)),
        // The ownership check (`lifecycle::ownership`) judges the owners after the round.
        owner_ids: counts
            .as_ref()
            .map(|c| c.owners.clone())
            .or_else(|| old.and_then(|o| o.owner_ids.clone())),
        ownership: old.and_then(|o| o.ownership),
        ownerless_since: old.and_then(|o| o.ownerless_since),
        // Delta includes every selected property ever set on an object that carries its
        // properties ("If the property has never been set before it will not be included in
        // the response at all", group: delta), so there absent is none; an object carrying only
        // relations says nothing of them.
        labels: match &g.assigned_labels {
            Some(l) => Some(l.clone()),
            None if g.display_name.is_some() => Some(Vec::new()),
            None => old.and_then(|o| o.labels.clone()),
        },
        // Unknown when the membership is hidden; a refused count of any other group keeps the
        // count it had.
        member_count: match counts {
            _ if g.hidden_membership() => None,
            Some(Relations { members: Some(m), .. }) => Some(m),
            _ => old.and_then(|o| o.member_count),
        },
        teams_enabled,
        teams_thread_id: old.and_then(|o| o.teams_thread_id.clone()).filter(|_| teams_enabled),
        site_url: old.and_then(|o| o.site_url.clone()),
        channel_sites: old.map(|o| o.channel_sites.clone()).unwrap_or_default(),
        last_teams_activity: old.and_then(|o| o.last_teams_activity),
        last_teams_by: old.map(|o| o.last_teams_by).unwrap_or_default(),
        last_sharepoint_activity: old.and_then(|o| o.last_sharepoint_activity),
        last_mail_activity: old.and_then(|o| o.last_mail_activity),
        last_sharepoint_kinds: old.map(|o| o.last_sharepoint_kinds).unwrap_or_default(),
        last_activity: old.and_then(|o| o.last_activity),
        activity_days: old.map(|o| o.activity_days.clone()).unwrap_or_default(),
        report_counts: old.map(|o| o.report_counts).unwrap_or_default(),
        lifecycle: Lifecycle::Active,
        synced_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::graph::DeltaRef;

    fn object(id: &str, name: Option<&str>, members: &[&str]) -> GraphGroup {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "displayName": name,
            "groupTypes": ["Unified"],
            "members@delta": members.iter().map(|m| serde_json::json!({"id": m})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn a_group_split_across_objects_and_pages_is_merged() {
        // Page 1: a, then b's first part; page 2: the rest of b, then c.
        let (done, open) = split_page(
            None,
            vec![object("a", Some("A"), &["1"]), object("b", Some("B"), &["1", "2"])],
            true,
        );
        assert_eq!(done.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(open.as_ref().unwrap().id, "b");
        let (done, open) = split_page(
            open,
            vec![object("b", None, &["3"]), object("c", Some("C"), &[])],
            false,
        );
        assert!(open.is_none(), "the last page leaves nothing open");
        let b = &done[0];
        assert_eq!((b.id.as_str(), b.members.len()), ("b", 3));
        assert_eq!(
            b.group.as_ref().unwrap().display_name.as_deref(),
            Some("B"),
            "properties kept"
        );
        assert_eq!(done[1].id, "c");
        let _ = DeltaRef {
            id: String::new(),
            removed: None,
        };
    }
}
