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

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchboard_acd::{AgentProfile, Capacity, Channel, QueueConfig, Strategy};
use switchboard_flows::{ExternalId, Flow, FlowError, PhoneNumber, Prompt};
use switchboard_hours::{BusinessHours, HoursStatus};
use switchboard_tenancy::{AgentId, QueueId, SkillId};
use uuid::Uuid;

use super::error::{FieldError, Result, SpecError};

/// Longest name of a configured item, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Reason codes the engine gives by itself; a tenant may not define them.
pub const RESERVED_REASON_CODES: [&str; 2] = ["missed", "declined"];

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
    pub fn missing(&self, why: &str) -> SpecError {
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
/// each `…Spec`; the typed calls of [`RoutingConfigExt`](super::RoutingConfigExt)
/// take it as a type parameter (`config.get::<QueueSpec>(…)`).
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
        Err(SpecError::Validation(errors))
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

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

// ---- next steps ----

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
        #[cfg_attr(feature = "openapi", schema(value_type = Option<super::openapi::PromptSchema>))]
        message: Option<Prompt>,
    },
}

impl NextStep {
    fn validate(self, field: &str, errors: &mut Vec<FieldError>) -> Self {
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

    fn reference(&self, field: &str) -> Option<Ref> {
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
pub fn step_reference(step: &NextStep, field: &str) -> Option<Ref> {
    step.reference(field)
}

// ---- skills, reason codes, agent groups ----

/// A skill agents have and queues require.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillSpec {
    /// Unique in the tenant; 1 to 100 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "billing", min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// At most 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub description: String,
}

impl ConfigKind for SkillSpec {
    const KIND: Kind = Kind::Skill;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let name = check_name("name", &self.name, &mut errors);
        let description = check_description(&self.description, &mut errors);
        finish(SkillSpec { name, description }, errors)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        Vec::new()
    }
}

/// Why an agent is not ready ("lunch", "training"): the code agents pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReasonCodeSpec {
    /// The code: 1 to 64 lowercase letters, digits, `_` or `-`, unique in
    /// the tenant; `missed` and `declined` are the engine's own.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "lunch", pattern = "^[a-z0-9_-]{1,64}$")
    )]
    pub name: String,
    /// What agents see; at most 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub description: String,
}

impl ConfigKind for ReasonCodeSpec {
    const KIND: Kind = Kind::ReasonCode;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let name = self.name.trim().to_owned();
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
            })
        {
            errors.push(FieldError::new(
                "name",
                "a reason code is 1 to 64 lowercase letters, digits, \"_\" or \"-\"",
            ));
        } else if RESERVED_REASON_CODES.contains(&name.as_str()) {
            errors.push(FieldError::new(
                "name",
                format!("{name:?} is reserved for the routing engine"),
            ));
        }
        let description = check_description(&self.description, &mut errors);
        finish(ReasonCodeSpec { name, description }, errors)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        Vec::new()
    }
}

/// A group of agents (an outbound rule applies per group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentGroupSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// At most 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub description: String,
}

impl ConfigKind for AgentGroupSpec {
    const KIND: Kind = Kind::AgentGroup;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let name = check_name("name", &self.name, &mut errors);
        let description = check_description(&self.description, &mut errors);
        finish(AgentGroupSpec { name, description }, errors)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        Vec::new()
    }
}

// ---- schedules ----

/// Business hours with a name, for inbound rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// `{"time_zone", "weekly": [{"day", "open", "close"}], "special_days":
    /// [{"date", "name", "annual", "hours"}]}` (see switchboard-hours).
    #[cfg_attr(feature = "openapi", schema(value_type = Object, example = json!({
        "time_zone": "Europe/Paris",
        "weekly": [{"day": "mon", "open": "09:00", "close": "17:00"}],
        "special_days": [{"date": "2025-12-25", "name": "Christmas", "annual": true}]
    })))]
    pub hours: BusinessHours,
}

