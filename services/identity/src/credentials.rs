//! A read-through cache of what authenticating a request needs (is this API
//! key valid, is this session open, is this tenant in service and on which
//! plan), kept in the cache backend so every gateway replica shares it.
//! Without it each request costs about ten database round trips before its
//! own work; with it, two cache round trips: the credential, then what it
//! leads to (its user's rights and its tenant's facts) in one `MGET`.
//!
//! The entries, their keys and their reads are in
//! `switchboard_identity_api::credential_cache`, which the gateway reads
//! too; this module is the only writer.
//!
//! Revocation stays immediate: revoking a key or ending a session writes a
//! tombstone that outlives any cached "valid" entry, and entries are only
//! ever added with set-if-absent, so a request that read the database just
//! before a revocation cannot put the credential back. Tenant facts (status,
//! plan limits, verification) are dropped when the tenant changes through
//! identity, and expire after [`FACTS_TTL`] otherwise. A user's rights
//! (version, status, roles, clients) are read for every access token and
//! every API key they created; a change writes a tombstone, so until it
//! expires every request reads them from the database.

use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;
use switchboard_identity_api::credential_cache::{
    ApiKeyFacts, CredentialReads, FACTS_TTL, LAST_USED_RESOLUTION, TOMBSTONE, TOMBSTONE_TTL,
    TenantFacts, UserFacts, api_key_key, last_used_key, session_key, tenant_key, user_key,
};
use switchboard_platform::Cache;
use switchboard_tenancy::TenantId;
use uuid::Uuid;

/// The credential cache: its reads, and identity's writes.
#[derive(Clone, Default)]
pub(crate) struct CredentialCache {
    reads: CredentialReads,
}

impl Deref for CredentialCache {
    type Target = CredentialReads;

    fn deref(&self) -> &CredentialReads {
        &self.reads
    }
}

impl CredentialCache {
    pub(crate) fn new(cache: Option<Arc<dyn Cache>>) -> Self {
        Self {
            reads: CredentialReads::new(cache),
        }
    }

    pub(crate) async fn remember_api_key(&self, hash: &str, facts: &ApiKeyFacts) {
        self.remember(&api_key_key(hash), facts).await;
    }

    pub(crate) async fn revoke_api_key(&self, hash: &str) {
        self.tombstone(&api_key_key(hash)).await;
    }

    /// Whether this process should write the key's `last_used_at` now
    /// (once per [`LAST_USED_RESOLUTION`] across replicas).
    pub(crate) async fn claim_last_used_write(&self, key: Uuid) -> bool {
        match self.cache() {
            Some(cache) => cache
                .set_if_absent(&last_used_key(key), b"1", LAST_USED_RESOLUTION)
                .await
                .unwrap_or(true),
            None => true,
        }
    }

    pub(crate) async fn remember_session(&self, session: Uuid) {
        self.remember(&session_key(session), &true).await;
    }

    pub(crate) async fn end_session(&self, session: Uuid) {
        self.tombstone(&session_key(session)).await;
    }

    pub(crate) async fn remember_user(&self, tenant: TenantId, user: Uuid, facts: &UserFacts) {
        self.remember(&user_key(tenant, user), facts).await;
    }

    /// After a change of the user's roles, clients or status (or their
    /// deletion) has committed: readers go to the database, and cannot
    /// cache what they read there, until the tombstone expires.
    pub(crate) async fn user_rights_changed(&self, tenant: TenantId, user: Uuid) {
        self.tombstone(&user_key(tenant, user)).await;
    }

    pub(crate) async fn remember_tenant(&self, tenant: TenantId, facts: &TenantFacts) {
        if let Some(cache) = self.cache()
            && let Ok(value) = serde_json::to_vec(facts)
            && let Err(error) = cache
                .set(&tenant_key(tenant), &value, Some(FACTS_TTL))
                .await
        {
            tracing::warn!(%error, "cannot cache tenant facts");
        }
    }

    pub(crate) async fn forget_tenant(&self, tenant: TenantId) {
        if let Some(cache) = self.cache()
            && let Err(error) = cache.delete(&tenant_key(tenant)).await
        {
            tracing::warn!(%error, tenant_id = %tenant, "cannot drop cached tenant facts; they expire within 30 s");
        }
    }

    async fn remember<T: Serialize>(&self, key: &str, value: &T) {
        if let Some(cache) = self.cache()
            && let Ok(value) = serde_json::to_vec(value)
            && let Err(error) = cache.set_if_absent(key, &value, FACTS_TTL).await
        {
            tracing::warn!(%error, "cannot cache a credential");
        }
    }

    async fn tombstone(&self, key: &str) {
        if let Some(cache) = self.cache()
            && let Err(error) = cache.set(key, TOMBSTONE, Some(TOMBSTONE_TTL)).await
        {
            // The entry would then live until it expires: say so loudly.
            tracing::error!(%error, key, "cannot record a revocation in the credential cache; it takes effect within 30 s");
        }
    }
}
