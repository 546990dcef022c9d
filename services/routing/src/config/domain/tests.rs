use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use switchboard_acd::Strategy;
use switchboard_hours::BusinessHours;
use switchboard_tenancy::{QueueId, SkillId};

use super::*;

fn queue(value: serde_json::Value) -> QueueSpec {
    serde_json::from_value(value).unwrap()
}

fn fields(error: ConfigError) -> Vec<String> {
    match error {
        ConfigError::Validation(errors) => errors.into_iter().map(|error| error.field).collect(),
        other => panic!("not a validation error: {other:?}"),
    }
}

#[test]
fn a_queue_takes_defaults_and_converts_to_the_engine() {
    let skill = Uuid::now_v7();
    let spec = queue(json!({
        "name": " Billing ",
        "channel": "voice",
        "required_skills": [{"skill_id": skill, "min_proficiency": 5}],
        "wrap_up_seconds": 30,
        "strategy": "round_robin",
    }))
    .validate()
    .unwrap();
    assert_eq!(spec.name, "Billing");
    assert_eq!(spec.service_level, ServiceLevel::default());
    let id = QueueId::new();
    let acd = spec.to_acd(id);
    assert_eq!(acd.required_skills, vec![(SkillId::from_uuid(skill), 5)]);
    assert_eq!(acd.ring_timeout, Duration::from_secs(20));
    assert_eq!(acd.wrap_up, Duration::from_secs(30));
    assert_eq!(acd.strategy, Strategy::RoundRobin);
    assert_eq!(spec.references().len(), 1);
}

#[test]
fn proficiencies_and_ranges_outside_their_bounds_are_named() {
    let error = queue(json!({
        "name": "q",
        "channel": "chat",
        "required_skills": [{"skill_id": Uuid::now_v7(), "min_proficiency": 11}],
        "priority": 101,
        "ring_timeout_seconds": 0,
        "max_wait": {"seconds": 60, "overflow": {"type": "external", "number": "0612"}},
    }))
    .validate()
    .unwrap_err();
    assert_eq!(
        fields(error),
        [
            "required_skills[0].min_proficiency",
            "priority",
            "max_wait.overflow.number",
            "ring_timeout_seconds"
        ]
    );
    let profile: AgentProfileSpec =
        serde_json::from_value(json!({"skills": [{"skill_id": Uuid::now_v7(), "proficiency": 0}]}))
            .unwrap();
    assert_eq!(
        fields(profile.validate().unwrap_err()),
        ["skills[0].proficiency"]
    );
}

#[test]
fn numbers_must_be_e164() {
    for bad in [
        "33140000000",
        "+0140000000",
        "+1234567890123456",
        "+33 1 40",
        "",
    ] {
        let spec = NumberSpec {
            number: bad.into(),
            inbound_rule_id: Uuid::now_v7(),
            client_id: None,
            description: String::new(),
        };
        assert_eq!(fields(spec.validate().unwrap_err()), ["number"], "{bad:?}");
    }
    let spec = NumberSpec {
        number: " +33140000000 ".into(),
        inbound_rule_id: Uuid::now_v7(),
        client_id: None,
        description: String::new(),
    };
    assert_eq!(spec.validate().unwrap().number, "+33140000000");
}

#[test]
fn schedules_report_the_hours_field_at_fault() {
    let spec: ScheduleSpec = serde_json::from_value(json!({
        "name": "office",
        "hours": {"time_zone": "Europe/Paris", "weekly": [
            {"day": "mon", "open": "09:00", "close": "17:00"},
            {"day": "mon", "open": "16:00", "close": "18:00"}
        ]}
    }))
    .unwrap();
    assert_eq!(fields(spec.validate().unwrap_err()), ["hours.weekly[1]"]);
    let inverted: ScheduleSpec = serde_json::from_value(json!({
        "name": "office",
        "hours": {"time_zone": "UTC", "weekly": [{"day": "tue", "open": "17:00", "close": "09:00"}]}
    }))
    .unwrap();
    assert_eq!(
        fields(inverted.validate().unwrap_err()),
        ["hours.weekly[0]"]
    );
}

