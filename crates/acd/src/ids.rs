//! Identifiers: the platform's UUID newtypes, so an agent id cannot be
//! passed where a queue id is expected.

pub use switchboard_tenancy::{AgentId, ContactId, QueueId, SkillId};

/// Why an agent is not ready ("lunch", "training", "missed", …).
pub type ReasonCode = String;
