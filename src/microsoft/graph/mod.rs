//! Microsoft Graph v1.0, our own typed client on the shared reqwest client (ARCHITECTURE.md §2
//! says why not graph-rs-sdk). A `GraphClient` is built once; a `Graph` session pairs it with
//! one access token for one request or job run, and is dropped with it.
//!
//! Graph URLs and request shapes live here and nowhere else: callers get typed operations
//! (groups, owners and members, delta, settings, sites and list items, reports, teams) and
//! typed continuations (`NextLink`). Every request goes through the shared `RetryPolicy`
//! (`send`); paging follows `@odata.nextLink` only on the configured Graph host and version,
//! so the bearer token goes nowhere else. Graph's error envelope becomes `GraphError`.

mod batch;
mod groups;
mod reports;
mod sites;
mod teams;

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use batch::MAX_BATCH;
pub(in crate::microsoft) use batch::{BatchRequest, BatchResponse};
pub use groups::*;
pub use reports::Period;
pub use sites::*;
pub use teams::*;

use super::retry::{Failure, Idempotency, Retry, RetryPolicy, retry_after};
use crate::config::Endpoint;
use crate::domain::{GroupId, Relation};
use crate::secret::AccessToken;

/// The API version every path is under.
const VERSION: &str = "v1.0";

/// The application permissions (app roles) the sync cannot work without on Microsoft Graph,
/// as the README's permission table justifies them. The others it asks for
/// (`Reports.Read.All`, `ReportSettings.Read.All`, `Channel.ReadBasic.All`) only add sources:
/// without them the sync goes on (the reports are unavailable, channel sites stay unknown), so
/// a consent made before one was added keeps working.
pub const APP_ROLES: &[&str] = &[
    "Group.Read.All",
    "Team.ReadBasic.All",
    "Sites.Read.All",
    "Sites.Selected",
];

/// A failed Graph call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error (after retries, where they apply).
    #[error("Graph answered {status} {code}: {message}")]
    Service {
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
        /// The error's `details` (validation failures name their property and reason).
        details: Vec<ErrorDetail>,
    },
    /// No answer: connection failed or timed out.
    #[error("Graph unreachable: {0}")]
    Transport(String),
    #[error("Graph timed out")]
    Timeout,
    /// An answer we cannot use (unparseable body, a next link to another host, …).
    #[error("unexpected Graph response: {0}")]
    Protocol(String),
}

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            GraphError::Service { code, .. } => code,
            _ => "",
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Graph's answer to adding a relationship that is already there (400 "One or more added
    /// object references already exist", graph-groups.md §5).
    pub fn is_already_exists(&self) -> bool {
        matches!(self, GraphError::Service { status: 400, message, .. } if message.contains("already exist"))
    }

    /// An expired or invalid delta token: the sync must start over (400 `syncStateNotFound`
    /// for directory objects, 410 Gone elsewhere; graph-groups.md §7).
    pub fn is_resync_required(&self) -> bool {
        self.status() == Some(410)
            || matches!(
                self.code(),
                "syncStateNotFound" | "resyncRequired" | "SyncStateNotFound"
            )
    }

    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            GraphError::Timeout
        } else {
            GraphError::Transport(e.without_url().to_string())
        }
    }
}

fn service_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> GraphError {
    let (code, message) = super::error_envelope(body)
        .unwrap_or_else(|| (String::new(), String::from_utf8_lossy(body).chars().take(200).collect()));
    // Each detail on its own: one Graph shapes unexpectedly never hides the others.
    let details = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/details").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| ErrorDetail::of(&d))
        .collect();
    GraphError::Service {
        status,
        code,
        message,
        retry_after,
        details,
    }
}

/// One entry of a Graph error's `details`: validation failures (`validateProperties`, a
/// create refused by the naming policy) name the property and carry what the policy needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub suggested_property_value: Option<String>,
    /// Not documented by Graph (SharePoint's name validation has it); read when present.
    pub blocked_word: Option<String>,
}

impl ErrorDetail {
    /// A detail from its JSON; absent or `null` properties are empty. `None` if it is not an
    /// object.
    fn of(v: &Value) -> Option<Self> {
        let o = v.as_object()?;
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            code: text("code").unwrap_or_default(),
            message: text("message").unwrap_or_default(),
            target: text("target"),
            prefix: text("prefix"),
            suffix: text("suffix"),
            suggested_property_value: text("suggestedPropertyValue"),
            blocked_word: text("blockedWord"),
        })
    }
}

/// A page of a collection.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// A collection whose pages an API cursor may continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// The tenant's groups (`list_groups`).
    Groups,
    /// The owners or members of one group (`list_relation`).
    Relation(GroupId, Relation),
}

