//! The registrar (RFC 3261 §10.3) for agents' phones: each tenant has its
//! own SIP domain; a REGISTER is digest-authenticated ([`crate::sip::digest`])
//! as one of that tenant's SIP accounts and may bind only that account's
//! address of record. Bindings live in the cache, so every edge replica
//! finds every device; an agent may have several devices.
//!
//! Tenant treatment (ARCHITECTURE.md): every key is under the tenant's
//! prefix `edge:{<tenant>}:`, the domain decides the tenant before anything
//! is read, and a REGISTER for one tenant's domain can only name accounts
//! that tenant's directory returns.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use switchboard_platform::Cache;
use switchboard_sip::uri::{parse_sip_uri, unescape};
use switchboard_sip::values::{parse_name_addr, split_list};
use switchboard_sip::{Message, StartLine};
use switchboard_tenancy::{TenantId, UserId};

use crate::sip::OutgoingResponse;
use crate::sip::digest::{Algorithm, Credentials, Nonces, Rejection, parse_credentials};

/// One SIP account: the user it belongs to and what digest needs of its
/// password (never the password itself).
#[derive(Debug, Clone)]
pub struct SipAccount {
    pub user: UserId,
    pub ha1_sha256: String,
    pub ha1_md5: String,
}

impl SipAccount {
    fn ha1(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Sha256 => &self.ha1_sha256,
            Algorithm::Md5 => &self.ha1_md5,
        }
    }
}

/// Where the registrar learns which tenant a SIP domain is, and the SIP
/// accounts of a tenant.
#[async_trait::async_trait]
pub trait SipDirectory: Send + Sync + 'static {
    /// The tenant whose SIP domain `domain` is (lowercase).
    async fn tenant_of_domain(&self, domain: &str) -> anyhow::Result<Option<TenantId>>;

    /// The account `username` of `tenant`, if it has one.
    async fn account(&self, tenant: TenantId, username: &str)
    -> anyhow::Result<Option<SipAccount>>;
}

/// Bounds of registrations.
#[derive(Debug, Clone)]
pub struct RegistrarOptions {
    /// Shortest registration accepted (423 below it, with Min-Expires).
    pub min_expires: Duration,
    /// Longest granted; longer requests are shortened to it.
    pub max_expires: Duration,
    /// Granted when the request names none.
    pub default_expires: Duration,
    /// Devices per account.
    pub max_devices: usize,
    /// The digest algorithms offered, most preferred first (RFC 8760):
    /// SHA-256 then MD5 by default. Credentials under another one are
    /// refused. Phones that read only the first challenge and know only
    /// MD5 (SIPp 3.6, many older desk phones) need MD5 first.
    pub algorithms: Vec<Algorithm>,
}

impl Default for RegistrarOptions {
    fn default() -> Self {
        Self {
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            default_expires: Duration::from_secs(3600),
            max_devices: 10,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }
}

/// One device bound to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI, without angle brackets.
    pub contact: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub call_id: String,
    pub cseq: u32,
    /// The address the REGISTER came from (`udp:1.2.3.4:5060`), where a
    /// phone behind NAT is reached (RFC 3261 §10.3 leaves this to the
    /// registrar; RFC 5626 does it properly).
    pub source: String,
}

/// The devices of accounts, in the cache: one hash per account, a field
/// per Contact.
#[derive(Clone)]
pub struct Bindings {
    cache: Arc<dyn Cache>,
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl Bindings {
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self { cache }
    }

    fn key(tenant: TenantId, user: UserId) -> String {
        format!("edge:{{{tenant}}}:bindings:{user}")
    }

    /// The live bindings of `user` (expired ones are removed on the way).
    pub async fn of(
        &self,
        tenant: TenantId,
        user: UserId,
        now: SystemTime,
    ) -> switchboard_platform::Result<Vec<Binding>> {
        let key = Self::key(tenant, user);
        let mut live = Vec::new();
        for (field, value) in self.cache.hash_get_all(&key).await? {
            match serde_json::from_slice::<Binding>(&value) {
                Ok(binding) if binding.expires_at > unix_seconds(now) => live.push(binding),
                _ => {
                    self.cache.hash_delete(&key, &field).await?;
                }
            }
        }
        live.sort_by(|a, b| a.contact.cmp(&b.contact));
        Ok(live)
    }

    /// Drops every device of `user` (their account stopped working).
    pub async fn forget(&self, tenant: TenantId, user: UserId) -> switchboard_platform::Result<()> {
        self.cache.delete(&Self::key(tenant, user)).await?;
        Ok(())
    }

