//! `installation`: the one row that identifies this deployment's database
//! (an id minted when the schema is first created, and when), so logs,
//! telemetry and support can tell installations apart.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Installation {
    Table,
    Id,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Installation::Table)
                    .col(
                        ColumnDef::new(Installation::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Installation::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The row is written with the table, in the same migration, so an
        // installation has exactly one id from the start.
        let insert = Query::insert()
            .into_table(Installation::Table)
            .columns([Installation::Id, Installation::CreatedAt])
            .values_panic([uuid::Uuid::now_v7().into(), chrono::Utc::now().into()])
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Installation::Table).to_owned())
            .await
    }
}
