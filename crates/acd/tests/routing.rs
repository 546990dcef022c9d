//! Matching, agent states and the read side, through the public API.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use switchboard_acd::{
    AcdError, AgentCounts, AgentEvent, AgentId, AgentProfile, AgentState, Channel, Contact,
    ContactEventKind, ContactId, ContactState, Engine, ErrorKind, Offer, Presence, QueueConfig,
    QueueId, SkillId, Strategy, TransitionReason,
};
use uuid::Uuid;

fn t(secs: i64) -> DateTime<Utc> {
    "2025-01-06T09:00:00Z"
        .parse::<DateTime<Utc>>()
        .expect("valid time")
        + TimeDelta::seconds(secs)
}

fn agent(n: u128) -> AgentId {
    AgentId::from_u128(n)
}

fn queue(n: u128) -> QueueId {
    QueueId::from_u128(n)
}

fn contact(n: u128) -> ContactId {
    ContactId::from_u128(n)
}

const SPANISH: SkillId = SkillId::from_u128(0x5);
const BILLING: SkillId = SkillId::from_u128(0xb);

fn voice_queue(n: u128) -> QueueConfig {
    QueueConfig::new(queue(n), Channel::Voice)
}

/// Adds an agent with `profile` and makes it available at `at`.
fn online(engine: &mut Engine, profile: AgentProfile, at: DateTime<Utc>) {
    let id = profile.id;
    engine.upsert_agent_profile(profile, at).expect("profile");
    engine
        .set_presence(id, Presence::Available, at)
        .expect("available");
}

fn call(engine: &mut Engine, n: u128, q: u128, at: DateTime<Utc>) -> Vec<Offer> {
    engine
        .enqueue(Contact::new(contact(n), queue(q), Channel::Voice, at), at)
        .expect("enqueue")
        .offers
}

fn offered_to(offers: &[Offer]) -> Vec<(ContactId, AgentId)> {
    offers.iter().map(|o| (o.contact, o.agent)).collect()
}

#[test]
fn longest_idle_picks_the_longest_idle_qualified_agent() {
    let mut engine = Engine::new();
    let client = Uuid::from_u128(0xc1);
    let mut config = voice_queue(1);
    config.required_skills = vec![(SPANISH, 5)];
    config.client = Some(client);
    engine.upsert_queue(config, t(0)).unwrap();
    // Idle longest, but lacks the skill.
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    // Idle next longest, proficiency too low.
    online(
        &mut engine,
        AgentProfile::new(agent(2)).with_skill(SPANISH, 4),
        t(1),
    );
    // Qualified, but scoped to another client.
    let mut other_client = AgentProfile::new(agent(3)).with_skill(SPANISH, 9);
    other_client.clients = Some(vec![Uuid::from_u128(0xc2)]);
    online(&mut engine, other_client, t(2));
    // Qualified: idle since t(3) and t(4).
    let mut scoped = AgentProfile::new(agent(4)).with_skill(SPANISH, 5);
    scoped.clients = Some(vec![client]);
    online(&mut engine, scoped, t(3));
    online(
        &mut engine,
        AgentProfile::new(agent(5)).with_skill(SPANISH, 10),
        t(4),
    );

    assert_eq!(
        engine.eligible_agents(queue(1)).unwrap(),
        vec![agent(4), agent(5)]
    );
    let offers = call(&mut engine, 100, 1, t(10));
    assert_eq!(offered_to(&offers), vec![(contact(100), agent(4))]);
    assert_eq!(offers[0].expires_at, t(30));
    let offers = call(&mut engine, 101, 1, t(11));
    assert_eq!(offered_to(&offers), vec![(contact(101), agent(5))]);
    // Nobody qualified is left: the third call waits.
    assert!(call(&mut engine, 102, 1, t(12)).is_empty());
    assert_eq!(engine.waiting_position(contact(102)).unwrap(), Some(1));
}

