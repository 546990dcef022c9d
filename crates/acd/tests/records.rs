//! Records: the engine's state split for a store that writes only what an
//! operation changed (the randomized test in `invariants.rs` checks that
//! the changed records always rebuild the same engine).

use chrono::{DateTime, Utc};
use switchboard_acd::{
    AcdError, AgentId, AgentProfile, Channel, Contact, ContactId, Engine, META_FIELD, Presence,
    QueueConfig, QueueId,
};

fn engine_with_a_call() -> (Engine, ContactId) {
    let at: DateTime<Utc> = "2025-01-06T09:00:00Z".parse().unwrap();
    let mut engine = Engine::new();
    let queue = QueueId::from_u128(1);
    let agent = AgentId::from_u128(10);
    engine
        .upsert_queue(QueueConfig::new(queue, Channel::Voice), at)
        .unwrap();
    engine
        .upsert_agent_profile(AgentProfile::new(agent), at)
        .unwrap();
    engine.set_presence(agent, Presence::Available, at).unwrap();
    let call = ContactId::from_u128(100);
    engine
        .enqueue(Contact::new(call, queue, Channel::Voice, at), at)
        .unwrap();
    (engine, call)
}

#[test]
fn records_rebuild_the_same_engine() {
    let (engine, call) = engine_with_a_call();
    let records = engine.records();
    let fields: Vec<&str> = records.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(
        fields,
        [
            META_FIELD.to_owned(),
            format!("q:{}", QueueId::from_u128(1)),
            format!("a:{}", AgentId::from_u128(10)),
            format!("c:{call}"),
        ]
    );
    let rebuilt = Engine::from_records(records).unwrap();
    assert!(rebuilt == engine);
}

#[test]
fn an_ended_contact_is_a_deletion() {
    let (mut engine, call) = engine_with_a_call();
    let at: DateTime<Utc> = "2025-01-06T09:00:05Z".parse().unwrap();
    engine.accept(call, AgentId::from_u128(10), at).unwrap();
    let outcome = engine.end(call, at).unwrap();
    let changes = engine.changed_records(&outcome.changed);
    assert!(
        changes.contains(&(format!("c:{call}"), None)),
        "{changes:?}"
    );
    assert!(changes.iter().any(
        |(field, value)| field == &format!("a:{}", AgentId::from_u128(10)) && value.is_some()
    ));
}

#[test]
fn a_bad_record_is_refused_naming_its_field() {
    let (engine, call) = engine_with_a_call();
    let mut records = engine.records();
    let field = format!("c:{call}");
    for (name, value) in &mut records {
        if *name == field {
            *value = br#"{"not": "a contact"}"#.to_vec();
        }
    }
    let error = Engine::from_records(records.clone()).unwrap_err();
    assert!(
        matches!(&error, AcdError::InvalidConfig(message) if message.starts_with(&format!("record {field}: "))),
        "{error}"
    );
    records.push(("x:1".into(), b"{}".to_vec()));
    records.retain(|(name, _)| *name != field);
    let error = Engine::from_records(records.clone()).unwrap_err();
    assert_eq!(
        error.to_string(),
        AcdError::InvalidConfig("record x:1: unknown record kind".into()).to_string()
    );
    // Without the contact record, the agent's offer points nowhere.
    records.retain(|(name, _)| name != "x:1");
    assert!(Engine::from_records(records).is_err());
}
