//! Discrete-event simulation of one voice queue routed by the real
//! [`Engine`], checked against Erlang C from `switchboard_wfm`.
//!
//! Calls arrive as a Poisson process and hold an agent for an exponential
//! handle time with no wrap-up; nobody abandons, no offer rings out (the
//! simulated agent answers at the instant of the offer) and the queue has
//! no limit. That is the M/M/N queue Erlang C describes, so over a long
//! run the measured service level, ASA, share of calls that wait and
//! occupancy must agree with the formulas within sampling error.
//!
//! # Tolerance
//!
//! Successive waits are strongly correlated, so the sample variance of
//! single calls understates the error. We use batch means: the measured
//! calls are cut into [`BATCHES`] consecutive batches of equal size (and
//! the run's time into the matching windows, for occupancy); each batch
//! gives one estimate, and the standard error of the whole-run estimate
//! is sd(batch estimates) / √BATCHES. Batches span over a thousand handle
//! times, far longer than the queue's relaxation time, so they are close
//! to independent and the whole-run estimate is close to normal. A
//! correct engine then lies within 4 SE of theory except with probability
//! about 1e-3 per figure (Student t, 19 degrees of freedom) — and the run
//! is seeded, so the outcome is fixed anyway. Each figure also gets a small
//! floor for the millisecond grid the engine keeps time on (see
//! [`Check`]). The SE itself must be below a ceiling so a check cannot
//! pass merely because the run was too short to say anything, and the same
//! figures must *disagree* with Erlang C for one agent fewer, which shows
//! the checks can fail.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use switchboard_acd::{
    AgentId, AgentProfile, AgentState, Channel, Contact, ContactId, Engine, Offer, Presence,
    QueueConfig, QueueId, SkillId,
};
use switchboard_wfm::{Traffic, average_speed_of_answer, erlang_c, occupancy, service_level};

/// Batches for the batch-means standard errors.
const BATCHES: usize = 20;

/// "Answered within" for the service level.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

const QUEUE: QueueId = QueueId::from_u128(1);
const SKILL: SkillId = SkillId::from_u128(0x5);

/// splitmix64: a tiny deterministic generator with good statistical
/// quality, enough to drive a simulation.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1): the top 53 bits, centred in
    /// their cell, so never 0 (whose logarithm is −∞) nor 1.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Exponential with mean `mean`, in whole milliseconds (by inverse
    /// transform, rounded to the nearest millisecond: the engine keeps
    /// time in milliseconds).
    fn exponential_ms(&mut self, mean: Duration) -> u64 {
        let ms = -mean.as_secs_f64() * 1000.0 * self.uniform().ln();
        ms.round() as u64
    }
}

/// One M/M/N queue to simulate.
struct Scenario {
    name: &'static str,
    agents: u32,
    /// Mean time between arrivals (1/λ).
    interarrival: Duration,
    /// Mean handle time; wrap-up is zero, so it is all talk time.
    aht: Duration,
    /// Calls simulated and discarded first, so the run starts near the
    /// steady state rather than with an empty queue.
    warm_up: usize,
    /// Calls measured after the warm-up; a multiple of [`BATCHES`].
    calls: usize,
    seed: u64,
}

