//! The one retry policy every call to Microsoft uses — Entra token requests, Graph requests
//! and pages, items inside a `$batch`, report downloads, the Management Activity API — and the
//! one loop that runs it (`RetryPolicy::run`). (The JWKS cache has its own refresh rules, and
//! the Azure Storage SDK its own retries.)
//!
//! An attempt that fails says how it may be retried (`Retry`): not at all; always, because
//! the service refused it before running it (429, AF429); or only if the request is
//! idempotent, because it may have run (5xx, a dropped connection). `Retry-After` is read in
//! one place (seconds, fractional seconds, or an HTTP date); without it the wait grows
//! exponentially with full jitter. Attempts are capped and a deadline bounds the whole
//! operation.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use ring::rand::SecureRandom;

/// Retry tuning.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub max_attempts: u32,
    /// First backoff step; doubles each attempt.
    pub base_delay: Duration,
    /// Largest single backoff step. A `Retry-After` is honoured in full, however long: when it
    /// asks for more than the deadline leaves, the operation ends with the error (which
    /// carries the wait) rather than coming back early.
    pub max_delay: Duration,
    /// Deadline for the whole operation, retries and waits included.
    pub deadline: Duration,
    /// An absolute limit besides (a job's time budget): no wait may end past it.
    pub not_after: Option<Instant>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
            not_after: None,
        }
    }
}

/// Whether a request may be sent again after a failure that may have happened after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, PUT/DELETE, PATCHes of absolute values, and writes made safe to repeat
    /// (a create that looks for its own result before trying again).
    Safe,
    /// Creates and other POSTs: resent only when the service says it did not run them.
    Once,
}

/// How a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Retrying cannot help (a refusal, a bad request, an unreadable answer).
    Never,
    /// The service refused the request before running it (throttling): resend whatever it
    /// was, after `after` if the service said.
    NotExecuted { after: Option<Duration> },
    /// A transient failure that may have happened after the request ran: resend only an
    /// idempotent request.
    Transient { after: Option<Duration> },
}

impl Retry {
    /// The classification of an HTTP status: 429 was not executed (graph-groups.md §9);
    /// 500/502/503/504 are transient; everything else is final.
    pub fn for_status(status: u16, after: Option<Duration>) -> Self {
        match status {
            429 => Retry::NotExecuted { after },
            500 | 502 | 503 | 504 => Retry::Transient { after },
            _ => Retry::Never,
        }
    }

    /// A request that got no answer (connection failed, reset or timed out).
    pub const NO_ANSWER: Retry = Retry::Transient { after: None };

    /// Whether the status is one a retry may cure.
    pub fn is_transient_status(status: u16) -> bool {
        Self::for_status(status, None) != Retry::Never
    }

    /// The wait the service asked for, if any, when a retry is allowed for `idempotency`.
    fn allowed(self, idempotency: Idempotency) -> Option<Option<Duration>> {
        match (self, idempotency) {
            (Retry::Never, _) => None,
            (Retry::NotExecuted { after }, _) => Some(after),
            (Retry::Transient { after }, Idempotency::Safe) => Some(after),
            (Retry::Transient { .. }, Idempotency::Once) => None,
        }
    }
}

/// A failed attempt: the error, and how it may be retried.
#[derive(Debug)]
pub struct Failure<E> {
    pub error: E,
    pub retry: Retry,
}

impl<E> Failure<E> {
    pub fn new(error: E, retry: Retry) -> Self {
        Self { error, retry }
    }

    /// A failure no retry can cure.
    pub fn fatal(error: E) -> Self {
        Self::new(error, Retry::Never)
    }
}

/// Parses a `Retry-After` value: delta-seconds (Graph sometimes sends fractions like
/// "2.128", graph-groups.md §9) or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of a response, if it has a readable one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// One operation's retry state: attempts made, time spent. `RetryPolicy::run` drives it;
/// loops that cannot be one closure (a `$batch` resending some of its items) use it directly,
/// so the rules stay the same.
pub struct Backoff<'a> {
    policy: &'a RetryPolicy,
    started: Instant,
    attempt: u32,
}

impl Backoff<'_> {
    /// Starts the next attempt; returns its number (from 1).
    pub fn begin(&mut self) -> u32 {
        self.attempt += 1;
        self.attempt
    }

    /// The wait before the next attempt after a failure classified `retry`, or `None` when
    /// the operation must end: not retryable for `idempotency`, attempts used up, or the
    /// wait would pass the deadline.
    pub fn next_wait(&self, retry: Retry, idempotency: Idempotency) -> Option<Duration> {
        let after = retry.allowed(idempotency)?;
        if self.attempt >= self.policy.max_attempts {
            return None;
        }
        let wait = self.policy.delay(self.attempt, after);
        let within_deadline = self.started.elapsed() + wait <= self.policy.deadline;
        let within_budget = self.policy.not_after.is_none_or(|t| Instant::now() + wait <= t);
        (within_deadline && within_budget).then_some(wait)
    }
}

