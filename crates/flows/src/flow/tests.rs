//! Validation: each rule rejects with the exact error naming node and
//! field, and valid flows (up to the limits) are accepted.

use serde_json::{Value, json};

use super::*;
use crate::fixtures::{
    AGENT, CALLBACKS, RING_GROUP, SALES, SUPPORT, VIP, VOICEMAIL_BOX, acme, acme_json, queue,
    voicemail_box,
};

const TYPES: &str = "play, menu, collect_digits, branch, set_language, enqueue, transfer, \
                     voicemail, offer_callback, hangup";
const NO_END: &str = "no path from this node ends the call (enqueue, transfer, voicemail, \
                      hangup or an accepted offer_callback)";

/// A flow starting at `a`.
fn starting_at_a(nodes: Value) -> Value {
    json!({"start": "a", "nodes": nodes})
}

/// `base` with the fields of `changes` set (or removed, where `null`).
fn with(base: Value, changes: Value) -> Value {
    let (Value::Object(mut base), Value::Object(changes)) = (base, changes) else {
        panic!("with() takes two objects");
    };
    for (key, value) in changes {
        if value.is_null() {
            base.remove(&key);
        } else {
            base.insert(key, value);
        }
    }
    Value::Object(base)
}

fn hangup() -> Value {
    json!({"type": "hangup"})
}

fn play_to(next: &str) -> Value {
    json!({"type": "play", "prompt": {"tts": "Hello"}, "next": next})
}

fn menu() -> Value {
    json!({"type": "menu", "prompt": {"tts": "Press 1"}, "options": {"1": "end"},
           "on_failure": "end"})
}

fn collect() -> Value {
    json!({"type": "collect_digits", "prompt": {"tts": "Your account"}, "variable": "account",
           "min_length": 6, "max_length": 10, "next": "end", "on_failure": "end"})
}

fn offer() -> Value {
    json!({"type": "offer_callback", "prompt": {"tts": "Press 1 for a callback"},
           "queue_id": CALLBACKS, "declined": "end"})
}

/// A flow whose start node `a` is `node`, leading to a hangup `end`.
fn single(node: Value) -> Value {
    starting_at_a(json!({"a": node, "end": hangup()}))
}

/// A flow of the one terminal node `a`.
fn alone(node: Value) -> Value {
    starting_at_a(json!({"a": node}))
}

#[track_caller]
fn assert_rejected(flow: Value, node: Option<&str>, field: Option<&str>, display: &str) {
    let error = Flow::from_value(&flow).expect_err("the flow must be rejected");
    assert_eq!(error.to_string(), display);
    assert_eq!(error.node.as_deref(), node, "node of {display}");
    assert_eq!(error.field.as_deref(), field, "field of {display}");
}

#[track_caller]
fn assert_accepted(flow: Value) {
    if let Err(error) = Flow::from_value(&flow) {
        panic!("the flow must be accepted, got: {error}");
    }
}

#[test]
fn the_acme_example_is_valid_and_lists_its_references() {
    let flow = acme();
    assert_eq!(flow.start(), "welcome");
    assert_eq!(flow.node_count(), 15);
    assert_eq!(flow.node("menu").map(Node::type_name), Some("menu"));
    let reference = |node: &str, field, id| Reference {
        node: node.to_owned(),
        field,
        id,
    };
    assert_eq!(
        flow.references(),
        vec![
            reference("callback", "queue_id", ExternalId::Queue(queue(CALLBACKS))),
            reference("sales", "queue_id", ExternalId::Queue(queue(SALES))),
            reference("support", "queue_id", ExternalId::Queue(queue(SUPPORT))),
            reference("vip_queue", "queue_id", ExternalId::Queue(queue(VIP))),
            reference(
                "vm",
                "box_id",
                ExternalId::VoicemailBox(voicemail_box(VOICEMAIL_BOX))
            ),
        ]
    );
}