    async fn put(
        &self,
        tenant: TenantId,
        user: UserId,
        binding: &Binding,
    ) -> switchboard_platform::Result<()> {
        let value = serde_json::to_vec(binding).expect("a binding serializes");
        self.cache
            .hash_set(&Self::key(tenant, user), &binding.contact, &value)
            .await
    }

    async fn remove(
        &self,
        tenant: TenantId,
        user: UserId,
        contact: &str,
    ) -> switchboard_platform::Result<()> {
        self.cache
            .hash_delete(&Self::key(tenant, user), contact)
            .await?;
        Ok(())
    }
}

/// Which challenge a request gets (RFC 3261 §22.1).
#[derive(Debug, Clone, Copy)]
enum Challenge {
    /// 401 with WWW-Authenticate: the registrar's own requests.
    Registrar,
    /// 407 with Proxy-Authenticate: requests the edge passes on.
    Proxy,
}

/// The registrar of every tenant's domain.
pub struct Registrar {
    directory: Arc<dyn SipDirectory>,
    bindings: Bindings,
    cache: Arc<dyn Cache>,
    nonces: Nonces,
    options: RegistrarOptions,
}

/// One contact of a REGISTER, and what to do with it.
struct Change {
    contact: String,
    /// Zero removes.
    expires: Duration,
}

