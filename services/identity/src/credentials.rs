//! A read-through cache of what authenticating a request needs (is this API
//! key valid, is this session open, is this tenant in service and on which
//! plan), kept in the cache backend so every gateway replica shares it.
//! Without it each request costs about ten database round trips before its
//! own work; with it, two cache round trips: the credential, then what it
//! leads to (its user's rights and its tenant's facts) in one `MGET`.
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

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use switchboard_platform::Cache;
use switchboard_tenancy::TenantId;
use uuid::Uuid;

/// How long a cached fact may be served.
pub(crate) const FACTS_TTL: Duration = Duration::from_secs(30);
/// Tombstones outlive every entry they must block.
const TOMBSTONE_TTL: Duration = Duration::from_secs(2 * 30);
const TOMBSTONE: &[u8] = b"revoked";
/// `last_used_at` of an API key is written at most this often.
pub(crate) const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);

/// What the cache says of a credential.
pub(crate) enum Cached<T> {
    Hit(T),
    Revoked,
    Miss,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TenantFacts {
    pub status: String,
    pub verified: bool,
    pub requests_per_second: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApiKeyFacts {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub scopes: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The user whose rights bound the key at every use.
    pub created_by: Option<Uuid>,
    /// The clients the key was scoped to at creation; `None` for all.
    pub client_ids: Option<Vec<Uuid>>,
}

/// What a user's credentials (access tokens, API keys they created) may do
/// now: read on every request, so a change takes effect at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserFacts {
    pub rights_version: i64,
    pub active: bool,
    pub roles: String,
    /// `None` for every client.
    pub clients: Option<Vec<Uuid>>,
}

fn user_key(tenant: TenantId, user: Uuid) -> String {
    format!("ident:user:{tenant}:{user}")
}

fn tenant_key(tenant: TenantId) -> String {
    format!("ident:tenant:{tenant}")
}

/// What a cached value says: a tombstone, facts, or nothing usable.
fn decode<T: DeserializeOwned>(value: Option<Bytes>) -> Cached<T> {
    match value {
        Some(value) if value.as_ref() == TOMBSTONE => Cached::Revoked,
        Some(value) => serde_json::from_slice(&value).map_or(Cached::Miss, Cached::Hit),
        None => Cached::Miss,
    }
}

#[derive(Clone, Default)]
pub(crate) struct CredentialCache {
    cache: Option<Arc<dyn Cache>>,
}

impl CredentialCache {
    pub(crate) fn new(cache: Option<Arc<dyn Cache>>) -> Self {
        Self { cache }
    }

    pub(crate) async fn api_key(&self, hash: &str) -> Cached<ApiKeyFacts> {
        self.read(&format!("ident:apikey:{hash}")).await
    }

    pub(crate) async fn remember_api_key(&self, hash: &str, facts: &ApiKeyFacts) {
        self.remember(&format!("ident:apikey:{hash}"), facts).await;
    }

    pub(crate) async fn revoke_api_key(&self, hash: &str) {
        self.tombstone(&format!("ident:apikey:{hash}")).await;
    }

    /// Whether this process should write the key's `last_used_at` now
    /// (once per [`LAST_USED_RESOLUTION`] across replicas).
    pub(crate) async fn claim_last_used_write(&self, key: Uuid) -> bool {
        match &self.cache {
            Some(cache) => cache
                .set_if_absent(
                    &format!("ident:apikey-used:{key}"),
                    b"1",
                    LAST_USED_RESOLUTION,
                )
                .await
                .unwrap_or(true),
            None => true,
        }
    }

    /// What an access token leads to, in one round trip: its session, its
    /// user's rights and its tenant's facts.
    pub(crate) async fn session_user_and_tenant(
        &self,
        session: Uuid,
        tenant: TenantId,
        user: Uuid,
    ) -> (Cached<bool>, Cached<UserFacts>, Cached<TenantFacts>) {
        let [session, user, tenant] = self
            .read_many([
                format!("ident:session:{session}"),
                user_key(tenant, user),
                tenant_key(tenant),
            ])
            .await;
        (decode(session), decode(user), decode(tenant))
    }