#[test]
fn transfers_to_agents_and_ring_groups_are_references_and_numbers_are_not() {
    let flow = Flow::from_value(&json!({"start": "m", "nodes": {
        "m": {"type": "menu", "prompt": {"tts": "Who?"},
              "options": {"1": "agent", "2": "group", "3": "outside"}, "on_failure": "outside"},
        "agent": {"type": "transfer", "target": {"agent_id": AGENT}},
        "group": {"type": "transfer", "target": {"ring_group_id": RING_GROUP}},
        "outside": {"type": "transfer", "target": {"number": "+15551234567"}}
    }}))
    .expect("valid");
    assert_eq!(
        flow.references(),
        vec![
            Reference {
                node: "agent".into(),
                field: "target.agent_id",
                id: ExternalId::Agent(AGENT.parse().expect("id")),
            },
            Reference {
                node: "group".into(),
                field: "target.ring_group_id",
                id: ExternalId::RingGroup(RING_GROUP.parse().expect("id")),
            },
        ]
    );
}

#[test]
fn a_flow_round_trips_through_json_with_defaults_filled_in() {
    let flow = acme();
    let json = serde_json::to_value(&flow).expect("serializes");
    assert_eq!(json["nodes"]["callback"]["timeout_seconds"], json!(5));
    assert_eq!(
        json["nodes"]["sales"],
        json!({"type": "enqueue", "queue_id": SALES})
    );
    assert_eq!(
        json["nodes"]["vip_check"]["conditions"][0]["when"],
        json!({"attribute": "vip", "equals": true})
    );
    let again = Flow::from_value(&json).expect("its own output is valid");
    assert_eq!(again, flow);
    assert_eq!(again.fingerprint(), flow.fingerprint());
}

#[test]
fn defaults_apply_to_omitted_timeouts_retries_and_lengths() {
    let flow = Flow::from_value(&single(with(
        collect(),
        json!({"min_length": null, "timeout_seconds": null, "max_retries": null}),
    )))
    .expect("valid");
    let Some(Node::CollectDigits(collect)) = flow.node("a") else {
        panic!("a is a collect_digits node");
    };
    assert_eq!(
        (
            collect.min_length,
            collect.timeout_seconds,
            collect.max_retries
        ),
        (1, 5, 2)
    );
}

#[test]
fn the_fingerprint_changes_with_the_flow() {
    let mut changed = acme_json();
    changed["nodes"]["bye"]["prompt"]["tts"] = json!("Bye now.");
    let changed = Flow::from_value(&changed).expect("valid");
    assert_eq!(acme().fingerprint().len(), 64);
    assert_ne!(changed.fingerprint(), acme().fingerprint());
}

#[test]
fn text_parsing_deserializing_and_from_str_validate_too() {
    let text = acme_json().to_string();
    assert_eq!(Flow::parse(&text).expect("valid"), acme());
    assert_eq!(text.parse::<Flow>().expect("valid"), acme());
    let bad = starting_at_a(json!({"a": {"type": "dance"}}));
    let error = serde_json::from_value::<Flow>(bad).expect_err("invalid");
    assert_eq!(
        error.to_string(),
        format!("node \"a\": unknown node type \"dance\" (expected one of {TYPES})")
    );
}

// The flow as a whole.

#[test]
fn a_flow_must_be_an_object_of_start_and_nodes() {
    assert_rejected(
        json!([]),
        None,
        None,
        "a flow must be a JSON object with \"start\" and \"nodes\"",
    );
    assert_rejected(
        with(single(hangup()), json!({"name": "Main line"})),
        None,
        Some("name"),
        "unknown field \"name\": a flow has only \"start\" and \"nodes\"",
    );
    assert_rejected(
        json!({"start": "a"}),
        None,
        Some("nodes"),
        "the flow has no \"nodes\"",
    );
    assert_rejected(
        json!({"start": "a", "nodes": ["a"]}),
        None,
        Some("nodes"),
        "\"nodes\" must be an object of node id to node",
    );
}

#[test]
fn a_flow_without_start_is_rejected() {
    assert_rejected(
        json!({"nodes": {"a": hangup()}}),
        None,
        Some("start"),
        "the flow has no \"start\"",
    );
    assert_rejected(
        json!({"start": 1, "nodes": {"a": hangup()}}),
        None,
        Some("start"),
        "\"start\" must be a node id (a string)",
    );
}

#[test]
fn a_start_that_is_not_a_node_is_rejected() {
    assert_rejected(
        json!({"start": "welcome", "nodes": {"a": hangup()}}),
        None,
        Some("start"),
        "start node \"welcome\" is not a node of the flow",
    );
    assert_rejected(
        json!({"start": "a", "nodes": {}}),
        None,
        Some("start"),
        "start node \"a\" is not a node of the flow",
    );
}

