//! Least privilege on PostgreSQL (issue 19, item 4; migration 8): what the
//! services' role (`switchboard_app`) and the system workers' role
//! (`switchboard_system`) may do, what `serve` refuses to log in as, who
//! may migrate, the append-only audit log, and references that cannot
//! cross tenants.
//!
//! These are PostgreSQL's: SQLite has no roles, no policies, and keeps its
//! single-column foreign keys (migration 8 changes nothing there); the
//! embedded backend's share is that the migrations still apply and roll
//! back there, and that it reports no login role.

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use switchboard_migrations::{Migrator, MigratorTrait, SYSTEM_ROLE};
use switchboard_platform::Database;
use switchboard_platform::database::{DatabaseOptions, LoginRole};
use switchboard_test_utils::{
    fresh_postgres_database, fresh_sqlite_database, init_tracing, postgres_app_role_url,
    postgres_role_url, postgres_system_role_url,
};
use uuid::Uuid;

async fn connect(url: &str) -> Database {
    Database::connect(url, &DatabaseOptions::default())
        .await
        .unwrap()
}

/// A fresh PostgreSQL database migrated by the server's superuser.
async fn migrated() -> (String, Database) {
    init_tracing();
    let url = fresh_postgres_database().await;
    let admin = connect(&url).await;
    Migrator::up(admin.connection(), None).await.unwrap();
    (url, admin)
}

async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<u64, sea_orm::DbErr> {
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .map(|result| result.rows_affected())
}

async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

fn user_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .split([':', '@'])
        .next()
        .unwrap()
        .to_owned()
}

