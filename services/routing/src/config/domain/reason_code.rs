//! Not-ready reason codes.

use serde::{Deserialize, Serialize};

use super::{ConfigKind, FieldError, Kind, Ref, Result, check_description, finish};

/// Reason codes the engine gives by itself; a tenant may not define them.
pub const RESERVED_REASON_CODES: [&str; 2] = ["missed", "declined"];
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
