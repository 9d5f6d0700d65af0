//! Groups, owners/members, delta, restore and teams (graph-groups.md §1–7).

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Map, Value, json};
use uuid::Uuid;
use warp::http::StatusCode;

use super::model::{ChangeKind, Group, TenantGraph, fmt_time};
use super::{GraphCaller, GraphReply, GraphRequest, absolute, naming, page, select, teams};
use crate::SimState;
use crate::directory::SimUser;

const READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
    "GroupMember.ReadWrite.All",
];
const WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
const MEMBERSHIP_WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

fn context(state: &SimState, what: &str) -> String {
    format!("{}/v1.0/$metadata#{what}", state.base_url())
}

fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::try_parse(raw).ok()
}

pub fn handle(state: &SimState, req: &GraphRequest<'_>, segs: &[&str]) -> GraphReply {
    let mut all = state.graph.tenants.lock().unwrap_or_else(|p| p.into_inner());
    let tenant = state.ensure_graph(&mut all, &req.caller.tenant);
    let c = req.caller;
    if segs.first() == Some(&"teams") {
        // Archive operations whose time has come show in the team (teams.rs).
        teams::settle(tenant, state.now());
    }
    match (req.method.as_str(), segs) {
        ("GET", ["groups"]) => guard(c, READ).unwrap_or_else(|| list(state, tenant, req)),
        ("POST", ["groups"]) => guard(c, &["Group.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"]).unwrap_or_else(|| create(state, tenant, req)),
        ("GET", ["groups", "delta"]) => guard(c, READ).unwrap_or_else(|| delta(state, tenant, req)),
        ("GET", ["groups", id]) => guard(c, READ).unwrap_or_else(|| match parse_id(id).and_then(|i| tenant.live_group(&i)) {
            Some(g) => GraphReply::ok(with_context(g.view(c.tenant.id, &c.tenant.domain, req.q("$select")), &context(state, "groups/$entity"))),
            None => GraphReply::not_found(id),
        }),
        ("PATCH", ["groups", id]) => guard(c, WRITE).unwrap_or_else(|| update(tenant, req, id)),
        ("DELETE", ["groups", id]) => guard(c, WRITE).unwrap_or_else(|| delete(state, tenant, req, id)),
        ("GET", ["groups", id, rel @ ("owners" | "members")]) => guard(c, READ).unwrap_or_else(|| list_relation(state, tenant, req, id, rel)),
        // The OData cast to users (api/group-list-members: "GET /groups/{id}/members/
        // microsoft.graph.user"): every member the sim has is a user, so the same list.
        ("GET", ["groups", id, rel @ ("owners" | "members"), "microsoft.graph.user"]) => {
            guard(c, READ).unwrap_or_else(|| list_relation(state, tenant, req, id, rel))
        }
        ("GET", ["groups", id, rel @ ("owners" | "members"), "$count"]) => guard(c, READ).unwrap_or_else(|| {
            if req.header("consistencylevel").is_none_or(|v| !v.eq_ignore_ascii_case("eventual")) {
                return GraphReply::error(StatusCode::BAD_REQUEST, "Request_BadRequest", "Count is not currently supported without the ConsistencyLevel: eventual header.");
            }
            match parse_id(id).and_then(|i| tenant.live_group(&i)) {
                Some(g) if *rel == "members" && members_hidden_from(g, c) => hidden_members(),
                Some(g) => GraphReply::text(if *rel == "owners" { g.owners.len() } else { g.members.len() }.to_string()),
                None => GraphReply::not_found(id),
            }
        }),
        ("POST", ["groups", id, rel @ ("owners" | "members"), "$ref"]) => guard(c, MEMBERSHIP_WRITE).unwrap_or_else(|| add_relation(tenant, req, id, rel)),
        ("DELETE", ["groups", id, rel @ ("owners" | "members"), member, "$ref"]) => {
            guard(c, MEMBERSHIP_WRITE).unwrap_or_else(|| remove_relation(tenant, req, id, rel, member))
        }
        ("POST", ["directoryObjects", "validateProperties"]) => {
            let allowed: &[&str] = if c.user.is_some() {
                &["Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"]
            } else {
                &["Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"]
            };
            guard(c, allowed).unwrap_or_else(|| validate_properties(tenant, req))
        }
        ("POST", ["directory", "deletedItems", id, "restore"]) => guard(c, WRITE).unwrap_or_else(|| restore(state, tenant, req, id)),
        ("GET", ["groups", id, "sites", "root"]) => guard(c, &["Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All"]).unwrap_or_else(|| {
            // A new group's site is provisioned asynchronously: until it is, Graph answers 404.
            let now = state.now();
            match parse_id(id)
                .and_then(|i| tenant.live_group(&i))
                .filter(|g| g.site_ready <= now)
                .and_then(|g| g.site.clone().map(|s| (g.id, s)))
            {
                Some((gid, site)) => GraphReply::ok(json!({
                    "@odata.context": context(state, "sites/$entity"),
                    "id": format!("{},{},{}", tenant.hostname, m365_site_id(&gid), m365_web_id(&gid)),
                    "webUrl": site,
                    "displayName": site.rsplit('/').next().unwrap_or_default(),
                    "siteCollection": {"hostname": tenant.hostname},
                })),
                None => GraphReply::error(StatusCode::NOT_FOUND, "itemNotFound", "Requested site could not be found"),
            }
        }),
        // List channels (Graph docs: api-reference channel-list; `$filter` on membershipType,
        // application permission Channel.ReadBasic.All among others).
        ("GET", ["teams", id, "channels"]) => guard(c, &["Channel.ReadBasic.All", "ChannelSettings.Read.All", "ChannelSettings.ReadWrite.All", "Group.Read.All", "Directory.Read.All", "Group.ReadWrite.All"])
            .unwrap_or_else(|| match parse_id(id).and_then(|i| tenant.live_group(&i)).filter(|g| g.team.is_some()) {
                Some(g) => {
                    let mut all = vec![json!({"id": g.team, "displayName": "General", "membershipType": "standard"})];
                    all.extend(g.channels().into_iter().map(|ch| json!({"id": ch.id, "displayName": ch.name, "membershipType": ch.membership})));
                    let filter = req.q("$filter").unwrap_or_default();
                    let value: Vec<Value> = all
                        .into_iter()
                        .filter(|ch| match filter.split_once(" eq ").or_else(|| filter.split_once(" ne ")) {
                            Some((_, v)) => {
                                let same = ch["membershipType"] == v.trim_matches('\'');
                                if filter.contains(" eq ") { same } else { !same }
                            }
                            None => true,
                        })
                        .collect();
                    GraphReply::ok(json!({"@odata.context": context(state, "teams('…')/channels"), "@odata.count": value.len(), "value": value}))
                }
                None => GraphReply::not_found(id),
            }),
        // A channel's files folder (api-reference channel-get-filesfolder): a driveItem in the
        // channel's document library; private and shared channels' libraries live in their
        // own sites. Application permissions Files.Read.All or Sites.Read.All.
        ("GET", ["teams", id, "channels", channel, "filesFolder"]) => guard(c, &["Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All"])
            .unwrap_or_else(|| {
                let Some(g) = parse_id(id).and_then(|i| tenant.live_group(&i)).filter(|g| g.team.is_some()) else {
                    return GraphReply::not_found(id);
                };
                let (name, site) = if g.team.as_deref() == Some(*channel) {
                    ("General".to_string(), g.site.clone().unwrap_or_default())
                } else if let Some(ch) = g.channels().into_iter().find(|ch| ch.id == *channel) {
                    (ch.name, ch.site)
                } else {
                    return GraphReply::error(StatusCode::NOT_FOUND, "NotFound", "Channel not found");
                };
                GraphReply::ok(json!({
                    "@odata.context": context(state, "teams('…')/channels('…')/filesFolder/$entity"),
                    "id": format!("01{}", &g.id.simple().to_string()[..30].to_uppercase()),
                    "name": name,
                    "webUrl": format!("{site}/Shared%20Documents/{name}"),
                    "parentReference": {"driveType": "documentLibrary"},
                    "folder": {"childCount": 0},
                }))
            }),
        // Archive and unarchive (teams.rs, with their sources).
        ("POST", ["teams", id, action @ ("archive" | "unarchive")]) => {
            guard(c, teams::ARCHIVE_PERMISSIONS).unwrap_or_else(|| teams::change(state, tenant, req, id, *action == "archive"))
        }
        ("GET", ["teams", id, "operations", op]) => guard(c, &["Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All", "Group.Read.All", "Directory.Read.All", "Group.ReadWrite.All"])
            .unwrap_or_else(|| teams::operation(state, tenant, id, op)),
        ("GET", ["teams", id]) => guard(c, &["Team.ReadBasic.All", "TeamSettings.Read.All", "Group.Read.All", "Directory.Read.All", "Group.ReadWrite.All"])
            .unwrap_or_else(|| match parse_id(id).and_then(|i| tenant.live_group(&i)) {
                Some(g) if g.team.is_some() => GraphReply::ok(json!({
                    "@odata.context": context(state, "teams/$entity"),
                    "id": g.id.to_string(),
                    "createdDateTime": fmt_time(g.created),
                    "displayName": g.display_name,
                    "description": g.description,
                    "internalId": g.team,
                    "classification": null,
                    "specialization": "none",
                    "visibility": g.visibility.as_deref().map(str::to_lowercase),
                    "webUrl": format!("https://teams.microsoft.com/l/team/{}/conversations?groupId={}&tenantId={}", percent_encoding::utf8_percent_encode(g.team.as_deref().unwrap_or_default(), percent_encoding::NON_ALPHANUMERIC), g.id, c.tenant.id),
                    "isArchived": g.archived,
                    "isMembershipLimitedToOwners": false,
                })),
                _ => GraphReply::error(StatusCode::NOT_FOUND, "NotFound", "No team found with Group Id"),
            }),
        _ => GraphReply::error(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."),
    }
}

fn m365_site_id(group: &Uuid) -> Uuid {
    crate::directory::stable_id("groupsite", &group.to_string())
}

fn m365_web_id(group: &Uuid) -> Uuid {
    crate::directory::stable_id("groupweb", &group.to_string())
}

fn with_context(mut v: Value, ctx: &str) -> Value {
    if let Value::Object(o) = &mut v {
        let mut out = Map::new();
        out.insert("@odata.context".into(), json!(ctx));
        out.extend(std::mem::take(o));
        *o = out;
    }
    v
}

/// Refuses a caller that holds none of `permissions`.
fn guard(c: &GraphCaller, permissions: &[&str]) -> Option<GraphReply> {
    (!c.has_any(permissions)).then(GraphReply::denied)
}

/// Delegated callers may change a group only if they own it or are a directory admin.
fn may_manage(c: &GraphCaller, g: &Group) -> bool {
    match c.user {
        None => true,
        Some(u) => g.owners.contains(&u) || c.is_directory_admin(),
    }
}

fn list(state: &SimState, t: &TenantGraph, req: &GraphRequest<'_>) -> GraphReply {
    let domain = &req.caller.tenant.domain;
    let mut groups: Vec<&Group> = t.groups.values().filter(|g| g.deleted.is_none()).collect();
    if let Some(filter) = req.q("$filter") {
        let f = filter.replace(' ', "");
        if f == "groupTypes/any(c:ceq'Unified')" {
            groups.retain(|g| g.is_unified());
        } else if let Some(nick) = filter
            .strip_prefix("mailNickname eq '")
            .and_then(|r| r.strip_suffix('\''))
        {
            let nick = nick.replace("''", "'");
            groups.retain(|g| g.mail_nickname.eq_ignore_ascii_case(&nick));
        } else {
            return GraphReply::error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Unsupported Query.",
            );
        }
    }
    let searching = req.q("$search").is_some();
    if let Some(search) = req.q("$search") {
        if req
            .header("consistencylevel")
            .is_none_or(|v| !v.eq_ignore_ascii_case("eventual"))
        {
            return GraphReply::error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
            );
        }
        let Some(term) = search.trim_matches('"').strip_prefix("displayName:") else {
            return GraphReply::error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Syntax error: the $search value must be a quoted property:term pair.",
            );
        };
        let term = term.to_lowercase();
        // Graph's $search on displayName matches words by prefix.
        groups.retain(|g| {
            g.display_name
                .to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.starts_with(&term))
        });
    }
    let total = groups.len();
    let (items, next) = match page(state, req, &groups, 100, 999, 999) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let value: Vec<Value> = items
        .iter()
        .map(|g| g.view(req.caller.tenant.id, domain, req.q("$select")))
        .collect();
    let mut body = json!({"@odata.context": context(state, "groups"), "value": value});
    if searching || req.q("$count") == Some("true") {
        body["@odata.count"] = json!(total);
    }
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    GraphReply::ok(body)
}

