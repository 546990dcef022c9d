//! Bodies of the agent desktop's routes (`/v1/agents/me…`) and of live
//! queue figures (`/v1/queues/stats`), and the messages of their
//! WebSocket streams.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use switchboard_acd::{AgentState, AgentView, Offer, Presence};
use switchboard_routing_api::acd::QueueFigures;

use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::openapi::string_enum;

/// The presences an agent can ask for (`PUT /v1/agents/me/presence`).
pub(crate) const PRESENCES: [&str; 3] = ["available", "not_ready", "offline"];

/// The agent states the API shows ([`AgentStateDto::state`]).
pub(crate) const AGENT_STATES: [&str; 6] = [
    "offline",
    "available",
    "not_ready",
    "reserved",
    "busy",
    "after_call_work",
];

/// [`PRESENCES`] as a schema.
pub(crate) struct PresenceSchema;

impl PartialSchema for PresenceSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "The presence an agent asks for; `not_ready` takes a reason code.",
            PRESENCES,
        )
    }
}

impl ToSchema for PresenceSchema {
    fn name() -> Cow<'static, str> {
        "Presence".into()
    }
}

/// [`AGENT_STATES`] as a schema.
pub(crate) struct AgentStateNameSchema;

impl PartialSchema for AgentStateNameSchema {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "An agent's state: `reserved` while a contact rings at it.",
            AGENT_STATES,
        )
    }
}

impl ToSchema for AgentStateNameSchema {
    fn name() -> Cow<'static, str> {
        "AgentStateName".into()
    }
}

/// An agent state as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AgentState)]
pub struct AgentStateDto {
    /// `offline`, `available`, `not_ready`, `reserved` (a contact is
    /// ringing), `busy` or `after_call_work`.
    #[schema(value_type = AgentStateNameSchema, example = "available")]
    pub state: String,
    /// The not-ready reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When after-call work ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl From<&AgentState> for AgentStateDto {
    fn from(state: &AgentState) -> Self {
        let (name, reason, until) = match state {
            AgentState::Offline => ("offline", None, None),
            AgentState::Available => ("available", None, None),
            AgentState::NotReady { reason } => ("not_ready", Some(reason.to_string()), None),
            AgentState::Reserved => ("reserved", None, None),
            AgentState::Busy => ("busy", None, None),
            AgentState::AfterCallWork { until } => ("after_call_work", None, Some(*until)),
        };
        Self {
            state: name.to_owned(),
            reason,
            until,
        }
    }
}

/// A contact ringing at the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Offer)]
pub struct OfferDto {
    pub contact_id: Uuid,
    pub queue_id: Uuid,
    pub offered_at: DateTime<Utc>,
    /// It rings out (and goes to another agent) at this time.
    pub expires_at: DateTime<Utc>,
    /// For a callback (the customer chose to be called back instead of
    /// waiting): the number to call, E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_number: Option<String>,
}

impl From<&Offer> for OfferDto {
    fn from(offer: &Offer) -> Self {
        Self {
            contact_id: offer.contact.as_uuid(),
            queue_id: offer.queue.as_uuid(),
            offered_at: offer.offered_at,
            expires_at: offer.expires_at,
            callback_number: None,
        }
    }
}

/// The signed-in agent: state, what it asked for, its contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Agent)]
pub struct AgentDto {
    pub agent_id: Uuid,
    pub state: AgentStateDto,
    /// The presence the agent asked for (`available`, `not_ready`,
    /// `offline`), which it returns to once its contacts are done.
    pub presence: AgentStateDto,
    /// Idle since (longest-idle routing).
    pub idle_since: DateTime<Utc>,
    /// Contacts offered to the agent, oldest first.
    pub offers: Vec<Uuid>,
    /// Contacts connected to the agent.
    pub contacts: Vec<Uuid>,
    /// Queues the agent is qualified for.
    pub queues: Vec<Uuid>,
}

impl From<&AgentView> for AgentDto {
    fn from(view: &AgentView) -> Self {
        Self {
            agent_id: view.profile.id.as_uuid(),
            state: (&view.state).into(),
            presence: (&AgentState::from(view.presence.clone())).into(),
            idle_since: view.idle_since,
            offers: view.offers.iter().map(|id| id.as_uuid()).collect(),
            contacts: view.contacts.iter().map(|id| id.as_uuid()).collect(),
            queues: view.queues.iter().map(|id| id.as_uuid()).collect(),
        }
    }
}

/// The presence to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PresenceRequest)]
pub struct PresenceBody {
    /// `available`, `not_ready` or `offline`.
    #[schema(value_type = PresenceSchema, example = "not_ready")]
    pub presence: String,
    /// A not-ready reason code (required with `not_ready`, refused
    /// otherwise), at most 64 characters.
    #[schema(example = "lunch", max_length = 64)]
    pub reason: Option<String>,
}

