//! Contacts outside every queue: agents' outbound contacts, connected to
//! the agent who placed them, and calls rung to an agent directly that it
//! answered; in no queue, loading the agent like an accepted contact.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use switchboard_acd::{
    AcdError, AgentEvent, AgentId, AgentProfile, AgentState, Channel, Contact, ContactEventKind,
    ContactId, ContactState, DirectOrigin, Engine, Offer, Outcome, Presence, QueueConfig, QueueId,
    Snapshot, TransitionReason,
};

const PLACED: DirectOrigin = DirectOrigin::PlacedByAgent;

fn t(secs: i64) -> DateTime<Utc> {
    "2025-01-06T09:00:00Z"
        .parse::<DateTime<Utc>>()
        .expect("valid time")
        + TimeDelta::seconds(secs)
}

const ANN: AgentId = AgentId::from_u128(1);
const BOB: AgentId = AgentId::from_u128(2);
const SALES: QueueId = QueueId::from_u128(10);
/// The agents' outbound calls.
const DIALED: ContactId = ContactId::from_u128(100);
const DIALED_TOO: ContactId = ContactId::from_u128(101);
/// Customers calling the sales queue.
const CALLER: ContactId = ContactId::from_u128(200);

/// A voice queue with `wrap_up` and agents Ann and Bob (one voice line
/// each, two chats for Ann), Ann available at `t(0)`, Bob offline.
fn sales_floor(wrap_up: Duration) -> Engine {
    let mut engine = Engine::new();
    let mut sales = QueueConfig::new(SALES, Channel::Voice);
    sales.wrap_up = wrap_up;
    engine.upsert_queue(sales, t(0)).unwrap();
    let ann = AgentProfile::new(ANN).with_capacity(Channel::Chat, 2);
    engine.upsert_agent_profile(ann, t(0)).unwrap();
    engine
        .upsert_agent_profile(AgentProfile::new(BOB), t(0))
        .unwrap();
    engine.set_presence(ANN, Presence::Available, t(0)).unwrap();
    engine
}

/// Connects an outbound voice call placed at `at`, with no wrap-up.
fn dial(
    engine: &mut Engine,
    contact: ContactId,
    agent: AgentId,
    at: DateTime<Utc>,
) -> Result<Outcome, AcdError> {
    engine.connect_direct(
        contact,
        agent,
        PLACED,
        Channel::Voice,
        at,
        Duration::ZERO,
        at,
    )
}

fn call(engine: &mut Engine, at: DateTime<Utc>) -> Vec<Offer> {
    engine
        .enqueue(Contact::new(CALLER, SALES, Channel::Voice, at), at)
        .unwrap()
        .offers
}

fn offered_to(offers: &[Offer]) -> Vec<(ContactId, AgentId)> {
    offers.iter().map(|o| (o.contact, o.agent)).collect()
}

#[test]
fn an_agent_on_an_outbound_call_is_busy_and_gets_the_waiting_call_once_it_ends() {
    let mut engine = sales_floor(Duration::ZERO);
    let outcome = dial(&mut engine, DIALED, ANN, t(5)).unwrap();
    assert_eq!(
        outcome.agent_events,
        vec![AgentEvent {
            agent: ANN,
            from: AgentState::Available,
            to: AgentState::Busy,
            at: t(5),
            reason: TransitionReason::OutboundConnected,
        }]
    );
    assert!(outcome.contact_events.is_empty(), "{outcome:?}");
    assert!(outcome.changed.queues.is_empty(), "{outcome:?}");
    assert!(outcome.changed.contacts.contains(&DIALED));
    assert_eq!(engine.agent_state(ANN).unwrap(), AgentState::Busy);
    assert_eq!(engine.agent(ANN).unwrap().contacts, vec![DIALED]);
    let view = engine.contact(DIALED).unwrap();
    assert_eq!(view.queue, None);
    assert_eq!(view.channel, Channel::Voice);
    assert_eq!(view.state, ContactState::Connected { agent: ANN });

    // Ann is available but on the phone: the caller waits.
    assert!(call(&mut engine, t(6)).is_empty());
    assert_eq!(engine.waiting(SALES).unwrap(), vec![CALLER]);
    engine.check_consistency().unwrap();

    let outcome = engine.end(DIALED, t(60)).unwrap();
    assert_eq!(offered_to(&outcome.offers), vec![(CALLER, ANN)]);
    let reasons: Vec<_> = outcome
        .agent_events
        .iter()
        .map(|event| (event.to.clone(), event.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (AgentState::Available, TransitionReason::ContactEnded),
            (AgentState::Reserved, TransitionReason::Offered),
        ]
    );
    assert!(engine.contact(DIALED).is_err(), "gone from the engine");
    assert!(outcome.changed.contacts.contains(&DIALED));
    engine.check_consistency().unwrap();
}