#[test]
fn malformed_json_text_is_rejected() {
    let error = Flow::parse("{\"start\": \"a\",").expect_err("malformed");
    assert_eq!(
        error,
        FlowError::flow(
            None,
            "invalid JSON: EOF while parsing a value at line 1 column 14"
        )
    );
}

#[test]
fn duplicate_keys_are_rejected_with_their_place() {
    let error = Flow::parse(
        r#"{"start": "a", "nodes": {"a": {"type": "hangup"}, "a": {"type": "hangup"}}}"#,
    )
    .expect_err("duplicate node");
    assert_eq!(
        error.to_string(),
        "invalid JSON: duplicate key \"a\" in \"nodes\" at line 1 column 53"
    );
    let error = Flow::parse(
        r#"{"start": "m", "nodes": {"m": {"type": "menu", "prompt": {"tts": "Hi"},
             "options": {"1": "end", "1": "m"}, "on_failure": "end"}, "end": {"type": "hangup"}}}"#,
    )
    .expect_err("duplicate option");
    assert_eq!(
        error.to_string(),
        "invalid JSON: duplicate key \"1\" in \"nodes.m.options\" at line 2 column 40"
    );
}

#[test]
fn node_ids_are_1_to_64_letters_digits_underscores_or_dashes() {
    let long = "n".repeat(65);
    for id in ["", "bad id", "menü", "a.b", long.as_str()] {
        assert_rejected(
            json!({"start": id, "nodes": {id: hangup()}}),
            Some(id),
            None,
            &format!("node {id:?}: a node id must be 1 to 64 letters, digits, \"_\" or \"-\""),
        );
    }
    let longest = "n".repeat(64);
    for id in ["A-b_9", longest.as_str()] {
        assert_accepted(json!({"start": id, "nodes": {id: hangup()}}));
    }
}

/// A chain of `count` nodes: plays, then a hangup.
fn chain(count: usize) -> Value {
    let mut nodes = serde_json::Map::new();
    for index in 0..count - 1 {
        nodes.insert(format!("n{index}"), play_to(&format!("n{}", index + 1)));
    }
    nodes.insert(format!("n{}", count - 1), hangup());
    json!({"start": "n0", "nodes": nodes})
}

#[test]
fn a_flow_has_at_most_500_nodes() {
    assert_accepted(chain(500));
    assert_rejected(
        chain(501),
        None,
        Some("nodes"),
        "a flow has at most 500 nodes, this one has 501",
    );
}

// One node's shape.

#[test]
fn unknown_node_types_are_named_with_their_node() {
    assert_rejected(
        single(json!({"type": "dance", "next": "end"})),
        Some("a"),
        Some("type"),
        &format!("node \"a\": unknown node type \"dance\" (expected one of {TYPES})"),
    );
}

#[test]
fn a_node_needs_a_type() {
    assert_rejected(
        single(json!({"prompt": {"tts": "Hi"}, "next": "end"})),
        Some("a"),
        Some("type"),
        &format!("node \"a\": missing \"type\" (one of {TYPES})"),
    );
    assert_rejected(
        single(json!({"type": 3})),
        Some("a"),
        Some("type"),
        "node \"a\": \"type\" must be a string",
    );
    assert_rejected(
        single(json!("hangup")),
        Some("a"),
        None,
        "node \"a\": a node must be a JSON object with a \"type\"",
    );
}

#[test]
fn unknown_fields_are_errors() {
    assert_rejected(
        single(with(play_to("end"), json!({"colour": "red"}))),
        Some("a"),
        Some("colour"),
        "node \"a\": unknown field \"colour\", expected \"prompt\" or \"next\"",
    );
    assert_rejected(
        single(with(
            play_to("end"),
            json!({"prompt": {"tts": "Hi", "voice": "Amy"}}),
        )),
        Some("a"),
        Some("prompt.voice"),
        "node \"a\": prompt: unknown field \"voice\", expected one of \"file\", \"tts\", \
         \"language\"",
    );
}

