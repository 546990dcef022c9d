//! Queues: their settings, and their form for the ACD engine.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_acd::{Channel, QueueConfig, Strategy};
use switchboard_flows::Prompt;
use switchboard_tenancy::{QueueId, SkillId};
use uuid::Uuid;

use super::{
    ConfigKind, Kind, NextStep, Ref, Result, check_name, check_range, finish, no_duplicates,
};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
    #[cfg_attr(feature = "openapi", schema(value_type = crate::config::openapi::ChannelSchema, example = "voice"))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = crate::config::openapi::StrategySchema, example = "longest_idle"))]
    pub strategy: Strategy,
    #[serde(default)]
    pub announcements: Option<Announcements>,
    /// What waiting callers hear (`{"file"}` or `{"tts"}`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::config::openapi::PromptSchema>))]
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
