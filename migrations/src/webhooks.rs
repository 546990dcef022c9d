//! Migrations of the tables the webhooks service owns.

pub mod m20261123_000004_create_webhooks;
