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
//! Keys (one hash tag per tenant, so both live in one Redis Cluster slot):
//! `routing:{<tenant>}:lease` and `routing:{<tenant>}:state`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use switchboard_acd::{AcdError, Engine, Outcome};
use switchboard_events::Event;
use switchboard_platform::Cache;
use switchboard_tenancy::TenantId;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

/// How the host holds its leases.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Names this instance in logs; the lease token is random per take.
    pub holder: String,
    /// How long a lease lasts unless renewed: how long a tenant waits for
    /// a successor when its owner dies.
    pub lease_ttl: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            holder: format!("routing-{}", uuid::Uuid::new_v4()),
            lease_ttl: Duration::from_secs(10),
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

struct Owned {
    engine: Engine,
    token: Vec<u8>,
    /// Renew before this.
    renew_at: Instant,
    /// Events written with the state but not yet in the outbox, by seq.
    journal: BTreeMap<u64, Event>,
    next_journal_seq: u64,
    /// Loaded from an empty state: the configuration should be loaded
    /// into it (see [`EngineHost::claim_fresh`]).
    fresh: bool,
}

/// Prefix of the journal fields of the state hash.
const JOURNAL_PREFIX: &str = "j:";

/// The hash listing every tenant with routing state (field = tenant id).
pub const TENANTS_KEY: &str = "routing:tenants";

fn journal_field(seq: u64) -> String {
    format!("{JOURNAL_PREFIX}{seq:020}")
}

/// Runs tenants' engines for this instance. Cheap to share (`Arc`).
pub struct EngineHost {
    cache: Arc<dyn Cache>,
    options: HostOptions,
    tenants: SyncMutex<HashMap<TenantId, Arc<Mutex<Option<Owned>>>>>,
}

fn lease_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:lease")
}

fn state_key(tenant: TenantId) -> String {
    format!("routing:{{{tenant}}}:state")
}

impl EngineHost {
    pub fn new(cache: Arc<dyn Cache>, options: HostOptions) -> Self {
        Self {
            cache,
            options,
            tenants: SyncMutex::new(HashMap::new()),
        }
    }