#[test]
fn terminal_nodes_have_no_next() {
    assert_rejected(
        alone(json!({"type": "enqueue", "queue_id": SALES, "next": "end"})),
        Some("a"),
        Some("next"),
        "node \"a\": unknown field \"next\", expected \"queue_id\" or \"priority\"",
    );
}

#[test]
fn values_of_the_wrong_type_name_their_field() {
    assert_rejected(
        single(with(menu(), json!({"timeout_seconds": "5"}))),
        Some("a"),
        Some("timeout_seconds"),
        "node \"a\": timeout_seconds: invalid type: string \"5\", expected u32",
    );
    assert_rejected(
        alone(json!({"type": "enqueue", "queue_id": "sales"})),
        Some("a"),
        Some("queue_id"),
        "node \"a\": queue_id: UUID parsing failed: invalid character: found \"s\" at 0",
    );
}

#[test]
fn non_terminal_nodes_need_their_next() {
    let cases = [
        (with(play_to("end"), json!({"next": null})), "next"),
        (with(collect(), json!({"on_failure": null})), "on_failure"),
        (with(menu(), json!({"on_failure": null})), "on_failure"),
        (
            json!({"type": "branch", "conditions": [{"when": {"hours": "open"}, "next": "end"}]}),
            "otherwise",
        ),
        (with(offer(), json!({"declined": null})), "declined"),
        (json!({"type": "set_language", "language": "fr-FR"}), "next"),
    ];
    for (node, field) in cases {
        assert_rejected(
            single(node),
            Some("a"),
            Some(field),
            &format!("node \"a\": missing field \"{field}\""),
        );
    }
}

// Prompts.

#[test]
fn nodes_that_play_need_a_prompt() {
    for node in [play_to("end"), menu(), collect(), offer()] {
        assert_rejected(
            single(with(node, json!({"prompt": null}))),
            Some("a"),
            Some("prompt"),
            "node \"a\": missing field \"prompt\"",
        );
    }
}

#[test]
fn a_prompt_needs_exactly_one_non_empty_file_or_tts() {
    for prompt in [
        json!({"file": "hello.wav", "tts": "Hello"}),
        json!({"language": "en-US"}),
        json!({"tts": "  "}),
        json!({"file": ""}),
    ] {
        assert_rejected(
            single(with(play_to("end"), json!({"prompt": prompt}))),
            Some("a"),
            Some("prompt"),
            "node \"a\": prompt: a prompt needs exactly one of a non-empty \"file\" or \"tts\"",
        );
    }
    assert_rejected(
        single(with(menu(), json!({"invalid_prompt": {}}))),
        Some("a"),
        Some("invalid_prompt"),
        "node \"a\": invalid_prompt: a prompt needs exactly one of a non-empty \"file\" or \
         \"tts\"",
    );
}

#[test]
fn languages_must_look_like_language_tags() {
    for tag in ["english", "e", "en_US", "en-", "en-toolongsubtag"] {
        assert_rejected(
            single(json!({"type": "set_language", "language": tag, "next": "end"})),
            Some("a"),
            Some("language"),
            &format!("node \"a\": language: {tag:?} is not a language tag such as \"en-US\""),
        );
    }
    assert_rejected(
        single(with(
            play_to("end"),
            json!({"prompt": {"tts": "Hi", "language": "EN US"}}),
        )),
        Some("a"),
        Some("prompt.language"),
        "node \"a\": prompt.language: \"EN US\" is not a language tag such as \"en-US\"",
    );
    for tag in ["en", "fr-FR", "zh-Hant-TW", "es-419"] {
        assert_accepted(single(
            json!({"type": "set_language", "language": tag, "next": "end"}),
        ));
    }
}

// Keys, lengths, timeouts, retries, priorities, numbers.

#[test]
fn menu_options_must_be_dtmf_keys() {
    for key in ["12", "A", "", "+"] {
        assert_rejected(
            single(with(menu(), json!({"options": {key: "end"}}))),
            Some("a"),
            Some(&format!("options.{key}")),
            &format!("node \"a\": option {key:?} is not a DTMF key (0-9, * or #)"),
        );
    }
    assert_rejected(
        single(with(menu(), json!({"options": {}}))),
        Some("a"),
        Some("options"),
        "node \"a\": a menu needs at least one option",
    );
    assert_accepted(single(with(
        menu(),
        json!({"options": {"0": "end", "9": "end", "*": "end", "#": "end"}}),
    )));
}

