//! The typed configuration of Switchboard.
//!
//! One struct, [`Config`], layered with figment: built-in defaults, then a TOML
//! file (`switchboard.toml` in the working directory, or the file named on the
//! command line), then `SWITCHBOARD_*` environment variables, where `__`
//! separates sections (`SWITCHBOARD_CACHE__BACKEND=redis`,
//! `SWITCHBOARD_CACHE__REDIS__URL=redis://…`). Every secret can also come from
//! a file named by the key with a `_file` suffix (`url_file`,
//! `secret_access_key_file`), as container secrets are mounted.
//!
//! Unknown keys and bad values are errors naming the key; the defaults run
//! everything on embedded backends under `data_dir`.

mod secret;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
pub use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use secret::{Secret, SecretUrl};

/// The file read when no config file is named.
pub const DEFAULT_CONFIG_FILE: &str = "switchboard.toml";
/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "SWITCHBOARD_";
/// The environment variable that names the config file (read by the CLI).
pub const CONFIG_FILE_ENV: &str = "SWITCHBOARD_CONFIG";

/// Everything a Switchboard process can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where embedded backends keep their files (SQLite, objects).
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    pub bus: BusConfig,
    pub objects: ObjectsConfig,
    pub telemetry: TelemetryConfig,
    pub readiness: ReadinessConfig,
    pub auth: AuthConfig,
    pub gateway: GatewayConfig,
    pub events: EventsConfig,
    pub webhooks: WebhooksConfig,
    pub internal: InternalConfig,
    pub peers: PeersConfig,
    pub routing: RoutingConfig,
    pub edge: EdgeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            cache: CacheConfig::default(),
            bus: BusConfig::default(),
            objects: ObjectsConfig::default(),
            telemetry: TelemetryConfig::default(),
            readiness: ReadinessConfig::default(),
            auth: AuthConfig::default(),
            gateway: GatewayConfig::default(),
            events: EventsConfig::default(),
            webhooks: WebhooksConfig::default(),
            internal: InternalConfig::default(),
            peers: PeersConfig::default(),
            routing: RoutingConfig::default(),
            edge: EdgeConfig::default(),
        }
    }
}

/// Listening addresses and request handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// REST, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// gRPC (with health and reflection).
    pub grpc_addr: SocketAddr,
    /// Prometheus `/metrics`, on a listener of its own so that the API's
    /// public port never shows it: expose it to the scraper only.
    pub metrics_addr: SocketAddr,
    /// The URL clients reach the HTTP server at, used in links we hand out
    /// (presigned object URLs of the local object store). Defaults to
    /// `http://<http_addr>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// How long in-flight requests may run after a shutdown signal.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            public_url: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The relational store: `postgres://…` or `sqlite://…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL; defaults to `sqlite://<data_dir>/switchboard.db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretUrl>,
    /// A file holding the connection URL (instead of `url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// The URL `switchboard migrate` uses: the tables' owner. Services
    /// connect with `url`, as a role that is a member of `switchboard_app`
    /// and owns nothing (so row-level security applies). Defaults to `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate_url: Option<SecretUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate_url_file: Option<PathBuf>,
    /// PostgreSQL: the URL of the workers that serve every tenant (events
    /// relay and retention sweep, webhook dispatcher, the edge's number
    /// lookup), as a role that is a member of `switchboard_system` and owns
    /// nothing. Defaults to `url`, which is enough for nodes that host none
    /// of `events`, `webhooks`, `routing` (and for SQLite, which has no
    /// roles); `serve` refuses a `url` role that is a member of
    /// `switchboard_system`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_url: Option<SecretUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_url_file: Option<PathBuf>,
    /// Let `serve` start (with a loud warning) when a PostgreSQL role it
    /// logs in as is a superuser, has BYPASSRLS, owns the tables, or is
    /// the services' role and a member of `switchboard_system`.
    pub allow_privileged_role: bool,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            migrate_url: None,
            migrate_url_file: None,
            system_url: None,
            system_url_file: None,
            allow_privileged_role: false,
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Which implementation backs the key-value cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    #[default]
    Memory,
    Redis,
}

/// The key-value cache (TTLs, counters, leases, rate limits).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub backend: CacheBackend,
    pub redis: RedisConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: SecretUrl,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// Prepended to every key, before the tenant prefix.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("redis://127.0.0.1:6379"),
            url_file: None,
            key_prefix: "sb".into(),
        }
    }
}

/// Which implementation carries events between services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    #[default]
    Memory,
    Rabbitmq,
}

