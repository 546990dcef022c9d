//! The JSON bodies of `/v1/trunks`. Passwords are write-only: a request
//! may carry them, no answer does (`password_set` says whether one is).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_edge_api::{InboundSpec, OutboundSpec, OutboundView, TrunkSpec, TrunkView};
use utoipa::ToSchema;
use uuid::Uuid;

fn enabled_by_default() -> bool {
    true
}

/// A carrier trunk, as written (`POST` creates one, `PUT` replaces one
/// whole). On `PUT`, a password left out keeps the one set before as long
/// as its username stays; a new username needs its password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TrunkRequest)]
pub struct TrunkBody {
    /// 1 to 100 characters, unique in the tenant.
    #[schema(example = "Carrier A", min_length = 1, max_length = 100)]
    pub name: String,
    /// A disabled trunk admits nothing and places nothing.
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
    /// How the carrier's calls are admitted; none by default.
    #[serde(default)]
    pub inbound: Option<InboundBody>,
    /// Where calls are placed; absent for a trunk that only takes calls.
    #[serde(default)]
    pub outbound: Option<OutboundBody>,
    /// Lower first, when several trunks can place a call (0 to 999).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 999, default = 0)]
    pub priority: i32,
}

/// The carrier's ways in: source addresses, digest credentials, or both.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TrunkInboundRequest)]
pub struct InboundBody {
    /// IP addresses and networks (CIDR), IPv4 or IPv6, at most 100, none
    /// wider than /8 (IPv4) or /32 (IPv6).
    #[serde(default)]
    #[schema(example = json!(["192.0.2.10", "198.51.100.0/24", "2001:db8:10::/48"]))]
    pub allowed_sources: Vec<String>,
    /// The digest username the carrier authenticates with (to the edge's
    /// 407 challenge): unique across the platform, since it names the trunk
    /// before its tenant is known.
    #[schema(example = "acme-carrier-a", max_length = 64)]
    pub username: Option<String>,
    /// Write-only, 8 to 128 characters; kept only as digest hashes.
    #[schema(write_only, min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

/// How calls are placed to the carrier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TrunkOutboundRequest)]
pub struct OutboundBody {
    /// The carrier's host name or IP address.
    #[schema(example = "sip.carrier.example")]
    pub host: String,
    /// 1 to 65535; 0 to find the carrier's servers and ports in the
    /// host's DNS SRV records (RFC 3263: `_sip._udp`, `_sip._tcp`,
    /// `_sips._tcp`).
    #[schema(example = 5060, minimum = 0, maximum = 65535)]
    pub port: u32,
    /// `udp`, `tcp` or `tls`.
    #[schema(example = "udp")]
    pub transport: String,
    /// For the carrier's digest challenges.
    pub username: Option<String>,
    /// Write-only, 8 to 128 characters.
    #[schema(write_only, min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// Whether the edge keeps a registration with the carrier (needs a
    /// username and password).
    #[serde(default)]
    pub register: bool,
    /// Seconds the registration asks for: 60 to 86400, or 0 (the default)
    /// for 3600.
    #[serde(default)]
    #[schema(default = 0)]
    pub register_expires: u32,
    /// The caller ID used when a call names none: digits, optionally after
    /// `+`.
    #[schema(example = "+14155550100")]
    pub caller_id: Option<String>,
}

impl From<TrunkBody> for TrunkSpec {
    fn from(body: TrunkBody) -> Self {
        let inbound = body.inbound.unwrap_or_default();
        Self {
            name: body.name,
            enabled: body.enabled,
            inbound: InboundSpec {
                allowed_sources: inbound.allowed_sources,
                username: inbound.username,
                password: inbound.password,
            },
            outbound: body.outbound.map(|outbound| OutboundSpec {
                host: outbound.host,
                port: outbound.port,
                transport: outbound.transport,
                username: outbound.username,
                password: outbound.password,
                register: outbound.register,
                register_expires: outbound.register_expires,
                caller_id: outbound.caller_id,
            }),
            priority: body.priority,
        }
    }
}

/// A carrier trunk, without its passwords.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Trunk)]
pub struct TrunkDto {
    pub id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub inbound: TrunkInboundDto,
    /// `null` for a trunk that only takes calls.
    #[schema(required = true)]
    pub outbound: Option<TrunkOutboundDto>,
    pub priority: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A trunk's ways in.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TrunkInbound)]
pub struct TrunkInboundDto {
    /// Normalized networks (`192.0.2.10/32`).
    pub allowed_sources: Vec<String>,
    #[schema(required = true)]
    pub username: Option<String>,
    pub password_set: bool,
}

/// A trunk's outbound settings.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TrunkOutbound)]
pub struct TrunkOutboundDto {
    pub host: String,
    pub port: u16,
    #[schema(example = "udp")]
    pub transport: String,
    #[schema(required = true)]
    pub username: Option<String>,
    pub password_set: bool,
    pub register: bool,
    /// Seconds.
    pub register_expires: u32,
    #[schema(required = true)]
    pub caller_id: Option<String>,
    /// The registration with the carrier while `register` is set; null
    /// before the edge's first attempt.
    #[schema(required = true)]
    pub registration: Option<TrunkRegistrationDto>,
}

/// Where a trunk's registration with its carrier stands.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TrunkRegistration)]
pub struct TrunkRegistrationDto {
    /// `registered` or `failed`.
    #[schema(example = "registered")]
    pub state: String,
    /// Until when the carrier keeps the binding, once registered.
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The registrar's last final answer (200, 403, …); null when it did
    /// not answer.
    #[schema(required = true)]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[schema(required = true)]
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<TrunkView> for TrunkDto {
    fn from(trunk: TrunkView) -> Self {
        Self {
            id: trunk.id.as_uuid(),
            name: trunk.name,
            enabled: trunk.enabled,
            inbound: TrunkInboundDto {
                allowed_sources: trunk.allowed_sources,
                username: trunk.inbound_username,
                password_set: trunk.inbound_password_set,
            },
            outbound: trunk
                .outbound
                .map(|outbound: OutboundView| TrunkOutboundDto {
                    host: outbound.host,
                    port: outbound.port,
                    transport: outbound.transport,
                    username: outbound.username,
                    password_set: outbound.password_set,
                    register: outbound.register,
                    register_expires: outbound.register_expires,
                    caller_id: outbound.caller_id,
                    registration: outbound
                        .registration
                        .map(|registration| TrunkRegistrationDto {
                            state: registration.state,
                            expires_at: registration.expires_at,
                            last_status: registration.last_status,
                            error: registration.error,
                            updated_at: registration.updated_at,
                        }),
                }),
            priority: trunk.priority,
            created_at: trunk.created_at,
            updated_at: trunk.updated_at,
        }
    }
}