impl Collection {
    fn path(&self) -> String {
        match self {
            Collection::Groups => format!("/{VERSION}/groups"),
            Collection::Relation(group, rel) => format!("/{VERSION}/groups/{group}/{}", rel.path()),
        }
    }
}

/// A next-page link of one collection, checked to be on our Graph host and version and to
/// continue that collection (so a caller-supplied cursor can neither send our token
/// elsewhere nor switch to another resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextLink(String);

impl NextLink {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Graph client: endpoint, HTTP client, retry policy. Share it.
pub struct GraphClient {
    origin: String,
    http: reqwest::Client,
    policy: RetryPolicy,
}

/// A session: the client plus one access token, for one request or job run.
pub struct Graph<'a> {
    client: &'a GraphClient,
    token: AccessToken,
    /// The client's retry policy, limited to the session's budget when it has one.
    policy: RetryPolicy,
    /// HTTP requests this session has sent (retries and batches count once each).
    sent: std::sync::atomic::AtomicU64,
}

/// A raw response.
pub(in crate::microsoft) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body).map_err(|e| GraphError::Protocol(format!("body: {e}")))
    }
}

impl GraphClient {
    pub fn new(endpoint: &Endpoint, http: reqwest::Client, policy: RetryPolicy) -> Self {
        Self {
            origin: endpoint.origin(),
            http,
            policy,
        }
    }

    /// A session with `token` (on behalf of a caller, or app-only for a job).
    pub fn session(&self, token: AccessToken) -> Graph<'_> {
        Graph {
            client: self,
            token,
            policy: self.policy.clone(),
            sent: Default::default(),
        }
    }

    /// A session whose retries never wait past `deadline` (a job's time budget): a wait that
    /// would ends the call with its error, which says how long Microsoft asked to wait.
    pub fn session_until(&self, token: AccessToken, deadline: std::time::Instant) -> Graph<'_> {
        Graph {
            policy: self.policy.until(deadline),
            ..self.session(token)
        }
    }

    /// `https://graph.microsoft.com/v1.0` (or the configured host).
    fn base(&self) -> String {
        format!("{}/{VERSION}", self.origin)
    }

    /// A link Graph gave us (next page, delta), accepted only on our Graph host and version.
    fn checked_link(&self, link: &str) -> Result<String, GraphError> {
        let url = url::Url::parse(link).map_err(|_| GraphError::Protocol("link is not a URL".into()))?;
        if url.origin().ascii_serialization() != self.origin || !url.path().starts_with(&format!("/{VERSION}/")) {
            return Err(GraphError::Protocol(
                "link points outside the configured Graph endpoint".into(),
            ));
        }
        Ok(link.to_string())
    }

    /// Accepts `link` as a continuation of `collection`, or refuses it.
    pub fn resume(&self, link: &str, collection: Collection) -> Result<NextLink, GraphError> {
        let link = self.checked_link(link)?;
        let path = url::Url::parse(&link)
            .map_err(|_| GraphError::Protocol("link is not a URL".into()))?
            .path()
            .to_string();
        if path != collection.path() {
            return Err(GraphError::Protocol("link continues another collection".into()));
        }
        Ok(NextLink(link))
    }
}

impl<'a> Graph<'a> {
    /// The time past which this session's calls do not wait (its job's budget), if any.
    pub fn not_after(&self) -> Option<std::time::Instant> {
        self.policy.not_after
    }

