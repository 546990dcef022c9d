//! Skills: what agents have and queues require.

use serde::{Deserialize, Serialize};

use super::{ConfigKind, Kind, Ref, Result, check_description, check_name, finish};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
