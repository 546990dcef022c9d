//! What a call reads of its tenant's configuration (the dialed number,
//! its inbound rule and schedule, published flows, queues), cached in
//! process per tenant and valid for one configuration revision.
//!
//! **Invalidation: the revision, checked in the database at every call.**
//! Every configuration write bumps the tenant's revision as the first
//! statement of its own transaction ([`super::store::Store::write`]), so
//! the revision moves exactly when, and as soon as, a change commits,
//! whichever replica made it. A call starts by reading it (one short
//! read transaction: [`CachedConfig::tenant`]); the cached entries of an
//! older revision are dropped, so the very next call after any change
//! reads the change. Invalidating through the shared cache or an event
//! instead would save that read but could lose an invalidation (a process
//! dying between its commit and its publish, a missed message) and serve
//! old settings until the next change; the read costs one transaction,
//! where an uncached new call takes four (number, rule and schedule,
//! flow, queue).
//!
//! A value loaded on a miss is tagged with the revision read **before**
//! it, in the same transaction, so a change committing meanwhile makes it
//! stale at once instead of hiding behind the newer revision. Entries are
//! per tenant and read only by their tenant's calls; numbers, which are
//! looked up before the tenant is known, are found through an index whose
//! hits are checked against the tenant's own entry (a number that moved
//! to another tenant bumped its former tenant's revision, and is looked up
//! again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use switchboard_flows::Flow;
use switchboard_tenancy::{ClientScope, QueueId, Tenant, TenantId};
use uuid::Uuid;

use super::Item;
use super::RoutingConfig;
use super::domain::{
    AgentProfileSpec, ConfigKind, NumberSpec, OutboundRuleSpec, QueueSpec, check_e164,
};
use super::error::{ConfigError, Result};
use super::flows::{latest_version, version_of};
use super::items::item;
use super::projection::user_is_active_agent;
use super::rules::{LoadedRule, load_rule, tenant_number};
use super::store;
use super::{FlowVersionView, NumberRoute, RuleDecision};

/// Tenants whose configuration is kept at most; past it, the tenant used
/// least recently is dropped.
const MAX_TENANTS: usize = 10_000;

/// A published flow version and its flow, validated once.
#[derive(Debug)]
pub struct PublishedFlow {
    pub view: FlowVersionView,
    pub flow: Flow,
}

impl PublishedFlow {
    fn new(view: FlowVersionView) -> Result<Self> {
        let flow = view.flow()?;
        Ok(Self { view, flow })
    }
}

/// One tenant's cached configuration, all of one revision.
struct Entry {
    revision: i64,
    used: Instant,
    numbers: HashMap<String, NumberRoute>,
    rules: HashMap<Uuid, Arc<LoadedRule>>,
    latest_flows: HashMap<Uuid, Arc<PublishedFlow>>,
    flow_versions: HashMap<(Uuid, i32), Arc<PublishedFlow>>,
    queues: HashMap<QueueId, Arc<QueueSpec>>,
    outbound_rules: Option<Arc<Vec<Item<OutboundRuleSpec>>>>,
}

impl Entry {
    fn new(revision: i64) -> Self {
        Self {
            revision,
            used: Instant::now(),
            numbers: HashMap::new(),
            rules: HashMap::new(),
            latest_flows: HashMap::new(),
            flow_versions: HashMap::new(),
            queues: HashMap::new(),
            outbound_rules: None,
        }
    }
}

#[derive(Default)]
struct Entries {
    tenants: HashMap<TenantId, Entry>,
    /// Which tenant held a number when it was last looked up: a hint,
    /// checked against that tenant's entry.
    numbers: HashMap<String, TenantId>,
}

impl Entries {
    /// The tenant's entry, brought to `revision` (emptied when it was
    /// older). `None` when the entry is newer already: a value of
    /// `revision` is stale then.
    fn at(&mut self, tenant: TenantId, revision: i64) -> Option<&mut Entry> {
        if !self.tenants.contains_key(&tenant) && self.tenants.len() >= MAX_TENANTS {
            let oldest = self
                .tenants
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(tenant, _)| *tenant);
            if let Some(oldest) = oldest {
                self.tenants.remove(&oldest);
            }
        }
        let entry = self
            .tenants
            .entry(tenant)
            .or_insert_with(|| Entry::new(revision));
        if entry.revision < revision {
            *entry = Entry::new(revision);
        }
        entry.used = Instant::now();
        (entry.revision == revision).then_some(entry)
    }
}

