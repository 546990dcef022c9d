//! What to do with a contact: the step an inbound rule, a forced mode or
//! a queue's overflow leads to.

use serde::{Deserialize, Serialize};
use switchboard_flows::Prompt;
use uuid::Uuid;

use super::{FieldError, Kind, Ref, check_e164};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// What to do with a contact: an inbound rule's outcome, a forced
/// destination, a queue's overflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NextStep {
    /// Run the flow's latest published version.
    Flow {
        flow_id: Uuid,
    },
    /// Queue the contact, with its own priority (0 to 100) if given.
    Queue {
        queue_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
        priority: Option<u8>,
    },
    /// Offer to one agent (a user with an agent profile).
    Agent {
        agent_id: Uuid,
    },
    RingGroup {
        ring_group_id: Uuid,
    },
    Voicemail {
        box_id: Uuid,
    },
    /// Transfer to a phone number outside (E.164).
    External {
        #[cfg_attr(
            feature = "openapi",
            schema(pattern = r"^\+[1-9][0-9]{0,14}$", example = "+15551234567")
        )]
        number: String,
    },
    /// Hang up, after playing the message if given.
    Hangup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::config::openapi::PromptSchema>))]
        message: Option<Prompt>,
    },
}

impl NextStep {
    pub(super) fn validate(self, field: &str, errors: &mut Vec<FieldError>) -> Self {
        match self {
            NextStep::Queue {
                priority: Some(priority),
                ..
            } if priority > switchboard_acd::MAX_PRIORITY => {
                errors.push(FieldError::new(
                    format!("{field}.priority"),
                    format!("{priority} is above {}", switchboard_acd::MAX_PRIORITY),
                ));
                self
            }
            NextStep::External { number } => {
                match check_e164(&format!("{field}.number"), &number) {
                    Ok(number) => NextStep::External { number },
                    Err(error) => {
                        errors.push(error);
                        NextStep::External { number }
                    }
                }
            }
            other => other,
        }
    }

    pub(super) fn reference(&self, field: &str) -> Option<Ref> {
        let (kind, id, name) = match self {
            NextStep::Flow { flow_id } => (Kind::Flow, *flow_id, "flow_id"),
            NextStep::Queue { queue_id, .. } => (Kind::Queue, *queue_id, "queue_id"),
            NextStep::Agent { agent_id } => (Kind::AgentProfile, *agent_id, "agent_id"),
            NextStep::RingGroup { ring_group_id } => {
                (Kind::RingGroup, *ring_group_id, "ring_group_id")
            }
            NextStep::Voicemail { box_id } => (Kind::VoicemailBox, *box_id, "box_id"),
            NextStep::External { .. } | NextStep::Hangup { .. } => return None,
        };
        Some(Ref::new(kind, id, format!("{field}.{name}")))
    }
}

/// What a step refers to, as the field `field` of an item.
pub(crate) fn step_reference(step: &NextStep, field: &str) -> Option<Ref> {
    step.reference(field)
}
