//! Outgoing webhooks: tenants' endpoints, one delivery per (endpoint,
//! event), and every attempt to send a delivery.
//!
//! On PostgreSQL the three tables get the forced RLS policy of migration 3:
//! confined to `app.tenant_id`, widened to every tenant for a transaction
//! in system scope (`app.scope = 'system'`), which the dispatcher uses to
//! find due deliveries across tenants.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

use crate::shared::{
    Visibility, tenant_isolation, text, text_null, time, time_null, uuid_col, uuid_pk,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
];

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    TenantId,
    Url,
    Description,
    EventTypes,
    Secret,
    KeyId,
    Status,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    TenantId,
    EndpointId,
    EventId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    FirstAttemptAt,
    LastStatusCode,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    TenantId,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    Error,
    DurationMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(uuid_pk(WebhookEndpoints::Id))
                    .col(uuid_col(WebhookEndpoints::TenantId))
                    .col(text(WebhookEndpoints::Url))
                    .col(text(WebhookEndpoints::Description))
                    // A JSON array of event type names, or `["*"]`.
                    .col(text(WebhookEndpoints::EventTypes))
                    // `whsec_<base64>`: read back to sign, so not hashed.
                    .col(text(WebhookEndpoints::Secret))
                    .col(text(WebhookEndpoints::KeyId))
                    // `active` or `disabled`.
                    .col(text(WebhookEndpoints::Status))
                    .col(text_null(WebhookEndpoints::DisabledReason))
                    .col(time(WebhookEndpoints::CreatedAt))
                    .col(time(WebhookEndpoints::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(WebhookEndpoints::Table)
                            .from_col(WebhookEndpoints::TenantId)
                            .to_tbl(Tenants::Table)
                            .to_col(Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(uuid_pk(WebhookDeliveries::Id))
                    .col(uuid_col(WebhookDeliveries::TenantId))
                    .col(uuid_col(WebhookDeliveries::EndpointId))
                    .col(uuid_col(WebhookDeliveries::EventId))
                    .col(text(WebhookDeliveries::EventType))
                    // The JSON body exactly as sent (and signed).
                    .col(ColumnDef::new(WebhookDeliveries::Payload).text().not_null())
                    // `pending`, `succeeded` or `failed`.
                    .col(text(WebhookDeliveries::Status))
                    .col(
                        ColumnDef::new(WebhookDeliveries::Attempts)
                            .integer()
                            .not_null(),
                    )
                    .col(time_null(WebhookDeliveries::NextAttemptAt))
                    // While an attempt is in flight: until when its
                    // dispatcher holds it.
                    .col(time_null(WebhookDeliveries::ClaimedUntil))
                    // Start of the current retry window.
                    .col(time_null(WebhookDeliveries::FirstAttemptAt))
                    .col(
                        ColumnDef::new(WebhookDeliveries::LastStatusCode)
                            .integer()
                            .null(),
                    )
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(time(WebhookDeliveries::CreatedAt))
                    .col(time_null(WebhookDeliveries::DeliveredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(WebhookDeliveries::Table)
                            .from_col(WebhookDeliveries::EndpointId)
                            .to_tbl(WebhookEndpoints::Table)
                            .to_col(WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(uuid_pk(WebhookAttempts::Id))
                    .col(uuid_col(WebhookAttempts::TenantId))
                    .col(uuid_col(WebhookAttempts::DeliveryId))
                    .col(time(WebhookAttempts::AttemptedAt))
                    .col(ColumnDef::new(WebhookAttempts::StatusCode).integer().null())
                    .col(text_null(WebhookAttempts::Error))
                    .col(
                        ColumnDef::new(WebhookAttempts::DurationMs)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(WebhookAttempts::Table)
                            .from_col(WebhookAttempts::DeliveryId)
                            .to_tbl(WebhookDeliveries::Table)
                            .to_col(WebhookDeliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for index in [
            // The intake: a tenant's active endpoints.
            Index::create()
                .name("webhook_endpoints_tenant_status")
                .table(WebhookEndpoints::Table)
                .col(WebhookEndpoints::TenantId)
                .col(WebhookEndpoints::Status)
                .to_owned(),
            // An event makes at most one delivery per endpoint.
            Index::create()
                .name("webhook_deliveries_endpoint_event")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::EndpointId)
                .col(WebhookDeliveries::EventId)
                .unique()
                .to_owned(),
            // The dispatcher: pending deliveries that are due.
            Index::create()
                .name("webhook_deliveries_status_next_attempt")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::Status)
                .col(WebhookDeliveries::NextAttemptAt)
                .to_owned(),
            // Listing an endpoint's deliveries (ids are UUIDv7: by time).
            Index::create()
                .name("webhook_deliveries_tenant_endpoint_id")
                .table(WebhookDeliveries::Table)
                .col(WebhookDeliveries::TenantId)
                .col(WebhookDeliveries::EndpointId)
                .col(WebhookDeliveries::Id)
                .to_owned(),
            Index::create()
                .name("webhook_attempts_delivery_attempted_at")
                .table(WebhookAttempts::Table)
                .col(WebhookAttempts::DeliveryId)
                .col(WebhookAttempts::AttemptedAt)
                .to_owned(),
        ] {
            manager.create_index(index).await?;
        }

        if manager.get_database_backend() == DbBackend::Postgres {
            let connection = manager.get_connection();
            for table in TABLES {
                for statement in tenant_isolation(table, "tenant_id", Visibility::TenantOrSystem) {
                    connection
                        .execute_raw(Statement::from_string(DbBackend::Postgres, statement))
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(Alias::new(*table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