impl ConfigKind for ScheduleSpec {
    const KIND: Kind = Kind::Schedule;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let name = check_name("name", &self.name, &mut errors);
        if let Err(error) = self.hours.validate() {
            errors.push(FieldError::new(
                format!("hours.{}", error.field()),
                error.to_string(),
            ));
        }
        finish(
            ScheduleSpec {
                name,
                hours: self.hours,
            },
            errors,
        )
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        Vec::new()
    }
}

// ---- queues ----

/// A skill a queue requires, at a minimum proficiency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequiredSkill {
    pub skill_id: Uuid,
    /// 1 to 10.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub min_proficiency: u8,
}

/// The service-level target: `percent` of contacts answered within
/// `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceLevel {
    /// 1 to 100.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub percent: u8,
    /// 1 to 3600.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
    pub seconds: u32,
}

impl Default for ServiceLevel {
    fn default() -> Self {
        Self {
            percent: 80,
            seconds: 20,
        }
    }
}

/// Most contacts waiting; one more goes to `overflow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaxWaiting {
    /// 1 to 10000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    pub count: u32,
    pub overflow: NextStep,
}

/// Longest wait; a contact waiting longer goes to `overflow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaxWait {
    /// 1 to 86400.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub seconds: u32,
    pub overflow: NextStep,
}

/// Periodic announcements to waiting callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Announcements {
    /// 10 to 3600.
    #[cfg_attr(feature = "openapi", schema(minimum = 10, maximum = 3600))]
    pub every_seconds: u32,
    /// Announce the caller's position in the queue.
    #[serde(default)]
    pub position: bool,
    /// Announce the expected wait.
    #[serde(default)]
    pub expected_wait: bool,
}

/// A callback offer that keeps the caller's place in line (virtual hold).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallbackOffer {
    pub enabled: bool,
    /// Offered after this wait; 0 to 86400.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 86400))]
    pub after_seconds: u32,
}

fn default_ring_timeout() -> u32 {
    20
}

/// A queue of contacts of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Unique in the tenant.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Billing", min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// `voice`, `chat`, `sms` or `email`.
    #[cfg_attr(feature = "openapi", schema(value_type = super::openapi::ChannelSchema, example = "voice"))]
    pub channel: Channel,
    /// The client organization the queue serves (outsourcers); absent for
    /// the tenant's own.
    #[serde(default)]
    pub client_id: Option<Uuid>,
    #[serde(default)]
    pub required_skills: Vec<RequiredSkill>,
    /// 0 to 100, higher first.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub priority: u8,
    #[serde(default)]
    pub service_level: ServiceLevel,
    #[serde(default)]
    pub max_waiting: Option<MaxWaiting>,
    #[serde(default)]
    pub max_wait: Option<MaxWait>,
    /// How long an offer rings (1 to 300 s) before the agent is missed.
    #[serde(default = "default_ring_timeout")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 300))]
    pub ring_timeout_seconds: u32,
    /// After-contact work, 0 to 3600 s.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 3600))]
    pub wrap_up_seconds: u32,
    /// `longest_idle`, `least_occupied` or `round_robin`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = super::openapi::StrategySchema, example = "longest_idle"))]
    pub strategy: Strategy,
    #[serde(default)]
    pub announcements: Option<Announcements>,
    /// What waiting callers hear (`{"file"}` or `{"tts"}`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<super::openapi::PromptSchema>))]
    pub music_on_hold: Option<Prompt>,
    #[serde(default)]
    pub callback: CallbackOffer,
}

impl ConfigKind for QueueSpec {
    const KIND: Kind = Kind::Queue;