/// Tenant `id` with one user, one client organization, one session, one
/// webhook endpoint with a delivery and an attempt, one flow with a
/// version, the user's agent profile, a number: a row of every table a
/// reference leaves from or points at. Written by the owner.
async fn seed_tenant(admin: &Database, id: Uuid) -> Seeded {
    let ids = Seeded {
        user: Uuid::now_v7(),
        client: Uuid::now_v7(),
        session: Uuid::now_v7(),
        endpoint: Uuid::now_v7(),
        delivery: Uuid::now_v7(),
        flow: Uuid::now_v7(),
    };
    let t = id;
    let Seeded {
        user,
        client,
        session,
        endpoint,
        delivery,
        flow,
    } = ids;
    let config = |table: &str, row: Uuid, name: &str| {
        format!(
            "INSERT INTO {table} (id, tenant_id, name, client_id, definition, created_at, updated_at) \
             VALUES ('{row}', '{t}', '{name}', NULL, '{{}}', now(), now())"
        )
    };
    for sql in [
        format!(
            "INSERT INTO tenants (id, name, slug, time_zone, status, plan_code, created_at, updated_at) \
             VALUES ('{t}', 'T', 't-{}', 'UTC', 'active', 'trial', now(), now())",
            t.simple()
        ),
        format!(
            "INSERT INTO users (id, tenant_id, email, display_name, roles, all_clients, status, created_at, updated_at) \
             VALUES ('{user}', '{t}', 'a@{}.example', 'A', 'owner', true, 'active', now(), now())",
            t.simple()
        ),
        format!(
            "INSERT INTO client_orgs (id, tenant_id, name, created_at) VALUES ('{client}', '{t}', 'C', now())"
        ),
        format!(
            "INSERT INTO user_clients (tenant_id, user_id, client_id) VALUES ('{t}', '{user}', '{client}')"
        ),
        format!(
            "INSERT INTO sessions (id, tenant_id, user_id, created_at, expires_at) \
             VALUES ('{session}', '{t}', '{user}', now(), now() + interval '1 hour')"
        ),
        format!(
            "INSERT INTO refresh_tokens (hash, tenant_id, session_id, issued_at) \
             VALUES ('h-{session}', '{t}', '{session}', now())"
        ),
        format!(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, secret, key_id, status, created_at, updated_at) \
             VALUES ('{endpoint}', '{t}', 'https://example.com/hook', '', '[\"*\"]', 'whsec_x', 'k', 'active', now(), now())"
        ),
        format!(
            "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ('{delivery}', '{t}', '{endpoint}', '{}', 'x', '{{}}', 'pending', 0, now(), now())",
            Uuid::now_v7()
        ),
        format!(
            "INSERT INTO webhook_attempts (id, tenant_id, delivery_id, attempted_at, duration_ms) \
             VALUES ('{}', '{t}', '{delivery}', now(), 1)",
            Uuid::now_v7()
        ),
        config("routing_flows", flow, "F"),
        format!(
            "INSERT INTO routing_flow_versions (id, tenant_id, flow_id, version, definition, fingerprint, published_at) \
             VALUES ('{}', '{t}', '{flow}', 1, '{{}}', 'f', now())",
            Uuid::now_v7()
        ),
        config("routing_agent_profiles", user, "A"),
        config(
            "routing_numbers",
            Uuid::now_v7(),
            // The random tail of the UUIDv7 (its head is the time).
            &format!("+1555{}", &t.simple().to_string()[25..]),
        ),
    ] {
        exec(admin.connection(), &sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
    ids
}

#[derive(Clone, Copy)]
struct Seeded {
    user: Uuid,
    client: Uuid,
    session: Uuid,
    endpoint: Uuid,
    delivery: Uuid,
    flow: Uuid,
}

#[tokio::test]
async fn migrate_up_as_an_owner_without_createrole_once_the_roles_exist() {
    // The group roles are cluster-wide: a first migration creates them.
    let (_, first) = migrated().await;
    first.close().await;
    let url = fresh_postgres_database().await;
    let owner_url = postgres_role_url(&url, "sbt_owner", "NOCREATEROLE").await;
    let admin = connect(&url).await;
    let database = url.rsplit('/').next().unwrap().to_owned();
    exec(
        admin.connection(),
        &format!("ALTER DATABASE {database} OWNER TO {}", user_of(&owner_url)),
    )
    .await
    .unwrap();
    let owner = connect(&owner_url).await;
    Migrator::up(owner.connection(), None)
        .await
        .expect("an owner without CREATEROLE migrates when the roles exist");
    assert!(
        Migrator::get_pending_migrations(owner.connection())
            .await
            .unwrap()
            .is_empty()
    );
    // That owner is the tables' owner: not a role to serve with.
    let role = owner.login_role(SYSTEM_ROLE).await.unwrap().unwrap();
    assert!(!role.superuser && !role.bypass_rls);
    assert!(role.owned_tables.contains(&"audit_events".to_owned()));
    let refused = role
        .excess_for_service("database.url", SYSTEM_ROLE)
        .unwrap();
    assert!(
        refused.contains("the owner of the tables") && refused.contains(&role.name),
        "{refused}"
    );
    owner.close().await;
    admin.close().await;
}

#[tokio::test]
async fn login_role_tells_what_steps_outside_row_level_security() {
    let (url, admin) = migrated().await;
    let check = |url: String| async move {
        let db = connect(&url).await;
        let role: LoginRole = db.login_role(SYSTEM_ROLE).await.unwrap().unwrap();
        db.close().await;
        (
            role.excess_for_service("database.url", SYSTEM_ROLE),
            role.excess_or_lack_for_system("database.system_url", SYSTEM_ROLE),
        )
    };

    let (service, system) = check(url.clone()).await;
    assert!(service.unwrap().contains("a superuser"));
    assert!(system.unwrap().contains("a superuser"));

    let bypass = postgres_role_url(&url, "sbt_bypass", "IN ROLE switchboard_app").await;
    exec(
        admin.connection(),
        &format!("ALTER ROLE {} BYPASSRLS", user_of(&bypass)),
    )
    .await
    .unwrap();
    let (service, _) = check(bypass).await;
    assert!(service.unwrap().contains("BYPASSRLS"));

    // BYPASSRLS held through a group role counts too.
    let group = postgres_role_url(&url, "sbt_group", "").await;
    exec(
        admin.connection(),
        &format!("ALTER ROLE {} NOLOGIN BYPASSRLS", user_of(&group)),
    )
    .await
    .unwrap();
    let member =
        postgres_role_url(&url, "sbt_member", &format!("IN ROLE {}", user_of(&group))).await;
    let (service, _) = check(member).await;
    assert!(service.unwrap().contains("BYPASSRLS"));

    let (service, system) = check(postgres_app_role_url(&url).await).await;
    assert_eq!(service, None);
    assert!(
        system
            .unwrap()
            .contains("not a member of switchboard_system")
    );

    let (service, system) = check(postgres_system_role_url(&url).await).await;
    assert!(service.unwrap().contains("a member of switchboard_system"));
    assert_eq!(system, None);
    admin.close().await;
}

#[tokio::test]
async fn the_services_role_cannot_widen_its_scope_and_the_system_role_sees_only_its_tables() {
    let (url, admin) = migrated().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    seed_tenant(&admin, a).await;
    seed_tenant(&admin, b).await;
    let service = connect(&postgres_app_role_url(&url).await).await;
    let system = connect(&postgres_system_role_url(&url).await).await;

    let escape = service.connection().begin().await.unwrap();
    exec(&escape, "SELECT set_config('app.scope', 'system', true)")
        .await
        .unwrap();
    for table in [
        "routing_numbers",
        "event_log",
        "webhook_endpoints",
        "webhook_deliveries",
        "webhook_attempts",
    ] {
        assert_eq!(
            count(&escape, &format!("SELECT COUNT(*) AS n FROM {table}")).await,
            0,
            "{table} seen through app.scope"
        );
    }
    escape.rollback().await.unwrap();
    let tenant = service.begin_tenant(a).await.unwrap();
    assert_eq!(
        count(&tenant, "SELECT COUNT(*) AS n FROM routing_numbers").await,
        1
    );
    tenant.rollback().await.unwrap();

    let workers = system.connection();
    for table in ["routing_numbers", "webhook_endpoints", "webhook_deliveries"] {
        assert_eq!(
            count(workers, &format!("SELECT COUNT(*) AS n FROM {table}")).await,
            2,
            "{table}"
        );
    }
    // Nothing beyond the workers' tables and rights.
    for sql in [
        "SELECT COUNT(*) AS n FROM users",
        "SELECT COUNT(*) AS n FROM routing_queues",
        "SELECT COUNT(*) AS n FROM audit_events",
        "UPDATE routing_numbers SET name = name",
        "DELETE FROM webhook_endpoints",
    ] {
        let error = exec(workers, sql).await.unwrap_err();
        assert!(
            error.to_string().contains("permission denied"),
            "{sql}: {error}"
        );
    }
    service.close().await;
    system.close().await;
    admin.close().await;
}

#[tokio::test]
async fn audit_events_are_insert_and_select_only_for_the_services_role() {
    let (url, admin) = migrated().await;
    let tenant = Uuid::now_v7();
    seed_tenant(&admin, tenant).await;
    let service = connect(&postgres_app_role_url(&url).await).await;
    let transaction = service.begin_tenant(tenant).await.unwrap();
    exec(
        &transaction,
        &format!(
            "INSERT INTO audit_events (id, tenant_id, actor_type, action, target_type, client_ids, details, occurred_at) \
             VALUES ('{}', '{tenant}', 'system', 'user.created', 'user', '', '{{}}', now())",
            Uuid::now_v7()
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        count(&transaction, "SELECT COUNT(*) AS n FROM audit_events").await,
        1
    );
    transaction.commit().await.unwrap();
    for sql in [
        "UPDATE audit_events SET action = 'nothing.happened'",
        "DELETE FROM audit_events",
    ] {
        let transaction = service.begin_tenant(tenant).await.unwrap();
        let error = exec(&transaction, sql).await.unwrap_err();
        assert!(
            error.to_string().contains("permission denied"),
            "{sql}: {error}"
        );
        transaction.rollback().await.unwrap();
    }
    assert_eq!(
        count(
            admin.connection(),
            "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'user.created'"
        )
        .await,
        1
    );
    service.close().await;
    admin.close().await;
}

#[tokio::test]
async fn a_row_cannot_point_at_another_tenants_row() {
    let (_, admin) = migrated().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let theirs = seed_tenant(&admin, a).await;
    let ours = seed_tenant(&admin, b).await;
    // Each of tenant b's rows pointing at tenant a's row, even written by
    // the owner (who bypasses no foreign key).
    for sql in [
        format!(
            "INSERT INTO user_clients (tenant_id, user_id, client_id) VALUES ('{b}', '{}', '{}')",
            theirs.user, ours.client
        ),
        format!(
            "INSERT INTO user_clients (tenant_id, user_id, client_id) VALUES ('{b}', '{}', '{}')",
            ours.user, theirs.client
        ),
        format!(
            "INSERT INTO sessions (id, tenant_id, user_id, created_at, expires_at) \
             VALUES ('{}', '{b}', '{}', now(), now())",
            Uuid::now_v7(),
            theirs.user
        ),
        format!(
            "INSERT INTO refresh_tokens (hash, tenant_id, session_id, issued_at) \
             VALUES ('{}', '{b}', '{}', now())",
            Uuid::now_v7(),
            theirs.session
        ),
        format!(
            "UPDATE webhook_deliveries SET endpoint_id = '{}' WHERE id = '{}'",
            theirs.endpoint, ours.delivery
        ),
        format!(
            "INSERT INTO webhook_attempts (id, tenant_id, delivery_id, attempted_at, duration_ms) \
             VALUES ('{}', '{b}', '{}', now(), 1)",
            Uuid::now_v7(),
            theirs.delivery
        ),
        format!(
            "INSERT INTO routing_flow_versions (id, tenant_id, flow_id, version, definition, fingerprint, published_at) \
             VALUES ('{}', '{b}', '{}', 7, '{{}}', 'f', now())",
            Uuid::now_v7(),
            theirs.flow
        ),
    ] {
        let error = exec(admin.connection(), &sql).await.unwrap_err();
        assert!(error.to_string().contains("foreign key"), "{sql}: {error}");
    }
    // Deleting a user still takes its sessions with it.
    exec(
        admin.connection(),
        &format!("DELETE FROM users WHERE id = '{}'", ours.user),
    )
    .await
    .unwrap();
    assert_eq!(
        count(
            admin.connection(),
            &format!("SELECT COUNT(*) AS n FROM sessions WHERE tenant_id = '{b}'")
        )
        .await,
        0
    );
    admin.close().await;
}

#[tokio::test]
async fn the_migration_upgrades_a_database_with_rows_and_rolls_back() {
    init_tracing();
    let url = fresh_postgres_database().await;
    let admin = connect(&url).await;
    let before = Migrator::migrations()
        .iter()
        .position(|migration| migration.name() == "m20261207_000008_least_privilege")
        .unwrap();
    Migrator::up(admin.connection(), Some(before as u32))
        .await
        .unwrap();
    let tenant = Uuid::now_v7();
    seed_tenant(&admin, tenant).await;
    Migrator::up(admin.connection(), None).await.unwrap();
    let composite = "SELECT COUNT(*) AS n FROM pg_constraint WHERE conname LIKE '%_tenant_fkey'";
    // Eight from this migration, less the agent profiles' key into
    // identity's users, which the identity projection (m…000010) drops:
    // routing checks users through identity, not through identity's table.
    assert_eq!(count(admin.connection(), composite).await, 7);
    let system = connect(&postgres_system_role_url(&url).await).await;
    assert_eq!(
        count(
            system.connection(),
            "SELECT COUNT(*) AS n FROM webhook_deliveries"
        )
        .await,
        1
    );

    // Down restores the single-column keys and the old policies; up again.
    let applied = Migrator::get_applied_migrations(admin.connection())
        .await
        .unwrap()
        .len();
    Migrator::down(admin.connection(), Some((applied - before) as u32))
        .await
        .unwrap();
    assert_eq!(count(admin.connection(), composite).await, 0);
    assert_eq!(
        count(
            admin.connection(),
            "SELECT COUNT(*) AS n FROM pg_constraint WHERE conname = 'sessions_user_id_fkey'"
        )
        .await,
        1
    );
    Migrator::up(admin.connection(), None).await.unwrap();
    assert_eq!(count(admin.connection(), composite).await, 7);
    system.close().await;
    admin.close().await;
}

#[tokio::test]
async fn sqlite_has_no_roles_and_takes_the_migration() {
    let (url, _dir) = fresh_sqlite_database();
    let database = connect(&url).await;
    Migrator::up(database.connection(), None).await.unwrap();
    assert_eq!(database.login_role(SYSTEM_ROLE).await.unwrap(), None);
    // Without a system pool, system scope is the one pool.
    let transaction = database.begin_system().await.unwrap();
    transaction.commit().await.unwrap();
    database.close().await;
}

/// `read_tenant`'s one-message read: the tenant's rows only, even with no
/// tenant filter in the query; nothing of the setting left on the pooled
/// connection; values that could carry SQL refused before sending.
#[tokio::test]
async fn a_one_round_trip_read_sees_its_tenant_only_and_leaves_nothing_behind() {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let (url, admin) = migrated().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let seeded_a = seed_tenant(&admin, a).await;
    seed_tenant(&admin, b).await;
    // One connection, so the next statement runs where the read ran.
    let service = Database::connect(
        &postgres_app_role_url(&url).await,
        &DatabaseOptions {
            max_connections: 1,
            ..DatabaseOptions::default()
        },
    )
    .await
    .unwrap();

    let every_user = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("users"))
        .to_owned();
    let rows = service.read_tenant(a, &every_user).await.unwrap();
    let ids: Vec<Uuid> = rows
        .iter()
        .map(|row| row.try_get("", "id").unwrap())
        .collect();
    assert_eq!(ids, vec![seeded_a.user], "tenant b's user seen");

    let by_id = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("users"))
        .and_where(Expr::col(Alias::new("id")).eq(seeded_a.user))
        .to_owned();
    assert_eq!(service.read_tenant(b, &by_id).await.unwrap().len(), 0);
    assert_eq!(service.read_tenant(a, &by_id).await.unwrap().len(), 1);

    let left = service
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT coalesce(current_setting('app.tenant_id', true), '') AS tenant, \
             (SELECT COUNT(*) FROM users) AS n"
                .to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left.try_get::<String>("", "tenant").unwrap(), "");
    assert_eq!(left.try_get::<i64>("", "n").unwrap(), 0);

    let by_email = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("users"))
        .and_where(Expr::col(Alias::new("email")).eq("x'; DROP TABLE users; --"))
        .to_owned();
    let error = service.read_tenant(a, &by_email).await.unwrap_err();
    assert!(
        error.to_string().contains("UUIDs, integers and booleans"),
        "{error}"
    );
    assert_eq!(
        count(admin.connection(), "SELECT COUNT(*) AS n FROM users").await,
        2
    );
    service.close().await;
    admin.close().await;
}

