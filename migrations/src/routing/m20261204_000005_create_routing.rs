//! Routing configuration: skills, not-ready reason codes, queues, agent
//! profiles, agent groups, ring groups, voicemail boxes, schedules,
//! numbers, inbound rules, IVR flows with their published versions, and
//! outbound rules.
//!
//! Every configuration table has one shape: `id`, `tenant_id`, `name`,
//! `client_id` (the client organization of an outsourcer, for the kinds
//! that carry one), `definition` (the validated settings as JSON, read and
//! written by `switchboard-routing`'s config module only), `created_at`,
//! `updated_at`. Inbound rules add their `forced` mode; flow versions are
//! immutable rows of their own.
//!
//! - Names are unique per tenant, except numbers, whose `name` is the E.164
//!   number and unique across tenants: a number belongs to one tenant.
//! - `routing_references` lists what each configured item refers to (a
//!   queue's skills, a flow's queues, a rule's schedule, …), so a delete of
//!   something in use is refused without reading every definition.
//! - `routing_config_revisions` holds one row per tenant, bumped first by
//!   every configuration write: it serialises a tenant's writes (the row
//!   lock on PostgreSQL; the write lock taken by a first statement that
//!   writes on SQLite) and tells the runtime when to reload.
//!
//! On PostgreSQL every table gets the forced RLS policy of `shared.rs`,
//! confined to `app.tenant_id`; `routing_numbers` is also visible in system
//! scope, where the edge's lookup "which tenant and rule own this number"
//! runs before any tenant is known.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