/// The message bus.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    pub backend: BusBackend,
    pub rabbitmq: RabbitMqConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RabbitMqConfig {
    pub url: SecretUrl,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// The durable topic exchange events are published to; consumers'
    /// queues are named after it (`<exchange>.<consumer>`), so each
    /// installation on a vhost needs its own.
    pub exchange: String,
    /// Unacknowledged deliveries a consumer may hold at once.
    pub prefetch: u16,
}

impl Default for RabbitMqConfig {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            url_file: None,
            exchange: "switchboard.events".into(),
            prefetch: 64,
        }
    }
}

/// Which implementation stores objects (recordings, attachments, prompts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectsBackend {
    #[default]
    Local,
    S3,
}

/// The object store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    pub backend: ObjectsBackend,
    pub local: LocalObjectsConfig,
    pub s3: S3Config,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalObjectsConfig {
    /// Defaults to `<data_dir>/objects`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Key that signs presigned URLs; when unset, one is generated and kept
    /// in `<dir>/.presign-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presign_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presign_secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint of an S3-compatible store; unset means AWS itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<PathBuf>,
    /// `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`.
    pub force_path_style: bool,
    /// Create the bucket at start when it does not exist.
    pub create_bucket: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            access_key_id: String::new(),
            secret_access_key: None,
            secret_access_key_file: None,
            force_path_style: true,
            create_bucket: false,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default: for machines).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Logs, traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// A `tracing` filter (`info`, `switchboard=debug,sqlx=warn`, …);
    /// `RUST_LOG` overrides it.
    pub log_level: String,
    /// OTLP/gRPC collector endpoint (`http://127.0.0.1:4317`); traces are
    /// exported only when this is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported traces.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            log_level: "info".into(),
            otlp_endpoint: None,
            service_name: "switchboard".into(),
        }
    }
}

/// How often and how patiently `/readyz` asks the backends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadinessConfig {
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(2),
            check_timeout: Duration::from_secs(1),
        }
    }
}

/// One key that signs access tokens (HS256), by id, read from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// The key id put in each token's header (`kid`).
    pub kid: String,
    /// A file holding the secret: at least 32 bytes.
    pub secret_file: PathBuf,
}

/// Credentials: access-token keys and lifetimes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The first key signs; all verify (add a new key first to rotate,
    /// drop the old one once its tokens have expired). When empty, a key
    /// is generated once and kept in `<data_dir>/auth/`: fine for one node,
    /// not for several.
    pub signing_keys: Vec<SigningKeyConfig>,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub invitation_ttl: Duration,
    pub login_throttle: LoginThrottleConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            signing_keys: Vec::new(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            login_throttle: LoginThrottleConfig::default(),
        }
    }
}

/// How the services of a deployment trust each other: the internal keys
/// that sign the service credential every internal gRPC call carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InternalConfig {
    /// The first key signs; all verify. To rotate without downtime, add
    /// the new key second on every node, then move it first, then (a
    /// minute later) remove the old one. When empty, a key is generated
    /// once and kept in `<data_dir>/internal/`: fine for the nodes of one
    /// machine sharing a data directory, not for several machines.
    pub signing_keys: Vec<SigningKeyConfig>,
    /// Serve gRPC server reflection (`grpc.reflection.v1`) so tools like
    /// grpcurl can list the services. Off unless set.
    pub grpc_reflection: bool,
}

/// Where the services this node calls but does not host are, as gRPC
/// addresses (`http://identity:9090`; several replicas separated by
/// commas are balanced). A service hosted on this node is always called in
/// process; one hosted nowhere it can reach is an error at start naming
/// the missing peer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeersConfig {
    pub identity: Option<String>,
    pub routing: Option<String>,
    pub webhooks: Option<String>,
    pub edge: Option<String>,
}

impl PeersConfig {
    /// The configured address of `service`, if any.
    pub fn address(&self, service: &str) -> Option<&str> {
        match service {
            "identity" => self.identity.as_deref(),
            "routing" => self.routing.as_deref(),
            "webhooks" => self.webhooks.as_deref(),
            "edge" => self.edge.as_deref(),
            _ => None,
        }
    }
}