#[test]
fn freed_agent_takes_highest_priority_then_longest_waiting() {
    let mut engine = Engine::new();
    let mut low = voice_queue(1);
    low.priority = 10;
    let mut high = voice_queue(2);
    high.priority = 50;
    engine.upsert_queue(low, t(0)).unwrap();
    engine.upsert_queue(high, t(0)).unwrap();
    engine
        .upsert_agent_profile(AgentProfile::new(agent(1)), t(0))
        .unwrap();

    call(&mut engine, 1, 1, t(1)); // priority 10, oldest
    call(&mut engine, 2, 2, t(3)); // priority 50
    call(&mut engine, 3, 2, t(2)); // priority 50, waited longer than 2
    engine
        .enqueue(
            Contact::new(contact(4), queue(1), Channel::Voice, t(4)).with_priority(90),
            t(4),
        )
        .unwrap();
    assert_eq!(
        engine.waiting(queue(2)).unwrap(),
        vec![contact(3), contact(2)]
    );

    let mut order = Vec::new();
    let mut now = 10;
    let out = engine
        .set_presence(agent(1), Presence::Available, t(now))
        .unwrap();
    order.extend(offered_to(&out.offers));
    while order.len() < 4 {
        let (c, a) = *order.last().unwrap();
        engine.accept(c, a, t(now)).unwrap();
        now += 10;
        let out = engine.end(c, t(now)).unwrap();
        order.extend(offered_to(&out.offers));
    }
    let contacts: Vec<_> = order.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        contacts,
        vec![contact(4), contact(3), contact(2), contact(1)]
    );
}

#[test]
fn agent_goes_not_ready_after_ring_no_answer_and_call_goes_to_next_agent() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    online(&mut engine, AgentProfile::new(agent(2)), t(1));
    online(&mut engine, AgentProfile::new(agent(3)), t(2));
    let offers = call(&mut engine, 100, 1, t(10));
    assert_eq!(offered_to(&offers), vec![(contact(100), agent(1))]);
    let second = call(&mut engine, 101, 1, t(11));
    assert_eq!(offered_to(&second), vec![(contact(101), agent(2))]);
    assert_eq!(engine.next_deadline(), Some(t(30)));

    // Not yet due.
    assert!(engine.expire_offers(t(29)).unwrap().is_empty());

    // Agent 3 leaves so that the requeued call has to wait.
    engine
        .set_presence(agent(3), Presence::not_ready("lunch"), t(20))
        .unwrap();
    let out = engine.expire_offers(t(30)).unwrap();
    assert_eq!(offered_to(&out.withdrawn), vec![(contact(100), agent(1))]);
    assert!(out.offers.is_empty());
    assert_eq!(
        engine.agent_state(agent(1)).unwrap(),
        AgentState::NotReady {
            reason: "missed".into()
        }
    );
    assert_eq!(
        out.agent_events,
        vec![AgentEvent {
            agent: agent(1),
            from: AgentState::Reserved,
            to: AgentState::NotReady {
                reason: "missed".into()
            },
            at: t(30),
            reason: TransitionReason::Missed,
        }]
    );
    // Back at the head: ahead of a call queued later.
    call(&mut engine, 102, 1, t(31));
    assert_eq!(
        engine.waiting(queue(1)).unwrap(),
        vec![contact(100), contact(102)]
    );
    assert_eq!(
        engine.contact(contact(100)).unwrap().state,
        ContactState::Queued { position: 1 }
    );

    // The next agent to free up gets it.
    let out = engine
        .set_presence(agent(3), Presence::Available, t(40))
        .unwrap();
    assert_eq!(offered_to(&out.offers), vec![(contact(100), agent(3))]);
}

#[test]
fn expired_offer_goes_straight_to_the_next_available_agent() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    call(&mut engine, 100, 1, t(1));
    online(&mut engine, AgentProfile::new(agent(2)), t(5));
    let out = engine.tick(t(21)).unwrap();
    assert_eq!(offered_to(&out.withdrawn), vec![(contact(100), agent(1))]);
    assert_eq!(offered_to(&out.offers), vec![(contact(100), agent(2))]);
    let kinds: Vec<_> = out.contact_events.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            ContactEventKind::Requeued { agent: agent(1) },
            ContactEventKind::Offered { agent: agent(2) }
        ]
    );
}

#[test]
fn decline_requeues_and_sets_not_ready_declined() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    call(&mut engine, 100, 1, t(1));
    assert_eq!(
        engine.decline(contact(100), agent(2), t(2)),
        Err(AcdError::UnknownAgent(agent(2)))
    );
    let out = engine.decline(contact(100), agent(1), t(2)).unwrap();
    assert_eq!(out.withdrawn.len(), 1);
    assert_eq!(
        engine.agent_state(agent(1)).unwrap(),
        AgentState::NotReady {
            reason: "declined".into()
        }
    );
    assert_eq!(engine.waiting_position(contact(100)).unwrap(), Some(1));
}