#[test]
fn terminators_are_star_or_hash() {
    for terminator in ["1", "##", ""] {
        assert_rejected(
            single(with(collect(), json!({"terminator": terminator}))),
            Some("a"),
            Some("terminator"),
            &format!("node \"a\": terminator {terminator:?} must be \"*\" or \"#\""),
        );
    }
    for terminator in ["*", "#"] {
        assert_accepted(single(with(collect(), json!({"terminator": terminator}))));
    }
}

#[test]
fn the_callback_accept_digit_is_one_dtmf_key() {
    for digit in ["12", "", "x"] {
        assert_rejected(
            single(with(offer(), json!({"accept_digit": digit}))),
            Some("a"),
            Some("accept_digit"),
            &format!("node \"a\": accept_digit {digit:?} is not a DTMF key (0-9, * or #)"),
        );
    }
    assert_accepted(single(with(offer(), json!({"accept_digit": "#"}))));
}

#[test]
fn digit_lengths_are_between_1_and_32_and_ordered() {
    assert_rejected(
        single(with(collect(), json!({"min_length": 11, "max_length": 10}))),
        Some("a"),
        Some("min_length"),
        "node \"a\": min_length 11 is more than max_length 10",
    );
    for max in [0, 33] {
        assert_rejected(
            single(with(collect(), json!({"min_length": 1, "max_length": max}))),
            Some("a"),
            Some("max_length"),
            &format!("node \"a\": max_length must be 1 to 32, not {max}"),
        );
    }
    assert_rejected(
        single(with(collect(), json!({"min_length": 0}))),
        Some("a"),
        Some("min_length"),
        "node \"a\": min_length must be at least 1",
    );
    assert_accepted(single(with(
        collect(),
        json!({"min_length": 32, "max_length": 32}),
    )));
}

#[test]
fn timeouts_are_1_to_60_seconds() {
    for node in [menu(), collect(), offer()] {
        for seconds in [0, 61] {
            assert_rejected(
                single(with(node.clone(), json!({"timeout_seconds": seconds}))),
                Some("a"),
                Some("timeout_seconds"),
                &format!("node \"a\": timeout_seconds must be 1 to 60, not {seconds}"),
            );
        }
        for seconds in [1, 60] {
            assert_accepted(single(with(
                node.clone(),
                json!({"timeout_seconds": seconds}),
            )));
        }
    }
}

#[test]
fn retries_are_0_to_5() {
    for node in [menu(), collect()] {
        assert_rejected(
            single(with(node.clone(), json!({"max_retries": 6}))),
            Some("a"),
            Some("max_retries"),
            "node \"a\": max_retries must be 0 to 5, not 6",
        );
        for retries in [0, 5] {
            assert_accepted(single(with(node.clone(), json!({"max_retries": retries}))));
        }
    }
}

#[test]
fn priorities_are_0_to_100() {
    assert_rejected(
        alone(json!({"type": "enqueue", "queue_id": SALES, "priority": 101})),
        Some("a"),
        Some("priority"),
        "node \"a\": priority must be 0 to 100, not 101",
    );
    for priority in [0, 100] {
        assert_accepted(alone(
            json!({"type": "enqueue", "queue_id": SALES, "priority": priority}),
        ));
    }
}

#[test]
fn transfer_numbers_are_e164() {
    for number in [
        "+0123",
        "15551234567",
        "+1234567890123456",
        "+1 555 123",
        "+",
    ] {
        assert_rejected(
            alone(json!({"type": "transfer", "target": {"number": number}})),
            Some("a"),
            Some("target.number"),
            &format!(
                "node \"a\": target.number: {number:?} is not an E.164 number (\"+\" and 1 to \
                 15 digits, the first not 0)"
            ),
        );
    }
    for number in ["+1", "+123456789012345"] {
        assert_accepted(alone(
            json!({"type": "transfer", "target": {"number": number}}),
        ));
    }
    assert_rejected(
        alone(json!({"type": "transfer", "target": {"phone": "+15551234567"}})),
        Some("a"),
        Some("target"),
        "node \"a\": target: unknown variant \"phone\", expected one of \"agent_id\", \
         \"ring_group_id\", \"number\"",
    );
}

