//! The tenant log: tracing events of a tenant-scoped request or job, written to the `logs`
//! table with their event code and message template in clear and all their fields sealed to
//! the tenant's own key (ARCHITECTURE.md §6). The same sink seals licensed users' UPNs.
//!
//! The request path only does a `try_send` on a bounded channel. A writer task batches,
//! seals and writes. If the channel is full the entry is counted as dropped (and reported on
//! stdout) — requests never wait and nothing is ever written in plaintext. A tenant without a
//! registered log key gets no tenant log (counted as `no_log_key`).
//!
//! Data keys: one per tenant at a time, 32 random bytes, HPKE-sealed to the tenant's current
//! public key and stored in `log_keys` *before* any record uses it. The plaintext key lives
//! only in this task's memory and is replaced after `key_max_age`, after
//! `MAX_RECORDS_PER_KEY` records, and as soon as the tenant registers a new public key.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::catalog;
use super::fields::Fields;
use crate::auth::Upn;
use crate::crypto::seal::{Exhausted, LICENSED_UPN, LOG_RECORD_V2, log_record};
use crate::crypto::{BlindIndex, DataKey, PublisherKey};
use crate::domain::{TenantId, TenantRecord, TenantStatus};
use crate::store::{LogKeyRecord, LogRecord, Store, StoreError};

/// Tuning of the sink; the defaults suit production.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Entries buffered between the request path and the writer.
    pub capacity: usize,
    /// Most entries written in one transaction.
    pub batch: usize,
    /// How long the writer waits to fill a batch.
    pub linger: Duration,
    /// Data key lifetime.
    pub key_max_age: Duration,
    /// How often drops are reported on stdout.
    pub report_every: Duration,
    /// GroupMgr's publisher key (`GROUPMGR_PUBLISHER_KEY`): data keys are sealed with it in
    /// HPKE Auth mode, so readers can tell our entries from forged ones. `None`: Base mode,
    /// and readers report the entries as unauthenticated.
    pub publisher: Option<Arc<PublisherKey>>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            capacity: 16 * 1024,
            batch: 1024,
            linger: Duration::from_millis(100),
            key_max_age: Duration::from_secs(3600),
            report_every: Duration::from_secs(60),
            publisher: None,
        }
    }
}

/// Counters, for reports and tests.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub written: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_no_key: AtomicU64,
    pub dropped_store: AtomicU64,
    pub upns_sealed: AtomicU64,
    pub data_keys_created: AtomicU64,
}

struct PendingLog {
    id: uuid::Uuid,
    tenant: TenantId,
    time: DateTime<Utc>,
    level: &'static str,
    event: &'static str,
    template: &'static str,
    fields: Map<String, Value>,
}

enum Job {
    Log(PendingLog),
    Upn {
        tenant: TenantId,
        index: BlindIndex,
        upn: Upn,
    },
    Flush(oneshot::Sender<()>),
}

/// The handle the request path uses. Cheap to clone.
#[derive(Clone)]
pub struct TenantLogSink {
    tx: mpsc::Sender<Job>,
    stats: Arc<SinkStats>,
}

impl TenantLogSink {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>, options: SinkOptions) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(options.capacity);
        let stats = Arc::new(SinkStats::default());
        let writer = Writer {
            store,
            keys: HashMap::new(),
            stats: stats.clone(),
            reported: [0; 3],
            options,
        };
        let handle = tokio::spawn(writer.run(rx));
        (Self { tx, stats }, handle)
    }

    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    fn offer(&self, job: Job) {
        if self.tx.try_send(job).is_err() {
            self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues the sealing of a licensed user's UPN (stored beside its blind index).
    pub fn seal_upn(&self, tenant: TenantId, index: BlindIndex, upn: &Upn) {
        self.offer(Job::Upn {
            tenant,
            index,
            upn: upn.clone(),
        });
    }

    /// Waits until everything queued before this call is written (used at shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    fn log(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::of(event);
        let Some(spec) = fields.str("event").and_then(catalog::spec) else {
            return;
        };
        let Some(tenant) = fields.str("tenant_id").and_then(|t| TenantId::parse(t).ok()) else {
            return;
        };
        fields.map.remove("event");
        fields.map.remove("tenant_id");
        self.offer(Job::Log(PendingLog {
            id: uuid::Uuid::now_v7(),
            tenant,
            time: Utc::now(),
            level: event.metadata().level().as_str(),
            event: spec.code,
            template: spec.template,
            fields: fields.map,
        }));
    }
}