impl PresenceBody {
    /// The presence, or the field and what is wrong with it.
    pub fn presence(&self) -> Result<Presence, (&'static str, String)> {
        let reason = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|reason| !reason.is_empty());
        match (self.presence.as_str(), reason) {
            ("available", None) => Ok(Presence::Available),
            ("offline", None) => Ok(Presence::Offline),
            ("not_ready", Some(reason)) if reason.len() <= 64 => Ok(Presence::not_ready(reason)),
            ("not_ready", Some(_)) => Err(("reason", "must be at most 64 characters".into())),
            ("not_ready", None) => Err(("reason", "is required with `not_ready`".into())),
            ("available" | "offline", Some(_)) => {
                Err(("reason", "is only given with `not_ready`".into()))
            }
            (other, _) => Err((
                "presence",
                format!("must be `available`, `not_ready` or `offline`, not `{other}`"),
            )),
        }
    }
}

/// More after-call work.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WrapUpExtension)]
pub struct ExtendWrapUpBody {
    /// Seconds to add, 1–3600.
    #[schema(example = 60, minimum = 1, maximum = 3600)]
    pub seconds: u32,
}

/// One queue's live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = QueueStats)]
pub struct QueueStatsDto {
    pub queue_id: Uuid,
    /// Contacts waiting.
    pub waiting: u32,
    /// How long the contact waiting longest has waited, in seconds.
    pub oldest_wait_seconds: f64,
    /// Contacts ringing at an agent.
    pub offered: u32,
    /// Contacts connected to an agent.
    pub connected: u32,
    /// The queue's qualified agents by state.
    pub agents: AgentCountsDto,
    /// What a contact entering now may expect to wait, in seconds: 0 while
    /// an agent is free and nobody waits, else (waiting + 1) × today's
    /// average handle time ÷ the agents working the queue; absent when
    /// unknown.
    pub expected_wait_seconds: Option<f64>,
    /// Today's service level so far (0 to 1): answered within the queue's
    /// threshold ÷ (answered + abandoned after the threshold); absent
    /// before the first answered or abandoned contact.
    pub service_level: Option<f64>,
    /// Today's counts, from midnight in the tenant's time zone.
    pub today: QueueDayDto,
}

/// A queue's counts for one local day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = QueueDay)]
pub struct QueueDayDto {
    /// The local date.
    pub date: Option<chrono::NaiveDate>,
    pub entered: u32,
    pub answered: u32,
    pub answered_within_threshold: u32,
    pub abandoned: u32,
    /// Abandoned within the threshold (short abandons).
    pub abandoned_within_threshold: u32,
    /// Contacts that ended after being answered.
    pub handled: u32,
    /// Average speed of answer, in seconds.
    pub average_speed_of_answer_seconds: Option<f64>,
    /// Average handle time (talk plus after-contact work), in seconds.
    pub average_handle_time_seconds: Option<f64>,
}

/// Agents by state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AgentCounts)]
pub struct AgentCountsDto {
    pub offline: u32,
    pub available: u32,
    pub not_ready: u32,
    pub reserved: u32,
    pub busy: u32,
    pub after_call_work: u32,
}

impl From<&QueueFigures> for QueueStatsDto {
    fn from(figures: &QueueFigures) -> Self {
        let stats = &figures.stats;
        Self {
            queue_id: figures.queue.as_uuid(),
            waiting: stats.waiting,
            oldest_wait_seconds: stats.oldest_wait.as_secs_f64(),
            offered: stats.offered,
            connected: stats.connected,
            agents: AgentCountsDto {
                offline: stats.agents.offline,
                available: stats.agents.available,
                not_ready: stats.agents.not_ready,
                reserved: stats.agents.reserved,
                busy: stats.agents.busy,
                after_call_work: stats.agents.after_call_work,
            },
            expected_wait_seconds: stats.expected_wait.map(|wait| wait.as_secs_f64()),
            service_level: stats.service_level,
            today: QueueDayDto {
                date: stats.today.day,
                entered: stats.today.entered,
                answered: stats.today.answered,
                answered_within_threshold: stats.today.answered_within_threshold,
                abandoned: stats.today.abandoned,
                abandoned_within_threshold: stats.today.abandoned_within_threshold,
                handled: stats.today.handled,
                average_speed_of_answer_seconds: stats
                    .today
                    .average_speed_of_answer()
                    .map(|asa| asa.as_secs_f64()),
                average_handle_time_seconds: stats
                    .today
                    .average_handle_time()
                    .map(|aht| aht.as_secs_f64()),
            },
        }
    }
}

/// Every queue's live figures at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = QueueStatsList)]
pub struct QueueStatsListDto {
    pub at: DateTime<Utc>,
    pub queues: Vec<QueueStatsDto>,
}

/// A message of `/v1/agents/me/stream` (JSON text frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// The whole agent: on connect, and after messages may have been lost.
    Snapshot { agent: AgentDto },
    /// A contact rings at the agent: accept or decline it before
    /// `expires_at`.
    Offer { offer: OfferDto },
    /// An offer ended unanswered (declined, rang out, or the customer
    /// left): stop ringing.
    OfferWithdrawn { offer: OfferDto },
    /// The agent's state changed.
    State {
        from: AgentStateDto,
        to: AgentStateDto,
        cause: String,
        at: DateTime<Utc>,
    },
}

/// A message of `/v1/queues/stats/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueueStatsMessage {
    QueueStats {
        #[serde(flatten)]
        stats: QueueStatsListDto,
    },
}
