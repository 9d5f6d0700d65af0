//! m365-sim: a faithful local stand-in for the Microsoft endpoints GroupMgr calls — Entra ID
//! login (OpenID metadata, JWKS, the v2 token endpoint), Microsoft Graph (groups, owners and
//! members, delta, `$batch`, group settings, SharePoint lists, teams, reports) and the Office
//! 365 Management Activity API. Wire formats follow the notes in
//! `../shared/reference/`; where the sim chooses something Microsoft does not document, the
//! code says so.
//!
//! Use it in-process (`Sim::start`) from tests and `groupmgr dev`, or standalone
//! (`cargo run -p m365-sim -- --port 7072`).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use warp::Filter;
use warp::http::{HeaderMap, Method, Response, StatusCode};

pub mod audit;
pub mod client_cert;
pub mod directory;
pub mod faults;
pub mod graph;
pub mod keys;
pub mod login;

pub use directory::{SimTenant, SimUser};
pub use faults::{FaultKind, FaultRule, Faults, Hold};
pub use keys::SigningKey;
pub use login::TokenSpec;

/// An HTTP request as the sim's handlers see it.
pub struct SimRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Shared state of a running sim.
pub struct SimState {
    base_url: OnceLock<String>,
    pub options: SimOptions,
    pub graph: graph::GraphData,
    /// Management Activity API state per tenant.
    pub feeds: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, audit::FeedState>>,
    /// Tenants whose reports conceal names (`/admin/reportSettings`).
    pub concealed_reports: std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>,
    /// Published signing keys; the first one signs new tokens.
    keys: RwLock<Vec<Arc<SigningKey>>>,
    tenants: RwLock<Vec<SimTenant>>,
    pub faults: Faults,
    requests: std::sync::atomic::AtomicU64,
    /// Graph requests that would change something (any method but GET, a `$batch`'s items
    /// counted one by one and its envelope not at all), for "a dry run writes nothing".
    pub graph_writes: std::sync::Mutex<std::collections::HashMap<(String, String), u64>>,
    /// Requests answered, by path (without query).
    by_path: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// The time the sim's data lives in: the real clock, unless a test fixed it.
    clock: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl SimState {
    /// Whether the tenant's usage reports conceal names.
    pub fn reports_concealed(&self, tenant: &uuid::Uuid) -> bool {
        self.concealed_reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(tenant)
    }

    /// An administrator turns report name concealment on or off (Microsoft 365 admin center:
    /// Settings > Org settings > Reports; `PATCH /admin/reportSettings`).
    pub fn set_reports_concealed(&self, tenant: &uuid::Uuid, concealed: bool) {
        let mut set = self.concealed_reports.lock().unwrap_or_else(|p| p.into_inner());
        if concealed {
            set.insert(*tenant);
        } else {
            set.remove(tenant);
        }
    }

    /// Now, as the sim's content sees it: when audit content and report rows appear, and what
    /// the test oracle counts. Tokens keep the real clock (the product checks them by it).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(chrono::Utc::now)
    }