    fn validate(mut self) -> Result<Self> {
        let mut errors = Vec::new();
        self.name = check_name("name", &self.name, &mut errors);
        let mut skills = Vec::new();
        for (index, required) in self.required_skills.iter().enumerate() {
            check_range(
                &format!("required_skills[{index}].min_proficiency"),
                required.min_proficiency,
                1,
                10,
                &mut errors,
            );
            skills.push(required.skill_id);
        }
        no_duplicates("required_skills", &skills, &mut errors);
        check_range(
            "priority",
            self.priority,
            0,
            switchboard_acd::MAX_PRIORITY,
            &mut errors,
        );
        check_range(
            "service_level.percent",
            self.service_level.percent,
            1,
            100,
            &mut errors,
        );
        check_range(
            "service_level.seconds",
            self.service_level.seconds,
            1,
            3600,
            &mut errors,
        );
        if let Some(limit) = self.max_waiting.take() {
            check_range("max_waiting.count", limit.count, 1, 10_000, &mut errors);
            self.max_waiting = Some(MaxWaiting {
                count: limit.count,
                overflow: limit.overflow.validate("max_waiting.overflow", &mut errors),
            });
        }
        if let Some(limit) = self.max_wait.take() {
            check_range("max_wait.seconds", limit.seconds, 1, 86_400, &mut errors);
            self.max_wait = Some(MaxWait {
                seconds: limit.seconds,
                overflow: limit.overflow.validate("max_wait.overflow", &mut errors),
            });
        }
        check_range(
            "ring_timeout_seconds",
            self.ring_timeout_seconds,
            1,
            300,
            &mut errors,
        );
        check_range(
            "wrap_up_seconds",
            self.wrap_up_seconds,
            0,
            3600,
            &mut errors,
        );
        if let Some(announcements) = &self.announcements {
            check_range(
                "announcements.every_seconds",
                announcements.every_seconds,
                10,
                3600,
                &mut errors,
            );
        }
        check_range(
            "callback.after_seconds",
            self.callback.after_seconds,
            0,
            86_400,
            &mut errors,
        );
        finish(self, errors)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn client(&self) -> Option<Uuid> {
        self.client_id
    }

    fn references(&self) -> Vec<Ref> {
        let mut refs: Vec<Ref> = self
            .required_skills
            .iter()
            .enumerate()
            .map(|(index, required)| {
                Ref::new(
                    Kind::Skill,
                    required.skill_id,
                    format!("required_skills[{index}].skill_id"),
                )
            })
            .collect();
        if let Some(limit) = &self.max_waiting {
            refs.extend(limit.overflow.reference("max_waiting.overflow"));
        }
        if let Some(limit) = &self.max_wait {
            refs.extend(limit.overflow.reference("max_wait.overflow"));
        }
        refs
    }
}

impl QueueSpec {
    /// The engine's form of the queue `id`.
    pub fn to_acd(&self, id: QueueId) -> QueueConfig {
        QueueConfig {
            id,
            channel: self.channel,
            required_skills: self
                .required_skills
                .iter()
                .map(|required| {
                    (
                        SkillId::from_uuid(required.skill_id),
                        required.min_proficiency,
                    )
                })
                .collect(),
            priority: self.priority,
            strategy: self.strategy,
            ring_timeout: Duration::from_secs(u64::from(self.ring_timeout_seconds)),
            wrap_up: Duration::from_secs(u64::from(self.wrap_up_seconds)),
            max_waiting: self.max_waiting.as_ref().map(|limit| limit.count),
            client: self.client_id,
            service_level: Some(Duration::from_secs(u64::from(self.service_level.seconds))),
            // The tenant's zone is set by `RoutingConfig::queue_configs`.
            time_zone: None,
        }
    }
}

// ---- agent profiles ----

/// A skill of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentSkill {
    pub skill_id: Uuid,
    /// 1 to 10.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub proficiency: u8,
}

/// Contacts of each channel an agent may hold at once (0 to 50; 0 = not
/// on that channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelCapacity {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 50))]
    pub voice: u8,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 50))]
    pub chat: u8,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 50))]
    pub sms: u8,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 50))]
    pub email: u8,
}

impl Default for ChannelCapacity {
    fn default() -> Self {
        Self {
            voice: 1,
            chat: 0,
            sms: 0,
            email: 0,
        }
    }
}

fn yes() -> bool {
    true
}

