//! One behaviour suite for the relational store on both engines: real
//! PostgreSQL (a fresh database per test) and a SQLite file.

use std::time::Duration;

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, Schema, TransactionTrait};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::database::{DatabaseKind, DatabaseOptions};
use switchboard_test_utils::{
    ClosedPort, fresh_postgres_database, fresh_sqlite_database, init_tracing,
};

/// A throwaway table for the round-trip tests.
mod note {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "conformance_note")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub body: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

async fn create_note_table(database: &Database) {
    let schema = Schema::new(database.backend());
    let statement = schema.create_table_from_entity(note::Entity);
    database
        .connection()
        .execute(&statement)
        .await
        .expect("create table");
}

async fn migrations_apply_and_roll_back(database: Database) {
    let connection = database.connection();
    assert_eq!(
        Migrator::get_pending_migrations(connection)
            .await
            .unwrap()
            .len(),
        Migrator::migrations().len()
    );
    Migrator::up(connection, None).await.expect("migrate up");
    assert!(
        Migrator::get_pending_migrations(connection)
            .await
            .unwrap()
            .is_empty()
    );
    // Applying again is a no-op.
    Migrator::up(connection, None)
        .await
        .expect("migrate up twice");
    Migrator::down(connection, None)
        .await
        .expect("migrate down");
    assert_eq!(
        Migrator::get_pending_migrations(connection)
            .await
            .unwrap()
            .len(),
        Migrator::migrations().len()
    );
    Migrator::up(connection, None)
        .await
        .expect("migrate up again");
}

async fn rows_round_trip_through_entities(database: Database) {
    create_note_table(&database).await;
    let connection = database.connection();
    let now = chrono::Utc::now();
    for (index, body) in ["first", "second", "ünïcødé ✓"].iter().enumerate() {
        note::ActiveModel {
            id: Set(Uuid::now_v7()),
            body: Set((*body).to_owned()),
            created_at: Set(now + chrono::Duration::seconds(index as i64)),
        }
        .insert(connection)
        .await
        .expect("insert");
    }
    let notes = note::Entity::find()
        .order_by_asc(note::Column::CreatedAt)
        .all(connection)
        .await
        .unwrap();
    let bodies: Vec<&str> = notes.iter().map(|note| note.body.as_str()).collect();
    assert_eq!(bodies, ["first", "second", "ünïcødé ✓"]);
    assert_eq!(
        notes[0].created_at.timestamp_micros(),
        now.timestamp_micros()
    );

    let found = note::Entity::find()
        .filter(note::Column::Body.eq("second"))
        .one(connection)
        .await
        .unwrap()
        .unwrap();
    note::Entity::delete_by_id(found.id)
        .exec(connection)
        .await
        .unwrap();
    assert_eq!(note::Entity::find().count(connection).await.unwrap(), 2);
}

async fn a_rolled_back_transaction_writes_nothing(database: Database) {
    create_note_table(&database).await;
    let connection = database.connection();
    let transaction = connection.begin().await.unwrap();
    note::ActiveModel {
        id: Set(Uuid::now_v7()),
        body: Set("half-written".into()),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(&transaction)
    .await
    .unwrap();
    transaction.rollback().await.unwrap();
    assert_eq!(note::Entity::find().count(connection).await.unwrap(), 0);

    let transaction = connection.begin().await.unwrap();
    note::ActiveModel {
        id: Set(Uuid::now_v7()),
        body: Set("committed".into()),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(&transaction)
    .await
    .unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(note::Entity::find().count(connection).await.unwrap(), 1);
}

async fn a_duplicate_primary_key_is_refused(database: Database) {
    create_note_table(&database).await;
    let connection = database.connection();
    let id = Uuid::now_v7();
    let row = || note::ActiveModel {
        id: Set(id),
        body: Set("x".into()),
        created_at: Set(chrono::Utc::now()),
    };
    row().insert(connection).await.unwrap();
    assert!(row().insert(connection).await.is_err());
    assert_eq!(note::Entity::find().count(connection).await.unwrap(), 1);
}

async fn ping_answers(database: Database) {
    database.ping().await.unwrap();
}

macro_rules! conformance {
    ($module:ident, $kind:expr, $make:expr) => {
        mod $module {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        init_tracing();
                        let (url, _guard) = $make;
                        let database = Database::connect(&url, &DatabaseOptions::default())
                            .await
                            .expect("connect");
                        assert_eq!(database.kind(), $kind);
                        tokio::time::timeout(
                            Duration::from_secs(60),
                            super::$name(database.clone()),
                        )
                        .await
                        .expect("test timed out");
                        database.close().await;
                    }
                };
            }

            case!(migrations_apply_and_roll_back);
            case!(rows_round_trip_through_entities);
            case!(a_rolled_back_transaction_writes_nothing);
            case!(a_duplicate_primary_key_is_refused);
            case!(ping_answers);
        }
    };
}

conformance!(
    postgres,
    DatabaseKind::Postgres,
    (fresh_postgres_database().await, ())
);
conformance!(sqlite, DatabaseKind::Sqlite, fresh_sqlite_database());

#[tokio::test]
async fn unreachable_postgres_fails_fast_with_the_password_masked() {
    init_tracing();
    let closed = ClosedPort::new().unwrap();
    let port = closed.port();
    let url = format!("postgres://app:hunter2@127.0.0.1:{port}/switchboard");
    let options = DatabaseOptions {
        connect_timeout: Duration::from_secs(2),
        ..DatabaseOptions::default()
    };
    let started = std::time::Instant::now();
    let error = Database::connect(&url, &options)
        .await
        .err()
        .expect("must fail");
    assert!(error.is_unavailable(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.to_lowercase().contains("connection refused"),
        "names the cause, not `pool timed out`: {message}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn sqlite_creates_its_file_and_directories() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/switchboard.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let database = Database::connect(&url, &DatabaseOptions::default())
        .await
        .unwrap();
    database.ping().await.unwrap();
    assert!(path.is_file());
}