/// Login attempts allowed per window (OWASP Authentication Cheat Sheet:
/// a threshold, an observation window, a bounded lockout). Every attempt
/// counts, before the password is checked; a success gives its back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginThrottleConfig {
    /// Attempts at one account from one client address.
    pub per_account_address: u32,
    /// Attempts at one account from all addresses together (bounds
    /// distributed guessing; keep it well above `per_account_address`, as
    /// anyone can use it up until the window ends).
    pub per_account: u32,
    /// Attempts from one client address at any accounts.
    pub per_address: u32,
    /// How long attempts are counted from the first; the longest refusal.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            per_account_address: 5,
            per_account: 50,
            per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The public REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Largest request body, in bytes (413 above).
    pub body_limit_bytes: usize,
    /// Signups allowed per client address and hour.
    pub signups_per_hour: u32,
    /// Return the email-verification token in the signup response (no
    /// email goes out yet). `switchboard dev` turns it on.
    pub expose_verification_token: bool,
    /// How often an open WebSocket stream checks its credential again (a
    /// stream also closes when its credential expires).
    #[serde(with = "humantime_serde")]
    pub stream_recheck_every: Duration,
    /// Reverse proxies (CIDR blocks, `10.0.0.0/8`, `192.0.2.7/32`) whose
    /// `X-Forwarded-For` is believed: the client address is the right-most
    /// address in it that is not one of them. From any other peer the
    /// header is ignored. Empty (the default): the peer is the client.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            signups_per_hour: 10,
            expose_verification_token: false,
            stream_recheck_every: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The event backbone: the outbox relay, consumers, the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How long published events stay in the event log (for replay).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often an idle relay looks for new outbox rows.
    #[serde(with = "humantime_serde")]
    pub relay_poll_interval: Duration,
    /// Outbox rows one relay publishes per round.
    pub relay_batch_size: u32,
    /// How long a relay holds a partition without renewing its lease.
    #[serde(with = "humantime_serde")]
    pub relay_lease_ttl: Duration,
    /// Events a relay packs into one bus message at most (a tenant's
    /// consecutive events of one routing key; 1 sends every event alone;
    /// at most 65,535).
    pub relay_pack_events: u32,
    /// Bytes of one packed bus message at most.
    pub relay_pack_bytes: u32,
    /// Attempts a consumer makes at one event before dead-lettering it.
    pub consumer_max_attempts: u32,
    /// Delay before a failed event is offered to its consumer again.
    #[serde(with = "humantime_serde")]
    pub consumer_retry_delay: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(30 * 24 * 3600),
            relay_poll_interval: Duration::from_millis(50),
            relay_batch_size: 500,
            relay_lease_ttl: Duration::from_secs(15),
            relay_pack_events: 64,
            relay_pack_bytes: 256 * 1024,
            consumer_max_attempts: 5,
            consumer_retry_delay: Duration::from_secs(10),
        }
    }
}

/// Outgoing webhooks to tenants' endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Accept endpoints that resolve to loopback, private, link-local or
    /// other non-public addresses (tests and closed networks only).
    pub allow_private_targets: bool,
    /// Accept `http://` endpoints besides `https://` (tests only).
    pub allow_http: bool,
    /// Time limit of one delivery attempt (connect, send, answer).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Delay before the first retry; doubled after each failure.
    #[serde(with = "humantime_serde")]
    pub retry_initial_delay: Duration,
    /// Longest delay between two attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// A delivery still failing this long after its first attempt is given
    /// up, and its endpoint disabled.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// How often the dispatcher looks for deliveries that are due.
    #[serde(with = "humantime_serde")]
    pub dispatch_interval: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            allow_http: false,
            request_timeout: Duration::from_secs(10),
            retry_initial_delay: Duration::from_secs(30),
            retry_max_delay: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            dispatch_interval: Duration::from_secs(1),
        }
    }
}

/// Shortest `routing.lease_ttl`: below it, a lease would expire between
/// two of its renewals on a loaded node.
pub const ROUTING_MIN_LEASE_TTL: Duration = Duration::from_secs(1);
/// Longest `routing.lease_ttl`: a dead instance's tenants wait this long
/// for a successor, with their calls unanswered.
pub const ROUTING_MAX_LEASE_TTL: Duration = Duration::from_secs(600);
/// Shortest `routing.upkeep_every`: more often only spins.
pub const ROUTING_MIN_UPKEEP_EVERY: Duration = Duration::from_millis(10);
/// Longest `routing.forward_timeout`: a call is sent to the owner up to
/// four times, and the owner remembers what it ran for others for two
/// minutes, so the attempts of one call must fit well within that.
pub const ROUTING_MAX_FORWARD_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest `routing.journal_batch`: a batch is one INSERT of 8 parameters
/// per event, and SQLite takes at most 32,766 parameters per statement.
pub const ROUTING_MAX_JOURNAL_BATCH: u32 = 4000;

