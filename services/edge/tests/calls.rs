//! The B2BUA with real SIP peers: SIPp (Debian `sip-tester`, installed by
//! `./scripts/test`) plays the carrier and the agent's phones; routing is
//! a recording double of its two APIs (the real routing service is in the
//! end-to-end tests of `services/switchboard`), so each test can offer,
//! withdraw and check exactly what the edge reported.

#[path = "support/dns.rs"]
mod dns;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::RecordType;
use sea_orm::{ConnectionTrait, Statement};
use switchboard_acd::{
    AgentId, Channel, Contact, ContactId, DirectOrigin, Offer, Outcome, QueueId,
};
use switchboard_edge::accounts::CallLimits as PlanLimits;
use switchboard_edge::calls::records::CallLog;
use switchboard_edge::calls::{
    Admission, B2bua, CallOptions, InboundAdmission, MediaOptions, OutboundTrunks,
};
use switchboard_edge::limits::{CallLimits, LimitSource};
use switchboard_edge::registrar::{
    Binding, Bindings, Registrar, RegistrarOptions, SipAccount, SipDirectory,
};
use switchboard_edge::signaling::Signaling;
use switchboard_edge::sip::digest::{Algorithm, Nonces};
use switchboard_edge::sip::transport::{
    Connector, TransportOptions, Transports, tls_client_config, tls_server_config,
};
use switchboard_edge::sip::{Endpoint, EndpointOptions, OutgoingResponse};
use switchboard_edge::trunks::OutboundTarget;
use switchboard_edge::trunks::reach::Locator;
use switchboard_edge::trunks::spec::OutboundTransport;
use switchboard_events::Event;
use switchboard_events::proto::envelope::Payload;
use switchboard_flows::Input;
use switchboard_media::relay::{Relay, RelayOptions};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Cache;
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_routing_api::acd::{
    Answer, Connection, Notice, NoticeEvent, Notices, Operation, Query, Refusal, RefusalKind,
    RoutingApi, RoutingError,
};
use switchboard_routing_api::calls::{
    CallDecision, CallRoutingApi, InboundCall, OutboundCall, OutboundDecision, QueueStatus, Step,
};
use switchboard_rpc::ServiceError;
use switchboard_sip::Message;
use switchboard_tenancy::{Tenant, TenantId, UserId};
use tokio::sync::broadcast;

/// What the edge told routing.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    NewCall(InboundCall),
    Execute(Operation),
    Abandoned(ContactId),
    Ended(ContactId),
    Outbound(OutboundCall),
}

/// Routing as the edge sees it: every new call is queued; offers are
/// pushed by the test.
struct Routing {
    tenant: TenantId,
    call: ContactId,
    /// Where every call is queued.
    placement: (QueueId, Option<u8>, chrono::DateTime<chrono::Utc>),
    /// Answers that it knows no contact, as after losing its state.
    forgotten: AtomicBool,
    heard: Mutex<Vec<Heard>>,
    notices: broadcast::Sender<NoticeEvent>,
    /// What an agent's outbound call gets: placed through `primary` then
    /// `backup` as +442079460000 by default.
    outbound: Mutex<OutboundDecision>,
    /// New calls answered UNAVAILABLE before one is taken.
    unavailable: std::sync::atomic::AtomicUsize,
    /// The first step of every new call instead of queueing it (a flow's
    /// `ring_agent`, …).
    first_step: Mutex<Option<Step>>,
}

impl Routing {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            tenant: TenantId::new(),
            call: ContactId::new(),
            placement: (
                QueueId::new(),
                Some(7),
                chrono::Utc::now() - chrono::Duration::seconds(42),
            ),
            forgotten: AtomicBool::new(false),
            heard: Mutex::new(Vec::new()),
            notices: broadcast::channel(16).0,
            outbound: Mutex::new(OutboundDecision::Place {
                call: ContactId::new(),
                trunks: vec!["primary".into(), "backup".into()],
                caller_id: "+442079460000".into(),
                rule: uuid::Uuid::new_v4(),
            }),
            unavailable: std::sync::atomic::AtomicUsize::new(0),
            first_step: Mutex::new(None),
        })
    }

    fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }

    fn hear(&self, heard: Heard) {
        self.heard.lock().unwrap().push(heard);
    }

    fn offer(&self, agent: AgentId) -> Offer {
        Offer {
            contact: self.call,
            agent,
            queue: QueueId::new(),
            offered_at: chrono::Utc::now(),
            expires_at: chrono::Utc::now() + chrono::Duration::seconds(20),
        }
    }

    fn push(&self, offers: Vec<Offer>, withdrawn: Vec<Offer>) {
        let _ = self.notices.send(NoticeEvent::Notice(Arc::new(Notice {
            tenant: self.tenant,
            offers,
            withdrawn,
            agent_events: Vec::new(),
            contact_events: Vec::new(),
        })));
    }
}

#[async_trait::async_trait]
impl CallRoutingApi for Routing {
    async fn new_call(&self, call: InboundCall) -> Result<CallDecision, ServiceError> {
        let over_limit = call.over_limit.contains(&self.tenant);
        self.hear(Heard::NewCall(call));
        if self
            .unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
        {
            return Err(ServiceError::unavailable("tcp connect error"));
        }
        if over_limit {
            return Ok(CallDecision::OverLimit {
                tenant: self.tenant,
            });
        }
        if let Some(step) = self.first_step.lock().unwrap().clone() {
            return Ok(CallDecision::Accept {
                tenant: self.tenant,
                call: self.call,
                step,
            });
        }
        Ok(CallDecision::Accept {
            tenant: self.tenant,
            call: self.call,
            step: Step::Queued {
                queue_id: self.placement.0,
                position: Some(1),
                music_on_hold: None,
                announcements: None,
                callback_offer_after_seconds: None,
                status_every_seconds: None,
                priority: self.placement.1,
                enqueued_at: self.placement.2,
            },
        })
    }

    async fn report(&self, _: &Tenant, _: ContactId, _: Input) -> Result<Step, ServiceError> {
        Err(ServiceError::bad_request("no flow here"))
    }

    async fn queue_status(&self, _: &Tenant, _: ContactId) -> Result<QueueStatus, ServiceError> {
        Err(ServiceError::bad_request("no status here"))
    }

    async fn abandoned(&self, _: &Tenant, call: ContactId) -> Result<(), ServiceError> {
        self.hear(Heard::Abandoned(call));
        Ok(())
    }

    async fn ended(&self, _: &Tenant, call: ContactId) -> Result<(), ServiceError> {
        self.hear(Heard::Ended(call));
        Ok(())
    }

    async fn outbound_call(
        &self,
        tenant: &Tenant,
        call: OutboundCall,
    ) -> Result<OutboundDecision, ServiceError> {
        assert_eq!(tenant.id(), self.tenant, "the phone's tenant places it");
        self.hear(Heard::Outbound(call));
        Ok(self.outbound.lock().unwrap().clone())
    }
}

/// The tenant's trunks as the tests set them, all on loopback.
#[derive(Default)]
struct Carriers(Mutex<Vec<OutboundTarget>>);

impl Carriers {
    /// Trunk `name` at `port` on loopback over UDP, with outbound
    /// credentials `trunkuser` / `trunkpass`.
    fn add(&self, name: &str, port: u16) {
        self.add_over(name, port, OutboundTransport::Udp);
    }

    fn add_over(&self, name: &str, port: u16, transport: OutboundTransport) {
        self.add_at(name, "127.0.0.1", port, transport);
    }

    /// Trunk `name` at `host` (a name the edge looks up when `port` is
    /// 0: RFC 3263 SRV records).
    fn add_at(&self, name: &str, host: &str, port: u16, transport: OutboundTransport) {
        self.0.lock().unwrap().push(OutboundTarget {
            trunk: name.into(),
            host: host.into(),
            port,
            transport,
            username: Some("trunkuser".into()),
            password: Some("trunkpass".into()),
            caller_id: None,
        });
    }
}

#[async_trait::async_trait]
impl OutboundTrunks for Carriers {
    async fn targets(&self, _: TenantId, names: &[String]) -> anyhow::Result<Vec<OutboundTarget>> {
        let trunks = self.0.lock().unwrap();
        Ok(names
            .iter()
            .filter_map(|name| trunks.iter().find(|trunk| trunk.trunk == *name).cloned())
            .collect())
    }
}

#[async_trait::async_trait]
impl RoutingApi for Routing {
    async fn execute(&self, _: &Tenant, operation: Operation) -> Result<Outcome, RoutingError> {
        self.hear(Heard::Execute(operation));
        Ok(Outcome::default())
    }

    async fn query(&self, _: &Tenant, query: Query) -> Result<Answer, RoutingError> {
        if self.forgotten.load(Ordering::SeqCst) {
            return Err(RoutingError::Refused(Refusal {
                kind: RefusalKind::NotFound,
                message: format!("no {query:?}: the state was lost"),
                current_state: None,
                unknown_agent: None,
            }));
        }
        Err(RoutingError::Unavailable(format!("no {query:?} here")))
    }

    async fn callback_number(
        &self,
        _: &Tenant,
        _: ContactId,
    ) -> Result<Option<String>, RoutingError> {
        Ok(None)
    }