fn valid_nickname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.is_ascii()
        && !n
            .chars()
            .any(|c| naming::FORBIDDEN_NICK.contains(&c) || c.is_ascii_control())
}

/// The user the naming policy is resolved for (`onBehalfOfUserId`, else the signed-in user),
/// and whether the policy exempts them (Global and User Administrators).
fn naming_subject(c: &GraphCaller, on_behalf_of: Option<Uuid>) -> (Option<SimUser>, bool) {
    let user = on_behalf_of.or(c.user).and_then(|u| c.tenant.user_by_id(&u).cloned());
    let exempt = user.as_ref().is_some_and(|u| u.directory_admin);
    (user, exempt)
}

/// A refusal of a create or update whose names break the naming policy (the form public
/// reports show for `POST /groups`; naming.rs has the sources).
fn naming_refusal(details: &[Value], names: &naming::Names<'_>) -> GraphReply {
    if details.iter().any(|d| d["code"] == "MissingPrefixSuffix") {
        let out: Vec<Value> = naming::suggested(details, names)
            .into_iter()
            .map(|(target, value)| {
                json!({"target": target, "code": "MissingPrefixSuffix", "suggestedPropertyValue": value})
            })
            .collect();
        return GraphReply::bad_request(
            "The property is missing a required prefix/suffix per your organization's Group naming requirements.",
        )
        .with_details(out);
    }
    let message = details
        .first()
        .and_then(|d| d["message"].as_str())
        .unwrap_or("The values provided contain one or more validation errors.");
    GraphReply::bad_request(message).with_details(details.to_vec())
}

