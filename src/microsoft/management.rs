//! The Office 365 Management Activity API (management-activity-api.md): subscriptions, content
//! listing (windows of at most 24 hours, never older than 7 days, paged by the `NextPageUri`
//! header), and content blobs. `PublisherIdentifier` goes on every call.
//!
//! Errors are handled by their AF code, not their HTTP status: AF429 (throttling) arrives as
//! HTTP **403** (management-activity-api.md §5) and is retried like a 429; AF50000 is retried;
//! the others are returned typed so the caller can act on their meaning (start a missing
//! subscription, clamp a window, record expired content as lost).

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::retry::{Failure, Idempotency, Retry, RetryPolicy, retry_after};
use crate::config::Endpoint;
use crate::domain::TenantId;
use crate::secret::AccessToken;

/// The largest audit content blob GroupMgr reads (Microsoft's blobs hold a few MiB at most).
pub const MAX_BLOB_BYTES: usize = 64 * 1024 * 1024;
/// How long one blob may take to read, retries included.
pub const BLOB_DEADLINE: Duration = Duration::from_secs(120);

/// The content types GroupMgr reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// SharePoint and OneDrive.
    SharePoint,
    /// Everything else, Microsoft Teams included.
    General,
}

impl ContentType {
    pub const ALL: [ContentType; 2] = [ContentType::SharePoint, ContentType::General];

    pub fn as_str(&self) -> &'static str {
        match self {
            ContentType::SharePoint => "Audit.SharePoint",
            ContentType::General => "Audit.General",
        }
    }
}

/// One available content blob.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlob {
    pub content_type: String,
    pub content_id: String,
    pub content_uri: String,
    pub content_created: DateTime<Utc>,
    pub content_expiration: Option<DateTime<Utc>>,
}

/// A failed call, by meaning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManagementError {
    /// AF20022: no subscription for this content type — start it and retry.
    #[error("no subscription for this content type")]
    NoSubscription,
    /// AF20023: a tenant admin disabled the subscription.
    #[error("the subscription was disabled by the tenant")]
    SubscriptionDisabled,
    /// AF20030 / AF20055 / AF20031: the window or page token was refused — clamp and retry.
    #[error("content window refused ({0})")]
    BadWindow(String),
    /// AF20050 / AF20051 / AF20052: the blob is gone (expired after 7 days, or never existed).
    #[error("content expired or missing ({0})")]
    ContentGone(String),
    /// A blob larger than GroupMgr reads (`MAX_BLOB_BYTES`).
    #[error("content blob larger than {0} bytes")]
    TooLarge(usize),
    /// AF10001 / AF20010–AF20013: permission or tenant problems; retrying cannot help.
    #[error("refused: {code} {message}")]
    Refused { code: String, message: String },
    /// Throttling (AF429) or service errors that outlasted the retries.
    #[error("unavailable: {code}")]
    Unavailable {
        code: String,
        retry_after: Option<Duration>,
    },
    #[error("unreachable: {0}")]
    Transport(String),
    #[error("unexpected response: {0}")]
    Protocol(String),
}

/// Classifies an error answer by its AF code (and status only when there is no code): the
/// error, and whether a retry may cure it.
fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> (bool, ManagementError) {
    let (code, message) = super::error_envelope(body).unwrap_or_default();
    let transient =
        matches!(code.as_str(), "AF429" | "AF50000") || (code.is_empty() && Retry::is_transient_status(status));
    let err = match code.as_str() {
        "AF20022" => ManagementError::NoSubscription,
        "AF20023" => ManagementError::SubscriptionDisabled,
        "AF20030" | "AF20055" | "AF20031" => ManagementError::BadWindow(code),
        "AF20050" | "AF20051" | "AF20052" => ManagementError::ContentGone(code),
        _ if transient => ManagementError::Unavailable {
            code: if code.is_empty() { status.to_string() } else { code },
            retry_after,
        },
        _ => ManagementError::Refused {
            code: if code.is_empty() { status.to_string() } else { code },
            message,
        },
    };
    (transient, err)
}

/// The Management Activity API client. Share it.
/// The application permission the audit feed needs on the Office 365 Management APIs.
pub const APP_ROLES: &[&str] = &["ActivityFeed.Read"];

pub struct ManagementClient {
    origin: String,
    http: reqwest::Client,
    policy: RetryPolicy,
    publisher: uuid::Uuid,
}