    async fn notices(&self, tenant: &Tenant) -> Result<Notices, RoutingError> {
        assert_eq!(
            tenant.id(),
            self.tenant,
            "notices of the call's tenant only"
        );
        Ok(Notices::local(self.notices.subscribe()))
    }
}

/// Admits what comes from loopback, for the tenant of [`Routing`].
struct Loopback(TenantId);

#[async_trait::async_trait]
impl InboundAdmission for Loopback {
    async fn admit(&self, source: std::net::IpAddr, _: &Message<'_>) -> Admission {
        if source.is_loopback() {
            Admission::Admitted {
                trunks: vec![(self.0, "loopback".into())],
            }
        } else {
            Admission::Refused(OutgoingResponse::new(403))
        }
    }
}

struct NoAccounts;

#[async_trait::async_trait]
impl SipDirectory for NoAccounts {
    async fn tenant_of_domain(&self, _: &str) -> anyhow::Result<Option<TenantId>> {
        Ok(None)
    }

    async fn account(&self, _: TenantId, _: &str) -> anyhow::Result<Option<SipAccount>> {
        Ok(None)
    }
}

struct Edge {
    routing: Arc<Routing>,
    carriers: Arc<Carriers>,
    /// A carrier's TLS certificate (for 127.0.0.1) and key, PEM files the
    /// edge trusts as `edge.trunk_ca_file`.
    carrier_tls: (PathBuf, PathBuf),
    calls: B2bua,
    cache: Arc<dyn Cache>,
    database: Database,
    address: SocketAddr,
    /// Its SIP over TCP.
    tcp: SocketAddr,
    /// What the edge's name server answers (trunks named by host).
    zone: dns::Zone,
    _transports: Transports,
    _dir: tempfile::TempDir,
}

async fn edge() -> Edge {
    edge_with(CallOptions::default()).await
}

async fn edge_with(options: CallOptions) -> Edge {
    edge_limited(options, None).await
}

/// Limits every tenant alike.
struct Plan(PlanLimits);

#[async_trait::async_trait]
impl LimitSource for Plan {
    async fn limits(&self, _: TenantId) -> anyhow::Result<Option<PlanLimits>> {
        Ok(Some(self.0))
    }
}

async fn edge_limited(options: CallOptions, limits: Option<PlanLimits>) -> Edge {
    edge_for(options, limits, None).await
}

/// The SIP domain of the tenant of [`Routing`] in [`OneAgent`].
const DOMAIN: &str = "calls.sip.test";

/// One agent's SIP account, `agent` at [`DOMAIN`], of the call's tenant.
#[derive(Clone)]
struct OneAgent {
    tenant: TenantId,
    user: UserId,
    password: String,
}

#[async_trait::async_trait]
impl SipDirectory for OneAgent {
    async fn tenant_of_domain(&self, domain: &str) -> anyhow::Result<Option<TenantId>> {
        Ok((domain == DOMAIN).then_some(self.tenant))
    }

    async fn account(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> anyhow::Result<Option<SipAccount>> {
        Ok(
            (tenant == self.tenant && username == "agent").then(|| SipAccount {
                user: self.user,
                ha1_sha256: Algorithm::Sha256.ha1("agent", DOMAIN, &self.password),
                ha1_md5: Algorithm::Md5.ha1("agent", DOMAIN, &self.password),
            }),
        )
    }
}

/// An edge whose registrar knows `agent` (a user and password) at
/// [`DOMAIN`], challenging with MD5 only (what 2020's phones take).
async fn edge_for(
    options: CallOptions,
    limits: Option<PlanLimits>,
    agent: Option<(UserId, String)>,
) -> Edge {
    let routing = Routing::new();
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
    let (url, dir) = switchboard_test_utils::fresh_sqlite_database();
    let database = Database::connect(&url, &DatabaseOptions::default())
        .await
        .unwrap();
    Migrator::up(database.connection(), None).await.unwrap();
    let carriers = Arc::new(Carriers::default());
    let (directory, registrar_options): (Arc<dyn SipDirectory>, _) = match agent {
        Some((user, password)) => (
            Arc::new(OneAgent {
                tenant: routing.tenant,
                user,
                password,
            }),
            RegistrarOptions {
                // libre 1.x (baresip 1.0, Debian 12) gives up on a REGISTER
                // challenged with SHA-256 even beside MD5 (ENOSYS): such
                // phones need `edge.digest_algorithms = ["MD5"]`.
                algorithms: vec![Algorithm::Md5],
                ..RegistrarOptions::default()
            },
        ),
        None => (Arc::new(NoAccounts), RegistrarOptions::default()),
    };
    let registrar = Arc::new(Registrar::new(
        directory,
        cache.clone(),
        Nonces::new(b"calls test key", Duration::from_secs(300)),
        registrar_options,
    ));
    let calls = B2bua::new(
        routing.clone(),
        routing.clone(),
        Bindings::new(cache.clone()),
        Arc::new(Loopback(routing.tenant)),
        CallLog::new(database.clone()),
        options,
    )
    .with_outbound(registrar.clone(), carriers.clone());
    let calls = match limits {
        Some(limits) => calls.with_limits(CallLimits::new(Arc::new(Plan(limits)), cache.clone())),
        None => calls,
    };
    let endpoint = Endpoint::new(
        EndpointOptions::default(),
        Arc::new(Signaling::new(registrar, Some(calls.clone()))),
    );
    let transports = Transports::bind(
        endpoint.clone(),
        &TransportOptions {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..TransportOptions::default()
        },
    )
    .await
    .unwrap();
    let address = transports.udp().unwrap();
    let tcp = transports.tcp().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let carrier_tls = (
        dir.path().join("carrier.crt"),
        dir.path().join("carrier.key"),
    );
    std::fs::write(&carrier_tls.0, cert.pem()).unwrap();
    std::fs::write(&carrier_tls.1, signing_key.serialize_pem()).unwrap();
    let zone = dns::Zone::default();
    let name_server = dns::serve_zone(zone.clone()).await;
    calls.attach_connector(
        Connector::new(
            endpoint.clone(),
            tls_client_config(Some(&carrier_tls.0)).unwrap(),
            Duration::from_secs(60),
        )
        .with_locator(Locator::with_name_server(name_server)),
    );
    calls.attach(endpoint, address.to_string());
    Edge {
        routing,
        carriers,
        carrier_tls,
        calls,
        cache,
        database,
        address,
        tcp,
        zone,
        _transports: transports,
        _dir: dir,
    }
}

impl Edge {
    /// A carrier's call (scenario `carrier`, pausing `pause`) offered to a
    /// new agent whose one phone plays scenario `phone`: the agent, the
    /// phone and the carrier.
    async fn offered_call(
        &self,
        phone: &str,
        carrier: &str,
        pause: Duration,
    ) -> (AgentId, Sipp, Sipp) {
        let agent = AgentId::new();
        let phone_port = free_udp_port();
        self.bind_phone(agent, phone_port).await;
        let phone = Sipp::phone(phone, phone_port);
        settle().await;
        let carrier = Sipp::carrier(carrier, "442079460000", pause, self.address);
        self.until_calls(1).await;
        self.routing
            .push(vec![self.routing.offer(agent)], Vec::new());
        (agent, phone, carrier)
    }

    /// Binds a phone of `agent` at `port` as its REGISTER would.
    async fn bind_phone(&self, agent: AgentId, port: u16) {
        self.bind_device(
            agent,
            &format!("sip:agent@127.0.0.1:{port}"),
            &format!("udp:127.0.0.1:{port}"),
        )
        .await;
    }

    /// Binds `contact` of `agent`, registered from `source`
    /// (`udp:…`, `tcp:…`).
    async fn bind_device(&self, agent: AgentId, contact: &str, source: &str) {
        let contact = contact.to_owned();
        let port = source.rsplit(':').next().unwrap();
        let binding = Binding {
            contact: contact.clone(),
            expires_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 300,
            call_id: format!("reg-{port}"),
            cseq: 1,
            source: source.to_owned(),
        };
        self.cache
            .hash_set(
                &format!("edge:{{{}}}:bindings:{}", self.routing.tenant, agent),
                &contact,
                &serde_json::to_vec(&binding).unwrap(),
            )
            .await
            .unwrap();
    }

    /// The call's records in the outbox, once `count` are there.
    /// The `call.ended` of the one call a test made (its third record).
    async fn call_ended(&self) -> switchboard_events::proto::CallEnded {
        let records = self.records(3).await;
        match &records[2].payload {
            Payload::CallEnded(ended) => ended.clone(),
            _ => panic!("no call.ended third: {records:?}"),
        }
    }

