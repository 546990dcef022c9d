//! IVR flows: drafts, and what their nodes refer to.

use serde::{Deserialize, Serialize};
use switchboard_flows::{ExternalId, Flow};
use uuid::Uuid;

use super::{ConfigError, ConfigKind, Kind, Ref, Result, check_name};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
    #[cfg_attr(feature = "openapi", schema(value_type = crate::config::openapi::FlowDefinitionSchema))]
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
            return Err(ConfigError::Validation(errors));
        }
        // Stored as the validated flow serialises (defaults filled in).
        let flow = self.flow()?;
        self.definition = serde_json::to_value(&flow)
            .map_err(|error| ConfigError::Internal(format!("cannot serialise a flow: {error}")))?;
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
