//! Migrations of the node itself (the installation row) and those that
//! span every service's tables (least privilege: roles, grants, policies
//! and composite tenant keys). Listed in [`crate::Migrator`] in name order
//! with the others.

pub mod m20261123_000001_create_installation;
pub mod m20261207_000008_least_privilege;
