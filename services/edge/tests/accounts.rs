//! The edge's SIP accounts and tenant domains on both databases
//! (PostgreSQL as the services' and the system workers' roles, under
//! row-level security; SQLite): issued once, rotated, found by their
//! tenant's domain only, following identity's events, and good for a
//! REGISTER.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_edge::accounts::{AccountError, Accounts};
use switchboard_edge::registrar::{Registrar, RegistrarOptions, SipDirectory};
use switchboard_edge::sip::digest::{Algorithm, Nonces};
use switchboard_events::Event;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_sip::{Limits, Transport, parse};
use switchboard_tenancy::{TenantId, UserId};
use switchboard_test_utils::{
    fresh_postgres_database, fresh_sqlite_database, init_tracing, postgres_app_role_url,
    postgres_system_role_url,
};

const SIP_DOMAIN: &str = "sip.example.com";

struct Harness {
    accounts: Accounts,
    database: Database,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    async fn start(postgres: bool) -> Self {
        init_tracing();
        let (service_url, system_url, dir) = if postgres {
            let url = fresh_postgres_database().await;
            let admin = Database::connect(&url, &DatabaseOptions::default())
                .await
                .unwrap();
            Migrator::up(admin.connection(), None).await.unwrap();
            admin.close().await;
            (
                postgres_app_role_url(&url).await,
                postgres_system_role_url(&url).await,
                None,
            )
        } else {
            let (url, dir) = fresh_sqlite_database();
            let admin = Database::connect(&url, &DatabaseOptions::default())
                .await
                .unwrap();
            Migrator::up(admin.connection(), None).await.unwrap();
            admin.close().await;
            (url.clone(), url, Some(dir))
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
        Self {
            accounts: Accounts::new(database.clone(), SIP_DOMAIN),
            database,
            _dir: dir,
        }
    }

    /// Applies one of identity's events as the projection's consumer does.
    async fn apply(&self, tenant: TenantId, payload: Payload, at: chrono::DateTime<Utc>) {
        let event = Event::at(tenant, "identity", at, payload);
        let projection = self.accounts.identity_projection();
        let transaction = self.database.begin_tenant(tenant.as_uuid()).await.unwrap();
        projection.handle(&transaction, &event).await.unwrap();
        transaction.commit().await.unwrap();
        projection.committed(std::slice::from_ref(&event)).await;
    }

    async fn signed_up(&self, slug: &str) -> TenantId {
        let tenant = TenantId::new();
        self.apply(
            tenant,
            Payload::TenantCreated(proto::TenantCreated {
                tenant_id: tenant.to_string(),
                name: slug.to_owned(),
                slug: slug.to_owned(),
                plan_code: "trial".into(),
                time_zone: "UTC".into(),
                owner_user_id: UserId::new().to_string(),
                call_limits: Some(proto::CallLimits {
                    max_concurrent_calls: 2,
                    calls_per_second: 1,
                }),
            }),
            Utc::now(),
        )
        .await;
        tenant
    }

    async fn user_status(
        &self,
        tenant: TenantId,
        user: UserId,
        status: &str,
        at: chrono::DateTime<Utc>,
    ) {
        self.apply(
            tenant,
            Payload::UserUpdated(proto::UserUpdated {
                user: Some(proto::User {
                    user_id: user.to_string(),
                    email: "agent@example.com".into(),
                    display_name: "Agent".into(),
                    roles: vec!["agent".into()],
                    status: status.into(),
                    all_clients: true,
                    client_ids: Vec::new(),
                }),
            }),
            at,
        )
        .await;
    }
}

async fn accounts_are_issued_rotated_and_found_by_their_tenants_domain(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let accounts = &harness.accounts;
    let acme = harness.signed_up("acme").await;
    let agent = UserId::new();

    let issued = accounts.issue(acme, agent).await.unwrap();
    assert_eq!(issued.domain, "acme.sip.example.com");
    assert_eq!(issued.password.len(), 24);
    assert!(
        issued.username.starts_with('a') && issued.username.len() == 13,
        "{issued:?}"
    );

    assert_eq!(
        accounts
            .tenant_of_domain("acme.sip.example.com")
            .await
            .unwrap(),
        Some(acme)
    );
    for foreign in [
        "other.sip.example.com",
        "acme.example.org",
        "sip.example.com",
        "x.acme.sip.example.com",
    ] {
        assert_eq!(
            accounts.tenant_of_domain(foreign).await.unwrap(),
            None,
            "{foreign}"
        );
    }
    let found = accounts
        .account(acme, &issued.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user, agent);
    assert_eq!(
        found.ha1_sha256,
        Algorithm::Sha256.ha1(&issued.username, &issued.domain, &issued.password)
    );
    assert_eq!(
        found.ha1_md5,
        Algorithm::Md5.ha1(&issued.username, &issued.domain, &issued.password)
    );

    let rotated = accounts.issue(acme, agent).await.unwrap();
    assert_eq!(rotated.username, issued.username, "the username stays");
    assert_ne!(rotated.password, issued.password);
    let found = accounts
        .account(acme, &issued.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.ha1_sha256,
        Algorithm::Sha256.ha1(&rotated.username, &rotated.domain, &rotated.password),
        "the old password no longer matches"
    );

    assert!(accounts.revoke(acme, agent).await.unwrap());
    assert!(
        accounts
            .account(acme, &issued.username)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!accounts.revoke(acme, agent).await.unwrap());
}

async fn a_tenant_never_reaches_another_tenants_accounts(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let accounts = &harness.accounts;
    let acme = harness.signed_up("acme").await;
    let globex = harness.signed_up("globex").await;
    let globex_agent = accounts.issue(globex, UserId::new()).await.unwrap();
    assert!(
        accounts
            .account(acme, &globex_agent.username)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        accounts
            .account(globex, &globex_agent.username)
            .await
            .unwrap()
            .is_some()
    );
    // Revoking with the wrong tenant removes nothing.
    let globex_user = accounts
        .account(globex, &globex_agent.username)
        .await
        .unwrap()
        .unwrap()
        .user;
    assert!(!accounts.revoke(acme, globex_user).await.unwrap());
    assert!(
        accounts
            .account(globex, &globex_agent.username)
            .await
            .unwrap()
            .is_some()
    );
}

async fn accounts_follow_their_users_in_identitys_events(postgres: bool) {
    let harness = Harness::start(postgres).await;
    let accounts = &harness.accounts;
    // Before the tenant's slug arrives, nothing can be issued.
    let early = TenantId::new();
    assert!(matches!(
        accounts.issue(early, UserId::new()).await,
        Err(AccountError::DomainUnknown)
    ));
    let acme = harness.signed_up("acme").await;
    let agent = UserId::new();
    let issued = accounts.issue(acme, agent).await.unwrap();
    let t0 = Utc::now();

    harness.user_status(acme, agent, "disabled", t0).await;
    assert!(
        accounts
            .account(acme, &issued.username)
            .await
            .unwrap()
            .is_none(),
        "disabled"
    );
    // An older event (delivered late) does not undo the newer one.
    harness
        .user_status(acme, agent, "active", t0 - chrono::Duration::seconds(5))
        .await;
    assert!(
        accounts
            .account(acme, &issued.username)
            .await
            .unwrap()
            .is_none(),
        "still disabled"
    );
    harness
        .user_status(acme, agent, "active", t0 + chrono::Duration::seconds(5))
        .await;
    assert!(
        accounts
            .account(acme, &issued.username)
            .await
            .unwrap()
            .is_some(),
        "enabled again"
    );

    harness
        .apply(
            acme,
            Payload::UserDeleted(proto::UserDeleted {
                user_id: agent.to_string(),
            }),
            t0 + chrono::Duration::seconds(10),
        )
        .await;
    assert!(
        accounts
            .account(acme, &issued.username)
            .await
            .unwrap()
            .is_none(),
        "gone with the user"
    );
}

async fn an_issued_account_registers_a_phone_until_it_stops_working(postgres: bool) {
    let mut harness = Harness::start(postgres).await;
    let cache: Arc<dyn switchboard_platform::Cache> = Arc::new(MemoryCache::new());
    harness.accounts = harness
        .accounts
        .clone()
        .with_registrations(switchboard_edge::registrar::Bindings::new(cache.clone()));
    let acme = harness.signed_up("acme").await;
    let agent = UserId::new();
    let issued = harness.accounts.issue(acme, agent).await.unwrap();
    let registrar = Registrar::new(
        Arc::new(harness.accounts.clone()),
        cache,
        Nonces::new(b"test", Duration::from_secs(300)),
        RegistrarOptions::default(),
    );
    let register = |authorization: &str| {
        format!(
            "REGISTER sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-{n}\r\n\
             From: <sip:{user}@{domain}>;tag=p\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: reg-1\r\n\
             CSeq: {n} REGISTER\r\n\
             Contact: <sip:{user}@192.0.2.10>\r\n\
             {authorization}\
             Content-Length: 0\r\n\r\n",
            domain = issued.domain,
            user = issued.username,
            n = authorization.len() + 1,
        )
    };
    let send = |text: String| {
        let registrar = &registrar;
        async move {
            let (message, _) = parse(text.as_bytes(), Transport::Datagram, &Limits::default())
                .unwrap()
                .unwrap();
            registrar.register(&message, "udp:192.0.2.10:5060").await
        }
    };
    let challenge = send(register("")).await;
    assert_eq!(challenge.code, 401);
    let header = &challenge
        .headers
        .iter()
        .find(|(name, _)| name == "WWW-Authenticate")
        .unwrap()
        .1;
    let nonce = header
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let uri = format!("sip:{}", issued.domain);
    let ha1 = Algorithm::Sha256.ha1(&issued.username, &issued.domain, &issued.password);
    let ha2 = Algorithm::Sha256.hash(&format!("REGISTER:{uri}"));
    let response = Algorithm::Sha256.hash(&format!("{ha1}:{nonce}:00000001:c:auth:{ha2}"));
    let authorization = format!(
        "Authorization: Digest username=\"{}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=SHA-256, cnonce=\"c\", qop=auth, nc=00000001\r\n",
        issued.username, issued.domain
    );
    let ok = send(register(&authorization)).await;
    assert_eq!(ok.code, 200, "{ok:?}");
    let bound = registrar
        .bindings()
        .of(acme, agent, std::time::SystemTime::now())
        .await
        .unwrap();
    assert_eq!(bound.len(), 1);
    // The user is disabled: their phones' registrations go at once.
    harness
        .user_status(acme, agent, "disabled", Utc::now())
        .await;
    let now = std::time::SystemTime::now();
    assert!(
        registrar
            .bindings()
            .of(acme, agent, now)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A tenant's call limits come with its `tenant.created` and follow its
/// `tenant.plan_changed`; another tenant's stay as they were, and a late
/// (older) event changes nothing.
async fn a_tenants_call_limits_follow_its_plan(postgres: bool) {
    use switchboard_edge::accounts::CallLimits;
    let harness = Harness::start(postgres).await;
    let first = harness.signed_up("limits-one").await;
    let second = harness.signed_up("limits-two").await;
    let trial = Some(CallLimits {
        max_concurrent_calls: 2,
        calls_per_second: 1,
    });
    assert_eq!(harness.accounts.call_limits(first).await.unwrap(), trial);

    let changed = |concurrent, per_second| {
        Payload::TenantPlanChanged(proto::TenantPlanChanged {
            plan_code: "pro".into(),
            seat_limit: 500,
            call_limits: Some(proto::CallLimits {
                max_concurrent_calls: concurrent,
                calls_per_second: per_second,
            }),
        })
    };
    let later = Utc::now() + chrono::Duration::seconds(10);
    harness.apply(first, changed(500, 50), later).await;
    let pro = Some(CallLimits {
        max_concurrent_calls: 500,
        calls_per_second: 50,
    });
    assert_eq!(harness.accounts.call_limits(first).await.unwrap(), pro);
    assert_eq!(harness.accounts.call_limits(second).await.unwrap(), trial);
    harness
        .apply(first, changed(3, 3), later - chrono::Duration::seconds(5))
        .await;
    assert_eq!(harness.accounts.call_limits(first).await.unwrap(), pro);

    // Known by its slug alone (the demo seed), or not at all: no limit.
    let seeded = TenantId::new();
    harness
        .accounts
        .record_tenant(seeded, "limits-seeded")
        .await
        .unwrap();
    assert_eq!(harness.accounts.call_limits(seeded).await.unwrap(), None);
    assert_eq!(
        harness.accounts.call_limits(TenantId::new()).await.unwrap(),
        None
    );
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

on_both_databases!(
    accounts_are_issued_rotated_and_found_by_their_tenants_domain,
    a_tenant_never_reaches_another_tenants_accounts,
    accounts_follow_their_users_in_identitys_events,
    an_issued_account_registers_a_phone_until_it_stops_working,
    a_tenants_call_limits_follow_its_plan,
);