/// The telephony edge: where it listens for SIP, and the SIP domains of
/// tenants (`<slug>.<sip_domain>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// SIP over UDP (RFC 3261 §18); unset for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_udp: Option<SocketAddr>,
    /// SIP over TCP; unset for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_tcp: Option<SocketAddr>,
    /// SIP over TLS (RFC 3261 §26.2, `sips:`), usually port 5061; needs
    /// `tls_certificate_file` and `tls_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_tls: Option<SocketAddr>,
    /// SIP over WebSocket (RFC 7118), for browser phones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_ws: Option<SocketAddr>,
    /// SIP over secure WebSocket; needs the TLS files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_wss: Option<SocketAddr>,
    /// The PEM certificate chain (leaf first) of the TLS and WSS listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_certificate_file: Option<PathBuf>,
    /// Its PEM private key (PKCS #8, PKCS #1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM certificates trusted, beside the system's roots, when the edge
    /// connects to a carrier's trunk over TLS (a carrier's private CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trunk_ca_file: Option<PathBuf>,
    /// The parent of every tenant's SIP domain: tenant `acme` registers
    /// its phones at `acme.<sip_domain>`.
    pub sip_domain: String,
    /// The keys that seal digest nonces, shared by every edge replica (the
    /// first seals; all check). When empty, a key is generated once and
    /// kept in `<data_dir>/edge/`, as for `[internal] signing_keys`.
    pub digest_keys: Vec<SigningKeyConfig>,
    /// How long a digest nonce may be used (RFC 7616 §3.3: then `stale`).
    #[serde(with = "humantime_serde")]
    pub nonce_lifetime: Duration,
    /// The digest algorithms challenged with, most preferred first (RFC
    /// 8760): `SHA-256` and `MD5`. Phones that answer only the first
    /// challenge and know only MD5 (SIPp 3.6, older desk phones) need
    /// `["MD5", "SHA-256"]`.
    pub digest_algorithms: Vec<String>,
    /// Requests one source address may send at once, against floods and
    /// scanners (past it they are dropped unanswered); 0 for no limit.
    pub per_source_burst: u32,
    /// Requests per second one source address may send over time.
    pub per_source_rate: f64,
    /// Where carriers and phones reach the UDP listener (`host:port`), as
    /// the edge writes it in Via and Contact of the calls it places; unset
    /// for the listener's own address (which must then not be 0.0.0.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_public_address: Option<String>,
    /// How long a flow's `ring_agent` step rings the agent's phones before
    /// the caller hears 480 (queues use their own ring timeout).
    #[serde(with = "humantime_serde")]
    pub ring_timeout: Duration,
    /// How long a carrier's server may leave an outbound call's INVITE
    /// without any answer (not even 100 Trying) before the edge tries the
    /// trunk's next server, or the next trunk, rather than wait for the
    /// transaction's own 32 s timeout (RFC 3261 Timer B).
    #[serde(with = "humantime_serde")]
    pub trunk_response_timeout: Duration,
    /// Whether calls' media goes through the edge's relay; `false` lets
    /// session descriptions pass between the legs unchanged (the phones'
    /// media then goes end to end, and nothing of it is the edge's).
    pub media_relay: bool,
    /// The address the media relay binds its RTP and RTCP ports to.
    pub media_bind: IpAddr,
    /// The address written into session descriptions, where callers and
    /// phones send media (behind 1:1 NAT); unset for `media_bind` (which
    /// must then not be 0.0.0.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_public_address: Option<IpAddr>,
    /// The first and last port of the range calls' media takes (two per
    /// side of a call: RTP on the even port, RTCP on the one above).
    pub media_port_min: u16,
    pub media_port_max: u16,
    /// The relay's worker threads; 0 for one per core.
    pub media_workers: usize,
    /// A connected call whose caller or callee sends no RTP or RTCP for
    /// this long is hung up (a phone that lost power, a carrier that
    /// dropped the call without a BYE).
    #[serde(with = "humantime_serde")]
    pub media_timeout: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            sip_udp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            sip_tcp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            sip_tls: None,
            sip_ws: None,
            sip_wss: None,
            tls_certificate_file: None,
            tls_key_file: None,
            trunk_ca_file: None,
            sip_domain: "sip.localhost".to_owned(),
            digest_keys: Vec::new(),
            nonce_lifetime: Duration::from_secs(300),
            digest_algorithms: vec!["SHA-256".to_owned(), "MD5".to_owned()],
            per_source_burst: 100,
            per_source_rate: 50.0,
            sip_public_address: None,
            ring_timeout: Duration::from_secs(30),
            trunk_response_timeout: Duration::from_secs(5),
            media_relay: true,
            media_bind: IpAddr::from([127, 0, 0, 1]),
            media_public_address: None,
            media_port_min: 20000,
            media_port_max: 29999,
            media_workers: 0,
            media_timeout: Duration::from_secs(60),
        }
    }
}

