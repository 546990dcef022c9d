//! Routing hot path of one large tenant: 2,000 agents, 100 queues, 20
//! skills, every agent available. Throughput is reported in contacts/s
//! ("elem/s").
//!
//! ```text
//! cargo bench -p switchboard-acd --bench routing -- --warm-up-time 1 --measurement-time 3
//! cargo bench -p switchboard-acd --bench routing -- --quick
//! ```
//!
//! - `cycle`: one contact through enqueue → offer → accept → end, on a
//!   random queue; the agent is available again afterwards, so this is
//!   the steady-state cost per contact.
//! - `enqueue_offer`: enqueue → offer alone, in batches of
//!   [`BATCH`] contacts; the contacts are accepted and ended (freeing
//!   their agents) outside the timed part.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_acd::{
    AgentId, AgentProfile, Channel, Contact, ContactId, Engine, Outcome, Presence, QueueConfig,
    QueueId, SkillId,
};

const AGENTS: u128 = 2_000;
const QUEUES: u128 = 100;
const SKILLS: u64 = 20;
/// Contacts enqueued per timed batch in `enqueue_offer`.
const BATCH: u64 = 64;

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn skill(n: u64) -> SkillId {
    SkillId::from_u128(0x100 + u128::from(n))
}

/// The tenant, with every agent available, and the queues that have at
/// least one qualified agent (contacts go only there).
struct Tenant {
    engine: Engine,
    queues: Vec<QueueId>,
    rng: Rng,
    clock: DateTime<Utc>,
    next_contact: u128,
}

impl Tenant {
    fn new() -> Self {
        let mut rng = Rng(0x5eed_acd0_2000_0100);
        let mut clock: DateTime<Utc> = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut engine = Engine::new();
        let mut configs = Vec::new();
        for q in 0..QUEUES {
            let mut config = QueueConfig::new(QueueId::from_u128(0x1000 + q), Channel::Voice);
            config.ring_timeout = Duration::from_secs(30);
            let first = rng.below(SKILLS);
            config
                .required_skills
                .push((skill(first), 1 + rng.below(5) as u8));
            if rng.below(2) == 0 {
                let second = (first + 1 + rng.below(SKILLS - 1)) % SKILLS;
                config
                    .required_skills
                    .push((skill(second), 1 + rng.below(3) as u8));
            }
            engine.upsert_queue(config.clone(), clock).expect("queue");
            configs.push(config);
        }
        let mut profiles = Vec::new();
        for a in 0..AGENTS {
            let mut profile = AgentProfile::new(AgentId::from_u128(0x10_0000 + a));
            for _ in 0..4 + rng.below(3) {
                profile = profile.with_skill(skill(rng.below(SKILLS)), 1 + rng.below(10) as u8);
            }
            engine
                .upsert_agent_profile(profile.clone(), clock)
                .expect("agent");
            profiles.push(profile);
        }
        for profile in &profiles {
            clock += TimeDelta::milliseconds(1);
            engine
                .set_presence(profile.id, Presence::Available, clock)
                .expect("available");
        }
        let queues: Vec<QueueId> = configs
            .iter()
            .filter(|config| profiles.iter().any(|p| p.qualifies_for(config)))
            .map(|config| config.id)
            .collect();
        assert!(queues.len() > QUEUES as usize / 2, "too few staffed queues");
        Tenant {
            engine,
            queues,
            rng,
            clock,
            next_contact: 0,
        }
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += TimeDelta::milliseconds(1);
        self.clock
    }

    fn contact(&mut self) -> Contact {
        let queue = self.queues[self.rng.below(self.queues.len() as u64) as usize];
        self.next_contact += 1;
        let at = self.tick();
        Contact::new(
            ContactId::from_u128(self.next_contact),
            queue,
            Channel::Voice,
            at,
        )
    }

    /// Accepts and ends every offer in `outcome`, and those that ending
    /// them makes, until no offer is pending.
    fn settle(&mut self, outcome: Outcome) {
        let mut pending = outcome.offers;
        while let Some(offer) = pending.pop() {
            let at = self.tick();
            let accepted = self
                .engine
                .accept(offer.contact, offer.agent, at)
                .expect("accept");
            pending.extend(accepted.offers);
            let at = self.tick();
            let ended = self.engine.end(offer.contact, at).expect("end");
            pending.extend(ended.offers);
        }
    }
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(1));

    let mut tenant = Tenant::new();
    group.bench_function("cycle", |b| {
        b.iter(|| {
            let contact = tenant.contact();
            let id = contact.id;
            let at = contact.enqueued_at;
            let queued = tenant.engine.enqueue(contact, at).expect("enqueue");
            let offer = &queued.offers[0];
            let at = tenant.tick();
            let accepted = tenant.engine.accept(id, offer.agent, at).expect("accept");
            let at = tenant.tick();
            let ended = tenant.engine.end(id, at).expect("end");
            black_box((accepted, ended));
        });
    });
    tenant.engine.check_consistency().expect("consistent");

    let mut tenant = Tenant::new();
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("enqueue_offer", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut outcomes = Vec::with_capacity(BATCH as usize);
            for _ in 0..iters {
                let contacts: Vec<Contact> = (0..BATCH).map(|_| tenant.contact()).collect();
                let start = Instant::now();
                for contact in contacts {
                    let at = contact.enqueued_at;
                    outcomes.push(tenant.engine.enqueue(contact, at).expect("enqueue"));
                }
                timed += start.elapsed();
                for outcome in outcomes.drain(..) {
                    tenant.settle(outcome);
                }
            }
            timed
        });
    });
    tenant.engine.check_consistency().expect("consistent");
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
