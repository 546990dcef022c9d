//! Identity: plans, tenants, client organizations, users, API keys,
//! sessions, one-time tokens, audit events, seat changes.
//!
//! Every tenant-owned table has `tenant_id`; on PostgreSQL each gets a
//! row-level security policy on `app.tenant_id` (set per transaction by the
//! store), forced even for the table owner, and the role `switchboard_app`
//! (which services log in as, or are members of) gets plain DML rights: it
//! neither owns the tables nor bypasses RLS. Two global lookup tables map
//! public or hashed handles to a tenant before any tenant is known (a
//! tenant's slug at login; the SHA-256 of an API key or refresh token);
//! they hold no tenant data.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

use crate::shared::{
    Visibility, create_group_role, tenant_isolation, text, time, time_null, uuid_col, uuid_pk,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The role services run as on PostgreSQL.
pub const APP_ROLE: &str = "switchboard_app";

/// Tenant-owned tables and the column RLS compares with `app.tenant_id`.
const TENANT_TABLES: &[(&str, &str)] = &[
    ("tenants", "id"),
    ("client_orgs", "tenant_id"),
    ("users", "tenant_id"),
    ("user_clients", "tenant_id"),
    ("api_keys", "tenant_id"),
    ("sessions", "tenant_id"),
    ("refresh_tokens", "tenant_id"),
    ("one_time_tokens", "tenant_id"),
    ("audit_events", "tenant_id"),
    ("seat_changes", "tenant_id"),
];
const GLOBAL_TABLES: &[&str] = &["tenant_slugs", "credential_lookup"];

#[derive(DeriveIden)]
enum Plans {
    Table,
    Code,
    Name,
    SeatLimit,
    ApiRequestsPerSecond,
    ApiBurst,
    Features,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    Slug,
    TimeZone,
    Status,
    PlanCode,
    EmailVerifiedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TenantSlugs {
    Table,
    Slug,
    TenantId,
}

#[derive(DeriveIden)]
enum CredentialLookup {
    Table,
    Hash,
    Kind,
    TenantId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ClientOrgs {
    Table,
    Id,
    TenantId,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    DisplayName,
    PasswordHash,
    Roles,
    AllClients,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserClients {
    Table,
    TenantId,
    UserId,
    ClientId,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Name,
    Prefix,
    Hash,
    Scopes,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TenantId,
    UserId,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    RevokedReason,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Hash,
    TenantId,
    SessionId,
    IssuedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum OneTimeTokens {
    Table,
    Hash,
    TenantId,
    UserId,
    Purpose,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    TenantId,
    ActorType,
    ActorId,
    Action,
    TargetType,
    TargetId,
    ClientAddress,
    ClientIds,
    Details,
    OccurredAt,
}

#[derive(DeriveIden)]
enum SeatChanges {
    Table,
    Id,
    TenantId,
    Seats,
    Delta,
    UserId,
    OccurredAt,
}

fn tenant_fk<T: IntoIden + 'static>(table: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(Alias::new("tenant_id"))
        .to_tbl(Tenants::Table)
        .to_col(Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .col(
                        ColumnDef::new(Plans::Code)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(Plans::Name))
                    .col(ColumnDef::new(Plans::SeatLimit).integer().not_null())
                    .col(
                        ColumnDef::new(Plans::ApiRequestsPerSecond)
                            .double()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Plans::ApiBurst).integer().not_null())
                    .col(text(Plans::Features))
                    .col(time(Plans::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let now = chrono::Utc::now();
        for (code, name, seats, rate, burst, features) in [
            ("trial", "Trial", 3, 20.0, 100, "voice,chat"),
            ("starter", "Starter", 25, 50.0, 200, "voice,chat,email,sms"),
            (
                "pro",
                "Pro",
                500,
                200.0,
                400,
                "voice,chat,email,sms,recording,quality,wfm",
            ),
        ] {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(Plans::Table)
                        .columns([
                            Plans::Code,
                            Plans::Name,
                            Plans::SeatLimit,
                            Plans::ApiRequestsPerSecond,
                            Plans::ApiBurst,
                            Plans::Features,
                            Plans::CreatedAt,
                        ])
                        .values_panic([
                            code.into(),
                            name.into(),
                            seats.into(),
                            rate.into(),
                            burst.into(),
                            features.into(),
                            now.into(),
                        ])
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid_pk(Tenants::Id))
                    .col(text(Tenants::Name))
                    .col(
                        ColumnDef::new(Tenants::Slug)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(text(Tenants::TimeZone))
                    .col(text(Tenants::Status))
                    .col(text(Tenants::PlanCode))
                    .col(time_null(Tenants::EmailVerifiedAt))
                    .col(time(Tenants::CreatedAt))
                    .col(time(Tenants::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(Tenants::Table)
                            .from_col(Tenants::PlanCode)
                            .to_tbl(Plans::Table)
                            .to_col(Plans::Code),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TenantSlugs::Table)
                    .col(
                        ColumnDef::new(TenantSlugs::Slug)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(TenantSlugs::TenantId)
                            .uuid()
                            .not_null()
                            .unique_key(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CredentialLookup::Table)
                    .col(
                        ColumnDef::new(CredentialLookup::Hash)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(CredentialLookup::Kind))
                    .col(uuid_col(CredentialLookup::TenantId))
                    .col(time(CredentialLookup::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClientOrgs::Table)
                    .col(uuid_pk(ClientOrgs::Id))
                    .col(uuid_col(ClientOrgs::TenantId))
                    .col(text(ClientOrgs::Name))
                    .col(time(ClientOrgs::CreatedAt))
                    .foreign_key(&mut tenant_fk(ClientOrgs::Table))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid_pk(Users::Id))
                    .col(uuid_col(Users::TenantId))
                    .col(text(Users::Email))
                    .col(text(Users::DisplayName))
                    .col(ColumnDef::new(Users::PasswordHash).string().null())
                    .col(text(Users::Roles))
                    .col(ColumnDef::new(Users::AllClients).boolean().not_null())
                    .col(text(Users::Status))
                    .col(time(Users::CreatedAt))
                    .col(time(Users::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Users::Table))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserClients::Table)
                    .col(uuid_col(UserClients::TenantId))
                    .col(uuid_col(UserClients::UserId))
                    .col(uuid_col(UserClients::ClientId))
                    .primary_key(
                        Index::create()
                            .col(UserClients::UserId)
                            .col(UserClients::ClientId),
                    )
                    .foreign_key(&mut tenant_fk(UserClients::Table))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(UserClients::Table)
                            .from_col(UserClients::UserId)
                            .to_tbl(Users::Table)
                            .to_col(Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(UserClients::Table)
                            .from_col(UserClients::ClientId)
                            .to_tbl(ClientOrgs::Table)
                            .to_col(ClientOrgs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(uuid_pk(ApiKeys::Id))
                    .col(uuid_col(ApiKeys::TenantId))
                    .col(text(ApiKeys::Name))
                    .col(text(ApiKeys::Prefix))
                    .col(
                        ColumnDef::new(ApiKeys::Hash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(text(ApiKeys::Scopes))
                    .col(ColumnDef::new(ApiKeys::CreatedBy).uuid().null())
                    .col(time(ApiKeys::CreatedAt))
                    .col(time_null(ApiKeys::ExpiresAt))
                    .col(time_null(ApiKeys::RevokedAt))
                    .col(time_null(ApiKeys::LastUsedAt))
                    .foreign_key(&mut tenant_fk(ApiKeys::Table))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(uuid_pk(Sessions::Id))
                    .col(uuid_col(Sessions::TenantId))
                    .col(uuid_col(Sessions::UserId))
                    .col(time(Sessions::CreatedAt))
                    .col(time(Sessions::ExpiresAt))
                    .col(time_null(Sessions::RevokedAt))
                    .col(ColumnDef::new(Sessions::RevokedReason).string().null())
                    .foreign_key(&mut tenant_fk(Sessions::Table))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(Sessions::Table)
                            .from_col(Sessions::UserId)
                            .to_tbl(Users::Table)
                            .to_col(Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(
                        ColumnDef::new(RefreshTokens::Hash)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(uuid_col(RefreshTokens::TenantId))
                    .col(uuid_col(RefreshTokens::SessionId))
                    .col(time(RefreshTokens::IssuedAt))
                    .col(time_null(RefreshTokens::UsedAt))
                    .foreign_key(&mut tenant_fk(RefreshTokens::Table))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(RefreshTokens::Table)
                            .from_col(RefreshTokens::SessionId)
                            .to_tbl(Sessions::Table)
                            .to_col(Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OneTimeTokens::Table)
                    .col(
                        ColumnDef::new(OneTimeTokens::Hash)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(uuid_col(OneTimeTokens::TenantId))
                    .col(ColumnDef::new(OneTimeTokens::UserId).uuid().null())
                    .col(text(OneTimeTokens::Purpose))
                    .col(time(OneTimeTokens::ExpiresAt))
                    .col(time_null(OneTimeTokens::UsedAt))
                    .foreign_key(&mut tenant_fk(OneTimeTokens::Table))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(uuid_pk(AuditEvents::Id))
                    .col(uuid_col(AuditEvents::TenantId))
                    .col(text(AuditEvents::ActorType))
                    .col(ColumnDef::new(AuditEvents::ActorId).uuid().null())
                    .col(text(AuditEvents::Action))
                    .col(text(AuditEvents::TargetType))
                    .col(ColumnDef::new(AuditEvents::TargetId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::ClientAddress).string().null())
                    .col(text(AuditEvents::ClientIds))
                    .col(text(AuditEvents::Details))
                    .col(time(AuditEvents::OccurredAt))
                    .foreign_key(&mut tenant_fk(AuditEvents::Table))
                    .to_owned(),
            )
            .await?;
        for index in [
            Index::create()
                .name("client_orgs_tenant_name")
                .table(ClientOrgs::Table)
                .col(ClientOrgs::TenantId)
                .col(ClientOrgs::Name)
                .unique()
                .to_owned(),
            Index::create()
                .name("users_tenant_email")
                .table(Users::Table)
                .col(Users::TenantId)
                .col(Users::Email)
                .unique()
                .to_owned(),
            Index::create()
                .name("audit_events_tenant_id")
                .table(AuditEvents::Table)
                .col(AuditEvents::TenantId)
                .col(AuditEvents::Id)
                .to_owned(),
            Index::create()
                .name("user_clients_tenant_client")
                .table(UserClients::Table)
                .col(UserClients::TenantId)
                .col(UserClients::ClientId)
                .to_owned(),
        ] {
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SeatChanges::Table)
                    .col(uuid_pk(SeatChanges::Id))
                    .col(uuid_col(SeatChanges::TenantId))
                    .col(ColumnDef::new(SeatChanges::Seats).integer().not_null())
                    .col(ColumnDef::new(SeatChanges::Delta).integer().not_null())
                    .col(ColumnDef::new(SeatChanges::UserId).uuid().null())
                    .col(time(SeatChanges::OccurredAt))
                    .foreign_key(&mut tenant_fk(SeatChanges::Table))
                    .to_owned(),
            )
            .await?;

        if manager.get_database_backend() == DbBackend::Postgres {
            let connection = manager.get_connection();
            for statement in postgres_isolation_statements() {
                connection
                    .execute_raw(Statement::from_string(DbBackend::Postgres, statement))
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "seat_changes",
            "audit_events",
            "one_time_tokens",
            "refresh_tokens",
            "sessions",
            "api_keys",
            "user_clients",
            "users",
            "client_orgs",
            "credential_lookup",
            "tenant_slugs",
            "tenants",
            "plans",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The role, its grants, and one forced RLS policy per tenant-owned table.
fn postgres_isolation_statements() -> Vec<String> {
    let mut statements = vec![create_group_role(APP_ROLE)];
    statements.push(format!("GRANT USAGE ON SCHEMA public TO {APP_ROLE}"));
    statements.push(format!(
        "GRANT SELECT ON plans, seaql_migrations, installation TO {APP_ROLE}"
    ));
    for table in GLOBAL_TABLES {
        statements.push(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}"
        ));
    }
    for (table, column) in TENANT_TABLES {
        statements.extend(tenant_isolation(table, column, Visibility::Tenant));
    }
    statements
}