impl EdgeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let domain = &self.sip_domain;
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if domain.len() > 200
            || !domain.split('.').all(label_ok)
            || domain.to_ascii_lowercase() != *domain
        {
            return Err(value_error(
                "edge.sip_domain",
                "must be a lowercase DNS name (labels of letters, digits and hyphens)",
            ));
        }
        if self.nonce_lifetime < Duration::from_secs(10)
            || self.nonce_lifetime > Duration::from_secs(3600)
        {
            return Err(value_error("edge.nonce_lifetime", "must be 10s to 1h"));
        }
        if self.sip_public_address.is_none()
            && self.sip_udp.is_some_and(|udp| udp.ip().is_unspecified())
        {
            return Err(value_error(
                "edge.sip_public_address",
                "is needed when edge.sip_udp listens on every address (0.0.0.0 or [::]): \
                 calls write where the edge is reached into their Via and Contact",
            ));
        }
        if let Some(public) = &self.sip_public_address
            && (public.is_empty() || public.contains(|c: char| c.is_whitespace() || c == ';'))
        {
            return Err(value_error(
                "edge.sip_public_address",
                "must be host:port (a name or an address, no spaces or parameters)",
            ));
        }
        if self.ring_timeout < Duration::from_secs(5)
            || self.ring_timeout > Duration::from_secs(300)
        {
            return Err(value_error("edge.ring_timeout", "must be 5s to 5m"));
        }
        if self.media_port_min < 1024 || self.media_port_max < self.media_port_min.saturating_add(3)
        {
            return Err(value_error(
                "edge.media_port_min",
                "and edge.media_port_max must span at least two port pairs above 1023",
            ));
        }
        if self.media_relay
            && self.media_public_address.is_none()
            && self.media_bind.is_unspecified()
        {
            return Err(value_error(
                "edge.media_public_address",
                "is needed when edge.media_bind is every address (0.0.0.0 or ::): \
                 session descriptions tell callers where to send media",
            ));
        }
        if self.media_timeout < Duration::from_secs(5)
            || self.media_timeout > Duration::from_secs(3600)
        {
            return Err(value_error("edge.media_timeout", "must be 5s to 1h"));
        }
        if self.trunk_response_timeout < Duration::from_millis(500)
            || self.trunk_response_timeout > Duration::from_secs(32)
        {
            return Err(value_error(
                "edge.trunk_response_timeout",
                "must be 500ms to 32s (past 32s the INVITE has timed out anyway)",
            ));
        }
        if (self.sip_tls.is_some() || self.sip_wss.is_some())
            && (self.tls_certificate_file.is_none() || self.tls_key_file.is_none())
        {
            return Err(value_error(
                "edge.tls_certificate_file",
                "and edge.tls_key_file are needed for edge.sip_tls and edge.sip_wss",
            ));
        }
        if self.per_source_burst > 0
            && !(self.per_source_rate > 0.0 && self.per_source_rate.is_finite())
        {
            return Err(value_error(
                "edge.per_source_rate",
                "must be above 0 while edge.per_source_burst is (set the burst to 0 for no limit)",
            ));
        }
        let algorithms = &self.digest_algorithms;
        let known = algorithms
            .iter()
            .all(|name| name == "SHA-256" || name == "MD5");
        let distinct = algorithms.len() < 2 || algorithms[0] != algorithms[1];
        if algorithms.is_empty() || algorithms.len() > 2 || !known || !distinct {
            return Err(value_error(
                "edge.digest_algorithms",
                "must list \"SHA-256\" and/or \"MD5\", each once, most preferred first",
            ));
        }
        Ok(())
    }
}

/// The routing runtime (the ACD): one owner per tenant behind a lease in
/// the cache, ticks of ring timeouts and wrap-ups, calls forwarded between
/// instances, events moved to the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// How long a tenant's lease lasts unless renewed: how long a tenant
    /// waits for a successor when its owner dies (1s to 10m).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often due deadlines are ticked: the resolution of ring timeouts
    /// and wrap-ups. Leases are renewed, and free tenants taken over, on
    /// these beats every quarter of `lease_ttl` (or this, if longer), so
    /// it is at most a third of `lease_ttl`.
    #[serde(with = "humantime_serde")]
    pub upkeep_every: Duration,
    /// How long a call forwarded to the tenant's owner waits for its
    /// answer before it is asked again (at most 20s).
    #[serde(with = "humantime_serde")]
    pub forward_timeout: Duration,
    /// Routing events moved to the outbox per transaction (1 to 4000).
    pub journal_batch: u32,
    /// Names this instance in logs (a pod name, say); a random
    /// `routing-<uuid>` when unset. Leases do not depend on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(10),
            upkeep_every: Duration::from_millis(200),
            forward_timeout: Duration::from_secs(2),
            journal_batch: 500,
            instance_name: None,
        }
    }
}

