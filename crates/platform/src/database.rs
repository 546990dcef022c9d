//! The relational store: one sea-orm connection pool over PostgreSQL
//! (production) or SQLite (embedded), chosen by the URL's scheme.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    QueryResult, RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
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

/// A connection pool; cheap to clone. On PostgreSQL it may carry a second
/// pool for system scope ([`Database::with_system`]), logged in as a member
/// of the workers' role, for the workers that serve every tenant.
#[derive(Clone)]
pub struct Database {
    connection: DatabaseConnection,
    kind: DatabaseKind,
    system: Option<DatabaseConnection>,
    /// Connections [`Database::read_tenant`] keeps between reads.
    reads: Arc<ReadConnections>,
}

/// What the PostgreSQL role a pool logs in as may do beyond the row-level
/// security the services rely on (ARCHITECTURE.md, tenancy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRole {
    /// `current_user`.
    pub name: String,
    /// A superuser, or a member of one: bypasses every policy.
    pub superuser: bool,
    /// BYPASSRLS, itself or through a role it is a member of.
    pub bypass_rls: bool,
    /// Tables of the schema owned by the role or a role it is a member of:
    /// an owner can turn row-level security off.
    pub owned_tables: Vec<String>,
    /// A member of the system workers' group role asked about.
    pub system_member: bool,
}

impl LoginRole {
    /// Why this role is too powerful for the services' pool (`key` names
    /// the setting it came from), or `None`. `system_role` sees every
    /// tenant's rows, so the services' role must not hold it.
    pub fn excess_for_service(&self, key: &str, system_role: &str) -> Option<String> {
        self.excess(key).or_else(|| {
            self.system_member.then(|| {
                format!(
                    "{key} logs in as `{}`, a member of {system_role}, which sees every tenant's rows: \
                     connect the services as a role that is not (and give the system workers their own role in database.system_url)",
                    self.name
                )
            })
        })
    }

    /// Why this role cannot be the system workers' (`key` names the
    /// setting), or `None`: too powerful, or not a member of `system_role`.
    pub fn excess_or_lack_for_system(&self, key: &str, system_role: &str) -> Option<String> {
        self.excess(key).or_else(|| {
            (!self.system_member).then(|| {
                format!(
                    "{key} logs in as `{}`, which is not a member of {system_role}: the events relay, webhook dispatcher and number lookup would see no tenant's rows; \
                     GRANT {system_role} TO {}",
                    self.name, self.name
                )
            })
        })
    }

