//! The identity service in process, on PostgreSQL (as the non-owner
//! service role, under row-level security) and on SQLite: what must hold
//! under concurrency and under attack.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use switchboard_auth::{LoginThrottle, SigningKey, ThrottlePolicy, TokenKeys};
use switchboard_identity::{
    Identity, IdentityError, IdentityOptions, NewApiKey, NewUser, Principal, RequestOrigin,
    SignupRequest, UserPatch,
};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_test_utils::{
    fresh_postgres_database, fresh_sqlite_database, init_tracing, postgres_app_role_url,
};

const PASSWORD: &str = "correct horse battery staple";

struct Setup {
    identity: Identity,
    admin: Database,
    _dir: Option<tempfile::TempDir>,
}

async fn setup(postgres: bool) -> Setup {
    init_tracing();
    let (admin_url, service_url, dir) = if postgres {
        let url = fresh_postgres_database().await;
        let admin = Database::connect(&url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(admin.connection(), None).await.unwrap();
        admin.close().await;
        let service = postgres_app_role_url(&url).await;
        (url, service, None)
    } else {
        let (url, dir) = fresh_sqlite_database();
        let admin = Database::connect(&url, &DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(admin.connection(), None).await.unwrap();
        (url.clone(), url, Some(dir))
    };
    let options = DatabaseOptions {
        max_connections: 16,
        ..DatabaseOptions::default()
    };
    let database = Database::connect(&service_url, &options).await.unwrap();
    let admin = Database::connect(&admin_url, &DatabaseOptions::default())
        .await
        .unwrap();
    let keys = TokenKeys::new(vec![
        SigningKey::new("t", b"identity-test-secret-of-32-bytes-or-more".to_vec()).unwrap(),
    ])
    .unwrap();
    let throttle = LoginThrottle::new(Arc::new(MemoryCache::new()), ThrottlePolicy::default());
    Setup {
        identity: Identity::new(database, keys, throttle, IdentityOptions::default())
            .with_credential_cache(Arc::new(MemoryCache::new())),
        admin,
        _dir: dir,
    }
}

/// A verified trial tenant (3 seats) and its owner.
async fn owner(identity: &Identity, company: &str) -> Principal {
    let origin = RequestOrigin::default();
    let outcome = identity
        .signup(
            SignupRequest {
                company: company.into(),
                email: "owner@example.com".into(),
                password: PASSWORD.into(),
                display_name: None,
                plan: "trial".into(),
                time_zone: "UTC".into(),
            },
            &origin,
        )
        .await
        .unwrap();
    identity
        .verify_email(&outcome.verification_token, &origin)
        .await
        .unwrap();
    identity
        .authenticate_access_token(&outcome.tokens.access_token)
        .await
        .unwrap()
}

async fn count(admin: &Database, sql: &str) -> i64 {
    let row = admin
        .connection()
        .query_one_raw(Statement::from_string(admin.backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn concurrent_hires_never_exceed_the_seat_limit(setup: Setup) {
    let owner = owner(&setup.identity, "Busy Hiring").await;
    let hires = (0..10).map(|n| {
        let identity = setup.identity.clone();
        let owner = owner.clone();
        tokio::spawn(async move {
            identity
                .create_user(
                    &owner,
                    NewUser {
                        email: format!("agent{n}@example.com"),
                        display_name: None,
                        roles: vec!["agent".into()],
                        clients: None,
                        password: None,
                    },
                    &RequestOrigin::default(),
                )
                .await
        })
    });
    let mut hired = 0;
    for result in futures_join(hires).await {
        match result {
            Ok(_) => hired += 1,
            Err(IdentityError::Conflict {
                code: "seat_limit_reached",
                ..
            }) => {}
            // SQLite serializes writers; a writer that lost the race may be
            // told the database is busy instead. It wrote nothing either.
            Err(IdentityError::Internal(detail) | IdentityError::Unavailable(detail))
                if detail.contains("locked") || detail.contains("busy") => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(hired, 3, "exactly the plan's 3 seats");
    let tenant = setup.identity.get_tenant(&owner).await.unwrap();
    assert_eq!(tenant.seats_used, 3);
    assert_eq!(
        count(&setup.admin, "SELECT COUNT(*) AS n FROM users").await,
        4,
        "owner + 3 agents"
    );
    assert_eq!(
        count(&setup.admin, "SELECT COUNT(*) AS n FROM seat_changes").await,
        3,
        "one record per seat taken"
    );
    assert_eq!(
        count(
            &setup.admin,
            "SELECT CAST(MAX(seats) AS BIGINT) AS n FROM seat_changes"
        )
        .await,
        3
    );

    // Disabling an agent frees a seat, and that is recorded too.
    let users = setup.identity.list_users(&owner, None, 10).await.unwrap();
    let agent = users
        .iter()
        .find(|user| user.email != "owner@example.com")
        .unwrap();
    setup
        .identity
        .update_user(
            &owner,
            agent.id,
            UserPatch {
                status: Some("disabled".into()),
                ..UserPatch::default()
            },
            &RequestOrigin::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        setup.identity.get_tenant(&owner).await.unwrap().seats_used,
        2
    );
    assert_eq!(
        count(&setup.admin, "SELECT COUNT(*) AS n FROM seat_changes").await,
        4
    );
    assert_eq!(
        count(
            &setup.admin,
            "SELECT CAST(MIN(delta) AS BIGINT) AS n FROM seat_changes"
        )
        .await,
        -1
    );
}

async fn futures_join<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        results.push(task.await.unwrap());
    }
    results
}

async fn repeated_failed_logins_are_throttled_without_revealing_the_account(setup: Setup) {
    let owner = owner(&setup.identity, "Guarded").await;
    let slug = setup.identity.get_tenant(&owner).await.unwrap().slug;
    let origin = RequestOrigin {
        address: Some("203.0.113.9".into()),
    };
    for account in ["owner@example.com", "nobody@example.com"] {
        for _ in 0..5 {
            let error = setup
                .identity
                .login(&slug, account, "wrong password!", &origin)
                .await
                .unwrap_err();
            assert!(
                matches!(error, IdentityError::Unauthenticated(_)),
                "{error:?}"
            );
        }
        // Past the free attempts, even the right password waits.
        let error = setup
            .identity
            .login(&slug, account, PASSWORD, &origin)
            .await
            .unwrap_err();
        let IdentityError::Throttled { retry_after } = error else {
            panic!("expected throttling, got {error:?}")
        };
        assert!(
            retry_after > Duration::ZERO && retry_after <= Duration::from_secs(15 * 60),
            "{retry_after:?}"
        );
    }
    // Another account of the tenant is not affected.
    setup
        .identity
        .create_user(
            &owner,
            NewUser {
                email: "admin@example.com".into(),
                display_name: None,
                roles: vec!["admin".into()],
                clients: None,
                password: Some(PASSWORD.into()),
            },
            &origin,
        )
        .await
        .unwrap();
    setup
        .identity
        .login(&slug, "admin@example.com", PASSWORD, &origin)
        .await
        .unwrap();
}

async fn revocations_take_effect_at_once_through_the_credential_cache(setup: Setup) {
    let identity = &setup.identity;
    let origin = RequestOrigin::default();
    let owner = owner(identity, "Cached Co").await;
    let key = identity
        .create_api_key(
            &owner,
            switchboard_identity::NewApiKey {
                name: "k".into(),
                scopes: vec!["read".into()],
                expires_at: None,
            },
            &origin,
        )
        .await
        .unwrap();
    // Served twice: the second time from the cache.
    identity.authenticate_api_key(&key.secret).await.unwrap();
    identity.authenticate_api_key(&key.secret).await.unwrap();
    identity
        .revoke_api_key(&owner, key.key.id, &origin)
        .await
        .unwrap();
    assert!(matches!(
        identity.authenticate_api_key(&key.secret).await,
        Err(IdentityError::Unauthenticated(_))
    ));

    // A user's session ends at once when the user is disabled.
    identity
        .create_user(
            &owner,
            NewUser {
                email: "admin@example.com".into(),
                display_name: None,
                roles: vec!["admin".into()],
                clients: None,
                password: Some(PASSWORD.into()),
            },
            &origin,
        )
        .await
        .unwrap();
    let slug = identity.get_tenant(&owner).await.unwrap().slug;
    let tokens = identity
        .login(&slug, "admin@example.com", PASSWORD, &origin)
        .await
        .unwrap();
    let admin = identity
        .authenticate_access_token(&tokens.access_token)
        .await
        .unwrap();
    identity
        .authenticate_access_token(&tokens.access_token)
        .await
        .unwrap();
    let switchboard_identity::Actor::User { id, .. } = admin.actor else {
        panic!("a user")
    };
    identity
        .update_user(
            &owner,
            id,
            UserPatch {
                status: Some("disabled".into()),
                ..UserPatch::default()
            },
            &origin,
        )
        .await
        .unwrap();
    assert!(
        identity
            .authenticate_access_token(&tokens.access_token)
            .await
            .is_err()
    );

    // Logout ends a session at once.
    let tokens = identity
        .login(&slug, "owner@example.com", PASSWORD, &origin)
        .await
        .unwrap();
    let session = identity
        .authenticate_access_token(&tokens.access_token)
        .await
        .unwrap();
    identity.logout_session(&session).await.unwrap();
    assert!(
        identity
            .authenticate_access_token(&tokens.access_token)
            .await
            .is_err()
    );

    // A plan change is seen by the next request.
    let tokens = identity
        .login(&slug, "owner@example.com", PASSWORD, &origin)
        .await
        .unwrap();
    let before = identity
        .authenticate_access_token(&tokens.access_token)
        .await
        .unwrap();
    let fresh_owner = before.clone();
    identity
        .update_tenant(
            &fresh_owner,
            switchboard_identity::TenantPatch {
                plan: Some("pro".into()),
                ..Default::default()
            },
            &origin,
        )
        .await
        .unwrap();
    let after = identity
        .authenticate_access_token(&tokens.access_token)
        .await
        .unwrap();
    assert!(after.limits.requests_per_second > before.limits.requests_per_second);
}

/// The event types in the outbox, in order.
async fn event_types(admin: &Database) -> Vec<String> {
    admin
        .connection()
        .query_all_raw(Statement::from_string(
            admin.backend(),
            "SELECT event_type FROM event_log ORDER BY seq".to_owned(),
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "event_type").unwrap())
        .collect()
}

async fn every_change_writes_its_event_and_a_refused_one_writes_none(setup: Setup) {
    let identity = &setup.identity;
    let origin = RequestOrigin::default();
    let owner = owner(identity, "Eventful").await;
    let agent = NewUser {
        email: "agent@example.com".into(),
        display_name: None,
        roles: vec!["agent".into()],
        clients: None,
        password: Some(PASSWORD.into()),
    };
    let (agent_view, _) = identity
        .create_user(&owner, agent.clone(), &origin)
        .await
        .unwrap();
    // Refused (email taken): its transaction, events included, is dropped.
    let refused = identity.create_user(&owner, agent, &origin).await;
    assert!(matches!(refused, Err(IdentityError::Conflict { .. })));
    let key = identity
        .create_api_key(
            &owner,
            NewApiKey {
                name: "crm".into(),
                scopes: vec!["users:read".into()],
                expires_at: None,
            },
            &origin,
        )
        .await
        .unwrap();
    identity
        .revoke_api_key(&owner, key.key.id, &origin)
        .await
        .unwrap();
    identity
        .update_user(
            &owner,
            agent_view.id,
            UserPatch {
                display_name: Some("Agent Smith".into()),
                ..UserPatch::default()
            },
            &origin,
        )
        .await
        .unwrap();
    identity
        .delete_user(&owner, agent_view.id, &origin)
        .await
        .unwrap();
    assert_eq!(
        event_types(&setup.admin).await,
        [
            "tenant.created",
            "user.created",
            "user.created",
            "seat.count_changed",
            "api_key.created",
            "api_key.revoked",
            "user.updated",
            "user.deleted",
            "seat.count_changed",
        ]
    );
    // Payloads decode, carry the tenant, and never a password hash.
    let rows = setup
        .admin
        .connection()
        .query_all_raw(Statement::from_string(
            setup.admin.backend(),
            "SELECT payload, routing_key FROM event_log ORDER BY seq".to_owned(),
        ))
        .await
        .unwrap();
    for row in rows {
        let payload: Vec<u8> = row.try_get("", "payload").unwrap();
        let routing_key: String = row.try_get("", "routing_key").unwrap();
        let event = switchboard_events::Event::decode(&payload).unwrap();
        assert_eq!(event.tenant, owner.tenant.id());
        assert_eq!(routing_key, event.routing_key());
        assert!(!String::from_utf8_lossy(&payload).contains("argon2"));
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    tokio::time::timeout(std::time::Duration::from_secs(120), super::$name(super::setup(true).await)).await.expect("timed out");
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    tokio::time::timeout(std::time::Duration::from_secs(120), super::$name(super::setup(false).await)).await.expect("timed out");
                }
            )*
        }
    };
}

on_both_backends!(
    concurrent_hires_never_exceed_the_seat_limit,
    every_change_writes_its_event_and_a_refused_one_writes_none,
    repeated_failed_logins_are_throttled_without_revealing_the_account,
    revocations_take_effect_at_once_through_the_credential_cache,
);