impl RoutingConfig {
    /// Checks the ranges and the relation of the upkeep to the lease.
    fn validate(&self) -> Result<(), ConfigError> {
        let show = |duration: Duration| humantime::format_duration(duration).to_string();
        if self.lease_ttl < ROUTING_MIN_LEASE_TTL || self.lease_ttl > ROUTING_MAX_LEASE_TTL {
            return Err(value_error(
                "routing.lease_ttl",
                &format!(
                    "is {}; it must be {} to {}: a dead instance's tenants wait this long for a successor",
                    show(self.lease_ttl),
                    show(ROUTING_MIN_LEASE_TTL),
                    show(ROUTING_MAX_LEASE_TTL)
                ),
            ));
        }
        if self.upkeep_every < ROUTING_MIN_UPKEEP_EVERY {
            return Err(value_error(
                "routing.upkeep_every",
                &format!(
                    "is {}; it must be at least {}",
                    show(self.upkeep_every),
                    show(ROUTING_MIN_UPKEEP_EVERY)
                ),
            ));
        }
        if self.upkeep_every > self.lease_ttl / 3 {
            return Err(value_error(
                "routing.upkeep_every",
                &format!(
                    "is {}, longer than a third of routing.lease_ttl ({}): leases are renewed on the upkeep's beats, between a third and two thirds of their time, and would expire",
                    show(self.upkeep_every),
                    show(self.lease_ttl)
                ),
            ));
        }
        if self.forward_timeout.is_zero() || self.forward_timeout > ROUTING_MAX_FORWARD_TIMEOUT {
            return Err(value_error(
                "routing.forward_timeout",
                &format!(
                    "is {}; it must be above 0 and at most {}: a call is asked up to 4 times and its owner remembers what it ran for 2 minutes",
                    show(self.forward_timeout),
                    show(ROUTING_MAX_FORWARD_TIMEOUT)
                ),
            ));
        }
        if self.journal_batch == 0 || self.journal_batch > ROUTING_MAX_JOURNAL_BATCH {
            return Err(value_error(
                "routing.journal_batch",
                &format!(
                    "is {}; it must be 1 to {ROUTING_MAX_JOURNAL_BATCH} (one INSERT of 8 parameters per event)",
                    self.journal_batch
                ),
            ));
        }
        if let Some(name) = &self.instance_name
            && (name.trim().is_empty() || name.chars().count() > 100)
        {
            return Err(value_error(
                "routing.instance_name",
                "must be 1 to 100 characters, not only spaces (or unset)",
            ));
        }
        Ok(())
    }
}