/// `read_tenant` keeps up to half the pool's connections between reads
/// (skipping sqlx's check on release): reads in parallel all answer, the
/// other half still serves transactions, and closing the pool returns the
/// kept connections instead of waiting for them forever.
#[tokio::test]
async fn kept_read_connections_leave_room_for_transactions_and_close() {
    use sea_orm::sea_query::{Alias, Query};
    let (url, admin) = migrated().await;
    let tenant = Uuid::now_v7();
    seed_tenant(&admin, tenant).await;
    let service = Database::connect(
        &postgres_app_role_url(&url).await,
        &DatabaseOptions {
            max_connections: 4,
            connect_timeout: std::time::Duration::from_secs(2),
        },
    )
    .await
    .unwrap();
    let every_user = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("users"))
        .to_owned();
    let reads = (0..16).map(|_| service.read_tenant(tenant, &every_user));
    for rows in futures::future::join_all(reads).await {
        assert_eq!(rows.unwrap().len(), 1);
    }
    // Two connections are kept now; two transactions at once still get
    // the other two.
    let first = service.begin_tenant(tenant).await.unwrap();
    let second = service.begin_tenant(tenant).await.unwrap();
    first.commit().await.unwrap();
    second.commit().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), service.close())
        .await
        .expect("close returns the kept connections");
    assert!(service.read_tenant(tenant, &every_user).await.is_err());
    admin.close().await;
}