#[test]
fn chat_agent_takes_three_chats_and_voice_blocks_chat() {
    let mut engine = Engine::new();
    engine
        .upsert_queue(QueueConfig::new(queue(1), Channel::Chat), t(0))
        .unwrap();
    engine.upsert_queue(voice_queue(2), t(0)).unwrap();
    let profile = AgentProfile::new(agent(1)).with_capacity(Channel::Chat, 3);
    online(&mut engine, profile, t(0));

    for n in 0..4 {
        engine
            .enqueue(
                Contact::new(contact(10 + n), queue(1), Channel::Chat, t(1)),
                t(1),
            )
            .unwrap();
    }
    assert_eq!(
        engine.agent(agent(1)).unwrap().offers,
        vec![contact(10), contact(11), contact(12)]
    );
    assert_eq!(engine.waiting(queue(1)).unwrap(), vec![contact(13)]);
    for n in 0..3 {
        engine.accept(contact(10 + n), agent(1), t(2)).unwrap();
    }
    assert_eq!(engine.agent_state(agent(1)).unwrap(), AgentState::Busy);

    // A call waits: the agent has chats.
    assert!(call(&mut engine, 20, 2, t(3)).is_empty());
    // One chat ends: the waiting chat is offered, not the call.
    let out = engine.end(contact(10), t(4)).unwrap();
    assert_eq!(offered_to(&out.offers), vec![(contact(13), agent(1))]);
    engine.accept(contact(13), agent(1), t(4)).unwrap();
    for n in [11, 12, 13] {
        let out = engine.end(contact(n), t(5)).unwrap();
        if n == 13 {
            // Free of chats: the call comes.
            assert_eq!(offered_to(&out.offers), vec![(contact(20), agent(1))]);
        } else {
            assert!(out.offers.is_empty());
        }
    }
    // On a call, no chat is offered.
    engine.accept(contact(20), agent(1), t(6)).unwrap();
    let out = engine
        .enqueue(
            Contact::new(contact(30), queue(1), Channel::Chat, t(7)),
            t(7),
        )
        .unwrap();
    assert!(out.offers.is_empty());

    // Without voice_blocks_others a chat agent on a call still gets chats.
    let mut free = AgentProfile::new(agent(1)).with_capacity(Channel::Chat, 3);
    free.voice_blocks_others = false;
    let out = engine.upsert_agent_profile(free, t(8)).unwrap();
    assert_eq!(offered_to(&out.offers), vec![(contact(30), agent(1))]);
}

#[test]
fn wrap_up_is_timed_extended_ended_early_and_ended_by_tick() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.wrap_up = Duration::from_secs(30);
    engine.upsert_queue(config, t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));

    call(&mut engine, 1, 1, t(0));
    engine.accept(contact(1), agent(1), t(1)).unwrap();
    engine.end(contact(1), t(10)).unwrap();
    assert_eq!(
        engine.agent_state(agent(1)).unwrap(),
        AgentState::AfterCallWork { until: t(40) }
    );
    assert_eq!(engine.next_deadline(), Some(t(40)));
    // Calls wait during after-call work.
    assert!(call(&mut engine, 2, 1, t(11)).is_empty());
    engine
        .extend_wrap_up(agent(1), Duration::from_secs(15), t(20))
        .unwrap();
    assert_eq!(
        engine.agent_state(agent(1)).unwrap(),
        AgentState::AfterCallWork { until: t(55) }
    );
    assert!(engine.tick(t(40)).unwrap().offers.is_empty());
    // The tick at the end matches the waiting call.
    let out = engine.tick(t(55)).unwrap();
    assert_eq!(offered_to(&out.offers), vec![(contact(2), agent(1))]);
    let steps: Vec<_> = out
        .agent_events
        .iter()
        .map(|e| (e.to.clone(), e.reason))
        .collect();
    assert_eq!(
        steps,
        vec![
            (AgentState::Available, TransitionReason::WrapUpExpired),
            (AgentState::Reserved, TransitionReason::Offered),
        ]
    );

    // Ended early by the agent.
    engine.accept(contact(2), agent(1), t(56)).unwrap();
    engine.end(contact(2), t(60)).unwrap();
    let out = engine.end_wrap_up(agent(1), t(61)).unwrap();
    assert_eq!(out.agent_events[0].reason, TransitionReason::WrapUpEnded);
    assert_eq!(engine.agent_state(agent(1)).unwrap(), AgentState::Available);
    assert_eq!(engine.agent(agent(1)).unwrap().idle_since, t(61));
    assert_eq!(engine.next_deadline(), None);

    // Going available during wrap-up ends it too.
    call(&mut engine, 3, 1, t(62));
    engine.accept(contact(3), agent(1), t(62)).unwrap();
    engine.end(contact(3), t(63)).unwrap();
    engine
        .set_presence(agent(1), Presence::Available, t(64))
        .unwrap();
    assert_eq!(engine.agent_state(agent(1)).unwrap(), AgentState::Available);
    assert_eq!(
        engine.end_wrap_up(agent(1), t(65)),
        Err(AcdError::NotInWrapUp {
            agent: agent(1),
            current: AgentState::Available
        })
    );
}

