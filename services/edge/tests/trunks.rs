//! Carrier trunks on both databases (PostgreSQL as the services' and the
//! system workers' roles, under row-level security; SQLite): kept per
//! tenant with write-only passwords and their events in the outbox, and
//! the admission of a carrier's requests by source address (IPv4, IPv6,
//! networks, shared by several tenants) or digest (the one trunk proved,
//! in its own tenant; stale, forged, replayed and wrong credentials not
//! admitted), disabled trunks ignored, another replica's change seen.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sea_orm::{ConnectionTrait, Statement};
use switchboard_edge::sip::OutgoingResponse;
use switchboard_edge::sip::digest::{Algorithm, Nonces};
use switchboard_edge::trunks::{
    Admission, TrunkMatch, TrunkStore, Trunks, TrunksOptions, line_token, line_tokens,
};
use switchboard_edge_api::{InboundSpec, OutboundSpec, TrunkSpec, TrunkView};
use switchboard_events::proto::envelope::Payload;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_platform::{Cache, Database};
use switchboard_rpc::{ErrorKind, ServiceError};
use switchboard_sip::{Limits, Transport, parse};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, TenantId};
use switchboard_test_utils::{
    fresh_postgres_database, fresh_sqlite_database, init_tracing, postgres_app_role_url,
    postgres_system_role_url,
};

const REALM: &str = "sip.example.com";
const KEY: &[u8] = b"trunk-test";

struct Harness {
    admin: Database,
    database: Database,
    cache: Arc<dyn Cache>,
    trunks: Trunks,
    store: TrunkStore,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    async fn start(postgres: bool) -> Self {
        init_tracing();
        let (admin_url, dir) = if postgres {
            (fresh_postgres_database().await, None)
        } else {
            let (url, dir) = fresh_sqlite_database();
            (url, Some(dir))
        };
        let admin = Database::connect(&admin_url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(admin.connection(), None).await.unwrap();
        // The roles the services and the system workers log in as (after
        // the migration, which creates their groups).
        let (service_url, system_url) = if postgres {
            (
                postgres_app_role_url(&admin_url).await,
                postgres_system_role_url(&admin_url).await,
            )
        } else {
            (admin_url.clone(), admin_url.clone())
        };
        let database = Database::connect(&service_url, &DatabaseOptions::default())
            .await
            .unwrap()
            .with_system(
                Database::connect(&system_url, &DatabaseOptions::default())
                    .await
                    .unwrap(),
            )
            .unwrap();
        let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new());
        let trunks = replica(&database, &cache, Duration::from_secs(5));
        Self {
            store: trunks.store(),
            admin,
            database,
            cache,
            trunks,
            _dir: dir,
        }
    }

    async fn admit(&self, source: &str, request: &str) -> Admission {
        admit(&self.trunks, source, request).await
    }
}

/// Another edge on the same database and cache.
fn replica(database: &Database, cache: &Arc<dyn Cache>, refresh_every: Duration) -> Trunks {
    Trunks::new(
        database.clone(),
        cache.clone(),
        Nonces::new(KEY, Duration::from_secs(300)),
        TrunksOptions {
            refresh_every,
            ..TrunksOptions::new(REALM)
        },
    )
}

