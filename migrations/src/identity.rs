//! Migrations of the tables identity owns (see [`crate::ownership`]).

pub mod m20261123_000002_create_identity;
pub mod m20261207_000009_credential_rights;
pub mod m20261216_000013_plan_call_limits;