/// `POST /directoryObjects/validateProperties` (naming.rs has the sources).
fn validate_properties(t: &TenantGraph, req: &GraphRequest<'_>) -> GraphReply {
    let b = &req.body;
    let s = |k: &str| b.get(k).and_then(Value::as_str);
    if !s("entityType").is_some_and(|e| e.eq_ignore_ascii_case("Group")) {
        return GraphReply::bad_request("Invalid value specified for property 'entityType'.");
    }
    let names = naming::Names {
        display_name: s("displayName"),
        mail_nickname: s("mailNickname"),
    };
    if names.display_name.is_none() && names.mail_nickname.is_none() {
        return GraphReply::bad_request("At least one of the properties 'displayName' or 'mailNickname' is required.");
    }
    let on_behalf_of = match b.get("onBehalfOfUserId") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_str()
            .and_then(parse_id)
            .filter(|u| req.caller.tenant.user_by_id(u).is_some())
        {
            Some(u) => Some(u),
            None => return GraphReply::bad_request("Invalid value specified for property 'onBehalfOfUserId'."),
        },
    };
    let (user, exempt) = naming_subject(req.caller, on_behalf_of);
    let mut details = naming::policy_details(t, user.as_ref(), exempt, &names);
    if details.is_empty()
        && let Some(nick) = names.mail_nickname
        && naming::nickname_taken(t, nick)
    {
        details.push(naming::nickname_conflict());
    }
    if details.is_empty() {
        return GraphReply::no_content();
    }
    GraphReply::error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Request_UnprocessableEntity",
        "The values provided contain one or more validation errors.",
    )
    .with_details(details)
}

