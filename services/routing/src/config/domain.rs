//! The routing configuration's rules, without I/O: what each kind of item
//! holds, how it is validated, what it refers to, how an inbound rule picks
//! its next step, and how queues and agent profiles become the ACD
//! engine's types.
//!
//! Every kind's settings (`…Spec`) are the JSON body an admin sends and
//! the JSON stored in the item's `definition` column. `validate` checks one
//! value on its own (ranges, E.164, business hours, flow graphs) and
//! normalises it (trimmed names); whether what it refers to exists in the
//! tenant is the store's check, from `references`.
//!
//! Each kind has its own module (`domain/<kind>.rs`, re-exported here);
//! this one holds what they share: [`Kind`], [`Ref`], [`ConfigKind`] and
//! the field checks.

use std::collections::BTreeSet;

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_flows::{FlowError, PhoneNumber};
use uuid::Uuid;

use super::error::{ConfigError, FieldError, Result};

/// Longest name of a configured item, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// The kinds of configured items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Skill,
    ReasonCode,
    AgentGroup,
    Schedule,
    Queue,
    AgentProfile,
    RingGroup,
    VoicemailBox,
    Flow,
    InboundRule,
    Number,
    OutboundRule,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Skill,
        Kind::ReasonCode,
        Kind::AgentGroup,
        Kind::Schedule,
        Kind::Queue,
        Kind::AgentProfile,
        Kind::RingGroup,
        Kind::VoicemailBox,
        Kind::Flow,
        Kind::InboundRule,
        Kind::Number,
        Kind::OutboundRule,
    ];

    /// The name stored in `routing_references`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Skill => "skill",
            Kind::ReasonCode => "reason_code",
            Kind::AgentGroup => "agent_group",
            Kind::Schedule => "schedule",
            Kind::Queue => "queue",
            Kind::AgentProfile => "agent_profile",
            Kind::RingGroup => "ring_group",
            Kind::VoicemailBox => "voicemail_box",
            Kind::Flow => "flow",
            Kind::InboundRule => "inbound_rule",
            Kind::Number => "number",
            Kind::OutboundRule => "outbound_rule",
        }
    }

    /// What the kind is called in messages.
    pub const fn noun(self) -> &'static str {
        match self {
            Kind::Skill => "skill",
            Kind::ReasonCode => "reason code",
            Kind::AgentGroup => "agent group",
            Kind::Schedule => "schedule",
            Kind::Queue => "queue",
            Kind::AgentProfile => "agent profile",
            Kind::RingGroup => "ring group",
            Kind::VoicemailBox => "voicemail box",
            Kind::Flow => "flow",
            Kind::InboundRule => "inbound rule",
            Kind::Number => "number",
            Kind::OutboundRule => "outbound rule",
        }
    }

    pub const fn table(self) -> &'static str {
        match self {
            Kind::Skill => "routing_skills",
            Kind::ReasonCode => "routing_reason_codes",
            Kind::AgentGroup => "routing_agent_groups",
            Kind::Schedule => "routing_schedules",
            Kind::Queue => "routing_queues",
            Kind::AgentProfile => "routing_agent_profiles",
            Kind::RingGroup => "routing_ring_groups",
            Kind::VoicemailBox => "routing_voicemail_boxes",
            Kind::Flow => "routing_flows",
            Kind::InboundRule => "routing_inbound_rules",
            Kind::Number => "routing_numbers",
            Kind::OutboundRule => "routing_outbound_rules",
        }
    }

    /// Whether items of this kind carry a client scope (outsourcers):
    /// numbers, flows and queues. The others are tenant-wide.
    pub const fn client_scoped(self) -> bool {
        matches!(self, Kind::Queue | Kind::Flow | Kind::Number)
    }

    /// Whether names are unique per tenant (numbers are unique across
    /// tenants; agent profiles have no name).
    pub const fn unique_name(self) -> bool {
        !matches!(self, Kind::AgentProfile | Kind::Number)
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Something a configured item refers to, which must exist in the tenant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    pub kind: Kind,
    pub id: Uuid,
    /// The referring field, as a path into the JSON body (for a flow,
    /// inside the node).
    pub field: String,
    /// For a flow: the node that refers to it.
    pub node: Option<String>,
}

