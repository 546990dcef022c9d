//! What the configuration API answers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_flows::Flow;
use switchboard_tenancy::TenantId;
use uuid::Uuid;

use super::domain::{Basis, FlowSpec, ForcedMode, InboundRuleSpec, NextStep};
use super::error::{Result, SpecError};

/// A configured item: its id, its settings as sent (normalised) and
/// timestamps. In JSON the settings' fields sit beside `id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item<S> {
    /// For agent profiles, the user's id.
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: S,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An IVR flow: its draft and its latest published version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowView {
    #[serde(flatten)]
    pub item: Item<FlowSpec>,
    /// The draft's fingerprint (the same as a version's when they behave
    /// the same).
    pub fingerprint: String,
    /// The latest published version, if any; calls start on it.
    pub latest_version: Option<i32>,
}

/// An immutable published version of a flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowVersionView {
    pub flow_id: Uuid,
    /// 1, 2, … per flow.
    pub version: i32,
    pub definition: serde_json::Value,
    pub fingerprint: String,
    pub published_at: DateTime<Utc>,
    /// `user`, `api_key` or `system`.
    pub published_by_type: Option<String>,
    pub published_by: Option<Uuid>,
}

impl FlowVersionView {
    /// The version's flow, for the interpreter.
    pub fn flow(&self) -> Result<Flow> {
        Flow::from_value(&self.definition)
            .map_err(|error| SpecError::Internal(format!("stored flow version: {error}")))
    }
}

/// An inbound rule with its forced mode, if one is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleView {
    #[serde(flatten)]
    pub item: Item<InboundRuleSpec>,
    pub forced: Option<ForcedMode>,
}

/// Who owns a number (system-scope lookup for the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRoute {
    pub tenant: TenantId,
    pub number_id: Uuid,
    pub number: String,
    pub inbound_rule_id: Uuid,
    pub client_id: Option<Uuid>,
}

/// An inbound rule's choice at an instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleDecision {
    pub rule_id: Uuid,
    pub step: NextStep,
    pub basis: Basis,
}
