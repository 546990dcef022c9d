//! One owner per tenant: the instance holding a tenant's lease in the
//! cache (Redis in production, in process in `dev`) runs its
//! [`Engine`] in memory, so matching is as fast as the engine, and every
//! operation's changed records are written to the tenant's state hash
//! before the caller hears of them.
//!
//! The write is fenced by the lease token ([`Cache::fenced_write`]): an
//! owner that was paused or cut off past its lease cannot overwrite the
//! state its successor loaded. A successor loads the records and carries
//! on; offers the former owner made expire at their `expires_at` on the
//! next [`EngineHost::tick`] and go to other agents.
//!
//! **Events without loss.** The routing events an operation produces
//! ([`crate::events`]) are written in the same fenced write, as journal
//! fields `j:<seq>` of the state hash, each holding one encoded event with
//! its id. Whoever owns the tenant moves them to the outbox
//! ([`EngineHost::journal`], then [`EngineHost::journal_done`]); a
//! successor finds what its predecessor had not moved, and re-appending an
//! event already in the outbox is skipped by its id.
//!
//! **Takeover without traffic.** Every tenant ever owned is listed in the
//! hash `routing:tenants`; [`EngineHost::maintain`], run periodically by
//! every instance, renews its own leases and takes over tenants whose lease
//! is free, so a dead owner's offers ring out and are re-offered even when
//! no request comes for that tenant.
//!
//! **Group commit.** Operations of one tenant are applied in memory one
//! after another, under a short lock that is never held across a round
//! trip. A writer task per owned tenant takes everything applied since
//! its last write (the union of the changed records, as they are after
//! the last operation, the new journal events, and journal trims) and
//! writes it in ONE fenced write; then it answers every caller of that
//! batch. A caller still hears of its operation only once it is in the
//! cache, and a read or a refusal only once the state it saw is; what
//! changes is that one round trip carries every operation that arrived
//! during the previous one (the design of write-ahead logs' group commit,
//! e.g. PostgreSQL's `commit_delay`, without the delay). If a write fails
//! the tenant is dropped and that batch and every operation applied after
//! it fail: they were applied to a state that is not the cache's; the next
//! call reloads it.
//!
//! Keys (one hash tag per tenant, so both live in one Redis Cluster slot):
//! `routing:{<tenant>}:lease` (the owner's token, `<holder>/<random>`: an
//! operator reads who owns a tenant there) and `routing:{<tenant>}:state`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use switchboard_acd::{AcdError, Changed, Engine, Outcome};
use switchboard_events::Event;
use switchboard_platform::{BackendKind, Cache};
use switchboard_tenancy::TenantId;
use tokio::sync::{Mutex, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};

/// How the host holds its leases.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Names this instance in logs and in its lease tokens
    /// (`<holder>/<random>`, unique per take).
    pub holder: String,
    /// How long a lease lasts unless renewed: how long a tenant waits for
    /// a successor when its owner dies.
    pub lease_ttl: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            holder: format!("routing-{}", uuid::Uuid::new_v4()),
            lease_ttl: switchboard_config::RoutingConfig::default().lease_ttl,
        }
    }
}

