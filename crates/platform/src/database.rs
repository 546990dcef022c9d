//! The relational store: one sea-orm connection pool over PostgreSQL
//! (production) or SQLite (embedded), chosen by the URL's scheme.

use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    RuntimeErr, Statement, TransactionTrait,
};
use switchboard_config::SecretUrl;
use uuid::Uuid;

use crate::{BackendKind, Error, Result};

/// Which engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection pool; cheap to clone.
#[derive(Clone)]
pub struct Database {
    connection: DatabaseConnection,
    kind: DatabaseKind,
}

impl Database {
    /// Opens the pool and checks one connection, so a wrong URL or a
    /// database that is down fails at start. For SQLite, creates the file
    /// and its directory, and turns on WAL, foreign keys and a busy timeout.
    ///
    /// PostgreSQL connections over TCP keep Nagle's algorithm on: sqlx
    /// 0.9.0 opens the socket inside `PgConnection::connect` without
    /// `TCP_NODELAY` and offers no option or hook to set it (a regression
    /// of 0.9.0, transact-rs/sqlx#4335, fixed after that release by
    /// transact-rs/sqlx#4336). Until an sqlx with that fix is used, a
    /// statement whose bytes leave in two writes waits for the server's
    /// delayed ACK (~40 ms): keep statements small (see
    /// `EventHandler::handle_batch` in switchboard-events), or connect
    /// through a Unix-domain socket (`?host=/var/run/postgresql`), which
    /// has no such delay.
    pub async fn connect(url: &str, options: &DatabaseOptions) -> Result<Self> {
        let shown = SecretUrl::new(url).masked();
        let kind = if url.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DatabaseKind::Postgres
        } else {
            return Err(Error::InvalidArgument(format!(
                "database URL {shown} is neither postgres:// nor sqlite:"
            )));
        };
        match kind {
            DatabaseKind::Sqlite => create_sqlite_directory(url)?,
            DatabaseKind::Postgres => probe_postgres(url, &shown, options.connect_timeout).await?,
        }
        let mut connect = ConnectOptions::new(url.to_owned());
        connect
            .max_connections(options.max_connections)
            .connect_timeout(options.connect_timeout)
            .acquire_timeout(options.connect_timeout)
            // A ping before every checkout doubles the round trips of short
            // requests; a dead connection fails its query instead, and the
            // pool replaces it.
            .test_before_acquire(false)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
            });
        let connection = sea_orm::Database::connect(connect).await.map_err(|error| {
            Error::unavailable(
                BackendKind::Database,
                format!("cannot connect to {shown}: {}", describe(&error)),
            )
        })?;
        Ok(Self { connection, kind })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// A transaction confined to one tenant: on PostgreSQL it sets
    /// `app.tenant_id` for the transaction (`set_config(…, true)` =
    /// `SET LOCAL`), which the row-level-security policies compare every
    /// row with (ARCHITECTURE.md, tenancy). On SQLite queries must filter
    /// by tenant themselves, as they do everywhere anyway.
    pub async fn begin_tenant(&self, tenant: Uuid) -> Result<DatabaseTransaction, DbErr> {
        let transaction = self.connection.begin().await?;
        self.enter_tenant(&transaction, tenant).await?;
        Ok(transaction)
    }

    /// Confines the rest of `transaction` to `tenant` (after work on
    /// global tables, e.g. reserving a new tenant's slug).
    pub async fn enter_tenant(
        &self,
        transaction: &DatabaseTransaction,
        tenant: Uuid,
    ) -> Result<(), DbErr> {
        if self.kind == DatabaseKind::Postgres {
            transaction
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config('app.tenant_id', $1, true)",
                    [tenant.to_string().into()],
                ))
                .await?;
        }
        Ok(())
    }

    /// A transaction in system scope (`app.scope = 'system'`): the
    /// policies of cross-tenant tables (event log, webhook deliveries) let
    /// it see every tenant's rows, for the workers that serve all tenants
    /// (relay, dispatcher, retention sweep).
    pub async fn begin_system(&self) -> Result<DatabaseTransaction, DbErr> {
        let transaction = self.connection.begin().await?;
        if self.kind == DatabaseKind::Postgres {
            transaction
                .execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT set_config('app.scope', 'system', true)",
                ))
                .await?;
        }
        Ok(transaction)
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    pub fn backend(&self) -> DbBackend {
        match self.kind {
            DatabaseKind::Postgres => DbBackend::Postgres,
            DatabaseKind::Sqlite => DbBackend::Sqlite,
        }
    }

    /// Answers when a connection can be had and runs a statement.
    pub async fn ping(&self) -> Result<()> {
        self.connection.ping().await.map_err(map_db_error)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        // Closing an already closed pool is harmless; the error carries
        // nothing actionable at shutdown.
        let _ = self.connection.clone().close().await;
    }
}

/// Classifies a sea-orm error: connection trouble is `Unavailable`.
pub fn map_db_error(error: DbErr) -> Error {
    match &error {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
            Error::unavailable(BackendKind::Database, describe(&error))
        }
        _ => Error::backend(BackendKind::Database, describe(&error)),
    }
}

fn describe(error: &DbErr) -> String {
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(error)) => describe_sqlx(error),
        other => other.to_string(),
    }
}

/// A connection error in the server's (or the system's) words: a server
/// error without the source position sqlx appends (`… at line 768`, a line
/// of PostgreSQL's C code), an I/O error without the `error communicating
/// with database` preamble.
fn describe_sqlx(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(error) => error.message().to_owned(),
        sqlx::Error::Io(error) => error.to_string(),
        other => other.to_string(),
    }
}

/// One direct connection before the pool's. The pool takes a refused
/// connection for a server still starting and retries until its timeout,
/// then says only `pool timed out`; this connection says at once what is
/// wrong (refused, unknown host, no such role or database, a wrong
/// password).
async fn probe_postgres(url: &str, shown: &str, timeout: Duration) -> Result<()> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let unavailable = |detail: String| {
        Error::unavailable(
            BackendKind::Database,
            format!("cannot connect to {shown}: {detail}"),
        )
    };
    let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(|error| {
        Error::InvalidArgument(format!("database URL {shown}: {}", describe_sqlx(&error)))
    })?;
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(error)) => Err(unavailable(describe_sqlx(&error))),
        Err(_) => Err(unavailable(format!("no answer within {timeout:?}"))),
    }
}

fn create_sqlite_directory(url: &str) -> Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|error| {
            Error::backend(
                BackendKind::Database,
                format!("cannot create directory {}: {error}", parent.display()),
            )
        })?;
    }
    Ok(())
}
