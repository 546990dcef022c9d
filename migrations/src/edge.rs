//! Migrations of the tables the edge owns: its copy of each tenant's SIP
//! domain (from identity's events), the SIP accounts of agents' phones,
//! and tenants' carrier trunks.

pub mod m20261214_000011_create_edge;
pub mod m20261215_000012_create_edge_trunks;
pub mod m20261216_000014_edge_call_limits;
pub mod m20261217_000015_edge_trunk_registrations;
