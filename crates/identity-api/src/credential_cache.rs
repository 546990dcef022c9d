//! Identity's credential cache as its readers see it: the entries identity
//! writes to the shared cache backend (what an API key, a session, a
//! user's rights and a tenant's facts say), their keys, tombstones and
//! encoding, and [`CachedApiKeys`], which authenticates an API key from
//! those entries alone.
//!
//! The cache is identity's: only identity writes it (on a database read,
//! with set-if-absent; tombstones on a revocation or a change of rights).
//! It is a read-through projection that this API crate owns the way a
//! client library may hold a cache, so that identity and its callers read
//! it with one implementation: the gateway authenticates an API key
//! without a call to identity when every entry it needs is there, and asks
//! identity otherwise. That keeps identity's guarantees, because the
//! gateway reads the very entries identity reads on every request:
//!
//! - a revoked key, an ended session or a user whose rights changed has a
//!   tombstone that outlives every "valid" entry, and entries are only
//!   ever added with set-if-absent, so a revocation takes effect at once
//!   for both;
//! - an entry is found only under its own tenant (keys name the tenant;
//!   a key's tenant comes from its own entry, reached by its secret's
//!   hash), and the client scope is computed as identity computes it;
//! - anything else (a miss, a tombstone, a refusal, the key's `last_used_at`
//!   stamp due, a cache error) goes to identity, which answers from the
//!   database with its own errors and writes what it read back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use switchboard_auth::{hash_secret, looks_like_api_key};
use switchboard_platform::Cache;
use switchboard_tenancy::{ApiKeyId, ClientId, ClientScope, Tenant, TenantId};
use uuid::Uuid;

use crate::domain::{TenantStatus, roles_from_text, scopes_from_text};
use crate::{Actor, Principal, RateLimits};

/// How long a cached fact may be served.
pub const FACTS_TTL: Duration = Duration::from_secs(30);
/// Tombstones outlive every entry they must block.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(2 * 30);
/// The value of a tombstone.
pub const TOMBSTONE: &[u8] = b"revoked";
/// `last_used_at` of an API key is written at most this often.
pub const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);

/// What the cache says of a credential.
pub enum Cached<T> {
    Hit(T),
    Revoked,
    Miss,
}

/// A tenant's status, verification and plan rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantFacts {
    pub status: String,
    pub verified: bool,
    pub requests_per_second: f64,
    pub burst: u32,
}

impl TenantFacts {
    /// Whether the tenant's requests are served.
    pub fn in_service(&self) -> bool {
        self.status
            .parse::<TenantStatus>()
            .is_ok_and(TenantStatus::may_use_api)
    }
}

/// What never changes of an API key (it is revoked, never edited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyFacts {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub scopes: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The user whose rights bound the key at every use.
    pub created_by: Option<Uuid>,
    /// The clients the key was scoped to at creation; `None` for all.
    pub client_ids: Option<Vec<Uuid>>,
}

impl ApiKeyFacts {
    /// Whether the key has expired at `at`.
    pub fn expired_at(&self, at: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires| expires <= at)
    }
}

/// What a user's credentials (access tokens, API keys they created) may do
/// now: read on every request, so a change takes effect at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserFacts {
    pub rights_version: i64,
    pub active: bool,
    pub roles: String,
    /// `None` for every client.
    pub clients: Option<Vec<Uuid>>,
}

/// The caller behind an API key that is not expired, whose creator is
/// active and whose tenant is in service (the caller checks all three):
/// the key's clients within its creator's, its scopes, its creator's
/// roles and its tenant's rate.
pub fn api_key_principal(
    key: &ApiKeyFacts,
    creator: &UserFacts,
    tenant: &TenantFacts,
) -> Principal {
    let scope = |ids: &Option<Vec<Uuid>>| {
        ClientScope::from_list(
            ids.as_ref()
                .map(|ids| ids.iter().copied().map(ClientId::from_uuid).collect()),
        )
    };
    let clients = scope(&key.client_ids).within(&scope(&creator.clients));
    Principal {
        tenant: Tenant::scoped(TenantId::from_uuid(key.tenant_id), clients),
        actor: Actor::ApiKey {
            id: ApiKeyId::from_uuid(key.key_id),
            scopes: scopes_from_text(&key.scopes),
            creator_roles: roles_from_text(&creator.roles),
        },
        limits: RateLimits {
            requests_per_second: tenant.requests_per_second,
            burst: tenant.burst,
        },
        tenant_verified: tenant.verified,
        expires_at: key.expires_at,
    }
}

/// The entry of the API key whose secret hashes to `hash`.
pub fn api_key_key(hash: &str) -> String {
    format!("ident:apikey:{hash}")
}

