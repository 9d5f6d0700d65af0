//! Lifecycle notifications without mail rights (issue 16, item 7): events go to the HTTPS
//! endpoint a tenant registered, signed and delivered as the Standard Webhooks specification
//! describes (https://www.standardwebhooks.com, "Specification"): headers `webhook-id` (the
//! event's id, the same on every attempt), `webhook-timestamp` (Unix seconds of the attempt)
//! and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the
//! secret `whsec_…`); a body `{"type", "timestamp", "data"}`.
//!
//! At least once, nothing lost: an event is first written to the tenant's outbox (job state,
//! version-conditional), then a timer function (`WebhookDispatch`, every minute) sends what is
//! due, removing an event only once the receiver answered 2xx, and trying failures again
//! after growing waits (the specification's example schedule: 5 s, 5 min, 30 min, 2 h, 5 h,
//! then every 10 h) for about two days (then it is dropped, and the tenant log says so). An
//! event claimed by one dispatcher is not sent by another for two minutes; a dispatcher sends
//! for at most one of them.
//!
//! What an event says (a group's name, who decided) is sealed while it waits: AES-256-GCM under
//! a key of the tenant derived from `GROUPMGR_INDEX_KEY` (not in the database; another key than
//! the people's seal), the event's id and type as associated data. The outbox in our database
//! holds each event's id, type, times and attempts in clear, its data as ciphertext only. An
//! event that cannot be opened (the key changed) is dropped, and the tenant log says so.
//!
//! The endpoint and its secret are kept in the tenant's own GroupMgr site ("GroupMgr
//! Settings"), like the policy. Delivery refuses addresses inside private, loopback and
//! link-local networks and addresses that embed them (an endpoint must not reach GroupMgr's
//! own network), connects to the address it checked (no proxy), follows no redirect and waits
//! at most 10 seconds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::PeopleSeal;
use crate::domain::{InvalidInput, TenantId};
use crate::jobs::state::{StateError, TenantState, load_doc, save_doc};

const OUTBOX_KEY: &str = "webhook_outbox";
/// The waits between attempts, by attempts made; after the last, the event is dropped.
const BACKOFF: [TimeDelta; 10] = [
    TimeDelta::seconds(5),
    TimeDelta::minutes(5),
    TimeDelta::minutes(30),
    TimeDelta::hours(2),
    TimeDelta::hours(5),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
];
/// How long a dispatcher holds the events it is sending.
const CLAIM: TimeDelta = TimeDelta::minutes(2);
/// The most events an outbox holds; beyond, the oldest undeliverable ones are dropped (and
/// said so in the tenant log).
const MAX_OUTBOX: usize = 10_000;
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
const CAS_ATTEMPTS: usize = 20;

/// The events GroupMgr sends.
pub const EVENT_TYPES: [&str; 6] = [
    "review.created",
    "review.due",
    "group.archived",
    "group.deleted",
    "group.restored",
    "group.ownerless",
];

/// A signing secret: 32 random bytes, written `whsec_` + base64.
pub struct WebhookSecret(zeroize::Zeroizing<Vec<u8>>);

impl WebhookSecret {
    pub fn generate() -> Self {
        use ring::rand::SecureRandom as _;
        let mut bytes = vec![0u8; 32];
        // The system's randomness failing is not something to go on from.
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random number generator works");
        Self(zeroize::Zeroizing::new(bytes))
    }

    /// `whsec_<base64>` (the prefix optional, as the reference implementations accept).
    pub fn parse(s: &str) -> Option<Self> {
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        B64.decode(b64)
            .ok()
            .filter(|k| !k.is_empty())
            .map(|k| Self(zeroize::Zeroizing::new(k)))
    }

    pub fn encode(&self) -> String {
        format!("whsec_{}", B64.encode(self.0.as_slice()))
    }

    /// The `webhook-signature` value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", B64.encode(ctx.sign().as_ref()))
    }
}

