//! A flow: its nodes by id and the node calls start at, parsed and
//! validated in one step.

mod duplicates;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::FlowError;
use crate::ids::{AgentId, QueueId, RingGroupId, VoicemailBoxId};
use crate::node::{Node, TransferTarget, parse_node};
use crate::validate;

/// The most nodes a flow may have.
pub const MAX_NODES: usize = 500;

/// A valid flow. The only ways to get one are [`Flow::parse`],
/// [`Flow::from_value`] and their trait forms (`FromStr`,
/// `TryFrom<Value>`, `Deserialize`), which all validate, so a `Flow` in
/// hand always holds every rule of the crate documentation.
///
/// Serializes to the same JSON shape it is read from (with defaults
/// filled in), so it round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct Flow {
    start: String,
    nodes: BTreeMap<String, Node>,
    #[serde(skip)]
    fingerprint: String,
}

/// An outside resource a flow refers to, which must exist in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExternalId {
    Queue(QueueId),
    Agent(AgentId),
    RingGroup(RingGroupId),
    VoicemailBox(VoicemailBoxId),
}

/// Where a flow refers to an outside resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// The node that refers to it.
    pub node: String,
    /// Its field: `queue_id`, `target.agent_id`, `target.ring_group_id` or
    /// `box_id`.
    pub field: &'static str,
    pub id: ExternalId,
}

impl Flow {
    /// Reads and validates a flow from JSON text. Besides what
    /// [`Flow::from_value`] checks, rejects duplicate keys (a node id given
    /// twice would otherwise silently replace the first).
    pub fn parse(json: &str) -> Result<Flow, FlowError> {
        duplicates::check(json)?;
        let value: Value = serde_json::from_str(json)
            .map_err(|error| FlowError::flow(None, format!("invalid JSON: {error}")))?;
        Flow::from_value(&value)
    }

    /// Reads and validates a flow from a JSON value.
    pub fn from_value(value: &Value) -> Result<Flow, FlowError> {
        let Value::Object(object) = value else {
            return Err(FlowError::flow(
                None,
                "a flow must be a JSON object with \"start\" and \"nodes\"",
            ));
        };
        if let Some(key) = object
            .keys()
            .find(|key| !["start", "nodes"].contains(&key.as_str()))
        {
            return Err(FlowError::flow(
                Some(key),
                format!("unknown field {key:?}: a flow has only \"start\" and \"nodes\""),
            ));
        }
        let start = match object.get("start") {
            Some(Value::String(start)) => start.clone(),
            Some(_) => {
                return Err(FlowError::flow(
                    Some("start"),
                    "\"start\" must be a node id (a string)",
                ));
            }
            None => return Err(FlowError::flow(Some("start"), "the flow has no \"start\"")),
        };
        let raw_nodes = match object.get("nodes") {
            Some(Value::Object(nodes)) => nodes,
            Some(_) => {
                return Err(FlowError::flow(
                    Some("nodes"),
                    "\"nodes\" must be an object of node id to node",
                ));
            }
            None => return Err(FlowError::flow(Some("nodes"), "the flow has no \"nodes\"")),
        };
        if raw_nodes.len() > MAX_NODES {
            return Err(FlowError::flow(
                Some("nodes"),
                format!(
                    "a flow has at most {MAX_NODES} nodes, this one has {}",
                    raw_nodes.len()
                ),
            ));
        }
        let mut nodes = BTreeMap::new();
        for (id, raw) in raw_nodes {
            if !is_node_id(id) {
                return Err(FlowError::at(
                    id,
                    None,
                    "a node id must be 1 to 64 letters, digits, \"_\" or \"-\"",
                ));
            }
            let node = parse_node(raw)
                .map_err(|(field, message)| FlowError::at(id, field.as_deref(), message))?;
            nodes.insert(id.clone(), node);
        }
        let mut flow = Flow {
            start,
            nodes,
            fingerprint: String::new(),
        };
        validate::check(&flow)?;
        flow.fingerprint = flow.compute_fingerprint();
        Ok(flow)
    }

    /// The id of the node calls start at.
    pub fn start(&self) -> &str {
        &self.start
    }

    /// The node `id`, if the flow has it.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// All nodes, by id in byte order.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(id, node)| (id.as_str(), node))
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every outside resource the flow refers to (queues, agents, ring
    /// groups, voicemail boxes), by node id then field order, so the
    /// routing service can check each exists in the tenant before saving
    /// the flow. Transfers to phone numbers refer to nothing.
    pub fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        for (id, node) in &self.nodes {
            let (field, external) = match node {
                Node::Enqueue(enqueue) => ("queue_id", ExternalId::Queue(enqueue.queue_id)),
                Node::OfferCallback(offer) => ("queue_id", ExternalId::Queue(offer.queue_id)),
                Node::Voicemail(voicemail) => {
                    ("box_id", ExternalId::VoicemailBox(voicemail.box_id))
                }
                Node::Transfer(transfer) => match &transfer.target {
                    TransferTarget::Agent(agent) => ("target.agent_id", ExternalId::Agent(*agent)),
                    TransferTarget::RingGroup(group) => {
                        ("target.ring_group_id", ExternalId::RingGroup(*group))
                    }
                    TransferTarget::Number(_) => continue,
                },
                _ => continue,
            };
            references.push(Reference {
                node: id.clone(),
                field,
                id: external,
            });
        }
        references
    }

    /// A fingerprint of this version of the flow: the SHA-256 (hex) of its
    /// serialized form. Two flows have the same fingerprint exactly when
    /// they behave the same. A [`Session`](crate::Session) records it at
    /// start and refuses to advance on another flow.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn compute_fingerprint(&self) -> String {
        // Serializing maps and derived structs cannot fail.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl FromStr for Flow {
    type Err = FlowError;

    fn from_str(json: &str) -> Result<Self, FlowError> {
        Flow::parse(json)
    }
}

impl TryFrom<Value> for Flow {
    type Error = FlowError;

    fn try_from(value: Value) -> Result<Self, FlowError> {
        Flow::from_value(&value)
    }
}

/// Whether `id` can name a node: 1 to 64 ASCII letters, digits, `_` or `-`.
fn is_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}
