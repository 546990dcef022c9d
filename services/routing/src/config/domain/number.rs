//! Phone numbers (DIDs) and the inbound rule each is bound to.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ConfigKind, Kind, Ref, Result, check_description, check_e164, finish};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