/// A session for one tenant with one app-only token.
pub struct Management<'a> {
    client: &'a ManagementClient,
    token: AccessToken,
    /// The client's retry policy, limited to the session's budget when it has one.
    policy: RetryPolicy,
    tenant: TenantId,
    sent: std::sync::atomic::AtomicU64,
}

impl ManagementClient {
    pub fn new(endpoint: &Endpoint, publisher: uuid::Uuid, http: reqwest::Client, policy: RetryPolicy) -> Self {
        Self {
            origin: endpoint.origin(),
            http,
            policy,
            publisher,
        }
    }

    pub fn session(&self, token: AccessToken, tenant: TenantId) -> Management<'_> {
        Management {
            client: self,
            token,
            policy: self.policy.clone(),
            tenant,
            sent: Default::default(),
        }
    }
}

impl Management<'_> {
    /// The session with its retries limited to `deadline` (a job's time budget).
    pub fn until(self, deadline: std::time::Instant) -> Self {
        Self {
            policy: self.policy.until(deadline),
            ..self
        }
    }

    fn feed(&self, op: &str) -> String {
        format!("{}/api/v1.0/{}/activity/feed/{op}", self.client.origin, self.tenant)
    }

    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Accepts a URL the service gave us only on our configured host (the token goes nowhere
    /// else), and adds `PublisherIdentifier` if it is missing.
    fn checked(&self, url: &str) -> Result<String, ManagementError> {
        let mut u = url::Url::parse(url).map_err(|_| ManagementError::Protocol("not a URL".into()))?;
        if u.origin().ascii_serialization() != self.client.origin {
            return Err(ManagementError::Protocol(
                "URL outside the configured Management API endpoint".into(),
            ));
        }
        if !u
            .query_pairs()
            .any(|(k, _)| k.eq_ignore_ascii_case("PublisherIdentifier"))
        {
            u.query_pairs_mut()
                .append_pair("PublisherIdentifier", &self.client.publisher.to_string());
        }
        Ok(u.to_string())
    }

    /// One call with the retry policy. All Management API calls may be repeated: starting a
    /// subscription that is already on only updates it.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), ManagementError> {
        let url = self.checked(url)?;
        self.policy
            .run(Idempotency::Safe, |_| self.attempt(&method, &url))
            .await
    }

    /// One try of a call: the answer, or the failure and whether a retry may cure it.
    async fn attempt(
        &self,
        method: &reqwest::Method,
        url: &str,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), Failure<ManagementError>> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut req = self
            .client
            .http
            .request(method.clone(), url)
            .bearer_auth(self.token.expose());
        if method == reqwest::Method::POST {
            req = req.header("content-type", "application/json").body("");
        }
        let no_answer = |e: reqwest::Error| {
            Failure::new(
                ManagementError::Transport(e.without_url().to_string()),
                Retry::NO_ANSWER,
            )
        };
        let resp = req.send().await.map_err(no_answer)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(no_answer)?;
        if (200..300).contains(&status) {
            return Ok((headers, body));
        }
        let after = retry_after(&headers);
        let (transient, err) = classify(status, &body, after);
        Err(Failure::new(
            err,
            if transient {
                Retry::Transient { after }
            } else {
                Retry::Never
            },
        ))
    }

    /// `POST subscriptions/start`: enables the content type. Already enabled is success: the
    /// service answers that with 400 AF20024 ("The subscription is already enabled. No
    /// property change."), a code the API reference's error table does not list but every
    /// client that starts subscriptions twice meets.
    pub async fn start_subscription(&self, ct: ContentType) -> Result<(), ManagementError> {
        let url = format!("{}?contentType={}", self.feed("subscriptions/start"), ct.as_str());
        match self.send(reqwest::Method::POST, &url).await {
            Ok(_) => Ok(()),
            Err(ManagementError::Refused { code, .. }) if code == "AF20024" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET subscriptions/content` for `[start, end)`, every page (`NextPageUri` header, any
    /// casing; also the `NextPageUrl` spelling of the troubleshooting article).
    pub async fn list_content(
        &self,
        ct: ContentType,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<ContentBlob>, ManagementError> {
        let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut url = format!(
            "{}?contentType={}&startTime={}&endTime={}",
            self.feed("subscriptions/content"),
            ct.as_str(),
            fmt(start),
            fmt(end)
        );
        let mut out = Vec::new();
        loop {
            let (headers, body) = self.send(reqwest::Method::GET, &url).await?;
            let mut page: Vec<ContentBlob> =
                serde_json::from_slice(&body).map_err(|e| ManagementError::Protocol(format!("content list: {e}")))?;
            out.append(&mut page);
            let next = headers
                .get("nextpageuri")
                .or_else(|| headers.get("nextpageurl"))
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty());
            match next {
                Some(n) => url = n.to_string(),
                None => return Ok(out),
            }
        }
    }

    /// `GET {contentUri}`: a blob of audit records (a JSON array), read from the network a
    /// chunk at a time into a buffer that may not grow past `MAX_BLOB_BYTES`, within
    /// `BLOB_DEADLINE` (retries included): one blob can neither exhaust memory nor hold the
    /// tenant's sync.
    pub async fn fetch(&self, content_uri: &str) -> Result<Bytes, ManagementError> {
        let url = self.checked(content_uri)?;
        let get = self
            .policy
            .run(Idempotency::Safe, |_| self.attempt_capped(&url, MAX_BLOB_BYTES));
        tokio::time::timeout(BLOB_DEADLINE, get)
            .await
            .map_err(|_| ManagementError::Transport(format!("content blob not read within {BLOB_DEADLINE:?}")))?
    }

    /// One `GET` of a blob, its body read chunk by chunk up to `cap` bytes.
    async fn attempt_capped(&self, url: &str, cap: usize) -> Result<Bytes, Failure<ManagementError>> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let no_answer = |e: reqwest::Error| {
            Failure::new(
                ManagementError::Transport(e.without_url().to_string()),
                Retry::NO_ANSWER,
            )
        };
        let mut resp = self
            .client
            .http
            .get(url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(no_answer)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let after = retry_after(resp.headers());
            let body = resp.bytes().await.map_err(no_answer)?;
            let (transient, err) = classify(status, &body, after);
            let err = match err {
                // A bare 404 (no AF code) for a blob: expired or never there, like AF20051.
                ManagementError::Refused { code, .. } if status == 404 && code == "404" => {
                    ManagementError::ContentGone(code)
                }
                other => other,
            };
            return Err(Failure::new(
                err,
                if transient {
                    Retry::Transient { after }
                } else {
                    Retry::Never
                },
            ));
        }
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(Failure::fatal(ManagementError::TooLarge(cap)));
        }
        // Sized from Content-Length when given: a blob of tens of megabytes read into a buffer
        // that doubles as it grows would hold up to twice its size while it is copied.
        let expected = resp.content_length().map_or(0, |n| n as usize).min(cap);
        let mut body = bytes::BytesMut::with_capacity(expected);
        while let Some(chunk) = resp.chunk().await.map_err(no_answer)? {
            if body.len() + chunk.len() > cap {
                return Err(Failure::fatal(ManagementError::TooLarge(cap)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn af_codes_by_meaning_not_status() {
        let body = |c: &str| format!("{{\"error\":{{\"code\":\"{c}\",\"message\":\"m\"}}}}").into_bytes();
        // AF429 arrives as 403 and is throttling, not a permission problem.
        assert!(matches!(
            classify(403, &body("AF429"), None),
            (true, ManagementError::Unavailable { .. })
        ));
        assert!(matches!(classify(500, &body("AF50000"), None), (true, _)));
        assert_eq!(classify(400, &body("AF20022"), None).1, ManagementError::NoSubscription);
        assert!(matches!(
            classify(400, &body("AF20030"), None).1,
            ManagementError::BadWindow(_)
        ));
        assert!(matches!(
            classify(400, &body("AF20051"), None).1,
            ManagementError::ContentGone(_)
        ));
        assert!(matches!(
            classify(403, &body("AF10001"), None),
            (false, ManagementError::Refused { .. })
        ));
        assert!(matches!(classify(503, b"", None), (true, _)));
    }

    /// Starting an enabled subscription (400 AF20024 from the service) is success.
    #[tokio::test]
    async fn starting_an_enabled_subscription_succeeds() {
        use m365_sim::directory::CONTOSO;
        let sim = m365_sim::Sim::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let client = ManagementClient::new(
            &Endpoint::parse("X", &sim.url()).unwrap(),
            uuid::Uuid::new_v4(),
            reqwest::Client::new(),
            RetryPolicy::default(),
        );
        let tenant = TenantId::parse(&CONTOSO.to_string()).unwrap();
        let session = client.session(AccessToken::new(sim.manage_app_token(CONTOSO)), tenant);
        session.start_subscription(ContentType::SharePoint).await.unwrap();
        session.start_subscription(ContentType::SharePoint).await.unwrap();
    }
}
