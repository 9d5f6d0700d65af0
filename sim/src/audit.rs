//! The Office 365 Management Activity API (management-activity-api.md): subscriptions, content
//! listing with `NextPageUri` paging, content blobs that expire after 7 days, AF errors —
//! and audit records generated deterministically from the seeded tenant at any volume, so a
//! test can know the right answer without storing millions of records.
//!
//! Content: for each content type, `blobs_per_hour` blobs per hour of the last 7 days, each
//! with `records_per_blob` records. Like the real feed, records inside a blob are out of
//! order, some blobs become available hours after their events (late content), and each blob
//! repeats two records of the previous one (duplicates). Records cover group sites and teams,
//! and also what activity must ignore: other sites, OneDrive, system accounts, applications,
//! sign-ins without a team.

use std::collections::HashMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use warp::http::{HeaderMap, Response, StatusCode};

use crate::graph::model::{Lcg, TenantGraph};
use crate::login::MANAGE_RESOURCE;
use crate::{SimState, json_response};

/// How much audit content the sim makes.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub records_per_blob: usize,
    pub blobs_per_hour: usize,
    /// Entries per page of a content listing.
    pub page_size: usize,
    /// The tenant's users hold Audit (Premium) licences, so Teams logs its premium events too
    /// (MessageSent, MeetingDetail). Off by default: most tenants have Audit (Standard) only.
    pub premium_teams_events: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            records_per_blob: 20,
            blobs_per_hour: 1,
            page_size: 50,
            premium_teams_events: false,
        }
    }
}

/// The Teams operations the sim emits for a team's activity, by audit tier. Source: Purview
/// docs "Search the audit log for events in Microsoft Teams" (audit-teams-audit-log-events,
/// now the Teams section of audit-log-activities): rows marked "This event is only available
/// in Audit (Premium)" — MessageSent ("Posted a new message"), MeetingDetail,
/// MeetingParticipantDetail, MessageRead — are premium; ChannelAdded, MemberAdded, TabAdded,
/// MessageCreatedHasLink and MessageEditedHasLink carry no such mark.
const STANDARD_TEAM_OPERATIONS: [&str; 4] = ["ChannelAdded", "MemberAdded", "TabAdded", "MessageCreatedHasLink"];
const PREMIUM_TEAM_OPERATIONS: [&str; 4] = ["ChannelAdded", "MemberAdded", "TabAdded", "MessageSent"];

const SHAREPOINT: &str = "Audit.SharePoint";
const GENERAL: &str = "Audit.General";
const RETENTION_DAYS: i64 = 7;
/// Records of the previous blob that each blob repeats.
const DUPLICATES: usize = 2;

/// Group id → (last Teams activity, last SharePoint activity).
pub type Activity = HashMap<Uuid, (Option<DateTime<Utc>>, Option<DateTime<Utc>>)>;

/// A content blob's identity: content type, the hour its events belong to, its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlobId {
    sharepoint: bool,
    hour: i64,
    index: usize,
}

impl BlobId {
    fn content_id(&self) -> String {
        format!(
            "{}${}${}",
            if self.sharepoint { "sp" } else { "gen" },
            self.hour,
            self.index
        )
    }

    fn parse(s: &str) -> Option<Self> {
        let mut it = s.split('$');
        let sharepoint = match it.next()? {
            "sp" => true,
            "gen" => false,
            _ => return None,
        };
        Some(Self {
            sharepoint,
            hour: it.next()?.parse().ok()?,
            index: it.next()?.parse().ok()?,
        })
    }

    fn start(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.hour * 3600, 0).expect("in range")
    }

    fn seed(&self, tenant: &Uuid) -> u64 {
        (tenant.as_u128() as u64)
            ^ (self.hour as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ ((self.index as u64) << 1)
            ^ (self.sharepoint as u64)
    }

    /// When the blob became available: 30 minutes after its hour, or (one in five) hours later.
    fn created(&self, tenant: &Uuid) -> DateTime<Utc> {
        let mut rng = Lcg::new(self.seed(tenant) ^ 0xC0FFEE);
        let late = rng.below(5) == 0;
        self.start()
            + TimeDelta::minutes(30 + self.index as i64)
            + if late { TimeDelta::hours(3) } else { TimeDelta::zero() }
    }
}

