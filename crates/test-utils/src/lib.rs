//! Fixtures for integration tests, against real servers.
//!
//! PostgreSQL, Redis and RabbitMQ are the ones `scripts/test` installs and
//! starts; their addresses come from `SB_TEST_POSTGRES_URL`,
//! `SB_TEST_REDIS_URL` and `SB_TEST_AMQP_URL` (defaults: the standard local
//! ports). The S3-compatible server (`s3s-fs`) is started per test on an
//! ephemeral port. A test whose server is missing fails with a message that
//! says how to get it; nothing is skipped silently.

mod credentials;
mod port;
mod proxy;
mod s3;

use std::sync::Once;

use sea_orm::{ConnectionTrait, Database};

pub use credentials::{refused_credentials, service_keys};
pub use port::ClosedPort;
pub use proxy::TcpProxy;
pub use s3::S3Server;

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("SB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis server tests use (each test picks its own key prefix).
pub fn redis_url() -> String {
    std::env::var("SB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The RabbitMQ server tests use (each test picks its own exchange and
/// queue names).
pub fn amqp_url() -> String {
    std::env::var("SB_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A short unique name for this test's keys, queues, exchanges, databases.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Creates an empty PostgreSQL database for one test and returns its URL.
/// Test databases are named `sbt_…`; `scripts/test` drops leftovers.
pub async fn fresh_postgres_database() -> String {
    let admin_url = postgres_admin_url();
    let admin = Database::connect(admin_url.as_str())
        .await
        .unwrap_or_else(|error| {
            panic!("PostgreSQL at {admin_url} is not reachable ({error}); run ./scripts/test, which starts it")
        });
    let name = unique_name("sbt");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
    let _ = admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base.to_owned())
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

/// A SQLite database file in a fresh temporary directory, with the
/// directory guard that removes it.
pub fn fresh_sqlite_database() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    (url, dir)
}

/// Routes `tracing` output to the test harness once per test binary
/// (`RUST_LOG` picks the level; quiet by default).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns
/// whether it held. For waiting on background effects without fixed sleeps.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A login role for `database_url`'s database that is a member of the
/// services' role (`switchboard_app`, created by the migrations): it owns
/// nothing and cannot bypass row-level security. Returns its URL.
pub async fn postgres_app_role_url(database_url: &str) -> String {
    postgres_member_url(database_url, "sbt_app", "switchboard_app").await
}

/// A login role for `database_url`'s database that is a member of the
/// system workers' role (`switchboard_system`, created by the migrations):
/// it owns nothing and cannot bypass row-level security, and the policies
/// let it see every tenant's rows of the workers' tables. Returns its URL.
pub async fn postgres_system_role_url(database_url: &str) -> String {
    postgres_member_url(database_url, "sbt_sys", "switchboard_system").await
}

/// A fresh login role (`prefix_…`, NOSUPERUSER NOBYPASSRLS) that is a
/// member of `group`; returns its URL for `database_url`'s database.
async fn postgres_member_url(database_url: &str, prefix: &str, group: &str) -> String {
    postgres_role_url(database_url, prefix, &format!("IN ROLE {group}")).await
}

/// A fresh login role (`prefix_…`, NOSUPERUSER NOBYPASSRLS plus
/// `attributes`, e.g. `IN ROLE x` or `NOCREATEROLE`), created by the
/// server's admin; returns its URL for `database_url`'s database.
pub async fn postgres_role_url(database_url: &str, prefix: &str, attributes: &str) -> String {
    let admin = Database::connect(database_url)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at {database_url} is not reachable ({error})"));
    let role = unique_name(prefix);
    let password = uuid::Uuid::new_v4().simple().to_string();
    admin
        .execute_unprepared(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS {attributes}"
        ))
        .await
        .unwrap_or_else(|error| panic!("cannot create role {role} (migrate first): {error}"));
    let _ = admin.close().await;
    let (scheme_and_auth, rest) = database_url
        .split_once('@')
        .expect("a postgres URL with user@host");
    let scheme = scheme_and_auth.split("://").next().unwrap_or("postgres");
    format!("{scheme}://{role}:{password}@{rest}")
}

/// Serves gRPC `routes` (wrapped as a node wraps them, e.g. in
/// `switchboard_rpc::Authenticated`) on a loopback port for the rest of
/// the test; a lazily connected channel to them.
pub async fn serve_grpc(routes: tonic::service::Routes) -> tonic::transport::Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("a loopback URL")
        .connect_lazy()
}