    /// How many HTTP requests this session has sent.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends one request once: the answer, or the failure with how it may be retried.
    /// Redirects are answers too (report downloads); nothing follows them automatically.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, Failure<GraphError>> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut req = self
            .client
            .http
            .request(method.clone(), url)
            .bearer_auth(self.token.expose())
            .header("client-request-id", uuid::Uuid::new_v4().to_string())
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let no_answer = |e: reqwest::Error| Failure::new(GraphError::from_reqwest(e), Retry::NO_ANSWER);
        let resp = req.send().await.map_err(no_answer)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(no_answer)?;
        if (200..400).contains(&status) {
            return Ok(Reply { status, headers, body });
        }
        let after = retry_after(&headers);
        Err(Failure::new(
            service_error(status, &body, after),
            Retry::for_status(status, after),
        ))
    }

    /// Sends one request under the retry policy. `url` is absolute (`self.url(path)`).
    pub(in crate::microsoft) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        idempotency: Idempotency,
    ) -> Result<Reply, GraphError> {
        self.policy()
            .run(idempotency, |_| self.attempt(&method, url, body, headers))
            .await
    }

    /// GETs a pre-authenticated download URL with no credentials at all, retrying like any
    /// read. Used for report downloads, which live on another host.
    async fn download_anonymous(&self, url: &str) -> Result<String, GraphError> {
        self.policy()
            .run(Idempotency::Safe, |_| async {
                self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let no_answer = |e: reqwest::Error| Failure::new(GraphError::from_reqwest(e), Retry::NO_ANSWER);
                let resp = self.client.http.get(url).send().await.map_err(no_answer)?;
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let body = resp.bytes().await.map_err(no_answer)?;
                if (200..300).contains(&status) {
                    Ok(String::from_utf8_lossy(&body).into_owned())
                } else {
                    Err(Failure::new(
                        service_error(status, &body, after),
                        Retry::for_status(status, after),
                    ))
                }
            })
            .await
    }

    /// An absolute URL for a path under the version root, e.g. `url("/groups")`.
    pub(in crate::microsoft) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.client.base())
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str, headers: &[(&str, &str)]) -> Result<T, GraphError> {
        self.send(Method::GET, url, None, headers, Idempotency::Safe)
            .await?
            .json()
    }

    /// The next page of a collection, from its `@odata.nextLink` (checked to be ours).
    async fn next_page<T: DeserializeOwned>(
        &self,
        link: &str,
        headers: &[(&str, &str)],
    ) -> Result<Page<T>, GraphError> {
        let link = self.client.checked_link(link)?;
        self.get_json(&link, headers).await
    }

    /// Every page from `first`, each item mapped by `f` as its page arrives (so the raw items
    /// of one page at most are held).
    async fn collect_all_mapped<T: DeserializeOwned, U>(
        &self,
        first: &str,
        headers: &[(&str, &str)],
        mut f: impl FnMut(T) -> Option<U>,
    ) -> Result<Vec<U>, GraphError> {
        let mut page: Page<T> = self.get_json(first, headers).await?;
        let mut out: Vec<U> = std::mem::take(&mut page.value).into_iter().filter_map(&mut f).collect();
        while let Some(next) = page.next_link.take() {
            page = self.next_page(&next, headers).await?;
            out.extend(std::mem::take(&mut page.value).into_iter().filter_map(&mut f));
        }
        Ok(out)
    }

    /// Every page from `first`, all items.
    async fn collect_all<T: DeserializeOwned>(
        &self,
        first: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<T>, GraphError> {
        let mut page: Page<T> = self.get_json(first, headers).await?;
        let mut out = std::mem::take(&mut page.value);
        while let Some(next) = page.next_link.take() {
            page = self.next_page(&next, headers).await?;
            out.append(&mut page.value);
        }
        Ok(out)
    }
}

/// Everything but RFC 3986 unreserved characters is encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub(in crate::microsoft) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// An OData string literal inside a `$filter`: quotes doubled.
fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continuation_stays_on_our_host_version_and_collection() {
        let client = GraphClient::new(
            &Endpoint::parse("X", "https://graph.microsoft.com").unwrap(),
            reqwest::Client::new(),
            RetryPolicy::default(),
        );
        let group = GroupId::parse("0b3b3f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f").unwrap();
        let other = GroupId::parse("1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f").unwrap();
        let members = Collection::Relation(group, Relation::Members);
        let ok = |link: &str, c: Collection| client.resume(link, c).is_ok();
        assert!(ok(
            "https://graph.microsoft.com/v1.0/groups?$skiptoken=abc",
            Collection::Groups
        ));
        assert!(ok(
            &format!("https://graph.microsoft.com/v1.0/groups/{group}/members?$skiptoken=abc"),
            members
        ));
        for (link, collection) in [
            ("https://evil.example/v1.0/groups?$skiptoken=abc", Collection::Groups),
            (
                "http://graph.microsoft.com/v1.0/groups?$skiptoken=abc",
                Collection::Groups,
            ),
            (
                "https://graph.microsoft.com/beta/groups?$skiptoken=abc",
                Collection::Groups,
            ),
            (
                "https://graph.microsoft.com/v1.0/users?$skiptoken=abc",
                Collection::Groups,
            ),
            ("https://graph.microsoft.com/v1.0/groups/x/members", Collection::Groups),
            (
                &format!("https://graph.microsoft.com/v1.0/groups/{other}/members?$skiptoken=abc"),
                members,
            ),
            (
                &format!("https://graph.microsoft.com/v1.0/groups/{group}/owners?$skiptoken=abc"),
                members,
            ),
            ("not a url", Collection::Groups),
        ] {
            assert!(!ok(link, collection), "{link} accepted for {collection:?}");
        }
    }
}
