//! Ring groups: agents rung together or in turn.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ConfigKind, FieldError, Kind, Ref, Result, check_name, check_range, finish, no_duplicates,
};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// How a ring group rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RingStrategy {
    /// Every member at once; the first to answer takes the call.
    RingAll,
    /// One member after the other, in order, each for `timeout_seconds`.
    Sequential,
}

/// Agents rung together or in turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RingGroupSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// Agents (user ids with an agent profile), 1 to 50, in ringing order.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
    pub members: Vec<Uuid>,
    pub strategy: RingStrategy,
    /// 5 to 300 s: how long the group (ring all) or each member
    /// (sequential) rings.
    #[cfg_attr(feature = "openapi", schema(minimum = 5, maximum = 300))]
    pub timeout_seconds: u32,
}

impl ConfigKind for RingGroupSpec {
    const KIND: Kind = Kind::RingGroup;

    fn validate(mut self) -> Result<Self> {
        let mut errors = Vec::new();
        self.name = check_name("name", &self.name, &mut errors);
        if self.members.is_empty() || self.members.len() > 50 {
            errors.push(FieldError::new("members", "1 to 50 members"));
        }
        no_duplicates("members", &self.members, &mut errors);
        check_range("timeout_seconds", self.timeout_seconds, 5, 300, &mut errors);
        finish(self, errors)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        self.members
            .iter()
            .enumerate()
            .map(|(index, id)| Ref::new(Kind::AgentProfile, *id, format!("members[{index}]")))
            .collect()
    }
}
