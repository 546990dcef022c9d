//! `switchboard migrate up|down|status`.

use anyhow::Context;
use switchboard_config::Config;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::database::DatabaseOptions;

use crate::cli::MigrateAction;

pub async fn execute(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let database = connect(&config.migrate_database_url(), config).await?;
    let connection = database.connection();
    match action {
        MigrateAction::Up { steps } => {
            let pending = Migrator::get_pending_migrations(connection).await?.len();
            Migrator::up(connection, steps)
                .await
                .context("migrate up")?;
            let left = Migrator::get_pending_migrations(connection).await?.len();
            println!("applied {} migration(s); {left} pending", pending - left);
        }
        MigrateAction::Down { steps } => {
            let applied = Migrator::get_applied_migrations(connection).await?.len();
            Migrator::down(connection, Some(steps))
                .await
                .context("migrate down")?;
            let left = Migrator::get_applied_migrations(connection).await?.len();
            println!(
                "rolled back {} migration(s); {left} applied",
                applied - left
            );
        }
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(connection).await? {
                println!(
                    "{:<8} {}",
                    format!("{:?}", migration.status()).to_lowercase(),
                    migration.name()
                );
            }
        }
    }
    database.close().await;
    Ok(())
}

pub async fn connect(url: &str, config: &Config) -> anyhow::Result<Database> {
    let options = DatabaseOptions {
        max_connections: config.database.max_connections,
        connect_timeout: config.database.connect_timeout,
    };
    Ok(Database::connect(url, &options).await?)
}
