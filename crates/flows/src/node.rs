//! The nodes of a flow, one type per kind, as admins write them in JSON.
//!
//! Node types are read one node at a time from the JSON object (see
//! [`parse_node`]) so that every error names its node; fields the type does
//! not have are errors, not ignored.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition::Condition;
use crate::ids::{AgentId, QueueId, RingGroupId, VoicemailBoxId};
use crate::phone::PhoneNumber;
use crate::prompt::{Language, Prompt};

/// The default of `timeout_seconds`: how long the edge waits for the first
/// key (and between keys).
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 5;
/// The default of `max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// One step of a flow. In JSON, an object whose `"type"` is the snake_case
/// name of the variant, with the fields of the variant's type.
///
/// [`Menu`], [`CollectDigits`] and [`OfferCallback`] wait for caller input;
/// [`Play`] waits for its prompt to be played; [`Branch`] and
/// [`SetLanguage`] are evaluated without a round trip to the edge;
/// [`Enqueue`], [`Transfer`], [`Voicemail`] and [`Hangup`] end the flow
/// (and so does an accepted [`OfferCallback`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Node {
    Play(Play),
    Menu(Menu),
    CollectDigits(CollectDigits),
    Branch(Branch),
    SetLanguage(SetLanguage),
    Enqueue(Enqueue),
    Transfer(Transfer),
    Voicemail(Voicemail),
    OfferCallback(OfferCallback),
    Hangup(Hangup),
}

/// Plays a prompt, then goes on to `next`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Play {
    pub prompt: Prompt,
    pub next: String,
}

/// Plays a prompt and waits for one key; each key of `options` leads to a
/// node.
///
/// A key that is not an option, or no key within `timeout_seconds`, is a
/// failed attempt: the caller hears `invalid_prompt` (or `no_input_prompt`)
/// if given, then the menu prompt again. Invalid keys and silences count
/// together; after `max_retries` retries (`max_retries + 1` attempts) the
/// call goes to `on_failure` without another prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub prompt: Prompt,
    /// DTMF key (`0`–`9`, `*`, `#`) → node.
    pub options: BTreeMap<String, String>,
    /// 1 to 60; default 5.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
    /// 0 to 5; default 2.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_input_prompt: Option<Prompt>,
    pub on_failure: String,
}

/// Plays a prompt and collects digits (`0`–`9`) into `variable`, then goes
/// on to `next`.
///
/// Entries shorter than `min_length`, longer than `max_length` or with
/// other keys are failed attempts, retried like a [`Menu`]'s, then
/// `on_failure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectDigits {
    pub prompt: Prompt,
    /// 1 to 64 letters, digits or `_`.
    pub variable: String,
    /// At least 1, at most `max_length`; default 1.
    #[serde(default = "default_min_length")]
    pub min_length: u32,
    /// 1 to 32.
    pub max_length: u32,
    /// `*` or `#`: the key that ends the entry before `max_length`; none by
    /// default (the entry then ends at `max_length` or on the timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminator: Option<String>,
    /// 1 to 60; default 5.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
    /// 0 to 5; default 2.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_prompt: Option<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_input_prompt: Option<Prompt>,
    pub next: String,
    pub on_failure: String,
}

/// Goes to the `next` of the first case whose condition holds, else to
/// `otherwise`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub conditions: Vec<Case>,
    pub otherwise: String,
}

/// One case of a [`Branch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub when: Condition,
    pub next: String,
}

/// Sets the call's language, then goes on to `next`. Later prompts without
/// a language of their own, and the queue the call ends in, use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLanguage {
    pub language: Language,
    pub next: String,
}

/// Ends the flow: the call waits in a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enqueue {
    pub queue_id: QueueId,
    /// 0 to 100, higher served first; overrides the queue's priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

/// Ends the flow: the call is transferred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub target: TransferTarget,
}

/// Where a [`Transfer`] goes. In JSON, an object with one key:
/// `{"agent_id": "<uuid>"}`, `{"ring_group_id": "<uuid>"}` or
/// `{"number": "+15551234567"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferTarget {
    #[serde(rename = "agent_id")]
    Agent(AgentId),
    #[serde(rename = "ring_group_id")]
    RingGroup(RingGroupId),
    /// An outside number, in E.164 form.
    #[serde(rename = "number")]
    Number(PhoneNumber),
}

/// Ends the flow: the caller leaves a message in a voicemail box, after
/// the greeting `prompt` if given (else the box's own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voicemail {
    pub box_id: VoicemailBoxId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
}

/// Offers a call back: plays a prompt and waits for one key.
/// `accept_digit` ends the flow with a callback request in `queue_id` to
/// the caller's number; any other key, or none within `timeout_seconds`,
/// goes to `declined`. There are no retries.
///
/// The callback goes to the caller's number as the edge reported it; a
/// flow that may get withheld numbers branches on
/// `{"caller_prefix": "+"}` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferCallback {
    pub prompt: Prompt,
    pub queue_id: QueueId,
    /// One DTMF key; default `1`.
    #[serde(default = "default_accept_digit")]
    pub accept_digit: String,
    /// 1 to 60; default 5.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
    pub declined: String,
}

/// Ends the flow: plays `prompt` if given, then hangs up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hangup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}

fn default_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

fn default_min_length() -> u32 {
    1
}

fn default_accept_digit() -> String {
    "1".to_owned()
}

/// An edge of the flow graph: from a node's `field` to node `target`.
pub(crate) struct Edge<'a> {
    /// The field as a path inside the node: `next`, `options.1`,
    /// `conditions[0].next`, …
    pub field: String,
    /// The field in words, for messages: `next`, `option "1"`,
    /// `condition 1`, …
    pub label: String,
    pub target: &'a str,
}

