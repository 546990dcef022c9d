//! Transactions of the backbone in system scope (across tenants), for
//! the relay, catch-up, replay and the retention sweep.

use sea_orm::DatabaseTransaction;
use switchboard_platform::Database;

use crate::Result;

/// A transaction whose row-level security lets it see every tenant's
/// event rows (`app.scope = 'system'`, see migration 3).
pub(crate) async fn begin_system(db: &Database) -> Result<DatabaseTransaction> {
    Ok(db.begin_system().await?)
}
