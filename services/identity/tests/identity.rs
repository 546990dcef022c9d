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
    /// As the service connects.
    database: Database,
    admin: Database,
    _dir: Option<tempfile::TempDir>,
}

async fn setup(postgres: bool) -> Setup {
    setup_with(postgres, IdentityOptions::default()).await
}

async fn setup_with(postgres: bool, identity_options: IdentityOptions) -> Setup {
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
        identity: Identity::new(database.clone(), keys, throttle, identity_options)
            .with_credential_cache(Arc::new(MemoryCache::new())),
        database,
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
    identity.set_plan(&slug, "pro").await.unwrap();
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
    // What routing keeps of identity: client organizations, time zone.
    let client = identity
        .create_client(
            &owner,
            switchboard_identity::NewClient {
                name: "Acme".into(),
            },
            &origin,
        )
        .await
        .unwrap();
    identity
        .update_tenant(
            &owner,
            switchboard_identity::TenantPatch {
                time_zone: Some("Europe/Paris".into()),
                ..Default::default()
            },
            &origin,
        )
        .await
        .unwrap();
    identity
        .delete_client(&owner, client.id, &origin)
        .await
        .unwrap();
    let slug = identity.get_tenant(&owner).await.unwrap().slug;
    identity.set_plan(&slug, "pro").await.unwrap();
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
            "client.created",
            "tenant.updated",
            "client.deleted",
            "tenant.plan_changed",
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
        use switchboard_events::proto::{CallLimits, envelope::Payload};
        match &event.payload {
            Payload::TenantUpdated(updated) => {
                assert_eq!(updated.time_zone, "Europe/Paris");
                assert_eq!(updated.tenant_id, owner.tenant.id().to_string());
            }
            // Each plan's call limits, as migration 13 sets them.
            Payload::TenantCreated(created) => assert_eq!(
                created.call_limits,
                Some(CallLimits {
                    max_concurrent_calls: 2,
                    calls_per_second: 1
                })
            ),
            Payload::TenantPlanChanged(changed) => {
                assert_eq!(changed.plan_code, "pro");
                assert_eq!(changed.seat_limit, 500);
                assert_eq!(
                    changed.call_limits,
                    Some(CallLimits {
                        max_concurrent_calls: 500,
                        calls_per_second: 50
                    })
                );
            }
            _ => {}
        }
        assert_eq!(routing_key, event.routing_key());
        assert!(!String::from_utf8_lossy(&payload).contains("argon2"));
    }
}

async fn another_services_audit_entry_is_recorded_once_as_sent(setup: Setup) {
    use switchboard_events::AuditEntry;
    let identity = &setup.identity;
    let owner = owner(identity, "Audited").await;
    let tenant = owner.tenant.id();
    let actor = uuid::Uuid::now_v7();
    let target = uuid::Uuid::now_v7();
    let entry = AuditEntry {
        actor_type: "user".into(),
        actor_id: Some(actor),
        action: "routing.queue_created".into(),
        target_type: "queue".into(),
        target_id: Some(target),
        client_address: None,
        client_ids: Vec::new(),
        details: serde_json::json!({ "definition": { "name": "Billing" } }),
    };
    let event = entry.event(tenant, "routing");
    let handler = identity.audit_intake();
    // Delivered twice (a redelivery, a replay that bypassed the marks):
    // one entry.
    for _ in 0..2 {
        let transaction = setup.database.begin_tenant(tenant.as_uuid()).await.unwrap();
        handler.handle(&transaction, &event).await.unwrap();
        transaction.commit().await.unwrap();
    }
    let events = identity.list_audit_events(&owner, None, 200).await.unwrap();
    let recorded: Vec<_> = events
        .iter()
        .filter(|view| view.action == "routing.queue_created")
        .collect();
    assert_eq!(recorded.len(), 1, "{events:?}");
    let view = recorded[0];
    assert_eq!(view.id, event.id);
    assert_eq!(view.actor_type, "user");
    assert_eq!(view.actor_id, Some(actor));
    assert_eq!(view.target_type, "queue");
    assert_eq!(view.target_id, Some(target));
    assert_eq!(view.client_address, None);
    assert_eq!(view.details, entry.details);
    assert_eq!(
        view.occurred_at.timestamp_micros(),
        event.occurred_at.timestamp_micros()
    );
    // Another tenant's log holds none of it.
    let other = owner_of_another(identity).await;
    assert!(
        identity
            .list_audit_events(&other, None, 200)
            .await
            .unwrap()
            .iter()
            .all(|view| view.id != event.id)
    );
    // A malformed entry is refused (retried, then dead-lettered).
    let mut broken = entry.to_proto();
    broken.target_id = "not-a-uuid".into();
    let bad = switchboard_events::Event::new(
        tenant,
        "routing",
        switchboard_events::proto::envelope::Payload::AuditRecorded(broken),
    );
    let transaction = setup.database.begin_tenant(tenant.as_uuid()).await.unwrap();
    assert!(handler.handle(&transaction, &bad).await.is_err());
}