/// The group a generated record is about, and whether it is Teams (else SharePoint).
#[derive(Debug, Clone)]
pub struct Truth {
    /// Index of the record in its blob (before shuffling).
    pub record: usize,
    pub group: Uuid,
    pub teams: bool,
    /// A SharePoint record's kind: 0 list item, 1 page view, 2 file edit, 3 file view.
    pub kind: usize,
    pub time: DateTime<Utc>,
    /// Who did it (`UserId`): a user principal name.
    pub user: String,
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Groups whose site sees user activity in the feed (three in four); the others only see
/// system accounts, so some groups are never active.
fn sharepoint_active(group: Uuid) -> bool {
    !group.as_u128().is_multiple_of(4)
}

/// Teams with activity in the feed (two in three): their records keep coming, so one may
/// happen to have none for some days and then some again.
pub fn teams_active(group: Uuid) -> bool {
    !(group.as_u128() >> 8).is_multiple_of(3)
}

/// Older Teams activity, before the feed's 7 days, that only the Teams activity report (up to
/// 180 days) knows: half of the teams without recent activity were active 10–79 days ago.
pub fn teams_history(group: Uuid, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let id = group.as_u128();
    (!teams_active(group) && (id >> 16).is_multiple_of(2)).then(|| {
        now.duration_trunc(TimeDelta::days(1)).expect("valid") - TimeDelta::days(10 + ((id >> 24) % 70) as i64)
    })
}

/// The last day a group's mailbox received mail (one group in three; 0–59 days ago, and not
/// after its mail stopped), as the Microsoft 365 groups activity report knows it. Groups
/// without a team whose site sees no user activity are then used by mail alone.
pub fn mail_history(group: &crate::graph::model::Group, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let id = group.id.as_u128();
    let day = |t: DateTime<Utc>| t.duration_trunc(TimeDelta::days(1)).expect("valid");
    let last = (id >> 32)
        .is_multiple_of(3)
        .then(|| day(now) - TimeDelta::days(((id >> 40) % 60) as i64))?;
    Some(group.mail_stopped.map_or(last, |s| last.min(day(s))))
}

/// The first `count` of a blob's own records, unshuffled, and (for the oracle) what each one
/// means. Records come from one random sequence, so a prefix is the same whatever `count`.
fn base(
    t: &TenantGraph,
    tenant: &Uuid,
    domain_host: &str,
    b: BlobId,
    opts: &AuditOptions,
    count: usize,
) -> (Vec<Value>, Vec<Truth>) {
    let mut rng = Lcg::new(b.seed(tenant));
    let groups: Vec<_> = t
        .groups
        .values()
        .filter(|g| g.is_unified() && g.deleted.is_none())
        .collect();
    let teams: Vec<_> = groups.iter().filter(|g| g.team.is_some()).collect();
    // A site sees activity once it exists (sites are provisioned after their group).
    let groups: Vec<_> = groups.iter().copied().filter(|g| g.site_ready <= b.start()).collect();
    let mail_domain = domain_host.replace(".sharepoint.com", ".onmicrosoft.com");
    let mut records = Vec::with_capacity(opts.records_per_blob + 2);
    let mut truth = Vec::new();
    for i in 0..opts.records_per_blob.min(count) {
        let time = b.start() + TimeDelta::seconds(rng.below(3600) as i64);
        let id = Uuid::from_u128(((b.seed(tenant) as u128) << 64) | (i as u128).wrapping_mul(2_654_435_761));
        let user = format!("user{}@{mail_domain}", rng.below(50));
        let roll = rng.below(100);
        // Who, when the record is a group's (one draw whatever the record, so that who the
        // members are changes no other record).
        let pick = rng.next_u64();
        let rec = if b.sharepoint {
            let g = (!groups.is_empty()).then(|| groups[rng.below(groups.len() as u64) as usize]);
            // One of each kind GroupMgr tells apart (Purview "Audit log activities": file and
            // page activities, list activities; RecordType 4 SharePoint for page views, 6
            // SharePointFileOperation, 36 SharePointListOperation).
            let kind = rng.below(4) as usize;
            let (record_type, item_type, op) = match kind {
                0 => (36, "ListItem", "ListItemUpdated"),
                1 => (4, "Page", "PageViewed"),
                2 => (6, "File", "FileModified"),
                _ => (6, "File", "FileAccessed"),
            };
            let mut r = json!({"Id": id.to_string(), "CreationTime": fmt_time(time), "RecordType": record_type, "ItemType": item_type,
                "Operation": op, "OrganizationId": tenant.to_string(), "UserType": 0, "UserId": user, "UserKey": "i:0h.f|membership|1003200096971f55@live.com",
                "Workload": "SharePoint", "ClientIP": format!("203.0.113.{}", rng.below(250)), "EventSource": "SharePoint",
                "SourceFileName": "Report.docx", "SourceRelativeUrl": "Shared Documents"});
            match (roll, g) {
                (0..=59, Some(g)) if sharepoint_active(g.id) => {
                    // One record in three of a team with a private or shared channel is on the
                    // channel's own site: still the team's group's activity.
                    let site = match g.channels().first() {
                        Some(ch) if i % 3 == 0 => ch.site.clone(),
                        _ => g.site.clone().unwrap_or_default(),
                    };
                    let user = actor(t, g, pick).unwrap_or(user);
                    r["UserId"] = json!(user);
                    truth.push(Truth {
                        record: i,
                        group: g.id,
                        teams: false,
                        kind,
                        time,
                        user,
                    });
                    r["SiteUrl"] = json!(format!("{site}/"));
                    r["ObjectId"] = json!(format!("{site}/Shared Documents/Report.docx"));
                }
                (60..=74, _) => r["SiteUrl"] = json!(format!("https://{domain_host}/sites/intranet/")),
                (75..=89, _) => {
                    r["Workload"] = json!("OneDrive");
                    r["SiteUrl"] = json!(format!(
                        "https://{}/personal/user_contoso_onmicrosoft_com/",
                        domain_host.replace(".sharepoint.com", "-my.sharepoint.com")
                    ));
                }
                (_, g) => {
                    r["UserId"] = json!("SHAREPOINT\\system");
                    r["SiteUrl"] = json!(g.and_then(|g| g.site.clone()).unwrap_or_default());
                }
            }
            r
        } else {
            let team = (!teams.is_empty()).then(|| teams[rng.below(teams.len() as u64) as usize]);
            let mut r = json!({"Id": id.to_string(), "CreationTime": fmt_time(time), "RecordType": 25, "OrganizationId": tenant.to_string(),
                "UserType": 0, "UserId": user, "UserKey": Uuid::from_u128(id.as_u128() ^ 1).to_string(), "Workload": "MicrosoftTeams", "Version": 1});
            match (roll, team) {
                (0..=49, Some(g)) if teams_active(g.id) => {
                    let user = actor(t, g, pick).unwrap_or(user);
                    r["UserId"] = json!(user);
                    truth.push(Truth {
                        record: i,
                        group: g.id,
                        teams: true,
                        kind: 0,
                        time,
                        user,
                    });
                    let operations = if opts.premium_teams_events {
                        PREMIUM_TEAM_OPERATIONS
                    } else {
                        STANDARD_TEAM_OPERATIONS
                    };
                    r["Operation"] = json!(operations[rng.below(4) as usize]);
                    r["TeamGuid"] = json!(g.team.clone());
                    r["TeamName"] = json!(g.display_name);
                    r["MessageURLs"] =
                        json!(["https://teams.microsoft.com/l/message/19:secret@thread.skype/1616965872395"]);
                    r["HostedContents"] = json!([{"Id": "aGlkZGVuIGNvbnRlbnQ="}]);
                }
                (50..=59, Some(g)) if teams_active(g.id) => {
                    let user = actor(t, g, pick).unwrap_or(user);
                    r["UserId"] = json!(user);
                    truth.push(Truth {
                        record: i,
                        group: g.id,
                        teams: true,
                        kind: 0,
                        time,
                        user,
                    });
                    if opts.premium_teams_events {
                        // A meeting's details name the group, not the team's thread.
                        r["Operation"] = json!("MeetingDetail");
                        r["AADGroupId"] = json!(g.id.to_string());
                    } else {
                        r["Operation"] = json!("MessageEditedHasLink");
                        r["TeamGuid"] = json!(g.team.clone());
                        r["TeamName"] = json!(g.display_name);
                    }
                }
                (60..=79, _) => {
                    r["Operation"] = json!("TeamsSessionStarted");
                    r["ObjectId"] = json!("Unknown (Unknown)");
                }
                (80..=89, Some(g)) => {
                    r["Operation"] = json!("TeamSettingChanged");
                    r["UserId"] = json!("Application");
                    r["UserType"] = json!(5);
                    r["TeamGuid"] = json!(g.team.clone());
                }
                _ => {
                    r["Workload"] = json!("PowerBI");
                    r["RecordType"] = json!(20);
                    r["Operation"] = json!("ViewReport");
                }
            }
            r
        };
        records.push(rec);
    }
    (records, truth)
}

/// Who did a group's activity (`UserId`: "The UPN of the user who performed the action",
/// office-365-management-activity-api-schema, "Common schema"). Nine records in ten are by a
/// member, some members far more active than others: in an order of the group's own, the
/// first does one in two of the members' records, the second one in four, and so on. One in
/// ten is by someone of the tenant who is not a member (a public group's site and team are
/// open to the organisation). Guests and people who left are members like any other, so
/// their activity is in the feed too. `None` for a tenant without people.
fn actor(t: &TenantGraph, g: &crate::graph::model::Group, pick: u64) -> Option<String> {
    let mut members: Vec<Uuid> = g.members.iter().copied().collect();
    let order = |u: &Uuid| (u.as_u128() ^ g.id.as_u128()).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    members.sort_by_key(order);
    if pick.is_multiple_of(10) || members.is_empty() {
        let others: Vec<&String> = t
            .upns
            .iter()
            .filter(|(id, _)| !g.members.contains(id))
            .map(|(_, upn)| upn)
            .collect();
        if !others.is_empty() {
            return Some(others[(pick / 10) as usize % others.len()].clone());
        }
    }
    let rank = ((pick >> 4).trailing_ones() as usize).min(members.len().checked_sub(1)?);
    t.upns.get(&members[rank]).cloned()
}

/// Days (since 1970-01-01, UTC) of activity in the feed: per group and person (lower-case
/// user principal name), and per group and signal (Teams, SharePoint file edit, file view,
/// page, list, mail — the last never in the feed).
#[derive(Debug, Default)]
pub struct FeedDays {
    pub people: HashMap<Uuid, HashMap<String, std::collections::BTreeSet<i64>>>,
    pub signals: HashMap<Uuid, [std::collections::BTreeSet<i64>; 6]>,
}

/// Who was active in each group on which days (UTC, days since 1970-01-01), by user
/// principal name, and each signal's days, as the feed's records say in the blobs a reader
/// saw: its first listing at `first_read` (which lists only the hours after the one 7 days
/// back) asked for content from `from` on, and it listed the feed at least once every 7 days
/// until `now` — the blobs of those hours that became available from `from` to `now` (the
/// repeats of earlier records included).
#[allow(clippy::too_many_arguments)]
pub fn feed_days(
    t: &TenantGraph,
    tenant: &Uuid,
    host: &str,
    opts: &AuditOptions,
    first_read: DateTime<Utc>,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> FeedDays {
    let mut out = FeedDays::default();
    let first = *live_hours(first_read).start();
    let last = *live_hours(now).end();
    for sharepoint in [true, false] {
        for hour in first..=last {
            for index in 0..opts.blobs_per_hour {
                let b = BlobId {
                    sharepoint,
                    hour,
                    index,
                };
                if b.created(tenant) > now || b.created(tenant) < from {
                    continue;
                }
                let previous = previous(b, opts);
                let repeated = base(t, tenant, host, previous, opts, DUPLICATES)
                    .1
                    .into_iter()
                    .filter(|t| t.record < DUPLICATES);
                for truth in base(t, tenant, host, b, opts, usize::MAX).1.into_iter().chain(repeated) {
                    let day = truth.time.timestamp().div_euclid(86_400);
                    out.people
                        .entry(truth.group)
                        .or_default()
                        .entry(truth.user.to_lowercase())
                        .or_default()
                        .insert(day);
                    // Record kinds 0 list, 1 page, 2 edit, 3 view → signals (Teams, file edit,
                    // file view, page, list, mail).
                    let signal = if truth.teams { 0 } else { [4, 3, 1, 2][truth.kind] };
                    out.signals.entry(truth.group).or_default()[signal].insert(day);
                }
            }
        }
    }
    out
}

fn previous(b: BlobId, opts: &AuditOptions) -> BlobId {
    if b.index > 0 {
        BlobId {
            index: b.index - 1,
            ..b
        }
    } else {
        BlobId {
            hour: b.hour - 1,
            index: opts.blobs_per_hour.max(1) - 1,
            ..b
        }
    }
}

/// A blob as served: its records shuffled, plus two records of the previous blob again.
fn blob_records(t: &TenantGraph, tenant: &Uuid, host: &str, b: BlobId, opts: &AuditOptions) -> Vec<Value> {
    let (mut records, _) = base(t, tenant, host, b, opts, usize::MAX);
    let mut rng = Lcg::new(b.seed(tenant) ^ 0x5EED);
    for i in (1..records.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        records.swap(i, j);
    }
    let (prev, _) = base(t, tenant, host, previous(b, opts), opts, DUPLICATES);
    records.extend(prev);
    records
}

/// The hours (as hour numbers since the epoch) whose content is still retrievable.
fn live_hours(now: DateTime<Utc>) -> std::ops::RangeInclusive<i64> {
    let first = (now - TimeDelta::days(RETENTION_DAYS))
        .duration_trunc(TimeDelta::hours(1))
        .expect("valid")
        .timestamp()
        / 3600
        + 1;
    let last = now.timestamp() / 3600 - 1;
    first..=last
}

fn all_blobs(tenant: &Uuid, sharepoint: bool, now: DateTime<Utc>, opts: &AuditOptions) -> Vec<(BlobId, DateTime<Utc>)> {
    let mut out = Vec::new();
    for hour in live_hours(now) {
        for index in 0..opts.blobs_per_hour {
            let b = BlobId {
                sharepoint,
                hour,
                index,
            };
            let created = b.created(tenant);
            if created <= now {
                out.push((b, created));
            }
        }
    }
    out
}

/// What Microsoft knows about each group's latest Teams and SharePoint activity: the feed's
/// records and the older Teams history (the Teams report's source).
pub fn expected_activity(
    t: &TenantGraph,
    tenant: &Uuid,
    host: &str,
    opts: &AuditOptions,
    now: DateTime<Utc>,
) -> Activity {
    let mut out = Activity::new();
    for g in t.groups.values().filter(|g| g.team.is_some() && g.deleted.is_none()) {
        if let Some(h) = teams_history(g.id, now) {
            out.entry(g.id).or_default().0 = Some(h);
        }
    }
    add_feed_activity(&mut out, t, tenant, host, opts, now);
    out
}

/// What the audit feed alone says about each group (its 7 days).
pub fn feed_activity(t: &TenantGraph, tenant: &Uuid, host: &str, opts: &AuditOptions, now: DateTime<Utc>) -> Activity {
    let mut out = Activity::new();
    add_feed_activity(&mut out, t, tenant, host, opts, now);
    out
}

fn add_feed_activity(
    out: &mut Activity,
    t: &TenantGraph,
    tenant: &Uuid,
    host: &str,
    opts: &AuditOptions,
    now: DateTime<Utc>,
) {
    for sharepoint in [true, false] {
        for (b, _) in all_blobs(tenant, sharepoint, now, opts) {
            // A blob's own records, and the two of the previous blob it repeats — which may
            // not itself be available yet (late content).
            let repeated = base(t, tenant, host, previous(b, opts), opts, DUPLICATES)
                .1
                .into_iter()
                .filter(|t| t.record < DUPLICATES);
            for truth in base(t, tenant, host, b, opts, usize::MAX).1.into_iter().chain(repeated) {
                let e = out.entry(truth.group).or_default();
                let slot = if truth.teams { &mut e.0 } else { &mut e.1 };
                *slot = Some(slot.map_or(truth.time, |s: DateTime<Utc>| s.max(truth.time)));
            }
        }
    }
}

/// Group id → its latest SharePoint activity of each kind the feed holds: [file edit, file
/// view, page view, list item].
pub type KindActivity = HashMap<Uuid, [Option<DateTime<Utc>>; 4]>;

/// What the audit feed says about each group's SharePoint activity by kind.
pub fn feed_kinds(t: &TenantGraph, tenant: &Uuid, host: &str, opts: &AuditOptions, now: DateTime<Utc>) -> KindActivity {
    let mut out = KindActivity::new();
    for (b, _) in all_blobs(tenant, true, now, opts) {
        let repeated = base(t, tenant, host, previous(b, opts), opts, DUPLICATES)
            .1
            .into_iter()
            .filter(|t| t.record < DUPLICATES);
        for truth in base(t, tenant, host, b, opts, usize::MAX).1.into_iter().chain(repeated) {
            // Record kinds 0 list, 1 page, 2 edit, 3 view → [edit, view, page, list].
            let slot = [3, 2, 0, 1][truth.kind];
            let e = &mut out.entry(truth.group).or_default()[slot];
            *e = Some(e.map_or(truth.time, |s| s.max(truth.time)));
        }
    }
    out
}

/// Management API state of one tenant.
#[derive(Debug, Default)]
pub struct FeedState {
    pub subscriptions: HashMap<String, bool>,
    /// Requests that came without `PublisherIdentifier` (GroupMgr must send it on every call).
    pub missing_publisher: u64,
}

fn af(status: StatusCode, code: &str, message: &str) -> Response<bytes::Bytes> {
    json_response(status, &json!({"error": {"code": code, "message": message}}))
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

/// `/api/v1.0/{tenant}/activity/feed/...`
pub fn handle(
    state: &SimState,
    method: &str,
    segs: &[&str],
    query: &str,
    headers: &HeaderMap,
) -> Response<bytes::Bytes> {
    let q = crate::graph::parse_query(query);
    let Some(tenant) = segs.get(2).and_then(|t| t.parse::<Uuid>().ok()) else {
        return af(
            StatusCode::BAD_REQUEST,
            "AF20013",
            "The tenant ID passed in the URL is not a valid GUID.",
        );
    };
    // Authorisation: a token for the Management API, with ActivityFeed.Read, for this tenant.
    let claims = match crate::graph::verify_token(state, headers, MANAGE_RESOURCE) {
        Ok(c) => c,
        Err(_) => {
            return af(
                StatusCode::UNAUTHORIZED,
                "AF10001",
                "Authorization has been denied for this request.",
            );
        }
    };
    if claims["tid"].as_str() != Some(tenant.to_string().as_str()) {
        return af(
            StatusCode::BAD_REQUEST,
            "AF20010",
            "The tenant ID passed in the URL does not match the tenant ID passed in the access token.",
        );
    }
    if !claims["roles"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x == "ActivityFeed.Read"))
    {
        return af(
            StatusCode::FORBIDDEN,
            "AF10001",
            "The permission set (ActivityFeed.Read) sent in the request does not include the expected permission.",
        );
    }
    let Some(sim_tenant) = state.tenant(&tenant) else {
        return af(StatusCode::BAD_REQUEST, "AF20011", "The tenant does not exist.");
    };
    let publisher_ok = q.keys().any(|k| k.eq_ignore_ascii_case("PublisherIdentifier"));
    let mut feeds = state.feeds.lock().unwrap_or_else(|p| p.into_inner());
    let feed = feeds.entry(tenant).or_default();
    if !publisher_ok {
        feed.missing_publisher += 1;
    }
    let ct = q.get("contentType").cloned().unwrap_or_default();
    let valid_ct = |c: &str| {
        [
            SHAREPOINT,
            GENERAL,
            "Audit.Exchange",
            "Audit.AzureActiveDirectory",
            "DLP.All",
        ]
        .contains(&c)
    };
    match (method, &segs[3..]) {
        ("POST", ["activity", "feed", "subscriptions", "start"]) => {
            if !valid_ct(&ct) {
                return af(StatusCode::BAD_REQUEST, "AF20020", "The content type is not valid.");
            }
            // Starting an enabled subscription is refused with AF20024. The reference's error
            // table (office-365-management-activity-api-reference, "Errors") stops at AF20023;
            // 400 with this code and message is what public clients handle as "already
            // enabled" (Wazuh's office365 module tests it, among others).
            if feed.subscriptions.get(&ct) == Some(&true) {
                return af(
                    StatusCode::BAD_REQUEST,
                    "AF20024",
                    "The subscription is already enabled. No property change.",
                );
            }
            feed.subscriptions.insert(ct.clone(), true);
            json_response(StatusCode::OK, &json!({"contentType": ct, "status": "enabled", "webhook": null}))
        }
        ("POST", ["activity", "feed", "subscriptions", "stop"]) => {
            feed.subscriptions.insert(ct, false);
            json_response(StatusCode::OK, &json!(null))
        }
        ("GET", ["activity", "feed", "subscriptions", "list"]) => json_response(
            StatusCode::OK,
            &json!(feed.subscriptions.iter().map(|(c, on)| json!({"contentType": c, "status": if *on { "enabled" } else { "disabled" }, "webhook": null})).collect::<Vec<_>>()),
        ),
        ("GET", ["activity", "feed", "subscriptions", "content"]) => {
            if !valid_ct(&ct) {
                return af(StatusCode::BAD_REQUEST, "AF20020", "The content type is not valid.");
            }
            if feed.subscriptions.get(&ct) != Some(&true) {
                return af(StatusCode::BAD_REQUEST, "AF20022", "No subscription found for the specified content type.");
            }
            let now = state.now();
            let (start, end) = match (q.get("startTime").and_then(|s| parse_time(s)), q.get("endTime").and_then(|s| parse_time(s))) {
                (Some(s), Some(e)) => (s, e),
                (None, None) if !q.contains_key("startTime") && !q.contains_key("endTime") => (now - TimeDelta::hours(24), now),
                _ => return af(StatusCode::BAD_REQUEST, "AF20030", "Start time and end time must both be specified (or both omitted) and they must be more than zero minutes apart and no more than 24 hours apart with the start time no more than 7 days in the past."),
            };
            if end <= start || end - start > TimeDelta::hours(24) || start < now - TimeDelta::days(RETENTION_DAYS) {
                return af(StatusCode::BAD_REQUEST, "AF20030", "Start time and end time must both be specified (or both omitted) and they must be more than zero minutes apart and no more than 24 hours apart with the start time no more than 7 days in the past.");
            }
            let sharepoint = ct == SHAREPOINT;
            let opts = state.options.audit.clone();
            let mut entries: Vec<(BlobId, DateTime<Utc>)> = if ct == SHAREPOINT || ct == GENERAL {
                all_blobs(&tenant, sharepoint, now, &opts).into_iter().filter(|(_, c)| *c >= start && *c < end).collect()
            } else {
                Vec::new()
            };
            // Listed in an order of the service's choosing, not by time.
            entries.sort_by_key(|(b, _)| (b.hour * 7919 + b.index as i64) % 97);
            let offset = q.get("nextPage").and_then(|p| p.parse::<usize>().ok()).unwrap_or(0);
            let end_idx = (offset + opts.page_size).min(entries.len());
            let base = state.base_url();
            let body: Vec<Value> = entries[offset.min(entries.len())..end_idx]
                .iter()
                .map(|(b, created)| {
                    json!({
                        "contentType": ct,
                        "contentId": b.content_id(),
                        "contentUri": format!("{base}/api/v1.0/{tenant}/activity/feed/audit/{}", b.content_id()),
                        "contentCreated": format!("{}Z", created.format("%Y-%m-%dT%H:%M:%S%.3f")),
                        "contentExpiration": format!("{}Z", (*created + TimeDelta::days(RETENTION_DAYS)).format("%Y-%m-%dT%H:%M:%S%.3f")),
                    })
                })
                .collect();
            let mut resp = json_response(StatusCode::OK, &json!(body));
            if end_idx < entries.len() {
                let next = format!(
                    "{base}/api/v1/{tenant}/activity/feed/subscriptions/content?contentType={ct}&startTime={}&endTime={}&nextPage={end_idx}",
                    q.get("startTime").cloned().unwrap_or_default(),
                    q.get("endTime").cloned().unwrap_or_default()
                );
                resp.headers_mut().insert("NextPageUri", next.parse().expect("ascii"));
            }
            resp
        }
        ("GET", ["activity", "feed", "audit", content_id]) => {
            let Some(b) = BlobId::parse(content_id) else {
                return af(StatusCode::BAD_REQUEST, "AF20052", "Content ID in the URL is invalid.");
            };
            let now = state.now();
            if b.created(&tenant) > now {
                return af(StatusCode::BAD_REQUEST, "AF20050", "The specified content does not exist.");
            }
            if b.created(&tenant) < now - TimeDelta::days(RETENTION_DAYS) {
                return af(StatusCode::BAD_REQUEST, "AF20051", "Content requested with the key {0} has already expired. Content older than 7 days cannot be retrieved.");
            }
            drop(feeds);
            let opts = state.options.audit.clone();
            let host = format!("{}.sharepoint.com", sim_tenant.name.to_lowercase());
            let records = state
                .with_graph(&tenant, |t| blob_records(t, &tenant, &host, b, &opts))
                .unwrap_or_default();
            json_response(StatusCode::OK, &Value::Array(records))
        }
        _ => af(StatusCode::NOT_FOUND, "AF20001", "Resource not found."),
    }
}

/// Audit content as the feed serves it, for benchmarks that process blobs without HTTP.
pub struct Sample {
    /// Content blobs (JSON arrays), alternately `Audit.SharePoint` and `Audit.General`.
    pub blobs: Vec<Vec<u8>>,
    /// Each group's id, site URL and team thread id, as GroupMgr's list holds them.
    pub groups: Vec<(Uuid, Option<String>, Option<String>)>,
}

/// `blobs` consecutive blobs of Contoso seeded with `groups` groups, going back hour by hour
/// from the hour before `now`. The records are those the sim serves (ignored kinds, repeats
/// and disorder included).
pub fn sample(groups: usize, blobs: usize, opts: &AuditOptions, now: DateTime<Utc>) -> Sample {
    let tenant = crate::directory::seed()
        .into_iter()
        .find(|t| t.id == crate::directory::CONTOSO)
        .expect("Contoso is seeded");
    let graph = crate::graph::model::seed(&tenant, groups);
    let host = format!("{}.sharepoint.com", tenant.name.to_lowercase());
    let per_hour = opts.blobs_per_hour.max(1);
    let last_hour = now.timestamp() / 3600 - 1;
    let blobs = (0..blobs)
        .map(|k| {
            let slot = k / 2;
            let b = BlobId {
                sharepoint: k % 2 == 0,
                hour: last_hour - (slot / per_hour) as i64,
                index: slot % per_hour,
            };
            serde_json::to_vec(&blob_records(&graph, &tenant.id, &host, b, opts)).expect("JSON values serialise")
        })
        .collect();
    let groups = graph
        .groups
        .values()
        .filter(|g| g.is_unified() && g.deleted.is_none())
        .map(|g| (g.id, g.site.clone(), g.team.clone()))
        .collect();
    Sample { blobs, groups }
}