/// Whether the tenant's creation policy lets this caller create groups.
fn may_create(t: &TenantGraph, c: &GraphCaller) -> bool {
    let Some(user) = c.user else { return true };
    if c.is_directory_admin() {
        return true;
    }
    let get = |n: &str| t.group_unified_value(n).unwrap_or_default();
    if !get("EnableGroupCreation").eq_ignore_ascii_case("false") {
        return true;
    }
    get("GroupCreationAllowedGroupId")
        .parse::<Uuid>()
        .ok()
        .and_then(|g| t.live_group(&g))
        .is_some_and(|g| g.members.contains(&user))
}

fn bound_users(req: &GraphRequest<'_>, key: &str) -> Result<BTreeSet<Uuid>, GraphReply> {
    let mut out = BTreeSet::new();
    let Some(v) = req.body.get(key) else {
        return Ok(out);
    };
    let arr = v
        .as_array()
        .ok_or_else(|| GraphReply::bad_request(&format!("Invalid value for '{key}'.")))?;
    for item in arr {
        let url = item.as_str().unwrap_or_default();
        let id = url.rsplit('/').next().and_then(|s| Uuid::try_parse(s).ok());
        match id.filter(|id| req.caller.tenant.user_by_id(id).is_some()) {
            Some(id) => {
                out.insert(id);
            }
            None => {
                return Err(GraphReply::bad_request(&format!("Invalid object identifier '{url}'.")));
            }
        }
    }
    Ok(out)
}

