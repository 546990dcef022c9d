//! Agent profiles: an agent's skills and capacity, and their form for
//! the ACD engine.

use serde::{Deserialize, Serialize};
use switchboard_acd::{AgentProfile, Capacity};
use switchboard_tenancy::{AgentId, SkillId};
use uuid::Uuid;

use super::{ConfigKind, Kind, Ref, Result, check_range, finish, no_duplicates};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