// Conditions.

fn branch_on(when: Value) -> Value {
    single(
        json!({"type": "branch", "conditions": [{"when": when, "next": "end"}],
                  "otherwise": "end"}),
    )
}

#[test]
fn malformed_conditions_are_rejected() {
    let one_subject = "a condition needs exactly one of \"hours\", \"caller_prefix\", \
                       \"caller_number\", \"variable\" or \"attribute\"";
    let cases = [
        (
            json!({"hours": "lunch"}),
            "conditions[0].when.hours",
            "conditions[0].when.hours: unknown variant \"lunch\", expected one of \"open\", \
             \"closed\", \"holiday\""
                .to_owned(),
        ),
        (
            json!({"hours": "open", "attribute": "vip", "present": true}),
            "conditions[0].when",
            format!("conditions[0].when: {one_subject}"),
        ),
        (
            json!({}),
            "conditions[0].when",
            format!("conditions[0].when: {one_subject}"),
        ),
        (
            json!({"attribute": "vip"}),
            "conditions[0].when",
            "conditions[0].when: \"attribute\" needs \"equals\" or \"present\"".to_owned(),
        ),
        (
            json!({"attribute": "vip", "equals": true, "present": true}),
            "conditions[0].when",
            "conditions[0].when: a condition takes \"equals\" or \"present\", not both".to_owned(),
        ),
        (
            json!({"hours": "open", "equals": true}),
            "conditions[0].when",
            "conditions[0].when: \"equals\" and \"present\" only go with \"variable\" or \
             \"attribute\""
                .to_owned(),
        ),
        (
            json!({"caller_prefix": "44"}),
            "conditions[0].when",
            "conditions[0].when: caller_prefix \"44\" must be \"+\" and at most 15 digits, the \
             first not 0"
                .to_owned(),
        ),
        (
            json!({"caller_number": "0044123"}),
            "conditions[0].when.caller_number",
            "conditions[0].when.caller_number: \"0044123\" is not an E.164 number (\"+\" and 1 \
             to 15 digits, the first not 0)"
                .to_owned(),
        ),
        (
            json!({"vip": true}),
            "conditions[0].when.vip",
            "conditions[0].when: unknown field \"vip\", expected one of \"hours\", \
             \"caller_prefix\", \"caller_number\", \"variable\", \"attribute\", \"equals\", \
             \"present\""
                .to_owned(),
        ),
    ];
    for (when, field, message) in cases {
        assert_rejected(
            branch_on(when),
            Some("a"),
            Some(field),
            &format!("node \"a\": {message}"),
        );
    }
}

#[test]
fn variables_are_compared_with_strings_and_must_be_collected() {
    let flow = |when: Value| {
        json!({"start": "c", "nodes": {
            "c": collect(),
            "b": {"type": "branch", "conditions": [{"when": when, "next": "end"}],
                  "otherwise": "end"},
            "end": hangup()
        }})
    };
    let flow = |when: Value| {
        let mut flow = flow(when);
        flow["nodes"]["c"]["next"] = json!("b");
        flow
    };
    assert_accepted(flow(json!({"variable": "account", "equals": "123456"})));
    assert_accepted(flow(json!({"variable": "account", "present": false})));
    assert_rejected(
        flow(json!({"variable": "acount", "equals": "123456"})),
        Some("b"),
        Some("conditions[0].when.variable"),
        "node \"b\": condition 1 tests variable \"acount\", which no collect_digits node sets",
    );
    assert_rejected(
        flow(json!({"variable": "account", "equals": 123456})),
        Some("b"),
        Some("conditions[0].when"),
        "node \"b\": conditions[0].when: a variable holds the digits the caller typed: compare \
         it with a string",
    );
    assert_rejected(
        flow(json!({"variable": "my account", "present": true})),
        Some("b"),
        Some("conditions[0].when"),
        "node \"b\": conditions[0].when: variable \"my account\" must be 1 to 64 letters, \
         digits or \"_\"",
    );
    assert_rejected(
        single(with(collect(), json!({"variable": "my-account"}))),
        Some("a"),
        Some("variable"),
        "node \"a\": variable \"my-account\" must be 1 to 64 letters, digits or \"_\"",
    );
}

