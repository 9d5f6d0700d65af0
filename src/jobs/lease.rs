//! One sync per tenant at a time, across processes and instances: a lease in the tenant's job
//! state — a small document naming its holder and when it expires, written only with the
//! version it was read at (a blob ETag, or the embedded store's row version), so two workers
//! cannot both take it. The holder renews it while it works and gives it up at the end; a
//! holder that crashed stops renewing, and its lease expires.
//!
//! (ARCHITECTURE.md speaks of a Blob lease under a host and a row with an expiry in the
//! embedded store. Both backends already offer conditional writes, so one document-based
//! lease serves both with the same guarantee: whoever wins the conditional write holds it.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::state::{StateError, TenantState, Version, load_doc, save_doc};
use crate::domain::TenantId;

const NAME: &str = "sync_lease";

/// The lease document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseDoc {
    holder: uuid::Uuid,
    expires_at: DateTime<Utc>,
}

/// Whether a tenant's sync is held by someone, and until when.
pub async fn held_until(
    state: &dyn TenantState,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StateError> {
    Ok(load_doc::<LeaseDoc>(state, tenant, NAME)
        .await?
        .map(|(doc, _)| doc.expires_at)
        .filter(|t| *t > now))
}

/// A held lease. Renewed in the background every third of its duration until `release`;
/// `lost()` turns true if a renewal failed (someone else holds it now, or the state store
/// stopped answering long enough for it to expire): the holder must stop writing.
pub struct Lease {
    tenant: TenantId,
    holder: uuid::Uuid,
    state: Arc<dyn TenantState>,
    version: Arc<tokio::sync::Mutex<Version>>,
    lost: Arc<AtomicBool>,
    /// Tells the renewer to stop between renewals (never in the middle of one).
    stop: tokio::sync::watch::Sender<bool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// Takes the tenant's lease for `duration`, or `None` when someone else holds it.
    pub async fn acquire(
        state: Arc<dyn TenantState>,
        tenant: TenantId,
        duration: Duration,
    ) -> Result<Option<Lease>, StateError> {
        let now = Utc::now();
        let current = load_doc::<LeaseDoc>(state.as_ref(), &tenant, NAME).await?;
        if current.as_ref().is_some_and(|(doc, _)| doc.expires_at > now) {
            return Ok(None);
        }
        let holder = uuid::Uuid::new_v4();
        let doc = LeaseDoc {
            holder,
            expires_at: now + to_delta(duration),
        };
        let version = match save_doc(state.as_ref(), &tenant, NAME, &doc, current.as_ref().map(|(_, v)| v)).await {
            Ok(v) => v,
            // Someone took (or renewed) it between our read and our write.
            Err(StateError::Conflict) => return Ok(None),
            Err(e) => return Err(e),
        };
        let version = Arc::new(tokio::sync::Mutex::new(version));
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let renewer = tokio::spawn(renew(
            state.clone(),
            tenant,
            holder,
            duration,
            version.clone(),
            lost.clone(),
            stopped,
        ));
        Ok(Some(Lease {
            tenant,
            holder,
            state,
            version,
            lost,
            stop,
            renewer: Some(renewer),
        }))
    }

    /// Whether the lease was lost: stop working.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The flag `lost()` reads, for a `Budget` that ends with the lease.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Gives the lease up (it expires now), so the next sync need not wait. The renewer is
    /// stopped between renewals, not aborted in one: an aborted renewal could still land in
    /// the store after its version was forgotten, leaving the lease held by no one who can
    /// release it (the next invocation of the same sync then found it "already running").
    pub async fn release(mut self) {
        let _ = self.stop.send(true);
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.await;
        }
        let version = self.version.lock().await.clone();
        let doc = LeaseDoc {
            holder: self.holder,
            expires_at: Utc::now() - chrono::TimeDelta::seconds(1),
        };
        // Lost, or the store is down: it expires on its own.
        let _ = save_doc(self.state.as_ref(), &self.tenant, NAME, &doc, Some(&version)).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Released or not, nothing renews a lease whose holder is gone.
        if let Some(renewer) = &self.renewer {
            renewer.abort();
        }
    }
}

fn to_delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

async fn renew(
    state: Arc<dyn TenantState>,
    tenant: TenantId,
    holder: uuid::Uuid,
    duration: Duration,
    version: Arc<tokio::sync::Mutex<Version>>,
    lost: Arc<AtomicBool>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let every = duration / 3;
    let mut valid_until = Utc::now() + to_delta(duration);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            // Released (or the lease dropped): no renewal after this.
            _ = stopped.changed() => return,
        }
        let mut v = version.lock().await;
        let doc = LeaseDoc {
            holder,
            expires_at: Utc::now() + to_delta(duration),
        };
        match save_doc(state.as_ref(), &tenant, NAME, &doc, Some(&v)).await {
            Ok(next) => {
                *v = next;
                valid_until = doc.expires_at;
            }
            Err(StateError::Conflict) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // The store did not answer: try again, unless the lease has run out meanwhile.
            Err(_) if Utc::now() < valid_until => {}
            Err(_) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::state::EmbeddedState;

    async fn state() -> (Arc<dyn TenantState>, TenantId) {
        let (state, tenant) = EmbeddedState::for_test().await;
        (Arc::new(state), tenant)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_renewed_released_or_expired() {
        let (state, tenant) = state().await;
        let d = Duration::from_millis(300);
        let first = Lease::acquire(state.clone(), tenant, d).await.unwrap().expect("free");
        assert!(
            Lease::acquire(state.clone(), tenant, d).await.unwrap().is_none(),
            "held"
        );
        // Renewed past its first expiry while the holder works.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!first.lost());
        assert!(
            Lease::acquire(state.clone(), tenant, d).await.unwrap().is_none(),
            "still held"
        );
        first.release().await;
        let second = Lease::acquire(state.clone(), tenant, d)
            .await
            .unwrap()
            .expect("released");
        // A holder that stops renewing (crashed) loses it once it expires.
        if let Some(renewer) = &second.renewer {
            renewer.abort();
        }
        std::mem::forget(second);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let third = Lease::acquire(state.clone(), tenant, d).await.unwrap();
        assert!(third.is_some(), "an expired lease is free");
    }

    /// A release that meets a renewal under way still frees the lease: the next invocation of
    /// the same sync never finds it "already running" (with short leases, renewals are
    /// constant; an aborted renewal used to land after the release had given up).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_during_a_renewal_frees_the_lease() {
        let (state, tenant) = state().await;
        let d = Duration::from_millis(30);
        for i in 0..200u64 {
            let lease = Lease::acquire(state.clone(), tenant, d)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("invocation {i}: the lease was still held"));
            tokio::time::sleep(Duration::from_millis(8 + i % 7)).await;
            lease.release().await;
        }
    }

    #[tokio::test]
    async fn two_racing_for_a_free_lease_get_one_holder() {
        let (state, tenant) = state().await;
        let d = Duration::from_secs(5);
        let (a, b) = tokio::join!(
            Lease::acquire(state.clone(), tenant, d),
            Lease::acquire(state.clone(), tenant, d)
        );
        let holders = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
        assert_eq!(holders, 1);
    }
}
