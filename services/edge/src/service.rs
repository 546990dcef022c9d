//! The edge as a node hosts it: options from the config →
//! [`EdgeService::bind`] (the SIP listeners bound at once, so a port in
//! use fails the start) → [`EdgeService::serve`], the [`ServiceParts`] the
//! node runs: its gRPC API (`switchboard.edge.v1`, agents' SIP accounts
//! and tenants' trunks) behind service credentials, the consumer of identity's events that
//! keeps the edge's tables in step, and the listeners, closed at shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_config::{Config, EventsConfig};
use switchboard_edge_api::EdgeApi;
use switchboard_events::{Consumer, ConsumerOptions};
use switchboard_platform::Backends;
use switchboard_routing_api::acd::RoutingApi;
use switchboard_routing_api::calls::CallRoutingApi;
use switchboard_rpc::{Authenticated, ServiceKeys};
use switchboard_runtime::ServiceParts;
use tonic::service::Routes;

use crate::accounts::{Accounts, PROJECTION_BINDINGS, PROJECTION_CONSUMER_NAME};
use crate::api::LocalEdge;
use crate::calls::records::CallLog;
use crate::calls::{B2bua, CallOptions, MediaOptions};
use crate::limits::CallLimits;
use crate::registrar::{Bindings, Registrar, RegistrarOptions};
use crate::signaling::Signaling;
use crate::sip::digest::{Algorithm, Nonces};
use crate::sip::flood::SourceLimit;
use crate::sip::transport::{
    Connector, TlsConfigError, TlsListener, TransportOptions, Transports, tls_client_config,
    tls_server_config,
};
use crate::sip::{Endpoint, EndpointOptions};
use crate::trunks::registration::{RegistrationOptions, TrunkRegistrations};
use crate::trunks::{Trunks, TrunksOptions};
use switchboard_media::relay::{Relay, RelayOptions};

/// The name in `--services`.
pub const NAME: &str = "edge";

/// What the edge is built from.
pub struct EdgeServiceOptions {
    pub transports: TransportOptions,
    pub endpoint: EndpointOptions,
    /// The parent of every tenant's SIP domain.
    pub sip_domain: String,
    /// The keys sealing digest nonces (the first seals).
    pub digest_keys: Vec<Vec<u8>>,
    pub nonce_lifetime: Duration,
    pub registrar: RegistrarOptions,
    /// The projection consumer's retries.
    pub events: EventsConfig,
    /// The B2BUA's settings.
    pub calls: CallOptions,
    /// Where carriers and phones reach the UDP listener
    /// (`edge.sip_public_address`); `None` for its own address.
    pub public_address: Option<String>,
    /// How the edge checks carriers' TLS servers (`edge.trunk_ca_file`
    /// beside the system's roots).
    pub trunk_tls: Arc<rustls::ClientConfig>,
    /// How registrations with carriers are kept.
    pub registrations: RegistrationOptions,
    /// The media relay calls are anchored at, and the media timeout;
    /// `None` for none (`edge.media_relay = false`).
    pub media: Option<(RelayOptions, Duration)>,
}

/// The routing service as the edge calls it: inbound calls and the ACD.
#[derive(Clone)]
pub struct RoutingPeers {
    pub calls: Arc<dyn CallRoutingApi>,
    pub acd: Arc<dyn RoutingApi>,
}