    fn excess(&self, key: &str) -> Option<String> {
        let why = if self.superuser {
            "a superuser, which bypasses row-level security".to_owned()
        } else if self.bypass_rls {
            "a role with BYPASSRLS, which bypasses row-level security".to_owned()
        } else if !self.owned_tables.is_empty() {
            let mut tables = self.owned_tables[..self.owned_tables.len().min(3)].join(", ");
            if self.owned_tables.len() > 3 {
                tables.push_str(", …");
            }
            format!("the owner of the tables ({tables}), which can turn row-level security off")
        } else {
            return None;
        };
        Some(format!(
            "{key} logs in as `{}`, {why}: log in as a role that owns nothing and has neither SUPERUSER nor BYPASSRLS \
             (README, least privilege), or set database.allow_privileged_role = true",
            self.name
        ))
    }
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
        Ok(Self {
            connection,
            kind,
            system: None,
            reads: Arc::new(ReadConnections::new(options.max_connections)),
        })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// A transaction confined to one tenant (taking SQLite's write lock at
    /// once, as [`Database::begin`] does): on PostgreSQL it sets
    /// `app.tenant_id` for the transaction (`set_config(…, true)` =
    /// `SET LOCAL`), which the row-level-security policies compare every
    /// row with (ARCHITECTURE.md, tenancy). On SQLite queries must filter
    /// by tenant themselves, as they do everywhere anyway.
    pub async fn begin_tenant(&self, tenant: Uuid) -> Result<DatabaseTransaction, DbErr> {
        let transaction = self.begin().await?;
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

    /// Runs one read-only `select` confined to `tenant`, outside any
    /// explicit transaction, in the fewest round trips the engine allows.
    ///
    /// On PostgreSQL, `set_config('app.tenant_id', …, true)` and the query
    /// travel in one simple-query message, which the server runs as one
    /// implicit transaction (PostgreSQL protocol, "Multiple Statements in a
    /// Simple Query"): row-level security confines the query exactly as in
    /// [`Database::begin_tenant`], the setting ends with the message, and
    /// the read costs one round trip instead of four (BEGIN, set_config,
    /// query, COMMIT). The query runs as `EXECUTE` of a statement prepared
    /// on the connection (SQL `PREPARE`, once per connection and query
    /// shape, named by a hash of its text), so its plan is cached as sqlx
    /// caches its own. The simple protocol has no bind parameters, so the
    /// arguments are written inline; only UUIDs, integers and booleans are
    /// accepted, whose text cannot carry SQL, and any other value is
    /// refused before anything is sent. On SQLite the statement runs as it
    /// is (queries filter by tenant themselves).
    ///
    /// Rows come back in the text format, which sea-orm's models decode as
    /// they do the binary one.
    pub async fn read_tenant(
        &self,
        tenant: Uuid,
        select: &sea_orm::sea_query::SelectStatement,
    ) -> Result<Vec<QueryResult>, DbErr> {
        match self.kind {
            DatabaseKind::Sqlite => {
                self.connection
                    .query_all_raw(DbBackend::Sqlite.build(select))
                    .await
            }
            DatabaseKind::Postgres => {
                let read = PreparedRead::new(tenant, select)?;
                let query_error =
                    |error: sqlx::Error| DbErr::Query(RuntimeErr::SqlxError(error.into()));
                let mut connection = match self.reads.take() {
                    Some(connection) => connection,
                    None => self
                        .connection
                        .get_postgres_connection_pool()
                        .acquire()
                        .await
                        .map_err(query_error)?,
                };
                // On an error the connection goes back to the pool, whose
                // check on release closes it if it is broken.
                let mut rows = match sqlx::raw_sql(sqlx::AssertSqlSafe(read.execute()))
                    .fetch_all(&mut *connection)
                    .await
                {
                    // Not prepared on this connection yet (26000,
                    // invalid_sql_statement_name): prepare it in the same
                    // message.
                    Err(sqlx::Error::Database(error))
                        if error.code().as_deref() == Some("26000") =>
                    {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(read.prepare_and_execute()))
                            .fetch_all(&mut *connection)
                            .await
                    }
                    other => other,
                }
                .map_err(query_error)?;
                self.reads.keep(connection);
                // The first row is set_config's; the rest are the select's.
                if rows.is_empty() {
                    return Err(DbErr::Query(RuntimeErr::Internal(
                        "set_config answered no row".into(),
                    )));
                }
                rows.remove(0);
                Ok(rows.into_iter().map(QueryResult::from).collect())
            }
        }
    }

    /// Uses `system` for system scope ([`Database::system`],
    /// [`Database::begin_system`]): on PostgreSQL a pool logged in as a
    /// member of the workers' role (`switchboard_system`), whose policies
    /// see every tenant's rows of the tables those workers use; the
    /// services' role sees one tenant's only. Both must be the same engine.
    pub fn with_system(mut self, system: Database) -> Result<Self> {
        if system.kind != self.kind {
            return Err(Error::InvalidArgument(
                "the system database must be the same engine as the services' database".into(),
            ));
        }
        self.system = Some(system.connection);
        Ok(self)
    }

    /// The pool of system scope, as a [`Database`] of its own: the one set
    /// with [`Database::with_system`], else this one (SQLite, which has no
    /// roles; or a node that hosts no system worker).
    pub fn system(&self) -> Database {
        match &self.system {
            Some(system) => Database {
                connection: system.clone(),
                kind: self.kind,
                system: None,
                reads: Arc::new(ReadConnections::new(0)),
            },
            None => Database {
                system: None,
                ..self.clone()
            },
        }
    }

