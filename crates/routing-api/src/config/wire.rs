//! The protobuf form of the configuration API's types
//! (`switchboard.routing.v1.RoutingConfiguration`), both ways. Settings
//! travel as their canonical JSON documents. In a request, ids that do not
//! parse are not found and settings that do not decode are a bad request;
//! an answer that does not decode is an internal error.

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_proto::routing::v1 as pb;
use switchboard_proto::time::{datetime, timestamp};
use switchboard_rpc::ServiceError;
use uuid::Uuid;

use super::{
    ChangedBy, FlowSpec, FlowVersionView, FlowView, ForcedMode, Item, Kind, Result, RuleView, Spec,
};

pub fn kind(kind: Kind) -> pb::ItemKind {
    match kind {
        Kind::Skill => pb::ItemKind::Skill,
        Kind::ReasonCode => pb::ItemKind::ReasonCode,
        Kind::AgentGroup => pb::ItemKind::AgentGroup,
        Kind::Schedule => pb::ItemKind::Schedule,
        Kind::Queue => pb::ItemKind::Queue,
        Kind::AgentProfile => pb::ItemKind::AgentProfile,
        Kind::RingGroup => pb::ItemKind::RingGroup,
        Kind::VoicemailBox => pb::ItemKind::VoicemailBox,
        Kind::Flow => pb::ItemKind::Flow,
        Kind::InboundRule => pb::ItemKind::InboundRule,
        Kind::Number => pb::ItemKind::Number,
        Kind::OutboundRule => pb::ItemKind::OutboundRule,
    }
}

/// The kind a message names; a bad request when it names none.
pub fn kind_of(kind: pb::ItemKind) -> Result<Kind> {
    Ok(match kind {
        pb::ItemKind::Skill => Kind::Skill,
        pb::ItemKind::ReasonCode => Kind::ReasonCode,
        pb::ItemKind::AgentGroup => Kind::AgentGroup,
        pb::ItemKind::Schedule => Kind::Schedule,
        pb::ItemKind::Queue => Kind::Queue,
        pb::ItemKind::AgentProfile => Kind::AgentProfile,
        pb::ItemKind::RingGroup => Kind::RingGroup,
        pb::ItemKind::VoicemailBox => Kind::VoicemailBox,
        pb::ItemKind::Flow => Kind::Flow,
        pb::ItemKind::InboundRule => Kind::InboundRule,
        pb::ItemKind::Number => Kind::Number,
        pb::ItemKind::OutboundRule => Kind::OutboundRule,
        pb::ItemKind::Unspecified => return Err(ServiceError::bad_request("no item kind")),
    })
}

/// An id from a request naming a `what`: not found when it does not parse.
pub fn request_id(text: &str, what: &str) -> Result<Uuid> {
    text.parse().map_err(|_| ServiceError::not_found(what))
}

/// An optional cursor from a request: empty is none.
pub fn cursor(text: &str) -> Result<Option<Uuid>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| ServiceError::field("cursor", "not an id"))
}

fn answer_id(text: &str) -> Result<Uuid> {
    text.parse()
        .map_err(|_| ServiceError::internal(format!("the answer's id {text:?} is not an id")))
}

fn time(at: Option<&prost_types::Timestamp>) -> Result<chrono::DateTime<chrono::Utc>> {
    at.and_then(datetime)
        .ok_or_else(|| ServiceError::internal("the answer lacks a time"))
}

/// `value` as its JSON document.
pub fn json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|error| ServiceError::internal(format!("not encoded: {error}")))
}

/// Settings from a request's JSON document: a bad request when they do
/// not decode.
pub fn settings<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|error| ServiceError::bad_request(format!("settings do not decode: {error}")))
}

fn answer<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|error| {
        ServiceError::internal(format!("the answer's settings do not decode: {error}"))
    })
}

/// A request's settings of any kind.
pub fn spec_of(kind: Kind, text: &str) -> Result<Spec> {
    let value: serde_json::Value = settings(text)?;
    Spec::from_json(kind, value)
        .map_err(|error| ServiceError::bad_request(format!("settings do not decode: {error}")))
}

/// The request saving `spec` (to item `id`, if given).
pub fn save_request(id: Option<Uuid>, spec: &Spec) -> Result<pb::SaveItemRequest> {
    let definition = spec
        .to_json()
        .map_err(|error| ServiceError::internal(format!("not encoded: {error}")))?;
    Ok(pb::SaveItemRequest {
        kind: kind(spec.kind()).into(),
        id: id.map(|id| id.to_string()).unwrap_or_default(),
        definition_json: definition.to_string(),
    })
}

pub fn item(item: &Item<impl Serialize>, of: Kind) -> Result<pb::Item> {
    Ok(pb::Item {
        id: item.id.to_string(),
        kind: kind(of).into(),
        definition_json: json(&item.spec)?,
        created_at: Some(timestamp(item.created_at)),
        updated_at: Some(timestamp(item.updated_at)),
    })
}

pub fn any_item(spec_item: &Item<Spec>) -> Result<pb::Item> {
    let definition = spec_item
        .spec
        .to_json()
        .map_err(|error| ServiceError::internal(format!("not encoded: {error}")))?;
    Ok(pb::Item {
        id: spec_item.id.to_string(),
        kind: kind(spec_item.spec.kind()).into(),
        definition_json: definition.to_string(),
        created_at: Some(timestamp(spec_item.created_at)),
        updated_at: Some(timestamp(spec_item.updated_at)),
    })
}