#[test]
fn not_ready_while_busy_applies_after_the_contact_and_its_wrap_up() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.wrap_up = Duration::from_secs(10);
    engine.upsert_queue(config, t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    call(&mut engine, 1, 1, t(0));
    engine.accept(contact(1), agent(1), t(1)).unwrap();
    let out = engine
        .set_presence(agent(1), Presence::not_ready("break"), t(2))
        .unwrap();
    assert!(out.agent_events.is_empty());
    assert_eq!(engine.agent_state(agent(1)).unwrap(), AgentState::Busy);
    engine.end(contact(1), t(5)).unwrap();
    assert_eq!(
        engine.agent_state(agent(1)).unwrap(),
        AgentState::AfterCallWork { until: t(15) }
    );
    call(&mut engine, 2, 1, t(6));
    let out = engine.tick(t(15)).unwrap();
    assert!(out.offers.is_empty());
    assert_eq!(
        engine.agent_state(agent(1)).unwrap(),
        AgentState::NotReady {
            reason: "break".into()
        }
    );
}

#[test]
fn illegal_transitions_report_the_current_state() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    call(&mut engine, 1, 1, t(1));
    let err = engine
        .set_presence(agent(1), Presence::Offline, t(2))
        .unwrap_err();
    assert_eq!(
        err,
        AcdError::IllegalTransition {
            agent: agent(1),
            current: AgentState::Reserved,
            requested: Presence::Offline,
        }
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        "agent 00000000-0000-0000-0000-000000000001 cannot go offline while reserved"
    );
    engine.accept(contact(1), agent(1), t(3)).unwrap();
    assert_eq!(
        engine.set_presence(agent(1), Presence::Offline, t(4)),
        Err(AcdError::IllegalTransition {
            agent: agent(1),
            current: AgentState::Busy,
            requested: Presence::Offline,
        })
    );
    assert_eq!(
        engine.remove_agent(agent(1), t(4)),
        Err(AcdError::AgentBusy {
            agent: agent(1),
            current: AgentState::Busy
        })
    );
    assert_eq!(
        engine.extend_wrap_up(agent(1), Duration::from_secs(1), t(4)),
        Err(AcdError::NotInWrapUp {
            agent: agent(1),
            current: AgentState::Busy
        })
    );
    assert_eq!(
        engine.accept(contact(1), agent(1), t(5)),
        Err(AcdError::NoSuchOffer {
            contact: contact(1),
            agent: agent(1)
        })
    );
    assert_eq!(
        engine.abandon(contact(1), t(5)),
        Err(AcdError::ContactConnected(contact(1)))
    );
    engine.end(contact(1), t(6)).unwrap();
    engine
        .set_presence(agent(1), Presence::Offline, t(7))
        .unwrap();
    engine.remove_agent(agent(1), t(8)).unwrap();
    assert_eq!(
        engine.agent_state(agent(1)),
        Err(AcdError::UnknownAgent(agent(1)))
    );
}

#[test]
fn abandon_while_queued_and_while_offered() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    online(&mut engine, AgentProfile::new(agent(2)), t(5));
    call(&mut engine, 1, 1, t(10)); // to agent 1
    call(&mut engine, 2, 1, t(11)); // to agent 2
    call(&mut engine, 3, 1, t(12)); // waits
    call(&mut engine, 4, 1, t(13)); // waits

    let out = engine.abandon(contact(3), t(14)).unwrap();
    assert_eq!(out.contact_events[0].kind, ContactEventKind::Abandoned);
    assert_eq!(
        engine.contact(contact(3)),
        Err(AcdError::UnknownContact(contact(3)))
    );
    assert_eq!(engine.waiting(queue(1)).unwrap(), vec![contact(4)]);

    // Caller 1 hangs up while ringing: agent 1 is freed and takes call 4.
    let out = engine.abandon(contact(1), t(15)).unwrap();
    assert_eq!(offered_to(&out.withdrawn), vec![(contact(1), agent(1))]);
    assert_eq!(offered_to(&out.offers), vec![(contact(4), agent(1))]);
    engine.abandon(contact(4), t(16)).unwrap();
    assert_eq!(engine.agent_state(agent(1)).unwrap(), AgentState::Available);
    // Idle time was not reset by the withdrawn offers.
    assert_eq!(engine.agent(agent(1)).unwrap().idle_since, t(0));
    assert_eq!(
        engine.queue_stats(queue(1), t(16)).unwrap().agents,
        AgentCounts {
            available: 1,
            reserved: 1,
            ..AgentCounts::default()
        }
    );
}

