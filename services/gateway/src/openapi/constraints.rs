//! The document declares no constraint looser than the server's: for a
//! sample of fields, every body the server refuses, its schema refuses
//! too (validated with a JSON Schema validator, as generated clients and
//! fuzzers read it), and the ordinary bodies the server takes, the schema
//! takes.

use serde_json::{Value, json};
use switchboard_identity_api::ApiScope;
use switchboard_identity_api::domain::{normalize_email, validate_name};
use switchboard_routing_api::config::openapi::{flow_schema, flow_schema_json};
use switchboard_routing_api::config::{
    AgentProfileSpec, ConfigKind, FlowSpec, InboundRuleSpec, NumberSpec, QueueSpec, ReasonCodeSpec,
    RingGroupSpec, SkillSpec, VoicemailBoxSpec,
};
use utoipa::ToSchema;

use crate::dto::agents::{AGENT_STATES, AgentStateDto, PRESENCES, PresenceBody};
use crate::dto::{ApiKeyCreateBody, SignupBody};

/// A validator of `T`'s schema, its named schemas as the document's
/// components.
fn validator<T: ToSchema>() -> jsonschema::Validator {
    let mut named = Vec::new();
    T::schemas(&mut named);
    let mut named: std::collections::BTreeMap<_, _> = named.into_iter().collect();
    super::close_enums(&mut named);
    let schemas: serde_json::Map<String, Value> = named
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap()))
        .collect();
    let wrapper = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": { "schemas": schemas },
        "allOf": [serde_json::to_value(T::schema()).unwrap()],
    });
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&wrapper)
        .unwrap_or_else(|error| panic!("{} does not compile: {error}", T::name()))
}

/// Whether the routing configuration takes `body` as a `S`.
fn routing_accepts<S: ConfigKind>(body: &Value) -> bool {
    serde_json::from_value::<S>(body.clone())
        .map_err(|error| error.to_string())
        .and_then(|spec| spec.validate().map_err(|error| error.to_string()))
        .is_ok()
}

/// Checks each `(body, whether the server takes it)` against `T`'s schema:
/// a refused body must be refused by the schema; a taken one taken.
fn assert_schema_agrees<T: ToSchema>(samples: Vec<(Value, bool)>) {
    let schema = validator::<T>();
    let refused = samples.iter().filter(|(_, taken)| !taken).count();
    assert!(
        refused > 0 && refused < samples.len(),
        "{}: samples on both sides",
        T::name()
    );
    for (body, taken) in samples {
        let errors: Vec<String> = schema.iter_errors(&body).map(|e| e.to_string()).collect();
        assert_eq!(
            errors.is_empty(),
            taken,
            "{}: the server {} {body}, the schema says {errors:?}",
            T::name(),
            if taken { "takes" } else { "refuses" },
        );
    }
}

fn routing_samples<S: ConfigKind + ToSchema>(bodies: Vec<Value>) {
    let samples = bodies
        .into_iter()
        .map(|body| {
            let taken = routing_accepts::<S>(&body);
            (body, taken)
        })
        .collect();
    assert_schema_agrees::<S>(samples);
}

const ID: &str = "0190a6d2-0000-7000-8000-000000000001";