/// What an agent (a user of the tenant, by its id) can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentProfileSpec {
    #[serde(default)]
    pub skills: Vec<AgentSkill>,
    #[serde(default)]
    pub capacity: ChannelCapacity,
    /// While on a call, nothing else is offered (default true).
    #[serde(default = "yes")]
    pub voice_blocks_others: bool,
    #[serde(default)]
    pub agent_group_ids: Vec<Uuid>,
}

impl ConfigKind for AgentProfileSpec {
    const KIND: Kind = Kind::AgentProfile;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let mut skills = Vec::new();
        for (index, skill) in self.skills.iter().enumerate() {
            check_range(
                &format!("skills[{index}].proficiency"),
                skill.proficiency,
                1,
                10,
                &mut errors,
            );
            skills.push(skill.skill_id);
        }
        no_duplicates("skills", &skills, &mut errors);
        no_duplicates("agent_group_ids", &self.agent_group_ids, &mut errors);
        for (channel, value) in [
            ("voice", self.capacity.voice),
            ("chat", self.capacity.chat),
            ("sms", self.capacity.sms),
            ("email", self.capacity.email),
        ] {
            check_range(&format!("capacity.{channel}"), value, 0, 50, &mut errors);
        }
        finish(self, errors)
    }

    fn name(&self) -> String {
        String::new()
    }

    fn references(&self) -> Vec<Ref> {
        let skills = self.skills.iter().enumerate().map(|(index, skill)| {
            Ref::new(
                Kind::Skill,
                skill.skill_id,
                format!("skills[{index}].skill_id"),
            )
        });
        let groups = self.agent_group_ids.iter().enumerate().map(|(index, id)| {
            Ref::new(Kind::AgentGroup, *id, format!("agent_group_ids[{index}]"))
        });
        skills.chain(groups).collect()
    }
}

impl AgentProfileSpec {
    /// The engine's form of agent `id`, serving `clients` (`None`: every
    /// client; from the user's client scope in identity).
    pub fn to_acd(&self, id: AgentId, clients: Option<Vec<Uuid>>) -> AgentProfile {
        AgentProfile {
            id,
            skills: self
                .skills
                .iter()
                .map(|skill| (SkillId::from_uuid(skill.skill_id), skill.proficiency))
                .collect(),
            capacity: Capacity {
                voice: self.capacity.voice,
                chat: self.capacity.chat,
                sms: self.capacity.sms,
                email: self.capacity.email,
            },
            voice_blocks_others: self.voice_blocks_others,
            clients,
        }
    }
}

// ---- ring groups, voicemail boxes ----

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

fn default_max_message() -> u32 {
    120
}

/// Where callers leave messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VoicemailBoxSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// Played before the tone (`{"file"}` or `{"tts"}`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<super::openapi::PromptSchema>))]
    pub greeting: Option<Prompt>,
    /// 10 to 600 s.
    #[serde(default = "default_max_message")]
    #[cfg_attr(feature = "openapi", schema(minimum = 10, maximum = 600))]
    pub max_message_seconds: u32,
}

impl ConfigKind for VoicemailBoxSpec {
    const KIND: Kind = Kind::VoicemailBox;

    fn validate(mut self) -> Result<Self> {
        let mut errors = Vec::new();
        self.name = check_name("name", &self.name, &mut errors);
        check_range(
            "max_message_seconds",
            self.max_message_seconds,
            10,
            600,
            &mut errors,
        );
        finish(self, errors)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        Vec::new()
    }
}

// ---- numbers, inbound rules ----

/// A phone number (DID) of the tenant, bound to an inbound rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NumberSpec {
    /// E.164; held by one tenant only.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "+33140000000", pattern = r"^\+[1-9][0-9]{0,14}$")
    )]
    pub number: String,
    pub inbound_rule_id: Uuid,
    #[serde(default)]
    pub client_id: Option<Uuid>,
    /// At most 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub description: String,
}

impl ConfigKind for NumberSpec {
    const KIND: Kind = Kind::Number;