fn create(state: &SimState, t: &mut TenantGraph, req: &GraphRequest<'_>) -> GraphReply {
    let b = &req.body;
    let s = |k: &str| b.get(k).and_then(Value::as_str);
    let Some(name) = s("displayName").filter(|n| !n.trim().is_empty() && n.chars().count() <= 256) else {
        return GraphReply::bad_request("Invalid value specified for property 'displayName' of resource 'Group'.");
    };
    let Some(nick) = s("mailNickname").filter(|n| valid_nickname(n)) else {
        return GraphReply::bad_request("Invalid value specified for property 'mailNickname' of resource 'Group'.");
    };
    let (Some(mail_enabled), Some(security_enabled)) = (
        b.get("mailEnabled").and_then(Value::as_bool),
        b.get("securityEnabled").and_then(Value::as_bool),
    ) else {
        return GraphReply::bad_request(
            "A value is required for property 'mailEnabled' and 'securityEnabled' of resource 'Group'.",
        );
    };
    let group_types: Vec<String> = b
        .get("groupTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let unified = group_types.iter().any(|t| t == "Unified");
    // Who may create groups is settled before what they are called.
    if unified && !may_create(t, req.caller) {
        return GraphReply::denied();
    }
    // The naming policy applies to Microsoft 365 groups.
    let (mut name, mut nick) = (name.to_string(), nick.to_string());
    if unified {
        let (user, exempt) = naming_subject(req.caller, None);
        let names = naming::Names {
            display_name: Some(&name),
            mail_nickname: Some(&nick),
        };
        let details = naming::policy_details(t, user.as_ref(), exempt, &names);
        let missing = details.iter().any(|d| d["code"] == "MissingPrefixSuffix");
        if missing && state.options.naming_on_create == naming::NamingOnCreate::AddAffixes {
            let fixed = naming::suggested(&details, &names);
            for (target, value) in fixed {
                if target == "displayName" {
                    name = value;
                } else {
                    nick = value;
                }
            }
            let names = naming::Names {
                display_name: Some(&name),
                mail_nickname: Some(&nick),
            };
            let details = naming::policy_details(t, user.as_ref(), exempt, &names);
            if !details.is_empty() {
                return naming_refusal(&details, &names);
            }
            if name.chars().count() > 256 || !valid_nickname(&nick) {
                return GraphReply::bad_request(
                    "Invalid value specified for property 'mailNickname' of resource 'Group'.",
                );
            }
        } else if !details.is_empty() {
            return naming_refusal(&details, &names);
        }
        if naming::nickname_taken(t, &nick) {
            return GraphReply::bad_request(
                "Another object with the same value for property mailNickname already exists.",
            )
            .with_details(vec![naming::nickname_conflict()]);
        }
    }
    let owners = match bound_users(req, "owners@odata.bind") {
        Ok(o) => o,
        Err(e) => return e,
    };
    let members = match bound_users(req, "members@odata.bind") {
        Ok(m) => m,
        Err(e) => return e,
    };
    if owners.len() + members.len() > 20 {
        return GraphReply::bad_request("A maximum of 20 relationships can be added in this request.");
    }
    let id = Uuid::new_v4();
    let mut owners = owners;
    // A delegated creator of a Microsoft 365 group becomes its owner when none is given.
    if owners.is_empty()
        && unified
        && let Some(u) = req.caller.user
    {
        owners.insert(u);
    }
    let g = Group {
        id,
        display_name: name.clone(),
        description: s("description").map(str::to_string),
        mail_nickname: nick.clone(),
        visibility: if unified {
            Some(s("visibility").unwrap_or("Public").to_string())
        } else {
            None
        },
        group_types,
        mail_enabled,
        security_enabled,
        created: state.now(),
        owners,
        members,
        team: None,
        deleted: None,
        site: unified.then(|| format!("https://{}/sites/{}", t.hostname, nick)),
        site_ready: state.now() + state.options.site_delay,
        archived: false,
        mail_stopped: None,
        labels: None,
    };
    let body = with_context(g.to_json(&req.caller.tenant.domain), &context(state, "groups/$entity"));
    t.groups.insert(id, g);
    t.touch(id);
    GraphReply::created(body)
}

fn update(t: &mut TenantGraph, req: &GraphRequest<'_>, id: &str) -> GraphReply {
    let Some(gid) = parse_id(id).filter(|i| t.live_group(i).is_some()) else {
        return GraphReply::not_found(id);
    };
    let b = &req.body;
    if let Some(nick) = b.get("mailNickname") {
        let Some(nick) = nick.as_str().filter(|n| valid_nickname(n)) else {
            return GraphReply::bad_request("Invalid value specified for property 'mailNickname' of resource 'Group'.");
        };
        if t.groups
            .values()
            .any(|g| g.id != gid && g.is_unified() && g.mail_nickname.eq_ignore_ascii_case(nick))
        {
            return GraphReply::bad_request(
                "Another object with the same value for property mailNickname already exists.",
            );
        }
    }
    if let Some(name) = b.get("displayName")
        && !name
            .as_str()
            .is_some_and(|n| !n.trim().is_empty() && n.chars().count() <= 256)
    {
        return GraphReply::bad_request("Invalid value specified for property 'displayName' of resource 'Group'.");
    }
    // Renaming a Microsoft 365 group is checked against the naming policy as creating it is.
    let names = naming::Names {
        display_name: b.get("displayName").and_then(Value::as_str),
        mail_nickname: b.get("mailNickname").and_then(Value::as_str),
    };
    if t.live_group(&gid).is_some_and(Group::is_unified) {
        let (user, exempt) = naming_subject(req.caller, None);
        let details = naming::policy_details(t, user.as_ref(), exempt, &names);
        if !details.is_empty() {
            return naming_refusal(&details, &names);
        }
    }
    if let Some(v) = b.get("visibility").and_then(Value::as_str)
        && !matches!(v, "Public" | "Private" | "")
    {
        return GraphReply::bad_request("Invalid value specified for property 'visibility' of resource 'Group'.");
    }
    let g = t.groups.get_mut(&gid).expect("checked above");
    if !may_manage(req.caller, g) {
        return GraphReply::denied();
    }
    if let Some(v) = b.get("displayName").and_then(Value::as_str) {
        g.display_name = v.to_string();
    }
    if let Some(v) = b.get("description") {
        g.description = v.as_str().map(str::to_string);
    }
    if let Some(v) = b.get("mailNickname").and_then(Value::as_str) {
        g.mail_nickname = v.to_string();
    }
    if let Some(v) = b.get("visibility").and_then(Value::as_str) {
        g.visibility = Some(if v.is_empty() { "Public" } else { v }.to_string());
    }
    t.touch(gid);
    GraphReply::no_content()
}

fn delete(state: &SimState, t: &mut TenantGraph, req: &GraphRequest<'_>, id: &str) -> GraphReply {
    let Some(gid) = parse_id(id).filter(|i| t.live_group(i).is_some()) else {
        return GraphReply::not_found(id);
    };
    if !may_manage(req.caller, &t.groups[&gid]) {
        return GraphReply::denied();
    }
    // Microsoft 365 groups go to deleted items for 30 days; security groups are gone at once
    // (Graph group-delete: "Microsoft 365 groups are moved to a temporary container and can be
    // restored within 30 days"). Timed by the sim's clock, so tests can move past the 30 days.
    if t.groups[&gid].is_unified() {
        t.groups.get_mut(&gid).expect("exists").deleted = Some(state.now());
    } else {
        t.groups.remove(&gid);
    }
    t.touch(gid);
    GraphReply::no_content()
}

fn restore(state: &SimState, t: &mut TenantGraph, req: &GraphRequest<'_>, id: &str) -> GraphReply {
    let Some(gid) = parse_id(id) else {
        return GraphReply::not_found(id);
    };
    match t.groups.get_mut(&gid) {
        Some(g) if g.deleted.is_some_and(|d| state.now() - d < chrono::TimeDelta::days(30)) => {
            if !may_manage(req.caller, g) {
                return GraphReply::denied();
            }
            g.deleted = None;
            let body = with_context(
                g.to_json(&req.caller.tenant.domain),
                &context(state, "directoryObjects/$entity"),
            );
            let mut body = body;
            body["@odata.type"] = json!("#microsoft.graph.group");
            t.touch(gid);
            GraphReply::ok(body)
        }
        _ => GraphReply::not_found(id),
    }
}

/// A user as a member or owner. A caller with only `User.ReadBasic.All` sees the basic profile
/// (Graph permissions reference, User.ReadBasic.All: "display name, first and last name,
/// email address, open extensions, and photo" — plus id and userPrincipalName), not
/// `userType` or `accountEnabled`, which need `User.Read.All` or more.
fn user_json(c: &GraphCaller, id: &Uuid) -> Value {
    match c.tenant.user_by_id(id) {
        Some(u) => {
            let mut v = super::users::user_json(u);
            let full = c.has_any(&[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ]);
            if let (false, Some(o)) = (full, v.as_object_mut()) {
                o.remove("userType");
                o.remove("accountEnabled");
            }
            v
        }
        None => json!({"@odata.type": "#microsoft.graph.user", "id": id.to_string()}),
    }
}

/// Whether `c` may not see who `g`'s members are. "To list the members of a group with hidden
/// membership, the Member.Read.Hidden permission is required" (Graph docs: api-reference
/// group-list-members, "Permissions"). What the service answers without it is not documented;
/// the sim refuses the read as Graph refuses reads without permission (403
/// Authorization_RequestDenied) and leaves the members out of a delta. Modelled for app-only
/// callers (GroupMgr's sync); delegated reads keep the signed-in user's view.
pub(crate) fn members_hidden_from(g: &Group, c: &GraphCaller) -> bool {
    g.visibility
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("HiddenMembership"))
        && c.user.is_none()
        && !c.has_any(&["Member.Read.Hidden"])
}

