//! The edge's carrier trunks (issue 21, trunks): `edge_trunks`, one row
//! per trunk of a tenant.
//!
//! - Inbound: the source addresses a carrier sends from (a JSON array of
//!   IP networks, `inbound_sources`) and/or digest credentials. The digest
//!   username is unique across every tenant, since it names the trunk
//!   before its tenant is known; the password is kept only as its two
//!   digest HA1s (RFC 8760 SHA-256 and MD5) under the edge's realm, as
//!   agents' SIP accounts are (migration 11).
//! - Outbound: the carrier's host, port and transport, the username and
//!   password the edge answers the carrier's challenges with (kept as
//!   given, like webhook signing secrets: the carrier names its realm only
//!   when it challenges, so no HA1 can be computed beforehand), whether
//!   to register and for how long, the default caller ID, and the
//!   priority among the tenant's trunks (lower first).
//!
//! Under the forced tenant policy on PostgreSQL. The edge's admission of
//! inbound requests reads every tenant's enabled trunks before any tenant
//! is known, so the system workers' role may read the columns admission
//! needs, and never the outbound password.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::SYSTEM_ROLE;
use crate::shared::{
    Visibility, execute, tenant_isolation, text, text_null, time, uuid_col, uuid_pk,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EdgeTrunks {
    Table,
    Id,
    TenantId,
    Name,
    Enabled,
    InboundSources,
    InboundUsername,
    InboundHa1Sha256,
    InboundHa1Md5,
    OutboundHost,
    OutboundPort,
    OutboundTransport,
    OutboundUsername,
    OutboundPassword,
    Register,
    RegisterExpires,
    CallerId,
    Priority,
    CreatedAt,
    UpdatedAt,
}

/// What admission reads in system scope (see the module's comment).
const SYSTEM_COLUMNS: &str = "id, tenant_id, name, enabled, inbound_sources, inbound_username, \
                              inbound_ha1_sha256, inbound_ha1_md5";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EdgeTrunks::Table)
                    .col(uuid_pk(EdgeTrunks::Id))
                    .col(uuid_col(EdgeTrunks::TenantId))
                    .col(text(EdgeTrunks::Name))
                    .col(ColumnDef::new(EdgeTrunks::Enabled).boolean().not_null())
                    .col(text(EdgeTrunks::InboundSources))
                    .col(text_null(EdgeTrunks::InboundUsername))
                    .col(text_null(EdgeTrunks::InboundHa1Sha256))
                    .col(text_null(EdgeTrunks::InboundHa1Md5))
                    .col(text_null(EdgeTrunks::OutboundHost))
                    .col(ColumnDef::new(EdgeTrunks::OutboundPort).integer().null())
                    .col(text_null(EdgeTrunks::OutboundTransport))
                    .col(text_null(EdgeTrunks::OutboundUsername))
                    .col(text_null(EdgeTrunks::OutboundPassword))
                    .col(ColumnDef::new(EdgeTrunks::Register).boolean().not_null())
                    .col(
                        ColumnDef::new(EdgeTrunks::RegisterExpires)
                            .integer()
                            .not_null(),
                    )
                    .col(text_null(EdgeTrunks::CallerId))
                    .col(ColumnDef::new(EdgeTrunks::Priority).integer().not_null())
                    .col(time(EdgeTrunks::CreatedAt))
                    .col(time(EdgeTrunks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edge_trunks_tenant_name")
                    .table(EdgeTrunks::Table)
                    .col(EdgeTrunks::TenantId)
                    .col(EdgeTrunks::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Across tenants (NULLs, trunks without digest, never collide).
        manager
            .create_index(
                Index::create()
                    .name("edge_trunks_inbound_username")
                    .table(EdgeTrunks::Table)
                    .col(EdgeTrunks::InboundUsername)
                    .unique()
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for statement in tenant_isolation("edge_trunks", "tenant_id", Visibility::Tenant) {
            execute(manager, &statement).await?;
        }
        execute(
            manager,
            &format!("GRANT SELECT ({SYSTEM_COLUMNS}) ON edge_trunks TO {SYSTEM_ROLE}"),
        )
        .await?;
        execute(
            manager,
            &format!("CREATE POLICY system_workers ON edge_trunks TO {SYSTEM_ROLE} USING (true)"),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EdgeTrunks::Table).to_owned())
            .await?;
        Ok(())
    }
}