#[test]
fn e164_numbers_the_server_refuses_the_schema_refuses() {
    let number = |number: &str| json!({ "number": number, "inbound_rule_id": ID });
    routing_samples::<NumberSpec>(vec![
        number("+33140000000"),
        number("+1"),
        number("+123456789012345"),
        number("+1234567890123456"),
        number("+0140000000"),
        number("0033140000000"),
        number("+"),
        number(""),
        number("+33 1 40 00 00 00"),
        number("+33a"),
        json!({ "number": "+33140000000", "inbound_rule_id": ID, "description": "x".repeat(501) }),
        json!({ "number": "+33140000000", "inbound_rule_id": ID, "owner": "me" }),
    ]);
    let rule = |number: &str| {
        json!({
            "name": "Main",
            "open": { "type": "external", "number": number },
            "closed": { "type": "hangup" },
        })
    };
    routing_samples::<InboundRuleSpec>(vec![
        rule("+15551234567"),
        rule("15551234567"),
        rule("+0"),
        json!({ "name": "Main", "open": { "type": "queue", "queue_id": ID, "priority": 101 }, "closed": { "type": "hangup" } }),
        json!({ "name": "Main", "open": { "type": "queue", "queue_id": ID, "priority": 100 }, "closed": { "type": "hangup" } }),
        // Unknown fields in a nested object.
        json!({ "name": "Main", "open": { "type": "queue", "queue_id": ID, "skill": "x" }, "closed": { "type": "hangup" } }),
        json!({ "name": "Main", "open": { "type": "flow", "flow_id": ID }, "closed": { "type": "hangup", "message": { "tts": "Bye" } } }),
        json!({ "name": "Main", "open": { "type": "flow", "flow_id": ID }, "closed": { "type": "hangup", "message": {} } }),
        json!({ "name": "Main", "open": { "type": "teleport" }, "closed": { "type": "hangup" } }),
    ]);
}

#[test]
fn names_the_server_refuses_the_schema_refuses() {
    routing_samples::<SkillSpec>(vec![
        json!({ "name": "billing" }),
        json!({ "name": "" }),
        json!({ "name": "   " }),
        json!({ "name": "x".repeat(100) }),
        json!({ "name": "x".repeat(101) }),
        json!({ "name": "billing", "description": "x".repeat(501) }),
        json!({ "name": "billing", "level": 3 }),
    ]);
    routing_samples::<ReasonCodeSpec>(vec![
        json!({ "name": "lunch" }),
        json!({ "name": "coffee-break_2" }),
        json!({ "name": "Lunch" }),
        json!({ "name": "" }),
        json!({ "name": "a".repeat(65) }),
        json!({ "name": "lunch break" }),
    ]);
    routing_samples::<VoicemailBoxSpec>(vec![
        json!({ "name": "Sales" }),
        json!({ "name": "" }),
        json!({ "name": "Sales", "max_message_seconds": 9 }),
        json!({ "name": "Sales", "max_message_seconds": 600 }),
        json!({ "name": "Sales", "max_message_seconds": 601 }),
        json!({ "name": "Sales", "greeting": { "file": "hello.wav" } }),
        json!({ "name": "Sales", "greeting": { "file": "hello.wav", "tts": "Hello" } }),
        json!({ "name": "Sales", "greeting": { "url": "hello.wav" } }),
    ]);
}