/// Present while an API key's `last_used_at` is recent enough.
pub fn last_used_key(key: Uuid) -> String {
    format!("ident:apikey-used:{key}")
}

pub fn session_key(session: Uuid) -> String {
    format!("ident:session:{session}")
}

pub fn user_key(tenant: TenantId, user: Uuid) -> String {
    format!("ident:user:{tenant}:{user}")
}

pub fn tenant_key(tenant: TenantId) -> String {
    format!("ident:tenant:{tenant}")
}

/// What a cached value says: a tombstone, facts, or nothing usable.
pub fn decode<T: DeserializeOwned>(value: Option<Bytes>) -> Cached<T> {
    match value {
        Some(value) if value.as_ref() == TOMBSTONE => Cached::Revoked,
        Some(value) => serde_json::from_slice(&value).map_or(Cached::Miss, Cached::Hit),
        None => Cached::Miss,
    }
}

/// Reads of the credential cache; every read of a cache that is absent or
/// cannot answer is a miss (the database answers instead: slower, never
/// wrong).
#[derive(Clone, Default)]
pub struct CredentialReads {
    cache: Option<Arc<dyn Cache>>,
}

impl CredentialReads {
    pub fn new(cache: Option<Arc<dyn Cache>>) -> Self {
        Self { cache }
    }

    /// The backend, for identity's writes.
    pub fn cache(&self) -> Option<&Arc<dyn Cache>> {
        self.cache.as_ref()
    }

    pub async fn api_key(&self, hash: &str) -> Cached<ApiKeyFacts> {
        self.read(&api_key_key(hash)).await
    }

    pub async fn tenant(&self, tenant: TenantId) -> Cached<TenantFacts> {
        self.read(&tenant_key(tenant)).await
    }

    /// What an access token leads to, in one round trip: its session, its
    /// user's rights and its tenant's facts.
    pub async fn session_user_and_tenant(
        &self,
        session: Uuid,
        tenant: TenantId,
        user: Uuid,
    ) -> (Cached<bool>, Cached<UserFacts>, Cached<TenantFacts>) {
        let [session, user, tenant] = self
            .read_many([
                session_key(session),
                user_key(tenant, user),
                tenant_key(tenant),
            ])
            .await;
        (decode(session), decode(user), decode(tenant))
    }

