//! Handing a tenant's engine over: snapshots, and refused operations
//! leaving no trace.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use switchboard_acd::{
    AcdError, AgentId, AgentProfile, Channel, Contact, ContactId, DirectOrigin, Engine, Outcome,
    Presence, QueueConfig, QueueId, Snapshot, Strategy,
};

fn t(secs: i64) -> DateTime<Utc> {
    "2025-01-06T09:00:00Z"
        .parse::<DateTime<Utc>>()
        .expect("valid time")
        + TimeDelta::seconds(secs)
}

const VOICE: QueueId = QueueId::from_u128(1);
const CHAT: QueueId = QueueId::from_u128(2);

fn agent(n: u128) -> AgentId {
    AgentId::from_u128(n)
}

fn contact(n: u128) -> ContactId {
    ContactId::from_u128(n)
}

/// An engine with offers ringing, contacts connected and waiting, an
/// agent in after-call work and round-robin state.
fn mid_flight() -> Engine {
    let mut engine = Engine::new();
    let mut voice = QueueConfig::new(VOICE, Channel::Voice);
    voice.wrap_up = Duration::from_secs(30);
    voice.strategy = Strategy::RoundRobin;
    let mut chat = QueueConfig::new(CHAT, Channel::Chat);
    chat.strategy = Strategy::LeastOccupied;
    engine.upsert_queue(voice, t(0)).unwrap();
    engine.upsert_queue(chat, t(0)).unwrap();
    for n in 1..=4 {
        let profile = AgentProfile::new(agent(n)).with_capacity(Channel::Chat, 2);
        engine.upsert_agent_profile(profile, t(0)).unwrap();
        engine
            .set_presence(agent(n), Presence::Available, t(n as i64))
            .unwrap();
    }
    for n in 1..=3 {
        engine
            .enqueue(
                Contact::new(contact(n), VOICE, Channel::Voice, t(10)),
                t(10),
            )
            .unwrap();
    }
    engine.accept(contact(1), agent(1), t(11)).unwrap();
    engine.end(contact(1), t(20)).unwrap(); // agent 1 wraps up
    engine.accept(contact(2), agent(2), t(12)).unwrap();
    for n in 10..=14 {
        engine
            .enqueue(Contact::new(contact(n), CHAT, Channel::Chat, t(21)), t(21))
            .unwrap();
    }
    engine
}

/// The same operations, on any engine.
fn continue_working(engine: &mut Engine) -> Vec<Result<Outcome, AcdError>> {
    vec![
        engine.tick(t(40)),
        engine.enqueue(
            Contact::new(contact(4), VOICE, Channel::Voice, t(41)),
            t(41),
        ),
        engine.end(contact(2), t(45)),
        // Chats 10 and 11 rang out at agent 4 (t41); agent 1's wrap-up
        // ended at t50 and it took call 3.
        engine.tick(t(60)),
        engine.accept(contact(3), agent(1), t(61)),
        engine.set_presence(agent(4), Presence::Available, t(61)),
        engine.set_presence(agent(1), Presence::not_ready("coaching"), t(62)),
        engine.abandon(contact(14), t(63)),
        engine.tick(t(200)),
    ]
}

#[test]
fn snapshot_round_trips_mid_flight_and_carries_on_identically() {
    let mut original = mid_flight();
    assert!(!original.offers().is_empty());
    assert!(original.next_deadline().is_some());

    let json = serde_json::to_string(&original.snapshot()).unwrap();
    let snapshot: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(snapshot, original.snapshot());
    let mut restored = Engine::restore(snapshot).unwrap();
    assert_eq!(restored, original);
    restored.check_consistency().unwrap();
    assert_eq!(restored.offers(), original.offers());
    assert_eq!(restored.next_deadline(), original.next_deadline());

    // Serde on the engine itself gives the same document.
    assert_eq!(serde_json::to_string(&original).unwrap(), json);

    let expected = continue_working(&mut original);
    let actual = continue_working(&mut restored);
    assert_eq!(actual, expected);
    assert!(expected.iter().all(Result::is_ok));
    assert!(
        expected
            .iter()
            .any(|o| o.as_ref().is_ok_and(|o| !o.offers.is_empty()))
    );
    assert_eq!(restored, original);
    restored.check_consistency().unwrap();
}

