//! Migrations of the tables the routing service owns: its configuration,
//! and its projection of identity's users, client organizations and
//! tenant settings.

pub mod m20261204_000005_create_routing;
pub mod m20261210_000010_identity_projection;