/// An answer's item of the kind it names.
pub fn any_item_of(message: pb::Item) -> Result<Item<Spec>> {
    let of = kind_of(message.kind()).map_err(|_| ServiceError::internal("no item kind"))?;
    let value: serde_json::Value = answer(&message.definition_json)?;
    let spec = Spec::from_json(of, value).map_err(|error| {
        ServiceError::internal(format!("the answer's settings do not decode: {error}"))
    })?;
    Ok(Item {
        id: answer_id(&message.id)?,
        spec,
        created_at: time(message.created_at.as_ref())?,
        updated_at: time(message.updated_at.as_ref())?,
    })
}

/// An answer's item of a known settings type.
pub fn item_of<S: DeserializeOwned>(message: Option<pb::Item>) -> Result<Item<S>> {
    let message = message.ok_or_else(|| ServiceError::internal("the answer has no item"))?;
    Ok(Item {
        id: answer_id(&message.id)?,
        spec: answer(&message.definition_json)?,
        created_at: time(message.created_at.as_ref())?,
        updated_at: time(message.updated_at.as_ref())?,
    })
}

pub fn actor(by: &ChangedBy) -> pb::Actor {
    pb::Actor {
        actor_type: by.actor_type.to_owned(),
        actor_id: by.actor_id.map(|id| id.to_string()),
    }
}

/// The actor a message names; a bad request when it is not one.
pub fn actor_of(actor: Option<&pb::Actor>) -> Result<ChangedBy> {
    let actor = actor.ok_or_else(|| ServiceError::bad_request("no actor"))?;
    let id = actor
        .actor_id
        .as_deref()
        .map(|id| id.parse())
        .transpose()
        .map_err(|_| ServiceError::bad_request("the actor's id is not an id"))?;
    ChangedBy::parse(&actor.actor_type, id)
        .ok_or_else(|| ServiceError::bad_request(format!("unknown actor {:?}", actor.actor_type)))
}

/// The principal of a service credential that acts for `by`.
pub fn principal(by: &ChangedBy) -> serde_json::Value {
    serde_json::json!({ "actor_type": by.actor_type, "actor_id": by.actor_id })
}

/// The actor a credential's principal names.
pub fn principal_of(principal: &serde_json::Value) -> Result<ChangedBy> {
    let actor_type = principal["actor_type"].as_str().unwrap_or_default();
    let actor_id = match &principal["actor_id"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(id) => Some(id.parse().map_err(|_| {
            ServiceError::unauthenticated("the credential's principal has a malformed actor id")
        })?),
        _ => None,
    };
    ChangedBy::parse(actor_type, actor_id).ok_or_else(|| {
        ServiceError::unauthenticated("the credential's principal is not a routing actor")
    })
}

pub fn rule(view: &RuleView) -> Result<pb::Rule> {
    let forced = view
        .forced
        .as_ref()
        .map(|forced| -> Result<pb::ForcedMode> {
            Ok(pb::ForcedMode {
                mode: json(&forced.mode)?.trim_matches('"').to_owned(),
                destination_json: forced.destination.as_ref().map(json).transpose()?,
                reason: forced.reason.clone(),
                set_by: Some(pb::Actor {
                    actor_type: forced.set_by_type.clone(),
                    actor_id: forced.set_by.map(|id| id.to_string()),
                }),
                set_at: Some(timestamp(forced.set_at)),
            })
        })
        .transpose()?;
    Ok(pb::Rule {
        item: Some(item(&view.item, Kind::InboundRule)?),
        forced,
    })
}

pub fn rule_of(message: pb::Rule) -> Result<RuleView> {
    let forced = message
        .forced
        .map(|forced| -> Result<ForcedMode> {
            let set_by = forced.set_by.unwrap_or_default();
            Ok(ForcedMode {
                mode: answer(&format!("{:?}", forced.mode))?,
                destination: forced.destination_json.as_deref().map(answer).transpose()?,
                reason: forced.reason,
                set_by_type: set_by.actor_type,
                set_by: set_by.actor_id.as_deref().map(answer_id).transpose()?,
                set_at: time(forced.set_at.as_ref())?,
            })
        })
        .transpose()?;
    Ok(RuleView {
        item: item_of(message.item)?,
        forced,
    })
}

pub fn flow(view: &FlowView) -> Result<pb::Flow> {
    Ok(pb::Flow {
        item: Some(item(&view.item, Kind::Flow)?),
        fingerprint: view.fingerprint.clone(),
        latest_version: view.latest_version,
    })
}

pub fn flow_of(message: pb::Flow) -> Result<FlowView> {
    Ok(FlowView {
        item: item_of::<FlowSpec>(message.item)?,
        fingerprint: message.fingerprint,
        latest_version: message.latest_version,
    })
}

pub fn flow_version(view: &FlowVersionView) -> Result<pb::FlowVersion> {
    Ok(pb::FlowVersion {
        flow_id: view.flow_id.to_string(),
        version: view.version,
        definition_json: json(&view.definition)?,
        fingerprint: view.fingerprint.clone(),
        published_at: Some(timestamp(view.published_at)),
        published_by: view.published_by_type.as_ref().map(|actor_type| pb::Actor {
            actor_type: actor_type.clone(),
            actor_id: view.published_by.map(|id| id.to_string()),
        }),
    })
}

pub fn flow_version_of(message: pb::FlowVersion) -> Result<FlowVersionView> {
    let (published_by_type, published_by) = match message.published_by {
        Some(actor) => (
            Some(actor.actor_type),
            actor.actor_id.as_deref().map(answer_id).transpose()?,
        ),
        None => (None, None),
    };
    Ok(FlowVersionView {
        flow_id: answer_id(&message.flow_id)?,
        version: message.version,
        definition: answer(&message.definition_json)?,
        fingerprint: message.fingerprint,
        published_at: time(message.published_at.as_ref())?,
        published_by_type,
        published_by,
    })
}