/// The call path's view of the routing configuration: the runtime reads
/// of [`RoutingConfig`], cached per tenant (see the module documentation).
/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct CachedConfig {
    config: RoutingConfig,
    entries: Arc<Mutex<Entries>>,
}

impl CachedConfig {
    pub fn new(config: RoutingConfig) -> Self {
        Self {
            config,
            entries: Arc::default(),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The tenant's configuration as of now: reads its revision (one
    /// short transaction) and drops what was cached of an older one.
    pub async fn tenant(&self, tenant: TenantId) -> Result<TenantConfig> {
        let transaction = self.config.store().read(tenant).await?;
        let revision = store::revision(&transaction, tenant).await?;
        transaction.commit().await?;
        self.entries().at(tenant, revision);
        Ok(TenantConfig {
            cached: self.clone(),
            tenant,
            revision,
        })
    }

    /// Who holds `number` (E.164) and its inbound rule, with that tenant's
    /// configuration as of now. Not found when no tenant holds it; a
    /// validation error when it is not E.164.
    pub async fn number(&self, number: &str) -> Result<(NumberRoute, TenantConfig)> {
        let number = check_e164("number", number)?;
        let hinted = self.entries().numbers.get(&number).copied();
        // The hint first; if that tenant no longer holds it, ask every
        // tenant's numbers (the system lookup) once more.
        for hint in [hinted, None] {
            let tenant = match hint {
                Some(tenant) => tenant,
                None => self.config.resolve_number(&number).await?.tenant,
            };
            let config = self.tenant(tenant).await?;
            let found = config
                .read(
                    |entry| entry.numbers.get(&number).cloned(),
                    async |transaction| tenant_number(transaction, tenant, &number).await,
                    |entry, route| {
                        entry.numbers.insert(number.clone(), route);
                    },
                )
                .await;
            match found {
                Ok(route) => {
                    self.entries().numbers.insert(number, tenant);
                    return Ok((route, config));
                }
                Err(ConfigError::NotFound(_)) => {
                    self.entries().numbers.remove(&number);
                }
                Err(error) => return Err(error),
            }
        }
        Err(ConfigError::NotFound("number"))
    }
}

/// One tenant's configuration at the revision a call read (see
/// [`CachedConfig::tenant`]): what is cached of that revision is served
/// without a further check, and a miss is read from the database.
pub struct TenantConfig {
    cached: CachedConfig,
    tenant: TenantId,
    revision: i64,
}

impl std::fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConfig")
            .field("tenant", &self.tenant)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl TenantConfig {
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// What inbound rule `rule` does at `at`.
    pub async fn decide(&self, rule: Uuid, at: DateTime<Utc>) -> Result<RuleDecision> {
        let tenant = self.tenant;
        let loaded = self
            .read(
                |entry| entry.rules.get(&rule).cloned(),
                async |transaction| Ok(Arc::new(load_rule(transaction, tenant, rule).await?)),
                |entry, loaded| {
                    entry.rules.insert(rule, loaded);
                },
            )
            .await?;
        Ok(loaded.decide(at))
    }

    /// The version new calls of `flow` start on: its latest published one.
    pub async fn published_flow(&self, flow: Uuid) -> Result<Arc<PublishedFlow>> {
        let tenant = self.tenant;
        self.read(
            |entry| entry.latest_flows.get(&flow).cloned(),
            async |transaction| {
                let view = latest_version(transaction, tenant, flow)
                    .await?
                    .ok_or(ConfigError::NotFound("published flow"))?;
                Ok(Arc::new(PublishedFlow::new(view)?))
            },
            |entry, published| {
                entry.latest_flows.insert(flow, published);
            },
        )
        .await
    }

    /// Published version `version` of `flow`: what a call in progress runs.
    pub async fn flow_version(&self, flow: Uuid, version: i32) -> Result<Arc<PublishedFlow>> {
        let tenant = Tenant::whole(self.tenant);
        self.read(
            |entry| entry.flow_versions.get(&(flow, version)).cloned(),
            async |transaction| {
                let view = version_of(transaction, &tenant, flow, version).await?;
                Ok(Arc::new(PublishedFlow::new(view)?))
            },
            |entry, published| {
                entry.flow_versions.insert((flow, version), published);
            },
        )
        .await
    }

    /// The settings of queue `queue`.
    pub async fn queue(&self, queue: QueueId) -> Result<Arc<QueueSpec>> {
        let tenant = self.tenant;
        self.read(
            |entry| entry.queues.get(&queue).cloned(),
            async |transaction| {
                let row = store::get(
                    transaction,
                    QueueSpec::KIND,
                    tenant,
                    &ClientScope::All,
                    queue.as_uuid(),
                )
                .await?;
                Ok(Arc::new(item::<QueueSpec>(row)?.spec))
            },
            |entry, spec| {
                entry.queues.insert(queue, spec);
            },
        )
        .await
    }

    /// The tenant's outbound rules, in creation order.
    pub async fn outbound_rules(&self) -> Result<Arc<Vec<Item<OutboundRuleSpec>>>> {
        let tenant = self.tenant;
        self.read(
            |entry| entry.outbound_rules.clone(),
            async |transaction| {
                let rows = store::list(
                    transaction,
                    OutboundRuleSpec::KIND,
                    tenant,
                    &ClientScope::All,
                    None,
                    None,
                )
                .await?;
                Ok(Arc::new(
                    rows.into_iter().map(item).collect::<Result<Vec<_>>>()?,
                ))
            },
            |entry, rules| entry.outbound_rules = Some(rules),
        )
        .await
    }

    /// The agent groups of user `user`'s agent profile; `None` when the
    /// user has none, or identity has told that the user is no active
    /// agent any more (disabled, deleted, the agent role taken away).
    /// Read at every call: profiles are many and read only by outbound
    /// calls, and rights change.
    pub async fn agent_groups(&self, user: Uuid) -> Result<Option<Vec<Uuid>>> {
        let transaction = self.cached.config.store().read(self.tenant).await?;
        if user_is_active_agent(&transaction, self.tenant, user).await? == Some(false) {
            transaction.commit().await?;
            return Ok(None);
        }
        let row = store::find(
            &transaction,
            AgentProfileSpec::KIND,
            self.tenant,
            &ClientScope::All,
            user,
        )
        .await?;
        transaction.commit().await?;
        row.map(|row| item::<AgentProfileSpec>(row).map(|profile| profile.spec.agent_group_ids))
            .transpose()
    }

    /// The E.164 form of the tenant's number `id`.
    pub async fn number_by_id(&self, id: Uuid) -> Result<String> {
        let transaction = self.cached.config.store().read(self.tenant).await?;
        let row = store::get(
            &transaction,
            NumberSpec::KIND,
            self.tenant,
            &ClientScope::All,
            id,
        )
        .await?;
        transaction.commit().await?;
        Ok(item::<NumberSpec>(row)?.spec.number)
    }

    /// `get` from the entry of this revision, else `load` in a read
    /// transaction of the tenant and keep it (`put`) with the revision
    /// read first in that transaction.
    async fn read<T: Clone>(
        &self,
        get: impl FnOnce(&Entry) -> Option<T>,
        load: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T>,
        put: impl FnOnce(&mut Entry, T),
    ) -> Result<T> {
        let cached = {
            let entries = self.cached.entries();
            entries
                .tenants
                .get(&self.tenant)
                .filter(|entry| entry.revision == self.revision)
                .and_then(get)
        };
        if let Some(value) = cached {
            return Ok(value);
        }
        let transaction = self.cached.config.store().read(self.tenant).await?;
        let revision = store::revision(&transaction, self.tenant).await?;
        let value = load(&transaction).await?;
        transaction.commit().await?;
        if let Some(entry) = self.cached.entries().at(self.tenant, revision) {
            put(entry, value.clone());
        }
        Ok(value)
    }
}