/// Why a configuration could not be loaded. Each message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} does not exist")]
    FileMissing { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
    #[error("config key `{key}`: cannot read {path}: {source}")]
    SecretFile {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config key `{key}`: {message}")]
    Value { key: String, message: String },
}

impl Config {
    /// Loads defaults, then `file` (or `switchboard.toml` if present), then
    /// the environment; reads `*_file` secrets and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // Defaults come from `#[serde(default)]`, not from a serialized
        // provider: serialization masks secrets.
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::FileMissing {
                        path: path.to_owned(),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).is_file() {
                    figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
                }
            }
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(&["config"]).split("__"));
        Self::from_figment(figment)
    }

    /// Parses a TOML document on top of the defaults (no file, no
    /// environment): for tests and `config check` of inline text.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let figment = Figment::new().merge(Toml::string(text));
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment.extract().map_err(describe_figment_error)?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    /// Replaces each `*_file` setting by the content of its file.
    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.database.url_file {
            self.database.url = Some(SecretUrl::new(read_secret("database.url_file", path)?));
        }
        if let Some(path) = &self.database.migrate_url_file {
            self.database.migrate_url = Some(SecretUrl::new(read_secret(
                "database.migrate_url_file",
                path,
            )?));
        }
        if let Some(path) = &self.database.system_url_file {
            self.database.system_url = Some(SecretUrl::new(read_secret(
                "database.system_url_file",
                path,
            )?));
        }
        if let Some(path) = &self.cache.redis.url_file {
            self.cache.redis.url = SecretUrl::new(read_secret("cache.redis.url_file", path)?);
        }
        if let Some(path) = &self.bus.rabbitmq.url_file {
            self.bus.rabbitmq.url = SecretUrl::new(read_secret("bus.rabbitmq.url_file", path)?);
        }
        if let Some(path) = &self.objects.s3.secret_access_key_file {
            self.objects.s3.secret_access_key = Some(Secret::new(read_secret(
                "objects.s3.secret_access_key_file",
                path,
            )?));
        }
        if let Some(path) = &self.objects.local.presign_secret_file {
            self.objects.local.presign_secret = Some(Secret::new(read_secret(
                "objects.local.presign_secret_file",
                path,
            )?));
        }
        Ok(())
    }

    /// Checks what types alone cannot: URL schemes, required keys of the
    /// chosen backends, sane limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url();
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:"))
        {
            return Err(value_error(
                "database.url",
                "must start with postgres://, postgresql:// or sqlite:",
            ));
        }
        if let Some(system_url) = &self.database.system_url {
            let postgres =
                |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
            if !postgres(system_url.expose()) || !postgres(&url) {
                return Err(value_error(
                    "database.system_url",
                    "is for PostgreSQL: it must start with postgres:// or postgresql://, as database.url does",
                ));
            }
        }
        if self.database.max_connections == 0 {
            return Err(value_error(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.cache.backend == CacheBackend::Redis {
            let redis_url = self.cache.redis.url.expose();
            if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
                return Err(value_error(
                    "cache.redis.url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        if self.bus.backend == BusBackend::Rabbitmq {
            let amqp_url = self.bus.rabbitmq.url.expose();
            if !(amqp_url.starts_with("amqp://") || amqp_url.starts_with("amqps://")) {
                return Err(value_error(
                    "bus.rabbitmq.url",
                    "must start with amqp:// or amqps://",
                ));
            }
            if self.bus.rabbitmq.exchange.is_empty() {
                return Err(value_error("bus.rabbitmq.exchange", "must not be empty"));
            }
            if self.bus.rabbitmq.prefetch == 0 {
                return Err(value_error("bus.rabbitmq.prefetch", "must be at least 1"));
            }
        }
        if self.objects.backend == ObjectsBackend::S3 {
            let s3 = &self.objects.s3;
            if s3.bucket.is_empty() {
                return Err(value_error(
                    "objects.s3.bucket",
                    "is required when objects.backend = \"s3\"",
                ));
            }
            if s3.access_key_id.is_empty() {
                return Err(value_error(
                    "objects.s3.access_key_id",
                    "is required when objects.backend = \"s3\"",
                ));
            }
            if s3.secret_access_key.is_none() {
                return Err(value_error(
                    "objects.s3.secret_access_key",
                    "is required when objects.backend = \"s3\" (or secret_access_key_file)",
                ));
            }
            if let Some(endpoint) = &s3.endpoint
                && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            {
                return Err(value_error(
                    "objects.s3.endpoint",
                    "must start with http:// or https://",
                ));
            }
        }
        if let Some(public_url) = &self.server.public_url
            && !(public_url.starts_with("http://") || public_url.starts_with("https://"))
        {
            return Err(value_error(
                "server.public_url",
                "must start with http:// or https://",
            ));
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(value_error(
                "telemetry.otlp_endpoint",
                "must start with http:// or https://",
            ));
        }
        for (index, key) in self.auth.signing_keys.iter().enumerate() {
            if key.kid.is_empty() {
                return Err(value_error(
                    &format!("auth.signing_keys[{index}].kid"),
                    "must not be empty",
                ));
            }
        }
        for (index, key) in self.internal.signing_keys.iter().enumerate() {
            if key.kid.is_empty() {
                return Err(value_error(
                    &format!("internal.signing_keys[{index}].kid"),
                    "must not be empty",
                ));
            }
        }
        for (name, address) in [
            ("peers.identity", &self.peers.identity),
            ("peers.routing", &self.peers.routing),
            ("peers.webhooks", &self.peers.webhooks),
        ] {
            if let Some(addresses) = address
                && addresses.split(',').map(str::trim).any(|address| {
                    !(address.starts_with("http://") || address.starts_with("https://"))
                })
            {
                return Err(value_error(
                    name,
                    "must be gRPC addresses starting with http:// or https://, separated by commas (http://identity:9090)",
                ));
            }
        }
        if self.auth.access_token_ttl.is_zero() || self.auth.refresh_token_ttl.is_zero() {
            return Err(value_error(
                "auth.access_token_ttl",
                "token lifetimes must be above 0",
            ));
        }
        let throttle = &self.auth.login_throttle;
        for (key, value) in [
            (
                "auth.login_throttle.per_account_address",
                throttle.per_account_address,
            ),
            ("auth.login_throttle.per_account", throttle.per_account),
            ("auth.login_throttle.per_address", throttle.per_address),
        ] {
            if value == 0 {
                return Err(value_error(key, "must be at least 1"));
            }
        }
        if throttle.window.is_zero() {
            return Err(value_error("auth.login_throttle.window", "must be above 0"));
        }
        if self.gateway.body_limit_bytes < 1024 {
            return Err(value_error(
                "gateway.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        if self.gateway.signups_per_hour == 0 {
            return Err(value_error(
                "gateway.signups_per_hour",
                "must be at least 1",
            ));
        }
        if self.readiness.check_interval.is_zero() {
            return Err(value_error("readiness.check_interval", "must be above 0"));
        }
        if self.readiness.check_timeout.is_zero() {
            return Err(value_error("readiness.check_timeout", "must be above 0"));
        }
        self.routing.validate()?;
        self.edge.validate()?;
        Ok(())
    }

    /// The database URL in force: the configured one, or the SQLite file
    /// under `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("switchboard.db").display()
            ),
        }
    }

    /// The URL migrations run with: `database.migrate_url`, else the
    /// service URL.
    pub fn migrate_database_url(&self) -> String {
        match &self.database.migrate_url {
            Some(url) => url.expose().to_owned(),
            None => self.database_url(),
        }
    }

    /// The URL of the system workers' pool, when it differs from the
    /// services' (`database.system_url`).
    pub fn system_database_url(&self) -> Option<String> {
        self.database
            .system_url
            .as_ref()
            .map(|url| url.expose().to_owned())
    }

    /// The directory of the local object store in force.
    pub fn local_objects_dir(&self) -> PathBuf {
        self.objects
            .local
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("objects"))
    }

    /// The URL clients reach the HTTP server at.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.http_addr),
        }
    }

    /// The configuration as TOML with every secret masked, for
    /// `switchboard config check` and start-up logs.
    pub fn to_masked_toml(&self) -> String {
        // Serialization of our own plain struct cannot fail; fall back to the
        // debug form (which masks secrets too) rather than panic.
        toml::to_string_pretty(self).unwrap_or_else(|_| format!("{self:#?}"))
    }

    /// This configuration switched to the embedded backends (`switchboard
    /// dev`): SQLite under `data_dir`, in-process cache and bus, local
    /// objects, verification tokens in responses, webhooks to local `http://`
    /// receivers. Other settings are kept.
    pub fn embedded(mut self) -> Self {
        self.database.url = None;
        self.database.url_file = None;
        self.database.migrate_url = None;
        self.database.migrate_url_file = None;
        self.database.system_url = None;
        self.database.system_url_file = None;
        self.cache.backend = CacheBackend::Memory;
        self.bus.backend = BusBackend::Memory;
        self.objects.backend = ObjectsBackend::Local;
        self.gateway.expose_verification_token = true;
        // A developer's receivers run on their own machine.
        self.webhooks.allow_private_targets = true;
        self.webhooks.allow_http = true;
        self
    }
}