    /// What an API key leads to, in one round trip: its creator's rights
    /// (`None`: no creator, [`Cached::Miss`]) and its tenant's facts.
    pub(crate) async fn user_and_tenant(
        &self,
        tenant: TenantId,
        user: Option<Uuid>,
    ) -> (Cached<UserFacts>, Cached<TenantFacts>) {
        match user {
            Some(user) => {
                let [user, tenant] = self
                    .read_many([user_key(tenant, user), tenant_key(tenant)])
                    .await;
                (decode(user), decode(tenant))
            }
            None => (Cached::Miss, self.tenant(tenant).await),
        }
    }

    pub(crate) async fn remember_session(&self, session: Uuid) {
        self.remember(&format!("ident:session:{session}"), &true)
            .await;
    }

    pub(crate) async fn end_session(&self, session: Uuid) {
        self.tombstone(&format!("ident:session:{session}")).await;
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

    pub(crate) async fn tenant(&self, tenant: TenantId) -> Cached<TenantFacts> {
        self.read(&tenant_key(tenant)).await
    }

    pub(crate) async fn remember_tenant(&self, tenant: TenantId, facts: &TenantFacts) {
        if let Some(cache) = &self.cache
            && let Ok(value) = serde_json::to_vec(facts)
            && let Err(error) = cache
                .set(&tenant_key(tenant), &value, Some(FACTS_TTL))
                .await
        {
            tracing::warn!(%error, "cannot cache tenant facts");
        }
    }

    pub(crate) async fn forget_tenant(&self, tenant: TenantId) {
        if let Some(cache) = &self.cache
            && let Err(error) = cache.delete(&tenant_key(tenant)).await
        {
            tracing::warn!(%error, tenant_id = %tenant, "cannot drop cached tenant facts; they expire within 30 s");
        }
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Cached<T> {
        let Some(cache) = &self.cache else {
            return Cached::Miss;
        };
        match cache.get(key).await {
            Ok(value) => decode(value),
            Err(error) => {
                // The database answers instead: slower, never wrong.
                tracing::warn!(%error, "credential cache unavailable");
                Cached::Miss
            }
        }
    }

    /// The raw values of `keys` in one round trip; all absent when there
    /// is no cache or it cannot answer (the database answers instead).
    async fn read_many<const N: usize>(&self, keys: [String; N]) -> [Option<Bytes>; N] {
        let absent = || std::array::from_fn(|_| None);
        let Some(cache) = &self.cache else {
            return absent();
        };
        let names: Vec<&str> = keys.iter().map(String::as_str).collect();
        match cache.get_many(&names).await {
            Ok(values) => values.try_into().unwrap_or_else(|values: Vec<_>| {
                tracing::warn!(
                    asked = N,
                    answered = values.len(),
                    "credential cache answered the wrong number of values"
                );
                absent()
            }),
            Err(error) => {
                tracing::warn!(%error, "credential cache unavailable");
                absent()
            }
        }
    }

    async fn remember<T: Serialize>(&self, key: &str, value: &T) {
        if let Some(cache) = &self.cache
            && let Ok(value) = serde_json::to_vec(value)
            && let Err(error) = cache.set_if_absent(key, &value, FACTS_TTL).await
        {
            tracing::warn!(%error, "cannot cache a credential");
        }
    }

    async fn tombstone(&self, key: &str) {
        if let Some(cache) = &self.cache
            && let Err(error) = cache.set(key, TOMBSTONE, Some(TOMBSTONE_TTL)).await
        {
            // The entry would then live until it expires: say so loudly.
            tracing::error!(%error, key, "cannot record a revocation in the credential cache; it takes effect within 30 s");
        }
    }
}