impl Scenario {
    fn traffic(&self) -> Traffic {
        Traffic::from_rate(1.0, self.interarrival, self.aht).expect("valid traffic")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Call `n` arrives. The arrival numbered `warm_up + calls` is not a
    /// call: it closes the measurement window, and no arrival follows.
    Arrival(usize),
    /// Call `n`'s conversation ends.
    Completion(usize),
}

/// What a run measured.
struct Measured {
    /// Per measured call, in arrival order: the wait in ms from arrival
    /// to offer (= answer, since agents accept at once).
    waits_ms: Vec<u64>,
    /// Per batch: agent-milliseconds spent connected to a call within the
    /// batch's time window, and the window's length in ms.
    busy_ms: Vec<u64>,
    window_ms: Vec<u64>,
}

/// Simulated time zero, 2025-01-06T09:00:00Z, in ms since the Unix epoch.
const EPOCH_MS: i64 = 1_736_154_000_000;

fn epoch() -> DateTime<Utc> {
    at(0)
}

/// The engine's clock `ms` simulated milliseconds after [`EPOCH_MS`].
fn at(ms: u64) -> DateTime<Utc> {
    let ms = i64::try_from(ms).expect("time fits");
    DateTime::from_timestamp_millis(EPOCH_MS + ms).expect("time in range")
}

fn agent(k: u32) -> AgentId {
    AgentId::from_u128(1000 + u128::from(k))
}

fn call_index(offer: &Offer) -> usize {
    usize::try_from(offer.contact.as_uuid().as_u128()).expect("contact ids are call indexes")
}

/// Runs `scenario` through a fresh engine and returns the measurements,
/// after checking that the engine ends empty: every call ended, nobody
/// waiting, every agent available.
fn simulate(scenario: &Scenario) -> Measured {
    assert!(
        scenario.calls.is_multiple_of(BATCHES),
        "calls must split into batches"
    );
    let mut rng = Rng(scenario.seed);
    let mut engine = Engine::new();
    let mut queue = QueueConfig::new(QUEUE, Channel::Voice);
    queue.required_skills = vec![(SKILL, 1)];
    // Offers are answered at once; the longest ring timeout makes sure
    // none could ever ring out.
    queue.ring_timeout = switchboard_acd::MAX_DURATION;
    queue.wrap_up = Duration::ZERO;
    queue.max_waiting = None;
    engine.upsert_queue(queue, epoch()).expect("queue");
    for k in 0..scenario.agents {
        engine
            .upsert_agent_profile(AgentProfile::new(agent(k)).with_skill(SKILL, 5), epoch())
            .expect("agent");
        engine
            .set_presence(agent(k), Presence::Available, epoch())
            .expect("available");
    }

    let end = scenario.warm_up + scenario.calls;
    let per_batch = scenario.calls / BATCHES;
    let mut arrived_ms = vec![0u64; end];
    let mut waits_ms = vec![u64::MAX; scenario.calls];
    let mut busy_ms = vec![0u64; BATCHES];
    let mut window_ms = vec![0u64; BATCHES];
    let mut window_start = 0u64;
    let mut batch: Option<usize> = None;
    let mut busy: u64 = 0;
    let mut last_ms = 0u64;

    // (time in ms, sequence number, event): ties resolve in scheduling order.
    let mut calendar = BinaryHeap::new();
    let mut seq = 0u64;
    let mut schedule = |calendar: &mut BinaryHeap<_>, time: u64, event: Event| {
        calendar.push(Reverse((time, seq, event)));
        seq += 1;
    };
    schedule(
        &mut calendar,
        rng.exponential_ms(scenario.interarrival),
        Event::Arrival(0),
    );

    while let Some(Reverse((now, _, event))) = calendar.pop() {
        // The busy count was constant since the last event, and batches
        // change only at arrivals, so the interval belongs to `batch`.
        if let Some(b) = batch {
            busy_ms[b] += busy * (now - last_ms);
        }
        last_ms = now;

        let offers = match event {
            Event::Arrival(n) if n == end => {
                let b = batch.take().expect("measuring at the end");
                window_ms[b] = now - window_start;
                continue;
            }
            Event::Arrival(n) => {
                if n >= scenario.warm_up && (n - scenario.warm_up).is_multiple_of(per_batch) {
                    if let Some(b) = batch {
                        window_ms[b] = now - window_start;
                    }
                    batch = Some((n - scenario.warm_up) / per_batch);
                    window_start = now;
                }
                arrived_ms[n] = now;
                let next = now + rng.exponential_ms(scenario.interarrival);
                schedule(&mut calendar, next, Event::Arrival(n + 1));
                let contact = Contact::new(
                    ContactId::from_u128(n as u128),
                    QUEUE,
                    Channel::Voice,
                    at(now),
                );
                engine.enqueue(contact, at(now)).expect("enqueue").offers
            }
            Event::Completion(n) => {
                busy -= 1;
                engine
                    .end(ContactId::from_u128(n as u128), at(now))
                    .expect("end")
                    .offers
            }
        };

        // Every offer is answered at the same instant; an accept may in
        // principle lead to further offers, so work through a stack.
        let mut pending = offers;
        while let Some(offer) = pending.pop() {
            assert_eq!(offer.offered_at, at(now), "offers are made when asked");
            let n = call_index(&offer);
            let wait = (offer.offered_at - at(arrived_ms[n])).num_milliseconds();
            let wait = u64::try_from(wait).expect("offered after arrival");
            if n >= scenario.warm_up {
                waits_ms[n - scenario.warm_up] = wait;
            }
            let outcome = engine
                .accept(offer.contact, offer.agent, at(now))
                .expect("accept");
            busy += 1;
            let done = now + rng.exponential_ms(scenario.aht);
            schedule(&mut calendar, done, Event::Completion(n));
            pending.extend(outcome.offers);
        }
    }

    // The calendar ran dry: every call arrived, was answered and ended.
    assert_eq!(busy, 0);
    assert!(
        waits_ms.iter().all(|&w| w != u64::MAX),
        "every call answered"
    );
    assert!(engine.offers().is_empty(), "no offer left");
    assert!(engine.waiting(QUEUE).expect("queue").is_empty());
    for k in 0..scenario.agents {
        let view = engine.agent(agent(k)).expect("agent");
        assert_eq!(view.state, AgentState::Available, "agent {k}");
        assert!(view.contacts.is_empty() && view.offers.is_empty());
    }
    assert_eq!(engine.next_deadline(), None);
    engine.check_consistency().expect("consistent engine");

    Measured {
        waits_ms,
        busy_ms,
        window_ms,
    }
}

/// A whole-run estimate with its batch-means standard error.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    value: f64,
    se: f64,
}