fn value_error(key: &str, message: &str) -> ConfigError {
    ConfigError::Value {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

fn read_secret(key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|source| ConfigError::SecretFile {
            key: key.to_owned(),
            path: path.to_owned(),
            source,
        })
}

/// One line per figment error: `config key `a.b` (in FILE): what is wrong`.
fn describe_figment_error(error: figment::Error) -> ConfigError {
    let lines: Vec<String> = error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let origin = error
                .metadata
                .as_ref()
                .map(|metadata| match &metadata.source {
                    Some(source) => format!(" (from {source})"),
                    None => format!(" (from {})", metadata.name),
                })
                .unwrap_or_default();
            let kind = describe_kind(&error.kind);
            if key.is_empty() {
                format!("config{origin}: {kind}")
            } else {
                format!("config key `{key}`{origin}: {kind}")
            }
        })
        .collect();
    ConfigError::Invalid(lines.join("; "))
}

/// What is wrong with a key's value. figment quotes its list of
/// alternatives in backticks once more (``expected `one of `a`, `b`` ``):
/// say those two ourselves.
fn describe_kind(kind: &figment::error::Kind) -> String {
    use figment::error::{Kind, OneOf};
    match kind {
        Kind::UnknownField(_, expected) => {
            format!("unknown key; expected {}", OneOf(expected))
        }
        Kind::UnknownVariant(found, expected) => {
            format!("unknown value `{found}`; expected {}", OneOf(expected))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