#[test]
fn least_occupied_prefers_the_agent_with_least_busy_time() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.strategy = Strategy::LeastOccupied;
    engine.upsert_queue(config, t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    online(&mut engine, AgentProfile::new(agent(2)), t(0));
    // Agent 1 (lowest id, idle since t0 like agent 2) takes a 60 s call.
    let offers = call(&mut engine, 1, 1, t(0));
    assert_eq!(offered_to(&offers), vec![(contact(1), agent(1))]);
    engine.accept(contact(1), agent(1), t(0)).unwrap();
    engine.end(contact(1), t(60)).unwrap();
    // Agent 2 takes a 10 s call.
    let offers = call(&mut engine, 2, 1, t(100));
    assert_eq!(offered_to(&offers), vec![(contact(2), agent(2))]);
    engine.accept(contact(2), agent(2), t(100)).unwrap();
    engine.end(contact(2), t(110)).unwrap();
    // Agent 1 has been idle longest (since 60, agent 2 since 110), but it
    // was busy 60 of 200 s and agent 2 only 10: agent 2 again.
    let offers = call(&mut engine, 3, 1, t(200));
    assert_eq!(offered_to(&offers), vec![(contact(3), agent(2))]);
    assert!((engine.occupancy(agent(1), t(200)).unwrap() - 0.3).abs() < 1e-9);
}

#[test]
fn round_robin_offers_in_agent_id_order_and_wraps() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.strategy = Strategy::RoundRobin;
    engine.upsert_queue(config, t(0)).unwrap();
    // Agent 3 has been idle longest; round robin does not care.
    online(&mut engine, AgentProfile::new(agent(3)), t(0));
    online(&mut engine, AgentProfile::new(agent(1)), t(1));
    online(&mut engine, AgentProfile::new(agent(2)), t(2));
    let mut order = Vec::new();
    for n in 0..5 {
        let offers = call(&mut engine, 10 + n, 1, t(10));
        let (c, a) = offered_to(&offers)[0];
        order.push(a);
        engine.accept(c, a, t(10)).unwrap();
        engine.end(c, t(11)).unwrap();
    }
    assert_eq!(
        order,
        vec![agent(1), agent(2), agent(3), agent(1), agent(2)]
    );
}

#[test]
fn full_queue_refuses_the_contact() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.max_waiting = Some(2);
    engine.upsert_queue(config, t(0)).unwrap();
    call(&mut engine, 1, 1, t(1));
    call(&mut engine, 2, 1, t(2));
    let err = engine
        .enqueue(
            Contact::new(contact(3), queue(1), Channel::Voice, t(3)),
            t(3),
        )
        .unwrap_err();
    assert_eq!(
        err,
        AcdError::QueueFull {
            queue: queue(1),
            max: 2
        }
    );
    assert_eq!(err.kind(), ErrorKind::Overflow);
    assert_eq!(
        err.to_string(),
        "queue 00000000-0000-0000-0000-000000000001 is full (2 contacts waiting)"
    );
    assert_eq!(
        engine.contact(contact(3)),
        Err(AcdError::UnknownContact(contact(3)))
    );
}

#[test]
fn enqueue_validates_its_contact() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    let chat = Contact::new(contact(1), queue(1), Channel::Chat, t(0));
    let err = engine.enqueue(chat, t(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err,
        AcdError::ChannelMismatch {
            contact: contact(1),
            queue: queue(1),
            contact_channel: Channel::Chat,
            queue_channel: Channel::Voice,
        }
    );
    let unknown = Contact::new(contact(1), queue(9), Channel::Voice, t(0));
    assert_eq!(
        engine.enqueue(unknown, t(0)),
        Err(AcdError::UnknownQueue(queue(9)))
    );
    assert_eq!(AcdError::UnknownQueue(queue(9)).kind(), ErrorKind::NotFound);
    call(&mut engine, 1, 1, t(0));
    let again = Contact::new(contact(1), queue(1), Channel::Voice, t(0));
    assert_eq!(
        engine.enqueue(again, t(0)),
        Err(AcdError::DuplicateContact(contact(1)))
    );
    let urgent = Contact::new(contact(2), queue(1), Channel::Voice, t(0)).with_priority(101);
    assert!(matches!(
        engine.enqueue(urgent, t(0)),
        Err(AcdError::InvalidConfig(_))
    ));
}