/// Standard error of the mean of `batches` (each an estimate of the same
/// quantity from one batch): sample standard deviation / √count.
fn batch_se(batches: &[f64]) -> f64 {
    let k = batches.len() as f64;
    let mean = batches.iter().sum::<f64>() / k;
    let ss: f64 = batches.iter().map(|x| (x - mean).powi(2)).sum();
    (ss / (k - 1.0) / k).sqrt()
}

/// The mean of `f` over the calls, with batch-means SE (batches of equal
/// size, so the whole-run mean is the mean of the batch means).
fn per_call(waits_ms: &[u64], f: impl Fn(u64) -> f64) -> Estimate {
    let per_batch = waits_ms.len() / BATCHES;
    let means: Vec<f64> = waits_ms
        .chunks(per_batch)
        .map(|chunk| chunk.iter().map(|&w| f(w)).sum::<f64>() / chunk.len() as f64)
        .collect();
    Estimate {
        value: means.iter().sum::<f64>() / means.len() as f64,
        se: batch_se(&means),
    }
}

/// The figures Erlang C predicts and the run measured.
struct Figures {
    service_level: Estimate,
    asa_secs: Estimate,
    waited: Estimate,
    occupancy: Estimate,
}

fn measure(scenario: &Scenario, measured: &Measured) -> Figures {
    let within_ms = u64::try_from(ANSWER_WITHIN.as_millis()).expect("small");
    let n = f64::from(scenario.agents);
    let batch_occupancy: Vec<f64> = measured
        .busy_ms
        .iter()
        .zip(&measured.window_ms)
        .map(|(&busy, &window)| busy as f64 / (n * window as f64))
        .collect();
    let total_busy: u64 = measured.busy_ms.iter().sum();
    let total_window: u64 = measured.window_ms.iter().sum();
    Figures {
        service_level: per_call(&measured.waits_ms, |w| f64::from(u8::from(w <= within_ms))),
        asa_secs: per_call(&measured.waits_ms, |w| w as f64 / 1000.0),
        waited: per_call(&measured.waits_ms, |w| f64::from(u8::from(w > 0))),
        occupancy: Estimate {
            value: total_busy as f64 / (n * total_window as f64),
            se: batch_se(&batch_occupancy),
        },
    }
}

/// One figure compared with theory.
struct Check {
    name: &'static str,
    measured: Estimate,
    /// Allowance for the millisecond grid: times are rounded to 1 ms,
    /// which moves a handle time or gap of minutes by under 1e-5
    /// relative, and a wait lands exactly on the 20 s mark or on 0 ms
    /// with probability of order λ·1 ms. Far below the sampling error.
    floor: f64,
    /// The largest SE for which the check says something.
    max_se: f64,
}

impl Check {
    fn tolerance(&self) -> f64 {
        4.0 * self.measured.se + self.floor
    }
}

fn checks(figures: &Figures, asa_theory_secs: f64) -> [Check; 4] {
    [
        Check {
            name: "service level (20 s)",
            measured: figures.service_level,
            floor: 1e-4,
            max_se: 0.01,
        },
        Check {
            name: "ASA (s)",
            measured: figures.asa_secs,
            floor: 1e-3,
            // 5% of the predicted ASA.
            max_se: 0.05 * asa_theory_secs,
        },
        Check {
            name: "P(wait > 0)",
            measured: figures.waited,
            floor: 1e-4,
            max_se: 0.01,
        },
        Check {
            name: "occupancy",
            measured: figures.occupancy,
            floor: 1e-4,
            max_se: 0.005,
        },
    ]
}

