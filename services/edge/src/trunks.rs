//! Carrier trunks (issue 21, trunks): each tenant's trunks ([`TrunkStore`],
//! on `edge_trunks`) and the admission of a carrier's requests
//! ([`Trunks::admit`]), which the B2BUA asks before it handles an INVITE.
//!
//! A request is admitted by where it comes from or by what it proves:
//! 1. every enabled trunk whose allowlist holds the source address is a
//!    match (several tenants may buy from one carrier, whose addresses they
//!    then share; the dialed number picks among them);
//! 2. else digest credentials in `Proxy-Authorization` (or `Authorization`)
//!    under the edge's realm, RFC 3261 §22.3 with RFC 7616's algorithms as
//!    RFC 8760 brings them to SIP ([`crate::sip::digest`]), name the one
//!    trunk whose username they carry: usernames are unique across tenants,
//!    and the match names that trunk's own tenant, never another;
//! 3. else a trunk that registers with its carrier is matched by the
//!    `line` parameter of the Request-URI: the edge registers a Contact
//!    with a token of the trunk's own (see [`line_token`]), and a carrier
//!    delivers the tenant's calls to that Contact, from whatever address
//!    (as Asterisk's `line` option does);
//! 4. else a 407 challenge, when some trunk takes digest; else 403.
//!
//! Admission reads every tenant's trunks before any tenant is known, so it
//! reads in system scope (like the registrar's domain lookup), and only
//! the columns it needs. It reads from a small in-memory index instead of
//! the database per request: a carrier's INVITE must not wait for a query,
//! and a flood from an unknown source must not become a flood of queries.
//! The index is the whole set of enabled trunks' sources and digest
//! usernames (a few per tenant, loaded in one query) rather than a per-IP
//! cache, because a miss is the common case under a scanner's flood, and a
//! per-IP cache would query for each new source address. It is reloaded
//! at its first use after a change made through this process's
//! [`TrunkStore`], and at its first use once it is older than
//! [`TrunksOptions::refresh_every`] (5 s by default), so another replica's
//! change is seen within that time. One reload runs at a time; while the
//! database fails, the last index keeps serving (logged), since refusing
//! every carrier would turn a database hiccup into an outage.

pub mod reach;
pub mod registration;
pub mod spec;
mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use switchboard_platform::{Cache, Database};
use switchboard_sip::uri::parse_sip_uri;
use switchboard_sip::{Message, StartLine};
use switchboard_tenancy::{TenantId, TrunkId};
use uuid::Uuid;

pub use store::{OutboundTarget, TrunkStore};

use crate::sip::OutgoingResponse;
use crate::sip::digest::{Algorithm, Nonces, Rejection, parse_credentials};
use spec::parse_source;
use store::{TRUNKS, col};

/// One trunk a request was admitted through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkMatch {
    pub tenant: TenantId,
    pub trunk_id: TrunkId,
    pub name: String,
}

/// What to do with a carrier's request.
#[derive(Debug, Clone)]
pub enum Admission {
    /// From these trunks: every trunk whose allowlist holds the source, or
    /// the one whose digest credentials the request proved. Never empty.
    Admitted(Vec<TrunkMatch>),
    /// Answer with this 407 (Proxy-Authenticate, one challenge per
    /// algorithm offered); the carrier retries with credentials.
    Challenge(OutgoingResponse),
    /// Answer with this: 403, or 400 for malformed credentials.
    Refused(OutgoingResponse),
}

/// How admission behaves.
#[derive(Debug, Clone)]
pub struct TrunksOptions {
    /// The realm of the edge's challenges to carriers, under which trunks'
    /// inbound passwords are hashed (`edge.sip_domain`): if it changes,
    /// trunks' passwords must be set again.
    pub realm: String,
    /// The digest algorithms offered, most preferred first.
    pub algorithms: Vec<Algorithm>,
    /// The longest a replica serves from an index before reloading it.
    pub refresh_every: Duration,
}

