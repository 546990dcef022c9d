//! Outbound rules: an agent group's trunks and caller id.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ConfigKind, FieldError, Kind, Ref, Result, check_name, finish};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// How an outbound rule picks among its trunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TrunkStrategy {
    /// In order; the next on failure.
    Sequential,
    RoundRobin,
    Random,
}

/// The caller id presented on outbound calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CallerId {
    /// One of the tenant's numbers for the whole group.
    Group { number_id: Uuid },
    /// The tenant number the contact concerns (the one dialled in, for a
    /// callback or a return call); `fallback_number_id` otherwise.
    PerNumber { fallback_number_id: Uuid },
}

/// Outbound calls of an agent group: which trunks, in which order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OutboundRuleSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    pub agent_group_id: Uuid,
    /// Trunk names, 1 to 10, in order of preference; each 1 to 64
    /// characters.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::config::openapi::TrunkNameSchema>, min_items = 1, max_items = 10))]
    pub trunks: Vec<String>,
    pub strategy: TrunkStrategy,
    pub caller_id: CallerId,
}

impl ConfigKind for OutboundRuleSpec {
    const KIND: Kind = Kind::OutboundRule;

    fn validate(mut self) -> Result<Self> {
        let mut errors = Vec::new();
        self.name = check_name("name", &self.name, &mut errors);
        if self.trunks.is_empty() || self.trunks.len() > 10 {
            errors.push(FieldError::new("trunks", "1 to 10 trunks"));
        }
        let mut seen = BTreeSet::new();
        for (index, trunk) in self.trunks.iter_mut().enumerate() {
            *trunk = trunk.trim().to_owned();
            if trunk.is_empty() || trunk.len() > 64 {
                errors.push(FieldError::new(
                    format!("trunks[{index}]"),
                    "a trunk name is 1 to 64 characters",
                ));
            } else if !seen.insert(trunk.clone()) {
                errors.push(FieldError::new(
                    format!("trunks[{index}]"),
                    format!("{trunk:?} is listed twice"),
                ));
            }
        }
        finish(self, errors)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        let number = match self.caller_id {
            CallerId::Group { number_id } => {
                Ref::new(Kind::Number, number_id, "caller_id.number_id")
            }
            CallerId::PerNumber { fallback_number_id } => Ref::new(
                Kind::Number,
                fallback_number_id,
                "caller_id.fallback_number_id",
            ),
        };
        vec![
            Ref::new(Kind::AgentGroup, self.agent_group_id, "agent_group_id"),
            number,
        ]
    }
}