#[test]
fn an_outbound_contact_is_refused_while_an_offer_rings() {
    let mut engine = sales_floor(Duration::ZERO);
    assert_eq!(offered_to(&call(&mut engine, t(1))), vec![(CALLER, ANN)]);
    let before = engine.snapshot();
    assert_eq!(
        dial(&mut engine, DIALED, ANN, t(2)),
        Err(AcdError::AgentBusy {
            agent: ANN,
            current: AgentState::Reserved,
        })
    );
    // Not even on another channel with room.
    assert!(matches!(
        engine.connect_direct(
            DIALED,
            ANN,
            PLACED,
            Channel::Chat,
            t(2),
            Duration::ZERO,
            t(2)
        ),
        Err(AcdError::AgentBusy { .. })
    ));
    assert_eq!(engine.snapshot(), before);
}

#[test]
fn outbound_and_queued_contacts_share_the_agents_capacity() {
    // On a queued call, no outbound call (one voice line).
    let mut engine = sales_floor(Duration::ZERO);
    call(&mut engine, t(1));
    engine.accept(CALLER, ANN, t(2)).unwrap();
    let error = dial(&mut engine, DIALED, ANN, t(3)).unwrap_err();
    assert_eq!(
        error,
        AcdError::AgentBusy {
            agent: ANN,
            current: AgentState::Busy,
        }
    );
    assert_eq!(error.kind(), switchboard_acd::ErrorKind::Conflict);

    // On an outbound call, neither a second one nor a queued call.
    let mut engine = sales_floor(Duration::ZERO);
    dial(&mut engine, DIALED, ANN, t(1)).unwrap();
    assert!(matches!(
        dial(&mut engine, DIALED_TOO, ANN, t(2)),
        Err(AcdError::AgentBusy {
            current: AgentState::Busy,
            ..
        })
    ));
    assert!(call(&mut engine, t(3)).is_empty());

    // Two chats fit Ann's two; a third does not, nor email (no capacity).
    let mut engine = sales_floor(Duration::ZERO);
    for (n, at) in [(1, t(1)), (2, t(2))] {
        let chat = ContactId::from_u128(300 + n);
        engine
            .connect_direct(chat, ANN, PLACED, Channel::Chat, at, Duration::ZERO, at)
            .unwrap();
    }
    for channel in [Channel::Chat, Channel::Email] {
        assert!(matches!(
            engine.connect_direct(DIALED, ANN, PLACED, channel, t(3), Duration::ZERO, t(3)),
            Err(AcdError::AgentBusy { .. })
        ));
    }
    engine.check_consistency().unwrap();
}