impl TrunksOptions {
    /// SHA-256 then MD5, reloaded every 5 s.
    pub fn new(realm: impl Into<String>) -> Self {
        Self {
            realm: realm.into().to_ascii_lowercase(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            refresh_every: Duration::from_secs(5),
        }
    }
}

/// A trunk that takes digest credentials.
#[derive(Debug, Clone)]
struct DigestTrunk {
    matched: TrunkMatch,
    ha1_sha256: String,
    ha1_md5: String,
}

/// The enabled trunks' ways in.
#[derive(Debug, Default)]
struct Index {
    /// Single addresses (/32, /128): one lookup.
    addresses: HashMap<IpAddr, Vec<TrunkMatch>>,
    /// Wider networks: scanned (a carrier's few blocks per trunk).
    networks: Vec<(IpNet, TrunkMatch)>,
    /// By inbound username.
    digest: HashMap<String, DigestTrunk>,
    /// Trunks that register with their carrier, by the `line` token of
    /// their Contact (every key's).
    lines: HashMap<String, TrunkMatch>,
}

/// What a trunk's tokens are for (see [`Nonces::tokens`]).
const LINE_PURPOSE: &str = "switchboard trunk line";

/// The `line` parameter of the Contact a trunk registers with its carrier,
/// by which the calls the carrier sends to it are admitted: derived from
/// the trunk's id with the edge's digest keys (the current key's first),
/// so every replica writes and recognises the same one.
pub fn line_tokens(nonces: &Nonces, trunk: TrunkId) -> Vec<String> {
    nonces.tokens(LINE_PURPOSE, &trunk.to_string())
}

/// The token the current key gives `trunk` (see [`line_tokens`]).
pub fn line_token(nonces: &Nonces, trunk: TrunkId) -> String {
    line_tokens(nonces, trunk).remove(0)
}

impl Index {
    fn matches(&self, source: IpAddr) -> Vec<TrunkMatch> {
        let mut found: Vec<TrunkMatch> = self.addresses.get(&source).cloned().unwrap_or_default();
        for (network, matched) in &self.networks {
            if network.contains(&source) && !found.iter().any(|m| m.trunk_id == matched.trunk_id) {
                found.push(matched.clone());
            }
        }
        found
    }
}

/// The index as loaded, and when.
struct Loaded {
    index: Arc<Index>,
    /// When the last load was tried (successful or not).
    at: Option<Instant>,
    /// The store's change count it reflects.
    generation: u64,
}

/// Admission of carriers' requests, and the trunks' store. Cheap to clone.
#[derive(Clone)]
pub struct Trunks {
    db: Database,
    cache: Arc<dyn Cache>,
    nonces: Nonces,
    options: Arc<TrunksOptions>,
    loaded: Arc<RwLock<Loaded>>,
    /// One reload at a time.
    reloading: Arc<tokio::sync::Mutex<()>>,
    generation: Arc<AtomicU64>,
}

impl Trunks {
    /// Admission over `database`'s trunks (its system scope), with nonces
    /// sealed by `nonces` (the registrar's keys) and nonce counts claimed
    /// once in `cache`.
    pub fn new(
        database: Database,
        cache: Arc<dyn Cache>,
        nonces: Nonces,
        options: TrunksOptions,
    ) -> Self {
        Self {
            db: database,
            cache,
            nonces,
            options: Arc::new(options),
            loaded: Arc::new(RwLock::new(Loaded {
                index: Arc::new(Index::default()),
                at: None,
                generation: 0,
            })),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The tenants' trunks, whose changes this admission sees at once.
    pub fn store(&self) -> TrunkStore {
        TrunkStore::new(
            self.db.clone(),
            self.options.realm.clone(),
            self.generation.clone(),
        )
    }

    /// Reloads the index now.
    pub async fn refresh(&self) -> Result<(), sea_orm::DbErr> {
        let _reloading = self.reloading.lock().await;
        self.reload().await
    }

    async fn reload(&self) -> Result<(), sea_orm::DbErr> {
        let generation = self.generation.load(Ordering::Acquire);
        let result = load(&self.db, &self.nonces).await;
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A failed load is not retried before the next period either.
        loaded.at = Some(Instant::now());
        let index = result?;
        loaded.index = Arc::new(index);
        loaded.generation = generation;
        Ok(())
    }

    /// The current index, reloaded first if it is stale.
    async fn index(&self) -> Arc<Index> {
        if let Some(index) = self.fresh() {
            return index;
        }
        let _reloading = self.reloading.lock().await;
        // Another request may have reloaded while this one waited.
        if let Some(index) = self.fresh() {
            return index;
        }
        if let Err(error) = self.reload().await {
            tracing::warn!(%error, "the trunks could not be reloaded; admitting by the last ones");
        }
        self.current()
    }

    fn current(&self) -> Arc<Index> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .index
            .clone()
    }

    fn fresh(&self) -> Option<Arc<Index>> {
        let loaded = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = loaded
            .at
            .is_some_and(|at| at.elapsed() < self.options.refresh_every)
            && loaded.generation == self.generation.load(Ordering::Acquire);
        fresh.then(|| loaded.index.clone())
    }

    /// Which trunks `request`, from `source`, comes through (see the
    /// module's comment).
    pub async fn admit(&self, source: IpAddr, request: &Message<'_>) -> Admission {
        let now = SystemTime::now();
        let index = self.index().await;
        let matches = index.matches(source.to_canonical());
        if !matches.is_empty() {
            return Admission::Admitted(matches);
        }
        if let StartLine::Request { uri, .. } = &request.start
            && let Ok(uri) = parse_sip_uri(uri)
            && let Some(Some(line)) = uri.param("line")
            && let Some(matched) = index.lines.get(line)
        {
            return Admission::Admitted(vec![matched.clone()]);
        }
        let forbidden = || Admission::Refused(OutgoingResponse::new(403));
        if index.digest.is_empty() {
            return forbidden();
        }
        let challenge = |stale: bool| {
            let mut response = OutgoingResponse::new(407);
            for value in
                self.nonces
                    .challenges(&self.options.realm, stale, now, &self.options.algorithms)
            {
                response = response.header("Proxy-Authenticate", value);
            }
            Admission::Challenge(response)
        };
        // Our realm's credentials (a request may carry others' too).
        let credentials = request
            .headers_named("Proxy-Authorization")
            .chain(request.headers_named("Authorization"))
            .map(|header| parse_credentials(&header.value))
            .find(|parsed| match parsed {
                Ok(credentials) => credentials.realm.eq_ignore_ascii_case(&self.options.realm),
                Err(_) => true,
            });
        let credentials = match credentials {
            None => return challenge(false),
            Some(Ok(credentials)) => credentials,
            Some(Err(Rejection::Malformed(why))) => {
                return Admission::Refused(OutgoingResponse::new(400).reason(why));
            }
            Some(Err(_)) => return forbidden(),
        };
        if !self.options.algorithms.contains(&credentials.algorithm) {
            return challenge(false);
        }
        let StartLine::Request { method, uri, .. } = &request.start else {
            return forbidden();
        };
        if credentials.uri != *uri {
            return Admission::Refused(OutgoingResponse::new(400).reason(format!(
                "The digest uri {:?} is not the Request-URI {uri:?}",
                credentials.uri
            )));
        }
        let trunk = index.digest.get(&credentials.username);
        let ha1 = trunk.map(|trunk| match credentials.algorithm {
            Algorithm::Sha256 => trunk.ha1_sha256.as_str(),
            Algorithm::Md5 => trunk.ha1_md5.as_str(),
        });
        match self
            .nonces
            .verify(&credentials, &self.options.realm, method.as_str(), ha1, now)
        {
            Ok(()) => {}
            Err(Rejection::Stale) => return challenge(true),
            Err(Rejection::Malformed(why)) => {
                return Admission::Refused(OutgoingResponse::new(400).reason(why));
            }
            Err(Rejection::Refused(why)) => {
                tracing::debug!(%source, why, "a carrier's digest credentials were refused");
                return forbidden();
            }
            Err(Rejection::Replayed) => return forbidden(),
        }
        let trunk = trunk.expect("verified against a trunk");
        // Each nonce count once (the replay guard), under the trunk's tenant.
        let key = format!(
            "edge:{{{}}}:trunk-digest:{}:{}",
            trunk.matched.tenant,
            credentials.nonce,
            credentials.nc.as_deref().unwrap_or_default()
        );
        match self
            .cache
            .set_if_absent(&key, b"1", self.nonces.lifetime())
            .await
        {
            Ok(true) => Admission::Admitted(vec![trunk.matched.clone()]),
            Ok(false) => forbidden(),
            Err(error) => {
                tracing::warn!(%error, "the digest replay guard could not answer");
                Admission::Refused(OutgoingResponse::new(503).header("Retry-After", "5"))
            }
        }
    }
}

/// Every enabled trunk's sources and digest credentials, in system scope.
async fn load(db: &Database, nonces: &Nonces) -> Result<Index, sea_orm::DbErr> {
    let query = Query::select()
        .columns(
            [
                "id",
                "tenant_id",
                "name",
                "inbound_sources",
                "inbound_username",
                "inbound_ha1_sha256",
                "inbound_ha1_md5",
                "register",
            ]
            .map(col),
        )
        .from(col(TRUNKS))
        .and_where(Expr::col(col("enabled")).eq(true))
        .to_owned();
    let system = db.system();
    let rows = system.connection().query_all(&query).await?;
    let mut index = Index::default();
    for row in rows {
        let matched = TrunkMatch {
            tenant: TenantId::from_uuid(row.try_get::<Uuid>("", "tenant_id")?),
            trunk_id: TrunkId::from_uuid(row.try_get::<Uuid>("", "id")?),
            name: row.try_get("", "name")?,
        };
        let sources: String = row.try_get("", "inbound_sources")?;
        let sources: Vec<String> = serde_json::from_str(&sources).map_err(|error| {
            sea_orm::DbErr::Custom(format!(
                "trunk {}: sources are not JSON: {error}",
                matched.trunk_id
            ))
        })?;
        for source in sources {
            match parse_source(&source) {
                Ok(IpNet::V4(network)) if network.prefix_len() == 32 => index
                    .addresses
                    .entry(IpAddr::V4(network.addr()))
                    .or_default()
                    .push(matched.clone()),
                Ok(IpNet::V6(network)) if network.prefix_len() == 128 => index
                    .addresses
                    .entry(IpAddr::V6(network.addr()))
                    .or_default()
                    .push(matched.clone()),
                Ok(network) => index.networks.push((network, matched.clone())),
                Err(why) => {
                    tracing::warn!(trunk_id = %matched.trunk_id, why, "a stored trunk source is skipped");
                }
            }
        }
        if row.try_get::<bool>("", "register")? {
            for token in line_tokens(nonces, matched.trunk_id) {
                index.lines.insert(token, matched.clone());
            }
        }
        let username: Option<String> = row.try_get("", "inbound_username")?;
        let sha256: Option<String> = row.try_get("", "inbound_ha1_sha256")?;
        let md5: Option<String> = row.try_get("", "inbound_ha1_md5")?;
        if let (Some(username), Some(ha1_sha256), Some(ha1_md5)) = (username, sha256, md5) {
            index.digest.insert(
                username,
                DigestTrunk {
                    matched,
                    ha1_sha256,
                    ha1_md5,
                },
            );
        }
    }
    Ok(index)
}
