//! Microsoft Graph v1.0, our own typed client on the shared reqwest client (ARCHITECTURE.md §2
//! says why not graph-rs-sdk). A `GraphClient` is built once; a `Graph` session pairs it with
//! one access token for one request or job run, and is dropped with it.
//!
//! Every call goes through `send`: one retry policy (429/503/504 honour `Retry-After`, else
//! capped exponential backoff with jitter, an attempt cap and a deadline), retried only when
//! the request is idempotent. Paging follows `@odata.nextLink` only on the configured Graph
//! host; the bearer token goes nowhere else. Graph's error envelope becomes `GraphError`.

mod groups;
mod reports;
mod sites;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use groups::*;
pub use reports::Period;
pub use sites::*;

use super::retry::{RetryPolicy, parse_retry_after};
use crate::auth::AccessToken;
use crate::config::Endpoint;

/// The API version every path is under.
pub const VERSION: &str = "v1.0";
/// Most requests in one `$batch` (graph-groups.md §10).
pub const MAX_BATCH: usize = 20;

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

    /// An expired or invalid delta token: the sync must start over (400 `syncStateNotFound`
    /// for directory objects, 410 Gone elsewhere; graph-groups.md §7).
    pub fn is_resync_required(&self) -> bool {
        self.status() == Some(410)
            || matches!(
                self.code(),
                "syncStateNotFound" | "resyncRequired" | "SyncStateNotFound"
            )
    }
}

fn service_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> GraphError {
    let (code, message) = super::error_envelope(body)
        .unwrap_or_else(|| (String::new(), String::from_utf8_lossy(body).chars().take(200).collect()));
    GraphError::Service {
        status,
        code,
        message,
        retry_after,
    }
}

/// Whether a request may be sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, PUT, DELETE, and PATCHes that set absolute values.
    Safe,
    /// Creates and other POSTs: sent once; the caller decides how to recover.
    Once,
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

/// The Graph client: endpoint, HTTP client, retry policy. Share it.
pub struct GraphClient {
    origin: String,
    http: reqwest::Client,
    policy: RetryPolicy,
}

/// A session: the client plus one access token, for one request or job run.
pub struct Graph<'a> {
    client: &'a GraphClient,
    token: &'a AccessToken,
    /// HTTP requests this session has sent (retries and batches count once each).
    sent: std::sync::atomic::AtomicU64,
}

/// A raw response.
pub struct Reply {
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

    pub fn session<'a>(&'a self, token: &'a AccessToken) -> Graph<'a> {
        Graph {
            client: self,
            token,
            sent: Default::default(),
        }
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// `https://graph.microsoft.com/v1.0` (or the configured host).
    pub fn base(&self) -> String {
        format!("{}/{VERSION}", self.origin)
    }

    /// A link Graph gave us (next page, delta), accepted only on our Graph host and version.
    pub fn checked_link(&self, link: &str) -> Result<String, GraphError> {
        let url = url::Url::parse(link).map_err(|_| GraphError::Protocol("link is not a URL".into()))?;
        if url.origin().ascii_serialization() != self.origin || !url.path().starts_with(&format!("/{VERSION}/")) {
            return Err(GraphError::Protocol(
                "link points outside the configured Graph endpoint".into(),
            ));
        }
        Ok(link.to_string())
    }
}

impl<'a> Graph<'a> {
    pub fn client(&self) -> &'a GraphClient {
        self.client
    }