#[test]
fn replaying_an_outbound_contact_changes_nothing_and_another_agent_is_refused() {
    let mut engine = sales_floor(Duration::ZERO);
    // Re-asserted after a loss: connected since before now.
    let outcome = engine
        .connect_direct(
            DIALED,
            ANN,
            PLACED,
            Channel::Voice,
            t(1),
            Duration::ZERO,
            t(30),
        )
        .unwrap();
    assert_eq!(outcome.agent_events.len(), 1);
    assert_eq!(engine.contact(DIALED).unwrap().enqueued_at, t(1));
    let before = engine.snapshot();

    let again = engine
        .connect_direct(
            DIALED,
            ANN,
            PLACED,
            Channel::Voice,
            t(1),
            Duration::ZERO,
            t(31),
        )
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(
        dial(&mut engine, DIALED, BOB, t(31)),
        Err(AcdError::DuplicateContact(DIALED))
    );
    assert_eq!(
        engine.enqueue(Contact::new(DIALED, SALES, Channel::Voice, t(31)), t(31)),
        Err(AcdError::DuplicateContact(DIALED))
    );
    let stranger = AgentId::from_u128(9);
    assert_eq!(
        dial(&mut engine, DIALED_TOO, stranger, t(31)),
        Err(AcdError::UnknownAgent(stranger))
    );
    assert!(matches!(
        engine.connect_direct(
            DIALED_TOO,
            BOB,
            PLACED,
            Channel::Voice,
            t(31),
            Duration::from_secs(25 * 3600),
            t(31)
        ),
        Err(AcdError::InvalidConfig(_))
    ));
    assert_eq!(engine.snapshot(), before);

    // The id of a queue's contact is taken too.
    call(&mut engine, t(32));
    assert_eq!(
        dial(&mut engine, CALLER, BOB, t(33)),
        Err(AcdError::DuplicateContact(CALLER))
    );
}

#[test]
fn operations_on_a_waiting_or_ringing_contact_refuse_an_outbound_one() {
    let mut engine = sales_floor(Duration::ZERO);
    dial(&mut engine, DIALED, ANN, t(1)).unwrap();
    assert_eq!(
        engine.abandon(DIALED, t(2)),
        Err(AcdError::ContactConnected(DIALED))
    );
    assert_eq!(
        engine.overflow(DIALED, t(2)),
        Err(AcdError::NotQueued(DIALED))
    );
    let no_offer = Err(AcdError::NoSuchOffer {
        contact: DIALED,
        agent: ANN,
    });
    assert_eq!(engine.accept(DIALED, ANN, t(2)), no_offer);
    assert_eq!(engine.decline(DIALED, ANN, t(2)), no_offer);
    assert_eq!(engine.waiting_position(DIALED), Ok(None));
}

#[test]
fn a_not_ready_or_offline_agent_may_place_one_and_returns_to_its_presence() {
    let mut engine = sales_floor(Duration::ZERO);
    engine
        .set_presence(ANN, Presence::not_ready("lunch"), t(1))
        .unwrap();
    dial(&mut engine, DIALED, ANN, t(2)).unwrap();
    assert_eq!(engine.agent_state(ANN).unwrap(), AgentState::Busy);
    engine.end(DIALED, t(3)).unwrap();
    assert_eq!(
        engine.agent_state(ANN).unwrap(),
        AgentState::NotReady {
            reason: "lunch".into()
        }
    );

    // Bob is offline: busy on the call, not removable until it ends.
    let outcome = dial(&mut engine, DIALED_TOO, BOB, t(4)).unwrap();
    assert_eq!(outcome.agent_events[0].from, AgentState::Offline);
    assert_eq!(
        engine.remove_agent(BOB, t(5)),
        Err(AcdError::AgentBusy {
            agent: BOB,
            current: AgentState::Busy,
        })
    );
    assert!(matches!(
        engine.set_presence(BOB, Presence::Offline, t(5)),
        Err(AcdError::IllegalTransition { .. })
    ));
    engine.end(DIALED_TOO, t(6)).unwrap();
    assert_eq!(engine.agent_state(BOB).unwrap(), AgentState::Offline);
    engine.remove_agent(BOB, t(7)).unwrap();
    engine.check_consistency().unwrap();
}