use crate::shared::{Visibility, tenant_isolation, text, text_null, time, uuid_col, uuid_pk};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables of the common shape, and whether their names are unique per
/// tenant (`Some(false)`: across tenants; `None`: not named).
const CONFIG_TABLES: &[(&str, Option<bool>)] = &[
    ("routing_skills", Some(true)),
    ("routing_reason_codes", Some(true)),
    ("routing_agent_groups", Some(true)),
    ("routing_schedules", Some(true)),
    ("routing_queues", Some(true)),
    ("routing_agent_profiles", None),
    ("routing_ring_groups", Some(true)),
    ("routing_voicemail_boxes", Some(true)),
    ("routing_flows", Some(true)),
    ("routing_inbound_rules", Some(true)),
    ("routing_numbers", Some(false)),
    ("routing_outbound_rules", Some(true)),
];

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Config {
    Id,
    TenantId,
    Name,
    ClientId,
    Definition,
    Forced,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RoutingFlows {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum RoutingFlowVersions {
    Table,
    Id,
    TenantId,
    FlowId,
    Version,
    Definition,
    Fingerprint,
    PublishedAt,
    PublishedByType,
    PublishedBy,
}

#[derive(DeriveIden)]
enum RoutingReferences {
    Table,
    TenantId,
    FromKind,
    FromId,
    ToKind,
    ToId,
    Field,
}

#[derive(DeriveIden)]
enum RoutingConfigRevisions {
    Table,
    TenantId,
    Revision,
    UpdatedAt,
}

fn tenant_fk(table: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(Alias::new(table))
        .from_col(Alias::new("tenant_id"))
        .to_tbl(Tenants::Table)
        .to_col(Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, unique_name) in CONFIG_TABLES {
            let mut create = Table::create();
            create
                .table(Alias::new(*table))
                .col(uuid_pk(Config::Id))
                .col(uuid_col(Config::TenantId))
                .col(text(Config::Name))
                .col(ColumnDef::new(Config::ClientId).uuid().null())
                .col(ColumnDef::new(Config::Definition).text().not_null())
                .col(time(Config::CreatedAt))
                .col(time(Config::UpdatedAt))
                .foreign_key(&mut tenant_fk(table));
            if *table == "routing_inbound_rules" {
                // The forced mode (JSON), while one is set.
                create.col(ColumnDef::new(Config::Forced).text().null());
            }
            if *table == "routing_agent_profiles" {
                // A profile's id is its user's: it goes with the user.
                create.foreign_key(
                    ForeignKey::create()
                        .from_tbl(Alias::new(*table))
                        .from_col(Config::Id)
                        .to_tbl(Users::Table)
                        .to_col(Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                );
            }
            manager.create_table(create.to_owned()).await?;
            // Listing a tenant's items in id (creation) order.
            manager
                .create_index(
                    Index::create()
                        .name(format!("{table}_tenant_id"))
                        .table(Alias::new(*table))
                        .col(Config::TenantId)
                        .col(Config::Id)
                        .to_owned(),
                )
                .await?;
            match unique_name {
                Some(true) => {
                    manager
                        .create_index(
                            Index::create()
                                .name(format!("{table}_tenant_name"))
                                .table(Alias::new(*table))
                                .col(Config::TenantId)
                                .col(Config::Name)
                                .unique()
                                .to_owned(),
                        )
                        .await?
                }
                Some(false) => {
                    manager
                        .create_index(
                            Index::create()
                                .name(format!("{table}_name"))
                                .table(Alias::new(*table))
                                .col(Config::Name)
                                .unique()
                                .to_owned(),
                        )
                        .await?
                }
                None => {}
            }
        }
        manager
            .create_table(
                Table::create()
                    .table(RoutingFlowVersions::Table)
                    .col(uuid_pk(RoutingFlowVersions::Id))
                    .col(uuid_col(RoutingFlowVersions::TenantId))
                    .col(uuid_col(RoutingFlowVersions::FlowId))
                    .col(
                        ColumnDef::new(RoutingFlowVersions::Version)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RoutingFlowVersions::Definition)
                            .text()
                            .not_null(),
                    )
                    .col(text(RoutingFlowVersions::Fingerprint))
                    .col(time(RoutingFlowVersions::PublishedAt))
                    .col(text_null(RoutingFlowVersions::PublishedByType))
                    .col(
                        ColumnDef::new(RoutingFlowVersions::PublishedBy)
                            .uuid()
                            .null(),
                    )
                    .foreign_key(&mut tenant_fk("routing_flow_versions"))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(RoutingFlowVersions::Table)
                            .from_col(RoutingFlowVersions::FlowId)
                            .to_tbl(RoutingFlows::Table)
                            .to_col(RoutingFlows::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoutingReferences::Table)
                    .col(uuid_col(RoutingReferences::TenantId))
                    .col(text(RoutingReferences::FromKind))
                    .col(uuid_col(RoutingReferences::FromId))
                    .col(text(RoutingReferences::ToKind))
                    .col(uuid_col(RoutingReferences::ToId))
                    .col(text(RoutingReferences::Field))
                    .primary_key(
                        Index::create()
                            .col(RoutingReferences::FromId)
                            .col(RoutingReferences::ToId)
                            .col(RoutingReferences::Field),
                    )
                    .foreign_key(&mut tenant_fk("routing_references"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoutingConfigRevisions::Table)
                    .col(uuid_pk(RoutingConfigRevisions::TenantId))
                    .col(
                        ColumnDef::new(RoutingConfigRevisions::Revision)
                            .big_integer()
                            .not_null(),
                    )
                    .col(time(RoutingConfigRevisions::UpdatedAt))
                    .foreign_key(&mut tenant_fk("routing_config_revisions"))
                    .to_owned(),
            )
            .await?;
        for index in [
            Index::create()
                .name("routing_flow_versions_flow_version")
                .table(RoutingFlowVersions::Table)
                .col(RoutingFlowVersions::FlowId)
                .col(RoutingFlowVersions::Version)
                .unique()
                .to_owned(),
            // "Is this item in use?" before a delete.
            Index::create()
                .name("routing_references_tenant_to")
                .table(RoutingReferences::Table)
                .col(RoutingReferences::TenantId)
                .col(RoutingReferences::ToKind)
                .col(RoutingReferences::ToId)
                .to_owned(),
        ] {
            manager.create_index(index).await?;
        }

        if manager.get_database_backend() == DbBackend::Postgres {
            let connection = manager.get_connection();
            let mut statements = Vec::new();
            for (table, _) in CONFIG_TABLES {
                let visibility = if *table == "routing_numbers" {
                    Visibility::TenantOrSystem
                } else {
                    Visibility::Tenant
                };
                statements.extend(tenant_isolation(table, "tenant_id", visibility));
            }
            for table in [
                "routing_flow_versions",
                "routing_references",
                "routing_config_revisions",
            ] {
                statements.extend(tenant_isolation(table, "tenant_id", Visibility::Tenant));
            }
            for statement in statements {
                connection
                    .execute_raw(Statement::from_string(DbBackend::Postgres, statement))
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut tables = vec![
            "routing_config_revisions",
            "routing_references",
            "routing_flow_versions",
        ];
        tables.extend(CONFIG_TABLES.iter().rev().map(|(table, _)| *table));
        for table in tables {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