async fn owner_of_another(identity: &Identity) -> Principal {
    owner(
        identity,
        &format!("Other {}", uuid::Uuid::now_v7().simple()),
    )
    .await
}

/// A user created by the owner, logged in: (principal, tokens).
async fn staff(
    identity: &Identity,
    owner: &Principal,
    email: &str,
    roles: &[&str],
    clients: Option<Vec<switchboard_tenancy::ClientId>>,
) -> (Principal, switchboard_identity::Tokens) {
    let origin = RequestOrigin::default();
    identity
        .create_user(
            owner,
            NewUser {
                email: email.into(),
                display_name: None,
                roles: roles.iter().map(|role| (*role).to_owned()).collect(),
                clients,
                password: Some(PASSWORD.into()),
            },
            &origin,
        )
        .await
        .unwrap();
    let slug = identity.get_tenant(owner).await.unwrap().slug;
    let tokens = identity
        .login(&slug, email, PASSWORD, &origin)
        .await
        .unwrap();
    let principal = identity
        .authenticate_access_token(&tokens.access_token)
        .await
        .unwrap();
    (principal, tokens)
}

fn user_id(principal: &Principal) -> switchboard_tenancy::UserId {
    match principal.actor {
        switchboard_identity::Actor::User { id, .. } => id,
        _ => panic!("a user"),
    }
}

async fn full_key(identity: &Identity, creator: &Principal, name: &str) -> String {
    identity
        .create_api_key(
            creator,
            NewApiKey {
                name: name.into(),
                scopes: vec!["full".into()],
                expires_at: None,
            },
            &RequestOrigin::default(),
        )
        .await
        .unwrap()
        .secret
}