#[test]
fn an_outbound_contact_has_its_own_wrap_up_and_ends_the_current_one() {
    // The queue wraps up for 60 s; the outbound call for 30 s.
    let mut engine = sales_floor(Duration::from_secs(60));
    let wrap_up = Duration::from_secs(30);
    engine
        .connect_direct(DIALED, ANN, PLACED, Channel::Voice, t(1), wrap_up, t(1))
        .unwrap();
    assert!(call(&mut engine, t(2)).is_empty());
    let outcome = engine.end(DIALED, t(10)).unwrap();
    assert!(outcome.offers.is_empty(), "{outcome:?}");
    assert_eq!(
        engine.agent_state(ANN).unwrap(),
        AgentState::AfterCallWork { until: t(40) }
    );
    assert_eq!(engine.next_deadline(), Some(t(40)));
    let outcome = engine.tick(t(40)).unwrap();
    assert_eq!(offered_to(&outcome.offers), vec![(CALLER, ANN)]);

    // Wrapping up the queued call, Ann dials the customer back: the
    // wrap-up ends and she is busy; with no wrap-up of its own she is
    // available once it ends.
    engine.accept(CALLER, ANN, t(41)).unwrap();
    engine.end(CALLER, t(50)).unwrap();
    assert_eq!(
        engine.agent_state(ANN).unwrap(),
        AgentState::AfterCallWork { until: t(110) }
    );
    let outcome = dial(&mut engine, DIALED_TOO, ANN, t(51)).unwrap();
    assert_eq!(outcome.agent_events[0].to, AgentState::Busy);
    assert_eq!(engine.next_deadline(), None);
    engine.check_consistency().unwrap();
    engine.end(DIALED_TOO, t(70)).unwrap();
    assert_eq!(engine.agent_state(ANN).unwrap(), AgentState::Available);
}

/// An agent whose calls do not block chats, wrapping up a call while a
/// chat waits, dials out: its wrap-up over, it has room for the chat.
#[test]
fn leaving_wrap_up_for_an_outbound_call_frees_the_agent_for_a_waiting_chat() {
    let mut engine = sales_floor(Duration::from_secs(60));
    let support = QueueId::from_u128(11);
    engine
        .upsert_queue(QueueConfig::new(support, Channel::Chat), t(0))
        .unwrap();
    let mut ann = AgentProfile::new(ANN).with_capacity(Channel::Chat, 2);
    ann.voice_blocks_others = false;
    engine.upsert_agent_profile(ann, t(0)).unwrap();
    call(&mut engine, t(1));
    engine.accept(CALLER, ANN, t(2)).unwrap();
    engine.end(CALLER, t(10)).unwrap();
    let chat = ContactId::from_u128(300);
    let queued = engine
        .enqueue(Contact::new(chat, support, Channel::Chat, t(11)), t(11))
        .unwrap();
    assert!(queued.offers.is_empty(), "Ann wraps up: {queued:?}");

    let outcome = dial(&mut engine, DIALED, ANN, t(12)).unwrap();
    assert_eq!(offered_to(&outcome.offers), vec![(chat, ANN)]);
    assert_eq!(engine.agent_state(ANN).unwrap(), AgentState::Reserved);
    engine.check_consistency().unwrap();
}

#[test]
fn queue_figures_ignore_outbound_contacts() {
    let mut engine = sales_floor(Duration::ZERO);
    call(&mut engine, t(1));
    engine.accept(CALLER, ANN, t(2)).unwrap();
    engine.end(CALLER, t(20)).unwrap();
    let before = engine.queue_stats(SALES, t(21)).unwrap();

    dial(&mut engine, DIALED, ANN, t(21)).unwrap();
    let during = engine.queue_stats(SALES, t(21)).unwrap();
    assert_eq!(during.connected, 0);
    assert_eq!(during.today, before.today);
    assert_eq!(during.agents.busy, 1, "Ann counts as busy in her queue");
    let outcome = engine.end(DIALED, t(40)).unwrap();
    assert!(outcome.changed.queues.is_empty(), "{outcome:?}");
    assert!(outcome.contact_events.is_empty(), "{outcome:?}");
    let after = engine.queue_stats(SALES, t(40)).unwrap();
    assert_eq!(after.today, before.today);
    assert_eq!((after.connected, after.offered), (0, 0));
}