fn hidden_members() -> GraphReply {
    GraphReply::error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn list_relation(state: &SimState, t: &TenantGraph, req: &GraphRequest<'_>, id: &str, rel: &str) -> GraphReply {
    let Some(g) = parse_id(id).and_then(|i| t.live_group(&i)) else {
        return GraphReply::not_found(id);
    };
    if rel == "members" && members_hidden_from(g, req.caller) {
        return hidden_members();
    }
    let ids: Vec<Uuid> = if rel == "owners" {
        g.owners.iter().copied().collect()
    } else {
        g.members.iter().copied().collect()
    };
    let (items, next) = match page(state, req, &ids, 100, 999, 999) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let value: Vec<Value> = items
        .iter()
        .map(|u| select(user_json(req.caller, u), req.q("$select")))
        .collect();
    let mut body = json!({"@odata.context": context(state, "directoryObjects"), "value": value});
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    GraphReply::ok(body)
}

fn add_relation(t: &mut TenantGraph, req: &GraphRequest<'_>, id: &str, rel: &str) -> GraphReply {
    let Some(gid) = parse_id(id).filter(|i| t.live_group(i).is_some()) else {
        return GraphReply::not_found(id);
    };
    let target = req.body.get("@odata.id").and_then(Value::as_str).unwrap_or_default();
    let Some(uid) = target
        .rsplit('/')
        .next()
        .and_then(|s| Uuid::try_parse(s).ok())
        .filter(|u| req.caller.tenant.user_by_id(u).is_some())
    else {
        return GraphReply::bad_request(&format!("Invalid object identifier '{target}'."));
    };
    let g = t.groups.get_mut(&gid).expect("checked");
    if !may_manage(req.caller, g) {
        return GraphReply::denied();
    }
    let set = if rel == "owners" { &mut g.owners } else { &mut g.members };
    if !set.insert(uid) {
        return GraphReply::bad_request(&format!(
            "One or more added object references already exist for the following modified properties: '{rel}'."
        ));
    }
    t.record(gid, relation_change(rel, uid, true));
    GraphReply::no_content()
}

fn remove_relation(t: &mut TenantGraph, req: &GraphRequest<'_>, id: &str, rel: &str, member: &str) -> GraphReply {
    let Some(gid) = parse_id(id).filter(|i| t.live_group(i).is_some()) else {
        return GraphReply::not_found(id);
    };
    let Some(uid) = parse_id(member) else {
        return GraphReply::not_found(member);
    };
    let g = t.groups.get_mut(&gid).expect("checked");
    if !may_manage(req.caller, g) {
        return GraphReply::denied();
    }
    if rel == "owners" && g.is_unified() && g.owners.len() == 1 && g.owners.contains(&uid) {
        return GraphReply::bad_request("The group must have at least one owner, hence this owner cannot be removed.");
    }
    let set = if rel == "owners" { &mut g.owners } else { &mut g.members };
    if !set.remove(&uid) {
        return GraphReply::not_found(member);
    }
    t.record(gid, relation_change(rel, uid, false));
    GraphReply::no_content()
}

fn relation_change(rel: &str, user: Uuid, added: bool) -> ChangeKind {
    if rel == "owners" {
        ChangeKind::Owner { user, added }
    } else {
        ChangeKind::Member { user, added }
    }
}

/// Where a delta session stands, carried in its skip and delta tokens (Graph encodes the
/// query of the first call in them too): `from` (changes after this sequence; `None` = the
/// initial full read), `to` (the sequence the round ends at), the offset of the next page,
/// and which relationships are tracked.
#[derive(Debug, Clone, Copy)]
struct DeltaState {
    from: Option<u64>,
    to: u64,
    /// The next group of the round, and how many of its objects were already sent.
    offset: usize,
    part: usize,
    members: bool,
    owners: bool,
    /// `assignedLabels` was selected by the round's first call.
    labels: bool,
    /// Whose labels (not in the token: the caller's tenant).
    tenant: Uuid,
}

impl DeltaState {
    fn parse(raw: &str) -> Option<Self> {
        let text = String::from_utf8(B64URL.decode(raw).ok()?).ok()?;
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            ["s", from, to, off, part, flags] => Some(Self {
                from: (*from != "-").then(|| from.parse().ok()).flatten(),
                to: to.parse().ok()?,
                offset: off.parse().ok()?,
                part: part.parse().ok()?,
                members: flags.contains('m'),
                owners: flags.contains('o'),
                labels: flags.contains('l'),
                tenant: Uuid::nil(),
            }),
            _ => None,
        }
    }

    fn token(&self) -> String {
        let flags = format!(
            "{}{}{}-",
            if self.members { "m" } else { "" },
            if self.owners { "o" } else { "" },
            if self.labels { "l" } else { "" }
        );
        B64URL.encode(format!(
            "s:{}:{}:{}:{}:{flags}",
            self.from.map_or("-".to_string(), |f| f.to_string()),
            self.to,
            self.offset,
            self.part
        ))
    }
}