#[test]
fn inconsistent_snapshot_is_refused() {
    let engine = mid_flight();
    let mut json = serde_json::to_value(engine.snapshot()).unwrap();
    // Drop the voice queue while its contacts still point at it.
    json["queues"]
        .as_object_mut()
        .unwrap()
        .remove(&VOICE.to_string())
        .unwrap();
    let snapshot: Snapshot = serde_json::from_value(json.clone()).unwrap();
    let err = Engine::restore(snapshot).unwrap_err();
    assert!(
        matches!(&err, AcdError::InvalidConfig(msg) if msg.starts_with("snapshot: contact ")),
        "{err}"
    );
    assert!(serde_json::from_value::<Engine>(json).is_err());
}

#[test]
fn refused_operations_change_nothing() {
    let mut engine = mid_flight();
    let before = engine.snapshot();
    let mut full = QueueConfig::new(VOICE, Channel::Chat);
    full.priority = 1;
    let refusals: Vec<(AcdError, Result<Outcome, AcdError>)> = vec![
        (
            AcdError::QueueBusy {
                queue: VOICE,
                contacts: 2,
            },
            engine.upsert_queue(full, t(30)),
        ),
        (
            AcdError::QueueBusy {
                queue: CHAT,
                contacts: 5,
            },
            engine.remove_queue(CHAT, t(30)),
        ),
        (
            AcdError::DuplicateContact(contact(3)),
            engine.enqueue(
                Contact::new(contact(3), VOICE, Channel::Voice, t(30)),
                t(30),
            ),
        ),
        (
            AcdError::NoSuchOffer {
                contact: contact(3),
                agent: agent(4),
            },
            engine.accept(contact(3), agent(4), t(30)),
        ),
        (
            AcdError::NotConnected(contact(3)),
            engine.end(contact(3), t(30)),
        ),
        (
            AcdError::UnknownContact(contact(99)),
            engine.abandon(contact(99), t(30)),
        ),
        (
            AcdError::NotInWrapUp {
                agent: agent(2),
                current: switchboard_acd::AgentState::Busy,
            },
            engine.end_wrap_up(agent(2), t(30)),
        ),
        (
            AcdError::IllegalTransition {
                agent: agent(2),
                current: switchboard_acd::AgentState::Busy,
                requested: Presence::Offline,
            },
            engine.set_presence(agent(2), Presence::Offline, t(30)),
        ),
        (
            AcdError::AgentBusy {
                agent: agent(2),
                current: switchboard_acd::AgentState::Busy,
            },
            engine.remove_agent(agent(2), t(30)),
        ),
        (
            AcdError::AgentBusy {
                agent: agent(3),
                current: switchboard_acd::AgentState::Reserved,
            },
            engine.connect_direct(
                contact(50),
                agent(3),
                DirectOrigin::PlacedByAgent,
                Channel::Voice,
                t(30),
                Duration::ZERO,
                t(30),
            ),
        ),
        (
            AcdError::DuplicateContact(contact(3)),
            engine.connect_direct(
                contact(3),
                agent(2),
                DirectOrigin::RungToAgent,
                Channel::Chat,
                t(30),
                Duration::ZERO,
                t(30),
            ),
        ),
    ];
    for (expected, result) in refusals {
        assert_eq!(result, Err(expected));
    }
    let bad_profile =
        AgentProfile::new(agent(1)).with_skill(switchboard_acd::SkillId::from_u128(1), 11);
    assert!(engine.upsert_agent_profile(bad_profile, t(30)).is_err());
    assert!(
        engine
            .extend_wrap_up(agent(1), Duration::from_secs(25 * 3600), t(30))
            .is_err()
    );
    assert_eq!(engine.snapshot(), before);
    engine.check_consistency().unwrap();
}
