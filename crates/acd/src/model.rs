//! What the engine is configured with and fed: queues, agent profiles,
//! contacts and the presence an agent asks for.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AcdError;
use crate::ids::{AgentId, ContactId, QueueId, ReasonCode, SkillId};

/// Longest ring timeout, wrap-up time or wrap-up extension accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Highest priority a queue or a contact may have.
pub const MAX_PRIORITY: u8 = 100;

/// Proficiencies (an agent's, or a queue's minimum) lie in this range.
pub const PROFICIENCY: std::ops::RangeInclusive<u8> = 1..=10;

/// The medium of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Voice,
    Chat,
    Sms,
    Email,
}

impl Channel {
    /// Every channel, in a fixed order.
    pub const ALL: [Channel; 4] = [Channel::Voice, Channel::Chat, Channel::Sms, Channel::Email];

    pub(crate) const fn index(self) -> usize {
        match self {
            Channel::Voice => 0,
            Channel::Chat => 1,
            Channel::Sms => 2,
            Channel::Email => 3,
        }
    }

    /// The lowercase name, as in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a queue picks among several agents able to take its contact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest (fewest active contacts first, then the
    /// earliest `idle_since`, then the lowest id).
    #[default]
    LongestIdle,
    /// The agent with the lowest occupancy since it came online; ties go
    /// to the longest idle.
    LeastOccupied,
    /// The next agent, in id order, after the one this queue offered to
    /// last; wraps around.
    RoundRobin,
}

/// A queue's configuration.
///
/// Durations are stored with millisecond precision (finer parts are
/// dropped when the queue is upserted) and appear in JSON as
/// `ring_timeout_ms` and `wrap_up_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    pub id: QueueId,
    pub channel: Channel,
    /// Skills an agent needs, each with the minimum proficiency (1..=10).
    #[serde(default)]
    pub required_skills: Vec<(SkillId, u8)>,
    /// Base priority of the queue's contacts, 0..=100, higher first.
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub strategy: Strategy,
    /// How long an offer rings before it expires (ring-no-answer).
    #[serde(rename = "ring_timeout_ms", with = "duration_ms")]
    pub ring_timeout: Duration,
    /// After-contact work time; zero for none.
    #[serde(rename = "wrap_up_ms", with = "duration_ms", default)]
    pub wrap_up: Duration,
    /// Most contacts that may wait; `None` for no limit.
    #[serde(default)]
    pub max_waiting: Option<u32>,
    /// Client organisation of an outsourcer; `None` for the tenant's own.
    #[serde(default)]
    pub client: Option<Uuid>,
    /// The service-level threshold: a contact answered within it counts
    /// as answered in service level ("80 % in 20 s": 20 s); `None` for no
    /// target.
    #[serde(
        rename = "service_level_ms",
        with = "duration_ms_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_level: Option<Duration>,
    /// The IANA time zone whose midnight starts "today" for the queue's
    /// day figures; `None` for UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl QueueConfig {
    /// A queue with no required skills, priority 0, longest-idle, a 20 s
    /// ring timeout, no wrap-up, no limit and no client.
    pub fn new(id: QueueId, channel: Channel) -> Self {
        QueueConfig {
            id,
            channel,
            required_skills: Vec::new(),
            priority: 0,
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(20),
            wrap_up: Duration::ZERO,
            max_waiting: None,
            client: None,
            service_level: None,
            time_zone: None,
        }
    }

    /// The zone of the day figures.
    pub(crate) fn zone(&self) -> chrono_tz::Tz {
        self.time_zone
            .as_deref()
            .and_then(|zone| zone.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    pub(crate) fn validate(&self) -> Result<(), AcdError> {
        if let Some(zone) = &self.time_zone
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(AcdError::InvalidConfig(format!(
                "queue {}: unknown time zone {zone:?}",
                self.id
            )));
        }
        for (skill, min) in &self.required_skills {
            if !PROFICIENCY.contains(min) {
                return Err(AcdError::InvalidConfig(format!(
                    "queue {}: required proficiency {min} for skill {skill} is outside 1..=10",
                    self.id
                )));
            }
        }
        if self.priority > MAX_PRIORITY {
            return Err(AcdError::InvalidConfig(format!(
                "queue {}: priority {} is above {MAX_PRIORITY}",
                self.id, self.priority
            )));
        }
        if self.ring_timeout < Duration::from_millis(1) {
            return Err(AcdError::InvalidConfig(format!(
                "queue {}: ring timeout must be at least 1 ms",
                self.id
            )));
        }
        check_duration("ring timeout", self.id, self.ring_timeout)?;
        check_duration("wrap-up", self.id, self.wrap_up)?;
        Ok(())
    }

    pub(crate) fn normalised(mut self) -> Self {
        self.ring_timeout = whole_millis(self.ring_timeout);
        self.wrap_up = whole_millis(self.wrap_up);
        self
    }
}

fn check_duration(what: &str, queue: QueueId, value: Duration) -> Result<(), AcdError> {
    if value > MAX_DURATION {
        return Err(AcdError::InvalidConfig(format!(
            "queue {queue}: {what} of {} ms is above 24 h",
            value.as_millis()
        )));
    }
    Ok(())
}

