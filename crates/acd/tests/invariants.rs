//! Thousands of random operations over 50 agents and 5 queues, checking
//! the engine's invariants after every one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use switchboard_acd::{
    AcdError, AgentId, AgentProfile, AgentState, Capacity, Channel, Contact, ContactId,
    ContactState, DirectOrigin, Engine, Outcome, Presence, QueueConfig, QueueId, SkillId, Strategy,
};
use uuid::Uuid;

/// xorshift64*: a tiny deterministic generator, enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }
}

const AGENTS: u128 = 50;
const CLIENT: Uuid = Uuid::from_u128(0xc1);

fn skill(n: usize) -> SkillId {
    SkillId::from_u128(0x100 + n as u128)
}

fn queues() -> Vec<QueueConfig> {
    let strategies = [
        Strategy::LongestIdle,
        Strategy::LeastOccupied,
        Strategy::RoundRobin,
        Strategy::LongestIdle,
        Strategy::RoundRobin,
    ];
    let channels = [
        Channel::Voice,
        Channel::Voice,
        Channel::Chat,
        Channel::Email,
        Channel::Voice,
    ];
    (0..5)
        .map(|n| {
            let mut config = QueueConfig::new(QueueId::from_u128(n as u128 + 1), channels[n]);
            config.strategy = strategies[n];
            config.priority = [10, 50, 20, 0, 30][n];
            config.required_skills = vec![(skill(n % 3), 1 + (n as u8 % 4))];
            config.ring_timeout = Duration::from_secs(8 + n as u64 * 3);
            config.wrap_up = Duration::from_secs([0, 5, 0, 12, 3][n]);
            config.max_waiting = (n == 1).then_some(12);
            config.client = (n == 4).then_some(CLIENT);
            config
        })
        .collect()
}

fn profile(rng: &mut Rng, n: u128) -> AgentProfile {
    let mut profile = AgentProfile::new(AgentId::from_u128(n));
    for s in 0..3 {
        if rng.chance(70) {
            profile.skills.insert(skill(s), 1 + rng.below(10) as u8);
        }
    }
    profile.capacity = Capacity {
        voice: rng.below(2) as u8,
        chat: rng.below(4) as u8,
        sms: 0,
        email: rng.below(4) as u8,
    };
    profile.voice_blocks_others = rng.chance(70);
    if rng.chance(20) {
        profile.clients = Some(vec![CLIENT]);
    }
    profile
}

/// The test's own reading of the eligibility rules.
fn qualifies(profile: &AgentProfile, queue: &QueueConfig) -> bool {
    let skills = queue
        .required_skills
        .iter()
        .all(|(s, min)| profile.skills.get(s).copied().unwrap_or(0) >= *min);
    let client = match &profile.clients {
        None => true,
        Some(list) => queue.client.is_some_and(|c| list.contains(&c)),
    };
    skills && client && profile.capacity.get(queue.channel) > 0
}

struct World {
    engine: Engine,
    configs: BTreeMap<QueueId, QueueConfig>,
    /// Per agent, the state its events say it is in.
    chain: BTreeMap<AgentId, AgentState>,
    contacts: BTreeSet<ContactId>,
    /// Contacts rung to their agent and answered: they may load an agent
    /// beyond its capacity (the phone answered already).
    rung: BTreeSet<ContactId>,
    /// What a host persisting only `changed_records` would hold.
    store: BTreeMap<String, Vec<u8>>,
}

impl World {
    fn apply(&mut self, result: Result<Outcome, AcdError>, before: &Engine) -> Option<Outcome> {
        match result {
            Ok(outcome) => {
                for (field, value) in self.engine.changed_records(&outcome.changed) {
                    match value {
                        Some(value) => self.store.insert(field, value),
                        None => self.store.remove(&field),
                    };
                }
                for event in &outcome.agent_events {
                    let last = self
                        .chain
                        .get(&event.agent)
                        .expect("event for a known agent");
                    assert_eq!(&event.from, last, "event chain broken: {event:?}");
                    self.chain.insert(event.agent, event.to.clone());
                }
                Some(outcome)
            }
            Err(err) => {
                assert_eq!(&self.engine, before, "failed op changed the engine: {err}");
                None
            }
        }
    }