    /// How many HTTP requests this session has sent.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends one request with the retry policy. `url` is absolute (use `self.url(path)`).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        idempotency: Idempotency,
    ) -> Result<Reply, GraphError> {
        let policy = &self.client.policy;
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
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
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => Ok(Reply { status, headers, body }),
                        Err(e) => Err(if e.is_timeout() {
                            GraphError::Timeout
                        } else {
                            GraphError::Transport(e.without_url().to_string())
                        }),
                    }
                }
                Err(e) => Err(if e.is_timeout() {
                    GraphError::Timeout
                } else {
                    GraphError::Transport(e.without_url().to_string())
                }),
            };
            let (retry_after, error) = match outcome {
                // Redirects are answers too (report downloads); nothing follows them automatically.
                Ok(reply) if (200..400).contains(&reply.status) => return Ok(reply),
                Ok(reply) => {
                    let ra = reply
                        .headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let err = service_error(reply.status, &reply.body, ra);
                    if !RetryPolicy::is_transient(reply.status) {
                        return Err(err);
                    }
                    (ra, err)
                }
                Err(e) => (None, e),
            };
            // A 429 refuses the request before it runs (graph-groups.md §9): safe to resend
            // whatever it was. Other failures of a write may have happened after it ran.
            let throttled = matches!(error, GraphError::Service { status: 429, .. });
            if (idempotency == Idempotency::Once && !throttled) || attempt >= policy.max_attempts {
                return Err(error);
            }
            let wait = policy.delay(attempt, retry_after);
            if started.elapsed() + wait > policy.deadline {
                return Err(error);
            }
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, "retrying Graph request");
            tokio::time::sleep(wait).await;
        }
    }

    /// GETs a pre-authenticated download URL with no credentials at all, retrying like any
    /// read. Used for report downloads, which live on another host.
    pub async fn download_anonymous(&self, url: &str) -> Result<String, GraphError> {
        let policy = &self.client.policy;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let outcome = match self.client.http.get(url).send().await {
                Ok(resp) if resp.status().is_success() => {
                    return resp
                        .text()
                        .await
                        .map_err(|e| GraphError::Transport(e.without_url().to_string()));
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    let err = service_error(status, &body, None);
                    if !RetryPolicy::is_transient(status) {
                        return Err(err);
                    }
                    err
                }
                Err(e) => GraphError::Transport(e.without_url().to_string()),
            };
            if attempt >= policy.max_attempts {
                return Err(outcome);
            }
            tokio::time::sleep(policy.delay(attempt, None)).await;
        }
    }

    /// An absolute URL for a path under the version root, e.g. `url("/groups")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.client.base())
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: &str, headers: &[(&str, &str)]) -> Result<T, GraphError> {
        self.send(Method::GET, url, None, headers, Idempotency::Safe)
            .await?
            .json()
    }

    /// The next page of a collection, from its `@odata.nextLink` (checked to be ours).
    pub async fn next_page<T: DeserializeOwned>(
        &self,
        link: &str,
        headers: &[(&str, &str)],
    ) -> Result<Page<T>, GraphError> {
        let link = self.client.checked_link(link)?;
        self.get_json(&link, headers).await
    }

    /// All pages of a collection.
    pub async fn collect_all<T: DeserializeOwned>(
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

    /// Runs up to 20 requests in one `$batch`. Items that come back throttled (429) or
    /// unavailable (503/504) are retried — in a new batch, after the longest `Retry-After`
    /// among them — when they are GETs; the others keep their answer. Results are in the
    /// order of `requests`.
    pub async fn batch(&self, requests: &[BatchRequest]) -> Result<Vec<BatchResponse>, GraphError> {
        assert!(
            requests.len() <= MAX_BATCH,
            "at most {MAX_BATCH} requests in one $batch"
        );
        let policy = &self.client.policy;
        let started = Instant::now();
        let mut results: Vec<Option<BatchResponse>> = vec![None; requests.len()];
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let body = json!({
                "requests": pending.iter().map(|&i| {
                    let r = &requests[i];
                    let mut item = json!({"id": i.to_string(), "method": r.method, "url": r.url});
                    let mut headers = serde_json::Map::new();
                    for (k, v) in &r.headers {
                        headers.insert((*k).to_string(), json!(v));
                    }
                    if let Some(b) = &r.body {
                        item["body"] = b.clone();
                        headers.insert("Content-Type".into(), json!("application/json"));
                    }
                    if !headers.is_empty() {
                        item["headers"] = Value::Object(headers);
                    }
                    item
                }).collect::<Vec<_>>()
            });
            // The batch POST itself may be resent when everything in it may be.
            let resendable = pending.iter().all(|&i| requests[i].resend);
            let idem = if resendable {
                Idempotency::Safe
            } else {
                Idempotency::Once
            };
            let reply = self
                .send(Method::POST, &self.url("/$batch"), Some(&body), &[], idem)
                .await?;
            let parsed: BatchEnvelope = reply.json()?;
            let mut retry = Vec::new();
            let mut wait: Option<Duration> = None;
            for item in parsed.responses {
                let Some(i) = item.id.parse::<usize>().ok().filter(|i| pending.contains(i)) else {
                    return Err(GraphError::Protocol("batch answered an id it was not sent".into()));
                };
                // Inner requests are throttled one by one (graph-groups.md §10); a throttled
                // one was not executed, so even a create is sent again.
                let transient = item.status == 429 || (RetryPolicy::is_transient(item.status) && requests[i].resend);
                if transient && attempt < policy.max_attempts {
                    let ra = item
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                        .and_then(|(_, v)| {
                            v.as_str()
                                .map(str::to_string)
                                .or_else(|| v.as_f64().map(|f| f.to_string()))
                        })
                        .and_then(|v| parse_retry_after(&v, SystemTime::now()));
                    let d = policy.delay(attempt, ra);
                    wait = Some(wait.map_or(d, |w| w.max(d)));
                    retry.push(i);
                }
                results[i] = Some(BatchResponse {
                    status: item.status,
                    body: item.body,
                });
            }
            if results
                .iter()
                .enumerate()
                .any(|(i, r)| r.is_none() && pending.contains(&i))
            {
                return Err(GraphError::Protocol("batch response is missing items".into()));
            }
            pending = retry;
            if let Some(w) = wait {
                if started.elapsed() + w > policy.deadline {
                    break;
                }
                tokio::time::sleep(w).await;
            }
        }
        Ok(results.into_iter().map(|r| r.expect("every item answered")).collect())
    }
}