/// A registered endpoint, as kept in the tenant's settings list.
#[derive(Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// An endpoint's URL as GroupMgr will call it: `https` (plain `http` only to a loopback host
/// when `loopback` is allowed, for local runs and tests), a host, no user name or password,
/// no fragment, at most 2048 characters.
pub fn check_url(raw: &str, loopback: bool) -> Result<url::Url, InvalidInput> {
    let bad = |why: &str| InvalidInput::new("url", why.to_string());
    if raw.len() > 2048 {
        return Err(bad("at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("must be an absolute URL"))?;
    let host = url.host_str().ok_or_else(|| bad("must name a host"))?;
    let is_loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback && is_loopback => {}
        _ => return Err(bad("must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    Ok(url)
}

/// Whether an address is one a webhook may reach: not private, loopback (unless allowed),
/// link-local (Azure's instance metadata lives there), shared (100.64/10), unspecified,
/// multicast or documentation space.
fn public(ip: IpAddr, loopback: bool) -> bool {
    if ip.is_loopback() {
        return loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
                // Benchmarking (198.18/15), reserved (240/4), and Azure's platform address
                // (168.63.129.16, DHCP/DNS/health of every Azure host).
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240
                || o == [168, 63, 129, 16])
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4), loopback);
            }
            let s = v6.segments();
            let embedded =
                |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            // Addresses that carry an IPv4 address: IPv4-compatible (::a.b.c.d), NAT64
            // (64:ff9b::/96) and 6to4 (2002::/16) are judged by the address they carry.
            if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return public(embedded(s[6], s[7]), loopback);
            }
            if s[0] == 0x2002 {
                return public(embedded(s[1], s[2]), loopback);
            }
            !(v6.is_unspecified() || v6.is_multicast() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Refuses, when it is registered, an endpoint whose host resolves to an address a webhook
/// may not reach. A name that does not resolve now is accepted (its deliveries will say
/// why they fail); each delivery checks again.
pub async fn check_resolves_public(url: &url::Url, loopback: bool) -> Result<(), InvalidInput> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']');
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((host, port))).await;
    if let Ok(Ok(addrs)) = lookup
        && addrs.into_iter().any(|a| !public(a.ip(), loopback))
    {
        return Err(InvalidInput::new(
            "url",
            "must name a host on a public address (it resolves to a private, loopback or link-local one)",
        ));
    }
    Ok(())
}

/// One event waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: DateTime<Utc>,
    pub data: Value,
    #[serde(default)]
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
}

impl Pending {
    /// The body sent: `{"type", "timestamp", "data"}`.
    pub fn body(&self) -> Vec<u8> {
        let v = serde_json::json!({
            "type": self.kind,
            "timestamp": self.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
            "data": self.data,
        });
        // A JSON value with string keys serialises.
        serde_json::to_vec(&v).expect("JSON values serialise")
    }
}

/// One event as the outbox keeps it: its data sealed. (Field names as an older version wrote
/// them, `Pending`'s.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stored {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    timestamp: DateTime<Utc>,
    /// The data, sealed (`PeopleSeal::seal`, bound to `aad`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    /// The data in clear, as an outbox written before sealing held it: sealed by the next
    /// change of the outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(default)]
    attempts: u32,
    next_at: DateTime<Utc>,
}

impl Stored {
    /// What the seal binds the data to: the event's id and type.
    fn aad(id: &str, kind: &str) -> String {
        format!("webhook/{id}/{kind}")
    }

    fn seal(event: &Pending, seal: &PeopleSeal) -> Self {
        // A JSON value with string keys serialises.
        let plain = serde_json::to_vec(&event.data).expect("JSON values serialise");
        Stored {
            id: event.id.clone(),
            kind: event.kind.clone(),
            timestamp: event.timestamp,
            sealed: Some(seal.seal(&Self::aad(&event.id, &event.kind), &plain)),
            data: None,
            attempts: event.attempts,
            next_at: event.next_at,
        }
    }