impl EdgeServiceOptions {
    /// The `[edge]` and `[events]` settings, with the digest keys the node
    /// loaded (`edge.digest_keys`, or the generated one). Fails when the
    /// TLS certificate or key cannot be read or do not match.
    pub fn from_config(config: &Config, digest_keys: Vec<Vec<u8>>) -> Result<Self, TlsConfigError> {
        let edge = &config.edge;
        let tls = match (&edge.tls_certificate_file, &edge.tls_key_file) {
            (Some(certificates), Some(key)) if edge.sip_tls.is_some() || edge.sip_wss.is_some() => {
                Some(tls_server_config(certificates, key)?)
            }
            _ => None,
        };
        let listener = |address: Option<SocketAddr>| {
            address
                .zip(tls.clone())
                .map(|(address, config)| TlsListener { address, config })
        };
        Ok(Self {
            transports: TransportOptions {
                udp: edge.sip_udp,
                tcp: edge.sip_tcp,
                tls: listener(edge.sip_tls),
                ws: edge.sip_ws,
                wss: listener(edge.sip_wss),
                ..TransportOptions::default()
            },
            endpoint: EndpointOptions {
                per_source: (config.edge.per_source_burst > 0).then(|| SourceLimit {
                    burst: config.edge.per_source_burst,
                    per_second: config.edge.per_source_rate,
                    ..SourceLimit::default()
                }),
                ..EndpointOptions::default()
            },
            sip_domain: config.edge.sip_domain.clone(),
            digest_keys,
            nonce_lifetime: config.edge.nonce_lifetime,
            registrar: RegistrarOptions {
                algorithms: config
                    .edge
                    .digest_algorithms
                    .iter()
                    .filter_map(|name| Algorithm::from_name(name))
                    .collect(),
                ..RegistrarOptions::default()
            },
            events: config.events.clone(),
            calls: CallOptions {
                ring_timeout: config.edge.ring_timeout,
                trunk_response_timeout: config.edge.trunk_response_timeout,
                ..CallOptions::default()
            },
            public_address: config.edge.sip_public_address.clone(),
            trunk_tls: tls_client_config(config.edge.trunk_ca_file.as_deref())?,
            registrations: RegistrationOptions::default(),
            media: edge.media_relay.then_some((
                RelayOptions {
                    bind: edge.media_bind,
                    advertise: edge.media_public_address,
                    ports: edge.media_port_min..=edge.media_port_max,
                    workers: edge.media_workers,
                },
                edge.media_timeout,
            )),
        })
    }
}

/// The edge of a node.
pub struct EdgeService {
    accounts: Accounts,
    trunks: Trunks,
    registrations: TrunkRegistrations,
    service_keys: Arc<ServiceKeys>,
    backends: Backends,
    events: EventsConfig,
    transports: Mutex<Option<Transports>>,
    /// Every SIP listener: (transport, where).
    listening: Vec<(&'static str, SocketAddr)>,
    sip_domain: String,
}

impl EdgeService {
    /// Builds the edge on the node's backends and binds its SIP listeners;
    /// its gRPC API verifies callers with `service_keys`; calls go through
    /// `routing`.
    pub async fn bind(
        options: EdgeServiceOptions,
        backends: &Backends,
        service_keys: Arc<ServiceKeys>,
        routing: RoutingPeers,
    ) -> std::io::Result<Self> {
        let accounts = Accounts::new(backends.database.clone(), options.sip_domain.clone())
            .with_registrations(Bindings::new(backends.cache.clone()));
        let nonces = Nonces::with_keys(options.digest_keys, options.nonce_lifetime);
        let trunks = Trunks::new(
            backends.database.clone(),
            backends.cache.clone(),
            nonces.clone(),
            TrunksOptions {
                algorithms: options.registrar.algorithms.clone(),
                ..TrunksOptions::new(options.sip_domain.clone())
            },
        );
        let registrar = Arc::new(Registrar::new(
            Arc::new(accounts.clone()),
            backends.cache.clone(),
            nonces.clone(),
            options.registrar,
        ));
        let calls = B2bua::new(
            routing.calls,
            routing.acd,
            Bindings::new(backends.cache.clone()),
            Arc::new(trunks.clone()),
            CallLog::new(backends.database.clone()),
            options.calls,
        )
        .with_limits(CallLimits::new(
            Arc::new(accounts.clone()),
            backends.cache.clone(),
        ))
        .with_outbound(registrar.clone(), Arc::new(trunks.clone()));
        let endpoint = Endpoint::new(
            options.endpoint,
            Arc::new(Signaling::new(registrar, Some(calls.clone()))),
        );
        let transports = Transports::bind(endpoint.clone(), &options.transports).await?;
        let connector = Connector::new(
            endpoint.clone(),
            options.trunk_tls,
            options.transports.idle_timeout,
        );
        calls.attach_connector(connector.clone());
        if let Some((relay, timeout)) = options.media {
            let relay = Relay::start(relay).map_err(|error| {
                std::io::Error::other(format!("the media relay did not start: {error}"))
            })?;
            calls.attach_media(MediaOptions { relay, timeout });
        }
        let registrations = TrunkRegistrations::new(
            backends.database.clone(),
            backends.cache.clone(),
            options.registrations,
        )
        .with_lines(nonces.clone());
        let sent_by = options
            .public_address
            .or_else(|| transports.udp().map(|udp| udp.to_string()));
        match sent_by {
            Some(sent_by) => {
                registrations.start(endpoint.clone(), sent_by.clone(), connector);
                calls.attach(endpoint, sent_by);
            }
            None => tracing::warn!(
                "the edge has no UDP listener: calls are answered 503, and trunks not registered, until edge.sip_udp is set"
            ),
        }
        Ok(Self {
            accounts,
            trunks,
            registrations,
            service_keys,
            backends: backends.clone(),
            events: options.events,
            listening: [
                ("udp", transports.udp()),
                ("tcp", transports.tcp()),
                ("tls", transports.tls()),
                ("ws", transports.ws()),
                ("wss", transports.wss()),
            ]
            .into_iter()
            .filter_map(|(transport, address)| address.map(|address| (transport, address)))
            .collect(),
            transports: Mutex::new(Some(transports)),
            sip_domain: options.sip_domain,
        })
    }

