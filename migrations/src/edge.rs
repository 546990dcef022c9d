//! Migrations of the tables the edge owns: its copy of each tenant's SIP
//! domain (from identity's events) and the SIP accounts of agents' phones.

pub mod m20261214_000011_create_edge;