    /// The event, its data opened; `None` when it cannot be (another key, tampered).
    fn open(&self, seal: &PeopleSeal) -> Option<Pending> {
        let data = match (&self.sealed, &self.data) {
            (Some(sealed), _) => serde_json::from_slice(&seal.open(&Self::aad(&self.id, &self.kind), sealed)?).ok()?,
            (None, Some(plain)) => plain.clone(),
            // An older version's event whose data was `null`.
            (None, None) => Value::Null,
        };
        Some(Pending {
            id: self.id.clone(),
            kind: self.kind.clone(),
            timestamp: self.timestamp,
            data,
            attempts: self.attempts,
            next_at: self.next_at,
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Outbox {
    events: Vec<Stored>,
}

/// Changes the outbox with `f`, conditionally on the version read, until it sticks. With a
/// seal, events an older version kept in clear are sealed on the way.
async fn update<R>(
    state: &dyn TenantState,
    tenant: &TenantId,
    seal: Option<&PeopleSeal>,
    mut f: impl FnMut(&mut Outbox) -> R,
) -> Result<R, StateError> {
    for _ in 0..CAS_ATTEMPTS {
        let (mut outbox, version) = match load_doc::<Outbox>(state, tenant, OUTBOX_KEY).await? {
            Some((o, v)) => (o, Some(v)),
            None => (Outbox::default(), None),
        };
        if let Some(seal) = seal {
            for e in outbox.events.iter_mut().filter(|e| e.sealed.is_none()) {
                if let Some(open) = e.open(seal) {
                    *e = Stored::seal(&open, seal);
                }
            }
        }
        let r = f(&mut outbox);
        match save_doc(state, tenant, OUTBOX_KEY, &outbox, version.as_ref()).await {
            Ok(_) => return Ok(r),
            Err(StateError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StateError::Conflict)
}

/// Writes an event to the tenant's outbox, due now, its data sealed with `seal` (the tenant's
/// `PseudonymKey::outbox_seal`).
pub async fn enqueue(
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    kind: &str,
    data: Value,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    enqueue_with_id(
        state,
        seal,
        tenant,
        &format!("msg_{}", uuid::Uuid::new_v4().simple()),
        kind,
        data,
        now,
    )
    .await
}

/// `enqueue` under a given id: an event already waiting under that id is not added twice
/// (what a step repeated after a crash enqueues again keeps its id).
pub async fn enqueue_with_id(
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    id: &str,
    kind: &str,
    data: Value,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    let event = Stored::seal(
        &Pending {
            id: id.to_string(),
            kind: kind.to_string(),
            timestamp: now,
            data,
            attempts: 0,
            next_at: now,
        },
        seal,
    );
    let dropped = update(state, tenant, Some(seal), |o| {
        if o.events.iter().any(|e| e.id == event.id) {
            return 0;
        }
        o.events.push(event.clone());
        let over = o.events.len().saturating_sub(MAX_OUTBOX);
        o.events.drain(..over).count()
    })
    .await?;
    if dropped > 0 {
        tracing::warn!(event = "webhook_events_dropped", tenant_id = %tenant, count = dropped);
    }
    Ok(())
}

/// Whether the tenant has events waiting.
pub async fn waiting(state: &dyn TenantState, tenant: &TenantId) -> Result<usize, StateError> {
    Ok(load_doc::<Outbox>(state, tenant, OUTBOX_KEY)
        .await?
        .map_or(0, |(o, _)| o.events.len()))
}

/// Forgets every waiting event (the tenant registered no endpoint).
pub async fn discard(state: &dyn TenantState, tenant: &TenantId) -> Result<(), StateError> {
    update(state, tenant, None, |o| o.events.clear()).await
}

/// The events waiting, in queue order, their data opened (those that cannot be opened are
/// left out). For operators and tests; reads only.
pub async fn queued(state: &dyn TenantState, seal: &PeopleSeal, tenant: &TenantId) -> Result<Vec<Pending>, StateError> {
    Ok(load_doc::<Outbox>(state, tenant, OUTBOX_KEY)
        .await?
        .map(|(o, _)| o.events.iter().filter_map(|e| e.open(seal)).collect())
        .unwrap_or_default())
}

/// What one dispatch of a tenant's outbox did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub delivered: usize,
    pub failed: usize,
    pub dropped: usize,
    pub waiting: usize,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the endpoint's address is not allowed ({0})")]
    Address(String),
    #[error("the endpoint could not be reached: {0}")]
    Transport(String),
    #[error("the endpoint answered {0}")]
    Status(u16),
}

/// Sends one attempt of an event.
pub async fn deliver(
    endpoint: &Endpoint,
    event: &Pending,
    now: DateTime<Utc>,
    loopback: bool,
) -> Result<(), DeliveryError> {
    let url = check_url(&endpoint.url, loopback).map_err(|e| DeliveryError::Address(e.to_string()))?;
    let secret =
        WebhookSecret::parse(&endpoint.secret).ok_or_else(|| DeliveryError::Address("no valid secret".into()))?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    // Resolved once, checked, and then the very address checked is the one connected to (a
    // second lookup could answer differently).
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(|c| c == '[' || c == ']'), port))
        .await
        .map_err(|e| DeliveryError::Transport(e.to_string()))?
        .collect();
    let addr = addrs
        .iter()
        .copied()
        .find(|a| public(a.ip(), loopback))
        .ok_or_else(|| DeliveryError::Address(format!("{host} resolves to no public address")))?;
    if addrs.iter().any(|a| !public(a.ip(), loopback)) {
        return Err(DeliveryError::Address(format!("{host} resolves to a private address")));
    }
    let client = reqwest::Client::builder()
        // A proxy would look the name up again itself: the address checked must be the one
        // connected to.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DELIVERY_TIMEOUT)
        .resolve(&host, addr)
        .build()
        .map_err(|e| DeliveryError::Transport(e.to_string()))?;
    let body = event.body();
    let timestamp = now.timestamp();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &event.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", secret.sign(&event.id, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| DeliveryError::Transport(e.without_url().to_string()))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(resp.status().as_u16()))
    }
}

/// How long one dispatch of a tenant may send, well inside the two minutes its claim holds
/// the events (those not sent by then are sent by a later run, their attempts not counted).
const SEND_BUDGET: Duration = Duration::from_secs(60);

/// Sends the tenant's due events to `endpoint`; removes those delivered, sets the next
/// attempt of the others, drops those out of attempts. Each attempt is stamped with the
/// clock's time when it is sent.
pub async fn dispatch(
    state: &dyn TenantState,
    seal: &PeopleSeal,
    tenant: &TenantId,
    endpoint: &Endpoint,
    clock: &crate::jobs::Clock,
    loopback: bool,
) -> Result<Dispatched, StateError> {
    let now = clock.now();
    let started = std::time::Instant::now();
    // Claim what is due, so that another dispatcher leaves it alone meanwhile.
    let claimed: Vec<Stored> = update(state, tenant, Some(seal), |o| {
        let mut due = Vec::new();
        for e in o.events.iter_mut().filter(|e| e.next_at <= now) {
            e.next_at = now + CLAIM;
            due.push(e.clone());
        }
        due
    })
    .await?;
    let mut outcomes = Vec::with_capacity(claimed.len());
    // Those whose data cannot be opened (the key changed): never deliverable.
    let mut unopened = Vec::new();
    for stored in &claimed {
        if started.elapsed() > SEND_BUDGET {
            break;
        }
        let Some(event) = stored.open(seal) else {
            unopened.push(stored.id.clone());
            continue;
        };
        let event = &event;
        let result = deliver(endpoint, event, clock.now(), loopback).await;
        if let Err(e) = &result {
            tracing::warn!(event = "webhook_attempt_failed", tenant_id = %tenant, webhook_id = %event.id, attempt = event.attempts + 1, error = %e);
        }
        outcomes.push((event.id.clone(), result.is_ok()));
    }
    let mut report = Dispatched::default();
    let dropped = update(state, tenant, Some(seal), |o| {
        let mut dropped = Vec::new();
        o.events.retain(|e| !unopened.contains(&e.id));
        o.events
            .retain_mut(|e| match outcomes.iter().find(|(id, _)| *id == e.id) {
                None => true,
                Some((_, true)) => false,
                Some((_, false)) => {
                    let wait = BACKOFF.get(e.attempts as usize);
                    e.attempts += 1;
                    match wait {
                        Some(w) => {
                            e.next_at = now + *w;
                            true
                        }
                        None => {
                            dropped.push(e.id.clone());
                            false
                        }
                    }
                }
            });
        report.waiting = o.events.len();
        dropped
    })
    .await?;
    for id in &dropped {
        tracing::warn!(event = "webhook_event_dropped", tenant_id = %tenant, webhook_id = %id);
    }
    for id in &unopened {
        tracing::warn!(event = "webhook_event_not_opened", tenant_id = %tenant, webhook_id = %id);
    }
    report.delivered = outcomes.iter().filter(|(_, ok)| *ok).count();
    report.failed = outcomes.len() - report.delivered;
    report.dropped = dropped.len() + unopened.len();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published test vector (standard-webhooks, the reference
    /// implementations' tests): a receiver's library accepts what GroupMgr signs.
    #[test]
    fn signatures_match_the_specifications_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let fresh = WebhookSecret::generate();
        let again = WebhookSecret::parse(&fresh.encode()).unwrap();
        assert_eq!(fresh.sign("a", 1, b"x"), again.sign("a", 1, b"x"));
        assert!(WebhookSecret::parse("whsec_").is_none());
    }

    fn seal(byte: u8, tenant: &TenantId) -> PeopleSeal {
        crate::crypto::PseudonymKey::new(&crate::crypto::IndexKey::from_bytes([byte; 32])).outbox_seal(tenant)
    }

    /// Events wait sealed; an outbox an older version wrote in clear is sealed by its next
    /// change, and still delivered with what it said.
    #[tokio::test]
    async fn events_wait_sealed_and_clear_ones_are_sealed_on_the_next_change() {
        let (state, tenant) = crate::jobs::state::EmbeddedState::for_test().await;
        let key = seal(1, &tenant);
        let now = Utc::now();
        let legacy = serde_json::json!({"events": [{
            "id": "msg_old", "type": "group.deleted", "timestamp": now, "data": {"displayName": "Finance Team"},
            "attempts": 0, "next_at": now
        }]});
        state
            .save(&tenant, OUTBOX_KEY, &legacy.to_string(), None)
            .await
            .unwrap();
        let data = serde_json::json!({"groupId": "g1", "displayName": "HR Team", "decidedBy": "5f1c"});
        enqueue_with_id(&state, &key, &tenant, "msg_new", "review.created", data.clone(), now)
            .await
            .unwrap();
        let (raw, _) = state.load(&tenant, OUTBOX_KEY).await.unwrap().unwrap();
        for clear in ["Finance Team", "HR Team", "displayName", "5f1c", "\"data\""] {
            assert!(!raw.contains(clear), "{clear} in {raw}");
        }
        let queued = queued(&state, &key, &tenant).await.unwrap();
        let got: Vec<(&str, &Value)> = queued.iter().map(|e| (e.id.as_str(), &e.data)).collect();
        assert_eq!(
            got,
            [
                ("msg_old", &serde_json::json!({"displayName": "Finance Team"})),
                ("msg_new", &data)
            ]
        );
        // Bound to its id and type: moved to another event, it does not open.
        let mut doc: Value = serde_json::from_str(&raw).unwrap();
        let sealed = doc["events"][1]["sealed"].clone();
        doc["events"][0]["sealed"] = sealed;
        let stored: Outbox = serde_json::from_value(doc).unwrap();
        assert!(stored.events[0].open(&key).is_none());
        assert!(stored.events[1].open(&key).is_some());
    }

    /// What another key sealed (the index key changed) is dropped, never sent, and said.
    #[tokio::test]
    async fn events_another_key_sealed_are_dropped_not_sent() {
        let (state, tenant) = crate::jobs::state::EmbeddedState::for_test().await;
        let now = Utc::now();
        enqueue(
            &state,
            &seal(1, &tenant),
            &tenant,
            "group.ownerless",
            serde_json::json!({}),
            now,
        )
        .await
        .unwrap();
        let endpoint = Endpoint {
            // Never reached: nothing is sent.
            url: "https://hooks.invalid/x".into(),
            secret: WebhookSecret::generate().encode(),
        };
        let clock = crate::jobs::Clock::from_fn(move || now);
        let report = dispatch(&state, &seal(2, &tenant), &tenant, &endpoint, &clock, false)
            .await
            .unwrap();
        assert_eq!(
            report,
            Dispatched {
                delivered: 0,
                failed: 0,
                dropped: 1,
                waiting: 0
            }
        );
        assert_eq!(waiting(&state, &tenant).await.unwrap(), 0);
    }

    #[test]
    fn only_https_to_public_addresses() {
        assert!(check_url("https://hooks.example.com/groupmgr?k=1", false).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://user:pw@hooks.example.com/x",
            "https://hooks.example.com/x#frag",
            "ftp://hooks.example.com/x",
            "not a url",
            "http://127.0.0.1:8080/x",
        ] {
            assert_eq!(check_url(bad, false).unwrap_err().field, "url", "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8080/x", true).is_ok());
        assert!(
            check_url("http://hooks.example.com/x", true).is_err(),
            "http only to loopback"
        );
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "168.63.129.16",
            "198.18.0.1",
            "240.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
        ] {
            assert!(!public(ip.parse().unwrap(), false), "{ip}");
        }
        for ip in ["20.190.128.1", "2603:1000::1"] {
            assert!(public(ip.parse().unwrap(), false), "{ip}");
        }
        assert!(public("127.0.0.1".parse().unwrap(), true));
    }
}

/// What one `WebhookDispatch` run did, over every tenant.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub tenants: usize,
    pub delivered: usize,
    pub failed: usize,
    pub dropped: usize,
    pub discarded: usize,
}