    /// What an API key leads to, in one round trip: its creator's rights
    /// (`None`: no creator, [`Cached::Miss`]) and its tenant's facts.
    pub async fn user_and_tenant(
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

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Cached<T> {
        let Some(cache) = &self.cache else {
            return Cached::Miss;
        };
        match cache.get(key).await {
            Ok(value) => decode(value),
            Err(error) => {
                tracing::warn!(%error, "credential cache unavailable");
                Cached::Miss
            }
        }
    }

    /// The raw values of `keys` in one round trip; all absent when there
    /// is no cache or it cannot answer.
    pub async fn read_many<const N: usize>(&self, keys: [String; N]) -> [Option<Bytes>; N] {
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
}

/// How many keys' facts [`CachedApiKeys`] remembers before it starts over.
const KNOWN_KEYS: usize = 10_000;

/// Authenticates API keys from identity's credential cache alone, for a
/// caller of identity (the gateway) that shares identity's cache backend:
/// [`CachedApiKeys::principal`] is the principal identity would answer, or
/// `None` when identity must be asked.
///
/// Per request it reads, in one round trip, the key's entry, its creator's
/// rights, its tenant's facts and its `last_used_at` stamp. To name those
/// entries before reading them, it remembers each key's facts (which
/// never change) in process, and checks them against the key's entry read
/// in the same trip, so a revoked or expired entry is seen at once.
pub struct CachedApiKeys {
    reads: CredentialReads,
    known: Mutex<HashMap<String, ApiKeyFacts>>,
}

impl CachedApiKeys {
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self {
            reads: CredentialReads::new(Some(cache)),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The caller behind `credential` if it is an API key whose entries
    /// say it may be served now, without writing anything; `None` means
    /// "ask identity" (not an API key, a miss, a tombstone, a refusal, a
    /// `last_used_at` to record, or a cache error).
    pub async fn principal(&self, credential: &str) -> Option<Principal> {
        if !looks_like_api_key(credential) {
            return None;
        }
        let hash = hash_secret(credential);
        let known = self.known(&hash);
        let facts = match known {
            Some(facts) => facts,
            None => match self.reads.api_key(&hash).await {
                Cached::Hit(facts) => facts,
                Cached::Revoked | Cached::Miss => return None,
            },
        };
        let creator = facts.created_by?;
        let tenant = TenantId::from_uuid(facts.tenant_id);
        let [entry, user, tenant_facts, used] = self
            .reads
            .read_many([
                api_key_key(&hash),
                user_key(tenant, creator),
                tenant_key(tenant),
                last_used_key(facts.key_id),
            ])
            .await;
        match decode::<ApiKeyFacts>(entry) {
            Cached::Hit(entry) if entry == facts => self.remember(hash, facts.clone()),
            _ => {
                self.forget(&hash);
                return None;
            }
        }
        let (Cached::Hit(user), Cached::Hit(tenant_facts), Some(_)) = (
            decode::<UserFacts>(user),
            decode::<TenantFacts>(tenant_facts),
            used,
        ) else {
            return None;
        };
        let servable = !facts.expired_at(Utc::now()) && user.active && tenant_facts.in_service();
        servable.then(|| api_key_principal(&facts, &user, &tenant_facts))
    }

    fn known(&self, hash: &str) -> Option<ApiKeyFacts> {
        self.known.lock().ok()?.get(hash).cloned()
    }

    fn remember(&self, hash: String, facts: ApiKeyFacts) {
        if let Ok(mut known) = self.known.lock()
            && !known.contains_key(&hash)
        {
            if known.len() >= KNOWN_KEYS {
                known.clear();
            }
            known.insert(hash, facts);
        }
    }

    fn forget(&self, hash: &str) {
        if let Ok(mut known) = self.known.lock() {
            known.remove(hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_platform::cache::MemoryCache;

    use super::*;
    use crate::domain::{ApiScope, Role};

    const SECRET: &str = "sk_live_0123456789abcdefghijABCDEFGHIJ0123456789";

    struct Fixture {
        cache: Arc<dyn Cache>,
        keys: CachedApiKeys,
        hash: String,
        key: ApiKeyFacts,
        client_a: Uuid,
    }

    impl Fixture {
        /// A key of one tenant scoped to clients A and B, whose creator
        /// serves clients A and C, with every entry identity would write.
        async fn new() -> Self {
            let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
            let [client_a, client_b, client_c] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
            let fixture = Self {
                keys: CachedApiKeys::new(cache.clone()),
                cache,
                hash: hash_secret(SECRET),
                key: ApiKeyFacts {
                    tenant_id: Uuid::new_v4(),
                    key_id: Uuid::new_v4(),
                    scopes: "read".into(),
                    expires_at: None,
                    created_by: Some(Uuid::new_v4()),
                    client_ids: Some(vec![client_a, client_b]),
                },
                client_a,
            };
            fixture.put(&api_key_key(&fixture.hash), &fixture.key).await;
            fixture
                .put(
                    &user_key(fixture.tenant(), fixture.creator()),
                    &UserFacts {
                        rights_version: 1,
                        active: true,
                        roles: "admin".into(),
                        clients: Some(vec![client_a, client_c]),
                    },
                )
                .await;
            fixture
                .put(&tenant_key(fixture.tenant()), &tenant_facts("active"))
                .await;
            fixture.used().await;
            fixture
        }

        fn tenant(&self) -> TenantId {
            TenantId::from_uuid(self.key.tenant_id)
        }

        fn creator(&self) -> Uuid {
            self.key.created_by.unwrap()
        }

        async fn put<T: Serialize>(&self, key: &str, value: &T) {
            let value = serde_json::to_vec(value).unwrap();
            self.cache.set(key, &value, Some(FACTS_TTL)).await.unwrap();
        }

        async fn tombstone(&self, key: &str) {
            self.cache
                .set(key, TOMBSTONE, Some(TOMBSTONE_TTL))
                .await
                .unwrap();
        }

        async fn used(&self) {
            self.cache
                .set(
                    &last_used_key(self.key.key_id),
                    b"1",
                    Some(LAST_USED_RESOLUTION),
                )
                .await
                .unwrap();
        }

        async fn principal(&self) -> Option<Principal> {
            self.keys.principal(SECRET).await
        }
    }

    fn tenant_facts(status: &str) -> TenantFacts {
        TenantFacts {
            status: status.into(),
            verified: true,
            requests_per_second: 12.5,
            burst: 40,
        }
    }

    #[tokio::test]
    async fn a_key_whose_entries_are_all_cached_is_the_principal_identity_would_answer() {
        let site = Fixture::new().await;
        let principal = site.principal().await.expect("every entry is cached");
        assert_eq!(principal.tenant.id(), site.tenant());
        // The key's clients within its creator's.
        assert_eq!(
            principal.tenant.clients().as_list(),
            Some(vec![ClientId::from_uuid(site.client_a)])
        );
        assert_eq!(
            principal.actor,
            Actor::ApiKey {
                id: ApiKeyId::from_uuid(site.key.key_id),
                scopes: vec![ApiScope::Read],
                creator_roles: vec![Role::Admin],
            }
        );
        assert_eq!(principal.limits.burst, 40);
        assert_eq!(principal.limits.requests_per_second, 12.5);
        assert!(principal.tenant_verified);
        // Anything but an API key is identity's to answer.
        assert!(site.keys.principal("eyJhbGciOi.x.y").await.is_none());
    }

    #[tokio::test]
    async fn a_revocation_or_a_change_of_rights_refuses_the_key_at_once() {
        let site = Fixture::new().await;
        assert!(site.principal().await.is_some());
        // The key's facts are remembered in process now; its entry is
        // read again on every request all the same.
        site.tombstone(&api_key_key(&site.hash)).await;
        assert!(site.principal().await.is_none(), "revoked key");

        let site = Fixture::new().await;
        assert!(site.principal().await.is_some());
        site.tombstone(&user_key(site.tenant(), site.creator()))
            .await;
        assert!(site.principal().await.is_none(), "creator's rights changed");

        let site = Fixture::new().await;
        assert!(site.principal().await.is_some());
        site.cache.delete(&tenant_key(site.tenant())).await.unwrap();
        assert!(site.principal().await.is_none(), "tenant facts dropped");
    }

    #[tokio::test]
    async fn entries_of_another_tenant_never_serve_a_key() {
        let site = Fixture::new().await;
        let creator = site
            .cache
            .get(&user_key(site.tenant(), site.creator()))
            .await;
        let tenant = site.cache.get(&tenant_key(site.tenant())).await;
        // The same creator and facts, but cached under another tenant only.
        let other = TenantId::from_uuid(Uuid::new_v4());
        site.cache
            .set(
                &user_key(other, site.creator()),
                &creator.unwrap().unwrap(),
                None,
            )
            .await
            .unwrap();
        site.cache
            .set(&tenant_key(other), &tenant.unwrap().unwrap(), None)
            .await
            .unwrap();
        site.cache
            .delete(&user_key(site.tenant(), site.creator()))
            .await
            .unwrap();
        assert!(site.principal().await.is_none());
        site.cache.delete(&tenant_key(site.tenant())).await.unwrap();
        site.put(
            &user_key(site.tenant(), site.creator()),
            &UserFacts {
                rights_version: 1,
                active: true,
                roles: "admin".into(),
                clients: None,
            },
        )
        .await;
        assert!(site.principal().await.is_none());
    }

    #[tokio::test]
    async fn refusals_and_a_due_last_used_stamp_go_to_identity() {
        let site = Fixture::new().await;
        site.cache
            .delete(&last_used_key(site.key.key_id))
            .await
            .unwrap();
        assert!(site.principal().await.is_none(), "last_used_at is due");
        site.used().await;
        assert!(site.principal().await.is_some());

        site.put(&tenant_key(site.tenant()), &tenant_facts("suspended"))
            .await;
        assert!(site.principal().await.is_none(), "tenant suspended");
        site.put(&tenant_key(site.tenant()), &tenant_facts("trial"))
            .await;
        assert!(site.principal().await.is_some());

        site.put(
            &user_key(site.tenant(), site.creator()),
            &UserFacts {
                rights_version: 2,
                active: false,
                roles: "admin".into(),
                clients: None,
            },
        )
        .await;
        assert!(site.principal().await.is_none(), "creator disabled");
    }

    #[tokio::test]
    async fn an_expired_or_replaced_key_entry_is_not_served_from_memory() {
        let site = Fixture::new().await;
        assert!(site.principal().await.is_some());
        let expired = ApiKeyFacts {
            expires_at: Some(Utc::now() - chrono::Duration::seconds(1)),
            ..site.key.clone()
        };
        site.cache.delete(&api_key_key(&site.hash)).await.unwrap();
        site.put(&api_key_key(&site.hash), &expired).await;
        assert!(
            site.principal().await.is_none(),
            "entry differs from memory"
        );
        assert!(site.principal().await.is_none(), "expired");
        let wider = ApiKeyFacts {
            scopes: "full".into(),
            ..site.key.clone()
        };
        site.put(&api_key_key(&site.hash), &wider).await;
        assert!(
            site.principal().await.is_none(),
            "entry differs from memory"
        );
        let principal = site.principal().await.expect("read afresh");
        assert!(matches!(
            principal.actor,
            Actor::ApiKey { scopes, .. } if scopes == vec![ApiScope::Full]
        ));
    }
}