impl Registrar {
    pub fn new(
        directory: Arc<dyn SipDirectory>,
        cache: Arc<dyn Cache>,
        nonces: Nonces,
        options: RegistrarOptions,
    ) -> Self {
        Self {
            directory,
            bindings: Bindings::new(cache.clone()),
            cache,
            nonces,
            options,
        }
    }

    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }

    /// The answer to `request` (a REGISTER) that came from `source`.
    pub async fn register(&self, request: &Message<'_>, source: &str) -> OutgoingResponse {
        match self.try_register(request, source, SystemTime::now()).await {
            Ok(response) | Err(response) => response,
        }
    }

    async fn try_register(
        &self,
        request: &Message<'_>,
        source: &str,
        now: SystemTime,
    ) -> Result<OutgoingResponse, OutgoingResponse> {
        let StartLine::Request { uri, .. } = &request.start else {
            return Err(OutgoingResponse::new(400));
        };
        let request_uri = parse_sip_uri(uri)
            .map_err(|why| OutgoingResponse::new(400).reason(format!("Bad Request-URI: {why}")))?;
        if request_uri.user.is_some() {
            return Err(OutgoingResponse::new(400)
                .reason("The Request-URI of a REGISTER names a domain, not a user"));
        }
        let domain = request_uri.host.to_ascii_lowercase();
        let unavailable = |error: anyhow::Error| {
            tracing::warn!(%error, "the SIP directory could not answer");
            OutgoingResponse::new(503).header("Retry-After", "5")
        };
        let tenant = self
            .directory
            .tenant_of_domain(&domain)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| OutgoingResponse::new(404).reason("No such domain"))?;

        // Authentication (RFC 3261 §22.4).
        let (account, credentials) = self
            .authenticate(request, uri, &domain, tenant, Challenge::Registrar, now)
            .await?;

        // The address of record must be the authenticated account's.
        let to = request
            .header("To")
            .and_then(|to| parse_name_addr(&to.value).ok())
            .and_then(|to| {
                parse_sip_uri(to.uri).ok().map(|uri| {
                    (
                        uri.user.map(|user| unescape(user).into_owned()),
                        uri.host.to_ascii_lowercase(),
                    )
                })
            });
        match to {
            Some((Some(user), host)) if user == credentials.username && host == domain => {}
            _ => {
                return Err(OutgoingResponse::new(403)
                    .reason("The To header must name your own account at this domain"));
            }
        }

        let (call_id, cseq) = match (request.header("Call-ID"), request.cseq()) {
            (Some(call_id), Some((cseq, _))) => (call_id.value.to_string(), cseq),
            _ => return Err(OutgoingResponse::new(400)),
        };
        let changes = self.changes(request)?;
        let current = self
            .bindings
            .of(tenant, account.user, now)
            .await
            .map_err(|error| unavailable(error.into()))?;
        if let Some(changes) = &changes {
            // RFC 3261 §10.3 step 7: a binding is only changed by a newer
            // REGISTER of the same Call-ID.
            for change in changes {
                if let Some(existing) = current.iter().find(|b| b.contact == change.contact)
                    && existing.call_id == call_id
                    && existing.cseq >= cseq
                {
                    return Err(OutgoingResponse::new(500).reason("Out-of-order REGISTER"));
                }
            }
            let added = changes
                .iter()
                .filter(|change| {
                    !change.expires.is_zero()
                        && !current.iter().any(|b| b.contact == change.contact)
                })
                .count();
            let kept = current
                .iter()
                .filter(|b| {
                    !changes
                        .iter()
                        .any(|change| change.contact == b.contact && change.expires.is_zero())
                })
                .count();
            if kept + added > self.options.max_devices {
                return Err(OutgoingResponse::new(403).reason(format!(
                    "At most {} devices per account",
                    self.options.max_devices
                )));
            }
            for change in changes {
                let result = if change.expires.is_zero() {
                    self.bindings
                        .remove(tenant, account.user, &change.contact)
                        .await
                } else {
                    let binding = Binding {
                        contact: change.contact.clone(),
                        expires_at: unix_seconds(now + change.expires),
                        call_id: call_id.clone(),
                        cseq,
                        source: source.to_owned(),
                    };
                    self.bindings.put(tenant, account.user, &binding).await
                };
                result.map_err(|error| unavailable(error.into()))?;
            }
        } else {
            // `Contact: *` with Expires: 0 removes every binding.
            for binding in &current {
                self.bindings
                    .remove(tenant, account.user, &binding.contact)
                    .await
                    .map_err(|error| unavailable(error.into()))?;
            }
        }

        let bound = self
            .bindings
            .of(tenant, account.user, now)
            .await
            .map_err(|error| unavailable(error.into()))?;
        let mut response = OutgoingResponse::new(200);
        for binding in &bound {
            response = response.header(
                "Contact",
                format!(
                    "<{}>;expires={}",
                    binding.contact,
                    binding.expires_at.saturating_sub(unix_seconds(now))
                ),
            );
        }
        // RFC 3261 §20.17: an RFC 1123 date, in GMT.
        Ok(response.header("Date", httpdate::fmt_http_date(now)))
    }

    /// The account a request's digest credentials prove, under the
    /// domain's realm (RFC 3261 §22; RFC 8760's algorithms): `challenge`
    /// says which header pair (401 WWW-Authenticate / Authorization, or
    /// 407 Proxy-Authenticate / Proxy-Authorization). Each nonce count is
    /// accepted once (a replayed request is challenged again).
    async fn authenticate(
        &self,
        request: &Message<'_>,
        uri: &str,
        domain: &str,
        tenant: TenantId,
        challenge: Challenge,
        now: SystemTime,
    ) -> Result<(SipAccount, Credentials), OutgoingResponse> {
        let unavailable = |error: anyhow::Error| {
            tracing::warn!(%error, "the SIP directory could not answer");
            OutgoingResponse::new(503).header("Retry-After", "5")
        };
        let (code, ask, answer) = match challenge {
            Challenge::Registrar => (401, "WWW-Authenticate", "Authorization"),
            Challenge::Proxy => (407, "Proxy-Authenticate", "Proxy-Authorization"),
        };
        let challenge = |stale: bool| {
            let mut response = OutgoingResponse::new(code);
            for value in self
                .nonces
                .challenges(domain, stale, now, &self.options.algorithms)
            {
                response = response.header(ask, value);
            }
            response
        };
        let Some(authorization) = request.header(answer) else {
            return Err(challenge(false));
        };
        let credentials = match parse_credentials(&authorization.value) {
            Ok(credentials) => credentials,
            Err(Rejection::Malformed(why)) => return Err(OutgoingResponse::new(400).reason(why)),
            Err(_) => return Err(challenge(false)),
        };
        if !self.options.algorithms.contains(&credentials.algorithm) {
            return Err(challenge(false));
        }
        if credentials.uri != uri {
            return Err(OutgoingResponse::new(400).reason(format!(
                "The digest uri {:?} is not the Request-URI {uri:?}",
                credentials.uri
            )));
        }
        let method = request.method().map(|method| method.as_str()).unwrap_or("");
        let account = self
            .directory
            .account(tenant, &credentials.username)
            .await
            .map_err(unavailable)?;
        let ha1 = account
            .as_ref()
            .map(|account| account.ha1(credentials.algorithm));
        match self.nonces.verify(&credentials, domain, method, ha1, now) {
            Ok(()) => {}
            Err(Rejection::Stale) => return Err(challenge(true)),
            Err(Rejection::Malformed(why)) => return Err(OutgoingResponse::new(400).reason(why)),
            Err(_) => return Err(challenge(false)),
        }
        let account = account.expect("verified against an account");
        let nonce_count = format!(
            "edge:{{{tenant}}}:digest:{}:{}",
            credentials.nonce,
            credentials.nc.as_deref().unwrap_or_default()
        );
        let first_use = self
            .cache
            .set_if_absent(&nonce_count, b"1", self.nonces.lifetime())
            .await
            .map_err(|error| unavailable(error.into()))?;
        if !first_use {
            return Err(challenge(false));
        }
        Ok((account, credentials))
    }

    /// Who places a call whose INVITE names, in its From, an account at a
    /// tenant's SIP domain (an agent's phone dialing out): `None` when the
    /// From's host is no tenant's domain (a carrier's call). The phone
    /// proves the account with digest credentials in Proxy-Authorization
    /// (407 challenges, as a proxy would: RFC 3261 §22.3), and the From
    /// must name that same account (403 otherwise).
    pub async fn caller_of(
        &self,
        request: &Message<'_>,
    ) -> Option<Result<(TenantId, UserId), OutgoingResponse>> {
        let StartLine::Request { uri, .. } = &request.start else {
            return None;
        };
        let from = request.header("From")?;
        let from = parse_name_addr(&from.value).ok()?;
        let from = parse_sip_uri(from.uri).ok()?;
        let domain = from.host.to_ascii_lowercase();
        let tenant = match self.directory.tenant_of_domain(&domain).await {
            Ok(Some(tenant)) => tenant,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, "the SIP directory could not answer");
                return Some(Err(OutgoingResponse::new(503).header("Retry-After", "5")));
            }
        };
        let from_user = from.user.map(|user| unescape(user).into_owned());
        let authenticated = self
            .authenticate(
                request,
                uri,
                &domain,
                tenant,
                Challenge::Proxy,
                SystemTime::now(),
            )
            .await;
        Some(authenticated.and_then(|(account, credentials)| {
            if from_user.as_deref() == Some(credentials.username.as_str()) {
                Ok((tenant, account.user))
            } else {
                Err(OutgoingResponse::new(403)
                    .reason("The From header must name your own account at this domain"))
            }
        }))
    }

    /// The contacts of a REGISTER and their expiry (RFC 3261 §10.3 steps
    /// 6–7); `None` for `Contact: *` (remove all). A query (no Contact)
    /// changes nothing. Refuses `*` with other contacts or a nonzero
    /// Expires (400), and a too short registration (423).
    fn changes(&self, request: &Message<'_>) -> Result<Option<Vec<Change>>, OutgoingResponse> {
        let bad = |why: &str| OutgoingResponse::new(400).reason(why.to_owned());
        let header_expires = match request.header("Expires") {
            Some(value) => Some(
                value
                    .value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| bad("Expires must be a number of seconds"))?,
            ),
            None => None,
        };
        let mut entries = Vec::new();
        for header in request.headers_named("Contact") {
            entries.extend(
                split_list(&header.value)
                    .map_err(bad)?
                    .into_iter()
                    .map(str::trim),
            );
        }
        if entries.contains(&"*") {
            if entries.len() != 1 || header_expires != Some(0) {
                return Err(bad("Contact: * must be alone and come with Expires: 0"));
            }
            return Ok(None);
        }
        let mut changes = Vec::new();
        for entry in entries {
            let contact = parse_name_addr(entry).map_err(bad)?;
            parse_sip_uri(contact.uri).map_err(|_| bad("A Contact must be a SIP URI"))?;
            let expires = match contact.param("expires") {
                Some(Some(value)) => value
                    .parse::<u64>()
                    .map_err(|_| bad("A Contact's expires must be a number of seconds"))?,
                Some(None) => return Err(bad("A Contact's expires must be a number of seconds")),
                None => header_expires.unwrap_or(self.options.default_expires.as_secs()),
            };
            let expires = Duration::from_secs(expires);
            if !expires.is_zero() && expires < self.options.min_expires {
                return Err(OutgoingResponse::new(423).header(
                    "Min-Expires",
                    self.options.min_expires.as_secs().to_string(),
                ));
            }
            changes.push(Change {
                contact: contact.uri.to_owned(),
                expires: expires.min(self.options.max_expires),
            });
        }
        Ok(Some(changes))
    }
}