#[test]
fn a_flow_with_a_dangling_edge_names_the_node() {
    let spec = FlowSpec {
        name: "main".into(),
        client_id: None,
        definition: json!({"start": "hello", "nodes": {
            "hello": {"type": "play", "prompt": {"tts": "Hi"}, "next": "nowhere"}
        }}),
    };
    let ConfigError::InvalidFlow(error) = spec.validate().unwrap_err() else {
        panic!("not a flow error");
    };
    assert_eq!(error.node.as_deref(), Some("hello"));
}

#[test]
fn reason_codes_are_slugs_and_not_the_engines_own() {
    for bad in ["Lunch", "missed", "", "a b"] {
        let spec = ReasonCodeSpec {
            name: bad.into(),
            description: String::new(),
        };
        assert!(spec.validate().is_err(), "{bad:?}");
    }
}

fn rule() -> InboundRuleSpec {
    InboundRuleSpec {
        name: "main".into(),
        schedule_id: None,
        open: NextStep::Queue {
            queue_id: Uuid::from_u128(1),
            priority: None,
        },
        closed: NextStep::Voicemail {
            box_id: Uuid::from_u128(2),
        },
        holiday: None,
    }
}

#[test]
fn a_rule_follows_the_schedule_unless_forced() {
    let hours: BusinessHours = serde_json::from_value(json!({
        "time_zone": "UTC",
        "weekly": [{"day": "mon", "open": "09:00", "close": "17:00"}],
        "special_days": [{"date": "2025-01-13", "name": "Closed day"}]
    }))
    .unwrap();
    let monday_noon: DateTime<Utc> = "2025-01-06T12:00:00Z".parse().unwrap();
    let monday_night: DateTime<Utc> = "2025-01-06T20:00:00Z".parse().unwrap();
    let holiday: DateTime<Utc> = "2025-01-13T12:00:00Z".parse().unwrap();
    let rule = rule();
    assert_eq!(decide(&rule, None, Some(&hours), monday_noon).0, rule.open);
    assert_eq!(
        decide(&rule, None, Some(&hours), monday_night).0,
        rule.closed
    );
    // A holiday without its own step takes the closed one.
    assert_eq!(decide(&rule, None, Some(&hours), holiday).0, rule.closed);
    // No schedule: always open.
    assert_eq!(decide(&rule, None, None, monday_night).0, rule.open);

    let forced = |mode, destination| ForcedMode {
        mode,
        destination,
        reason: None,
        set_by_type: "user".into(),
        set_by: None,
        set_at: monday_noon,
    };
    let closed = forced(ForcedKind::Closed, None);
    let (step, basis) = decide(&rule, Some(&closed), Some(&hours), monday_noon);
    assert_eq!(step, rule.closed);
    assert_eq!(
        basis,
        Basis::Forced {
            mode: ForcedKind::Closed
        }
    );
    let elsewhere = NextStep::External {
        number: "+15551234567".into(),
    };
    let destination = forced(ForcedKind::Destination, Some(elsewhere.clone()));
    assert_eq!(
        decide(&rule, Some(&destination), Some(&hours), monday_night).0,
        elsewhere
    );
}

#[test]
fn a_forced_destination_needs_a_destination_and_only_then() {
    let missing = ForcedModeSpec {
        mode: ForcedKind::Destination,
        destination: None,
        reason: None,
    };
    assert_eq!(fields(missing.validate().unwrap_err()), ["destination"]);
    let extra = ForcedModeSpec {
        mode: ForcedKind::Closed,
        destination: Some(NextStep::Hangup { message: None }),
        reason: None,
    };
    assert_eq!(fields(extra.validate().unwrap_err()), ["destination"]);
}

#[test]
fn next_steps_read_as_tagged_json() {
    let step: NextStep =
        serde_json::from_value(json!({"type": "ring_group", "ring_group_id": Uuid::from_u128(3)}))
            .unwrap();
    assert_eq!(
        step.reference("open").unwrap().field,
        "open.ring_group_id".to_owned()
    );
    assert!(serde_json::from_value::<NextStep>(json!({"type": "queue"})).is_err());
    assert!(
        serde_json::from_value::<NextStep>(json!({"type": "hangup", "extra": 1})).is_err(),
        "unknown fields are refused"
    );
}
