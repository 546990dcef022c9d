//! Call limits per plan: how many calls a tenant may have in progress at
//! once and how many new calls per second its trunks may bring in. The
//! edge enforces them (503 with Retry-After over either); identity tells
//! it each tenant's through `tenant.created` and `tenant.plan_changed`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Plans {
    Table,
    Code,
    MaxConcurrentCalls,
    CallsPerSecond,
}

/// Each seeded plan's limits: calls in progress, new calls per second.
const LIMITS: [(&str, i32, i32); 3] = [("trial", 2, 1), ("starter", 25, 5), ("pro", 500, 50)];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Plans::Table)
                    .add_column(
                        ColumnDef::new(Plans::MaxConcurrentCalls)
                            .integer()
                            .not_null()
                            .default(10),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Plans::Table)
                    .add_column(
                        ColumnDef::new(Plans::CallsPerSecond)
                            .integer()
                            .not_null()
                            .default(2),
                    )
                    .to_owned(),
            )
            .await?;
        for (code, concurrent, per_second) in LIMITS {
            manager
                .exec_stmt(
                    Query::update()
                        .table(Plans::Table)
                        .values([
                            (Plans::MaxConcurrentCalls, concurrent.into()),
                            (Plans::CallsPerSecond, per_second.into()),
                        ])
                        .and_where(Expr::col(Plans::Code).eq(code))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Plans::CallsPerSecond, Plans::MaxConcurrentCalls] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Plans::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
