//! The tenant of the benchmark: 2,000 agents (4–6 skills each, proficiency
//! 1–10), 100 voice queues (1–2 required skills with a minimum proficiency),
//! 20 skills, every agent available; a fixed seed. The same shape as the
//! criterion bench `crates/acd/benches/routing.rs` (copied, not shared:
//! bench code is not a library).

use std::time::Duration;

use chrono::Utc;
use switchboard_acd::{
    AcdError, AgentId, AgentProfile, Channel, Contact, ContactId, Engine, Outcome, Presence,
    QueueConfig, QueueId, SkillId,
};

pub const AGENTS: u128 = 2_000;
pub const QUEUES: u128 = 100;
pub const SKILLS: u64 = 20;

/// xorshift64*: a tiny deterministic generator.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn skill(n: u64) -> SkillId {
    SkillId::from_u128(0x100 + u128::from(n))
}

/// The tenant's configuration, and the queues that have at least one
/// qualified agent (contacts go only there).
pub struct Scenario {
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentProfile>,
    pub staffed: Vec<QueueId>,
}

impl Scenario {
    pub fn new() -> Self {
        let mut rng = Rng(0x5eed_acd0_2000_0100);
        let mut queues = Vec::new();
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
            queues.push(config);
        }
        let mut agents = Vec::new();
        for a in 0..AGENTS {
            let mut profile = AgentProfile::new(AgentId::from_u128(0x10_0000 + a));
            for _ in 0..4 + rng.below(3) {
                profile = profile.with_skill(skill(rng.below(SKILLS)), 1 + rng.below(10) as u8);
            }
            agents.push(profile);
        }
        let staffed: Vec<QueueId> = queues
            .iter()
            .filter(|config| agents.iter().any(|p| p.qualifies_for(config)))
            .map(|config| config.id)
            .collect();
        assert!(
            staffed.len() > QUEUES as usize / 2,
            "too few staffed queues"
        );
        Scenario {
            queues,
            agents,
            staffed,
        }
    }

    /// Every operation that sets the tenant up (queues, agents, every
    /// agent available), in order, each to run through a host.
    pub fn setup_operations(&self) -> Vec<Operation> {
        let mut operations: Vec<Operation> = Vec::new();
        for config in &self.queues {
            let config = config.clone();
            operations.push(Box::new(move |e: &mut Engine| {
                e.upsert_queue(config, Utc::now())
            }));
        }
        for profile in &self.agents {
            let profile = profile.clone();
            operations.push(Box::new(move |e: &mut Engine| {
                e.upsert_agent_profile(profile, Utc::now())
            }));
        }
        for profile in &self.agents {
            let id = profile.id;
            operations.push(Box::new(move |e: &mut Engine| {
                e.set_presence(id, Presence::Available, Utc::now())
            }));
        }
        operations
    }

    /// The tenant in memory, set up.
    pub fn engine(&self) -> Engine {
        let mut engine = Engine::new();
        for operation in self.setup_operations() {
            operation(&mut engine).expect("the scenario sets up");
        }
        engine
    }

    /// A random staffed queue.
    pub fn queue(&self, rng: &mut Rng) -> QueueId {
        self.staffed[rng.below(self.staffed.len() as u64) as usize]
    }
}

/// One engine operation, as a host runs it.
pub type Operation = Box<dyn FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send>;

/// The contact arrives in `queue` now (the time is read inside the
/// operation, so it never goes back under concurrency).
pub fn enqueue(
    id: ContactId,
    queue: QueueId,
) -> impl FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send + 'static {
    move |e: &mut Engine| {
        let at = Utc::now();
        e.enqueue(Contact::new(id, queue, Channel::Voice, at), at)
    }
}

pub fn accept(
    contact: ContactId,
    agent: AgentId,
) -> impl FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send + 'static {
    move |e: &mut Engine| e.accept(contact, agent, Utc::now())
}

pub fn end(
    contact: ContactId,
) -> impl FnOnce(&mut Engine) -> Result<Outcome, AcdError> + Send + 'static {
    move |e: &mut Engine| e.end(contact, Utc::now())
}