pub(crate) fn whole_millis(value: Duration) -> Duration {
    Duration::from_millis(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
}

/// How many contacts of each channel an agent may hold at once (offers
/// included); 0 = not on that channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capacity {
    #[serde(default)]
    pub voice: u8,
    #[serde(default)]
    pub chat: u8,
    #[serde(default)]
    pub sms: u8,
    #[serde(default)]
    pub email: u8,
}

impl Capacity {
    /// The capacity on `channel`.
    pub const fn get(&self, channel: Channel) -> u8 {
        match channel {
            Channel::Voice => self.voice,
            Channel::Chat => self.chat,
            Channel::Sms => self.sms,
            Channel::Email => self.email,
        }
    }

    /// Sets the capacity on `channel`.
    pub fn set(&mut self, channel: Channel, max: u8) {
        match channel {
            Channel::Voice => self.voice = max,
            Channel::Chat => self.chat = max,
            Channel::Sms => self.sms = max,
            Channel::Email => self.email = max,
        }
    }
}

/// What an agent can do: skills, per-channel capacity and client scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfile {
    pub id: AgentId,
    /// Proficiency (1..=10) per skill.
    #[serde(default)]
    pub skills: BTreeMap<SkillId, u8>,
    #[serde(default)]
    pub capacity: Capacity,
    /// While on a call no other channel is offered, and a call is offered
    /// only to an agent with no other contact (offers included).
    #[serde(default = "yes")]
    pub voice_blocks_others: bool,
    /// `None`: the agent may serve every queue. `Some(list)`: only queues
    /// whose client is in the list (not the tenant's own queues).
    #[serde(default)]
    pub clients: Option<Vec<Uuid>>,
}

fn yes() -> bool {
    true
}

impl AgentProfile {
    /// An agent with no skills, one voice line and no other channel,
    /// voice blocking other channels, serving every client.
    pub fn new(id: AgentId) -> Self {
        AgentProfile {
            id,
            skills: BTreeMap::new(),
            capacity: Capacity {
                voice: 1,
                ..Capacity::default()
            },
            voice_blocks_others: true,
            clients: None,
        }
    }

    /// Adds (or replaces) a skill.
    pub fn with_skill(mut self, skill: SkillId, proficiency: u8) -> Self {
        self.skills.insert(skill, proficiency);
        self
    }

    /// Sets the capacity on one channel.
    pub fn with_capacity(mut self, channel: Channel, max: u8) -> Self {
        self.capacity.set(channel, max);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), AcdError> {
        for (skill, proficiency) in &self.skills {
            if !PROFICIENCY.contains(proficiency) {
                return Err(AcdError::InvalidConfig(format!(
                    "agent {}: proficiency {proficiency} for skill {skill} is outside 1..=10",
                    self.id
                )));
            }
        }
        Ok(())
    }

    /// Whether the agent may ever take `queue`'s contacts: it has every
    /// required skill at the minimum proficiency, a capacity on the
    /// queue's channel, and its client scope allows the queue's client.
    pub fn qualifies_for(&self, queue: &QueueConfig) -> bool {
        self.capacity.get(queue.channel) > 0
            && queue.required_skills.iter().all(|(skill, min)| {
                self.skills
                    .get(skill)
                    .is_some_and(|proficiency| proficiency >= min)
            })
            && match (&self.clients, queue.client) {
                (None, _) => true,
                (Some(clients), Some(client)) => clients.contains(&client),
                (Some(_), None) => false,
            }
    }
}

/// The presence an agent (or a supervisor) asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "presence", rename_all = "snake_case")]
pub enum Presence {
    Offline,
    Available,
    NotReady { reason: ReasonCode },
}

impl Presence {
    /// Not ready for `reason`.
    pub fn not_ready(reason: impl Into<ReasonCode>) -> Self {
        Presence::NotReady {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presence::Offline => f.write_str("offline"),
            Presence::Available => f.write_str("available"),
            Presence::NotReady { reason } => write!(f, "not ready ({reason})"),
        }
    }
}

/// A contact to queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub queue: QueueId,
    /// Must be the queue's channel.
    pub channel: Channel,
    /// Overrides the queue's priority (0..=100, higher first).
    #[serde(default)]
    pub priority: Option<u8>,
    /// When the contact first joined a queue. A virtual-hold callback or
    /// an overflow passes the original time to keep its place.
    pub enqueued_at: DateTime<Utc>,
}

impl Contact {
    /// A contact with the queue's priority.
    pub fn new(
        id: ContactId,
        queue: QueueId,
        channel: Channel,
        enqueued_at: DateTime<Utc>,
    ) -> Self {
        Contact {
            id,
            queue,
            channel,
            priority: None,
            enqueued_at,
        }
    }

    /// With its own priority.
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }
}

/// Serde for a [`Duration`] as whole milliseconds.
/// Serde for an optional [`Duration`] as whole milliseconds.
pub(crate) mod duration_ms_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::duration_ms::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(deserializer).map(|ms| ms.map(Duration::from_millis))
    }
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}