#[test]
fn invalid_configs_are_refused() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.required_skills = vec![(BILLING, 11)];
    assert_eq!(
        engine.upsert_queue(config, t(0)).unwrap_err().to_string(),
        "invalid configuration: queue 00000000-0000-0000-0000-000000000001: required proficiency 11 for skill 00000000-0000-0000-0000-00000000000b is outside 1..=10"
    );
    let mut config = voice_queue(1);
    config.priority = 101;
    assert!(matches!(
        engine.upsert_queue(config, t(0)),
        Err(AcdError::InvalidConfig(_))
    ));
    let mut config = voice_queue(1);
    config.ring_timeout = Duration::ZERO;
    assert_eq!(
        engine.upsert_queue(config, t(0)),
        Err(AcdError::InvalidConfig(
            "queue 00000000-0000-0000-0000-000000000001: ring timeout must be at least 1 ms".into()
        ))
    );
    let profile = AgentProfile::new(agent(1)).with_skill(BILLING, 0);
    assert!(matches!(
        engine.upsert_agent_profile(profile, t(0)),
        Err(AcdError::InvalidConfig(_))
    ));
    assert_eq!(engine.queues().count(), 0);
    assert_eq!(engine.agents().count(), 0);
}

#[test]
fn queue_with_waiting_contacts_cannot_be_removed() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    call(&mut engine, 1, 1, t(1));
    let err = engine.remove_queue(queue(1), t(2)).unwrap_err();
    assert_eq!(
        err,
        AcdError::QueueBusy {
            queue: queue(1),
            contacts: 1
        }
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    engine.abandon(contact(1), t(3)).unwrap();
    engine.remove_queue(queue(1), t(4)).unwrap();
    assert_eq!(
        engine.queue(queue(1)),
        Err(AcdError::UnknownQueue(queue(1)))
    );
}

#[test]
fn queue_stats_count_waiting_offered_connected_and_agents() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    online(&mut engine, AgentProfile::new(agent(2)), t(0));
    engine
        .upsert_agent_profile(AgentProfile::new(agent(3)), t(0))
        .unwrap();
    call(&mut engine, 1, 1, t(1));
    engine.accept(contact(1), agent(1), t(2)).unwrap();
    call(&mut engine, 2, 1, t(3));
    call(&mut engine, 3, 1, t(4));
    call(&mut engine, 4, 1, t(5));
    let stats = engine.queue_stats(queue(1), t(10)).unwrap();
    assert_eq!(stats.waiting, 2);
    assert_eq!(stats.oldest_wait, Duration::from_secs(6));
    assert_eq!(stats.offered, 1);
    assert_eq!(stats.connected, 1);
    assert_eq!(
        stats.agents,
        AgentCounts {
            offline: 1,
            reserved: 1,
            busy: 1,
            ..AgentCounts::default()
        }
    );
    assert_eq!(engine.offers().len(), 1);
    assert_eq!(
        engine.contact(contact(4)).unwrap().state,
        ContactState::Queued { position: 2 }
    );
}

#[test]
fn raising_a_queue_priority_reorders_waiting_contacts_across_queues() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    engine.upsert_queue(voice_queue(2), t(0)).unwrap();
    engine
        .upsert_agent_profile(AgentProfile::new(agent(1)), t(0))
        .unwrap();
    call(&mut engine, 1, 1, t(1));
    call(&mut engine, 2, 2, t(2));
    let mut config = voice_queue(2);
    config.priority = 20;
    engine.upsert_queue(config, t(3)).unwrap();
    assert_eq!(engine.contact(contact(2)).unwrap().priority, 20);
    let out = engine
        .set_presence(agent(1), Presence::Available, t(4))
        .unwrap();
    assert_eq!(offered_to(&out.offers), vec![(contact(2), agent(1))]);
}