impl RetryPolicy {
    pub fn backoff(&self) -> Backoff<'_> {
        Backoff {
            policy: self,
            started: Instant::now(),
            attempt: 0,
        }
    }

    /// Runs `attempt` (given the attempt number, from 1) until it succeeds or its failure may
    /// not be retried, waiting between attempts as the policy and the service say.
    pub async fn run<T, E, F, Fut>(&self, idempotency: Idempotency, mut attempt: F) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure<E>>>,
    {
        let mut backoff = self.backoff();
        loop {
            let n = backoff.begin();
            let failure = match attempt(n).await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            match backoff.next_wait(failure.retry, idempotency) {
                Some(wait) => {
                    tracing::debug!(attempt = n, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(failure.error),
            }
        }
    }

    /// The policy with an absolute limit: nothing waits past `t` (the budget of a job).
    pub fn until(&self, t: Instant) -> Self {
        Self {
            not_after: Some(self.not_after.map_or(t, |n| n.min(t))),
            ..self.clone()
        }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1): the server's
    /// `Retry-After` when it gave one, else capped exponential backoff with jitter.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra;
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        // Full jitter: uniform in [cap/2, cap], so retries from many callers spread out.
        let mut b = [0u8; 4];
        let _ = ring::rand::SystemRandom::new().fill(&mut b);
        let frac = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
        cap.mul_f64(0.5 + frac / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("10", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("2.128", now), Some(Duration::from_millis(2128)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        let d1 = p.delay(1, None);
        assert!(
            d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
            "{d1:?}"
        );
        let d3 = p.delay(3, None);
        assert!(
            d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
            "{d3:?}"
        );
        assert!(p.delay(20, None) <= Duration::from_secs(1));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5),
            "Retry-After is honoured in full"
        );
        assert_eq!(p.delay(1, Some(Duration::from_millis(300))), Duration::from_millis(300));
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..Default::default()
        }
    }

    /// Runs an operation that fails with `retry` `fails` times, then succeeds; returns the
    /// outcome and how many attempts were made.
    async fn attempts(idempotency: Idempotency, retry: Retry, fails: u32) -> (Result<u32, &'static str>, u32) {
        let made = AtomicU32::new(0);
        let out = quick()
            .run(idempotency, |n| {
                made.fetch_add(1, Ordering::Relaxed);
                async move {
                    if n <= fails {
                        Err(Failure::new("failed", retry))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        (out, made.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn the_loop_retries_by_classification_and_idempotency() {
        let transient = Retry::Transient { after: None };
        let throttled = Retry::NotExecuted { after: None };
        assert_eq!(attempts(Idempotency::Safe, transient, 2).await, (Ok(3), 3));
        assert_eq!(
            attempts(Idempotency::Once, transient, 2).await,
            (Err("failed"), 1),
            "a write that may have run is not resent"
        );
        assert_eq!(
            attempts(Idempotency::Once, throttled, 2).await,
            (Ok(3), 3),
            "a throttled write did not run: resent"
        );
        assert_eq!(attempts(Idempotency::Safe, Retry::Never, 1).await, (Err("failed"), 1));
        assert_eq!(
            attempts(Idempotency::Safe, transient, 10).await,
            (Err("failed"), 5),
            "attempts are capped"
        );
    }

    #[tokio::test]
    async fn the_deadline_ends_the_loop_before_a_wait_would_pass_it() {
        let p = RetryPolicy {
            deadline: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            ..quick()
        };
        let made = AtomicU32::new(0);
        let out: Result<(), &str> = p
            .run(Idempotency::Safe, |_| {
                made.fetch_add(1, Ordering::Relaxed);
                async {
                    Err(Failure::new(
                        "throttled",
                        Retry::NotExecuted {
                            after: Some(Duration::from_millis(40)),
                        },
                    ))
                }
            })
            .await;
        assert_eq!(out, Err("throttled"));
        assert_eq!(made.load(Ordering::Relaxed), 2, "40 ms + 40 ms would pass 50 ms");
    }

    #[tokio::test]
    async fn a_budget_ends_waits_that_would_pass_it() {
        let p = quick().until(Instant::now() + Duration::from_millis(30));
        let out: Result<(), &str> = p
            .run(Idempotency::Safe, |_| async {
                Err(Failure::new(
                    "throttled",
                    Retry::NotExecuted {
                        after: Some(Duration::from_millis(100)),
                    },
                ))
            })
            .await;
        assert_eq!(out, Err("throttled"), "a 100 ms wait does not fit a 30 ms budget");
    }

    #[test]
    fn statuses_are_classified_once() {
        assert_eq!(Retry::for_status(429, None), Retry::NotExecuted { after: None });
        for s in [500, 502, 503, 504] {
            assert!(matches!(Retry::for_status(s, None), Retry::Transient { .. }), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412] {
            assert_eq!(Retry::for_status(s, None), Retry::Never, "{s}");
        }
    }
}