    /// A transaction in system scope, for the workers that serve every
    /// tenant (relay, retention sweep, replay, webhook dispatcher, number
    /// lookup): taken from the system pool ([`Database::with_system`]),
    /// whose role the policies let see every tenant's rows of those
    /// workers' tables. No session setting widens what the services' role
    /// sees (migration 8).
    pub async fn begin_system(&self) -> Result<DatabaseTransaction, DbErr> {
        begin_writable(self.system.as_ref().unwrap_or(&self.connection), self.kind).await
    }

    /// A transaction that may write, with no tenant set.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`, waiting
    /// out the busy timeout): a deferred transaction that reads, then
    /// writes after another connection committed (an event consumer, the
    /// relay, a request) fails with `SQLITE_BUSY_SNAPSHOT`, which no busy
    /// timeout waits out. SQLite has one writer anyway.
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        begin_writable(&self.connection, self.kind).await
    }

    /// PostgreSQL: what the role this pool logs in as may do beyond
    /// row-level security, and whether it is a member of `system_role`;
    /// `None` on SQLite, which has no roles.
    pub async fn login_role(&self, system_role: &str) -> Result<Option<LoginRole>> {
        if self.kind != DatabaseKind::Postgres {
            return Ok(None);
        }
        let row = self
            .connection
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT current_user::text AS name, \
                 EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolsuper \
                   AND pg_has_role(current_user, r.oid, 'MEMBER')) AS superuser, \
                 EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolbypassrls \
                   AND pg_has_role(current_user, r.oid, 'MEMBER')) AS bypass_rls, \
                 ARRAY(SELECT c.relname::text FROM pg_class c \
                   WHERE c.relnamespace = current_schema()::regnamespace \
                   AND c.relkind IN ('r', 'p') \
                   AND pg_has_role(current_user, c.relowner, 'MEMBER') \
                   ORDER BY c.relname) AS owned_tables, \
                 EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = $1 \
                   AND pg_has_role(current_user, g.oid, 'MEMBER')) AS system_member",
                [system_role.into()],
            ))
            .await
            .map_err(map_db_error)?
            .ok_or_else(|| {
                Error::backend(BackendKind::Database, "no answer about the login role")
            })?;
        let get = |error: DbErr| map_db_error(error);
        Ok(Some(LoginRole {
            name: row.try_get("", "name").map_err(get)?,
            superuser: row.try_get("", "superuser").map_err(get)?,
            bypass_rls: row.try_get("", "bypass_rls").map_err(get)?,
            owned_tables: row.try_get("", "owned_tables").map_err(get)?,
            system_member: row.try_get("", "system_member").map_err(get)?,
        }))
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
        self.reads.release();
        // Closing an already closed pool is harmless; the error carries
        // nothing actionable at shutdown.
        let _ = self.connection.clone().close().await;
        if let Some(system) = &self.system {
            let _ = system.clone().close().await;
        }
    }
}

/// PostgreSQL connections kept by [`Database::read_tenant`] between
/// reads, so that a read hands its connection to the next one directly.
/// sqlx 0.9 checks every connection it takes back into its pool with a
/// round trip (`PoolConnection::return_to_pool` pings, with no option to
/// skip it); a kept connection skips that round trip. A read that fails
/// returns its connection to the pool (which checks it, and closes it if
/// broken), like a dropped read that may have left it mid-message.
///
/// At most half the pool is kept idle here, so the other half always
/// serves transactions. Kept connections are still the pool's (they hold
/// its permits, and [`Database::close`] returns them).
struct ReadConnections {
    kept: Mutex<Kept>,
    limit: usize,
}

#[derive(Default)]
struct Kept {
    idle: Vec<PoolConnection<sqlx::Postgres>>,
    /// Set by [`Database::close`]: nothing is kept from then on, so the
    /// pool's close does not wait for a kept connection.
    closed: bool,
}

impl ReadConnections {
    /// Keeps up to half of a pool of `max_connections`.
    fn new(max_connections: u32) -> Self {
        Self {
            kept: Mutex::default(),
            limit: usize::try_from(max_connections / 2).unwrap_or(0),
        }
    }

