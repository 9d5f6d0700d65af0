//! The route table: every HTTP function (name, route template, methods) and every
//! non-HTTP function name the handler answers. `functions/*/function.json` must agree with
//! it; `tests/functions_json.rs` checks that they do.

/// What an HTTP route and method do: the one anonymous operation, or one behind the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET /api/health`, the only anonymous route.
    Health,
    Gated(Gated),
}

/// The operations that require a caller who passed the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gated {
    /// `GET /api/logs`: the tenant's sealed log entries (role `GroupMgr.Admin`).
    Logs,
    GroupsList,
    GroupCreate,
    GroupGet,
    GroupUpdate,
    GroupDelete,
    GroupRestore,
    RelationList(Relation),
    RelationAdd(Relation),
    RelationRemove(Relation),
    PolicyGet,
    PolicyPut,
    NamingPreview,
    /// `GET`/`PUT /api/lifecycle/policy` (role `GroupMgr.Admin`).
    LifecyclePolicyGet,
    LifecyclePolicyPut,
    /// `GET /api/lifecycle/candidates`: the policy's dry run (role `GroupMgr.Admin`).
    LifecycleCandidates,
    /// `GET`/`POST /api/lifecycle/reviews`: the reviews; open reviews for candidates (role
    /// `GroupMgr.Admin`).
    LifecycleReviewsGet,
    LifecycleReviewsPost,
    /// `GET`/`POST /api/lifecycle/actions`: what the policy's `onNoAnswer` calls for; confirm
    /// a batch of it (role `GroupMgr.Admin`).
    LifecycleActionsGet,
    LifecycleActionsPost,
    /// `POST /api/groups/{id}/review`: an owner or administrator decides.
    GroupReview,
    /// `GET`/`PUT`/`DELETE /api/lifecycle/webhook` (role `GroupMgr.Admin`).
    WebhookGet,
    WebhookPut,
    WebhookDelete,
    /// `GET /api/groups/{id}/activity`: one group's activity, signal by signal.
    GroupActivity,
    /// `GET /api/groups/{id}/successors`: who could own the group next (role
    /// `GroupMgr.Admin`).
    GroupSuccessors,
    Activity,
    /// `GET /api/sync`: where the caller's tenant's sync stands (role `GroupMgr.Admin`).
    SyncState,
    /// `POST /api/sync`: sync the caller's tenant now (role `GroupMgr.Admin`).
    Sync,
    /// `GET /api/openapi.json`.
    OpenApi,
}

/// One HTTP function: its folder name under `functions/`, its route template (without the
/// `api/` prefix, as in function.json) and what each method does.
#[derive(Debug)]
pub struct HttpFunction {
    pub name: &'static str,
    pub route: &'static str,
    pub methods: &'static [(&'static str, Operation)],
}

use crate::domain::Relation;
use crate::domain::Relation::{Members, Owners};
use Gated::*;
use Operation::Gated as G;

pub const HTTP_FUNCTIONS: &[HttpFunction] = &[
    HttpFunction {
        name: "Health",
        route: "health",
        methods: &[("GET", Operation::Health)],
    },
    HttpFunction {
        name: "Groups",
        route: "groups",
        methods: &[("GET", G(GroupsList)), ("POST", G(GroupCreate))],
    },
    HttpFunction {
        name: "Group",
        route: "groups/{id}",
        methods: &[
            ("GET", G(GroupGet)),
            ("PATCH", G(GroupUpdate)),
            ("DELETE", G(GroupDelete)),
        ],
    },
    HttpFunction {
        name: "GroupRestore",
        route: "groups/{id}/restore",
        methods: &[("POST", G(GroupRestore))],
    },
    HttpFunction {
        name: "GroupOwners",
        route: "groups/{id}/owners",
        methods: &[("GET", G(RelationList(Owners))), ("POST", G(RelationAdd(Owners)))],
    },
    HttpFunction {
        name: "GroupOwner",
        route: "groups/{id}/owners/{userId}",
        methods: &[("DELETE", G(RelationRemove(Owners)))],
    },
    HttpFunction {
        name: "GroupMembers",
        route: "groups/{id}/members",
        methods: &[("GET", G(RelationList(Members))), ("POST", G(RelationAdd(Members)))],
    },
    HttpFunction {
        name: "GroupMember",
        route: "groups/{id}/members/{userId}",
        methods: &[("DELETE", G(RelationRemove(Members)))],
    },
    HttpFunction {
        name: "GroupCreationPolicy",
        route: "policy/group-creation",
        methods: &[("GET", G(PolicyGet)), ("PUT", G(PolicyPut))],
    },
    HttpFunction {
        name: "NamingPolicyPreview",
        route: "policy/naming/preview",
        methods: &[("GET", G(NamingPreview))],
    },
    HttpFunction {
        name: "LifecyclePolicy",
        route: "lifecycle/policy",
        methods: &[("GET", G(LifecyclePolicyGet)), ("PUT", G(LifecyclePolicyPut))],
    },
    HttpFunction {
        name: "LifecycleCandidates",
        route: "lifecycle/candidates",
        methods: &[("GET", G(LifecycleCandidates))],
    },
    HttpFunction {
        name: "LifecycleReviews",
        route: "lifecycle/reviews",
        methods: &[("GET", G(LifecycleReviewsGet)), ("POST", G(LifecycleReviewsPost))],
    },
    HttpFunction {
        name: "LifecycleActions",
        route: "lifecycle/actions",
        methods: &[("GET", G(LifecycleActionsGet)), ("POST", G(LifecycleActionsPost))],
    },
    HttpFunction {
        name: "GroupReview",
        route: "groups/{id}/review",
        methods: &[("POST", G(GroupReview))],
    },
    HttpFunction {
        name: "LifecycleWebhook",
        route: "lifecycle/webhook",
        methods: &[
            ("GET", G(WebhookGet)),
            ("PUT", G(WebhookPut)),
            ("DELETE", G(WebhookDelete)),
        ],
    },
    HttpFunction {
        name: "GroupActivity",
        route: "groups/{id}/activity",
        methods: &[("GET", G(GroupActivity))],
    },
    HttpFunction {
        name: "GroupSuccessors",
        route: "groups/{id}/successors",
        methods: &[("GET", G(GroupSuccessors))],
    },
    HttpFunction {
        name: "Activity",
        route: "activity",
        methods: &[("GET", G(Activity))],
    },
    HttpFunction {
        name: "Sync",
        route: "sync",
        methods: &[("GET", G(SyncState)), ("POST", G(Sync))],
    },
    HttpFunction {
        name: "Logs",
        route: "logs",
        methods: &[("GET", G(Logs))],
    },
    HttpFunction {
        name: "OpenApi",
        route: "openapi.json",
        methods: &[("GET", G(OpenApi))],
    },
];

