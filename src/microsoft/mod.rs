//! Typed clients for Microsoft's services, the retry policy they share, and the one outbound
//! HTTP client.

pub mod graph;
pub mod management;
pub mod retry;

use std::time::Duration;

use serde::Deserialize;

/// Timeout for establishing a connection to any Microsoft endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout for one whole request (connect, send, receive).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared outbound client: rustls with TLS 1.2 as the floor, explicit timeouts, no
/// redirects followed automatically (a bearer token must never ride a redirect to another
/// host; callers that expect one, like the Teams report download, follow it themselves).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tls_version_min(reqwest::tls::Version::TLS_1_2)
        .user_agent(concat!("GroupMgr/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .expect("a rustls client with static settings always builds")
}

/// The error body Graph and the Management Activity API share: `{"error":{"code","message"}}`
/// (graph-groups.md §8, management-activity-api.md). `None` when the body is not one.
pub(crate) fn error_envelope(body: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .map(|e| (e.error.code, e.error.message))
}