impl Ref {
    pub fn new(kind: Kind, id: Uuid, field: impl Into<String>) -> Self {
        Self {
            kind,
            id,
            field: field.into(),
            node: None,
        }
    }

    /// The 400 answered when the referred item does not exist (or is not
    /// the caller's to use).
    pub fn missing(&self, why: &str) -> ConfigError {
        let message = format!("{} {} {why}", self.kind.noun(), self.id);
        match &self.node {
            Some(node) => FlowError::at(node, Some(&self.field), message).into(),
            None => FieldError::new(&self.field, message).into(),
        }
    }

    /// The field as stored in `routing_references` (unique per item).
    pub fn stored_field(&self) -> String {
        match &self.node {
            Some(node) => format!("nodes.{node}.{}", self.field),
            None => self.field.clone(),
        }
    }
}

/// A kind of configured item: its settings type and rules. Implemented by
/// each `…Spec`; the generic API of [`RoutingConfig`](super::RoutingConfig)
/// takes it as a type parameter (`config.get::<QueueSpec>(…)`).
pub trait ConfigKind:
    Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    const KIND: Kind;

    /// Checks the value on its own and normalises it.
    fn validate(self) -> Result<Self>;

    /// The stored name (the E.164 number for numbers; empty when unnamed).
    fn name(&self) -> String;

    /// The client organization, for the kinds that carry one.
    fn client(&self) -> Option<Uuid> {
        None
    }

    /// What the value refers to.
    fn references(&self) -> Vec<Ref>;
}

// ---- shared checks ----

fn check_name(field: &str, name: &str, errors: &mut Vec<FieldError>) -> String {
    let trimmed = name.trim().to_owned();
    if trimmed.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if trimmed.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            field,
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    trimmed
}

fn check_description(text: &str, errors: &mut Vec<FieldError>) -> String {
    let trimmed = text.trim().to_owned();
    if trimmed.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.push(FieldError::new(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    trimmed
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    value: T,
    min: T,
    max: T,
    errors: &mut Vec<FieldError>,
) {
    if value < min || value > max {
        errors.push(FieldError::new(
            field,
            format!("{value} is outside {min} to {max}"),
        ));
    }
}

/// Checks an E.164 number (`+`, 1 to 15 digits, the first not 0).
pub fn check_e164(field: &str, number: &str) -> Result<String, FieldError> {
    PhoneNumber::try_from(number.trim().to_owned())
        .map(String::from)
        .map_err(|message| FieldError::new(field, message))
}

fn finish<T>(value: T, errors: Vec<FieldError>) -> Result<T> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ConfigError::Validation(errors))
    }
}

fn no_duplicates(field: &str, ids: &[Uuid], errors: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    for (index, id) in ids.iter().enumerate() {
        if !seen.insert(id) {
            errors.push(FieldError::new(
                format!("{field}[{index}]"),
                format!("{id} is listed twice"),
            ));
        }
    }
}

mod agent_group;
mod agent_profile;
mod flow;
mod inbound_rule;
mod next_step;
mod number;
mod outbound_rule;
mod queue;
mod reason_code;
mod ring_group;
mod schedule;
mod skill;
mod voicemail_box;

pub use agent_group::AgentGroupSpec;
pub use agent_profile::{AgentProfileSpec, AgentSkill, ChannelCapacity};
pub use flow::{FlowSpec, flow_references};
pub use inbound_rule::{Basis, ForcedKind, ForcedMode, ForcedModeSpec, InboundRuleSpec, decide};
pub use next_step::NextStep;
pub(crate) use next_step::step_reference;
pub use number::NumberSpec;
pub use outbound_rule::{CallerId, OutboundRuleSpec, TrunkStrategy};
pub use queue::{
    Announcements, CallbackOffer, MaxWait, MaxWaiting, QueueSpec, RequiredSkill, ServiceLevel,
};
pub use reason_code::{RESERVED_REASON_CODES, ReasonCodeSpec};
pub use ring_group::{RingGroupSpec, RingStrategy};
pub use schedule::ScheduleSpec;
pub use skill::SkillSpec;
pub use voicemail_box::VoicemailBoxSpec;

#[cfg(test)]
mod tests;