    async fn records(&self, count: usize) -> Vec<Event> {
        for _ in 0..200 {
            let rows = self
                .database
                .connection()
                .query_all_raw(Statement::from_string(
                    self.database.backend(),
                    "SELECT payload FROM event_log ORDER BY seq".to_owned(),
                ))
                .await
                .unwrap();
            if rows.len() >= count {
                return rows
                    .iter()
                    .map(|row| {
                        Event::decode(&row.try_get::<Vec<u8>>("", "payload").unwrap()).unwrap()
                    })
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("fewer than {count} call records");
    }

    /// Waits until the edge holds `count` calls and, holding any, watches
    /// their tenant's notices (a notice pushed before that reaches nobody;
    /// the real routing would answer the edge's resync with it).
    async fn until_calls(&self, count: usize) {
        for _ in 0..400 {
            if self.calls.calls() == count
                && (count == 0 || self.routing.notices.receiver_count() > 0)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the edge holds {} calls, not {count}", self.calls.calls());
    }
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/sipp/{name}.xml"))
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One SIPp run: its directory keeps the message trace.
struct Sipp {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Sipp {
    /// A phone listening on `port` (a UAS scenario).
    fn phone(name: &str, port: u16) -> Self {
        Self::start(name, port, &[], None)
    }

    /// A carrier's trunk listening on TCP `port` (a UAS scenario).
    fn trunk_over_tcp(name: &str, port: u16) -> Self {
        Self::start(name, port, &["-t", "t1"], None)
    }

    /// A carrier calling `number` at the edge (a UAC scenario), pausing
    /// `pause` where the scenario pauses.
    fn carrier(name: &str, number: &str, pause: Duration, edge: SocketAddr) -> Self {
        let pause = pause.as_millis().to_string();
        Self::start(
            name,
            free_udp_port(),
            &["-s", number, "-d", &pause],
            Some(edge),
        )
    }

    fn start(name: &str, port: u16, args: &[&str], remote: Option<SocketAddr>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = tokio::process::Command::new("sipp");
        command
            .current_dir(dir.path())
            .args(["-sf", scenario(name).to_str().unwrap()])
            .args(["-m", "1", "-l", "1"])
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-timeout",
                "20s",
                "-timeout_error",
                "-nostdin",
                "-trace_err",
                "-trace_msg",
            ])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(remote) = remote {
            command.arg(remote.to_string());
        }
        let child = command
            .spawn()
            .expect("SIPp (Debian sip-tester) is installed: ./scripts/test installs it");
        Self { child, dir }
    }

    fn file_ending(&self, suffix: &str) -> String {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
            .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
            .collect()
    }

    /// Waits for the scenario's end, pass or fail.
    async fn child_status(mut self) -> std::process::ExitStatus {
        self.child.wait().await.unwrap()
    }

    /// Waits for the scenario to pass; answers its message trace.
    async fn passes(mut self, who: &str) -> String {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{who}'s SIPp did not finish"))
            .unwrap();
        let messages = self.file_ending("_messages.log");
        assert!(
            status.success(),
            "{who}'s scenario failed ({status}): {}\n{messages}",
            self.file_ending("_errors.log"),
        );
        messages
    }
}

/// Lets a UAS SIPp bind its port before the edge rings it.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_rings_the_offered_agent_who_answers_and_the_caller_hangs_up() {
    let edge = edge().await;
    let (agent, phone, carrier) = edge
        .offered_call("agent_answer", "carrier_call", Duration::from_millis(500))
        .await;

    let carrier_trace = carrier.passes("the carrier").await;
    let phone_trace = phone.passes("the agent's phone").await;
    edge.until_calls(0).await;

    let call = edge.routing.call;
    let heard = edge.routing.heard();
    let Heard::NewCall(inbound) = &heard[0] else {
        panic!("{heard:?}");
    };
    assert_eq!(inbound.number, "+442079460000");
    assert_eq!(inbound.caller, "+15550001111");
    assert_eq!(inbound.admitted_tenants, vec![edge.routing.tenant]);
    assert_eq!(
        heard[1..],
        [
            Heard::Execute(Operation::Accept {
                agent,
                contact: call
            }),
            Heard::Ended(call),
        ]
    );
    // Topology hiding: nothing of the carrier's leg reaches the phone.
    let carrier_call_id = carrier_trace
        .lines()
        .find_map(|line| line.trim().strip_prefix("Call-ID: "))
        .expect("the carrier's trace has its Call-ID")
        .to_owned();
    assert!(!phone_trace.contains(&carrier_call_id), "{phone_trace}");
    assert!(!phone_trace.contains("SIPpTag00"), "{phone_trace}");
    assert!(!phone_trace.contains("sip:carrier@"), "{phone_trace}");

    let records = edge.records(3).await;
    let types: Vec<&str> = records
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(types, ["call.started", "call.answered", "call.ended"]);
    assert!(
        records
            .iter()
            .all(|event| event.tenant == edge.routing.tenant && event.source == "edge")
    );
    let Payload::CallEnded(ended) = &records[2].payload else {
        panic!("{records:?}");
    };
    assert_eq!(ended.call_id, call.to_string());
    assert_eq!(ended.number, "+442079460000");
    assert_eq!(ended.caller, "+15550001111");
    assert_eq!(ended.trunk, "loopback");
    assert_eq!(ended.agent_id, agent.to_string());
    assert_eq!(
        (ended.outcome.as_str(), ended.ended_by.as_str()),
        ("answered", "caller")
    );
    assert_eq!(ended.sip_status, 200);
    assert!(ended.answered_at.is_some());
    assert!(
        ended.talk_ms >= 400,
        "the caller talked for the scenario's pause: {ended:?}"
    );
    // Each figure is whole milliseconds, truncated.
    assert!(
        ended.duration_ms.abs_diff(ended.wait_ms + ended.talk_ms) <= 1,
        "{ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_phone_is_declined_and_a_caller_who_gives_up_is_abandoned() {
    let edge = edge().await;
    let agent = AgentId::new();
    let phone_port = free_udp_port();
    edge.bind_phone(agent, phone_port).await;
    let phone = Sipp::phone("agent_busy", phone_port);
    settle().await;
    let carrier = Sipp::carrier(
        "carrier_cancel",
        "+442079460000",
        Duration::from_millis(1500),
        edge.address,
    );
    edge.until_calls(1).await;
    edge.routing
        .push(vec![edge.routing.offer(agent)], Vec::new());

    phone.passes("the agent's phone").await;
    carrier.passes("the carrier").await;
    edge.until_calls(0).await;

    let call = edge.routing.call;
    let heard = edge.routing.heard();
    assert_eq!(
        heard[1..],
        [
            Heard::Execute(Operation::Decline {
                agent,
                contact: call
            }),
            Heard::Abandoned(call),
        ],
        "{heard:?}"
    );
    let records = edge.records(2).await;
    let Payload::CallEnded(ended) = &records[1].payload else {
        panic!("{records:?}");
    };
    assert_eq!(
        (ended.outcome.as_str(), ended.ended_by.as_str()),
        ("abandoned", "caller")
    );
    assert_eq!(ended.sip_status, 487);
    assert_eq!(ended.agent_id, "");
    assert_eq!((ended.answered_at, ended.talk_ms), (None, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_offer_stops_the_ringing_and_an_agent_without_phones_is_declined() {
    let edge = edge().await;
    let ringing = AgentId::new();
    let phoneless = AgentId::new();
    let phone_port = free_udp_port();
    edge.bind_phone(ringing, phone_port).await;
    let phone = Sipp::phone("agent_cancelled", phone_port);
    settle().await;
    let carrier = Sipp::carrier(
        "carrier_cancel",
        "+442079460000",
        Duration::from_millis(3000),
        edge.address,
    );
    edge.until_calls(1).await;
    let offer = edge.routing.offer(ringing);
    edge.routing.push(vec![offer.clone()], Vec::new());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The queue's ring timeout: routing withdraws the offer, and offers
    // the call to an agent with no phone registered.
    edge.routing
        .push(vec![edge.routing.offer(phoneless)], vec![offer]);

    phone.passes("the agent's phone").await;
    carrier.passes("the carrier").await;
    edge.until_calls(0).await;
    let call = edge.routing.call;
    assert_eq!(
        edge.routing.heard()[1..],
        [
            Heard::Execute(Operation::Decline {
                agent: phoneless,
                contact: call
            }),
            Heard::Abandoned(call),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_from_a_source_no_trunk_admits_is_refused_and_reaches_no_one() {
    let edge = edge().await;
    // Admission refuses anything not from loopback; a test cannot send
    // from elsewhere, so the refusal is checked through the admission the
    // edge was built with, and a looped INVITE through the wire.
    let refused = Loopback(edge.routing.tenant)
        .admit(
            "192.0.2.1".parse().unwrap(),
            &switchboard_sip::parse(
                b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKx\r\n\
                  From: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
                  Content-Length: 0\r\n\r\n",
                switchboard_sip::Transport::Stream,
                &switchboard_sip::Limits::default(),
            )
            .unwrap()
            .unwrap()
            .0,
        )
        .await;
    assert!(matches!(refused, Admission::Refused(_)));

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let looped = format!(
        "INVITE sip:+442079460000@{edge} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKloop1\r\n\
         Via: SIP/2.0/UDP {edge};branch=z9hG4bK-sb-0000000000000001;rport\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:+442079460000@{edge}>\r\n\
         Call-ID: loop\r\nCSeq: 1 INVITE\r\nMax-Forwards: 60\r\nContent-Length: 0\r\n\r\n",
        edge = edge.address,
        local = socket.local_addr().unwrap(),
    );
    socket
        .send_to(looped.as_bytes(), edge.address)
        .await
        .unwrap();
    let hops = looped
        .replace("z9hG4bKloop1", "z9hG4bKloop2")
        .replace(
            &format!(
                "Via: SIP/2.0/UDP {};branch=z9hG4bK-sb-0000000000000001;rport\r\n",
                edge.address
            ),
            "",
        )
        .replace("Max-Forwards: 60", "Max-Forwards: 0");
    socket.send_to(hops.as_bytes(), edge.address).await.unwrap();
    let mut finals = Vec::new();
    let mut buffer = vec![0; 4096];
    while finals.len() < 2 {
        let (length, _) =
            tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
                .await
                .expect("the edge answers")
                .unwrap();
        let text = String::from_utf8_lossy(&buffer[..length]).to_string();
        if !text.starts_with("SIP/2.0 100") {
            finals.push(text.lines().next().unwrap().to_owned());
        }
    }
    finals.sort();
    assert_eq!(
        finals,
        ["SIP/2.0 482 Loop Detected", "SIP/2.0 483 Too Many Hops"]
    );
    assert!(
        edge.routing.heard().is_empty(),
        "routing never heard of them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_phones_the_first_to_answer_wins_and_the_agent_hangs_up() {
    let edge = edge().await;
    let agent = AgentId::new();
    let (answering, ringing) = (free_udp_port(), free_udp_port());
    edge.bind_phone(agent, answering).await;
    edge.bind_phone(agent, ringing).await;
    let desk = Sipp::start("agent_hangs_up", answering, &["-d", "500"], None);
    let softphone = Sipp::phone("agent_cancelled", ringing);
    settle().await;
    let carrier = Sipp::carrier(
        "carrier_call_agent_hangs_up",
        "+442079460000",
        Duration::from_millis(500),
        edge.address,
    );
    edge.until_calls(1).await;
    edge.routing
        .push(vec![edge.routing.offer(agent)], Vec::new());

    desk.passes("the answering phone").await;
    softphone.passes("the other phone, cancelled").await;
    carrier.passes("the carrier").await;
    edge.until_calls(0).await;
    let call = edge.routing.call;
    assert_eq!(
        edge.routing.heard()[1..],
        [
            Heard::Execute(Operation::Accept {
                agent,
                contact: call
            }),
            Heard::Ended(call),
        ]
    );
    let ended = edge.call_ended().await;
    assert_eq!(
        (ended.outcome.as_str(), ended.ended_by.as_str()),
        ("answered", "agent")
    );
}

/// Whether routing hears something `wanted` within 10 s.
async fn heard_soon(routing: &Routing, wanted: impl Fn(&Heard) -> bool) -> bool {
    switchboard_test_utils::eventually(Duration::from_secs(10), || {
        let found = routing.heard().iter().any(&wanted);
        async move { found }
    })
    .await
}

/// Routing loses its state twice: while the call waits in its queue, and
/// once it is connected. Each time the edge puts it back as it stands:
/// queued with its queue, priority and original arrival (so it keeps its
/// place), then connected to the agent since the answer; routing's next
/// offer rings the phone as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_routing_forgot_is_put_back_as_it_stands() {
    let edge = edge_with(CallOptions {
        audit_every: Duration::from_millis(200),
        ..CallOptions::default()
    })
    .await;
    let routing = &edge.routing;
    let agent = AgentId::new();
    let phone_port = free_udp_port();
    edge.bind_phone(agent, phone_port).await;
    let phone = Sipp::phone("agent_answer", phone_port);
    settle().await;
    let carrier = Sipp::carrier(
        "carrier_call",
        "442079460000",
        Duration::from_secs(3),
        edge.address,
    );
    edge.until_calls(1).await;
    let (queue, priority, enqueued_at) = routing.placement;
    let mut contact = Contact::new(routing.call, queue, Channel::Voice, enqueued_at);
    contact.priority = priority;
    let waiting = Heard::Execute(Operation::Reinstate {
        contact: contact.clone(),
        connected: None,
    });
    routing.forgotten.store(true, Ordering::SeqCst);
    assert!(
        heard_soon(routing, |heard| *heard == waiting).await,
        "the waiting call was not put back: {:?}",
        routing.heard()
    );
    routing.forgotten.store(false, Ordering::SeqCst);
    routing.push(vec![routing.offer(agent)], Vec::new());
    let answered = heard_soon(routing, |heard| {
        matches!(heard, Heard::Execute(Operation::Accept { agent: accepted, .. }) if *accepted == agent)
    })
    .await;
    assert!(answered, "the phone did not answer: {:?}", routing.heard());
    let answered_at = chrono::Utc::now();

    routing.forgotten.store(true, Ordering::SeqCst);
    let connected = heard_soon(routing, |heard| {
        matches!(
            heard,
            Heard::Execute(Operation::Reinstate {
                contact: put_back,
                connected: Some(Connection { agent: with, since }),
            }) if *put_back == contact
                && *with == agent
                && (answered_at - *since).num_seconds().abs() < 5
        )
    })
    .await;
    assert!(
        connected,
        "the connected call was not put back: {:?}",
        routing.heard()
    );
    routing.forgotten.store(false, Ordering::SeqCst);

    carrier.passes("the carrier").await;
    phone.passes("the agent's phone").await;
    edge.until_calls(0).await;
    let heard = routing.heard();
    assert_eq!(heard.last(), Some(&Heard::Ended(routing.call)), "{heard:?}");
}

/// A flow rings an agent directly: once the phone answers, routing's ACD
/// holds the call as the agent's contact (in no queue) so the agent is
/// busy with it; routing loses its state and the edge connects it again
/// since the answer; its end reaches routing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directly_rung_call_makes_the_agent_busy_until_it_ends() {
    let edge = edge_with(CallOptions {
        audit_every: Duration::from_millis(200),
        ..CallOptions::default()
    })
    .await;
    let routing = &edge.routing;
    let agent = AgentId::new();
    *routing.first_step.lock().unwrap() = Some(Step::RingAgent {
        agent_id: agent.as_uuid(),
    });
    let phone_port = free_udp_port();
    edge.bind_phone(agent, phone_port).await;
    let phone = Sipp::phone("agent_answer", phone_port);
    settle().await;
    let carrier = Sipp::carrier(
        "carrier_call",
        "442079460000",
        Duration::from_secs(3),
        edge.address,
    );
    let call = routing.call;
    let direct = |heard: &Heard| {
        matches!(
            heard,
            Heard::Execute(Operation::ConnectDirect {
                contact,
                agent: with,
                origin: DirectOrigin::RungToAgent,
                channel: Channel::Voice,
                wrap_up_ms: 0,
                ..
            }) if *contact == call && *with == agent
        )
    };
    assert!(
        heard_soon(routing, direct).await,
        "the answered call did not make the agent busy: {:?}",
        routing.heard()
    );
    let since = |heard: &[Heard]| -> Vec<chrono::DateTime<chrono::Utc>> {
        heard
            .iter()
            .filter_map(|heard| match heard {
                Heard::Execute(Operation::ConnectDirect { since, .. }) => Some(*since),
                _ => None,
            })
            .collect()
    };
    routing.forgotten.store(true, Ordering::SeqCst);
    assert!(
        switchboard_test_utils::eventually(Duration::from_secs(10), || {
            let connects = since(&routing.heard()).len();
            async move { connects >= 2 }
        })
        .await,
        "the direct call was not put back: {:?}",
        routing.heard()
    );
    routing.forgotten.store(false, Ordering::SeqCst);
    let connects = since(&routing.heard());
    assert!(
        connects.iter().all(|at| *at == connects[0]),
        "put back since the answer: {connects:?}"
    );

    carrier.passes("the carrier").await;
    phone.passes("the agent's phone").await;
    edge.until_calls(0).await;
    let heard = routing.heard();
    assert_eq!(heard.last(), Some(&Heard::Ended(call)), "{heard:?}");
    assert!(
        !heard
            .iter()
            .any(|heard| matches!(heard, Heard::Execute(Operation::Accept { .. }))),
        "no offer was accepted: {heard:?}"
    );
}

/// A tenant allowed one call at a time: a second call while the first is
/// connected gets 503 with Retry-After before routing hears of it, its
/// refusal is in the tenant's events, the first call goes on, and its end
/// gives the place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_tenants_limit_gets_503_and_leaves_the_call_in_progress_alone() {
    let edge = edge_limited(
        CallOptions::default(),
        Some(PlanLimits {
            max_concurrent_calls: 1,
            calls_per_second: 10,
        }),
    )
    .await;
    let routing = &edge.routing;
    let (_, phone, first) = edge
        .offered_call("agent_answer", "carrier_call", Duration::from_secs(2))
        .await;
    let answered = heard_soon(routing, |heard| {
        matches!(heard, Heard::Execute(Operation::Accept { .. }))
    })
    .await;
    assert!(
        answered,
        "the first call was not answered: {:?}",
        routing.heard()
    );

    let second = Sipp::carrier(
        "carrier_over_limit",
        "442079460000",
        Duration::ZERO,
        edge.address,
    );
    second.passes("the second carrier").await;
    first.passes("the first carrier").await;
    phone.passes("the agent's phone").await;
    edge.until_calls(0).await;

    let heard = routing.heard();
    assert_eq!(
        heard
            .iter()
            .filter(|heard| matches!(heard, Heard::NewCall(_)))
            .count(),
        1,
        "routing heard only of the call it took: {heard:?}"
    );
    let records = edge.records(4).await;
    let refused: Vec<_> = records
        .iter()
        .filter_map(|event| match &event.payload {
            Payload::CallRefused(refused) => Some((event.tenant, refused.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{records:?}");
    let (tenant, refused) = &refused[0];
    assert_eq!(*tenant, routing.tenant);
    assert_eq!(refused.limit, "concurrent_calls");
    assert_eq!(refused.limit_value, 1);
    assert_eq!(refused.retry_after_seconds, 10);
    assert_eq!(refused.number, "+442079460000");
    // The ended call gave its place back.
    let key = format!("edge:{{{}}}:calls", routing.tenant);
    let released = switchboard_test_utils::eventually(Duration::from_secs(5), || async {
        edge.cache.hash_get_all(&key).await.unwrap().is_empty()
    })
    .await;
    assert!(released, "the ended call still holds a place");
}

/// `samples` of silence as an 8 kHz 16-bit mono WAV (RIFF) file.
fn silent_wav(samples: u32) -> Vec<u8> {
    let data = samples * 2;
    let mut wav = Vec::with_capacity(44 + data as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    wav.resize(44 + data as usize, 0);
    wav
}

/// A second, independent SIP stack: baresip (Debian `baresip-core`,
/// installed by `./scripts/test`) registers as the agent with digest
/// authentication through the edge as its outbound proxy, and answers the
/// offered carrier call on its own (auto-answer); the caller hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_and_answers_a_queued_call() {
    let user = UserId::new();
    let password = "baresip-secret-1234".to_owned();
    let edge = edge_for(CallOptions::default(), None, Some((user, password.clone()))).await;
    let routing = &edge.routing;
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    // What the phone sends: 8 kHz silence (its sine source takes 48 kHz
    // only), longer than the call: at its end baresip hangs up.
    let silence = dir.path().join("silence.wav");
    std::fs::write(&silence, silent_wav(8000 * 30)).unwrap();
    let silence = silence.display();
    std::fs::write(
        dir.path().join("config"),
        format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{port}\n\
             sip_trans_def udp\n\
             audio_player aufile,/dev/null\n\
             audio_source aufile,{silence}\n\
             audio_alert aufile,/dev/null\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module account.so\n\
             module menu.so\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:agent@{DOMAIN};transport=udp>;auth_pass={password};\
             outbound=\"sip:{};transport=udp\";answermode=auto;regint=300\n",
            edge.address
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
    let mut baresip = tokio::process::Command::new("baresip")
        .args(["-4", "-s", "-f"])
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("baresip (Debian baresip-core) is installed: ./scripts/test installs it");
    let trace = || {
        String::from_utf8_lossy(&std::fs::read(dir.path().join("baresip.log")).unwrap_or_default())
            .into_owned()
    };
    let bindings = format!("edge:{{{}}}:bindings:{}", routing.tenant, user);
    let registered = switchboard_test_utils::eventually(Duration::from_secs(15), || async {
        !edge.cache.hash_get_all(&bindings).await.unwrap().is_empty()
    })
    .await;
    assert!(registered, "baresip did not register: {}", trace());

    let carrier = Sipp::carrier(
        "carrier_call_any_phone",
        "442079460000",
        Duration::from_secs(1),
        edge.address,
    );
    edge.until_calls(1).await;
    let agent = AgentId::from_uuid(user.as_uuid());
    routing.push(vec![routing.offer(agent)], Vec::new());
    carrier.passes("the carrier").await;
    edge.until_calls(0).await;
    let _ = baresip.start_kill();
    let heard = routing.heard();
    assert_eq!(
        heard[1..],
        [
            Heard::Execute(Operation::Accept {
                agent,
                contact: routing.call
            }),
            Heard::Ended(routing.call),
        ],
        "{}",
        trace()
    );
}

/// One SIP message from a byte stream (framed by its Content-Length).
async fn read_message(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>) -> String {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                let message: Vec<u8> = buffer.drain(..end + 4 + length).collect();
                return String::from_utf8_lossy(&message).into_owned();
            }
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk))
            .await
            .expect("the edge sent a message in time")
            .unwrap();
        assert!(read > 0, "the edge closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// The next request of `method` on the stream.
async fn read_request(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
    method: &str,
) -> String {
    loop {
        let message = read_message(stream, buffer).await;
        if message.starts_with(&format!("{method} ")) {
            return message;
        }
    }
}

/// A response to `request` as a phone makes it: its Via, From, Call-ID
/// and CSeq, its To with the phone's tag, and `sdp` if any.
fn response_to(request: &str, status: &str, sdp: &str) -> String {
    let (head, _) = request.split_once("\r\n\r\n").unwrap();
    let mut response = format!("SIP/2.0 {status}\r\n");
    for line in head.split("\r\n").skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                response.push_str(line);
                response.push_str("\r\n");
            }
            "to" | "t" if line.contains(";tag=") => {
                response.push_str(line);
                response.push_str("\r\n");
            }
            "to" | "t" => response.push_str(&format!("{line};tag=tcp-phone\r\n")),
            _ => {}
        }
    }
    if sdp.is_empty() {
        response.push_str("Content-Length: 0\r\n\r\n");
    } else {
        response.push_str(&format!(
            "Contact: <sip:agent@127.0.0.1;transport=tcp>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ));
    }
    response
}

/// A phone that registered over TCP is rung over that connection (the
/// edge holds it; RFC 5626 §5.3), with a TCP Via, and the whole call
/// (ACK, then the caller's BYE) reaches it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_over_tcp_is_rung_over_its_connection() {
    use tokio::io::AsyncWriteExt;
    let edge = edge().await;
    let routing = &edge.routing;
    let agent = AgentId::new();
    let mut phone = tokio::net::TcpStream::connect(edge.tcp).await.unwrap();
    let local = phone.local_addr().unwrap();
    let mut buffer = Vec::new();
    // An OPTIONS answered: the edge serves the connection.
    let options = format!(
        "OPTIONS sip:{edge} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcpphone1\r\n\
         From: <sip:agent@{local}>;tag=1\r\nTo: <sip:{edge}>\r\nCall-ID: tcp-options\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        edge = edge.tcp
    );
    phone.write_all(options.as_bytes()).await.unwrap();
    let answered = read_message(&mut phone, &mut buffer).await;
    assert!(answered.starts_with("SIP/2.0 200"), "{answered}");
    edge.bind_device(
        agent,
        &format!("sip:agent@{local};transport=tcp"),
        &format!("tcp:{local}"),
    )
    .await;

    let carrier = Sipp::carrier(
        "carrier_call",
        "442079460000",
        Duration::from_millis(500),
        edge.address,
    );
    edge.until_calls(1).await;
    routing.push(vec![routing.offer(agent)], Vec::new());
    let invite = read_request(&mut phone, &mut buffer, "INVITE").await;
    assert!(invite.contains("Via: SIP/2.0/TCP "), "{invite}");
    assert!(
        invite.contains(";transport=tcp>"),
        "the edge's Contact: {invite}"
    );
    assert!(
        invite.contains("m=audio 40000"),
        "the carrier's offer: {invite}"
    );
    let sdp = "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
               t=0 0\r\nm=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    phone
        .write_all(response_to(&invite, "180 Ringing", "").as_bytes())
        .await
        .unwrap();
    phone
        .write_all(response_to(&invite, "200 OK", sdp).as_bytes())
        .await
        .unwrap();
    let ack = read_request(&mut phone, &mut buffer, "ACK").await;
    assert!(ack.contains("Via: SIP/2.0/TCP "), "{ack}");
    let bye = read_request(&mut phone, &mut buffer, "BYE").await;
    phone
        .write_all(response_to(&bye, "200 OK", "").as_bytes())
        .await
        .unwrap();
    carrier.passes("the carrier").await;
    edge.until_calls(0).await;
    assert_eq!(
        routing.heard()[1..],
        [
            Heard::Execute(Operation::Accept {
                agent,
                contact: routing.call
            }),
            Heard::Ended(routing.call),
        ]
    );
}

/// A carrier's session timer (RFC 4028): granted in the answer, restarted
/// by the carrier's UPDATE (answered by the edge, not the phone), and once
/// the carrier stops refreshing the edge ends the call on both legs before
/// the interval runs out. An interval below the edge's Min-SE gets 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_carrier_stops_refreshing_is_ended_by_the_edge() {
    let edge = edge_with(CallOptions {
        session_expires: Duration::from_secs(3),
        min_se: Duration::from_secs(2),
        ..CallOptions::default()
    })
    .await;
    let routing = &edge.routing;
    let (_, phone, carrier) = edge
        .offered_call(
            "agent_answer",
            "carrier_session_timer",
            Duration::from_millis(1000),
        )
        .await;
    carrier.passes("the carrier").await;
    let phone_trace = phone.passes("the agent's phone").await;
    assert!(
        !phone_trace.contains("UPDATE sip:"),
        "the bare refresh stayed on the carrier's leg: {phone_trace}"
    );
    edge.until_calls(0).await;
    assert_eq!(routing.heard().last(), Some(&Heard::Ended(routing.call)));
    let ended = edge.call_ended().await;
    assert_eq!(ended.ended_by, "edge");
    assert_eq!(ended.outcome, "answered");

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let short = format!(
        "INVITE sip:+442079460000@{edge} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKshortse\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:+442079460000@{edge}>\r\n\
         Call-ID: short-se\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Supported: timer\r\nSession-Expires: 1\r\nContent-Length: 0\r\n\r\n",
        edge = edge.address,
        local = socket.local_addr().unwrap(),
    );
    socket
        .send_to(short.as_bytes(), edge.address)
        .await
        .unwrap();
    let mut buffer = vec![0; 4096];
    let refused = loop {
        let (length, _) =
            tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
                .await
                .expect("the edge answers")
                .unwrap();
        let text = String::from_utf8_lossy(&buffer[..length]).to_string();
        if !text.starts_with("SIP/2.0 100") {
            break text;
        }
    };
    assert!(refused.starts_with("SIP/2.0 422"), "{refused}");
    assert!(refused.contains("Min-SE: 2\r\n"), "{refused}");
    assert_eq!(
        routing
            .heard()
            .iter()
            .filter(|heard| matches!(heard, Heard::NewCall(_)))
            .count(),
        1,
        "routing never heard of the refused call"
    );
}

/// A carrier that names the edge as refresher (`refresher=uas`) gets an
/// UPDATE within each interval, and the call lasts past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_refreshes_a_session_the_carrier_asks_it_to() {
    let edge = edge_with(CallOptions {
        session_expires: Duration::from_secs(3),
        min_se: Duration::from_secs(2),
        ..CallOptions::default()
    })
    .await;
    // The carrier hangs up after the third refresh: past the 3-s interval.
    let (_, phone, carrier) = edge
        .offered_call(
            "agent_answer",
            "carrier_session_refreshed_by_edge",
            Duration::ZERO,
        )
        .await;
    carrier.passes("the carrier").await;
    phone.passes("the agent's phone").await;
    edge.until_calls(0).await;
    let ended = edge.call_ended().await;
    assert_eq!(ended.ended_by, "caller", "the refreshed session lasted");
}

/// An edge whose registrar knows the phone of agent `user` (password
/// `phone-secret`), which dials out.
async fn dialing_edge(options: CallOptions) -> (UserId, Edge) {
    let user = UserId::new();
    let edge = edge_for(options, None, Some((user, "phone-secret".into()))).await;
    (user, edge)
}

impl Edge {
    /// The agent's phone dials +15550100 (scenario `phone`, as `agent`
    /// with `password`, hanging up after `pause`).
    fn phone_dials(&self, phone: &str, password: &str, pause: Duration) -> Sipp {
        let pause = pause.as_millis().to_string();
        Sipp::start(
            phone,
            free_udp_port(),
            &[
                "-s",
                "+15550100",
                "-d",
                &pause,
                "-au",
                "agent",
                "-ap",
                password,
                "-auth_uri",
                &format!("+15550100@{DOMAIN}"),
            ],
            Some(self.address),
        )
    }
}

/// The `m=audio` port of a message's session description.
fn audio_port(message: &str) -> u16 {
    message
        .lines()
        .find_map(|line| line.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no audio stream in {message}"))
}

/// The next SIP message on `socket`.
async fn receive_sip(socket: &tokio::net::UdpSocket) -> String {
    let mut buffer = vec![0u8; 4096];
    let (read, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buffer))
        .await
        .expect("the edge sends in time")
        .unwrap();
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

/// An RTP packet (RFC 3550 §5.1, PCMU) numbered `seq`, its payload 160
/// bytes of `fill`.
fn rtp_packet(seq: u16, ssrc: u32, fill: u8) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend(std::iter::repeat_n(fill, 160));
    packet
}

/// Receives on `socket` until `count` RTP packets carried `fill`.
async fn receive_rtp(socket: &tokio::net::UdpSocket, count: usize, fill: u8) -> SocketAddr {
    let mut buffer = [0u8; 2048];
    let mut seen = 0;
    loop {
        let (read, from) =
            tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
                .await
                .expect("RTP arrives through the relay")
                .unwrap();
        assert_eq!(read, 172, "a whole RTP packet");
        assert!(
            buffer[12..read].iter().all(|byte| *byte == fill),
            "the payload as sent"
        );
        seen += 1;
        if seen == count {
            return from;
        }
    }
}

/// A carrier's call with the edge's media relay: the phone gets the
/// carrier's offer anchored at the relay (its address, a port of the
/// relay's range, the edge's own o=), the carrier gets the phone's answer
/// anchored the same way on another port, and RTP flows both ways through
/// the relay, each side's packets arriving as sent. Once neither side
/// sends media for the media timeout, the edge hangs up both legs and the
/// relay's ports are free again. An offer the edge cannot read gets 488
/// naming the fault, and routing never hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_media_goes_through_the_edges_relay_until_it_stops() {
    use tokio::io::AsyncWriteExt;
    let edge = edge_with(CallOptions {
        audit_every: Duration::from_millis(200),
        ..CallOptions::default()
    })
    .await;
    let first = free_udp_port() & !1;
    let relay = Relay::start(RelayOptions {
        bind: "127.0.0.1".parse().unwrap(),
        advertise: None,
        ports: first..=first.saturating_add(40),
        workers: 1,
    })
    .unwrap();
    let relay_ports = first..=first.saturating_add(41);
    edge.calls.attach_media(MediaOptions {
        relay: relay.clone(),
        timeout: Duration::from_secs(5),
    });
    let routing = &edge.routing;
    let agent = AgentId::new();
    let mut phone = tokio::net::TcpStream::connect(edge.tcp).await.unwrap();
    let local = phone.local_addr().unwrap();
    edge.bind_device(
        agent,
        &format!("sip:agent@{local};transport=tcp"),
        &format!("tcp:{local}"),
    )
    .await;

    // The carrier, from loopback: an INVITE with its media at carrier_rtp.
    let carrier = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let carrier_rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let phone_rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let carrier_at = carrier.local_addr().unwrap();
    let invite_with = |call_id: &str, sdp: &str| {
        format!(
            "INVITE sip:+442079460000@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {carrier_at};branch=z9hG4bK-{call_id}\r\n\
             From: <sip:+15550001111@carrier.example>;tag=c-{call_id}\r\n\
             To: <sip:+442079460000@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Max-Forwards: 70\r\nContact: <sip:carrier@{carrier_at}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    // Unreadable: 488 with the reason, and routing hears nothing.
    let garbled = "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio many RTP/AVP 0\r\n";
    carrier
        .send_to(invite_with("garbled", garbled).as_bytes(), edge.address)
        .await
        .unwrap();
    let refused = loop {
        let text = receive_sip(&carrier).await;
        if !text.starts_with("SIP/2.0 100") {
            break text;
        }
    };
    assert!(refused.starts_with("SIP/2.0 488 "), "{refused}");
    assert!(
        refused.contains("SDP"),
        "the reason names the fault: {refused}"
    );
    assert!(routing.heard().is_empty(), "{:?}", routing.heard());

    let offer = format!(
        "v=0\r\no=carrier 77 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         m=video 50000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
        carrier_rtp.local_addr().unwrap().port()
    );
    carrier
        .send_to(invite_with("relayed", &offer).as_bytes(), edge.address)
        .await
        .unwrap();
    edge.until_calls(1).await;
    routing.push(vec![routing.offer(agent)], Vec::new());
    let mut buffer = Vec::new();
    let invite = read_request(&mut phone, &mut buffer, "INVITE").await;
    let phone_facing = audio_port(&invite);
    assert!(relay_ports.contains(&phone_facing), "{invite}");
    assert!(invite.contains("c=IN IP4 127.0.0.1"), "{invite}");
    assert!(
        !invite.contains("o=carrier"),
        "the edge's own origin: {invite}"
    );
    assert!(invite.contains("m=video 0 "), "video declined: {invite}");
    assert!(invite.contains("telephone-event/8000"), "{invite}");
    let answer = format!(
        "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         m=video 0 RTP/AVP 96\r\n",
        phone_rtp.local_addr().unwrap().port()
    );
    phone
        .write_all(response_to(&invite, "200 OK", &answer).as_bytes())
        .await
        .unwrap();
    let answered = loop {
        let text = receive_sip(&carrier).await;
        if text.starts_with("SIP/2.0 200") {
            break text;
        }
    };
    let carrier_facing = audio_port(&answered);
    assert!(relay_ports.contains(&carrier_facing), "{answered}");
    assert_ne!(carrier_facing, phone_facing);
    assert!(!answered.contains("o=agent"), "{answered}");
    let to_tag = answered
        .lines()
        .find(|line| line.starts_with("To:"))
        .and_then(|line| line.split(";tag=").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let ack = format!(
        "ACK sip:{edge} SIP/2.0\r\nVia: SIP/2.0/UDP {carrier_at};branch=z9hG4bK-ack\r\n\
         From: <sip:+15550001111@carrier.example>;tag=c-relayed\r\n\
         To: <sip:+442079460000@127.0.0.1>;tag={to_tag}\r\nCall-ID: relayed\r\n\
         CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        edge = edge.address
    );
    carrier.send_to(ack.as_bytes(), edge.address).await.unwrap();
    read_request(&mut phone, &mut buffer, "ACK").await;

    // RTP both ways, through the relay.
    let relay_for_carrier = SocketAddr::from(([127, 0, 0, 1], carrier_facing));
    let relay_for_phone = SocketAddr::from(([127, 0, 0, 1], phone_facing));
    for seq in 0..5 {
        carrier_rtp
            .send_to(&rtp_packet(seq, 0xca11, 0x55), relay_for_carrier)
            .await
            .unwrap();
    }
    assert_eq!(receive_rtp(&phone_rtp, 5, 0x55).await, relay_for_phone);
    for seq in 0..5 {
        phone_rtp
            .send_to(&rtp_packet(seq, 0xa6e7, 0x2a), relay_for_phone)
            .await
            .unwrap();
    }
    assert_eq!(receive_rtp(&carrier_rtp, 5, 0x2a).await, relay_for_carrier);
    assert!(relay.pairs_in_use() >= 2, "{}", relay.pairs_in_use());

    // Silence from then on: hung up on both legs after the media timeout.
    let bye = read_request(&mut phone, &mut buffer, "BYE").await;
    phone
        .write_all(response_to(&bye, "200 OK", "").as_bytes())
        .await
        .unwrap();
    let carrier_bye = loop {
        let text = receive_sip(&carrier).await;
        if text.starts_with("BYE ") {
            break text;
        }
    };
    carrier
        .send_to(
            response_to(&carrier_bye, "200 OK", "").as_bytes(),
            edge.address,
        )
        .await
        .unwrap();
    edge.until_calls(0).await;
    let freed = switchboard_test_utils::eventually(Duration::from_secs(5), || {
        let in_use = relay.pairs_in_use();
        async move { in_use == 0 }
    })
    .await;
    assert!(freed, "the call's ports are free again");
    let ended = edge.call_ended().await;
    assert_eq!(
        (ended.outcome.as_str(), ended.ended_by.as_str()),
        ("answered", "edge")
    );
    // What the relay heard of each side: five packets each (the first a
    // source's probation, RFC 3550 A.1), none lost, on a loss-free MOS.
    for (side, quality) in [
        ("caller", &ended.caller_media),
        ("callee", &ended.callee_media),
    ] {
        let quality = quality
            .as_ref()
            .unwrap_or_else(|| panic!("no {side} media: {ended:?}"));
        assert_eq!(
            (quality.packets_received, quality.packets_lost),
            (4, 0),
            "{side}: {quality:?}"
        );
        assert!(
            quality.mos > 4.4 && quality.mos <= 4.5,
            "{side}: {quality:?}"
        );
    }
}

/// A trunk named by host, whose SRV records list three servers: the
/// first answers 503, the second never answers at all, and the third
/// takes the call. The edge tries them in order (RFC 3263 §4.3), leaving
/// the silent one after `trunk_response_timeout` rather than Timer B.
#[tokio::test]
async fn an_outbound_call_fails_over_across_a_trunks_servers() {
    let (_, edge) = dialing_edge(CallOptions {
        trunk_response_timeout: Duration::from_millis(800),
        ..CallOptions::default()
    })
    .await;
    let (refusing, silent, answering) = (free_udp_port(), free_udp_port(), free_udp_port());
    let silent_server = std::net::UdpSocket::bind(("127.0.0.1", silent)).unwrap();
    silent_server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    edge.zone.lock().unwrap().extend([
        (
            ("_sip._udp.carrier.test.".to_owned(), RecordType::SRV),
            vec![
                dns::srv(30, 0, answering, "c.carrier.test."),
                dns::srv(10, 0, refusing, "a.carrier.test."),
                dns::srv(20, 0, silent, "b.carrier.test."),
            ],
        ),
        (
            ("a.carrier.test.".to_owned(), RecordType::A),
            vec![dns::a([127, 0, 0, 1])],
        ),
        (
            ("b.carrier.test.".to_owned(), RecordType::A),
            vec![dns::a([127, 0, 0, 1])],
        ),
        (
            ("c.carrier.test.".to_owned(), RecordType::A),
            vec![dns::a([127, 0, 0, 1])],
        ),
    ]);
    edge.carriers
        .add_at("backup", "carrier.test", 0, OutboundTransport::Udp);
    let unavailable = Sipp::phone("trunk_unavailable", refusing);
    let answers = Sipp::phone("trunk_answers", answering);
    settle().await;
    let phone = edge.phone_dials("phone_dials", "phone-secret", Duration::from_millis(500));
    unavailable.passes("the first server").await;
    answers.passes("the third server").await;
    phone.passes("the agent's phone").await;
    let mut buffer = [0u8; 4096];
    let (read, _) = silent_server
        .recv_from(&mut buffer)
        .expect("the second server got the INVITE");
    assert!(
        buffer[..read].starts_with(b"INVITE sip:"),
        "{}",
        String::from_utf8_lossy(&buffer[..read])
    );
    let ended = edge.call_ended().await;
    assert_eq!(
        (ended.outcome.as_str(), ended.trunk.as_str()),
        ("answered", "backup")
    );
}

/// An agent dials out from the phone: the first trunk is out of service
/// (503), so the call fails over to the second, which challenges the edge
/// and checks its credentials; the called party answers, the agent hangs
/// up, and routing heard the call placed and ended. Nothing of the
/// phone's leg reaches the carrier.
#[tokio::test]
async fn an_agent_dials_out_through_the_first_trunk_that_works() {
    let (user, edge) = dialing_edge(CallOptions::default()).await;
    let (primary, backup) = (free_udp_port(), free_udp_port());
    edge.carriers.add("primary", primary);
    edge.carriers.add("backup", backup);
    let unavailable = Sipp::phone("trunk_unavailable", primary);
    let answers = Sipp::phone("trunk_answers", backup);
    settle().await;
    let phone = edge.phone_dials("phone_dials", "phone-secret", Duration::from_millis(500));
    unavailable.passes("the primary trunk").await;
    let carrier = answers.passes("the backup trunk").await;
    phone.passes("the agent's phone").await;
    for leaked in [DOMAIN, "agent@", "SIPpTag00"] {
        assert!(
            !carrier.contains(leaked),
            "the carrier saw {leaked:?} of the phone's leg:\n{carrier}"
        );
    }
    let OutboundDecision::Place { call, .. } = edge.routing.outbound.lock().unwrap().clone() else {
        unreachable!()
    };
    assert!(heard_soon(&edge.routing, |heard| *heard == Heard::Ended(call)).await);
    assert_eq!(
        edge.routing.heard()[0],
        Heard::Outbound(OutboundCall {
            agent: AgentId::from_uuid(user.as_uuid()),
            number: "+15550100".into(),
            concerning_number: None,
        })
    );
    let records = edge.records(3).await;
    let Payload::CallStarted(started) = &records[0].payload else {
        panic!("{records:?}")
    };
    assert_eq!(
        (
            started.direction.as_str(),
            started.agent_id.clone(),
            started.caller.as_str()
        ),
        ("outbound", user.to_string(), "+442079460000")
    );
    assert!(matches!(&records[1].payload, Payload::CallAnswered(_)));
    let Payload::CallEnded(ended) = &records[2].payload else {
        panic!("{records:?}")
    };
    assert_eq!(
        (
            ended.direction.as_str(),
            ended.outcome.as_str(),
            ended.ended_by.as_str(),
            ended.trunk.as_str(),
            ended.agent_id.clone()
        ),
        ("outbound", "answered", "agent", "backup", user.to_string())
    );
    edge.until_calls(0).await;
}

/// A busy called party is the phone's answer (no failover to the next
/// trunk), and an agent routing refuses (busy with another contact) gets
/// 486 without any trunk being tried; a phone that sends no credentials
/// is challenged, one that proves another account than its From names is
/// refused 403, one that dials no number 484, and nothing reaches
/// routing.
#[tokio::test]
async fn a_busy_callee_or_a_busy_agent_gets_486_and_only_proven_phones_dial() {
    let (_, edge) = dialing_edge(CallOptions::default()).await;
    let (primary, backup) = (free_udp_port(), free_udp_port());
    edge.carriers.add("primary", primary);
    edge.carriers.add("backup", backup);
    let busy = Sipp::phone("trunk_busy", primary);
    settle().await;
    let phone = edge.phone_dials("phone_dials_busy", "phone-secret", Duration::ZERO);
    phone.passes("the agent's phone").await;
    busy.passes("the primary trunk").await;
    let OutboundDecision::Place { call, .. } = edge.routing.outbound.lock().unwrap().clone() else {
        unreachable!()
    };
    assert!(heard_soon(&edge.routing, |heard| *heard == Heard::Ended(call)).await);
    let records = edge.records(2).await;
    let Payload::CallEnded(ended) = &records[1].payload else {
        panic!("{records:?}")
    };
    assert_eq!(
        (
            ended.outcome.as_str(),
            ended.ended_by.as_str(),
            ended.sip_status
        ),
        ("unanswered", "callee", 486)
    );

    // Routing refuses: no trunk is tried (the backup's port has no one).
    *edge.routing.outbound.lock().unwrap() = OutboundDecision::Reject {
        sip_status: 486,
        reason: "the agent is busy with another contact".into(),
    };
    let phone = edge.phone_dials("phone_dials_busy", "phone-secret", Duration::ZERO);
    phone.passes("the agent's phone, refused").await;
    edge.until_calls(0).await;

    // No credentials, or a wrong password: challenged, never placed.
    let before = edge.routing.heard().len();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let answer = phone_invite(&socket, edge.address, "+15550100", "agent", "").await;
    assert!(answer.starts_with("SIP/2.0 407"), "{answer}");
    assert!(answer.contains(&format!("Proxy-Authenticate: Digest realm=\"{DOMAIN}\"")));
    // Proven, but as another account than its From names: 403. Proven,
    // dialing no number: 484. Neither reaches routing.
    let nonce = answer
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let credentials = |dialed: &str, nc: &str| {
        let uri = format!("sip:{dialed}@{DOMAIN}");
        let ha1 = Algorithm::Md5.ha1("agent", DOMAIN, "phone-secret");
        let ha2 = Algorithm::Md5.hash(&format!("INVITE:{uri}"));
        let response = Algorithm::Md5.hash(&format!("{ha1}:{nonce}:{nc}:c:auth:{ha2}"));
        format!(
            "Proxy-Authorization: Digest username=\"agent\", realm=\"{DOMAIN}\", \
             nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, \
             qop=auth, nc={nc}, cnonce=\"c\"\r\n"
        )
    };
    let impostor = phone_invite(
        &socket,
        edge.address,
        "+15550100",
        "someone",
        &credentials("+15550100", "00000001"),
    )
    .await;
    assert!(impostor.starts_with("SIP/2.0 403"), "{impostor}");
    let no_number = phone_invite(
        &socket,
        edge.address,
        "sales",
        "agent",
        &credentials("sales", "00000002"),
    )
    .await;
    assert!(no_number.starts_with("SIP/2.0 484"), "{no_number}");
    let wrong = edge.phone_dials("phone_dials", "not-the-password", Duration::ZERO);
    assert!(
        tokio::time::timeout(Duration::from_secs(30), wrong.child_status())
            .await
            .is_ok_and(|status| !status.success()),
        "a wrong password must not place a call"
    );
    assert_eq!(
        edge.routing.heard().len(),
        before,
        "routing heard nothing more"
    );
}

/// The final answer to a phone's INVITE for `dialed` at [`DOMAIN`], sent
/// from `socket` as `from` with `extra` headers (each ending in CRLF).
async fn phone_invite(
    socket: &tokio::net::UdpSocket,
    edge: SocketAddr,
    dialed: &str,
    from: &str,
    extra: &str,
) -> String {
    let id = format!("{:016x}", rand_id());
    let invite = format!(
        "INVITE sip:{dialed}@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-{id}\r\n\
         From: <sip:{from}@{DOMAIN}>;tag={id}\r\nTo: <sip:{dialed}@{DOMAIN}>\r\n\
         Call-ID: {id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:{from}@{local}>\r\n{extra}Content-Length: 0\r\n\r\n",
        local = socket.local_addr().unwrap()
    );
    socket.send_to(invite.as_bytes(), edge).await.unwrap();
    let mut buffer = vec![0u8; 4096];
    loop {
        let (read, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
        if !text.starts_with("SIP/2.0 100") && text.contains(&id) {
            return text;
        }
    }
}

/// A fresh number for a test's identifiers.
fn rand_id() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Routing loses its state during an agent's outbound call: the edge
/// connects the call to its agent again, since it was dialed, so the
/// agent stays busy with it; its end still reaches routing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_routing_forgot_is_connected_to_its_agent_again() {
    let (user, edge) = dialing_edge(CallOptions {
        audit_every: Duration::from_millis(200),
        ..CallOptions::default()
    })
    .await;
    let trunk = free_udp_port();
    edge.carriers.add("backup", trunk);
    let carrier = Sipp::phone("trunk_answers", trunk);
    settle().await;
    let dialed_at = chrono::Utc::now();
    let phone = edge.phone_dials("phone_dials", "phone-secret", Duration::from_secs(3));
    let routing = &edge.routing;
    let OutboundDecision::Place { call, .. } = routing.outbound.lock().unwrap().clone() else {
        unreachable!()
    };
    // Placed (an outbound call watches no notices: `until_calls` would wait).
    assert!(
        heard_soon(routing, |heard| matches!(heard, Heard::Outbound(_))).await,
        "the phone's call never reached routing"
    );
    routing.forgotten.store(true, Ordering::SeqCst);
    let agent = AgentId::from_uuid(user.as_uuid());
    let connected = heard_soon(routing, |heard| {
        matches!(
            heard,
            Heard::Execute(Operation::ConnectDirect { contact, agent: with, origin: DirectOrigin::PlacedByAgent, channel: Channel::Voice, since, wrap_up_ms: 0 })
                if *contact == call && *with == agent && (*since - dialed_at).num_seconds().abs() < 3
        )
    })
    .await;
    assert!(
        connected,
        "the outbound call was not put back: {:?}",
        routing.heard()
    );
    routing.forgotten.store(false, Ordering::SeqCst);
    phone.passes("the agent's phone").await;
    carrier.passes("the trunk").await;
    edge.until_calls(0).await;
    assert_eq!(routing.heard().last(), Some(&Heard::Ended(call)));
}

/// A trunk reached over TCP: the edge opens the connection, the carrier's
/// challenge and the answer come back on it, and the agent's hang-up goes
/// out on it.
#[tokio::test]
async fn an_agent_dials_out_through_a_trunk_over_tcp() {
    let (_, edge) = dialing_edge(CallOptions::default()).await;
    let port = free_udp_port();
    edge.carriers
        .add_over("primary", port, OutboundTransport::Tcp);
    let trunk = Sipp::trunk_over_tcp("trunk_answers", port);
    settle().await;
    let phone = edge.phone_dials("phone_dials", "phone-secret", Duration::from_millis(300));
    phone.passes("the agent's phone").await;
    let carrier = trunk.passes("the trunk over TCP").await;
    assert!(
        carrier.contains("INVITE sip:+15550100@127.0.0.1:"),
        "{carrier}"
    );
    assert!(carrier.contains(";transport=tcp SIP/2.0"), "{carrier}");
    assert!(carrier.contains("Via: SIP/2.0/TCP "), "{carrier}");
    edge.until_calls(0).await;
}

/// A trunk reached over TLS: the edge checks the carrier's certificate
/// against `edge.trunk_ca_file` and sends the call on the connection;
/// the carrier's busy answer reaches the phone.
#[tokio::test]
async fn an_agent_dials_out_through_a_trunk_over_tls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_, edge) = dialing_edge(CallOptions::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    edge.carriers
        .add_over("primary", port, OutboundTransport::Tls);
    let config = tls_server_config(&edge.carrier_tls.0, &edge.carrier_tls.1).unwrap();
    let carrier = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .unwrap();
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 8192];
        // The INVITE, whole (its Content-Length counted).
        let invite = loop {
            let read = tls.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the edge closed the connection");
            received.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("Content-Length: "))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break head.to_owned();
                }
            }
        };
        let mut busy = String::from("SIP/2.0 486 Busy Here\r\n");
        for line in invite.lines().skip(1) {
            let name = line.split(':').next().unwrap_or_default();
            match name {
                "Via" | "From" | "Call-ID" | "CSeq" => {
                    busy.push_str(line);
                    busy.push_str("\r\n");
                }
                "To" => busy.push_str(&format!("{line};tag=carrier\r\n")),
                _ => {}
            }
        }
        busy.push_str("Content-Length: 0\r\n\r\n");
        tls.write_all(busy.as_bytes()).await.unwrap();
        // Its ACK comes on the same connection.
        received.clear();
        while !String::from_utf8_lossy(&received).contains("\r\n\r\n") {
            let read = tls.read(&mut buffer).await.unwrap();
            assert!(read > 0, "no ACK before the connection closed");
            received.extend_from_slice(&buffer[..read]);
        }
        (invite, String::from_utf8_lossy(&received).into_owned())
    });
    let phone = edge.phone_dials("phone_dials_busy", "phone-secret", Duration::ZERO);
    phone.passes("the agent's phone").await;
    let (invite, ack) = tokio::time::timeout(Duration::from_secs(10), carrier)
        .await
        .unwrap()
        .unwrap();
    assert!(
        invite.starts_with("INVITE sip:+15550100@127.0.0.1:"),
        "{invite}"
    );
    assert!(invite.contains(";transport=tls SIP/2.0"), "{invite}");
    assert!(invite.contains("Via: SIP/2.0/TLS "), "{invite}");
    assert!(ack.starts_with("ACK "), "{ack}");
    edge.until_calls(0).await;
}

/// Routing unreachable for a moment (a replica lost): the edge asks again
/// and the call goes through; unreachable for longer, the carrier gets
/// 503 after three tries.
#[tokio::test]
async fn a_call_is_asked_of_routing_again_while_it_is_unavailable() {
    let edge = edge().await;
    edge.routing.unavailable.store(2, Ordering::SeqCst);
    let (_, phone, carrier) = edge
        .offered_call("agent_answer", "carrier_call", Duration::from_millis(200))
        .await;
    carrier.passes("the carrier").await;
    phone.passes("the agent's phone").await;
    let asked = edge
        .routing
        .heard()
        .iter()
        .filter(|heard| matches!(heard, Heard::NewCall(_)))
        .count();
    assert_eq!(asked, 3, "asked twice more after UNAVAILABLE");
    edge.until_calls(0).await;

    edge.routing.unavailable.store(3, Ordering::SeqCst);
    let carrier = Sipp::carrier(
        "carrier_refused_503",
        "442079460000",
        Duration::ZERO,
        edge.address,
    );
    let trace = carrier.passes("the refused carrier").await;
    assert!(trace.contains("SIP/2.0 503"), "{trace}");
}