#[test]
fn numeric_ranges_the_server_refuses_the_schema_refuses() {
    routing_samples::<AgentProfileSpec>(vec![
        json!({}),
        json!({ "capacity": { "voice": 1, "chat": 50 } }),
        json!({ "capacity": { "chat": 51 } }),
        json!({ "capacity": { "voice": 1, "fax": 1 } }),
        json!({ "skills": [{ "skill_id": ID, "proficiency": 10 }] }),
        json!({ "skills": [{ "skill_id": ID, "proficiency": 0 }] }),
        json!({ "skills": [{ "skill_id": ID, "proficiency": 11 }] }),
        json!({ "skills": [{ "skill_id": "not-an-id", "proficiency": 5 }] }),
    ]);
    let queue = |extra: Value| {
        let mut body = json!({ "name": "Billing", "channel": "voice" });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    routing_samples::<QueueSpec>(vec![
        queue(json!({})),
        queue(json!({ "channel": "fax" })),
        queue(json!({ "priority": 100 })),
        queue(json!({ "priority": 101 })),
        queue(json!({ "ring_timeout_seconds": 0 })),
        queue(json!({ "ring_timeout_seconds": 300 })),
        queue(json!({ "ring_timeout_seconds": 301 })),
        queue(json!({ "wrap_up_seconds": 3601 })),
        queue(json!({ "strategy": "round_robin" })),
        queue(json!({ "strategy": "random" })),
        queue(json!({ "service_level": { "percent": 0, "seconds": 20 } })),
        queue(json!({ "service_level": { "percent": 80, "seconds": 20, "target": 1 } })),
        queue(json!({ "max_waiting": { "count": 10001, "overflow": { "type": "hangup" } } })),
        queue(
            json!({ "max_wait": { "seconds": 86400, "overflow": { "type": "voicemail", "box_id": ID } } }),
        ),
        queue(json!({ "max_wait": { "seconds": 86401, "overflow": { "type": "hangup" } } })),
        queue(json!({ "announcements": { "every_seconds": 9 } })),
        queue(json!({ "callback": { "enabled": true, "after_seconds": 86401 } })),
        queue(json!({ "required_skills": [{ "skill_id": ID, "min_proficiency": 0 }] })),
        queue(json!({ "music_on_hold": { "tts": "Please hold", "language": "en-US" } })),
        queue(json!({ "music_on_hold": { "tts": "Please hold", "language": "english" } })),
    ]);
    let members = |n: usize| {
        (0..n)
            .map(|_| Value::String(uuid::Uuid::new_v4().to_string()))
            .collect::<Vec<_>>()
    };
    routing_samples::<RingGroupSpec>(vec![
        json!({ "name": "Desk", "members": members(1), "strategy": "ring_all", "timeout_seconds": 20 }),
        json!({ "name": "Desk", "members": members(0), "strategy": "ring_all", "timeout_seconds": 20 }),
        json!({ "name": "Desk", "members": members(51), "strategy": "ring_all", "timeout_seconds": 20 }),
        json!({ "name": "Desk", "members": members(2), "strategy": "ring_all", "timeout_seconds": 4 }),
        json!({ "name": "Desk", "members": members(2), "strategy": "shuffle", "timeout_seconds": 20 }),
    ]);
}

#[test]
fn flow_definitions_the_server_refuses_the_schema_refuses() {
    let flow = |node: Value| json!({ "name": "Main", "definition": { "start": "a", "nodes": { "a": node } } });
    routing_samples::<FlowSpec>(vec![
        flow(json!({ "type": "hangup" })),
        flow(json!({ "type": "enqueue", "queue_id": ID, "priority": 100 })),
        flow(json!({ "type": "enqueue", "queue_id": ID, "priority": 101 })),
        flow(json!({ "type": "transfer", "target": { "number": "+15551234567" } })),
        flow(json!({ "type": "transfer", "target": { "number": "555-1234" } })),
        flow(json!({ "type": "hangup", "prompt": { "tts": "Bye" }, "next": "a" })),
        flow(json!({ "type": "dance" })),
        json!({ "name": "Main", "definition": { "start": "a", "nodes": { "a": { "type": "hangup" } }, "version": 2 } }),
        json!({ "name": "", "definition": { "start": "a", "nodes": { "a": { "type": "hangup" } } } }),
    ]);
}

#[test]
fn signup_passwords_and_names_the_server_refuses_the_schema_refuses() {
    let email = "founder@acme.example.com";
    let body = |company: &str, email: &str, password: &str| json!({ "company": company, "email": email, "password": password });
    // What identity checks of a signup's fields, each with its own rule.
    let taken = |body: &Value| {
        let Ok(body) = serde_json::from_value::<SignupBody>(body.clone()) else {
            return false;
        };
        validate_name("company", &body.company, 100).is_ok()
            && normalize_email("email", &body.email).is_ok()
            && switchboard_auth::check_password_strength(&body.password, &body.email).is_ok()
    };
    let samples = [
        body("Acme", email, "correct horse battery staple"),
        body("Acme", email, "short"),
        body("Acme", email, "Aa1!Aa1!Aa"),
        body("Acme", email, "Aa1!Aa1!A"),
        body("Acme", email, &"Aa1!".repeat(65)),
        body("", email, "correct horse battery staple"),
        body(" ", email, "correct horse battery staple"),
        body(&"x".repeat(101), email, "correct horse battery staple"),
        body("Acme", "not an email", "correct horse battery staple"),
        body(
            "Acme",
            &format!("{}@acme.example.com", "x".repeat(250)),
            "correct horse battery staple",
        ),
    ]
    .into_iter()
    .map(|body| {
        let server = taken(&body);
        (body, server)
    })
    .collect();
    assert_schema_agrees::<SignupBody>(samples);
}

#[test]
fn presences_the_server_refuses_the_schema_refuses() {
    let taken = |body: &Value| {
        serde_json::from_value::<PresenceBody>(body.clone())
            .map_err(|error| error.to_string())
            .and_then(|body| body.presence().map_err(|(_, message)| message))
            .is_ok()
    };
    let mut bodies: Vec<Value> = PRESENCES
        .iter()
        .map(|presence| match *presence {
            "not_ready" => json!({ "presence": presence, "reason": "lunch" }),
            _ => json!({ "presence": presence }),
        })
        .collect();
    bodies.extend([
        json!({ "presence": "busy" }),
        json!({ "presence": "away" }),
        json!({ "presence": "not_ready", "reason": "x".repeat(65) }),
        json!({ "presence": "available", "mood": "happy" }),
    ]);
    let samples = bodies
        .into_iter()
        .map(|body| {
            let server = taken(&body);
            (body, server)
        })
        .collect();
    assert_schema_agrees::<PresenceBody>(samples);
}

/// Every state the API can show is in the schema's enum.
#[test]
fn the_agent_state_schema_lists_every_state_shown() {
    use switchboard_acd::AgentState;
    let schema = validator::<AgentStateDto>();
    for state in [
        AgentState::Offline,
        AgentState::Available,
        AgentState::from(switchboard_acd::Presence::not_ready("lunch")),
        AgentState::Reserved,
        AgentState::Busy,
        AgentState::AfterCallWork {
            until: chrono::Utc::now(),
        },
    ] {
        let shown = serde_json::to_value(AgentStateDto::from(&state)).unwrap();
        assert!(AGENT_STATES.contains(&shown["state"].as_str().unwrap()));
        assert!(schema.is_valid(&shown), "{shown}");
    }
    assert!(!schema.is_valid(&json!({ "state": "sleeping" })));
}

/// The flow schemas are written in the subset utoipa's model holds: each
/// converts to it and back without losing a keyword.
#[test]
fn every_flow_schema_converts_to_the_document_without_loss() {
    for (name, _) in switchboard_flows::schema::definitions() {
        let written = flow_schema_json(name).unwrap();
        let converted = serde_json::to_value(flow_schema(name)).unwrap();
        assert_eq!(converted, written, "{name}");
    }
}

#[test]
fn api_key_scopes_the_server_refuses_the_schema_refuses() {
    let taken = |body: &Value| {
        let Ok(body) = serde_json::from_value::<ApiKeyCreateBody>(body.clone()) else {
            return false;
        };
        !body.scopes.is_empty()
            && body
                .scopes
                .iter()
                .all(|scope| scope.parse::<ApiScope>().is_ok())
            && validate_name("name", &body.name, 100).is_ok()
    };
    let mut bodies: Vec<Value> = super::ApiScopeSchema::all()
        .into_iter()
        .map(|scope| json!({ "name": "k", "scopes": [scope] }))
        .collect();
    bodies.extend([
        json!({ "name": "k", "scopes": [] }),
        json!({ "name": "k", "scopes": ["write"] }),
        json!({ "name": "k", "scopes": ["users:delete"] }),
        json!({ "name": "k", "scopes": ["billing:read"] }),
        json!({ "name": "", "scopes": ["read"] }),
    ]);
    let samples = bodies
        .into_iter()
        .map(|body| {
            let server = taken(&body);
            (body, server)
        })
        .collect();
    assert_schema_agrees::<ApiKeyCreateBody>(samples);
}