impl Node {
    /// The `"type"` of each node kind, in the order of [`Node`].
    pub const TYPES: [&'static str; 10] = [
        "play",
        "menu",
        "collect_digits",
        "branch",
        "set_language",
        "enqueue",
        "transfer",
        "voicemail",
        "offer_callback",
        "hangup",
    ];

    /// The node's `"type"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Play(_) => "play",
            Node::Menu(_) => "menu",
            Node::CollectDigits(_) => "collect_digits",
            Node::Branch(_) => "branch",
            Node::SetLanguage(_) => "set_language",
            Node::Enqueue(_) => "enqueue",
            Node::Transfer(_) => "transfer",
            Node::Voicemail(_) => "voicemail",
            Node::OfferCallback(_) => "offer_callback",
            Node::Hangup(_) => "hangup",
        }
    }

    /// Whether the node waits for the caller (a key or a timeout).
    pub fn waits_for_input(&self) -> bool {
        matches!(
            self,
            Node::Menu(_) | Node::CollectDigits(_) | Node::OfferCallback(_)
        )
    }

    /// Whether the flow can end at this node: the terminal nodes, and
    /// `offer_callback`, which ends it when the caller accepts.
    pub fn can_end_flow(&self) -> bool {
        matches!(
            self,
            Node::Enqueue(_)
                | Node::Transfer(_)
                | Node::Voicemail(_)
                | Node::Hangup(_)
                | Node::OfferCallback(_)
        )
    }

    /// The nodes this node can lead to, in field order.
    pub(crate) fn edges(&self) -> Vec<Edge<'_>> {
        fn edge<'a>(field: &str, target: &'a str) -> Edge<'a> {
            Edge {
                field: field.to_owned(),
                label: field.to_owned(),
                target,
            }
        }
        match self {
            Node::Play(play) => vec![edge("next", &play.next)],
            Node::Menu(menu) => menu
                .options
                .iter()
                .map(|(key, target)| Edge {
                    field: format!("options.{key}"),
                    label: format!("option {key:?}"),
                    target,
                })
                .chain([edge("on_failure", &menu.on_failure)])
                .collect(),
            Node::CollectDigits(collect) => vec![
                edge("next", &collect.next),
                edge("on_failure", &collect.on_failure),
            ],
            Node::Branch(branch) => branch
                .conditions
                .iter()
                .enumerate()
                .map(|(index, case)| Edge {
                    field: format!("conditions[{index}].next"),
                    label: format!("condition {}", index + 1),
                    target: &case.next,
                })
                .chain([edge("otherwise", &branch.otherwise)])
                .collect(),
            Node::SetLanguage(set) => vec![edge("next", &set.next)],
            Node::OfferCallback(offer) => vec![edge("declined", &offer.declined)],
            Node::Enqueue(_) | Node::Transfer(_) | Node::Voicemail(_) | Node::Hangup(_) => {
                Vec::new()
            }
        }
    }
}

/// Reads one node from its JSON object. On failure, the field at fault (a
/// path inside the node, if any) and the message.
pub(crate) fn parse_node(value: &Value) -> Result<Node, (Option<String>, String)> {
    let Value::Object(object) = value else {
        return Err((
            None,
            "a node must be a JSON object with a \"type\"".to_owned(),
        ));
    };
    let mut fields = object.clone();
    let type_name = match fields.remove("type") {
        Some(Value::String(type_name)) => type_name,
        Some(_) => {
            return Err((
                Some("type".to_owned()),
                "\"type\" must be a string".to_owned(),
            ));
        }
        None => {
            return Err((
                Some("type".to_owned()),
                format!("missing \"type\" (one of {})", Node::TYPES.join(", ")),
            ));
        }
    };
    let fields = Value::Object(fields);
    match type_name.as_str() {
        "play" => read(fields).map(Node::Play),
        "menu" => read(fields).map(Node::Menu),
        "collect_digits" => read(fields).map(Node::CollectDigits),
        "branch" => read(fields).map(Node::Branch),
        "set_language" => read(fields).map(Node::SetLanguage),
        "enqueue" => read(fields).map(Node::Enqueue),
        "transfer" => read(fields).map(Node::Transfer),
        "voicemail" => read(fields).map(Node::Voicemail),
        "offer_callback" => read(fields).map(Node::OfferCallback),
        "hangup" => read(fields).map(Node::Hangup),
        other => Err((
            Some("type".to_owned()),
            format!(
                "unknown node type {other:?} (expected one of {})",
                Node::TYPES.join(", ")
            ),
        )),
    }
}

/// Deserializes a node's fields, naming the field at fault.
fn read<T: DeserializeOwned>(fields: Value) -> Result<T, (Option<String>, String)> {
    serde_path_to_error::deserialize(fields).map_err(|error| {
        let path = error.path().to_string();
        // serde quotes names with backticks; our messages use "…".
        let message = error.inner().to_string().replace('`', "\"");
        // serde reports a missing field on the object that should hold it
        // (an unknown one is already in the path): name the field.
        let missing = message
            .strip_prefix("missing field \"")
            .and_then(|rest| rest.strip_suffix('"'));
        let field = match (path.as_str(), missing) {
            (".", Some(missing)) => Some(missing.to_owned()),
            (".", None) => None,
            (path, Some(missing)) => Some(format!("{path}.{missing}")),
            (path, None) => Some(path.to_owned()),
        };
        // An unknown field is the last segment of its path: say it once,
        // on the object that has it.
        let shown = if message.starts_with("unknown field") {
            path.rsplit_once('.').map_or(".", |(parent, _)| parent)
        } else {
            path.as_str()
        };
        let message = match shown {
            "." => message,
            shown => format!("{shown}: {message}"),
        };
        (field, message)
    })
}