/// The tracing layer feeding the sink: events with a catalogued `event` code and a
/// `tenant_id` field.
pub struct TenantLogLayer(pub TenantLogSink);

impl<S: tracing::Subscriber> Layer<S> for TenantLogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        self.0.log(event);
    }
}

struct Writer {
    store: Arc<dyn Store>,
    /// Each tenant's current data key and when it was made.
    keys: HashMap<TenantId, (DataKey, Instant)>,
    stats: Arc<SinkStats>,
    /// Drop counters at the last report: full, no key, store.
    reported: [u64; 3],
    options: SinkOptions,
}

/// Why a tenant's entries could not be sealed.
enum Unsealable {
    NoKey,
    Store(StoreError),
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut report = tokio::time::interval(self.options.report_every);
        report.tick().await;
        loop {
            let first = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                _ = report.tick() => {
                    self.report();
                    continue;
                }
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.options.linger;
            while batch.len() < self.options.batch && !matches!(batch.last(), Some(Job::Flush(_))) {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
            self.process(batch).await;
        }
        self.report();
    }

    fn report(&mut self) {
        let now = [
            self.stats.dropped_full.load(Ordering::Relaxed),
            self.stats.dropped_no_key.load(Ordering::Relaxed),
            self.stats.dropped_store.load(Ordering::Relaxed),
        ];
        for (i, reason) in ["buffer_full", "no_log_key", "store_error"].iter().enumerate() {
            let delta = now[i] - self.reported[i];
            if delta > 0 {
                tracing::warn!(event = "tenant_log_dropped", dropped = delta, reason = *reason);
            }
        }
        self.reported = now;
    }

    async fn process(&mut self, batch: Vec<Job>) {
        let mut logs: BTreeMap<TenantId, Vec<PendingLog>> = BTreeMap::new();
        let mut upns = Vec::new();
        let mut flushes = Vec::new();
        for job in batch {
            match job {
                Job::Log(l) => logs.entry(l.tenant).or_default().push(l),
                Job::Upn { tenant, index, upn } => upns.push((tenant, index, upn)),
                Job::Flush(done) => flushes.push(done),
            }
        }
        let mut records = Vec::new();
        for (tenant, entries) in logs {
            let n = entries.len() as u64;
            match self.seal_logs(&tenant, entries).await {
                Ok(mut sealed) => records.append(&mut sealed),
                Err(Unsealable::NoKey) => {
                    self.stats.dropped_no_key.fetch_add(n, Ordering::Relaxed);
                }
                Err(Unsealable::Store(e)) => {
                    self.stats.dropped_store.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(event = "tenant_log_error", error = %e);
                }
            }
        }
        if !records.is_empty() {
            let n = records.len() as u64;
            match self.store.append_logs(&records).await {
                Ok(()) => {
                    self.stats.written.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.dropped_store.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(event = "tenant_log_error", error = %e);
                }
            }
        }
        for (tenant, index, upn) in upns {
            if let Err(Unsealable::Store(e)) = self.seal_upn(&tenant, &index, &upn).await {
                tracing::warn!(event = "tenant_log_error", error = %e);
            }
        }
        if !flushes.is_empty() {
            self.report();
        }
        for done in flushes {
            let _ = done.send(());
        }
    }

