//! The JSON Schema (draft 2020-12) of a flow definition, with one schema
//! per node type, for documents such as the OpenAPI document of the REST
//! API. It declares every check of [`Flow::parse`](crate::Flow::parse)
//! that a schema can express (fields, types, ranges, keys, patterns); the
//! graph rules (edges lead to nodes, reachability, loops, ends) and
//! `min_length ≤ max_length` are beyond it. The tests hold the schema to
//! the parser: whatever the schema accepts among the samples, the parser
//! accepts, and the other way round.
//!
//! The schemas keep to what OpenAPI tools model (and utoipa holds): a
//! `oneOf` only at the top of a named schema, every other schema typed.

use serde_json::{Value, json};

use crate::flow::MAX_NODES;
use crate::node::{DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_SECONDS, Node};

/// An E.164 number: `+`, 1 to 15 digits, the first not 0.
pub const E164_PATTERN: &str = r"^\+[1-9][0-9]{0,14}$";
/// A node id: 1 to 64 ASCII letters, digits, `_` or `-`.
pub const NODE_ID_PATTERN: &str = r"^[A-Za-z0-9_-]{1,64}$";
/// A flow variable's name: 1 to 64 ASCII letters, digits or `_`.
pub const VARIABLE_PATTERN: &str = r"^[A-Za-z0-9_]{1,64}$";
/// One DTMF key.
pub const DTMF_KEY_PATTERN: &str = r"^[0-9*#]$";
/// A language tag's shape (see [`Language`](crate::Language)).
pub const LANGUAGE_PATTERN: &str = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$";

/// Where a schema's references point: `#/$defs/<name>`.
pub const DEFS: &str = "#/$defs/";

/// The names of the node schemas in `$defs`, in the order of
/// [`Node::TYPES`].
pub const NODE_SCHEMAS: [&str; 10] = [
    "PlayNode",
    "MenuNode",
    "CollectDigitsNode",
    "BranchNode",
    "SetLanguageNode",
    "EnqueueNode",
    "TransferNode",
    "VoicemailNode",
    "OfferCallbackNode",
    "HangupNode",
];

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{DEFS}{name}") })
}

fn node_id(description: &str) -> Value {
    json!({ "type": "string", "pattern": NODE_ID_PATTERN, "description": description })
}

fn seconds(default: u32) -> Value {
    json!({
        "type": "integer", "minimum": 1, "maximum": 60, "default": default,
        "description": "Seconds to wait for the first key (and between keys)."
    })
}

fn retries() -> Value {
    json!({
        "type": "integer", "minimum": 0, "maximum": 5, "default": DEFAULT_MAX_RETRIES,
        "description": "Retries after an invalid entry or no input, then `on_failure`."
    })
}

/// A node's object schema: its `type`, then `properties`; `required` names
/// the fields without a default.
fn node(
    type_name: &str,
    description: &str,
    properties: Value,
    required: &[&str],
    example: Value,
) -> Value {
    let mut all = serde_json::Map::new();
    all.insert(
        "type".to_owned(),
        json!({ "type": "string", "enum": [type_name] }),
    );
    if let Value::Object(properties) = properties {
        all.extend(properties);
    }
    let mut names = vec!["type"];
    names.extend_from_slice(required);
    json!({
        "type": "object",
        "description": description,
        "properties": all,
        "required": names,
        "additionalProperties": false,
        "examples": [example],
    })
}