    fn validate(mut self) -> Result<Self> {
        let mut errors = Vec::new();
        match check_e164("number", &self.number) {
            Ok(number) => self.number = number,
            Err(error) => errors.push(error),
        }
        self.description = check_description(&self.description, &mut errors);
        finish(self, errors)
    }

    fn name(&self) -> String {
        self.number.clone()
    }

    fn client(&self) -> Option<Uuid> {
        self.client_id
    }

    fn references(&self) -> Vec<Ref> {
        vec![Ref::new(
            Kind::InboundRule,
            self.inbound_rule_id,
            "inbound_rule_id",
        )]
    }
}

/// What calls to a number do: by the schedule's status (open, closed,
/// holiday), unless a forced mode is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InboundRuleSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    /// Without a schedule the rule is always open.
    #[serde(default)]
    pub schedule_id: Option<Uuid>,
    pub open: NextStep,
    pub closed: NextStep,
    /// On a holiday; the closed step if absent.
    #[serde(default)]
    pub holiday: Option<NextStep>,
}

impl ConfigKind for InboundRuleSpec {
    const KIND: Kind = Kind::InboundRule;

    fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let name = check_name("name", &self.name, &mut errors);
        let open = self.open.validate("open", &mut errors);
        let closed = self.closed.validate("closed", &mut errors);
        let holiday = self
            .holiday
            .map(|step| step.validate("holiday", &mut errors));
        finish(
            InboundRuleSpec {
                name,
                schedule_id: self.schedule_id,
                open,
                closed,
                holiday,
            },
            errors,
        )
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn references(&self) -> Vec<Ref> {
        let mut refs = Vec::new();
        if let Some(schedule) = self.schedule_id {
            refs.push(Ref::new(Kind::Schedule, schedule, "schedule_id"));
        }
        refs.extend(self.open.reference("open"));
        refs.extend(self.closed.reference("closed"));
        if let Some(holiday) = &self.holiday {
            refs.extend(holiday.reference("holiday"));
        }
        refs
    }
}

/// A forced mode's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ForcedKind {
    /// No forced mode: the schedule decides (clears a forced mode).
    None,
    Closed,
    Open,
    Holiday,
    /// Every call goes to `destination`.
    Destination,
}

/// A supervisor's override of an inbound rule's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ForcedModeSpec {
    pub mode: ForcedKind,
    /// Required with `destination`, refused otherwise.
    #[serde(default)]
    pub destination: Option<NextStep>,
    /// Why (at most 500 characters).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub reason: Option<String>,
}

