//! Registrations with carriers (RFC 3261 §10.2): a trunk whose outbound
//! settings have `register` set gets the edge's binding at the carrier's
//! registrar, kept alive, so a carrier that delivers calls to registered
//! customers sends the tenant's calls to the edge.
//!
//! - Every [`RegistrationOptions::check_every`] the edge reads the enabled
//!   trunks that register (in system scope, like admission) and keeps one
//!   registration per trunk. One replica holds each trunk's registration:
//!   a lease in the cache (`edge:{<tenant>}:trunk-registration-lease:<id>`,
//!   renewed at each check) decides which, so replicas do not overwrite
//!   each other's Contact; another replica takes over within a few checks
//!   once the holder stops.
//! - A REGISTER names the trunk's username at the carrier's host (To and
//!   From), the edge's address in Contact with the trunk's `line` token
//!   (by which admission knows the calls the carrier delivers there), and
//!   the trunk's `register_expires`. A challenge (401/407) is answered once with the
//!   trunk's outbound credentials (RFC 7616 as in [`crate::sip::digest`]);
//!   423 takes the registrar's Min-Expires and asks again. The binding is
//!   refreshed halfway through what the registrar granted (the Contact's
//!   `expires`, else Expires, else what was asked).
//! - A failure (any other answer, no answer, an unreachable carrier) is
//!   retried after [`RegistrationOptions::retry_after`], doubling up to
//!   [`RegistrationOptions::max_retry_after`].
//! - A trunk that stops registering (disabled, deleted, `register` off)
//!   is unregistered (Expires: 0) and its lease given back.
//!
//! Each trunk's state is in the cache under its tenant
//! (`edge:{<tenant>}:trunk-registration:<id>`, [`RegistrationStatus`]) for
//! every replica's API to answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};
use switchboard_platform::{Cache, Database};
use switchboard_sip::values::{parse_name_addr, split_list};
use switchboard_sip::{Limits, Message, StartLine, Transport, parse};
use switchboard_tenancy::{TenantId, TrunkId};
use uuid::Uuid;

use super::reach::{authority, reach, transport_param};
use super::spec::DEFAULT_REGISTER_EXPIRES;
use super::store::{TRUNKS, col, registration_settings};
use super::{OutboundTarget, line_token};
use crate::calls::requests::{self, Local};
use crate::sip::digest::{Nonces, pick_challenge};
use crate::sip::transport::Connector;
use crate::sip::{ClientEvent, Endpoint};

/// Trunks' registrations, by trunk and result (`registered`, `failed`).
pub const REGISTRATIONS_METRIC: &str = "switchboard_edge_trunk_registrations_total";

/// How registrations are kept.
#[derive(Debug, Clone)]
pub struct RegistrationOptions {
    /// How often the trunks are read, leases renewed and due
    /// registrations sent.
    pub check_every: Duration,
    /// The wait before a failed registration is tried again; it doubles
    /// with each failure in a row.
    pub retry_after: Duration,
    pub max_retry_after: Duration,
}

impl Default for RegistrationOptions {
    fn default() -> Self {
        Self {
            check_every: Duration::from_secs(10),
            retry_after: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(600),
        }
    }
}

/// A trunk's registration as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationStatus {
    /// `registering`, `registered` or `failed`.
    pub state: String,
    /// Until when the carrier keeps the binding, once registered.
    pub expires_at: Option<DateTime<Utc>>,
    /// The registrar's last final answer, if any.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A trunk that registers, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registering {
    tenant: TenantId,
    id: TrunkId,
    target: OutboundTarget,
    expires: u32,
}

/// This replica's registration of one trunk.
struct Held {
    trunk: Registering,
    call_id: String,
    tag: String,
    cseq: u32,
    /// When to send the next REGISTER.
    due: Instant,
    /// An attempt is in flight.
    sending: bool,
    failures: u32,
    /// The expiry asked for (raised by a 423).
    expires: u32,
}

/// The registrations this edge keeps. Cheap to clone.
#[derive(Clone)]
pub struct TrunkRegistrations {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    cache: Arc<dyn Cache>,
    options: RegistrationOptions,
    /// This replica's lease token.
    replica: String,
    endpoint: OnceLock<(Endpoint, String)>,
    connector: OnceLock<Connector>,
    held: Mutex<HashMap<TrunkId, Held>>,
    /// The keys that derive each trunk's `line` token, which admission
    /// recognises in the Request-URI of the calls the carrier sends.
    lines: Option<Nonces>,
}

fn lease_key(tenant: TenantId, trunk: TrunkId) -> String {
    format!("edge:{{{tenant}}}:trunk-registration-lease:{trunk}")
}

fn status_key(tenant: TenantId, trunk: TrunkId) -> String {
    format!("edge:{{{tenant}}}:trunk-registration:{trunk}")
}