fn ref_json(user: &Uuid, removed: bool) -> Value {
    let mut v = json!({"@odata.type": "#microsoft.graph.user", "id": user.to_string()});
    if removed {
        v["@removed"] = json!({"reason": "deleted"});
    }
    v
}

/// `GET /groups/delta` (graph-groups.md §7). Graph chooses its own page sizes and documents
/// that "a large group may be split across pages; the same group can appear in several
/// pages": the sim pages `Paging::delta_page` objects at a time and carries at most
/// `Paging::delta_relations_per_object` member/owner references on one object, repeating the
/// group (its id and the next references, without its properties) until all are sent.
fn delta(state: &SimState, t: &TenantGraph, req: &GraphRequest<'_>) -> GraphReply {
    let paging = &state.options.paging;
    let expired = || {
        GraphReply::error(
            StatusCode::BAD_REQUEST,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        )
    };
    let st = if let Some(tok) = req.q("$skiptoken") {
        match DeltaState::parse(tok) {
            Some(s) => s,
            None => return expired(),
        }
    } else if let Some(tok) = req.q("$deltatoken") {
        match DeltaState::parse(tok) {
            // A new round: the changes since the end of the last one.
            Some(s) => DeltaState {
                from: Some(s.to),
                to: t.seq,
                offset: 0,
                part: 0,
                ..s
            },
            None => return expired(),
        }
    } else {
        let sel = req.q("$select").unwrap_or_default();
        let has = |p: &str| sel.split(',').any(|x| x.trim() == p);
        if req.q("$deltatoken") == Some("latest") {
            let s = DeltaState {
                from: Some(t.seq),
                to: t.seq,
                offset: 0,
                part: 0,
                members: has("members"),
                owners: has("owners"),
                labels: has("assignedLabels"),
                tenant: req.caller.tenant.id,
            };
            return GraphReply::ok(
                json!({"@odata.context": context(state, "groups"), "@odata.deltaLink": absolute(state, "/groups/delta", &[("$deltatoken", s.token())]), "value": []}),
            );
        }
        DeltaState {
            from: None,
            to: t.seq,
            offset: 0,
            part: 0,
            members: has("members"),
            owners: has("owners"),
            labels: has("assignedLabels"),
            tenant: req.caller.tenant.id,
        }
    };
    let st = DeltaState {
        tenant: req.caller.tenant.id,
        ..st
    };
    if st.from.is_some_and(|f| f > t.seq) {
        return expired();
    }
    let ids: Vec<Uuid> = match st.from {
        None => t
            .groups
            .values()
            .filter(|g| g.deleted.is_none())
            .map(|g| g.id)
            .collect(),
        Some(f) => {
            let set: BTreeSet<Uuid> = t
                .changes
                .iter()
                .filter(|c| c.seq > f && c.seq <= st.to)
                .map(|c| c.group)
                .collect();
            set.into_iter().collect()
        }
    };
    let domain = &req.caller.tenant.domain;
    let (mut next, mut part) = (st.offset, st.part);
    let mut value: Vec<Value> = Vec::new();
    while next < ids.len() && value.len() < paging.delta_page.max(1) {
        let id = ids[next];
        let (object, parts) = match t.groups.get(&id) {
            Some(g) if g.deleted.is_none() => {
                let st = DeltaState {
                    members: st.members && !members_hidden_from(g, req.caller),
                    ..st
                };
                delta_object(g, domain, t, &st, part, paging.delta_relations_per_object)
            }
            Some(_) => (json!({"id": id.to_string(), "@removed": {"reason": "changed"}}), 1),
            None => (json!({"id": id.to_string(), "@removed": {"reason": "deleted"}}), 1),
        };
        value.push(object);
        part += 1;
        if part >= parts {
            next += 1;
            part = 0;
        }
    }
    let mut body = json!({"@odata.context": context(state, "groups"), "value": value});
    if next < ids.len() {
        body["@odata.nextLink"] = json!(absolute(
            state,
            "/groups/delta",
            &[(
                "$skiptoken",
                DeltaState {
                    offset: next,
                    part,
                    ..st
                }
                .token()
            )]
        ));
    } else {
        body["@odata.deltaLink"] = json!(absolute(
            state,
            "/groups/delta",
            &[(
                "$deltatoken",
                DeltaState {
                    offset: 0,
                    part: 0,
                    ..st
                }
                .token()
            )]
        ));
    }
    GraphReply::ok(body)
}