    /// The SIP accounts, in process (the demo seed).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The carriers' admission by trunk ([`Trunks::admit`]), for the B2BUA.
    pub fn trunks(&self) -> &Trunks {
        &self.trunks
    }

    /// The API in process, for the node's other services.
    pub fn api(&self) -> Arc<dyn EdgeApi> {
        Arc::new(
            LocalEdge::new(self.accounts.clone(), self.trunks.store())
                .with_registrations(self.registrations.clone()),
        )
    }

    /// Where SIP over UDP is served, if it is.
    pub fn sip_udp(&self) -> Option<SocketAddr> {
        self.listener("udp")
    }

    /// Where SIP is served over `transport` (`udp`, `tcp`, `tls`, `ws`,
    /// `wss`), if it is.
    pub fn listener(&self, transport: &str) -> Option<SocketAddr> {
        self.listening
            .iter()
            .find(|(name, _)| *name == transport)
            .map(|(_, address)| *address)
    }

    /// Every SIP listener: (transport, where).
    pub fn listening(&self) -> &[(&'static str, SocketAddr)] {
        &self.listening
    }

    /// The parent of tenants' SIP domains.
    pub fn sip_domain(&self) -> &str {
        &self.sip_domain
    }

    /// What the node runs: the consumer of identity's events, and the SIP
    /// listeners until shutdown. Call once.
    pub fn serve(&self) -> ServiceParts {
        let consumer = Consumer::new(
            self.backends.database.clone(),
            self.backends.bus.clone(),
            ConsumerOptions::new(
                PROJECTION_CONSUMER_NAME,
                PROJECTION_BINDINGS.iter().copied(),
            )
            .with_config(&self.events),
            self.accounts.identity_projection(),
        );
        let transports = self
            .transports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let server = Authenticated::new(crate::api::server(self.api()), self.service_keys.clone());
        ServiceParts {
            name: NAME,
            grpc_service_names: vec![crate::api::SERVICE_NAME],
            grpc: Some(Box::new(move |routes: Routes| routes.add_service(server))),
            http: None,
            workers: vec![
                Box::new(move |stop| consumer.spawn(stop)),
                Box::new(move |stop| {
                    tokio::spawn(async move {
                        stop.cancelled().await;
                        if let Some(transports) = transports {
                            transports.shutdown().await;
                        }
                    })
                }),
            ],
            draining: None,
        }
    }
}