#[test]
fn new_skill_makes_a_waiting_contact_reachable() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.required_skills = vec![(BILLING, 3)];
    engine.upsert_queue(config, t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    assert!(call(&mut engine, 1, 1, t(1)).is_empty());
    let out = engine
        .upsert_agent_profile(AgentProfile::new(agent(1)).with_skill(BILLING, 3), t(2))
        .unwrap();
    assert_eq!(offered_to(&out.offers), vec![(contact(1), agent(1))]);
}

/// Today's figures, hand-computed: threshold 20 s, one agent, AHT from
/// talk plus 10 s of wrap-up; a short abandon is left out of the service
/// level; a new local day (Europe/Paris midnight, not UTC's) starts at zero.
#[test]
fn day_figures_service_level_asa_aht_and_expected_wait() {
    let mut engine = Engine::new();
    let mut config = voice_queue(1);
    config.service_level = Some(Duration::from_secs(20));
    config.wrap_up = Duration::from_secs(10);
    config.time_zone = Some("Europe/Paris".into());
    engine.upsert_queue(config, t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    let empty = engine.queue_stats(queue(1), t(0)).unwrap();
    assert_eq!(empty.service_level, None, "nothing counted yet");
    assert_eq!(
        empty.expected_wait,
        Some(Duration::ZERO),
        "an agent is free"
    );

    // Call 1 answered after 5 s, talks 60 s (+10 s wrap-up).
    assert_eq!(call(&mut engine, 1, 1, t(0)).len(), 1);
    engine.accept(contact(1), agent(1), t(5)).unwrap();
    // Call 2 waits while the agent is busy; call 3 abandons after 8 s
    // (short abandon), call 4 after 40 s (counts against).
    assert!(call(&mut engine, 2, 1, t(10)).is_empty());
    assert!(call(&mut engine, 3, 1, t(12)).is_empty());
    assert!(call(&mut engine, 4, 1, t(13)).is_empty());
    engine.abandon(contact(3), t(20)).unwrap();
    engine.abandon(contact(4), t(53)).unwrap();
    engine.end(contact(1), t(65)).unwrap();
    engine.end_wrap_up(agent(1), t(66)).unwrap();
    // Call 2 is offered at once and answered 60 s after it queued.
    engine.accept(contact(2), agent(1), t(70)).unwrap();

    let stats = engine.queue_stats(queue(1), t(71)).unwrap();
    let today = &stats.today;
    assert_eq!(today.day, Some("2025-01-06".parse().unwrap()));
    assert_eq!(
        (
            today.entered,
            today.answered,
            today.answered_within_threshold
        ),
        (4, 2, 1)
    );
    assert_eq!((today.abandoned, today.abandoned_within_threshold), (2, 1));
    // SL = answered within 20 s / (answered + abandoned after 20 s) = 1/3.
    assert_eq!(stats.service_level, Some(1.0 / 3.0));
    // ASA = (5 + 60) / 2 = 32.5 s.
    assert_eq!(
        today.average_speed_of_answer(),
        Some(Duration::from_millis(32_500))
    );
    // AHT = 60 s talk + 10 s wrap-up, one handled contact.
    assert_eq!(today.average_handle_time(), Some(Duration::from_secs(70)));

    // One waiting, the only agent busy: (1 + 1) × 70 s ÷ 1 = 140 s.
    assert!(call(&mut engine, 5, 1, t(80)).is_empty());
    let stats = engine.queue_stats(queue(1), t(81)).unwrap();
    assert_eq!(stats.waiting, 1);
    assert_eq!(stats.expected_wait, Some(Duration::from_secs(140)));

    // 2025-01-06T23:00Z is already the 7th in Paris: a new day, zeros.
    let paris_midnight = "2025-01-06T23:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let stats = engine.queue_stats(queue(1), paris_midnight).unwrap();
    assert_eq!(stats.today.day, Some("2025-01-07".parse().unwrap()));
    assert_eq!(stats.today.entered, 0);
    let before = paris_midnight - TimeDelta::seconds(1);
    assert_eq!(
        engine.queue_stats(queue(1), before).unwrap().today.entered,
        5
    );
    // The first count of the new day starts from zero.
    engine.abandon(contact(5), paris_midnight).unwrap();
    let stats = engine.queue_stats(queue(1), paris_midnight).unwrap();
    assert_eq!((stats.today.entered, stats.today.abandoned), (0, 1));

    // An unknown zone is refused.
    let mut bad = voice_queue(2);
    bad.time_zone = Some("Mars/Olympus".into());
    assert!(matches!(
        engine.upsert_queue(bad, t(0)),
        Err(AcdError::InvalidConfig(_))
    ));
}

/// A waiting contact overflows out of its queue (counted apart from
/// abandons); one that rings or is connected does not.
#[test]
fn overflow_takes_a_waiting_contact_out_and_refuses_others() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(0)).unwrap();
    online(&mut engine, AgentProfile::new(agent(1)), t(0));
    assert_eq!(call(&mut engine, 1, 1, t(0)).len(), 1, "rings at once");
    assert!(call(&mut engine, 2, 1, t(1)).is_empty(), "waits");
    let error = engine.overflow(contact(1), t(2)).unwrap_err();
    assert_eq!(error, AcdError::NotQueued(contact(1)));
    assert_eq!(error.kind(), ErrorKind::Conflict);
    let outcome = engine.overflow(contact(2), t(31)).unwrap();
    assert_eq!(
        outcome.contact_events[0].kind,
        ContactEventKind::Overflowed { waited_ms: 30_000 }
    );
    assert!(engine.contact(contact(2)).is_err(), "gone from the engine");
    let stats = engine.queue_stats(queue(1), t(31)).unwrap();
    assert_eq!(
        (stats.waiting, stats.today.overflowed, stats.today.abandoned),
        (0, 1, 0)
    );
    assert!(engine.overflow(contact(2), t(32)).is_err(), "only once");
}

