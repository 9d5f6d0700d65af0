//! Switchable fault injection: a test (or an operator of a standalone sim) arms rules that
//! make matching requests fail the way Microsoft's services fail, a given number of times.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// How a matching request fails.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status and error code, optionally with a `Retry-After` header value
    /// (seconds like `"2"`, or an HTTP date).
    Status {
        status: u16,
        code: String,
        retry_after: Option<String>,
    },
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Send headers, then break the connection.
    Drop,
    /// Do the work (a Graph request is executed: a create creates), then break the connection
    /// instead of answering: the caller cannot know whether it happened.
    DropAnswer,
    /// Hold the request until the test releases it, telling the test when it arrived: a
    /// request known to be in flight, without sleeping.
    Hold(Hold),
}

/// The two sides of a `FaultKind::Hold`: the sim says when a request arrived; the test says
/// when it may go on.
#[derive(Clone, Default)]
pub struct Hold(Arc<(Notify, Notify)>);

impl Hold {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves once a request has arrived at the hold.
    pub async fn arrived(&self) {
        self.0.0.notified().await;
    }

    /// Lets the held request go on.
    pub fn release(&self) {
        self.0.1.notify_one();
    }

    /// The sim's side: announce the arrival, wait for the release.
    pub(crate) async fn wait(&self) {
        self.0.0.notify_one();
        self.0.1.notified().await;
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

impl PartialEq for Hold {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// One armed fault: requests whose path contains `path_contains` (and whose method matches,
/// if given) fail as `kind`, `remaining` more times (`None` = until cleared).
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub path_contains: String,
    pub method: Option<String>,
    pub kind: FaultKind,
    pub remaining: Option<u32>,
    /// Matching requests to let through before the fault starts firing ("page 3").
    pub skip: u32,
    /// Fire on every `every`-th matching request only (5 = 20 % of calls); 0 or 1 = all.
    pub every: u32,
    seen: u32,
}

impl FaultRule {
    pub fn new(path_contains: impl Into<String>, kind: FaultKind) -> Self {
        Self {
            path_contains: path_contains.into(),
            method: None,
            kind,
            remaining: None,
            skip: 0,
            every: 0,
            seen: 0,
        }
    }

    /// Graph's throttling answer: 429 `TooManyRequests` with `Retry-After` (graph-groups.md §9).
    pub fn throttled(path_contains: impl Into<String>, retry_after: &str) -> Self {
        Self::new(
            path_contains,
            FaultKind::Status {
                status: 429,
                code: "TooManyRequests".into(),
                retry_after: Some(retry_after.into()),
            },
        )
    }

    /// Fires on one matching request in `n` (deterministically: the n-th, 2n-th, …).
    pub fn one_in(mut self, n: u32) -> Self {
        self.every = n;
        self
    }

    /// Lets the first `n` matching requests pass.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_ascii_uppercase());
        self
    }
}

/// The armed rules. The first matching rule with uses left fires.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    /// How many requests met a fault so far (a test's proof that its fault was met).
    fired: std::sync::atomic::AtomicU64,
}

impl Faults {
    pub fn arm(&self, rule: FaultRule) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).push(rule);
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// How many requests met a fault so far.
    pub fn fired(&self) -> u64 {
        self.fired.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The fault this request (path, with its query if any) meets, if any, using up one of
    /// its uses.
    pub fn take(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let pos = rules.iter().position(|r| {
            path.contains(&r.path_contains) && r.method.as_deref().is_none_or(|m| m == method) && r.remaining != Some(0)
        })?;
        let rule = &mut rules[pos];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        if rule.every > 1 {
            rule.seen += 1;
            if !rule.seen.is_multiple_of(rule.every) {
                return None;
            }
        }
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        let kind = rule.kind.clone();
        if rule.remaining == Some(0) {
            rules.remove(pos);
        }
        self.fired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(kind)
    }
}