/// Why an operation did not run.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The engine refused the operation; nothing changed.
    #[error(transparent)]
    Refused(#[from] AcdError),
    /// Another instance owns the tenant now: send the operation there.
    #[error("another routing instance owns tenant {0}")]
    NotOwner(TenantId),
    /// This instance lost the tenant's lease before it could record the
    /// operation: it did not happen; the state is the new owner's.
    #[error("routing lease of tenant {0} was lost; the operation did not happen")]
    LeaseLost(TenantId),
    /// The cache failed; the operation did not happen (or its effect is
    /// unknown and will be reloaded).
    #[error(transparent)]
    Cache(#[from] switchboard_platform::Error),
    /// The persisted state does not load.
    #[error("routing state of tenant {tenant} is unreadable: {error}")]
    Corrupt { tenant: TenantId, error: AcdError },
}

/// A tenant this instance owns: its engine and what is not written yet.
struct Owned {
    engine: Engine,
    token: Vec<u8>,
    /// Renew before this; past it, operations still run until
    /// `renew_by` (the lease has a third of its TTL left), while one of
    /// them renews.
    renew_at: Instant,
    renew_by: Instant,
    /// Events written with the state but not yet in the outbox, by seq.
    journal: BTreeMap<u64, Arc<Event>>,
    /// The seq the next event gets (events are numbered when applied).
    next_journal_seq: u64,
    /// Loaded from an empty state: the configuration should be loaded
    /// into it (see [`EngineHost::claim_fresh`]).
    fresh: bool,
    /// Applied in memory since the writer last took a batch.
    pending: Pending,
    /// A writer task runs for this load of the tenant.
    writing: bool,
    /// Which load of the tenant this is: a writer of an earlier load
    /// leaves a later one alone.
    generation: u64,
}

/// What operations applied in memory still have to write.
#[derive(Default)]
struct Pending {
    changed: Changed,
    events: Vec<(u64, Arc<Event>)>,
    /// Journal seqs now in the outbox: delete their fields.
    trims: Vec<u64>,
    /// Everyone waiting for this state to be in the cache.
    waiters: Vec<oneshot::Sender<Result<(), Failure>>>,
}

impl Pending {
    fn writes_nothing(&self) -> bool {
        self.changed.is_empty() && self.events.is_empty() && self.trims.is_empty()
    }
}

/// Why a batch was not written, for everyone waiting on it.
#[derive(Debug, Clone)]
enum Failure {
    LeaseLost,
    Cache(String),
}

impl Failure {
    fn into_error(self, tenant: TenantId) -> HostError {
        match self {
            Self::LeaseLost => HostError::LeaseLost(tenant),
            Self::Cache(detail) => HostError::Cache(switchboard_platform::Error::unavailable(
                BackendKind::Cache,
                detail,
            )),
        }
    }
}

/// One tenant's place in the host.
#[derive(Default)]
struct Slot {
    state: SyncMutex<SlotState>,
    /// Serialises taking, renewing and loading the lease (round trips that
    /// operations do not wait for unless they must).
    owning: Mutex<()>,
}

#[derive(Default)]
struct SlotState {
    owned: Option<Owned>,
    /// Loads so far (the generation of the next is one more).
    loads: u64,
    /// The lease token of a load dropped after a write whose result is
    /// unknown: the lease is still ours, so the next owning renews it and
    /// reloads rather than waiting for it to expire.
    orphan_token: Option<Vec<u8>>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Prefix of the journal fields of the state hash.
const JOURNAL_PREFIX: &str = "j:";

/// The hash listing every tenant with routing state (field = tenant id).
pub const TENANTS_KEY: &str = "routing:tenants";

fn journal_field(seq: u64) -> String {
    format!("{JOURNAL_PREFIX}{seq:020}")
}

fn lease_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:lease")
}

fn state_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:state")
}

/// Runs tenants' engines for this instance. Cheap to share (`Arc`).
pub struct EngineHost {
    cache: Arc<dyn Cache>,
    options: HostOptions,
    tenants: SyncMutex<HashMap<TenantId, Arc<Slot>>>,
    counters: Arc<Counters>,
}

/// What the host's writers did since it started (all tenants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Fenced writes made.
    pub writes: u64,
    /// Callers answered by those writes (operations, reads and refusals
    /// that waited for them, journal trims).
    pub answered: u64,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    answered: AtomicU64,
}

impl EngineHost {
    pub fn new(cache: Arc<dyn Cache>, options: HostOptions) -> Self {
        Self {
            cache,
            options,
            tenants: SyncMutex::new(HashMap::new()),
            counters: Arc::default(),
        }
    }

    /// How many writes the host made and how many callers they answered:
    /// the second over the first is the mean group-commit batch.
    pub fn stats(&self) -> HostStats {
        HostStats {
            writes: self.counters.writes.load(Ordering::Relaxed),
            answered: self.counters.answered.load(Ordering::Relaxed),
        }
    }