    /// Fixes the sim's clock at `t`: content stops appearing on its own, so that a test and
    /// its oracle see the same feed however long the test takes.
    pub fn set_clock(&self, t: chrono::DateTime<chrono::Utc>) {
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    /// Moves the sim's clock on (from now, if it was not fixed).
    pub fn advance_clock(&self, by: chrono::TimeDelta) {
        let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        *clock = Some(clock.unwrap_or_else(chrono::Utc::now) + by);
    }

    pub fn base_url(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or("http://127.0.0.1")
    }

    fn signing_key(&self) -> Arc<SigningKey> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())[0].clone()
    }

    /// The tenant's Graph data, seeded on first use.
    pub(crate) fn ensure_graph<'a>(
        &self,
        all: &'a mut std::collections::HashMap<uuid::Uuid, graph::TenantGraph>,
        tenant: &SimTenant,
    ) -> &'a mut graph::TenantGraph {
        let count = if tenant.id == directory::CONTOSO {
            self.options.groups
        } else {
            self.options.groups.min(20)
        };
        all.entry(tenant.id).or_insert_with(|| {
            let mut t = graph::model::seed(tenant, count);
            if tenant.id == directory::CONTOSO
                && let Some(p) = &self.options.naming_policy
            {
                t.settings.push(graph::model::Setting::group_unified(&[
                    ("PrefixSuffixNamingRequirement", &p.requirement),
                    ("CustomBlockedWordsList", &p.blocked_words),
                ]));
            }
            t
        })
    }

    /// Runs `f` on a tenant's Graph data (tests use it to look at or change the directory).
    pub fn with_graph<R>(&self, tenant: &uuid::Uuid, f: impl FnOnce(&mut graph::TenantGraph) -> R) -> Option<R> {
        let t = self.tenant(tenant)?;
        let mut all = self.graph.tenants.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(self.ensure_graph(&mut all, &t)))
    }

    pub(crate) fn published_keys(&self) -> Vec<Arc<SigningKey>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn tenant(&self, id: &uuid::Uuid) -> Option<SimTenant> {
        self.tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|t| &t.id == id)
            .cloned()
    }

    fn tenants(&self) -> Vec<SimTenant> {
        self.tenants.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes a tenant in place (revoking consent, disabling a user, …).
    pub fn update_tenant(&self, id: &uuid::Uuid, f: impl FnOnce(&mut SimTenant)) {
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tenants.iter_mut().find(|t| &t.id == id) {
            f(t);
        }
    }

    /// Disables (or enables) a user's account: Graph `accountEnabled`. Their groups do not
    /// change, so no group delta shows it.
    pub fn set_account_enabled(&self, tenant: &uuid::Uuid, upn: &str, enabled: bool) {
        self.update_tenant(tenant, |t| {
            if let Some(u) = t.users.iter_mut().find(|u| u.upn.eq_ignore_ascii_case(upn)) {
                u.enabled = enabled;
            }
        });
    }

    /// Deletes a user: gone from `/users`, and removed from every group they owned or were a
    /// member of ("Delete or restore a user", Microsoft Learn: a deleted user's group
    /// memberships are removed), each removal a change the groups delta shows.
    pub fn delete_user(&self, tenant: &uuid::Uuid, upn: &str) {
        let Some(id) = self.tenant(tenant).and_then(|t| t.user_by_upn(upn).map(|u| u.id)) else {
            return;
        };
        self.update_tenant(tenant, |t| t.users.retain(|u| u.id != id));
        self.with_graph(tenant, |g| {
            let ids: Vec<uuid::Uuid> = g.groups.keys().copied().collect();
            for gid in ids {
                for owners in [true, false] {
                    let removed = g.groups.get_mut(&gid).is_some_and(|grp| {
                        if owners {
                            grp.owners.remove(&id)
                        } else {
                            grp.members.remove(&id)
                        }
                    });
                    if removed {
                        let kind = if owners {
                            graph::model::ChangeKind::Owner { user: id, added: false }
                        } else {
                            graph::model::ChangeKind::Member { user: id, added: false }
                        };
                        g.record(gid, kind);
                    }
                }
            }
        });
    }

    /// The truth about ownership: each live Microsoft 365 group with no owner (`"none"`) or
    /// whose owners are all disabled accounts (`"disabled"`).
    pub fn ownerless_groups(&self, tenant: &uuid::Uuid) -> std::collections::BTreeMap<uuid::Uuid, &'static str> {
        let Some(t) = self.tenant(tenant) else {
            return Default::default();
        };
        self.with_graph(tenant, |g| {
            g.groups
                .values()
                .filter(|grp| grp.is_unified() && grp.deleted.is_none())
                .filter_map(|grp| {
                    if grp.owners.is_empty() {
                        Some((grp.id, "none"))
                    } else if grp.owners.iter().all(|o| t.user_by_id(o).is_some_and(|u| !u.enabled)) {
                        Some((grp.id, "disabled"))
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// Labels a group (an administrator applying a sensitivity label in the Microsoft 365
    /// admin center or Graph `PATCH /groups/{id}` `assignedLabels`, delegated only: "This
    /// property can be updated only in delegated scenarios", resources/group), a change the
    /// groups delta shows. `labels` are names of `graph::model::LABEL_NAMES`; none removes
    /// the label.
    pub fn set_group_labels(&self, tenant: &uuid::Uuid, group: &uuid::Uuid, labels: &[&str]) {
        self.with_graph(tenant, |g| {
            if let Some(grp) = g.groups.get_mut(group) {
                grp.labels = Some(labels.iter().map(|n| graph::model::label_id(*tenant, n)).collect());
                g.touch(*group);
            }
        });
    }

    /// The next archive or unarchive of `team`'s team fails (its operation ends `failed`, the
    /// team unchanged).
    pub fn fail_next_team_operation(&self, tenant: &uuid::Uuid, team: &uuid::Uuid) {
        self.with_graph(tenant, |g| {
            g.failing_team_operations.insert(*team);
        });
    }

    /// A group's mailbox stops receiving mail now (its last mail stays where it was, and
    /// the groups activity report's counts fall to nothing as their periods pass it).
    pub fn stop_mail(&self, tenant: &uuid::Uuid, group: &uuid::Uuid) {
        let now = self.now();
        self.with_graph(tenant, |g| {
            if let Some(grp) = g.groups.get_mut(group) {
                grp.mail_stopped = Some(now);
            }
        });
    }

    /// The truth about labels: the live Microsoft 365 groups carrying label `name`.
    pub fn labelled_groups(&self, tenant: &uuid::Uuid, name: &str) -> std::collections::BTreeSet<uuid::Uuid> {
        let label = graph::model::label_id(*tenant, name);
        self.with_graph(tenant, |g| {
            g.groups
                .values()
                .filter(|grp| {
                    grp.is_unified() && grp.deleted.is_none() && grp.labels.as_ref().is_some_and(|l| l.contains(&label))
                })
                .map(|grp| grp.id)
                .collect()
        })
        .unwrap_or_default()
    }
}

/// How the sim is seeded.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Microsoft 365 groups in the Contoso tenant (Fabrikam gets at most 20).
    pub groups: usize,
    /// How much audit content the Management Activity API serves (and its listing pages).
    pub audit: audit::AuditOptions,
    /// How Graph pages its collections.
    pub paging: Paging,
    /// How long after a Microsoft 365 group is created its SharePoint site appears. Microsoft
    /// provisions it asynchronously ("Create group" in Graph v1.0: the group's resources are
    /// provisioned after the call returns; PnP reports waits of up to 45 minutes,
    /// pnp/PnP#1868); the default is a plausible half hour of the sim's clock.
    pub site_delay: chrono::TimeDelta,
    /// Answer one list item write in this many with `429 Retry-After: 1` (SharePoint
    /// throttles heavy writers: "Avoid getting throttled or blocked in SharePoint Online").
    /// `None` never throttles.
    pub list_write_throttle: Option<u64>,
    /// Usage reports conceal user, group and site names (`admin/reportSettings`
    /// `displayConcealedNames`). On by default, as in every tenant since September 2021
    /// ("Microsoft 365 Reports in the admin center", "Show user details in the reports": the
    /// names are concealed by default; an administrator may turn that off). Then the Teams
    /// report's team names and ids are unmatchable hashes.
    pub reports_concealed: bool,
    /// Contoso's group naming policy (its `Group.Unified` setting's
    /// `PrefixSuffixNamingRequirement` and `CustomBlockedWordsList`). Real tenants commonly
    /// have one ("Enforce a naming policy on Microsoft 365 groups in Microsoft Entra ID"), so
    /// the default has one; `None` leaves Contoso without a setting object (defaults apply).
    pub naming_policy: Option<NamingPolicy>,
    /// What `POST /groups` does with names that miss the prefix or suffix (graph/naming.rs).
    pub naming_on_create: graph::naming::NamingOnCreate,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            groups: 300,
            audit: audit::AuditOptions::default(),
            paging: Paging::default(),
            site_delay: chrono::TimeDelta::minutes(30),
            list_write_throttle: Some(250),
            reports_concealed: true,
            naming_policy: Some(NamingPolicy::default()),
            naming_on_create: graph::naming::NamingOnCreate::default(),
        }
    }
}

/// A tenant's group naming policy, as its `Group.Unified` setting holds it.
#[derive(Debug, Clone)]
pub struct NamingPolicy {
    /// `PrefixSuffixNamingRequirement`, e.g. `GRP_[Department]_[GroupName]_[CountryOrRegion]`.
    pub requirement: String,
    /// `CustomBlockedWordsList`: comma-separated words and phrases.
    pub blocked_words: String,
}

impl Default for NamingPolicy {
    fn default() -> Self {
        Self {
            requirement: "GRP_[Department]_[GroupName]_[CountryOrRegion]".into(),
            blocked_words: "CEO,Payroll,Top Secret".into(),
        }
    }
}

/// Graph's server-driven paging. Microsoft documents that a page may hold fewer items than
/// `$top` asks and that clients must follow `@odata.nextLink` ("Paging Microsoft Graph data in
/// your app"), but not Graph's own page sizes; the defaults are plausible, not documented,
/// and tests shrink them so that every pager is exercised.
#[derive(Debug, Clone)]
pub struct Paging {
    /// Objects in one page of `/groups/delta`.
    pub delta_page: usize,
    /// Member and owner references on one delta object; a group with more appears again
    /// (graph-groups.md §7: "the same group can appear in several pages").
    pub delta_relations_per_object: usize,
    /// Most list items in one page of `…/lists/{id}/items`, whatever `$top` asks.
    pub list_items_page: usize,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            delta_page: 100,
            delta_relations_per_object: 100,
            list_items_page: 200,
        }
    }
}