async fn admit(trunks: &Trunks, source: &str, request: &str) -> Admission {
    let (message, _) = parse(request.as_bytes(), Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    trunks
        .admit(source.parse::<IpAddr>().unwrap(), &message)
        .await
}

fn invite(extra: &str) -> String {
    format!(
        "INVITE sip:+14155550100@{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15105550199@carrier.example>;tag=c1\r\n\
         To: <sip:+14155550100@{REALM}>\r\n\
         Call-ID: call-1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:198.51.100.7>\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
}

/// `Proxy-Authorization` for an INVITE with `nonce`, as a carrier signs it.
fn proxy_authorization(username: &str, password: &str, nonce: &str, nc: &str) -> String {
    let uri = format!("sip:+14155550100@{REALM}");
    let algorithm = Algorithm::Sha256;
    let ha1 = algorithm.ha1(username, REALM, password);
    let ha2 = algorithm.hash(&format!("INVITE:{uri}"));
    let response = algorithm.hash(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
    format!(
        "Proxy-Authorization: Digest username=\"{username}\", realm=\"{REALM}\", \
         nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, \
         cnonce=\"c0ffee\", qop=auth, nc={nc}\r\n"
    )
}

/// The nonce of a 407's first challenge.
fn nonce_of(response: &OutgoingResponse) -> String {
    let challenge = &response
        .headers
        .iter()
        .find(|(name, _)| name == "Proxy-Authenticate")
        .expect("a Proxy-Authenticate challenge")
        .1;
    challenge
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

fn admitted(admission: Admission) -> Vec<TrunkMatch> {
    match admission {
        Admission::Admitted(matches) => matches,
        other => panic!("not admitted: {other:?}"),
    }
}

fn refused(admission: Admission) -> u16 {
    match admission {
        Admission::Refused(response) => response.code,
        other => panic!("not refused: {other:?}"),
    }
}

fn challenged(admission: Admission) -> OutgoingResponse {
    match admission {
        Admission::Challenge(response) => {
            assert_eq!(response.code, 407);
            response
        }
        other => panic!("not challenged: {other:?}"),
    }
}

fn by_sources(name: &str, sources: &[&str]) -> TrunkSpec {
    TrunkSpec {
        name: name.into(),
        enabled: true,
        inbound: InboundSpec {
            allowed_sources: sources.iter().map(|source| (*source).into()).collect(),
            ..InboundSpec::default()
        },
        ..TrunkSpec::default()
    }
}

fn by_digest(name: &str, username: &str, password: &str) -> TrunkSpec {
    TrunkSpec {
        name: name.into(),
        enabled: true,
        inbound: InboundSpec {
            username: Some(username.into()),
            password: Some(password.into()),
            ..InboundSpec::default()
        },
        outbound: Some(OutboundSpec {
            host: "sip.carrier.example".into(),
            port: 5061,
            transport: "tls".into(),
            username: Some("acme-out".into()),
            password: Some("outbound secret".into()),
            register: true,
            register_expires: 600,
            caller_id: Some("+14155550100".into()),
        }),
        priority: 1,
    }
}

/// The error of a call that must fail.
fn kind<T>(result: Result<T, ServiceError>) -> ServiceError {
    match result {
        Ok(_) => panic!("succeeded"),
        Err(error) => error,
    }
}

fn matched(trunk: &TrunkView, tenant: TenantId) -> TrunkMatch {
    TrunkMatch {
        tenant,
        trunk_id: trunk.id,
        name: trunk.name.clone(),
    }
}

async fn trunks_are_kept_per_tenant_with_write_only_passwords(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let store = &harness.store;
    let acme = Tenant::whole(TenantId::new());
    let globex = Tenant::whole(TenantId::new());

    let created = store
        .create(&acme, by_digest("Carrier A", "acme-in", "inbound secret"))
        .await
        .unwrap();
    assert_eq!(created.inbound_username.as_deref(), Some("acme-in"));
    assert!(created.inbound_password_set);
    let outbound = created.outbound.clone().unwrap();
    assert_eq!((outbound.port, outbound.transport.as_str()), (5061, "tls"));
    assert!(outbound.password_set && outbound.register);
    assert_eq!(store.get(&acme, created.id).await.unwrap(), created);
    assert_eq!(
        store.list(&acme, None, 10).await.unwrap(),
        std::slice::from_ref(&created)
    );

    // Another tenant sees nothing of it.
    let not_found = store.get(&globex, created.id).await.unwrap_err();
    assert_eq!(not_found.kind, ErrorKind::NotFound);
    assert!(store.list(&globex, None, 10).await.unwrap().is_empty());
    assert_eq!(
        kind(
            store
                .replace(&globex, created.id, by_sources("X", &[]))
                .await
        )
        .kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(store.delete(&globex, created.id).await).kind,
        ErrorKind::NotFound
    );
    // The inbound username is unique across tenants; a name within one.
    let taken = kind(
        store
            .create(&globex, by_digest("Carrier A", "acme-in", "another secret"))
            .await,
    );
    assert_eq!(
        (taken.kind, taken.code.as_ref()),
        (ErrorKind::Conflict, "trunk_username_taken")
    );
    let taken = kind(store.create(&acme, by_sources("Carrier A", &[])).await);
    assert_eq!(taken.code, "trunk_name_taken");
    store
        .create(&globex, by_sources("Carrier A", &["192.0.2.1"]))
        .await
        .unwrap();
    // Trunks belong to the whole tenant.
    let scoped = Tenant::scoped(
        acme.id(),
        ClientScope::from_list(Some(vec![ClientId::new()])),
    );
    let forbidden = kind(store.list(&scoped, None, 10).await);
    assert_eq!(
        (forbidden.kind, forbidden.code.as_ref()),
        (ErrorKind::Forbidden, "client_scope")
    );

    // Validation names the fields.
    let mut bad = by_digest("", "acme-in", "inbound secret");
    bad.inbound.allowed_sources = vec!["192.0.2.0/33".into()];
    bad.outbound.as_mut().unwrap().port = 70_000;
    let invalid = kind(store.create(&acme, bad).await);
    assert_eq!(invalid.kind, ErrorKind::Validation);
    let fields: Vec<&str> = invalid.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        fields,
        ["name", "inbound.allowed_sources[0]", "outbound.port"]
    );

    // A replace without passwords keeps them while the usernames stay.
    let mut spec = by_digest("Carrier A (main)", "acme-in", "unused");
    spec.inbound.password = None;
    spec.outbound.as_mut().unwrap().password = None;
    let replaced = store.replace(&acme, created.id, spec).await.unwrap();
    assert_eq!(replaced.name, "Carrier A (main)");
    assert!(replaced.inbound_password_set);
    assert!(replaced.outbound.as_ref().unwrap().password_set);
    let challenge = challenged(harness.admit("203.0.113.9", &invite("")).await);
    let nonce = nonce_of(&challenge);
    let proved = harness
        .admit(
            "203.0.113.9",
            &invite(&proxy_authorization(
                "acme-in",
                "inbound secret",
                &nonce,
                "00000001",
            )),
        )
        .await;
    assert_eq!(admitted(proved), [matched(&replaced, acme.id())]);
    // A new username needs its password.
    let mut spec = by_digest("Carrier A (main)", "acme-in-2", "unused");
    spec.inbound.password = None;
    let invalid = kind(store.replace(&acme, created.id, spec).await);
    assert_eq!(invalid.fields[0].field, "inbound.password");

    store.delete(&acme, created.id).await.unwrap();
    assert_eq!(
        kind(store.get(&acme, created.id).await).kind,
        ErrorKind::NotFound
    );

    // Every change is an event, none with a secret in it.
    let rows = harness
        .admin
        .connection()
        .query_all_raw(Statement::from_string(
            harness.admin.backend(),
            "SELECT payload FROM event_log ORDER BY seq".to_owned(),
        ))
        .await
        .unwrap();
    let mut types = Vec::new();
    for row in rows {
        let payload: Vec<u8> = row.try_get("", "payload").unwrap();
        let text = String::from_utf8_lossy(&payload);
        for secret in ["inbound secret", "outbound secret", "another secret"] {
            assert!(!text.contains(secret), "{secret} in an event");
        }
        let event = switchboard_events::Event::decode(&payload).unwrap();
        assert_eq!(event.source, "edge");
        if let Payload::TrunkCreated(created) = &event.payload {
            let trunk = created.trunk.as_ref().unwrap();
            assert!(!trunk.name.is_empty());
        }
        types.push((event.tenant, event.event_type));
    }
    assert_eq!(
        types,
        [
            (acme.id(), "trunk.created".to_owned()),
            (globex.id(), "trunk.created".to_owned()),
            (acme.id(), "trunk.updated".to_owned()),
            (acme.id(), "trunk.deleted".to_owned()),
        ]
    );
}

async fn sources_admit_every_trunk_that_lists_them(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let store = &harness.store;
    let acme = TenantId::new();
    let globex = TenantId::new();
    let a = store
        .create(
            &Tenant::whole(acme),
            by_sources("Carrier", &["192.0.2.10", "2001:db8:10::/48"]),
        )
        .await
        .unwrap();
    let b = store
        .create(
            &Tenant::whole(globex),
            by_sources("Carrier", &["192.0.2.0/24"]),
        )
        .await
        .unwrap();
    let (a, b) = (matched(&a, acme), matched(&b, globex));

    // One address, listed by both tenants (one alone, one in a network).
    let mut both = admitted(harness.admit("192.0.2.10", &invite("")).await);
    both.sort_by_key(|m| m.tenant);
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by_key(|m| m.tenant);
    assert_eq!(both, expected);
    // The same address as an IPv4-mapped IPv6 one (a dual-stack socket).
    assert_eq!(
        admitted(harness.admit("::ffff:192.0.2.10", &invite("")).await).len(),
        2
    );
    assert_eq!(
        admitted(harness.admit("192.0.2.99", &invite("")).await),
        [b]
    );
    assert_eq!(
        admitted(harness.admit("2001:db8:10:ff::1", &invite("")).await),
        [a]
    );
    // Outside every list, with no digest trunk anywhere: 403, no challenge.
    assert_eq!(refused(harness.admit("192.0.3.10", &invite("")).await), 403);
    assert_eq!(
        refused(harness.admit("2001:db8:11::1", &invite("")).await),
        403
    );
}

async fn digest_admits_the_one_trunk_it_proves_in_its_own_tenant(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let store = &harness.store;
    let acme = TenantId::new();
    let globex = TenantId::new();
    let a = store
        .create(
            &Tenant::whole(acme),
            by_digest("Carrier", "acme-in", "acme password"),
        )
        .await
        .unwrap();
    store
        .create(
            &Tenant::whole(globex),
            by_digest("Carrier", "globex-in", "globex password"),
        )
        .await
        .unwrap();
    let source = "203.0.113.50";

    let challenge = challenged(harness.admit(source, &invite("")).await);
    let offered: Vec<&str> = challenge
        .headers
        .iter()
        .filter(|(name, _)| name == "Proxy-Authenticate")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(offered.len(), 2);
    assert!(offered[0].contains(&format!("realm=\"{REALM}\"")) && offered[0].contains("SHA-256"));
    let nonce = nonce_of(&challenge);

    let signed = invite(&proxy_authorization(
        "acme-in",
        "acme password",
        &nonce,
        "00000001",
    ));
    // The match names the trunk's own tenant.
    assert_eq!(
        admitted(harness.admit(source, &signed).await),
        [matched(&a, acme)]
    );
    // The same nonce count again: a replay.
    assert_eq!(refused(harness.admit(source, &signed).await), 403);
    // The next count of the same nonce is fine.
    let next = invite(&proxy_authorization(
        "acme-in",
        "acme password",
        &nonce,
        "00000002",
    ));
    assert_eq!(
        admitted(harness.admit(source, &next).await),
        [matched(&a, acme)]
    );

    // Another tenant's password under this username, or this password
    // under the other's: refused, never admitted into either tenant.
    for (username, password) in [
        ("acme-in", "globex password"),
        ("globex-in", "acme password"),
    ] {
        let forged = invite(&proxy_authorization(username, password, &nonce, "00000003"));
        assert_eq!(
            refused(harness.admit(source, &forged).await),
            403,
            "{username}"
        );
    }
    // An unknown username.
    let unknown = invite(&proxy_authorization(
        "nobody",
        "acme password",
        &nonce,
        "00000004",
    ));
    assert_eq!(refused(harness.admit(source, &unknown).await), 403);
    // A nonce sealed by someone else's key.
    let foreign =
        Nonces::new(b"not ours", Duration::from_secs(300)).issue(REALM, SystemTime::now());
    let forged = invite(&proxy_authorization(
        "acme-in",
        "acme password",
        &foreign,
        "00000001",
    ));
    assert_eq!(refused(harness.admit(source, &forged).await), 403);
    // Ours, but too old: a new challenge, marked stale; not admitted.
    let old = Nonces::new(KEY, Duration::from_secs(300))
        .issue(REALM, SystemTime::now() - Duration::from_secs(600));
    let stale = invite(&proxy_authorization(
        "acme-in",
        "acme password",
        &old,
        "00000001",
    ));
    let again = challenged(harness.admit(source, &stale).await);
    assert!(
        again
            .headers
            .iter()
            .any(|(name, value)| name == "Proxy-Authenticate" && value.ends_with("stale=true"))
    );
    // Malformed credentials: 400.
    let malformed = invite("Proxy-Authorization: Digest username=\"acme-in\"\r\n");
    assert_eq!(refused(harness.admit(source, &malformed).await), 400);
    // The nonce count was claimed under the trunk's own tenant's prefix.
    let claimed = format!("edge:{{{acme}}}:trunk-digest:{nonce}:00000001");
    assert!(
        !harness
            .cache
            .set_if_absent(&claimed, b"1", Duration::from_secs(1))
            .await
            .unwrap()
    );
}

async fn a_disabled_trunk_admits_nothing(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let store = &harness.store;
    let acme = Tenant::whole(TenantId::new());
    let mut spec = by_digest("Carrier", "acme-in", "acme password");
    spec.inbound.allowed_sources = vec!["192.0.2.10".into()];
    let trunk = store.create(&acme, spec.clone()).await.unwrap();
    assert_eq!(
        admitted(harness.admit("192.0.2.10", &invite("")).await).len(),
        1
    );
    let nonce = nonce_of(&challenged(harness.admit("192.0.2.11", &invite("")).await));

    spec.enabled = false;
    spec.inbound.password = None;
    store.replace(&acme, trunk.id, spec).await.unwrap();
    // This process's change is seen at once.
    assert_eq!(refused(harness.admit("192.0.2.10", &invite("")).await), 403);
    let signed = invite(&proxy_authorization(
        "acme-in",
        "acme password",
        &nonce,
        "00000001",
    ));
    assert_eq!(
        refused(harness.admit("192.0.2.11", &signed).await),
        403,
        "no digest trunk is left: no challenge either"
    );
}

async fn another_replica_sees_a_change_within_its_refresh(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let other = replica(
        &harness.database,
        &harness.cache,
        Duration::from_millis(200),
    );
    assert_eq!(refused(admit(&other, "192.0.2.10", &invite("")).await), 403);
    let acme = TenantId::new();
    harness
        .store
        .create(&Tenant::whole(acme), by_sources("Carrier", &["192.0.2.10"]))
        .await
        .unwrap();
    // The replica that made the change sees it at once; the other one
    // within its refresh period.
    assert_eq!(
        admitted(harness.admit("192.0.2.10", &invite("")).await).len(),
        1
    );
    let started = Instant::now();
    loop {
        if let Admission::Admitted(matches) = admit(&other, "192.0.2.10", &invite("")).await {
            assert_eq!(matches[0].tenant, acme);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other replica never saw the new trunk"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(true).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(false).await;
                }
            )*
        }
    };
}

/// Answers nothing: the registrations' endpoint only sends requests.
struct NoRequests;

impl switchboard_edge::sip::TransactionUser for NoRequests {
    fn allows(&self, _: switchboard_sip::Method<'_>) -> bool {
        false
    }

    fn on_request(&self, _: switchboard_edge::sip::IncomingRequest) {}
}

/// A trunk that registers with its carrier (SIPp as the registrar, which
/// checks the edge's credentials itself): registered, refreshed before
/// the granted 4 s run out, its state readable by the tenant; disabled,
/// its binding removed and its state gone.
async fn a_registering_trunk_keeps_its_binding_and_removes_it_when_disabled(postgres: bool) {
    use switchboard_edge::sip::transport::{
        Connector, TransportOptions, Transports, tls_client_config,
    };
    use switchboard_edge::sip::{Endpoint, EndpointOptions};
    use switchboard_edge::trunks::registration::{RegistrationOptions, TrunkRegistrations};
    let harness = Harness::start(postgres).await;
    let tenant = Tenant::whole(TenantId::new());
    let registrar_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = |enabled: bool| TrunkSpec {
        name: "Registered".into(),
        enabled,
        outbound: Some(OutboundSpec {
            host: "127.0.0.1".into(),
            port: u32::from(registrar_port),
            transport: "udp".into(),
            username: Some("trunkuser".into()),
            password: Some("trunkpass".into()),
            register: true,
            register_expires: 120,
            caller_id: None,
        }),
        ..TrunkSpec::default()
    };
    let trunk = harness.store.create(&tenant, spec(true)).await.unwrap();

    let directory = tempfile::tempdir().unwrap();
    let mut registrar = tokio::process::Command::new("sipp")
        .current_dir(directory.path())
        .args([
            "-sf",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/sipp/carrier_registrar.xml"
            ),
        ])
        .args([
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            &registrar_port.to_string(),
        ])
        .args([
            "-timeout",
            "30s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-trace_msg",
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("SIPp (Debian sip-tester) is installed: ./scripts/test installs it");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let endpoint = Endpoint::new(EndpointOptions::default(), Arc::new(NoRequests));
    let transports = Transports::bind(
        endpoint.clone(),
        &TransportOptions {
            udp: Some("127.0.0.1:0".parse().unwrap()),
            tcp: None,
            ..TransportOptions::default()
        },
    )
    .await
    .unwrap();
    let registrations = TrunkRegistrations::new(
        harness.database.clone(),
        harness.cache.clone(),
        RegistrationOptions {
            check_every: Duration::from_millis(500),
            retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(2),
        },
    )
    .with_lines(Nonces::new(KEY, Duration::from_secs(300)));
    registrations.start(
        endpoint.clone(),
        transports.udp().unwrap().to_string(),
        Connector::new(
            endpoint,
            tls_client_config(None).unwrap(),
            Duration::from_secs(60),
        ),
    );

    // Registered for 4 s, then refreshed for 60.
    let deadline = Instant::now() + Duration::from_secs(15);
    let refreshed = loop {
        let status = registrations.status(tenant.id(), trunk.id).await;
        if let Some(status) = &status
            && status.state == "registered"
            && status
                .expires_at
                .is_some_and(|at| at > chrono::Utc::now() + chrono::Duration::seconds(30))
        {
            break status.clone();
        }
        assert!(
            Instant::now() < deadline,
            "never refreshed for 60 s: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refreshed.last_status, Some(200));
    // Another tenant's id reads nothing.
    assert_eq!(registrations.status(TenantId::new(), trunk.id).await, None);
    // The tenant reads it with the trunk, through the edge's API.
    let api = switchboard_edge::api::LocalEdge::new(
        switchboard_edge::accounts::Accounts::new(harness.database.clone(), REALM.to_owned()),
        harness.store.clone(),
    )
    .with_registrations(registrations.clone());
    use switchboard_edge_api::EdgeApi;
    let seen = api.get_trunk(&tenant, trunk.id).await.unwrap();
    let registration = seen.outbound.unwrap().registration.unwrap();
    assert_eq!(
        (registration.state.as_str(), registration.last_status),
        ("registered", Some(200))
    );

    harness
        .store
        .replace(&tenant, trunk.id, spec(false))
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), registrar.wait())
        .await
        .expect("the registrar's scenario ends")
        .unwrap();
    let messages = std::fs::read_dir(directory.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        status.success(),
        "the registrar's scenario failed:\n{messages}"
    );
    assert!(!messages.contains("403 Wrong credentials"), "{messages}");
    // The Contact carries the trunk's line, by which admission knows the
    // calls the carrier delivers to it.
    let line = line_token(&Nonces::new(KEY, Duration::from_secs(300)), trunk.id);
    assert!(
        messages.contains(&format!(";line={line}>")),
        "no line {line} in the Contact:\n{messages}"
    );
    let gone = async {
        while registrations.status(tenant.id(), trunk.id).await.is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("the state of an unregistered trunk is dropped");
}

/// A trunk that registers with its carrier admits the calls the carrier
/// sends to its registered Contact, from any address, by the `line` token
/// in their Request-URI: its own tenant's trunk only. A wrong token, the
/// token of a trunk that does not register, or a trunk no longer
/// registering admits nothing; a token of an old key still does.
async fn a_registering_trunk_admits_the_calls_sent_to_its_line(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let (acme, globex) = (
        Tenant::whole(TenantId::new()),
        Tenant::whole(TenantId::new()),
    );
    let registering = |name: &str, register: bool| TrunkSpec {
        name: name.into(),
        enabled: true,
        outbound: Some(OutboundSpec {
            host: "carrier.example".into(),
            port: 5060,
            transport: "udp".into(),
            username: Some("acct".into()),
            password: Some("carrier secret".into()),
            register,
            register_expires: 300,
            caller_id: None,
        }),
        ..TrunkSpec::default()
    };
    let ours = harness
        .store
        .create(&acme, registering("Registered", true))
        .await
        .unwrap();
    let silent = harness
        .store
        .create(&acme, registering("Not registered", false))
        .await
        .unwrap();
    let theirs = harness
        .store
        .create(&globex, registering("Registered", true))
        .await
        .unwrap();
    let nonces = Nonces::new(KEY, Duration::from_secs(300));
    let to_line = |token: &str| {
        invite("").replacen(
            &format!("INVITE sip:+14155550100@{REALM} "),
            &format!("INVITE sip:acct@203.0.113.1:5060;line={token} "),
            1,
        )
    };
    let carrier = "198.51.100.50";
    assert_eq!(
        admitted(
            harness
                .admit(carrier, &to_line(&line_token(&nonces, ours.id)))
                .await
        ),
        vec![matched(&ours, acme.id())]
    );
    assert_eq!(
        admitted(
            harness
                .admit(carrier, &to_line(&line_token(&nonces, theirs.id)))
                .await
        ),
        vec![matched(&theirs, globex.id())]
    );
    for token in [
        line_token(&nonces, silent.id),
        "00000000000000000000".to_owned(),
        line_token(
            &Nonces::new(b"another key", Duration::from_secs(300)),
            ours.id,
        ),
    ] {
        assert_eq!(refused(harness.admit(carrier, &to_line(&token)).await), 403);
    }

    // The keys rotate: a token of the previous key is still known (the
    // binding the carrier holds was registered with it), the new one too.
    let rotated = Nonces::with_keys(
        vec![b"the new key".to_vec(), KEY.to_vec()],
        Duration::from_secs(300),
    );
    let replica = Trunks::new(
        harness.database.clone(),
        harness.cache.clone(),
        rotated.clone(),
        TrunksOptions::new(REALM),
    );
    let tokens = line_tokens(&rotated, ours.id);
    assert_eq!(tokens[1], line_token(&nonces, ours.id));
    for token in &tokens {
        assert_eq!(
            admitted(admit(&replica, carrier, &to_line(token)).await),
            vec![matched(&ours, acme.id())]
        );
    }

    // No longer registering: its line admits nothing.
    harness
        .store
        .replace(&acme, ours.id, registering("Registered", false))
        .await
        .unwrap();
    assert_eq!(
        refused(
            harness
                .admit(carrier, &to_line(&line_token(&nonces, ours.id)))
                .await
        ),
        403
    );
}

/// An outbound call's trunks are its tenant's own: another tenant's trunk
/// of the same name is never dialed, and a disabled trunk or one without
/// outbound settings is left out; the order asked is kept.
async fn outbound_targets_are_the_tenants_own(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let (acme, globex) = (
        Tenant::whole(TenantId::new()),
        Tenant::whole(TenantId::new()),
    );
    let outbound = |name: &str, host: &str, enabled: bool| TrunkSpec {
        name: name.into(),
        enabled,
        outbound: Some(OutboundSpec {
            host: host.into(),
            port: 5060,
            transport: "udp".into(),
            username: Some(format!("{name}-user").replace(' ', "-")),
            password: Some("outbound secret".into()),
            ..OutboundSpec::default()
        }),
        ..TrunkSpec::default()
    };
    let store = &harness.store;
    store
        .create(&acme, outbound("Primary", "acme.carrier.example", true))
        .await
        .unwrap();
    store
        .create(&acme, outbound("Backup", "backup.carrier.example", true))
        .await
        .unwrap();
    store
        .create(&acme, outbound("Off", "off.carrier.example", false))
        .await
        .unwrap();
    store
        .create(&acme, by_sources("Inbound only", &["192.0.2.1"]))
        .await
        .unwrap();
    store
        .create(&globex, outbound("Primary", "globex.carrier.example", true))
        .await
        .unwrap();
    let names: Vec<String> = ["Backup", "Off", "Inbound only", "Primary", "Nowhere"]
        .map(String::from)
        .to_vec();
    let targets = store.outbound_targets(acme.id(), &names).await.unwrap();
    let seen: Vec<(&str, &str)> = targets
        .iter()
        .map(|target| (target.trunk.as_str(), target.host.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("Backup", "backup.carrier.example"),
            ("Primary", "acme.carrier.example")
        ]
    );
    assert_eq!(targets[1].password.as_deref(), Some("outbound secret"));
    let theirs = store
        .outbound_targets(globex.id(), &["Primary".to_owned()])
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].host, "globex.carrier.example");
}

on_both_databases!(
    a_registering_trunk_admits_the_calls_sent_to_its_line,
    outbound_targets_are_the_tenants_own,
    a_registering_trunk_keeps_its_binding_and_removes_it_when_disabled,
    trunks_are_kept_per_tenant_with_write_only_passwords,
    sources_admit_every_trunk_that_lists_them,
    digest_admits_the_one_trunk_it_proves_in_its_own_tenant,
    a_disabled_trunk_admits_nothing,
    another_replica_sees_a_change_within_its_refresh,
);
