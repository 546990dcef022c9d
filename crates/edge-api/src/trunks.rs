//! Carrier trunks as the edge's callers see them: what a trunk is set to
//! ([`TrunkSpec`], as written, checked by the edge), what is answered
//! ([`TrunkView`]: passwords are write-only, only whether one is set), and
//! their protobuf forms.

use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_proto::edge::v1 as pb;
use switchboard_proto::time::{datetime, timestamp};
use switchboard_rpc::ServiceError;
use switchboard_tenancy::TrunkId;

use crate::{Result, malformed};

/// A trunk as written by its tenant. Fields are raw (strings, wide
/// integers) so that the edge can name each bad one precisely.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrunkSpec {
    pub name: String,
    pub enabled: bool,
    pub inbound: InboundSpec,
    /// `None` for a trunk that only takes calls.
    pub outbound: Option<OutboundSpec>,
    /// Lower first among the tenant's trunks that can place a call.
    pub priority: i32,
}

/// How a carrier's requests are admitted: from these sources, and/or with
/// these digest credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InboundSpec {
    /// IP addresses and networks in CIDR notation, IPv4 or IPv6.
    pub allowed_sources: Vec<String>,
    /// Unique across every tenant: it names the trunk before its tenant is
    /// known.
    pub username: Option<String>,
    /// Write-only. Absent on a replace: the one set before stays, as long
    /// as the username does.
    pub password: Option<String>,
}

/// Where and how calls are placed to the carrier.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OutboundSpec {
    pub host: String,
    pub port: u32,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// For the carrier's digest challenges.
    pub username: Option<String>,
    /// Write-only; absent on a replace keeps the one set before, as long
    /// as the username stays.
    pub password: Option<String>,
    /// Whether the edge keeps a registration with the carrier.
    pub register: bool,
    /// Seconds the registration asks for; 0 for the default.
    pub register_expires: u32,
    /// The caller ID used when a call names none.
    pub caller_id: Option<String>,
}

/// A trunk as answered: never a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrunkView {
    pub id: TrunkId,
    pub name: String,
    pub enabled: bool,
    /// Normalized CIDR networks (`192.0.2.7/32`).
    pub allowed_sources: Vec<String>,
    pub inbound_username: Option<String>,
    pub inbound_password_set: bool,
    pub outbound: Option<OutboundView>,
    pub priority: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A trunk's outbound settings as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboundView {
    pub host: String,
    pub port: u16,
    pub transport: String,
    pub username: Option<String>,
    pub password_set: bool,
    pub register: bool,
    pub register_expires: u32,
    pub caller_id: Option<String>,
    /// The registration with the carrier, once the edge has tried.
    pub registration: Option<RegistrationView>,
}

/// Where a trunk's registration with its carrier stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationView {
    /// `registered` or `failed`.
    pub state: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The registrar's last final answer, if any.
    pub last_status: Option<u16>,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<TrunkSpec> for pb::TrunkSpec {
    fn from(spec: TrunkSpec) -> Self {
        Self {
            name: spec.name,
            enabled: spec.enabled,
            inbound: Some(pb::InboundSpec {
                allowed_sources: spec.inbound.allowed_sources,
                username: spec.inbound.username,
                password: spec.inbound.password,
            }),
            outbound: spec.outbound.map(|outbound| pb::OutboundSpec {
                host: outbound.host,
                port: outbound.port,
                transport: outbound.transport,
                username: outbound.username,
                password: outbound.password,
                register: outbound.register,
                register_expires: outbound.register_expires,
                caller_id: outbound.caller_id,
            }),
            priority: spec.priority,
        }
    }
}

impl From<pb::TrunkSpec> for TrunkSpec {
    fn from(spec: pb::TrunkSpec) -> Self {
        let inbound = spec.inbound.unwrap_or_default();
        Self {
            name: spec.name,
            enabled: spec.enabled,
            inbound: InboundSpec {
                allowed_sources: inbound.allowed_sources,
                username: inbound.username,
                password: inbound.password,
            },
            outbound: spec.outbound.map(|outbound| OutboundSpec {
                host: outbound.host,
                port: outbound.port,
                transport: outbound.transport,
                username: outbound.username,
                password: outbound.password,
                register: outbound.register,
                register_expires: outbound.register_expires,
                caller_id: outbound.caller_id,
            }),
            priority: spec.priority,
        }
    }
}

impl From<TrunkView> for pb::Trunk {
    fn from(trunk: TrunkView) -> Self {
        Self {
            trunk_id: trunk.id.to_string(),
            name: trunk.name,
            enabled: trunk.enabled,
            allowed_sources: trunk.allowed_sources,
            inbound_username: trunk.inbound_username,
            inbound_password_set: trunk.inbound_password_set,
            outbound: trunk.outbound.map(|outbound| pb::OutboundView {
                host: outbound.host,
                port: u32::from(outbound.port),
                transport: outbound.transport,
                username: outbound.username,
                password_set: outbound.password_set,
                register: outbound.register,
                register_expires: outbound.register_expires,
                caller_id: outbound.caller_id,
                registration: outbound
                    .registration
                    .map(|registration| pb::TrunkRegistration {
                        state: registration.state,
                        expires_at: registration.expires_at.map(timestamp),
                        last_status: registration.last_status.map_or(0, u32::from),
                        error: registration.error,
                        updated_at: Some(timestamp(registration.updated_at)),
                    }),
            }),
            priority: trunk.priority,
            created_at: Some(timestamp(trunk.created_at)),
            updated_at: Some(timestamp(trunk.updated_at)),
        }
    }
}

impl TryFrom<pb::Trunk> for TrunkView {
    type Error = ServiceError;

    fn try_from(trunk: pb::Trunk) -> Result<Self> {
        let time = |at: Option<prost_types::Timestamp>| {
            at.as_ref()
                .and_then(datetime)
                .ok_or_else(|| malformed("trunk time"))
        };
        let outbound = trunk
            .outbound
            .map(|outbound| {
                Ok::<_, ServiceError>(OutboundView {
                    host: outbound.host,
                    port: u16::try_from(outbound.port).map_err(|_| malformed("trunk port"))?,
                    transport: outbound.transport,
                    username: outbound.username,
                    password_set: outbound.password_set,
                    register: outbound.register,
                    register_expires: outbound.register_expires,
                    caller_id: outbound.caller_id,
                    registration: outbound
                        .registration
                        .map(|registration| {
                            Ok::<_, ServiceError>(RegistrationView {
                                state: registration.state,
                                expires_at: registration.expires_at.as_ref().and_then(datetime),
                                last_status: u16::try_from(registration.last_status)
                                    .ok()
                                    .filter(|status| *status > 0),
                                error: registration.error,
                                updated_at: time(registration.updated_at)?,
                            })
                        })
                        .transpose()?,
                })
            })
            .transpose()?;
        Ok(Self {
            id: trunk.trunk_id.parse().map_err(|_| malformed("trunk id"))?,
            name: trunk.name,
            enabled: trunk.enabled,
            allowed_sources: trunk.allowed_sources,
            inbound_username: trunk.inbound_username,
            inbound_password_set: trunk.inbound_password_set,
            outbound,
            priority: trunk.priority,
            created_at: time(trunk.created_at)?,
            updated_at: time(trunk.updated_at)?,
        })
    }
}