// The graph.

#[test]
fn an_option_to_a_missing_node_is_named() {
    let flow = json!({"start": "menu", "nodes": {
        "menu": with(menu(), json!({"options": {"1": "sales", "2": "end"}})),
        "end": hangup()
    }});
    assert_rejected(
        flow,
        Some("menu"),
        Some("options.1"),
        "node \"menu\": option \"1\" leads to unknown node \"sales\"",
    );
}

#[test]
fn every_edge_must_lead_to_a_node() {
    let cases = [
        (play_to("nowhere"), "next", "next"),
        (
            with(menu(), json!({"on_failure": "nowhere"})),
            "on_failure",
            "on_failure",
        ),
        (with(collect(), json!({"next": "nowhere"})), "next", "next"),
        (
            json!({"type": "branch", "conditions": [
                {"when": {"hours": "open"}, "next": "end"},
                {"when": {"hours": "closed"}, "next": "nowhere"}], "otherwise": "end"}),
            "conditions[1].next",
            "condition 2",
        ),
        (
            json!({"type": "branch", "conditions": [{"when": {"hours": "open"}, "next": "end"}],
                   "otherwise": "nowhere"}),
            "otherwise",
            "otherwise",
        ),
        (
            with(offer(), json!({"declined": "nowhere"})),
            "declined",
            "declined",
        ),
        (
            json!({"type": "set_language", "language": "de-DE", "next": "nowhere"}),
            "next",
            "next",
        ),
    ];
    for (node, field, label) in cases {
        assert_rejected(
            single(node),
            Some("a"),
            Some(field),
            &format!("node \"a\": {label} leads to unknown node \"nowhere\""),
        );
    }
}

#[test]
fn unreachable_nodes_are_rejected() {
    assert_rejected(
        starting_at_a(json!({"a": play_to("end"), "end": hangup(), "orphan": hangup()})),
        Some("orphan"),
        None,
        "node \"orphan\": cannot be reached from the start node \"a\"",
    );
}

#[test]
fn loops_without_input_are_rejected() {
    let flow = starting_at_a(json!({
        "a": play_to("b"),
        "b": {"type": "branch", "conditions": [{"when": {"hours": "closed"}, "next": "end"}],
              "otherwise": "a"},
        "end": hangup()
    }));
    assert_rejected(
        flow,
        Some("a"),
        None,
        "node \"a\": the loop \"a\" -> \"b\" -> \"a\" never waits for caller input",
    );
    let flow = json!({"start": "m", "nodes": {
        "m": with(menu(), json!({"options": {"1": "lang", "2": "end"}})),
        "lang": {"type": "set_language", "language": "de-DE", "next": "lang"},
        "end": hangup()
    }});
    assert_rejected(
        flow,
        Some("lang"),
        None,
        "node \"lang\": the loop \"lang\" -> \"lang\" never waits for caller input",
    );
}

#[test]
fn loops_through_a_node_waiting_for_input_are_fine() {
    let flows = [
        json!({"a": with(menu(), json!({"options": {"0": "again", "1": "end"}})),
               "again": play_to("a"), "end": hangup()}),
        json!({"a": with(collect(), json!({"on_failure": "again"})),
               "again": play_to("a"), "end": hangup()}),
        json!({"a": with(offer(), json!({"declined": "again"})), "again": play_to("a")}),
    ];
    for nodes in flows {
        assert_accepted(starting_at_a(nodes));
    }
}

#[test]
fn nodes_from_which_the_call_never_ends_are_rejected() {
    let flow = json!({"start": "menu", "nodes": {
        "menu": with(menu(), json!({"options": {"1": "sales", "2": "trap"},
                                    "on_failure": "sales"})),
        "sales": {"type": "enqueue", "queue_id": SALES},
        "trap": with(menu(), json!({"options": {"1": "trap"}, "on_failure": "trap"}))
    }});
    assert_rejected(
        flow,
        Some("trap"),
        None,
        &format!("node \"trap\": {NO_END}"),
    );
    // A callback offer can end the call, even if declining loops.
    assert_accepted(json!({"start": "offer", "nodes": {
        "offer": with(offer(), json!({"declined": "offer"}))
    }}));
}