/// Erlang C's service level, ASA (s), P(wait) and occupancy for `agents`.
fn theory(traffic: Traffic, agents: u32, aht: Duration) -> [f64; 4] {
    [
        service_level(traffic, agents, aht, ANSWER_WITHIN),
        average_speed_of_answer(traffic, agents, aht)
            .expect("stable queue")
            .as_secs_f64(),
        erlang_c(traffic, agents),
        occupancy(traffic, agents),
    ]
}

/// Simulates `scenario`, prints measured against Erlang C, and asserts
/// agreement with N agents and disagreement with N − 1.
fn run(scenario: &Scenario) {
    let started = Instant::now();
    let measured = simulate(scenario);
    let figures = measure(scenario, &measured);
    let traffic = scenario.traffic();
    let expected = theory(traffic, scenario.agents, scenario.aht);
    let one_fewer = theory(traffic, scenario.agents - 1, scenario.aht);
    let checks = checks(&figures, expected[1]);

    eprintln!(
        "{}: A = {:.2} Erlangs, N = {}, AHT = {} s, {} calls after {} warm-up ({:.1?})",
        scenario.name,
        traffic.erlangs(),
        scenario.agents,
        scenario.aht.as_secs(),
        scenario.calls,
        scenario.warm_up,
        started.elapsed(),
    );
    eprintln!(
        "  {:<22} {:>9} {:>8} {:>9} {:>9} {:>9}",
        "figure", "measured", "SE", "Erlang C", "|diff|/SE", "N-1"
    );
    for (check, (&theory, &fewer)) in checks.iter().zip(expected.iter().zip(&one_fewer)) {
        let m = check.measured;
        eprintln!(
            "  {:<22} {:>9.4} {:>8.4} {:>9.4} {:>9.2} {:>9.4}",
            check.name,
            m.value,
            m.se,
            theory,
            (m.value - theory).abs() / m.se,
            fewer,
        );
    }

    for (check, (&theory, &fewer)) in checks.iter().zip(expected.iter().zip(&one_fewer)) {
        let m = check.measured;
        assert!(
            m.se < check.max_se,
            "{}: {}: SE {} is not below {}: the run is too short to test anything",
            scenario.name,
            check.name,
            m.se,
            check.max_se,
        );
        assert!(
            (m.value - theory).abs() < check.tolerance(),
            "{}: {}: measured {} ± {} (SE), Erlang C says {}",
            scenario.name,
            check.name,
            m.value,
            m.se,
            theory,
        );
        assert!(
            (m.value - fewer).abs() > check.tolerance(),
            "{}: {}: measured {} also agrees with Erlang C for {} agents ({}): \
             the check cannot tell them apart",
            scenario.name,
            check.name,
            m.value,
            scenario.agents - 1,
            fewer,
        );
    }
}

#[test]
fn measured_service_level_asa_and_occupancy_match_erlang_c_under_heavy_load() {
    // λ = 1 call / 22.5 s, AHT 180 s: A = 8 Erlangs on 10 agents,
    // occupancy 0.8, C ≈ 0.41, SL(20 s) ≈ 0.67, ASA ≈ 37 s.
    run(&Scenario {
        name: "heavy load",
        agents: 10,
        interarrival: Duration::from_millis(22_500),
        aht: Duration::from_secs(180),
        warm_up: 5_000,
        calls: 200_000,
        seed: 0x5717_c4b0_a4d0_0001,
    });
}

#[test]
fn measured_service_level_asa_and_occupancy_match_erlang_c_under_light_load() {
    // λ = 1 call / 90 s, AHT 180 s: A = 2 Erlangs on 4 agents,
    // occupancy 0.5, C ≈ 0.17, SL(20 s) ≈ 0.86, ASA ≈ 16 s.
    run(&Scenario {
        name: "light load",
        agents: 4,
        interarrival: Duration::from_secs(90),
        aht: Duration::from_secs(180),
        warm_up: 2_000,
        calls: 80_000,
        seed: 0x5717_c4b0_a4d0_0002,
    });
}
