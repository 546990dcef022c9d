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
//! Keys (one hash tag per tenant, so both live in one Redis Cluster slot):
//! `routing:{<tenant>}:lease` and `routing:{<tenant>}:state`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use switchboard_acd::{AcdError, Engine, Outcome};
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
            Ok(true) => Ok(outcome),
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
        let records = self.cache.hash_get_all(&state_key(tenant)).await?;
        let engine = if records.is_empty() {
            Engine::new()
        } else {
            Engine::from_records(records).map_err(|error| HostError::Corrupt { tenant, error })?
        };
        info!(%tenant, holder = %self.options.holder, "routing tenant taken over");
        *slot = Some(Owned {
            engine,
            token,
            renew_at: now + ttl / 3,
        });
        Ok(())
    }
}
