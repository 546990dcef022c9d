use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::model::Strategy;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_700_000_000 + secs)
}

fn agent(n: u128) -> AgentId {
    AgentId::from_u128(n)
}

#[test]
fn agent_with_fewer_active_contacts_is_preferred_over_longer_idle() {
    let mut engine = Engine::new();
    let chat = QueueId::from_u128(1);
    engine
        .upsert_queue(QueueConfig::new(chat, Channel::Chat), t(0))
        .unwrap();
    for n in 1..=2 {
        let profile = AgentProfile::new(agent(n)).with_capacity(Channel::Chat, 3);
        engine.upsert_agent_profile(profile, t(0)).unwrap();
        engine
            .set_presence(agent(n), Presence::Available, t(n as i64))
            .unwrap();
    }
    let offered: Vec<AgentId> = (1..=4)
        .map(|n| {
            let contact = Contact::new(ContactId::from_u128(n), chat, Channel::Chat, t(10));
            engine.enqueue(contact, t(10)).unwrap().offers[0].agent
        })
        .collect();
    // Agent 1 is idle longer, but once it has a chat agent 2 gets the next.
    assert_eq!(offered, vec![agent(1), agent(2), agent(1), agent(2)]);
    assert_eq!(engine.index.agent_key[&agent(1)], (2, t(1)));
    engine.check_consistency().unwrap();
}

#[test]
fn occupancy_restarts_when_the_agent_comes_online() {
    let mut engine = Engine::new();
    let queue = QueueId::from_u128(1);
    let mut config = QueueConfig::new(queue, Channel::Voice);
    config.strategy = Strategy::LeastOccupied;
    config.wrap_up = Duration::from_secs(10);
    engine.upsert_queue(config, t(0)).unwrap();
    engine
        .upsert_agent_profile(AgentProfile::new(agent(1)), t(0))
        .unwrap();
    engine
        .set_presence(agent(1), Presence::Available, t(0))
        .unwrap();
    let call = ContactId::from_u128(7);
    engine
        .enqueue(Contact::new(call, queue, Channel::Voice, t(10)), t(10))
        .unwrap();
    engine.accept(call, agent(1), t(15)).unwrap();
    engine.end(call, t(40)).unwrap();
    // Reserved 10..15, busy 15..40, wrap-up 40..50 over 0..60 staffed.
    engine.tick(t(50)).unwrap();
    let (busy, staffed) = engine.state.agents[&agent(1)].occupancy_at(t(60));
    assert_eq!((busy, staffed), (40_000, 60_000));
    // Not ready time counts in neither.
    engine
        .set_presence(agent(1), Presence::not_ready("lunch"), t(60))
        .unwrap();
    assert_eq!(
        engine.state.agents[&agent(1)].occupancy_at(t(600)),
        (40_000, 60_000)
    );
    engine
        .set_presence(agent(1), Presence::Offline, t(700))
        .unwrap();
    engine
        .set_presence(agent(1), Presence::Available, t(800))
        .unwrap();
    assert_eq!(
        engine.state.agents[&agent(1)].occupancy_at(t(810)),
        (0, 10_000)
    );
}

#[test]
fn deadlines_follow_offers_and_wrap_up() {
    let mut engine = Engine::new();
    let queue = QueueId::from_u128(1);
    let mut config = QueueConfig::new(queue, Channel::Voice);
    config.ring_timeout = Duration::from_millis(2500);
    config.wrap_up = Duration::from_secs(5);
    engine.upsert_queue(config, t(0)).unwrap();
    engine
        .upsert_agent_profile(AgentProfile::new(agent(1)), t(0))
        .unwrap();
    engine
        .set_presence(agent(1), Presence::Available, t(0))
        .unwrap();
    let call = ContactId::from_u128(7);
    engine
        .enqueue(Contact::new(call, queue, Channel::Voice, t(1)), t(1))
        .unwrap();
    assert_eq!(
        engine.next_deadline(),
        Some(t(1) + TimeDelta::milliseconds(2500))
    );
    engine.accept(call, agent(1), t(2)).unwrap();
    assert_eq!(engine.next_deadline(), None);
    engine.end(call, t(3)).unwrap();
    assert_eq!(engine.next_deadline(), Some(t(8)));
    assert_eq!(engine.index.acw_deadlines.len(), 1);
    engine.end_wrap_up(agent(1), t(4)).unwrap();
    assert!(engine.index.acw_deadlines.is_empty());
    engine.check_consistency().unwrap();
}

#[test]
fn every_error_maps_to_one_kind() {
    use crate::error::ErrorKind;
    let id = AgentId::from_u128(1);
    assert_eq!(AcdError::UnknownAgent(id).kind(), ErrorKind::NotFound);
    assert_eq!(
        AcdError::NotInWrapUp {
            agent: id,
            current: AgentState::Available
        }
        .kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        AcdError::InvalidConfig("x".into()).kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        AcdError::NotInWrapUp {
            agent: id,
            current: AgentState::Available
        }
        .to_string(),
        "agent 00000000-0000-0000-0000-000000000001 is not in after-call work (it is available)"
    );
}
