//! Voicemail boxes.

use serde::{Deserialize, Serialize};
use switchboard_flows::Prompt;

use super::{ConfigKind, Kind, Ref, Result, check_name, check_range, finish};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::config::openapi::PromptSchema>))]
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