/// Timer and queue functions, invoked as `POST /<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// Timer, every 15 minutes: one `tenant-sync` message per active tenant.
    SyncScheduler,
    /// Queue `tenant-sync`: one tenant's sync.
    TenantSync,
    /// Timer, every minute: delivers the tenants' waiting lifecycle webhooks.
    WebhookDispatch,
}

pub const INVOCATION_FUNCTIONS: &[(&str, Invocation)] = &[
    ("SyncScheduler", Invocation::SyncScheduler),
    ("TenantSync", Invocation::TenantSync),
    ("WebhookDispatch", Invocation::WebhookDispatch),
];

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// `GET /`: the host's readiness probe.
    Readiness,
    Http {
        function: &'static str,
        operation: Operation,
        /// Route parameters, percent-decoded, in template order.
        params: Vec<(&'static str, String)>,
    },
    MethodNotAllowed {
        allow: Vec<&'static str>,
    },
    Invocation(&'static str, Invocation),
    NotFound,
}

/// Resolves a method and path (without query) to a route.
pub fn resolve(method: &str, path: &str) -> Resolved {
    if path == "/" {
        return if method == "GET" || method == "HEAD" {
            Resolved::Readiness
        } else {
            Resolved::MethodNotAllowed {
                allow: vec!["GET", "HEAD"],
            }
        };
    }
    if let Some(rest) = path.strip_prefix("/api/") {
        let segments: Vec<&str> = rest.strip_suffix('/').unwrap_or(rest).split('/').collect();
        for f in HTTP_FUNCTIONS {
            if let Some(params) = match_template(f.route, &segments) {
                let method = if method == "HEAD" { "GET" } else { method };
                return match f.methods.iter().find(|(m, _)| *m == method) {
                    Some((_, operation)) => Resolved::Http {
                        function: f.name,
                        operation: *operation,
                        params,
                    },
                    None => Resolved::MethodNotAllowed {
                        allow: f.methods.iter().map(|(m, _)| *m).collect(),
                    },
                };
            }
        }
        return Resolved::NotFound;
    }
    let name = path.trim_start_matches('/');
    match INVOCATION_FUNCTIONS.iter().find(|(n, _)| *n == name) {
        Some((n, inv)) if method == "POST" => Resolved::Invocation(n, *inv),
        Some(_) => Resolved::MethodNotAllowed { allow: vec!["POST"] },
        None => Resolved::NotFound,
    }
}

fn match_template(template: &'static str, segments: &[&str]) -> Option<Vec<(&'static str, String)>> {
    let parts: Vec<&'static str> = template.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(segments) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let value = percent_encoding::percent_decode_str(seg).decode_utf8().ok()?;
            if value.is_empty() {
                return None;
            }
            params.push((name, value.into_owned()));
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_routes_params_and_methods() {
        assert_eq!(resolve("GET", "/"), Resolved::Readiness);
        match resolve("DELETE", "/api/groups/abc/owners/d%2De") {
            Resolved::Http { function, params, .. } => {
                assert_eq!(function, "GroupOwner");
                assert_eq!(params, vec![("id", "abc".to_string()), ("userId", "d-e".to_string())]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            resolve("GET", "/api/groups/"),
            Resolved::Http { function: "Groups", .. }
        ));
        assert_eq!(
            resolve("PUT", "/api/groups"),
            Resolved::MethodNotAllowed {
                allow: vec!["GET", "POST"]
            }
        );
        assert_eq!(resolve("GET", "/api/nope"), Resolved::NotFound);
        assert_eq!(resolve("GET", "/api/groups//owners"), Resolved::NotFound);
        assert_eq!(
            resolve("POST", "/SyncScheduler"),
            Resolved::Invocation("SyncScheduler", Invocation::SyncScheduler)
        );
        assert_eq!(
            resolve("GET", "/TenantSync"),
            Resolved::MethodNotAllowed { allow: vec!["POST"] }
        );
        assert_eq!(resolve("POST", "/syncscheduler"), Resolved::NotFound);
    }
}