impl TrunkRegistrations {
    pub fn new(db: Database, cache: Arc<dyn Cache>, options: RegistrationOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                cache,
                options,
                replica: format!("{:032x}", rand::random::<u128>()),
                endpoint: OnceLock::new(),
                connector: OnceLock::new(),
                held: Mutex::default(),
                lines: None,
            }),
        }
    }

    /// Registers each trunk's Contact with a `line` token derived with
    /// `nonces`' keys (the same keys as admission's: [`line_token`]), so the
    /// calls the carrier delivers to it are admitted as the trunk's.
    pub fn with_lines(mut self, nonces: Nonces) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.lines = Some(nonces);
        }
        self
    }

    /// Starts keeping registrations, sending from `endpoint` as `sent_by`
    /// (`host:port` of the UDP listener, written in Via and Contact) and
    /// connecting with `connector`. Stops when every clone is dropped.
    pub fn start(&self, endpoint: Endpoint, sent_by: String, connector: Connector) {
        if self.inner.endpoint.set((endpoint, sent_by)).is_err() {
            return;
        }
        let _ = self.inner.connector.set(connector);
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.options.check_every;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                TrunkRegistrations { inner }.check().await;
            }
        });
    }

    /// The registration state of `tenant`'s trunk `trunk`, as the replica
    /// holding it last wrote it.
    pub async fn status(&self, tenant: TenantId, trunk: TrunkId) -> Option<RegistrationStatus> {
        let value = self
            .inner
            .cache
            .get(&status_key(tenant, trunk))
            .await
            .ok()
            .flatten()?;
        serde_json::from_slice(&value).ok()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<TrunkId, Held>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One check: leases, due registrations, trunks that stopped.
    async fn check(&self) {
        let trunks = match load(&self.inner.db).await {
            Ok(trunks) => trunks,
            Err(error) => {
                tracing::warn!(%error, "the registering trunks could not be read");
                return;
            }
        };
        let lease_ttl = self.inner.options.check_every * 3;
        let token = self.inner.replica.as_bytes();
        let mut kept = Vec::new();
        for trunk in trunks {
            let key = lease_key(trunk.tenant, trunk.id);
            let ours = match self.inner.cache.renew_lease(&key, token, lease_ttl).await {
                Ok(true) => true,
                Ok(false) => self
                    .inner
                    .cache
                    .set_if_absent(&key, token, lease_ttl)
                    .await
                    .unwrap_or(false),
                Err(error) => {
                    tracing::debug!(%error, "a trunk's registration lease could not be renewed");
                    false
                }
            };
            if !ours {
                // Another replica holds it (or took it over).
                self.held().remove(&trunk.id);
                continue;
            }
            kept.push(trunk.id);
            let due = {
                let mut held = self.held();
                let entry = held.entry(trunk.id).or_insert_with(|| Held {
                    trunk: trunk.clone(),
                    call_id: requests::call_id(),
                    tag: requests::tag(),
                    cseq: 0,
                    due: Instant::now(),
                    sending: false,
                    failures: 0,
                    expires: trunk.expires,
                });
                if entry.trunk != trunk {
                    // New settings: register them at once.
                    entry.expires = trunk.expires;
                    entry.trunk = trunk.clone();
                    entry.due = Instant::now();
                    entry.failures = 0;
                }
                let due = !entry.sending && entry.due <= Instant::now();
                if due {
                    entry.sending = true;
                }
                due
            };
            if due {
                let this = self.clone();
                tokio::spawn(async move { this.register(trunk.id).await });
            }
        }
        // Trunks that stopped registering: unregistered, let go.
        let stopped: Vec<Held> = {
            let mut held = self.held();
            let gone: Vec<TrunkId> = held
                .keys()
                .filter(|id| !kept.contains(id))
                .copied()
                .collect();
            gone.into_iter().filter_map(|id| held.remove(&id)).collect()
        };
        for held in stopped {
            let this = self.clone();
            tokio::spawn(async move { this.unregister(held).await });
        }
    }

    /// Sends `trunk`'s REGISTER, answers one challenge, and records the
    /// outcome.
    async fn register(&self, trunk: TrunkId) {
        let outcome = self.exchange(trunk, None).await;
        let now = Instant::now();
        let (tenant, status) = {
            let mut held = self.held();
            let Some(entry) = held.get_mut(&trunk) else {
                return;
            };
            entry.sending = false;
            let tenant = entry.trunk.tenant;
            match outcome {
                Ok(granted) => {
                    entry.failures = 0;
                    // Halfway through, and never sooner than a check.
                    entry.due = now + (granted / 2).max(self.inner.options.check_every);
                    metrics::counter!(REGISTRATIONS_METRIC, "result" => "registered").increment(1);
                    tracing::debug!(%trunk, ?granted, "registered with the carrier");
                    let status = RegistrationStatus {
                        state: "registered".into(),
                        expires_at: chrono::Duration::from_std(granted)
                            .ok()
                            .map(|granted| Utc::now() + granted),
                        last_status: Some(200),
                        error: None,
                        updated_at: Utc::now(),
                    };
                    (tenant, status)
                }
                Err((code, why)) => {
                    entry.failures += 1;
                    let wait = self
                        .inner
                        .options
                        .retry_after
                        .saturating_mul(1 << Ord::min(entry.failures - 1, 10))
                        .min(self.inner.options.max_retry_after);
                    entry.due = now + wait;
                    metrics::counter!(REGISTRATIONS_METRIC, "result" => "failed").increment(1);
                    tracing::warn!(%trunk, trunk_name = %entry.trunk.target.trunk, why, ?wait, "the carrier did not take the trunk's registration");
                    let status = RegistrationStatus {
                        state: "failed".into(),
                        expires_at: None,
                        last_status: code,
                        error: Some(why),
                        updated_at: Utc::now(),
                    };
                    (tenant, status)
                }
            }
        };
        let value = serde_json::to_vec(&status).expect("a status serializes");
        // Kept a little past the lease, so a status outlives a replica
        // only as long as the takeover takes.
        let ttl = self.inner.options.check_every * 6
            + status
                .expires_at
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or_default();
        if let Err(error) = self
            .inner
            .cache
            .set(&status_key(tenant, trunk), &value, Some(ttl))
            .await
        {
            tracing::debug!(%error, "a trunk's registration status could not be kept");
        }
    }

    /// Removes the binding of a trunk that stopped registering (Expires:
    /// 0), and gives its lease and status up.
    async fn unregister(&self, held: Held) {
        let (tenant, id) = (held.trunk.tenant, held.trunk.id);
        {
            let mut table = self.held();
            table.insert(
                id,
                Held {
                    expires: 0,
                    sending: true,
                    ..held
                },
            );
        }
        if let Err((_, why)) = self.exchange(id, Some(0)).await {
            tracing::debug!(%id, why, "the carrier did not take the trunk's unregistration");
        }
        self.held().remove(&id);
        let _ = self
            .inner
            .cache
            .release_lease(&lease_key(tenant, id), self.inner.replica.as_bytes())
            .await;
        let _ = self.inner.cache.delete(&status_key(tenant, id)).await;
    }

    /// One REGISTER transaction (and one more after a challenge or a
    /// 423): the binding's granted lifetime, or the failure's status and
    /// reason.
    async fn exchange(
        &self,
        trunk: TrunkId,
        expires_override: Option<u32>,
    ) -> Result<Duration, (Option<u16>, String)> {
        let Some((endpoint, sent_by)) = self.inner.endpoint.get().cloned() else {
            return Err((None, "the edge has no endpoint".into()));
        };
        let Some(target) = self
            .held()
            .get(&trunk)
            .map(|entry| entry.trunk.target.clone())
        else {
            return Err((None, "the trunk is no longer registered here".into()));
        };
        let peer = reach(&endpoint, self.inner.connector.get(), &target)
            .await
            .map_err(|why| (None, why))?;
        let local = Local {
            sent_by,
            transport: peer.via_transport(),
        };
        let username = target.username.clone().unwrap_or_default();
        let password = target.password.clone().unwrap_or_default();
        let uri = format!(
            "sip:{}{}",
            authority(&target),
            transport_param(target.transport)
        );
        let line = self
            .inner
            .lines
            .as_ref()
            .map(|nonces| format!(";line={}", line_token(nonces, trunk)))
            .unwrap_or_default();
        let contact = format!(
            "<sip:{username}@{}{}{line}>",
            local.sent_by,
            transport_param(target.transport)
        );
        let mut authorization: Option<(&'static str, String)> = None;
        for _ in 0..3 {
            let (request, expires) = {
                let mut held = self.held();
                let Some(entry) = held.get_mut(&trunk) else {
                    return Err((None, "the trunk is no longer registered here".into()));
                };
                entry.cseq += 1;
                let expires = expires_override.unwrap_or(entry.expires);
                let party = format!("<sip:{username}@{}>", authority(&target));
                let mut request = format!(
                    "REGISTER {uri} SIP/2.0\r\n\
                     Via: {via}\r\n\
                     Max-Forwards: 70\r\n\
                     From: {party};tag={tag}\r\n\
                     To: {party}\r\n\
                     Call-ID: {call_id}\r\n\
                     CSeq: {cseq} REGISTER\r\n\
                     Contact: {contact}\r\n\
                     Expires: {expires}\r\n",
                    via = local.via(),
                    tag = entry.tag,
                    call_id = entry.call_id,
                    cseq = entry.cseq,
                );
                if let Some((name, value)) = &authorization {
                    request.push_str(&format!("{name}: {value}\r\n"));
                }
                request.push_str("Content-Length: 0\r\n\r\n");
                (request, expires)
            };
            let mut outgoing = endpoint
                .send_request(Bytes::from(request), peer.clone())
                .map_err(|_| (None, "the REGISTER could not be sent".to_owned()))?;
            let response = loop {
                match outgoing.next().await {
                    Some(ClientEvent::Response(bytes)) => {
                        let Some(response) = parse(&bytes, Transport::Datagram, &Limits::default())
                            .ok()
                            .flatten()
                            .map(|(message, _)| Answer::of(&message, &contact))
                        else {
                            continue;
                        };
                        if response.code >= 200 {
                            break response;
                        }
                    }
                    Some(ClientEvent::TimedOut) | None => {
                        return Err((None, "the carrier's registrar did not answer".into()));
                    }
                }
            };
            match response.code {
                200..=299 => {
                    let granted = response.granted.unwrap_or(expires);
                    return Ok(Duration::from_secs(u64::from(granted)));
                }
                401 | 407 if authorization.is_none() => {
                    let Some(challenge) = response.challenge else {
                        return Err((
                            Some(response.code),
                            "the registrar's challenge is not a Digest one the edge knows".into(),
                        ));
                    };
                    if username.is_empty() {
                        return Err((
                            Some(response.code),
                            "the registrar asks for credentials; the trunk has none".into(),
                        ));
                    }
                    let header = if response.code == 401 {
                        "Authorization"
                    } else {
                        "Proxy-Authorization"
                    };
                    authorization = Some((
                        header,
                        challenge.answer(&username, &password, "REGISTER", &uri, &requests::tag()),
                    ));
                }
                423 if expires_override.is_none() => {
                    let Some(minimum) = response.min_expires else {
                        return Err((Some(423), "423 without Min-Expires".into()));
                    };
                    if let Some(entry) = self.held().get_mut(&trunk) {
                        entry.expires = minimum;
                    }
                }
                401 | 407 => {
                    return Err((
                        Some(response.code),
                        "the registrar refused the trunk's credentials".into(),
                    ));
                }
                code => return Err((Some(code), format!("the registrar answered {code}"))),
            }
        }
        Err((None, "the registrar kept asking".into()))
    }
}

/// What a registrar's final answer says, read before anything waits.
struct Answer {
    code: u16,
    /// The lifetime granted to the edge's Contact.
    granted: Option<u32>,
    challenge: Option<crate::sip::digest::ServerChallenge>,
    min_expires: Option<u32>,
}

impl Answer {
    fn of(message: &Message<'_>, contact: &str) -> Self {
        let code = match message.start {
            StartLine::Response { code, .. } => code,
            StartLine::Request { .. } => 0,
        };
        let ours = parse_name_addr(contact)
            .ok()
            .map(|ours| ours.uri.to_owned());
        let from_contact = message
            .headers_named("Contact")
            .flat_map(|header| split_list(&header.value).unwrap_or_default())
            .filter_map(|entry| parse_name_addr(entry.trim()).ok())
            .find(|entry| Some(entry.uri) == ours.as_deref())
            .and_then(|entry| entry.param("expires").flatten()?.parse().ok());
        let from_header = message
            .header("Expires")
            .and_then(|value| value.value.trim().parse().ok());
        let challenge_header = if code == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        Self {
            code,
            granted: from_contact.or(from_header),
            challenge: pick_challenge(
                message
                    .headers_named(challenge_header)
                    .map(|header| &*header.value),
            ),
            min_expires: message
                .header("Min-Expires")
                .and_then(|value| value.value.trim().parse().ok()),
        }
    }
}

/// The enabled trunks that register: which ones (in system scope, which
/// may read no secret), then each one's settings in its own tenant's
/// scope.
async fn load(db: &Database) -> Result<Vec<Registering>, sea_orm::DbErr> {
    let query = Query::select()
        .columns(["id", "tenant_id"].map(col))
        .from(col(TRUNKS))
        .and_where(Expr::col(col("enabled")).eq(true))
        .and_where(Expr::col(col("register")).eq(true))
        .to_owned();
    let system = db.system();
    let rows = system.connection().query_all(&query).await?;
    let mut trunks = Vec::new();
    for row in rows {
        let tenant = TenantId::from_uuid(row.try_get::<Uuid>("", "tenant_id")?);
        let id = TrunkId::from_uuid(row.try_get::<Uuid>("", "id")?);
        let Some((target, expires)) = registration_settings(db, tenant, id).await? else {
            continue;
        };
        trunks.push(Registering {
            tenant,
            id,
            target,
            expires: Some(expires)
                .filter(|expires| *expires > 0)
                .unwrap_or(DEFAULT_REGISTER_EXPIRES),
        });
    }
    Ok(trunks)
}
