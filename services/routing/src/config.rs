//! The routing configuration: what a tenant's admins set up (issue 6,
//! "Configuration") and what the routing runtime reads.
//!
//! - [`domain`] (from `switchboard-routing-api`): each kind's settings (`…Spec`), their validation and
//!   references, the inbound-rule decision, and the conversion of queues
//!   and agent profiles to the ACD engine's types. Pure, unit-tested.
//! - [`RoutingConfig`]: the API, which implements [`RoutingConfigApi`] in
//!   process for the gateway (`/v1/…`, admins), and is read by the runtime. Admin methods take the caller's
//!   [`Tenant`] (tenant id and client scope) first: another tenant's ids,
//!   and a client-scoped caller's view of other clients' numbers, flows and
//!   queues, are not found (404, never 403). Tenant-wide kinds (everything
//!   but numbers, flows and queues) need a caller that sees every client
//!   (403 `client_scope` otherwise). Runtime reads take a [`TenantId`].
//!
//! **Generic CRUD.** The kinds share one storage shape, so create, list,
//! get, replace and delete are generic over [`ConfigKind`] (implemented by
//! each spec): `config.create(&tenant, QueueSpec { … })`,
//! `config.get::<QueueSpec>(&tenant, id)`. Agent profiles are keyed by
//! their user's id ([`RoutingConfig::put_agent_profile`]); flows publish
//! versions ([`RoutingConfig::publish_flow`]); inbound rules have a forced
//! mode ([`RoutingConfig::set_forced_mode`]).
//!
//! **References** are checked inside the tenant on every write: a queue's
//! skills, a profile's skills and groups, a ring group's agents, a
//! number's rule, a rule's schedule and steps, a flow's queues, agents,
//! ring groups and voicemail boxes (a 400 naming the node), an outbound
//! rule's group and caller-id number. What an item refers to is recorded,
//! so deleting something in use is a 409 `in_use` naming the first user.
//! A flow is in use through its draft and its latest published version;
//! older versions (which calls in progress may still run) do not hold
//! what they refer to.
//!
//! **The call path** reads through [`CachedConfig`]: per tenant, in
//! process, valid while the tenant's [`RoutingConfig::revision`] holds.
//!
//! **Engine sync.** A [`ConfigObserver`] set with
//! [`RoutingConfig::with_observer`] is told, after commit, of every queue
//! and agent profile saved or deleted, in the engine's types.

mod cached;
mod directory;
mod engine;
mod error;
mod flows;
mod identity;
mod items;
mod local;
mod projection;
mod rules;
mod store;

use std::sync::Arc;

use switchboard_acd::{AgentProfile, QueueConfig};
use switchboard_platform::Database;
use switchboard_tenancy::{AgentId, QueueId, TenantId};

pub use cached::{CachedConfig, PublishedFlow, TenantConfig};
pub use directory::IdentityDirectory;
pub use error::{ConfigError, FieldError, Result};
pub use identity::IdentityAsDirectory;
pub use projection::{IdentityProjection, PROJECTION_BINDINGS, PROJECTION_CONSUMER_NAME};
#[cfg(feature = "openapi")]
pub use switchboard_routing_api::config::openapi;
pub use switchboard_routing_api::config::{
    AgentGroupSpec, AgentProfileSpec, AgentSkill, Announcements, Basis, CallbackOffer, CallerId,
    ChangedBy, ChannelCapacity, ConfigKind, FlowSpec, FlowVersionView, FlowView, ForcedKind,
    ForcedMode, ForcedModeSpec, InboundRuleSpec, Item, Kind, MaxWait, MaxWaiting, NextStep,
    NumberRoute, NumberSpec, OutboundRuleSpec, QueueSpec, ReasonCodeSpec, RemoteRoutingConfig,
    RequiredSkill, RingGroupSpec, RingStrategy, RoutingConfigApi, RoutingConfigExt, RuleDecision,
    RuleView, ScheduleSpec, ServiceLevel, SkillSpec, Spec, SpecError, Tenant, TrunkStrategy,
    VoicemailBoxSpec, check_e164, domain,
};

/// Told of configuration changes the ACD engine needs, **after** they are
/// committed, in the task of the request that made them. The calls are
/// awaited before the API method returns, so keep them short (hand the
/// change to the engine's owner). A failure is the observer's to log and
/// recover from (e.g. by reloading with [`RoutingConfig::queue_configs`]
/// when [`RoutingConfig::revision`] moved); the change stays committed.
#[async_trait::async_trait]
pub trait ConfigObserver: Send + Sync {
    async fn queue_saved(&self, tenant: TenantId, queue: QueueConfig);
    async fn queue_deleted(&self, tenant: TenantId, queue: QueueId);
    async fn agent_profile_saved(&self, tenant: TenantId, agent: AgentId, profile: AgentProfile);
    async fn agent_profile_deleted(&self, tenant: TenantId, agent: AgentId);
}

/// The routing configuration API. Cheap to clone.
///
/// Every write is recorded for the tenant's audit log within the write's
/// transaction (`routing.<kind>_created` / `_updated` / `_deleted`, with
/// the new definition), by the actor of [`RoutingConfig::acting`] (the
/// system otherwise): as an `audit.recorded` event in routing's outbox,
/// which identity, the audit log's owner, writes to it shortly after.
///
/// Users and client organizations are identity's: a write naming one asks
/// the [`IdentityDirectory`]; what the ACD needs of them (client scopes,
/// the tenant's time zone) is routing's own copy, kept from identity's
/// events by [`RoutingConfig::identity_projection`].
#[derive(Clone)]
pub struct RoutingConfig {
    store: store::Store,
    directory: Arc<dyn IdentityDirectory>,
    observer: Option<Arc<dyn ConfigObserver>>,
    actor: ChangedBy,
}

impl RoutingConfig {
    pub fn new(database: Database, directory: Arc<dyn IdentityDirectory>) -> Self {
        Self {
            store: store::Store::new(database),
            directory,
            observer: None,
            actor: ChangedBy::system(),
        }
    }

    /// The same configuration, with writes audited as made by `by`.
    pub fn acting(&self, by: ChangedBy) -> Self {
        Self {
            actor: by,
            ..self.clone()
        }
    }

    /// Tells `observer` of queue and agent-profile changes from now on.
    pub fn with_observer(mut self, observer: Arc<dyn ConfigObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn store(&self) -> &store::Store {
        &self.store
    }

    /// The tenant's configuration revision: bumped by every write, 0
    /// before the first. A runtime that loaded the configuration at
    /// revision `r` is up to date while this is `r`.
    pub async fn revision(&self, tenant: TenantId) -> Result<i64> {
        let transaction = self.store().read(tenant).await?;
        let revision = store::revision(&transaction, tenant).await?;
        transaction.commit().await?;
        Ok(revision)
    }
}