/// One request inside a `$batch`. `url` is relative to the version root (`/groups/{id}`).
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub method: &'static str,
    pub url: String,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, &'static str)>,
    /// Whether the request may be sent again after a transient failure (5xx): reads, writes of
    /// absolute values, and creates that a unique key turns into a conflict when repeated.
    /// A throttled request (429) was not executed and is always sent again.
    pub resend: bool,
}

impl BatchRequest {
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: "GET",
            url: url.into(),
            body: None,
            headers: Vec::new(),
            resend: true,
        }
    }

    /// A write with a JSON body.
    pub fn write(method: &'static str, url: impl Into<String>, body: Value, resend: bool) -> Self {
        Self {
            method,
            url: url.into(),
            body: Some(body),
            headers: Vec::new(),
            resend,
        }
    }

    /// A `$count` or `$search` read, which needs `ConsistencyLevel: eventual`.
    pub fn get_eventual(url: impl Into<String>) -> Self {
        Self {
            headers: vec![("ConsistencyLevel", "eventual")],
            ..Self::get(url)
        }
    }
}

/// One answer inside a `$batch`.
#[derive(Debug, Clone)]
pub struct BatchResponse {
    pub status: u16,
    pub body: Value,
}

impl BatchResponse {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, GraphError> {
        if self.ok() {
            serde_json::from_value(self.body).map_err(|e| GraphError::Protocol(format!("batch item body: {e}")))
        } else {
            let body = serde_json::to_vec(&self.body).unwrap_or_default();
            Err(service_error(self.status, &body, None))
        }
    }
}

#[derive(Deserialize)]
struct BatchEnvelope {
    responses: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    id: String,
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    #[serde(default)]
    body: Value,
}

/// Everything but RFC 3986 unreserved characters is encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}