    fn slot(&self, tenant: TenantId) -> Arc<Mutex<Option<Owned>>> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants.entry(tenant).or_default().clone()
    }

    /// Runs `operation` on the tenant's engine and records what it
    /// changed. Operations of one tenant run one at a time.
    pub async fn execute(
        &self,
        tenant: TenantId,
        operation: impl FnOnce(&mut Engine) -> Result<Outcome, AcdError>,
    ) -> Result<Outcome, HostError> {
        let slot = self.slot(tenant);
        let mut slot = slot.lock().await;
        self.own(tenant, &mut slot).await?;
        let Some(owned) = slot.as_mut() else {
            return Err(HostError::NotOwner(tenant));
        };
        let outcome = operation(&mut owned.engine)?;
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        for (field, value) in owned.engine.changed_records(&outcome.changed) {
            match value {
                Some(value) => puts.push((field, Bytes::from(value))),
                None => deletes.push(field),
            }
        }
        let events = crate::events::events_of(tenant, &outcome, &owned.engine);
        let first_seq = owned.next_journal_seq;
        for (offset, event) in events.iter().enumerate() {
            puts.push((
                journal_field(first_seq + offset as u64),
                Bytes::from(event.encode()),
            ));
        }
        let written = self
            .cache
            .fenced_write(
                &lease_key(tenant),
                &owned.token,
                &state_key(tenant),
                &puts,
                &deletes,
            )
            .await;
        match written {
            Ok(true) => {
                for event in events {
                    owned.journal.insert(owned.next_journal_seq, event);
                    owned.next_journal_seq += 1;
                }
                Ok(outcome)
            }
            Ok(false) => {
                warn!(%tenant, holder = %self.options.holder, "routing lease lost, dropping the tenant");
                *slot = None;
                Err(HostError::LeaseLost(tenant))
            }
            Err(error) => {
                // Whether the write landed is unknown: reload next time.
                *slot = None;
                Err(error.into())
            }
        }
    }

    /// Reads the tenant's engine (owning it first if needed).
    pub async fn read<T>(
        &self,
        tenant: TenantId,
        read: impl FnOnce(&Engine) -> T,
    ) -> Result<T, HostError> {
        let slot = self.slot(tenant);
        let mut slot = slot.lock().await;
        self.own(tenant, &mut slot).await?;
        match slot.as_ref() {
            Some(owned) => Ok(read(&owned.engine)),
            None => Err(HostError::NotOwner(tenant)),
        }
    }

    /// Expires offers and ends wrap-ups due by `at` (call at
    /// [`Engine::next_deadline`], and on taking a tenant over).
    pub async fn tick(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Outcome, HostError> {
        self.execute(tenant, |engine| engine.tick(at)).await
    }

    /// Up to `max` events of the tenant not yet moved to the outbox, oldest
    /// first, with their journal seqs. Empty if this instance does not own
    /// the tenant.
    pub async fn journal(&self, tenant: TenantId, max: usize) -> Vec<(u64, Event)> {
        let slot = self.slot(tenant);
        let slot = slot.lock().await;
        slot.as_ref().map_or_else(Vec::new, |owned| {
            owned
                .journal
                .iter()
                .take(max)
                .map(|(seq, event)| (*seq, event.clone()))
                .collect()
        })
    }

    /// Removes journal entries now in the outbox (fenced: a former owner
    /// removes nothing).
    pub async fn journal_done(&self, tenant: TenantId, seqs: &[u64]) -> Result<(), HostError> {
        let slot = self.slot(tenant);
        let mut slot = slot.lock().await;
        let Some(owned) = slot.as_mut() else {
            return Err(HostError::NotOwner(tenant));
        };
        let deletes: Vec<String> = seqs.iter().map(|seq| journal_field(*seq)).collect();
        match self
            .cache
            .fenced_write(
                &lease_key(tenant),
                &owned.token,
                &state_key(tenant),
                &[],
                &deletes,
            )
            .await
        {
            Ok(true) => {
                for seq in seqs {
                    owned.journal.remove(seq);
                }
                Ok(())
            }
            Ok(false) => {
                *slot = None;
                Err(HostError::LeaseLost(tenant))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Owns the tenant (taking it if free) and tells whether its state was
    /// empty when loaded and nobody has claimed that yet: the caller then
    /// loads the tenant's configuration into it. True once per load.
    pub async fn claim_fresh(&self, tenant: TenantId) -> Result<bool, HostError> {
        let slot = self.slot(tenant);
        let mut slot = slot.lock().await;
        self.own(tenant, &mut slot).await?;
        Ok(slot
            .as_mut()
            .is_some_and(|owned| std::mem::take(&mut owned.fresh)))
    }

    /// Tenants this instance owns now.
    pub fn owned_tenants(&self) -> Vec<TenantId> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        tenants
            .iter()
            .filter(|(_, slot)| slot.try_lock().map_or(true, |slot| slot.is_some()))
            .map(|(tenant, _)| *tenant)
            .collect()
    }

    /// Whether this instance owns `tenant` now (without taking it).
    pub async fn owns(&self, tenant: TenantId) -> bool {
        let slot = self.slot(tenant);
        let slot = slot.lock().await;
        slot.is_some()
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
            let mut slot = slot.lock().await;
            let held = slot.is_some();
            match self.own(tenant, &mut slot).await {
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
        let slot = slot.lock().await;
        slot.as_ref().and_then(|owned| owned.engine.next_deadline())
    }

    /// Gives every lease this instance holds back (graceful shutdown), so a
    /// successor need not wait for them to expire.
    pub async fn release_all(&self) {
        let slots: Vec<(TenantId, Arc<Mutex<Option<Owned>>>)> = {
            let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            tenants.iter().map(|(t, s)| (*t, s.clone())).collect()
        };
        for (tenant, slot) in slots {
            let mut slot = slot.lock().await;
            if let Some(owned) = slot.take()
                && let Err(error) = self
                    .cache
                    .release_lease(&lease_key(tenant), &owned.token)
                    .await
            {
                warn!(%tenant, error = %error, "could not release the routing lease");
            }
        }
    }

    /// The tenant's engine and pending journal as the cache holds them.
    async fn load(&self, tenant: TenantId) -> Result<(Engine, BTreeMap<u64, Event>), HostError> {
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
                    journal.insert(seq, event);
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

    /// Makes sure this instance holds the tenant's lease, renewing it or
    /// taking it (and loading the state) as needed.
    async fn own(&self, tenant: TenantId, slot: &mut Option<Owned>) -> Result<(), HostError> {
        let ttl = self.options.lease_ttl;
        let now = Instant::now();
        if let Some(owned) = slot.as_mut() {
            if now < owned.renew_at {
                return Ok(());
            }
            if self
                .cache
                .renew_lease(&lease_key(tenant), &owned.token, ttl)
                .await?
            {
                owned.renew_at = now + ttl / 3;
                return Ok(());
            }
            warn!(%tenant, holder = %self.options.holder, "routing lease expired before renewal");
            *slot = None;
        }
        let token = uuid::Uuid::new_v4().as_bytes().to_vec();
        if !self
            .cache
            .set_if_absent(&lease_key(tenant), &token, ttl)
            .await?
        {
            return Err(HostError::NotOwner(tenant));
        }
        let loaded = self.load(tenant).await;
        let (engine, journal) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                // Let another instance (or a later call) try again at once.
                let _ = self.cache.release_lease(&lease_key(tenant), &token).await;
                return Err(error);
            }
        };
        if let Err(error) = self
            .cache
            .hash_set(TENANTS_KEY, &tenant.to_string(), b"1")
            .await
        {
            let _ = self.cache.release_lease(&lease_key(tenant), &token).await;
            return Err(error.into());
        }
        info!(%tenant, holder = %self.options.holder, pending_events = journal.len(), "routing tenant taken over");
        let next_journal_seq = journal.keys().next_back().map_or(0, |seq| seq + 1);
        let fresh = engine.queues().next().is_none() && engine.agents().next().is_none();
        *slot = Some(Owned {
            fresh,
            engine,
            token,
            renew_at: now + ttl / 3,
            journal,
            next_journal_seq,
        });
        Ok(())
    }
}