impl ForcedModeSpec {
    pub fn validate(self) -> Result<Self> {
        let mut errors = Vec::new();
        let destination = match (self.mode, self.destination) {
            (ForcedKind::Destination, Some(step)) => {
                Some(step.validate("destination", &mut errors))
            }
            (ForcedKind::Destination, None) => {
                errors.push(FieldError::new(
                    "destination",
                    "required with mode \"destination\"",
                ));
                None
            }
            (_, Some(_)) => {
                errors.push(FieldError::new(
                    "destination",
                    "only with mode \"destination\"",
                ));
                None
            }
            (_, None) => None,
        };
        let reason = self
            .reason
            .map(|reason| reason.trim().to_owned())
            .filter(|reason| !reason.is_empty());
        if reason
            .as_ref()
            .is_some_and(|reason| reason.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            errors.push(FieldError::new(
                "reason",
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        finish(
            ForcedModeSpec {
                mode: self.mode,
                destination,
                reason,
            },
            errors,
        )
    }

    pub fn references(&self) -> Vec<Ref> {
        self.destination
            .iter()
            .filter_map(|step| step.reference("destination"))
            .collect()
    }
}

/// A forced mode in effect, with who set it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ForcedMode {
    pub mode: ForcedKind,
    #[serde(default)]
    pub destination: Option<NextStep>,
    #[serde(default)]
    pub reason: Option<String>,
    /// `user` or `api_key`.
    pub set_by_type: String,
    pub set_by: Option<Uuid>,
    pub set_at: DateTime<Utc>,
}

/// Why a rule chose its step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// The schedule's status at the instant.
    Schedule { status: HoursStatus },
    /// A forced mode.
    Forced { mode: ForcedKind },
}

/// Picks an inbound rule's step at an instant: a forced mode wins;
/// otherwise the schedule's status (no schedule: open). A holiday without
/// its own step takes the closed one.
pub fn decide(
    rule: &InboundRuleSpec,
    forced: Option<&ForcedMode>,
    hours: Option<&BusinessHours>,
    at: DateTime<Utc>,
) -> (NextStep, Basis) {
    let holiday = || rule.holiday.clone().unwrap_or_else(|| rule.closed.clone());
    if let Some(forced) = forced {
        let step = match (forced.mode, &forced.destination) {
            (ForcedKind::Open, _) => Some(rule.open.clone()),
            (ForcedKind::Closed, _) => Some(rule.closed.clone()),
            (ForcedKind::Holiday, _) => Some(holiday()),
            (ForcedKind::Destination, Some(step)) => Some(step.clone()),
            (ForcedKind::Destination, None) | (ForcedKind::None, _) => None,
        };
        if let Some(step) = step {
            return (step, Basis::Forced { mode: forced.mode });
        }
    }
    let status = hours.map_or(HoursStatus::Open, |hours| hours.status_at(at));
    let step = match &status {
        HoursStatus::Open => rule.open.clone(),
        HoursStatus::Closed => rule.closed.clone(),
        HoursStatus::Holiday { .. } => holiday(),
    };
    (step, Basis::Schedule { status })
}

// ---- flows ----

/// An IVR flow's draft: saved and validated at every change, published as
/// immutable versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = r"\S")
    )]
    pub name: String,
    #[serde(default)]
    pub client_id: Option<Uuid>,
    /// The flow graph: `{"start": <node id>, "nodes": {<id>: <node>}}` (see
    /// switchboard-flows for node types).
    #[cfg_attr(feature = "openapi", schema(value_type = super::openapi::FlowDefinitionSchema))]
    pub definition: serde_json::Value,
}

impl FlowSpec {
    /// The validated flow of the draft.
    pub fn flow(&self) -> Result<Flow> {
        Ok(Flow::from_value(&self.definition)?)
    }
}

/// What a flow's nodes refer to.
pub fn flow_references(flow: &Flow) -> Vec<Ref> {
    flow.references()
        .into_iter()
        .map(|reference| {
            let (kind, id) = match reference.id {
                ExternalId::Queue(id) => (Kind::Queue, id.as_uuid()),
                ExternalId::Agent(id) => (Kind::AgentProfile, id.as_uuid()),
                ExternalId::RingGroup(id) => (Kind::RingGroup, id.as_uuid()),
                ExternalId::VoicemailBox(id) => (Kind::VoicemailBox, id.as_uuid()),
            };
            Ref {
                kind,
                id,
                field: reference.field.to_owned(),
                node: Some(reference.node),
            }
        })
        .collect()
}

impl ConfigKind for FlowSpec {
    const KIND: Kind = Kind::Flow;

    fn validate(mut self) -> Result<Self> {
        let mut errors = Vec::new();
        self.name = check_name("name", &self.name, &mut errors);
        if !errors.is_empty() {
            return Err(SpecError::Validation(errors));
        }
        // Stored as the validated flow serialises (defaults filled in).
        let flow = self.flow()?;
        self.definition = serde_json::to_value(&flow)
            .map_err(|error| SpecError::Internal(format!("cannot serialise a flow: {error}")))?;
        Ok(self)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn client(&self) -> Option<Uuid> {
        self.client_id
    }

    fn references(&self) -> Vec<Ref> {
        self.flow()
            .map(|flow| flow_references(&flow))
            .unwrap_or_default()
    }
}

// ---- outbound rules ----

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
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<super::openapi::TrunkNameSchema>, min_items = 1, max_items = 10))]
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

#[cfg(test)]
mod tests;
