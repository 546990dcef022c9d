//! Ids of the tenant resources a flow refers to (the platform's id types).

pub use switchboard_tenancy::{AgentId, ParseIdError, QueueId, RingGroupId, VoicemailBoxId};
