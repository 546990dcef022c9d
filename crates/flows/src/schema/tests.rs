use serde_json::{Value, json};

use super::*;
use crate::Flow;
use crate::node::parse_node;
use crate::validate::check_node;

fn validator(name: &str) -> jsonschema::Validator {
    let mut schema = json_schema();
    schema["$ref"] = json!(format!("{DEFS}{name}"));
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// Whether the parser takes `node` on its own (its fields and ranges; the
/// graph rules need a whole flow).
fn parser_accepts(node: &Value) -> bool {
    parse_node(node)
        .map_err(|(_, message)| message)
        .and_then(|node| check_node(&node).map_err(|(_, message)| message))
        .is_ok()
}

const QUEUE: &str = "0190a6d2-0000-7000-8000-000000000001";

/// Nodes the parser takes and nodes it refuses, one fault each.
fn samples() -> Vec<Value> {
    let prompt = json!({ "tts": "Hello" });
    vec![
        // play
        json!({ "type": "play", "prompt": prompt, "next": "a" }),
        json!({ "type": "play", "prompt": prompt }),
        json!({ "type": "play", "prompt": prompt, "next": "a", "extra": 1 }),
        json!({ "type": "play", "prompt": {}, "next": "a" }),
        json!({ "type": "play", "prompt": { "file": "  " }, "next": "a" }),
        json!({ "type": "play", "prompt": { "file": "a.wav", "tts": "hi" }, "next": "a" }),
        json!({ "type": "play", "prompt": { "tts": "hi", "language": "english!" }, "next": "a" }),
        json!({ "type": "play", "prompt": { "tts": "hi", "language": "en-US" }, "next": "a" }),
        json!({ "type": "play", "prompt": { "tts": "hi", "volume": 3 }, "next": "a" }),
        json!({ "type": "play", "prompt": prompt, "next": 7 }),
        // menu
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a", "#": "b" }, "on_failure": "c" }),
        json!({ "type": "menu", "prompt": prompt, "options": {}, "on_failure": "c" }),
        json!({ "type": "menu", "prompt": prompt, "options": { "12": "a" }, "on_failure": "c" }),
        json!({ "type": "menu", "prompt": prompt, "options": { "a": "a" }, "on_failure": "c" }),
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a" }, "on_failure": "c", "timeout_seconds": 0 }),
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a" }, "on_failure": "c", "timeout_seconds": 60 }),
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a" }, "on_failure": "c", "timeout_seconds": 61 }),
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a" }, "on_failure": "c", "max_retries": 5 }),
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a" }, "on_failure": "c", "max_retries": 6 }),
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a" }, "on_failure": "c", "max_retries": -1 }),
        json!({ "type": "menu", "prompt": prompt, "options": { "1": "a" } }),
        // collect_digits
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "account", "max_length": 10, "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "acc-ount", "max_length": 10, "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "", "max_length": 10, "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "a", "max_length": 0, "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "a", "max_length": 32, "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "a", "max_length": 33, "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "a", "min_length": 0, "max_length": 3, "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "a", "max_length": 3, "terminator": "#", "next": "a", "on_failure": "b" }),
        json!({ "type": "collect_digits", "prompt": prompt, "variable": "a", "max_length": 3, "terminator": "5", "next": "a", "on_failure": "b" }),
        // branch and its conditions
        json!({ "type": "branch", "conditions": [{ "when": { "hours": "closed" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "hours": "later" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "hours": "open", "equals": 1 }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "hours": "open", "caller_prefix": "+1" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": {}, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "caller_prefix": "+" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "caller_prefix": "+0" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "caller_prefix": "44" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "caller_number": "+15551234567" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "caller_number": "+1234567890123456" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "variable": "account", "equals": "12" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "variable": "account", "equals": 12 }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "variable": "account" }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "variable": "account", "equals": "1", "present": true }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "attribute": "vip", "equals": true }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "attribute": "vip", "present": false }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "attribute": "", "present": true }, "next": "a" }], "otherwise": "b" }),
        json!({ "type": "branch", "conditions": [{ "when": { "hours": "open" }, "next": "a", "else": "c" }], "otherwise": "b" }),
        // set_language
        json!({ "type": "set_language", "language": "fr-FR", "next": "a" }),
        json!({ "type": "set_language", "language": "f", "next": "a" }),
        // enqueue
        json!({ "type": "enqueue", "queue_id": QUEUE }),
        json!({ "type": "enqueue", "queue_id": QUEUE, "priority": 100 }),
        json!({ "type": "enqueue", "queue_id": QUEUE, "priority": 101 }),
        json!({ "type": "enqueue", "queue_id": "not-a-uuid" }),
        json!({ "type": "enqueue", "queue_id": QUEUE, "next": "a" }),
        // transfer
        json!({ "type": "transfer", "target": { "number": "+15551234567" } }),
        json!({ "type": "transfer", "target": { "number": "0155512345" } }),
        json!({ "type": "transfer", "target": { "agent_id": QUEUE } }),
        json!({ "type": "transfer", "target": { "ring_group_id": QUEUE } }),
        json!({ "type": "transfer", "target": { "agent_id": QUEUE, "number": "+15551234567" } }),
        json!({ "type": "transfer", "target": { "queue_id": QUEUE } }),
        // voicemail
        json!({ "type": "voicemail", "box_id": QUEUE }),
        json!({ "type": "voicemail", "box_id": QUEUE, "prompt": { "file": "greeting.wav" } }),
        json!({ "type": "voicemail" }),
        // offer_callback
        json!({ "type": "offer_callback", "prompt": prompt, "queue_id": QUEUE, "declined": "a" }),
        json!({ "type": "offer_callback", "prompt": prompt, "queue_id": QUEUE, "declined": "a", "accept_digit": "*" }),
        json!({ "type": "offer_callback", "prompt": prompt, "queue_id": QUEUE, "declined": "a", "accept_digit": "12" }),
        json!({ "type": "offer_callback", "prompt": prompt, "queue_id": QUEUE, "declined": "a", "timeout_seconds": 0 }),
        // hangup, and no node at all
        json!({ "type": "hangup" }),
        json!({ "type": "hangup", "prompt": prompt }),
        json!({ "type": "hang_up" }),
        json!({ "prompt": prompt }),
        json!("hangup"),
    ]
}

#[test]
fn the_node_schema_accepts_exactly_the_nodes_the_parser_accepts() {
    let schema = validator("FlowNode");
    let samples = samples();
    let accepted = samples.iter().filter(|node| parser_accepts(node)).count();
    // Both sides of the line are sampled.
    assert!(accepted > 20 && accepted < samples.len() - 20, "{accepted}");
    for node in &samples {
        assert_eq!(
            schema.is_valid(node),
            parser_accepts(node),
            "schema vs parser on {node}: {:?}",
            schema
                .iter_errors(node)
                .map(|error| error.to_string())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn every_node_type_has_a_schema_with_a_valid_example() {
    let definitions = definitions();
    let node = validator("FlowNode");
    for (type_name, name) in Node::TYPES.iter().zip(NODE_SCHEMAS) {
        let (_, schema) = definitions
            .iter()
            .find(|(defined, _)| *defined == name)
            .unwrap_or_else(|| panic!("no schema {name}"));
        assert_eq!(schema["properties"]["type"]["enum"], json!([type_name]));
        let example = &schema["examples"][0];
        assert_eq!(example["type"], json!(type_name));
        assert!(parser_accepts(example), "{name}: {example}");
        assert!(node.is_valid(example), "{name}: {example}");
    }
    // Every schema's examples validate against it.
    for (name, schema) in &definitions {
        for example in schema["examples"].as_array().into_iter().flatten() {
            assert!(validator(name).is_valid(example), "{name}: {example}");
        }
    }
}

#[test]
fn the_example_flow_and_the_crate_example_are_valid_flows() {
    let definitions = definitions();
    let (_, definition) = definitions
        .iter()
        .find(|(name, _)| *name == "FlowDefinition")
        .unwrap();
    let example = &definition["examples"][0];
    Flow::from_value(example).unwrap();
    assert!(validator("FlowDefinition").is_valid(example));

    let mut too_many = json!({ "start": "n0", "nodes": {} });
    for n in 0..=MAX_NODES {
        too_many["nodes"][format!("n{n}")] = json!({ "type": "hangup" });
    }
    assert!(Flow::from_value(&too_many).is_err());
    assert!(!validator("FlowDefinition").is_valid(&too_many));
    let bad_id = json!({ "start": "a b", "nodes": { "a b": { "type": "hangup" } } });
    assert!(Flow::from_value(&bad_id).is_err());
    assert!(!validator("FlowDefinition").is_valid(&bad_id));
    let extra = json!({ "start": "a", "nodes": { "a": { "type": "hangup" } }, "name": "x" });
    assert!(Flow::from_value(&extra).is_err());
    assert!(!validator("FlowDefinition").is_valid(&extra));
}

/// The README's example flow (section "Flows") is a valid flow.
#[test]
fn the_readme_example_flow_is_valid() {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split_once("### Flows")
        .expect("the README has a Flows section")
        .1;
    let example = section
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the Flows section has a JSON example")
        .0;
    let flow = Flow::parse(example).unwrap();
    assert!(flow.node_count() > 3);
    let value: Value = serde_json::from_str(example).unwrap();
    assert!(validator("FlowDefinition").is_valid(&value));
}