/// Object `part` of a live group in a delta round, and how many objects the group takes: the
/// first carries its properties, each carries at most `per_object` references (members
/// first, then owners). In the first round the references are the whole relationships; later,
/// the net change of each related object in the round's window.
fn delta_object(
    g: &Group,
    domain: &str,
    t: &TenantGraph,
    st: &DeltaState,
    part: usize,
    per_object: usize,
) -> (Value, usize) {
    let mut refs: Vec<(&str, Value)> = Vec::new();
    let relations = [
        (st.members, "members@delta", &g.members, true),
        (st.owners, "owners@delta", &g.owners, false),
    ];
    for (tracked, key, current, is_member) in relations {
        if !tracked {
            continue;
        }
        match st.from {
            None => refs.extend(current.iter().map(|u| (key, ref_json(u, false)))),
            Some(f) => {
                let mut last: std::collections::BTreeMap<Uuid, bool> = Default::default();
                for c in t
                    .changes
                    .iter()
                    .filter(|c| c.group == g.id && c.seq > f && c.seq <= st.to)
                {
                    match c.kind {
                        ChangeKind::Member { user, added } if is_member => {
                            last.insert(user, added);
                        }
                        ChangeKind::Owner { user, added } if !is_member => {
                            last.insert(user, added);
                        }
                        _ => {}
                    }
                }
                refs.extend(last.iter().map(|(u, added)| (key, ref_json(u, !added))));
            }
        }
    }
    let per_object = per_object.max(1);
    let parts = refs.len().div_ceil(per_object).max(1);
    let mut v = if part == 0 {
        let mut v = g.view(st.tenant, domain, Some(GROUP_PROPS));
        // Selected, and ever set (group: delta, "Properties": a property never set is not
        // included at all).
        if let Some(labels) = g.labels.as_deref().filter(|_| st.labels) {
            v["assignedLabels"] = super::model::assigned_labels_json(st.tenant, labels);
        }
        // The first round states every tracked relationship, empty ones included.
        if st.from.is_none() {
            for (tracked, key) in [(st.members, "members@delta"), (st.owners, "owners@delta")] {
                if tracked {
                    v[key] = json!([]);
                }
            }
        }
        v
    } else {
        json!({"id": g.id.to_string()})
    };
    for (key, r) in refs.into_iter().skip(part * per_object).take(per_object) {
        match v.get_mut(key).and_then(Value::as_array_mut) {
            Some(list) => list.push(r),
            None => v[key] = json!([r]),
        }
    }
    (v, parts)
}

/// The scalar properties delta returns (the `$select` of the first call is remembered by
/// Graph; the sim returns these whatever was selected, and `assignedLabels` when selected).
const GROUP_PROPS: &str = "id,displayName,description,mailNickname,visibility,createdDateTime,groupTypes,resourceProvisioningOptions,securityEnabled";