    fn check(&self) {
        let engine = &self.engine;
        engine.check_consistency().expect("indexes match the state");
        let persisted = Engine::from_records(&self.store).expect("persisted records load");
        assert!(
            &persisted == engine,
            "the records written after each operation diverged from the engine"
        );

        // Event chains end in the current state.
        for (agent, state) in &self.chain {
            assert_eq!(&engine.agent_state(*agent).unwrap(), state);
        }

        // No contact offered twice; offers agree with contacts.
        let offers = engine.offers();
        let offered: BTreeSet<_> = offers.iter().map(|o| o.contact).collect();
        assert_eq!(offered.len(), offers.len(), "a contact is offered twice");
        for offer in &offers {
            match engine.contact(offer.contact).unwrap().state {
                ContactState::Offered { agent, .. } => assert_eq!(agent, offer.agent),
                other => panic!("offer for a contact that is {other:?}"),
            }
        }

        // Every waiting contact in exactly one queue, and in its own.
        let mut seen = BTreeSet::new();
        let mut waiting_total = 0;
        for queue in self.configs.keys() {
            for (i, contact) in engine.waiting(*queue).unwrap().into_iter().enumerate() {
                assert!(seen.insert(contact), "{contact} waits twice");
                let view = engine.contact(contact).unwrap();
                assert_eq!(view.queue, Some(*queue));
                assert_eq!(view.state, ContactState::Queued { position: i + 1 });
                waiting_total += 1;
            }
        }

        // Outbound contacts: connected to an agent who lists them, and
        // counted in no queue.
        let mut outbound_total = 0;
        for contact in &self.contacts {
            let view = engine.contact(*contact).unwrap();
            if view.queue.is_some() {
                continue;
            }
            let ContactState::Connected { agent } = view.state else {
                panic!("outbound {contact} is {:?}", view.state);
            };
            assert!(engine.agent(agent).unwrap().contacts.contains(contact));
            outbound_total += 1;
        }
        let at = engine.next_deadline().unwrap_or_default();
        let queue_connected: u32 = self
            .configs
            .keys()
            .map(|queue| engine.queue_stats(*queue, at).unwrap().connected)
            .sum();

        // Capacity, and what an agent could take now.
        let mut connected_total = 0;
        let mut can_take: BTreeMap<AgentId, BTreeSet<Channel>> = BTreeMap::new();
        for agent in engine.agents() {
            let view = engine.agent(agent).unwrap();
            let mut load: BTreeMap<Channel, u8> = BTreeMap::new();
            // An agent's own outbound contact may join a call and another
            // channel (voice blocking governs only what is offered).
            let mut placed = false;
            // Contacts rung to the agent directly, beyond what it has room
            // for (the rest never exceed the capacity).
            let mut rung: BTreeMap<Channel, u8> = BTreeMap::new();
            for id in view.offers.iter().chain(&view.contacts) {
                let contact = engine.contact(*id).unwrap();
                placed |= contact.queue.is_none();
                *load.entry(contact.channel).or_default() += 1;
                if self.rung.contains(id) {
                    *rung.entry(contact.channel).or_default() += 1;
                }
            }
            connected_total += view.contacts.len();
            let total: u8 = load.values().sum();
            let voice = load.get(&Channel::Voice).copied().unwrap_or(0);
            for channel in Channel::ALL {
                let n = load.get(&channel).copied().unwrap_or(0);
                let beyond = rung.get(&channel).copied().unwrap_or(0);
                assert!(
                    n - beyond <= view.profile.capacity.get(channel),
                    "{agent} over capacity on {channel}"
                );
                if view.profile.voice_blocks_others && channel != Channel::Voice {
                    assert!(
                        voice == 0 || n == 0 || placed,
                        "{agent} was offered a call and {channel}"
                    );
                }
                let room = n < view.profile.capacity.get(channel)
                    && (!view.profile.voice_blocks_others
                        || if channel == Channel::Voice {
                            total == 0
                        } else {
                            voice == 0
                        });
                if view.presence == Presence::Available && view.wrap_up_until.is_none() && room {
                    can_take.entry(agent).or_default().insert(channel);
                }
            }
        }
        assert_eq!(
            waiting_total + offers.len() + connected_total,
            self.contacts.len(),
            "contacts lost or invented"
        );
        assert_eq!(
            queue_connected as usize + outbound_total,
            connected_total,
            "queues count outbound contacts, or miss connected ones"
        );

        // Eligibility and work conservation.
        for (queue, config) in &self.configs {
            let eligible = engine.eligible_agents(*queue).unwrap();
            let expected: Vec<AgentId> = engine
                .agents()
                .filter(|a| qualifies(&engine.agent(*a).unwrap().profile, config))
                .collect();
            assert_eq!(eligible, expected, "eligible agents of {queue}");
            if engine.waiting(*queue).unwrap().is_empty() {
                continue;
            }
            for agent in eligible {
                assert!(
                    !can_take
                        .get(&agent)
                        .is_some_and(|c| c.contains(&config.channel)),
                    "{agent} idles while {queue} has contacts waiting"
                );
            }
        }
    }
}

fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut now: DateTime<Utc> = "2025-01-06T09:00:00Z".parse().unwrap();
    let mut world = World {
        engine: Engine::new(),
        configs: BTreeMap::new(),
        chain: BTreeMap::new(),
        contacts: BTreeSet::new(),
        rung: BTreeSet::new(),
        store: BTreeMap::new(),
    };
    for config in queues() {
        world.configs.insert(config.id, config.clone());
        world.engine.upsert_queue(config, now).unwrap();
    }
    for n in 1..=AGENTS {
        let profile = profile(&mut rng, n);
        world.chain.insert(profile.id, AgentState::Offline);
        world.engine.upsert_agent_profile(profile, now).unwrap();
    }
    world.store = world.engine.records().into_iter().collect();
    let queue_ids: Vec<QueueId> = world.configs.keys().copied().collect();
    let agent_ids: Vec<AgentId> = world.engine.agents().collect();
    let mut next_contact = 1u128;
    let mut ops = BTreeMap::<&str, (u32, u32)>::new();

    for _ in 0..steps {
        now += TimeDelta::milliseconds(rng.below(2500) as i64);
        let before = world.engine.clone();
        let op = rng.below(100);
        let (name, result) = match op {
            0..=14 => {
                let agent = rng.pick(&agent_ids).unwrap();
                let presence = match rng.below(6) {
                    0..=2 => Presence::Available,
                    3 | 4 => Presence::not_ready(["lunch", "training"][rng.below(2)]),
                    _ => Presence::Offline,
                };
                (
                    "set_presence",
                    world.engine.set_presence(agent, presence, now),
                )
            }
            15..=31 => {
                let queue = rng.pick(&queue_ids).unwrap();
                let config = &world.configs[&queue];
                let id = ContactId::from_u128(next_contact);
                next_contact += 1;
                let mut contact = Contact::new(id, queue, config.channel, now);
                if rng.chance(10) {
                    // A callback keeping an earlier place.
                    contact.enqueued_at = now - TimeDelta::seconds(rng.below(60) as i64);
                }
                if rng.chance(15) {
                    contact.priority = Some(rng.below(101) as u8);
                }
                if rng.chance(3) {
                    contact.channel = Channel::Sms; // mismatch
                }
                let result = world.engine.enqueue(contact, now);
                if result.is_ok() {
                    world.contacts.insert(id);
                }
                ("enqueue", result)
            }
            32..=34 => {
                // Mostly a new outbound contact; sometimes one replayed
                // (by its agent: a no-op; by another: refused).
                let live: Vec<ContactId> = world.contacts.iter().copied().collect();
                let agent = rng.pick(&agent_ids).unwrap();
                let contact = match rng.pick(&live) {
                    Some(known) if rng.chance(15) => known,
                    _ => {
                        next_contact += 1;
                        ContactId::from_u128(next_contact - 1)
                    }
                };
                let agent = match world.engine.contact(contact) {
                    Ok(view) if view.queue.is_none() && rng.chance(50) => match view.state {
                        ContactState::Connected { agent } => agent,
                        _ => agent,
                    },
                    _ => agent,
                };
                let channel = [Channel::Voice, Channel::Chat, Channel::Email][rng.below(3)];
                let since = now - TimeDelta::seconds(rng.below(30) as i64);
                let wrap_up = Duration::from_secs([0, 0, 4, 9][rng.below(4)]);
                // Placed by the agent, or rung to it and answered (never
                // refused for a busy agent, whose offers go back).
                let origin = if rng.chance(30) {
                    DirectOrigin::RungToAgent
                } else {
                    DirectOrigin::PlacedByAgent
                };
                let result = world
                    .engine
                    .connect_direct(contact, agent, origin, channel, since, wrap_up, now);
                if result.is_ok() {
                    world.contacts.insert(contact);
                    if origin == DirectOrigin::RungToAgent
                        && world.engine.contact(contact).is_ok_and(|view| {
                            view.state == ContactState::Connected { agent }
                                && view.enqueued_at == since
                        })
                    {
                        world.rung.insert(contact);
                    }
                }
                ("connect_direct", result)
            }
            35..=59 => {
                let offers = world.engine.offers();
                match rng.pick(&offers) {
                    Some(offer) if rng.chance(90) => (
                        "accept",
                        world.engine.accept(offer.contact, offer.agent, now),
                    ),
                    Some(offer) => {
                        // The wrong agent: refused.
                        let agent = rng.pick(&agent_ids).unwrap();
                        ("accept", world.engine.accept(offer.contact, agent, now))
                    }
                    None => continue,
                }
            }
            60..=63 => match rng.pick(&world.engine.offers()) {
                Some(offer) => (
                    "decline",
                    world.engine.decline(offer.contact, offer.agent, now),
                ),
                None => continue,
            },
            64..=69 => {
                let live: Vec<ContactId> = world.contacts.iter().copied().collect();
                let Some(contact) = rng.pick(&live) else {
                    continue;
                };
                let result = world.engine.abandon(contact, now);
                if result.is_ok() {
                    world.contacts.remove(&contact);
                }
                ("abandon", result)
            }
            70..=84 => {
                // Mostly a connected contact; sometimes any (refused).
                let connected: Vec<ContactId> = if rng.chance(85) {
                    world
                        .contacts
                        .iter()
                        .copied()
                        .filter(|c| {
                            matches!(
                                world.engine.contact(*c).unwrap().state,
                                ContactState::Connected { .. }
                            )
                        })
                        .collect()
                } else {
                    world.contacts.iter().copied().collect()
                };
                let Some(contact) = rng.pick(&connected) else {
                    continue;
                };
                let result = world.engine.end(contact, now);
                if result.is_ok() {
                    world.contacts.remove(&contact);
                }
                ("end", result)
            }
            85..=91 => {
                now += TimeDelta::seconds(rng.below(10) as i64);
                if rng.chance(50) {
                    ("tick", world.engine.tick(now))
                } else {
                    ("expire_offers", world.engine.expire_offers(now))
                }
            }
            92..=95 => {
                // Mostly an agent in after-call work; sometimes any.
                let wrapping: Vec<AgentId> = if rng.chance(85) {
                    agent_ids
                        .iter()
                        .copied()
                        .filter(|a| {
                            matches!(
                                world.engine.agent_state(*a).unwrap(),
                                AgentState::AfterCallWork { .. }
                            )
                        })
                        .collect()
                } else {
                    agent_ids.clone()
                };
                let Some(agent) = rng.pick(&wrapping) else {
                    continue;
                };
                if rng.chance(50) {
                    let by = Duration::from_secs(rng.below(20) as u64);
                    (
                        "extend_wrap_up",
                        world.engine.extend_wrap_up(agent, by, now),
                    )
                } else {
                    ("end_wrap_up", world.engine.end_wrap_up(agent, now))
                }
            }
            96..=97 => {
                // New skills and client scope, same capacity (lowering it
                // would leave an agent over capacity by design).
                let agent = rng.pick(&agent_ids).unwrap();
                let current = world.engine.agent(agent).unwrap().profile;
                let mut profile = profile(&mut rng, agent.as_uuid().as_u128());
                profile.capacity = current.capacity;
                profile.voice_blocks_others = current.voice_blocks_others;
                (
                    "upsert_agent_profile",
                    world.engine.upsert_agent_profile(profile, now),
                )
            }
            _ => {
                // Hand over to a new owner through JSON, mid-flight.
                let json = serde_json::to_string(&world.engine).unwrap();
                let restored: Engine = serde_json::from_str(&json).unwrap();
                assert_eq!(restored, world.engine);
                world.engine = restored;
                continue;
            }
        };
        let ok = result.is_ok();
        let entry = ops.entry(name).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        if let Some(outcome) = world.apply(result, &before) {
            for offer in &outcome.offers {
                assert_eq!(offer.offered_at, now);
                assert!(offer.expires_at > now);
            }
        }
        world.check();
    }
    // The run must have exercised each operation, successes and refusals.
    for name in [
        "set_presence",
        "enqueue",
        "accept",
        "decline",
        "abandon",
        "end",
        "tick",
        "expire_offers",
        "extend_wrap_up",
        "end_wrap_up",
        "upsert_agent_profile",
        "connect_direct",
    ] {
        let (ok, _) = ops.get(name).copied().unwrap_or_default();
        assert!(ok > 10, "{name} succeeded only {ok} times: {ops:?}");
    }
    let refused: u32 = ops.values().map(|(_, err)| err).sum();
    assert!(refused > 50, "too few refusals: {ops:?}");
}

#[test]
fn random_operations_keep_the_invariants() {
    for seed in [0x9e37_79b9_7f4a_7c15, 42, 7_777_777] {
        run(seed, 4000);
    }
}