#[test]
fn an_outbound_contact_survives_a_snapshot_and_the_records() {
    let mut original = sales_floor(Duration::ZERO);
    original
        .connect_direct(
            DIALED,
            ANN,
            PLACED,
            Channel::Voice,
            t(1),
            Duration::from_secs(20),
            t(2),
        )
        .unwrap();
    call(&mut original, t(3));

    let json = serde_json::to_string(&original.snapshot()).unwrap();
    let mut restored = Engine::restore(serde_json::from_str::<Snapshot>(&json).unwrap()).unwrap();
    assert!(restored == original);
    restored.check_consistency().unwrap();
    let mut from_records = Engine::from_records(original.records()).unwrap();
    assert!(from_records == original);

    // Each carries on alike: wrap-up, then the waiting call.
    let ends = [&mut original, &mut restored, &mut from_records].map(|engine| {
        let ended = engine.end(DIALED, t(30)).unwrap();
        let ticked = engine.tick(t(50)).unwrap();
        (ended, ticked)
    });
    assert_eq!(offered_to(&ends[0].1.offers), vec![(CALLER, ANN)]);
    assert_eq!(ends[1], ends[0]);
    assert_eq!(ends[2], ends[0]);
}

#[test]
fn an_outbound_contact_is_one_record_written_then_deleted() {
    let mut engine = sales_floor(Duration::ZERO);
    let field = format!("c:{DIALED}");
    let outcome = dial(&mut engine, DIALED, ANN, t(1)).unwrap();
    let written = engine.changed_records(&outcome.changed);
    let value = written
        .iter()
        .find(|(name, _)| *name == field)
        .and_then(|(_, value)| value.clone())
        .expect("the outbound contact is written");
    let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
    assert_eq!(json["outbound"]["agent"], ANN.to_string(), "{json}");

    // A broken outbound record is reported as one.
    let mut records = engine.records();
    for (name, value) in &mut records {
        if *name == field {
            *value = br#"{"outbound": {"agent": "nobody"}}"#.to_vec();
        }
    }
    let error = Engine::from_records(records).unwrap_err().to_string();
    assert!(error.contains(&field), "{error}");
    assert!(!error.contains("`contact`"), "{error}");

    // An outbound contact of an agent the state does not know is refused.
    let mut snapshot = serde_json::to_value(engine.snapshot()).unwrap();
    let stranger = AgentId::from_u128(9);
    snapshot["outbound"][DIALED.to_string()]["agent"] = stranger.to_string().into();
    let snapshot: Snapshot = serde_json::from_value(snapshot).unwrap();
    let error = Engine::restore(snapshot).unwrap_err().to_string();
    assert!(error.contains("unknown agent"), "{error}");

    let outcome = engine.end(DIALED, t(2)).unwrap();
    assert!(
        engine
            .changed_records(&outcome.changed)
            .contains(&(field, None))
    );
}

/// Connects a call rung to `agent` directly and answered at `at`.
fn answer_direct(
    engine: &mut Engine,
    contact: ContactId,
    agent: AgentId,
    at: DateTime<Utc>,
) -> Result<Outcome, AcdError> {
    engine.connect_direct(
        contact,
        agent,
        DirectOrigin::RungToAgent,
        Channel::Voice,
        at,
        Duration::ZERO,
        at,
    )
}

#[test]
fn an_agent_who_answers_a_direct_call_is_busy_until_it_ends() {
    let mut engine = sales_floor(Duration::from_secs(60));
    let outcome = answer_direct(&mut engine, DIALED, ANN, t(5)).unwrap();
    assert_eq!(
        outcome.agent_events,
        vec![AgentEvent {
            agent: ANN,
            from: AgentState::Available,
            to: AgentState::Busy,
            at: t(5),
            reason: TransitionReason::DirectAnswered,
        }]
    );
    assert!(outcome.contact_events.is_empty(), "{outcome:?}");
    assert_eq!(engine.contact(DIALED).unwrap().queue, None);
    // The sales queue's caller waits while Ann is on the direct call.
    assert!(call(&mut engine, t(6)).is_empty());
    let stats = engine.queue_stats(SALES, t(6)).unwrap();
    assert_eq!((stats.connected, stats.agents.busy), (0, 1));
    // No wrap-up of the queue's: the call came through no queue.
    let outcome = engine.end(DIALED, t(60)).unwrap();
    assert_eq!(offered_to(&outcome.offers), vec![(CALLER, ANN)]);
    engine.check_consistency().unwrap();
}