/// After the state was lost, a call still waiting is put back with its
/// original arrival (ahead of a caller who came after it) and a call still
/// connected keeps its agent busy until it ends; neither is counted again
/// or announced as a new contact.
#[test]
fn a_reinstated_contact_keeps_its_place_and_a_reinstated_connection_keeps_its_agent() {
    let mut engine = Engine::new();
    engine.upsert_queue(voice_queue(1), t(100)).unwrap();
    engine
        .upsert_agent_profile(AgentProfile::new(agent(1)), t(100))
        .unwrap();
    // A caller who arrived after the lost one, queued normally.
    assert!(call(&mut engine, 2, 1, t(101)).is_empty());
    let entered = engine.queue_stats(queue(1), t(101)).unwrap();

    let mut lost = Contact::new(contact(1), queue(1), Channel::Voice, t(0));
    lost.priority = Some(50);
    let outcome = engine.reinstate(lost.clone(), None, t(102)).unwrap();
    assert!(outcome.contact_events.is_empty(), "{outcome:?}");
    let view = engine.contact(contact(1)).unwrap();
    assert_eq!(view.enqueued_at, t(0));
    assert_eq!(view.priority, 50);
    assert_eq!(view.state, ContactState::Queued { position: 1 });
    assert_eq!(
        engine.contact(contact(2)).unwrap().state,
        ContactState::Queued { position: 2 }
    );

    let connected = Contact::new(contact(3), queue(1), Channel::Voice, t(10));
    let outcome = engine
        .reinstate(connected, Some((agent(1), t(20))), t(103))
        .unwrap();
    assert!(outcome.contact_events.is_empty(), "{outcome:?}");
    assert!(outcome.offers.is_empty(), "{outcome:?}");
    assert_eq!(
        engine.contact(contact(3)).unwrap().state,
        ContactState::Connected { agent: agent(1) }
    );
    let view = engine.agent(agent(1)).unwrap();
    assert_eq!(view.state, AgentState::Busy);
    assert_eq!(view.contacts, vec![contact(3)]);
    assert_eq!(
        engine.queue_stats(queue(1), t(103)).unwrap().today,
        entered.today,
        "nothing counted again"
    );
    engine.check_consistency().unwrap();

    // Available but on the reinstated call: nothing is offered until it ends;
    // then the caller who kept its place goes first.
    let outcome = engine
        .set_presence(agent(1), Presence::Available, t(104))
        .unwrap();
    assert!(outcome.offers.is_empty(), "{outcome:?}");
    let outcome = engine.end(contact(3), t(110)).unwrap();
    assert_eq!(offered_to(&outcome.offers), vec![(contact(1), agent(1))]);
    engine.check_consistency().unwrap();

    // What the engine knows already, or an agent it does not, is refused
    // and changes nothing.
    let again = engine.reinstate(lost, None, t(111)).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict, "{again}");
    let stranger = Contact::new(contact(4), queue(1), Channel::Voice, t(0));
    let unknown = engine
        .reinstate(stranger, Some((agent(9), t(0))), t(111))
        .unwrap_err();
    assert!(matches!(unknown, AcdError::UnknownAgent(_)), "{unknown}");
    assert!(engine.contact(contact(4)).is_err());
    engine.check_consistency().unwrap();
}