async fn api_keys_carry_their_creators_client_scope(setup: Setup) {
    use switchboard_identity::NewClient;
    use switchboard_tenancy::ClientScope;
    let identity = &setup.identity;
    let origin = RequestOrigin::default();
    let owner = owner(identity, "Outsourcer").await;
    let one = identity
        .create_client(&owner, NewClient { name: "One".into() }, &origin)
        .await
        .unwrap()
        .id;
    let two = identity
        .create_client(&owner, NewClient { name: "Two".into() }, &origin)
        .await
        .unwrap()
        .id;
    let owners_key = full_key(identity, &owner, "owner's").await;
    let (admin, _) = staff(
        identity,
        &owner,
        "admin@one.example",
        &["admin"],
        Some(vec![one]),
    )
    .await;

    // The scoped admin's key acts for client One only, like its creator.
    let key = full_key(identity, &admin, "admin's").await;
    let as_key = identity.authenticate_api_key(&key).await.unwrap();
    assert_eq!(as_key.tenant.clients(), &ClientScope::Only([one].into()));
    let seen: Vec<_> = identity
        .list_clients(&as_key, None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|client| client.id)
        .collect();
    assert_eq!(seen, vec![one], "client Two is out of the key's reach");
    // The owner's key still acts for the whole tenant.
    let as_owners_key = identity.authenticate_api_key(&owners_key).await.unwrap();
    assert_eq!(as_owners_key.tenant.clients(), &ClientScope::All);

    // The scoped admin lists and revokes only keys of their clients.
    let listed: Vec<_> = identity
        .list_api_keys(&admin, None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.name)
        .collect();
    assert_eq!(listed, vec!["admin's".to_owned()]);
    let owners_key_id = identity
        .list_api_keys(&owner, None, 50)
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.name == "owner's")
        .unwrap()
        .id;
    assert!(matches!(
        identity
            .revoke_api_key(&admin, owners_key_id, &origin)
            .await,
        Err(IdentityError::NotFound(_))
    ));
    identity.authenticate_api_key(&owners_key).await.unwrap();

    // Moving the creator to client Two leaves the key with no client at
    // all: never more than the creator holds now, never more than at
    // creation.
    identity
        .update_user(
            &owner,
            user_id(&admin),
            UserPatch {
                clients: Some(Some(vec![two])),
                ..UserPatch::default()
            },
            &origin,
        )
        .await
        .unwrap();
    let as_key = identity.authenticate_api_key(&key).await.unwrap();
    assert_eq!(as_key.tenant.clients(), &ClientScope::Only([].into()));
    assert!(
        identity
            .list_clients(&as_key, None, 50)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn credentials_follow_their_users_rights_at_once(setup: Setup) {
    use switchboard_identity::Permission;
    let identity = &setup.identity;
    let origin = RequestOrigin::default();
    let owner = owner(identity, "Rights Co").await;
    let (admin, tokens) = staff(identity, &owner, "admin@rights.example", &["admin"], None).await;
    let key = full_key(identity, &admin, "integration").await;
    // Warm the credential cache: the change must get past it.
    identity.authenticate_api_key(&key).await.unwrap();
    identity
        .authenticate_access_token(&tokens.access_token)
        .await
        .unwrap()
        .require(Permission::ManageUsers)
        .unwrap();

    // Demoted to agent: the access token and the session end at once, the
    // key shrinks to what an agent may do.
    identity
        .update_user(
            &owner,
            user_id(&admin),
            UserPatch {
                roles: Some(vec!["agent".into()]),
                ..UserPatch::default()
            },
            &origin,
        )
        .await
        .unwrap();
    assert!(matches!(
        identity
            .authenticate_access_token(&tokens.access_token)
            .await,
        Err(IdentityError::Unauthenticated(_))
    ));
    assert!(matches!(
        identity.refresh(&tokens.refresh_token).await,
        Err(IdentityError::Unauthenticated(_))
    ));
    let as_key = identity.authenticate_api_key(&key).await.unwrap();
    assert!(as_key.require(Permission::ManageUsers).is_err());
    assert!(matches!(
        identity
            .create_user(
                &as_key,
                NewUser {
                    email: "escalated@rights.example".into(),
                    display_name: None,
                    roles: vec!["admin".into()],
                    clients: None,
                    password: Some(PASSWORD.into()),
                },
                &origin,
            )
            .await,
        Err(IdentityError::Forbidden { .. })
    ));
    assert!(
        as_key.require(Permission::ReadTenant).is_ok(),
        "what an agent may do, the key still may"
    );

    // A new login carries the new roles and works.
    let slug = identity.get_tenant(&owner).await.unwrap().slug;
    let fresh = identity
        .login(&slug, "admin@rights.example", PASSWORD, &origin)
        .await
        .unwrap();
    let agent = identity
        .authenticate_access_token(&fresh.access_token)
        .await
        .unwrap();
    assert_eq!(agent.roles(), &[switchboard_identity::Role::Agent]);

    // Saving the same roles again changes nothing and ends nothing.
    identity
        .update_user(
            &owner,
            user_id(&admin),
            UserPatch {
                roles: Some(vec!["agent".into()]),
                display_name: Some("Still an agent".into()),
                ..UserPatch::default()
            },
            &origin,
        )
        .await
        .unwrap();
    identity
        .authenticate_access_token(&fresh.access_token)
        .await
        .unwrap();

    // Disabled: the key stops working too; deleted: it stays stopped.
    identity
        .update_user(
            &owner,
            user_id(&admin),
            UserPatch {
                status: Some("disabled".into()),
                ..UserPatch::default()
            },
            &origin,
        )
        .await
        .unwrap();
    assert!(matches!(
        identity.authenticate_api_key(&key).await,
        Err(IdentityError::Unauthenticated(_))
    ));
    assert!(
        identity
            .authenticate_access_token(&fresh.access_token)
            .await
            .is_err()
    );
    identity
        .update_user(
            &owner,
            user_id(&admin),
            UserPatch {
                status: Some("active".into()),
                ..UserPatch::default()
            },
            &origin,
        )
        .await
        .unwrap();
    identity.authenticate_api_key(&key).await.unwrap();
    identity
        .delete_user(&owner, user_id(&admin), &origin)
        .await
        .unwrap();
    assert!(matches!(
        identity.authenticate_api_key(&key).await,
        Err(IdentityError::Unauthenticated(_))
    ));
}

/// Everything logged at INFO and above on this thread while it is alive.
struct CapturedLogs {
    text: Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl CapturedLogs {
    fn start() -> Self {
        let text = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = {
            let text = text.clone();
            move || LogWriter(text.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(writer)
            .finish();
        Self {
            text,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Signs a company up with `log_verification_tokens` as given and
/// answers what was logged meanwhile (on this thread, which polls the
/// signup), the email and the token.
async fn signup_logs(postgres: bool, log_verification_tokens: bool) -> (String, String, String) {
    let setup = setup_with(
        postgres,
        IdentityOptions {
            log_verification_tokens,
            ..IdentityOptions::default()
        },
    )
    .await;
    let email = "private.person@logs.example.com";
    let logs = CapturedLogs::start();
    let outcome = setup
        .identity
        .signup(
            SignupRequest {
                company: "Quiet Logs".into(),
                email: email.into(),
                password: PASSWORD.into(),
                display_name: None,
                plan: "trial".into(),
                time_zone: "UTC".into(),
            },
            &RequestOrigin::default(),
        )
        .await
        .unwrap();
    (logs.text(), email.to_owned(), outcome.verification_token)
}

async fn signup_logs_neither_the_email_nor_the_verification_token(postgres: bool) {
    let (logs, email, token) = signup_logs(postgres, false).await;
    assert!(
        logs.contains("signup: email verification token issued"),
        "{logs}"
    );
    assert!(!logs.contains(&email), "{logs}");
    assert!(!logs.contains("private.person"), "{logs}");
    assert!(!logs.contains(&token), "{logs}");
    // In `dev` (where no email goes out) both are logged, so the check
    // above can see them.
    let (logs, email, token) = signup_logs(postgres, true).await;
    assert!(logs.contains(&email) && logs.contains(&token), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_logs_neither_the_email_nor_the_verification_token_on_postgres() {
    signup_logs_neither_the_email_nor_the_verification_token(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_logs_neither_the_email_nor_the_verification_token_on_sqlite() {
    signup_logs_neither_the_email_nor_the_verification_token(false).await;
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
    another_services_audit_entry_is_recorded_once_as_sent,
    concurrent_hires_never_exceed_the_seat_limit,
    every_change_writes_its_event_and_a_refused_one_writes_none,
    repeated_failed_logins_are_throttled_without_revealing_the_account,
    revocations_take_effect_at_once_through_the_credential_cache,
    api_keys_carry_their_creators_client_scope,
    credentials_follow_their_users_rights_at_once,
);