#[test]
fn a_direct_call_answered_while_an_offer_rings_sends_the_offer_back_to_its_queue() {
    let mut engine = sales_floor(Duration::ZERO);
    // Ann is offered the caller; Bob comes in; Ann's phone answers a
    // direct call while the offer rings.
    assert_eq!(offered_to(&call(&mut engine, t(1))), vec![(CALLER, ANN)]);
    engine.set_presence(BOB, Presence::Available, t(1)).unwrap();
    let outcome = answer_direct(&mut engine, DIALED, ANN, t(2)).unwrap();
    // The caller goes back to its place and on to Bob; Ann stays
    // available (no "missed"), busy with the direct call.
    assert_eq!(offered_to(&outcome.offers), vec![(CALLER, BOB)]);
    assert!(outcome.withdrawn.iter().any(|offer| offer.agent == ANN));
    assert!(
        outcome
            .contact_events
            .iter()
            .any(|event| event.contact == CALLER
                && event.kind == ContactEventKind::Requeued { agent: ANN })
    );
    let ann: Vec<_> = outcome
        .agent_events
        .iter()
        .filter(|event| event.agent == ANN)
        .map(|event| (event.to.clone(), event.reason))
        .collect();
    assert_eq!(
        ann,
        vec![
            (AgentState::Available, TransitionReason::OfferWithdrawn),
            (AgentState::Busy, TransitionReason::DirectAnswered),
        ]
    );
    engine.end(DIALED, t(30)).unwrap();
    assert_eq!(engine.agent_state(ANN).unwrap(), AgentState::Available);
    engine.check_consistency().unwrap();
}

#[test]
fn a_direct_call_answered_on_a_full_line_loads_the_agent_beyond_its_capacity() {
    // Ann is on a queued call (one voice line) and her phone answers a
    // second, direct call (call waiting): both count until each ends.
    let mut engine = sales_floor(Duration::ZERO);
    call(&mut engine, t(1));
    engine.accept(CALLER, ANN, t(2)).unwrap();
    answer_direct(&mut engine, DIALED, ANN, t(3)).unwrap();
    assert_eq!(engine.agent(ANN).unwrap().contacts, vec![CALLER, DIALED]);
    engine.check_consistency().unwrap();
    engine.end(CALLER, t(10)).unwrap();
    assert_eq!(engine.agent_state(ANN).unwrap(), AgentState::Busy);
    let other = ContactId::from_u128(201);
    let waiting = engine
        .enqueue(Contact::new(other, SALES, Channel::Voice, t(11)), t(11))
        .unwrap();
    assert!(waiting.offers.is_empty(), "still on the direct call");
    let outcome = engine.end(DIALED, t(20)).unwrap();
    assert_eq!(offered_to(&outcome.offers), vec![(other, ANN)]);
    engine.check_consistency().unwrap();
}

#[test]
fn a_direct_call_survives_the_records_and_replays_as_a_no_op() {
    let mut original = sales_floor(Duration::ZERO);
    answer_direct(&mut original, DIALED, ANN, t(1)).unwrap();
    let mut from_records = Engine::from_records(original.records()).unwrap();
    assert!(from_records == original);
    let again = answer_direct(&mut from_records, DIALED, ANN, t(2)).unwrap();
    assert!(again.is_empty(), "{again:?}");
    // Another agent cannot take it over.
    assert_eq!(
        answer_direct(&mut from_records, DIALED, BOB, t(2)),
        Err(AcdError::DuplicateContact(DIALED))
    );
}