/// The timer's work: for each active tenant with events waiting, reads its endpoint (with
/// GroupMgr's grant on its site) and sends what is due; a tenant without an endpoint has its
/// events discarded. One tenant failing never stops the others.
pub async fn run(app: &crate::app::App) -> Result<RunSummary, crate::store::StoreError> {
    use crate::domain::TenantStatus;
    let mut summary = RunSummary::default();
    for t in app.store.tenants().await? {
        if t.status != TenantStatus::Active {
            continue;
        }
        let tenant = t.tenant_id;
        let outcome = async {
            if waiting(app.state.as_ref(), &tenant).await? == 0 {
                // Nothing waiting: not even its settings are read.
                return Ok::<_, anyhow::Error>(None);
            }
            let token = app.tokens.app_token(&tenant, &app.graph_resource).await?;
            let graph = app.graph.session(token);
            let endpoint =
                super::site::load_webhook(&graph, app.state.as_ref(), &tenant, &app.settings.sharepoint_site).await?;
            match endpoint {
                Some(e) => {
                    let seal = app.pseudonyms.outbox_seal(&tenant);
                    Ok(Some(Some(
                        dispatch(app.state.as_ref(), &seal, &tenant, &e, &app.clock, app.webhook_loopback).await?,
                    )))
                }
                // Nobody to tell.
                None => {
                    discard(app.state.as_ref(), &tenant).await?;
                    Ok(Some(None))
                }
            }
        }
        .await;
        match outcome {
            Ok(None) => {}
            Ok(Some(None)) => summary.discarded += 1,
            Ok(Some(Some(d))) => {
                summary.tenants += 1;
                summary.delivered += d.delivered;
                summary.failed += d.failed;
                summary.dropped += d.dropped;
            }
            Err(e) => {
                tracing::warn!(event = "webhook_dispatch_failed", tenant_id = %tenant, error = %e);
            }
        }
    }
    Ok(summary)
}