    fn take(&self) -> Option<PoolConnection<sqlx::Postgres>> {
        self.kept.lock().ok()?.idle.pop()
    }

    /// Keeps `connection` for the next read, or gives it back to the pool.
    fn keep(&self, connection: PoolConnection<sqlx::Postgres>) {
        if let Ok(mut kept) = self.kept.lock()
            && !kept.closed
            && kept.idle.len() < self.limit
        {
            kept.idle.push(connection);
        }
    }

    /// Gives every kept connection back to the pool, and keeps none after.
    fn release(&self) {
        let idle = self
            .kept
            .lock()
            .map(|mut kept| {
                kept.closed = true;
                std::mem::take(&mut kept.idle)
            })
            .unwrap_or_default();
        drop(idle);
    }
}

/// The messages of [`Database::read_tenant`] on PostgreSQL.
struct PreparedRead {
    /// The query with `$n` parameters, as sea-query writes it.
    sql: String,
    /// `sb_read_` and a hash of `sql`.
    name: String,
    /// The arguments as SQL literals.
    arguments: Vec<String>,
    tenant: Uuid,
}

impl PreparedRead {
    /// Refuses a value that is not a UUID, an integer or a boolean.
    fn new(tenant: Uuid, select: &sea_orm::sea_query::SelectStatement) -> Result<Self, DbErr> {
        use sea_orm::sea_query::{PostgresQueryBuilder, Value};
        use sha2::Digest;
        let (sql, values) = select.build(PostgresQueryBuilder);
        let literal = |value: &Value| -> Option<String> {
            let text = match value {
                Value::Uuid(Some(uuid)) => format!("'{uuid}'"),
                Value::Bool(Some(flag)) => flag.to_string(),
                Value::TinyInt(Some(n)) => n.to_string(),
                Value::SmallInt(Some(n)) => n.to_string(),
                Value::Int(Some(n)) => n.to_string(),
                Value::BigInt(Some(n)) => n.to_string(),
                Value::TinyUnsigned(Some(n)) => n.to_string(),
                Value::SmallUnsigned(Some(n)) => n.to_string(),
                Value::Unsigned(Some(n)) => n.to_string(),
                Value::BigUnsigned(Some(n)) => n.to_string(),
                Value::Uuid(None)
                | Value::Bool(None)
                | Value::TinyInt(None)
                | Value::SmallInt(None)
                | Value::Int(None)
                | Value::BigInt(None)
                | Value::TinyUnsigned(None)
                | Value::SmallUnsigned(None)
                | Value::Unsigned(None)
                | Value::BigUnsigned(None) => "NULL".to_owned(),
                _ => return None,
            };
            Some(text)
        };
        let arguments = values
            .iter()
            .map(|value| {
                literal(value).ok_or_else(|| {
                    DbErr::Custom(format!(
                        "read_tenant writes values inline and takes UUIDs, integers and booleans only, not {value:?}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let digest = sha2::Sha256::digest(sql.as_bytes());
        let name = format!("sb_read_{}", hex::encode(&digest[..8]));
        Ok(Self {
            sql,
            name,
            arguments,
            tenant,
        })
    }

    /// set_config, then the prepared statement's EXECUTE.
    fn execute(&self) -> String {
        let mut text = format!(
            "SELECT set_config('app.tenant_id', '{}', true); EXECUTE {}",
            self.tenant, self.name
        );
        if !self.arguments.is_empty() {
            text.push('(');
            text.push_str(&self.arguments.join(", "));
            text.push(')');
        }
        text
    }

    /// PREPARE first, for a connection that has not prepared it yet.
    fn prepare_and_execute(&self) -> String {
        format!("PREPARE {} AS {}; {}", self.name, self.sql, self.execute())
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

/// [`Database::begin`] on `connection`.
async fn begin_writable(
    connection: &DatabaseConnection,
    kind: DatabaseKind,
) -> Result<DatabaseTransaction, DbErr> {
    if kind == DatabaseKind::Sqlite {
        return connection
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await;
    }
    connection.begin().await
}