/// Every named schema of a flow definition, by name: `FlowDefinition`,
/// `FlowNode` (one of the node schemas, by `type`), each node type,
/// `Prompt`, `Condition`, `TransferTarget`. References between them are
/// `#/$defs/<name>` ([`DEFS`]).
pub fn definitions() -> Vec<(&'static str, Value)> {
    let queue_example = "0190a6d2-0000-7000-8000-000000000001";
    let nodes = [
        node(
            Node::TYPES[0],
            "Plays a prompt, then goes on to `next`.",
            json!({ "prompt": reference("Prompt"), "next": node_id("The node after the prompt.") }),
            &["prompt", "next"],
            json!({ "type": "play", "prompt": { "tts": "Welcome to Acme" }, "next": "menu" }),
        ),
        node(
            Node::TYPES[1],
            "Plays a prompt and waits for one key; each key of `options` leads to a node. A key \
             that is not an option, or no key within `timeout_seconds`, is a failed attempt (the \
             caller hears `invalid_prompt` or `no_input_prompt`, then the menu again); after \
             `max_retries` retries the call goes to `on_failure`.",
            json!({
                "prompt": reference("Prompt"),
                "options": {
                    "type": "object",
                    "description": "DTMF key (`0`–`9`, `*`, `#`) → node id.",
                    "minProperties": 1,
                    "propertyNames": { "type": "string", "pattern": DTMF_KEY_PATTERN },
                    "additionalProperties": node_id("The node the key leads to."),
                },
                "timeout_seconds": seconds(DEFAULT_TIMEOUT_SECONDS),
                "max_retries": retries(),
                "invalid_prompt": reference("Prompt"),
                "no_input_prompt": reference("Prompt"),
                "on_failure": node_id("The node after the last failed attempt."),
            }),
            &["prompt", "options", "on_failure"],
            json!({
                "type": "menu", "prompt": { "file": "prompts/main-menu.wav" },
                "options": { "1": "sales", "2": "support" },
                "invalid_prompt": { "tts": "Sorry, that is not an option." },
                "on_failure": "operator"
            }),
        ),
        node(
            Node::TYPES[2],
            "Plays a prompt and collects digits (`0`–`9`) into `variable`, then goes on to \
             `next`. Entries shorter than `min_length` (which may not exceed `max_length`), \
             longer than `max_length` or with other keys are failed attempts, retried like a \
             menu's, then `on_failure`.",
            json!({
                "prompt": reference("Prompt"),
                "variable": {
                    "type": "string", "pattern": VARIABLE_PATTERN,
                    "description": "Where the digits go; a `branch` can test it."
                },
                "min_length": { "type": "integer", "minimum": 1, "maximum": 32, "default": 1 },
                "max_length": { "type": "integer", "minimum": 1, "maximum": 32 },
                "terminator": {
                    "type": "string", "enum": ["*", "#"],
                    "description": "The key that ends the entry before `max_length`; none by default."
                },
                "timeout_seconds": seconds(DEFAULT_TIMEOUT_SECONDS),
                "max_retries": retries(),
                "invalid_prompt": reference("Prompt"),
                "no_input_prompt": reference("Prompt"),
                "next": node_id("The node after a valid entry."),
                "on_failure": node_id("The node after the last failed attempt."),
            }),
            &["prompt", "variable", "max_length", "next", "on_failure"],
            json!({
                "type": "collect_digits",
                "prompt": { "tts": "Please enter your account number, then press hash." },
                "variable": "account", "min_length": 6, "max_length": 10, "terminator": "#",
                "next": "account_check", "on_failure": "operator"
            }),
        ),
        node(
            Node::TYPES[3],
            "Goes to the `next` of the first case whose condition holds, else to `otherwise`.",
            json!({
                "conditions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "when": reference("Condition"),
                            "next": node_id("The node when the condition holds."),
                        },
                        "required": ["when", "next"],
                        "additionalProperties": false,
                    },
                },
                "otherwise": node_id("The node when no condition holds."),
            }),
            &["conditions", "otherwise"],
            json!({
                "type": "branch",
                "conditions": [{ "when": { "hours": "closed" }, "next": "closed_message" }],
                "otherwise": "menu"
            }),
        ),
        node(
            Node::TYPES[4],
            "Sets the call's language (later prompts without their own use it), then goes on to \
             `next`.",
            json!({
                "language": { "type": "string", "pattern": LANGUAGE_PATTERN, "maxLength": 35 },
                "next": node_id("The next node."),
            }),
            &["language", "next"],
            json!({ "type": "set_language", "language": "fr-FR", "next": "menu" }),
        ),
        node(
            Node::TYPES[5],
            "Ends the flow: the call waits in a queue of the tenant.",
            json!({
                "queue_id": { "type": "string", "format": "uuid" },
                "priority": {
                    "type": "integer", "minimum": 0, "maximum": 100,
                    "description": "Higher is served first; overrides the queue's priority."
                },
            }),
            &["queue_id"],
            json!({ "type": "enqueue", "queue_id": queue_example, "priority": 90 }),
        ),
        node(
            Node::TYPES[6],
            "Ends the flow: the call is transferred to an agent, a ring group or a number.",
            json!({ "target": reference("TransferTarget") }),
            &["target"],
            json!({ "type": "transfer", "target": { "number": "+15551234567" } }),
        ),
        node(
            Node::TYPES[7],
            "Ends the flow: the caller leaves a message in a voicemail box of the tenant, after \
             `prompt` if given (else the box's greeting).",
            json!({
                "box_id": { "type": "string", "format": "uuid" },
                "prompt": reference("Prompt"),
            }),
            &["box_id"],
            json!({
                "type": "voicemail", "box_id": "0190a6d2-0000-7000-8000-000000000003",
                "prompt": { "tts": "Please leave a message after the tone." }
            }),
        ),
        node(
            Node::TYPES[8],
            "Offers a call back: plays a prompt and waits for one key. `accept_digit` ends the \
             flow with a callback request in `queue_id`; any other key, or none within \
             `timeout_seconds`, goes to `declined`. No retries.",
            json!({
                "prompt": reference("Prompt"),
                "queue_id": { "type": "string", "format": "uuid" },
                "accept_digit": { "type": "string", "pattern": DTMF_KEY_PATTERN, "default": "1" },
                "timeout_seconds": seconds(DEFAULT_TIMEOUT_SECONDS),
                "declined": node_id("The node when the caller does not accept."),
            }),
            &["prompt", "queue_id", "declined"],
            json!({
                "type": "offer_callback", "prompt": { "tts": "Press 1 to be called back." },
                "queue_id": queue_example, "declined": "support"
            }),
        ),
        node(
            Node::TYPES[9],
            "Ends the flow: plays `prompt` if given, then hangs up.",
            json!({ "prompt": reference("Prompt") }),
            &[],
            json!({ "type": "hangup", "prompt": { "tts": "Goodbye." } }),
        ),
    ];

    let language = json!({ "type": "string", "pattern": LANGUAGE_PATTERN, "maxLength": 35 });
    let source = |name: &str, description: &str| {
        json!({
            "type": "object",
            "properties": {
                name: { "type": "string", "pattern": r"\S", "description": description },
                "language": language,
            },
            "required": [name],
            "additionalProperties": false,
        })
    };
    let prompt = json!({
        "description": "What the caller hears: exactly one of a recording (`file`) or text to \
                        speak (`tts`), in `language` if given (else the call's language).",
        "oneOf": [
            source("file", "A recording in the tenant's prompt store, by path."),
            source("tts", "Text for the speech synthesizer."),
        ],
        "examples": [{ "tts": "Welcome to Acme", "language": "en-US" }, { "file": "prompts/main-menu.wav" }],
    });
    // One subject, and for variables and attributes one test.
    let subject = |name: &str, schema: Value, test: Option<(&str, Value)>| {
        let mut properties = serde_json::Map::new();
        properties.insert(name.to_owned(), schema);
        let mut required = vec![name.to_owned()];
        if let Some((test, schema)) = test {
            properties.insert(test.to_owned(), schema);
            required.push(test.to_owned());
        }
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    };
    let variable = json!({ "type": "string", "pattern": VARIABLE_PATTERN });
    let attribute = json!({ "type": "string", "minLength": 1, "maxLength": 64 });
    let any_value = json!({
        "type": ["string", "number", "boolean", "object", "array", "null"],
        "description": "Any JSON value; numbers compare by value (`1` equals `1.0`)."
    });
    let present = json!({ "type": "boolean", "description": "Set (`true`) or not (`false`)." });
    let condition = json!({
        "description": "One test of a branch: the business-hours state, the caller's number \
                        (a prefix, `+` alone: not withheld; or exactly), a variable a \
                        `collect_digits` node set (digits: compare with a string), or a customer \
                        attribute (`equals` any JSON value, or `present`).",
        "oneOf": [
            subject("hours", json!({ "type": "string", "enum": ["open", "closed", "holiday"] }), None),
            subject("caller_prefix", json!({ "type": "string", "pattern": r"^\+([1-9][0-9]{0,14})?$" }), None),
            subject("caller_number", json!({ "type": "string", "pattern": E164_PATTERN }), None),
            subject("variable", variable.clone(), Some(("equals", json!({ "type": "string" })))),
            subject("variable", variable, Some(("present", present.clone()))),
            subject("attribute", attribute.clone(), Some(("equals", any_value))),
            subject("attribute", attribute, Some(("present", present))),
        ],
        "examples": [
            { "hours": "closed" },
            { "caller_prefix": "+33" },
            { "variable": "account", "equals": "123456" },
            { "attribute": "vip", "equals": true },
        ],
    });
    let target = |name: &str, schema: Value| {
        json!({
            "type": "object",
            "properties": { name: schema },
            "required": [name],
            "additionalProperties": false,
        })
    };
    let transfer_target = json!({
        "description": "Where a transfer goes: an agent (a user with an agent profile), a ring \
                        group, or an outside number in E.164 form.",
        "oneOf": [
            target("agent_id", json!({ "type": "string", "format": "uuid" })),
            target("ring_group_id", json!({ "type": "string", "format": "uuid" })),
            target("number", json!({ "type": "string", "pattern": E164_PATTERN })),
        ],
        "examples": [{ "number": "+15551234567" }],
    });
    let flow_node = json!({
        "description": "One step of a flow, by its `type`.",
        "oneOf": NODE_SCHEMAS.map(reference),
        "discriminator": {
            "propertyName": "type",
            "mapping": Node::TYPES
                .iter()
                .zip(NODE_SCHEMAS)
                .map(|(type_name, schema)| ((*type_name).to_owned(), Value::String(format!("{DEFS}{schema}"))))
                .collect::<serde_json::Map<_, _>>(),
        },
    });
    let definition = json!({
        "type": "object",
        "description": "An IVR flow: the node calls start at, and the nodes by id. Beyond this \
                        schema, every edge must lead to a node of the flow, every node be \
                        reachable from `start`, no loop may spin without waiting for the caller, \
                        and every node must lead to an end (`enqueue`, `transfer`, `voicemail`, \
                        `hangup`, an accepted `offer_callback`).",
        "properties": {
            "start": node_id("The node calls start at."),
            "nodes": {
                "type": "object",
                "maxProperties": MAX_NODES,
                "propertyNames": { "type": "string", "pattern": NODE_ID_PATTERN },
                "additionalProperties": reference("FlowNode"),
            },
        },
        "required": ["start", "nodes"],
        "additionalProperties": false,
        "examples": [{
            "start": "welcome",
            "nodes": {
                "welcome": { "type": "play", "prompt": { "tts": "Welcome to Acme" }, "next": "hours" },
                "hours": {
                    "type": "branch",
                    "conditions": [{ "when": { "hours": "open" }, "next": "menu" }],
                    "otherwise": "closed"
                },
                "menu": {
                    "type": "menu", "prompt": { "tts": "Press 1 for sales, 2 for a call back." },
                    "options": { "1": "sales", "2": "callback" }, "on_failure": "sales"
                },
                "sales": { "type": "enqueue", "queue_id": queue_example },
                "callback": {
                    "type": "offer_callback", "prompt": { "tts": "Press 1 to be called back." },
                    "queue_id": queue_example, "declined": "sales"
                },
                "closed": { "type": "hangup", "prompt": { "tts": "We are closed. Goodbye." } }
            }
        }],
    });

    let mut schemas = vec![
        ("FlowDefinition", definition),
        ("FlowNode", flow_node),
        ("Prompt", prompt),
        ("Condition", condition),
        ("TransferTarget", transfer_target),
    ];
    schemas.extend(NODE_SCHEMAS.into_iter().zip(nodes));
    schemas
}

/// A standalone JSON Schema of a flow definition: `FlowDefinition` with
/// the others in `$defs`.
pub fn json_schema() -> Value {
    let defs: serde_json::Map<String, Value> = definitions()
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "$ref": format!("{DEFS}FlowDefinition"),
    })
}

#[cfg(test)]
mod tests;