impl Paging {
    /// Small pages everywhere: every pager follows several links, and groups with a few
    /// members are split across delta objects and pages.
    pub fn small() -> Self {
        Self {
            delta_page: 7,
            delta_relations_per_object: 3,
            list_items_page: 4,
        }
    }
}

pub use audit::Activity;

/// A team's latest activity per source (`Sim::expected_teams_by_source_at`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamsBySource {
    pub report: Option<chrono::DateTime<chrono::Utc>>,
    pub audit: Option<chrono::DateTime<chrono::Utc>>,
}

/// A group's usage report counts over 7, 30 and 90 days (`Sim::expected_report_counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportCounts {
    /// Per period: [channel messages, meetings organized, reactions].
    pub teams: [[u64; 3]; 3],
    /// Per period: mail received by the group mailbox.
    pub mail: [u64; 3],
}

/// A running sim. Dropping it stops the server.
pub struct Sim {
    pub state: Arc<SimState>,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Sim {
    /// Starts the sim on `addr` (port 0 picks a free port) with the seeded directory.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Sim> {
        Self::start_with(addr, SimOptions::default()).await
    }

    /// Starts the sim with seeding options.
    pub async fn start_with(addr: SocketAddr, options: SimOptions) -> std::io::Result<Sim> {
        let concealed: std::collections::HashSet<uuid::Uuid> = if options.reports_concealed {
            directory::seed().iter().map(|t| t.id).collect()
        } else {
            Default::default()
        };
        let state = Arc::new(SimState {
            base_url: OnceLock::new(),
            clock: std::sync::Mutex::new(None),
            options,
            graph: Default::default(),
            feeds: Default::default(),
            concealed_reports: std::sync::Mutex::new(concealed),
            keys: RwLock::new(vec![Arc::new(SigningKey::generate())]),
            tenants: RwLock::new(directory::seed()),
            faults: Faults::default(),
            requests: Default::default(),
            by_path: Default::default(),
            graph_writes: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let _ = state.base_url.set(format!("http://{addr}"));

        let filter_state = state.clone();
        let routes = warp::any()
            .and(warp::method())
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(move |method, path: warp::path::FullPath, query, headers, body| {
                let state = filter_state.clone();
                let req = SimRequest {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    headers,
                    body,
                };
                async move { handle(&state, req).await }
            });
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(
            warp::serve(routes)
                .incoming(listener)
                .graceful(async {
                    let _ = rx.await;
                })
                .run(),
        );
        Ok(Sim {
            state,
            addr,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:<port>`: the value for GROUPMGR_AUTHORITY_HOST and the other endpoints.
    pub fn url(&self) -> String {
        self.state.base_url().to_string()
    }

    /// How many requests the sim has answered (for benchmarks and "exactly one request" tests).
    pub fn request_count(&self) -> u64 {
        self.state.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many requests went to paths matching `pred` (paths without query strings).
    pub fn requests_where(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.state
            .by_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(p, _)| pred(p))
            .map(|(_, n)| n)
            .sum()
    }

    /// Graph requests answered that would change something (not `GET`; `$batch` items one by
    /// one).
    pub fn graph_writes(&self) -> u64 {
        self.graph_writes_where(|_, _| true)
    }

    /// Graph writes whose method and path (below the version root) match `pred`.
    pub fn graph_writes_where(&self, pred: impl Fn(&str, &str) -> bool) -> u64 {
        self.state
            .graph_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((m, p), _)| pred(m, p))
            .map(|(_, n)| n)
            .sum()
    }

    /// Microsoft Graph requests answered (everything under `/v1.0/`).
    pub fn graph_requests(&self) -> u64 {
        self.requests_where(|p| p.starts_with("/v1.0/"))
    }

    /// Mints a v2 access token for the GroupMgr API, as the token endpoint would.
    pub fn token(&self, spec: &TokenSpec) -> String {
        login::mint_api_token(&self.state, spec)
    }

    /// A token for a seeded user of a seeded tenant, e.g. `user_token(CONTOSO, "admin")`.
    pub fn user_token(&self, tenant: uuid::Uuid, alias: &str) -> String {
        self.token(&TokenSpec::user(tenant, alias))
    }

    /// The claims the token endpoint would put in a v2 access token for this user, for tests
    /// that forge variations of them.
    pub fn api_claims(&self, spec: &TokenSpec) -> Value {
        login::api_claims(&self.state, spec)
    }

    /// Signs arbitrary header and claims with the current signing key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        keys::encode_jwt(&self.state.signing_key(), header, claims)
    }

    /// The current signing key's id.
    pub fn current_kid(&self) -> String {
        self.state.signing_key().kid.clone()
    }

    /// Rotates keys: a new key signs from now on; the old one stays published (as Entra does
    /// during a rollover) unless `retire_old` is set.
    pub fn rotate_signing_key(&self, retire_old: bool) {
        let mut keys = self.state.keys.write().unwrap_or_else(|p| p.into_inner());
        if retire_old {
            keys.clear();
        }
        keys.insert(0, Arc::new(SigningKey::generate()));
    }

    /// An app-only Graph token for a tenant, as client credentials would give GroupMgr.
    pub fn graph_app_token(&self, tenant: uuid::Uuid) -> String {
        login::mint_resource_token(&self.state, tenant, login::GRAPH_RESOURCE, None)
    }

    /// A delegated Graph token for a user, as on-behalf-of would give GroupMgr: with the
    /// consented scopes, or with `scopes`.
    pub fn graph_user_token(&self, tenant: uuid::Uuid, alias: &str, scopes: Option<&str>) -> String {
        let t = self.state.tenant(&tenant).expect("seeded tenant");
        let user = t
            .users
            .iter()
            .find(|u| u.upn.split('@').next() == Some(alias))
            .expect("seeded user");
        login::mint_resource_token_with(&self.state, tenant, login::GRAPH_RESOURCE, Some(user), scopes)
    }

    /// An app-only Management API token for a tenant.
    pub fn manage_app_token(&self, tenant: uuid::Uuid) -> String {
        login::mint_resource_token(&self.state, tenant, login::MANAGE_RESOURCE, None)
    }

    /// What the audit feed says about each group of a tenant right now (the test oracle):
    /// group → (last Teams activity, last SharePoint activity).
    pub fn expected_activity(&self, tenant: uuid::Uuid) -> Activity {
        self.expected_activity_at(tenant, self.state.now())
    }

    /// The oracle as it stood at `now` (content available by then).
    pub fn expected_activity_at(&self, tenant: uuid::Uuid, now: chrono::DateTime<chrono::Utc>) -> Activity {
        let t = self.state.tenant(&tenant).expect("seeded tenant");
        let host = format!("{}.sharepoint.com", t.name.to_lowercase());
        let opts = self.state.options.audit.clone();
        self.state
            .with_graph(&tenant, |g| {
                // Concealed report names: the Teams report cannot be matched to groups, so
                // Teams history older than the feed's 7 days is not knowable.
                if self.state.reports_concealed(&tenant) {
                    audit::feed_activity(g, &tenant, &host, &opts, now)
                } else {
                    audit::expected_activity(g, &tenant, &host, &opts, now)
                }
            })
            .unwrap_or_default()
    }

    /// On which days (since 1970-01-01, UTC) each group was active, per person (lower-case
    /// user principal name) and per signal, in the feed's content a reader saw that first
    /// listed it at `first_read` from `from` on, and at least once every 7 days until `now`
    /// (`audit::feed_days`).
    pub fn expected_feed_days(
        &self,
        tenant: uuid::Uuid,
        first_read: chrono::DateTime<chrono::Utc>,
        from: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> audit::FeedDays {
        let t = self.state.tenant(&tenant).expect("seeded tenant");
        let host = format!("{}.sharepoint.com", t.name.to_lowercase());
        let opts = self.state.options.audit.clone();
        self.state
            .with_graph(&tenant, |g| {
                audit::feed_days(g, &tenant, &host, &opts, first_read, from, now)
            })
            .unwrap_or_default()
    }

    /// The truth for successors of a group (issue 16): its members who are neither guests nor
    /// disabled, ranked by the days (of the 90 ending on `now`'s day) they were active in the
    /// group as the feed's content a reader saw says (`expected_feed_days`), then by their
    /// latest such day, then by id; at most `n`, and only people active at least once. Each
    /// with their days.
    pub fn expected_successors(
        &self,
        tenant: uuid::Uuid,
        first_read: chrono::DateTime<chrono::Utc>,
        from: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        n: usize,
    ) -> std::collections::HashMap<uuid::Uuid, Vec<(uuid::Uuid, u32)>> {
        let t = self.state.tenant(&tenant).expect("seeded tenant");
        let days = self.expected_feed_days(tenant, first_read, from, now).people;
        let today = now.timestamp().div_euclid(86_400);
        let members: Vec<(uuid::Uuid, Vec<uuid::Uuid>)> = self
            .state
            .with_graph(&tenant, |g| {
                g.groups
                    .values()
                    .filter(|x| x.is_unified() && x.deleted.is_none())
                    .map(|x| (x.id, x.members.iter().copied().collect()))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = std::collections::HashMap::new();
        for (group, ids) in members {
            let Some(active) = days.get(&group) else { continue };
            let mut ranked: Vec<(uuid::Uuid, u32, i64)> = ids
                .iter()
                .filter_map(|id| t.user_by_id(id))
                .filter(|u| u.enabled && !u.guest)
                .filter_map(|u| {
                    let d = active.get(&u.upn.to_lowercase())?;
                    let recent: Vec<i64> = d.iter().copied().filter(|d| *d > today - 90).collect();
                    Some((u.id, recent.len() as u32, *recent.last()?))
                })
                .collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
            ranked.truncate(n);
            if !ranked.is_empty() {
                out.insert(group, ranked.into_iter().map(|(id, days, _)| (id, days)).collect());
            }
        }
        out
    }

    /// What the audit feed says at `now` about each group's SharePoint activity by kind:
    /// [file edit, file view, page view, list item].
    pub fn expected_sharepoint_kinds_at(
        &self,
        tenant: uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> audit::KindActivity {
        let t = self.state.tenant(&tenant).expect("seeded tenant");
        let host = format!("{}.sharepoint.com", t.name.to_lowercase());
        let opts = self.state.options.audit.clone();
        self.state
            .with_graph(&tenant, |g| audit::feed_kinds(g, &tenant, &host, &opts, now))
            .unwrap_or_default()
    }

    /// The truth for "inactive under a lifecycle policy": the tenant's Microsoft 365 groups
    /// (not deleted) made at or before `cutoff` whose every counted signal's latest activity,
    /// as Microsoft made it available at any of `seen_at` (the times a sync read it), is at or
    /// before `cutoff` (or never was). Signals by the policy's names: `teams` (the Teams report
    /// and feed), `teamsReport` and `teamsAudit` (each alone), `sharePointFileEdit`,
    /// `sharePointFileView`, `sharePointPage`, `sharePointList` (the feed), `mail` (the groups
    /// activity report over 90 days).
    pub fn inactive_groups(
        &self,
        tenant: uuid::Uuid,
        seen_at: &[chrono::DateTime<chrono::Utc>],
        counted: &[&str],
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> std::collections::BTreeSet<uuid::Uuid> {
        use std::collections::HashMap;
        let mut last: HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>> = HashMap::new();
        let mut see = |g: uuid::Uuid, t: Option<chrono::DateTime<chrono::Utc>>| {
            if let Some(t) = t {
                let e = last.entry(g).or_insert(t);
                *e = (*e).max(t);
            }
        };
        for at in seen_at {
            if counted.contains(&"teams") {
                for (g, (teams, _)) in self.expected_activity_at(tenant, *at) {
                    see(g, teams);
                }
            }
            if counted.contains(&"teamsReport") || counted.contains(&"teamsAudit") {
                for (g, by) in self.expected_teams_by_source_at(tenant, *at) {
                    if counted.contains(&"teamsReport") {
                        see(g, by.report);
                    }
                    if counted.contains(&"teamsAudit") {
                        see(g, by.audit);
                    }
                }
            }
            if counted.contains(&"mail") {
                for (g, t) in self.expected_mail_activity_at(tenant, *at) {
                    see(g, Some(t));
                }
            }
            let kinds = [
                "sharePointFileEdit",
                "sharePointFileView",
                "sharePointPage",
                "sharePointList",
            ];
            for (g, by_kind) in self.expected_sharepoint_kinds_at(tenant, *at) {
                for (k, t) in kinds.iter().zip(by_kind) {
                    if counted.contains(k) {
                        see(g, t);
                    }
                }
            }
        }
        self.state
            .with_graph(&tenant, |t| {
                t.groups
                    .values()
                    .filter(|g| g.is_unified() && g.deleted.is_none() && g.created <= cutoff)
                    .filter(|g| last.get(&g.id).is_none_or(|l| *l <= cutoff))
                    .map(|g| g.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Each team's latest Teams activity at `at` as each source shows it: the Teams report
    /// read over 90 days (its `Last Activity Date`; nothing when names are concealed) and the
    /// audit feed's Teams records.
    pub fn expected_teams_by_source_at(
        &self,
        tenant: uuid::Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> std::collections::HashMap<uuid::Uuid, TeamsBySource> {
        let t = self.state.tenant(&tenant).expect("seeded tenant");
        let host = format!("{}.sharepoint.com", t.name.to_lowercase());
        let opts = self.state.options.audit.clone();
        let concealed = self.state.reports_concealed(&tenant);
        self.state
            .with_graph(&tenant, |g| {
                let both = audit::expected_activity(g, &tenant, &host, &opts, at);
                let feed = audit::feed_activity(g, &tenant, &host, &opts, at);
                g.groups
                    .values()
                    .filter(|x| x.team.is_some() && x.deleted.is_none())
                    .map(|x| {
                        let last = both.get(&x.id).and_then(|(t, _)| *t);
                        let report = (!concealed)
                            .then(|| graph::reports::teams_counts(x.id, last, at, 90).last_day)
                            .flatten()
                            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
                        let audit = feed.get(&x.id).and_then(|(t, _)| *t);
                        (x.id, TeamsBySource { report, audit })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the usage reports read at `at` count for each group over 7, 30 and 90 days, as
    /// GroupMgr can know it (nothing when report names are concealed): the refresh date (the
    /// day before `at`), and per group with anything in a period the Teams report's [channel
    /// messages, meetings organized, reactions] and the mail its mailbox received, per period.
    pub fn expected_report_counts(
        &self,
        tenant: uuid::Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> (chrono::NaiveDate, std::collections::HashMap<uuid::Uuid, ReportCounts>) {
        let refreshed = graph::reports::refresh_date(at);
        if self.state.reports_concealed(&tenant) {
            return (refreshed, Default::default());
        }
        let teams = self.expected_activity_at(tenant, at);
        let counts = self
            .state
            .with_graph(&tenant, |g| {
                let mut out = std::collections::HashMap::new();
                for x in g.groups.values().filter(|x| x.is_unified() && x.deleted.is_none()) {
                    let mut c = ReportCounts::default();
                    let last_teams = teams.get(&x.id).and_then(|(t, _)| *t).filter(|_| x.team.is_some());
                    let last_mail = audit::mail_history(x, at);
                    for (i, days) in [7, 30, 90].into_iter().enumerate() {
                        let t = graph::reports::teams_counts(x.id, last_teams, at, days);
                        c.teams[i] = [t.channel_messages(), t.meetings, t.reactions];
                        c.mail[i] = graph::reports::groups_row(x.id, last_mail, None, at, days).0;
                    }
                    if c != ReportCounts::default() {
                        out.insert(x.id, c);
                    }
                }
                out
            })
            .unwrap_or_default();
        (refreshed, counts)
    }

    /// What the Microsoft 365 groups activity report, read over 7, 30 and 90 days at `now`,
    /// says of each group's mailbox, as GroupMgr can know it (`reports::knowable_last_mail`):
    /// the day of its last mail, for groups whose mailbox received mail in the 90 days;
    /// nothing when report names are concealed.
    pub fn expected_mail_activity_at(
        &self,
        tenant: uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> std::collections::HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>> {
        if self.state.reports_concealed(&tenant) {
            return Default::default();
        }
        let t = self.state.tenant(&tenant).expect("seeded tenant");
        let host = format!("{}.sharepoint.com", t.name.to_lowercase());
        let opts = self.state.options.audit.clone();
        self.state
            .with_graph(&tenant, |g| {
                let feed = audit::feed_activity(g, &tenant, &host, &opts, now);
                g.groups
                    .values()
                    .filter(|x| x.is_unified() && x.deleted.is_none())
                    .filter_map(|x| {
                        let mail = audit::mail_history(x, now);
                        let files = feed.get(&x.id).and_then(|(_, sp)| *sp);
                        let day = graph::reports::knowable_last_mail(x.id, mail, files, now)?;
                        Some((x.id, day.and_time(chrono::NaiveTime::MIN).and_utc()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Requests to the Management API that lacked `PublisherIdentifier`.
    pub fn feed_requests_without_publisher(&self, tenant: uuid::Uuid) -> u64 {
        self.state
            .feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            .map_or(0, |f| f.missing_publisher)
    }

    /// The issuer Entra puts in v2 tokens of this tenant.
    pub fn issuer(&self, tenant: uuid::Uuid) -> String {
        format!("{}/{tenant}/v2.0", self.url())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// JSON response with the given status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Bytes::from(body.to_string()))
        .expect("static headers are valid")
}

async fn handle(state: &Arc<SimState>, req: SimRequest) -> warp::reply::Response {
    use warp::Reply as _;
    state.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    *state
        .by_path
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(req.path.clone())
        .or_default() += 1;
    let target = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    let graph = req.path.starts_with("/v1.0/");
    // Headers go out, then the body fails: the client sees the connection die.
    let dropped = || {
        let body = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by m365-sim"))
        });
        warp::reply::stream(body).into_response()
    };
    if let Some(fault) = state.faults.take(req.method.as_str(), &target) {
        match fault {
            FaultKind::Delay(d) => tokio::time::sleep(d).await,
            FaultKind::Hold(hold) => hold.wait().await,
            FaultKind::Drop => return dropped(),
            FaultKind::DropAnswer => {
                if graph {
                    let _done = graph::handle_http(state, &req.method, &req.path, &req.query, &req.headers, &req.body);
                }
                return dropped();
            }
            FaultKind::Status {
                status,
                code,
                retry_after,
            } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut resp = if graph && status == StatusCode::TOO_MANY_REQUESTS {
                    graph::GraphReply::throttled(retry_after.as_deref().unwrap_or("1")).into_response()
                } else if graph {
                    graph::GraphReply::error(status, &code, "Injected fault.").into_response()
                } else {
                    json_response(status, &json!({"error": {"code": code, "message": "Injected fault."}}))
                };
                if let Some(ra) = retry_after.and_then(|v| v.parse().ok()) {
                    resp.headers_mut().insert("retry-after", ra);
                }
                return resp.into_response();
            }
        }
    }
    if graph {
        return graph::handle_http(state, &req.method, &req.path, &req.query, &req.headers, &req.body).into_response();
    }
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    if matches!(segments.as_slice(), ["api", "v1.0" | "v1", _, "activity", ..]) {
        return audit::handle(state, req.method.as_str(), &segments, &req.query, &req.headers).into_response();
    }
    if let ["_reports", tenant, file] = segments.as_slice() {
        return graph::report_download(state, tenant, file).into_response();
    }
    let resp = match (req.method.as_str(), segments.as_slice()) {
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => login::openid_configuration(state, tenant),
        ("GET", [_tenant, "discovery", "v2.0", "keys"]) => login::jwks(state),
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => login::token_endpoint(state, tenant, &req),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": "NotFound", "message": format!("m365-sim does not serve {} {}", req.method, req.path)}}),
        ),
    };
    resp.into_response()
}