    fn slot(&self, tenant: TenantId) -> Arc<Slot> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants.entry(tenant).or_default().clone()
    }

    fn slots(&self) -> Vec<(TenantId, Arc<Slot>)> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants.iter().map(|(t, s)| (*t, s.clone())).collect()
    }

    /// Runs `operation` on the tenant's engine and records what it
    /// changed. Operations of one tenant run one at a time, in the order
    /// they arrive; the call returns once the state the operation left (or,
    /// if refused, saw) is in the cache.
    pub async fn execute(
        &self,
        tenant: TenantId,
        operation: impl FnOnce(&mut Engine) -> Result<Outcome, AcdError>,
    ) -> Result<Outcome, HostError> {
        let slot = self.slot(tenant);
        self.own(tenant, &slot).await?;
        let (result, written) = {
            let mut state = slot.lock();
            let Some(owned) = state.owned.as_mut() else {
                return Err(HostError::LeaseLost(tenant));
            };
            let result = operation(&mut owned.engine);
            if let Ok(outcome) = &result {
                owned.pending.changed.merge(&outcome.changed);
                for event in crate::events::events_of(tenant, outcome, &owned.engine) {
                    owned
                        .pending
                        .events
                        .push((owned.next_journal_seq, Arc::new(event)));
                    owned.next_journal_seq += 1;
                }
            }
            (result, self.wait_written(tenant, &slot, owned))
        };
        if let Some(written) = written {
            Self::written(tenant, written).await?;
        }
        Ok(result?)
    }

    /// Reads the tenant's engine (owning it first if needed); returns once
    /// the state it read is in the cache.
    pub async fn read<T>(
        &self,
        tenant: TenantId,
        read: impl FnOnce(&Engine) -> T,
    ) -> Result<T, HostError> {
        let slot = self.slot(tenant);
        self.own(tenant, &slot).await?;
        let (value, written) = {
            let mut state = slot.lock();
            let Some(owned) = state.owned.as_mut() else {
                return Err(HostError::LeaseLost(tenant));
            };
            (read(&owned.engine), self.wait_written(tenant, &slot, owned))
        };
        if let Some(written) = written {
            Self::written(tenant, written).await?;
        }
        Ok(value)
    }

    /// Expires offers and ends wrap-ups due by `at` (call at
    /// [`Engine::next_deadline`], and on taking a tenant over).
    pub async fn tick(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Outcome, HostError> {
        self.execute(tenant, |engine| engine.tick(at)).await
    }

    /// Up to `max` events of the tenant not yet moved to the outbox, oldest
    /// first, with their journal seqs. Empty if this instance does not own
    /// the tenant. Only events already in the cache are listed. (Shared,
    /// not copied: the tenant's lock is held while they are listed.)
    pub async fn journal(&self, tenant: TenantId, max: usize) -> Vec<(u64, Arc<Event>)> {
        let slot = self.slot(tenant);
        let state = slot.lock();
        state.owned.as_ref().map_or_else(Vec::new, |owned| {
            owned
                .journal
                .iter()
                .take(max)
                .map(|(seq, event)| (*seq, Arc::clone(event)))
                .collect()
        })
    }

    /// Removes journal entries now in the outbox, with the tenant's next
    /// write (fenced: a former owner removes nothing).
    pub async fn journal_done(&self, tenant: TenantId, seqs: &[u64]) -> Result<(), HostError> {
        let slot = self.slot(tenant);
        let written = {
            let mut state = slot.lock();
            let Some(owned) = state.owned.as_mut() else {
                return Err(HostError::NotOwner(tenant));
            };
            owned.pending.trims.extend_from_slice(seqs);
            self.wait_written(tenant, &slot, owned)
        };
        match written {
            Some(written) => Self::written(tenant, written).await,
            None => Ok(()),
        }
    }

    /// Owns the tenant (taking it if free) and tells whether its state was
    /// empty when loaded and nobody has claimed that yet: the caller then
    /// loads the tenant's configuration into it. True once per load.
    pub async fn claim_fresh(&self, tenant: TenantId) -> Result<bool, HostError> {
        let slot = self.slot(tenant);
        self.own(tenant, &slot).await?;
        let mut state = slot.lock();
        Ok(state
            .owned
            .as_mut()
            .is_some_and(|owned| std::mem::take(&mut owned.fresh)))
    }

    /// Tenants this instance owns now.
    pub fn owned_tenants(&self) -> Vec<TenantId> {
        self.slots()
            .into_iter()
            .filter(|(_, slot)| slot.lock().owned.is_some())
            .map(|(tenant, _)| tenant)
            .collect()
    }

    /// Whether this instance owns `tenant` now (without taking it).
    pub async fn owns(&self, tenant: TenantId) -> bool {
        self.slot(tenant).lock().owned.is_some()
    }

    /// The periodic upkeep every instance runs (every third of the lease
    /// TTL or more often): renews the leases it holds, and takes over every
    /// listed tenant whose lease is free. Returns the tenants it took over,
    /// which the caller should [`tick`](Self::tick) at once.
    pub async fn maintain(&self) -> Result<Vec<TenantId>, HostError> {
        let mut taken = Vec::new();
        let listed = self.cache.hash_get_all(TENANTS_KEY).await?;
        let mut tenants: Vec<TenantId> = listed
            .iter()
            .filter_map(|(field, _)| field.parse().ok())
            .collect();
        for tenant in self.owned_tenants() {
            if !tenants.contains(&tenant) {
                tenants.push(tenant);
            }
        }
        for tenant in tenants {
            let slot = self.slot(tenant);
            let held = slot.lock().owned.is_some();
            match self.own_now(tenant, &slot).await {
                Ok(()) if !held => taken.push(tenant),
                Ok(()) | Err(HostError::NotOwner(_)) => {}
                Err(error) => warn!(%tenant, %error, "routing upkeep failed for a tenant"),
            }
        }
        Ok(taken)
    }

    /// The earliest deadline (offer expiry, wrap-up end) of the tenant, if
    /// this instance owns it.
    pub async fn next_deadline(&self, tenant: TenantId) -> Option<DateTime<Utc>> {
        let slot = self.slot(tenant);
        let state = slot.lock();
        state
            .owned
            .as_ref()
            .and_then(|owned| owned.engine.next_deadline())
    }

    /// Gives every lease this instance holds back (graceful shutdown), so a
    /// successor need not wait for them to expire. Operations not yet
    /// written fail (a write in flight lands only if it beats the release).
    pub async fn release_all(&self) {
        for (tenant, slot) in self.slots() {
            let _owning = slot.owning.lock().await;
            let tokens: Vec<Vec<u8>> = {
                let mut state = slot.lock();
                let owned = state.owned.take().map(|owned| owned.token);
                owned.into_iter().chain(state.orphan_token.take()).collect()
            };
            for token in tokens {
                if let Err(error) = self.cache.release_lease(&lease_key(tenant), &token).await {
                    warn!(%tenant, error = %error, "could not release the routing lease");
                }
            }
        }
    }

    /// After something was applied to (or read from) `owned`: whether the
    /// caller must wait for a write, and the receiver to wait on. Starts
    /// the tenant's writer when it is not running. No wait when nothing is
    /// pending or being written: what the caller saw is in the cache.
    fn wait_written(
        &self,
        tenant: TenantId,
        slot: &Arc<Slot>,
        owned: &mut Owned,
    ) -> Option<oneshot::Receiver<Result<(), Failure>>> {
        if !owned.writing && owned.pending.writes_nothing() && owned.pending.waiters.is_empty() {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        owned.pending.waiters.push(sender);
        if !owned.writing {
            owned.writing = true;
            tokio::spawn(write_loop(Writer {
                cache: self.cache.clone(),
                tenant,
                slot: slot.clone(),
                generation: owned.generation,
                holder: self.options.holder.clone(),
                counters: self.counters.clone(),
            }));
        }
        Some(receiver)
    }

    async fn written(
        tenant: TenantId,
        receiver: oneshot::Receiver<Result<(), Failure>>,
    ) -> Result<(), HostError> {
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(failure.into_error(tenant)),
            // The load was dropped (its lease lost) before it was written.
            Err(_) => Err(HostError::LeaseLost(tenant)),
        }
    }

    /// The tenant's engine and pending journal as the cache holds them.
    async fn load(
        &self,
        tenant: TenantId,
    ) -> Result<(Engine, BTreeMap<u64, Arc<Event>>), HostError> {
        let records = self.cache.hash_get_all(&state_key(tenant)).await?;
        let mut journal = BTreeMap::new();
        let mut engine_records = Vec::with_capacity(records.len());
        for (field, value) in records {
            match field.strip_prefix(JOURNAL_PREFIX) {
                Some(seq) => {
                    let corrupt = |message: String| HostError::Corrupt {
                        tenant,
                        error: AcdError::InvalidConfig(message),
                    };
                    let seq: u64 = seq
                        .parse()
                        .map_err(|_| corrupt(format!("journal field {field}: bad seq")))?;
                    let event = Event::decode(&value)
                        .map_err(|error| corrupt(format!("journal field {field}: {error}")))?;
                    journal.insert(seq, Arc::new(event));
                }
                None => engine_records.push((field, value)),
            }
        }
        let engine = if engine_records.is_empty() {
            Engine::new()
        } else {
            Engine::from_records(engine_records)
                .map_err(|error| HostError::Corrupt { tenant, error })?
        };
        Ok((engine, journal))
    }

    /// Makes sure this instance holds the tenant's lease before an
    /// operation. Fast path: the lease is fresh. Past its renewal time but
    /// with a third of its TTL left, one caller renews while the others go
    /// on; otherwise the caller waits for [`Self::own_now`].
    async fn own(&self, tenant: TenantId, slot: &Arc<Slot>) -> Result<(), HostError> {
        let now = Instant::now();
        let may_go_on = {
            let state = slot.lock();
            match &state.owned {
                Some(owned) if now < owned.renew_at => return Ok(()),
                Some(owned) => now < owned.renew_by,
                None => false,
            }
        };
        if may_go_on {
            match slot.owning.try_lock() {
                Ok(owning) => {
                    let result = self.own_locked(tenant, slot).await;
                    drop(owning);
                    result
                }
                Err(_) => Ok(()),
            }
        } else {
            self.own_now(tenant, slot).await
        }
    }

    /// Makes sure this instance holds the tenant's lease, renewing it or
    /// taking it (and loading the state) as needed.
    async fn own_now(&self, tenant: TenantId, slot: &Arc<Slot>) -> Result<(), HostError> {
        let _owning = slot.owning.lock().await;
        self.own_locked(tenant, slot).await
    }

    /// [`Self::own_now`] with the slot's `owning` lock held.
    async fn own_locked(&self, tenant: TenantId, slot: &Arc<Slot>) -> Result<(), HostError> {
        let ttl = self.options.lease_ttl;
        let lease = lease_key(tenant);
        let now = Instant::now();
        let held = {
            let state = slot.lock();
            match &state.owned {
                Some(owned) if now < owned.renew_at => return Ok(()),
                Some(owned) => Some((owned.token.clone(), owned.generation)),
                None => None,
            }
        };
        if let Some((token, generation)) = held {
            let renewed = self.cache.renew_lease(&lease, &token, ttl).await?;
            let mut state = slot.lock();
            let current = state
                .owned
                .as_mut()
                .filter(|owned| owned.generation == generation);
            match (renewed, current) {
                (true, Some(owned)) => {
                    owned.renew_at = now + ttl / 3;
                    owned.renew_by = now + ttl * 2 / 3;
                    return Ok(());
                }
                (false, Some(_)) => {
                    warn!(%tenant, holder = %self.options.holder, "routing lease expired before renewal");
                    state.owned = None;
                }
                // A failed write dropped this load meanwhile; the token
                // waits as the orphan.
                (_, None) => {}
            }
        }
        let orphan = slot.lock().orphan_token.take();
        let token = match orphan {
            Some(token) => match self.cache.renew_lease(&lease, &token, ttl).await {
                Ok(true) => Some(token),
                Ok(false) => None,
                Err(error) => {
                    slot.lock().orphan_token = Some(token);
                    return Err(error.into());
                }
            },
            None => None,
        };
        let token = match token {
            Some(token) => token,
            None => {
                // Unique per take, and naming its holder, so that an
                // operator (or a test) reading the lease sees who owns it.
                let token =
                    format!("{}/{}", self.options.holder, uuid::Uuid::new_v4()).into_bytes();
                if !self.cache.set_if_absent(&lease, &token, ttl).await? {
                    return Err(HostError::NotOwner(tenant));
                }
                token
            }
        };
        let loaded = self.load(tenant).await;
        let (engine, journal) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                // Let another instance (or a later call) try again at once.
                let _ = self.cache.release_lease(&lease, &token).await;
                return Err(error);
            }
        };
        if let Err(error) = self
            .cache
            .hash_set(TENANTS_KEY, &tenant.to_string(), b"1")
            .await
        {
            let _ = self.cache.release_lease(&lease, &token).await;
            return Err(error.into());
        }
        info!(%tenant, holder = %self.options.holder, pending_events = journal.len(), "routing tenant taken over");
        let next_journal_seq = journal.keys().next_back().map_or(0, |seq| seq + 1);
        let fresh = engine.queues().next().is_none() && engine.agents().next().is_none();
        let mut state = slot.lock();
        state.loads += 1;
        let generation = state.loads;
        state.owned = Some(Owned {
            fresh,
            engine,
            token,
            renew_at: now + ttl / 3,
            renew_by: now + ttl * 2 / 3,
            journal,
            next_journal_seq,
            pending: Pending::default(),
            writing: false,
            generation,
        });
        Ok(())
    }
}