    /// The tenant, if its data may be sealed now (registered, not offboarded, with a key).
    async fn sealable_tenant(&self, tenant: &TenantId) -> Result<TenantRecord, Unsealable> {
        match self.store.tenant(tenant).await {
            Ok(Some(rec)) if rec.status != TenantStatus::Offboarded && rec.log_key.is_some() => Ok(rec),
            Ok(_) => Err(Unsealable::NoKey),
            Err(e) => Err(Unsealable::Store(e)),
        }
    }

    /// The tenant's current data key, making (and durably storing) a new one when needed.
    async fn key_for(&mut self, rec: &TenantRecord, force_new: bool) -> Result<&DataKey, Unsealable> {
        let pk = rec.log_key.as_ref().ok_or(Unsealable::NoKey)?;
        let stale = match self.keys.get(&rec.tenant_id) {
            None => true,
            Some((key, born)) => {
                force_new
                    || born.elapsed() >= self.options.key_max_age
                    || key.public_key_id != pk.id()
                    || key.used() >= crate::crypto::seal::MAX_RECORDS_PER_KEY
            }
        };
        if stale {
            let publisher = self.options.publisher.as_deref();
            let (key, enc, sealed_key) = DataKey::generate(rec.tenant_id, pk, publisher);
            self.store
                .put_log_key(&LogKeyRecord {
                    key_id: key.key_id,
                    tenant_id: rec.tenant_id,
                    public_key_id: pk.id().to_string(),
                    enc,
                    sealed_key,
                    created_at: Utc::now(),
                    sender_public_key: publisher.map(|p| p.public().as_bytes().to_vec()),
                })
                .await
                .map_err(Unsealable::Store)?;
            self.stats.data_keys_created.fetch_add(1, Ordering::Relaxed);
            self.keys.insert(rec.tenant_id, (key, Instant::now()));
        }
        Ok(&self.keys.get(&rec.tenant_id).expect("inserted above").0)
    }

    /// Seals with the current key, rotating once if it is exhausted.
    async fn seal(
        &mut self,
        rec: &TenantRecord,
        purpose: &[u8],
        record: &[u8],
        plaintext: &[u8],
    ) -> Result<crate::crypto::SealedValue, Unsealable> {
        match self.key_for(rec, false).await?.seal(purpose, record, plaintext) {
            Ok(s) => Ok(s),
            Err(Exhausted) => Ok(self
                .key_for(rec, true)
                .await?
                .seal(purpose, record, plaintext)
                .expect("a fresh key is not exhausted")),
        }
    }

    async fn seal_logs(&mut self, tenant: &TenantId, entries: Vec<PendingLog>) -> Result<Vec<LogRecord>, Unsealable> {
        let rec = self.sealable_tenant(tenant).await?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let plaintext = serde_json::to_vec(&e.fields).expect("JSON values serialise");
            // The time as both stores keep it (whole microseconds), so that the sealed record
            // and the stored columns agree to the last digit.
            let time = DateTime::from_timestamp_micros(e.time.timestamp_micros()).unwrap_or(e.time);
            let record = log_record(&e.id, time, e.level, e.event, e.template);
            let sealed = self.seal(&rec, LOG_RECORD_V2, &record, &plaintext).await?;
            out.push(LogRecord {
                id: e.id,
                tenant_id: e.tenant,
                time,
                level: e.level.to_string(),
                event: e.event.to_string(),
                message: e.template.to_string(),
                sealed,
            });
        }
        Ok(out)
    }

    async fn seal_upn(&mut self, tenant: &TenantId, index: &BlindIndex, upn: &Upn) -> Result<(), Unsealable> {
        let rec = self.sealable_tenant(tenant).await?;
        let sealed = self.seal(&rec, LICENSED_UPN, &index.0, upn.expose().as_bytes()).await?;
        self.store
            .set_sealed_upn(tenant, index, &sealed)
            .await
            .map_err(Unsealable::Store)?;
        self.stats.upns_sealed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