/// The writer task of one load of one tenant.
struct Writer {
    cache: Arc<dyn Cache>,
    tenant: TenantId,
    slot: Arc<Slot>,
    generation: u64,
    holder: String,
    counters: Arc<Counters>,
}

/// One write: what a batch puts and deletes, and whom it answers.
struct Batch {
    token: Vec<u8>,
    /// Changed records, encoded; the events' fields are added outside the
    /// tenant's lock.
    puts: Vec<(String, Bytes)>,
    deletes: Vec<String>,
    events: Vec<(u64, Arc<Event>)>,
    trims: Vec<u64>,
    waiters: Vec<oneshot::Sender<Result<(), Failure>>>,
}

/// Writes batches until nothing is pending, then stops (the next caller
/// starts a new one). Stops as well when its load is dropped.
async fn write_loop(writer: Writer) {
    let (lease, state_hash) = (lease_key(writer.tenant), state_key(writer.tenant));
    loop {
        let Some(mut batch) = next_batch(&writer) else {
            return;
        };
        batch.puts.extend(
            batch
                .events
                .iter()
                .map(|(seq, event)| (journal_field(*seq), Bytes::from(event.encode()))),
        );
        let started = Instant::now();
        let written = writer
            .cache
            .fenced_write(
                &lease,
                &batch.token,
                &state_hash,
                &batch.puts,
                &batch.deletes,
            )
            .await;
        crate::metrics::write("state", started.elapsed());
        let counters = &writer.counters;
        counters.writes.fetch_add(1, Ordering::Relaxed);
        counters
            .answered
            .fetch_add(batch.waiters.len() as u64, Ordering::Relaxed);
        let failure = match written {
            Ok(true) => None,
            Ok(false) => Some(Failure::LeaseLost),
            Err(error) => Some(Failure::Cache(error.to_string())),
        };
        let mut state = writer.slot.lock();
        let current = state
            .owned
            .as_ref()
            .is_some_and(|owned| owned.generation == writer.generation);
        match failure {
            None => {
                if let Some(owned) = state.owned.as_mut().filter(|_| current) {
                    owned.journal.extend(batch.events);
                    for seq in &batch.trims {
                        owned.journal.remove(seq);
                    }
                }
                drop(state);
                for waiter in batch.waiters {
                    let _ = waiter.send(Ok(()));
                }
            }
            Some(failure) => {
                let tenant = writer.tenant;
                warn!(%tenant, holder = %writer.holder, ?failure, "routing write failed, dropping the tenant");
                let mut waiters = batch.waiters;
                if current && let Some(owned) = state.owned.take() {
                    // Applied on top of the batch that failed: lost too.
                    waiters.extend(owned.pending.waiters);
                    if matches!(failure, Failure::Cache(_)) {
                        // The write may or may not have landed; the lease
                        // is still ours, so reload under it.
                        state.orphan_token = Some(owned.token);
                    }
                }
                for waiter in waiters {
                    let _ = waiter.send(Err(failure.clone()));
                }
                return;
            }
        }
    }
}

/// Takes what is pending as the next batch (answering at once those
/// waiting on a state already written), or marks the writer stopped.
fn next_batch(writer: &Writer) -> Option<Batch> {
    let mut state = writer.slot.lock();
    let owned = state
        .owned
        .as_mut()
        .filter(|owned| owned.generation == writer.generation)?;
    loop {
        let pending = std::mem::take(&mut owned.pending);
        if pending.waiters.is_empty() && pending.writes_nothing() {
            owned.writing = false;
            return None;
        }
        if pending.writes_nothing() {
            // Reads and refusals of a state the last batch wrote.
            for waiter in pending.waiters {
                let _ = waiter.send(Ok(()));
            }
            continue;
        }
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        if !pending.changed.is_empty() {
            for (field, value) in owned.engine.changed_records(&pending.changed) {
                match value {
                    Some(value) => puts.push((field, Bytes::from(value))),
                    None => deletes.push(field),
                }
            }
        }
        deletes.extend(pending.trims.iter().map(|seq| journal_field(*seq)));
        return Some(Batch {
            token: owned.token.clone(),
            puts,
            deletes,
            events: pending.events,
            trims: pending.trims,
            waiters: pending.waiters,
        });
    }
}
