//! Queueing math for workforce management: how callers fare with a given
//! number of agents, and how many agents a forecast needs.
//!
//! The routing service's simulation tests compare the service level, ASA
//! and occupancy they measure against these formulas; analytics uses them
//! for staffing.
//!
//! # Model and definitions
//!
//! A queue is modelled as M/M/c (Erlang C): calls arrive as a Poisson
//! process at rate λ, handle times are exponential with mean AHT (talk +
//! hold + wrap-up), N identical agents serve one first-come-first-served
//! queue, and nobody abandons. Notation and formulas are the standard ones
//! (Kleinrock, *Queueing Systems* vol. 1, the M/M/m queue; Gans, Koole and
//! Mandelbaum, "Telephone call centers: tutorial, review, and research
//! prospects", 2003):
//!
//! - offered load A = λ·AHT in Erlangs ([`Traffic`]);
//! - Erlang B, the blocking probability of the loss system M/M/c/c, by the
//!   stable recursion B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1))
//!   ([`erlang_b`]);
//! - Erlang C, the probability that a call waits, from Erlang B:
//!   C = N·B / (N − A·(1 − B)) for N > A, and 1 for N ≤ A, where the queue
//!   is unstable ([`erlang_c`]);
//! - service level, the share of calls answered within t:
//!   SL(t) = 1 − C·e^(−(N − A)·t / AHT) ([`service_level`]);
//! - average speed of answer over all calls: ASA = C·AHT / (N − A)
//!   ([`average_speed_of_answer`]);
//! - occupancy A / N, capped at 1 ([`occupancy`]);
//! - mean queue length Lq = C·A / (N − A) ([`average_queue_length`]);
//! - staffing: the smallest N meeting an SL or ASA target, optionally with
//!   a maximum occupancy ([`agents_for_service_level`],
//!   [`agents_for_asa`]), and the headcount ⌈N / (1 − shrinkage)⌉ to
//!   schedule for it ([`scheduled_headcount`], [`Staffing::plan`]).
//!
//! Erlang C ignores abandonment and retrials, so for real queues it errs
//! on the side of more agents. With no traffic nobody waits (C = 0, SL = 1,
//! ASA = 0, whatever N); an unstable queue has C = 1, SL = 0 and no ASA.
//!
//! # Numerics
//!
//! No factorials or powers are formed: the recursion's terms are all
//! positive and bounded by A, so it neither overflows nor cancels. The
//! tests check it against exact rational arithmetic (N ≤ 12), direct
//! log-space summation (A up to 5,000, N up to 10,000) and exact
//! big-integer references (N up to 10,000): it agrees with the exact
//! values to within 4e-15 relative. Each evaluation costs one step per agent;
//! staffing searches carry the recursion up from zero and test each N once,
//! so they cost one evaluation at the answer. Loads are limited to
//! [`Traffic::MAX_ERLANGS`] to keep every call within milliseconds. Nothing
//! returns NaN or panics; invalid arguments are a [`WfmError`] naming them.
//!
//! # Why our own code
//!
//! The formula set is small and exact, and we want to own its conventions
//! (edge cases, rounding of headcounts, validation). No well-kept crate
//! covers contact-center staffing. We looked at: `erlang_e1` (a release
//! candidate) computes Erlang B for E1 trunk dimensioning only;
//! `poolsim-core` has an Erlang C module inside a connection-pool sizing
//! tool (rates λ/μ, saturation as an error, no staffing or shrinkage);
//! `opencct`, a call-center toolkit, is marked under development with an
//! undocumented API; the `queueing-theory` repository models general
//! queues on top of nalgebra, far more than we need. `statrs` has
//! distributions, not queueing formulas.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use switchboard_wfm::{ServiceLevelTarget, Staffing};
//!
//! // 100 calls per half hour, 3 minutes each, 80% answered within 20 s,
//! // 30% shrinkage.
//! let target = ServiceLevelTarget::new(0.8, Duration::from_secs(20))?;
//! let plan = Staffing::plan(
//!     100.0,
//!     Duration::from_secs(1800),
//!     Duration::from_secs(180),
//!     target,
//!     0.3,
//!     None,
//! )?;
//! assert_eq!(plan.traffic.erlangs(), 10.0);
//! assert_eq!((plan.raw_agents, plan.scheduled_agents), (14, 20));
//! assert!((plan.service_level - 0.888).abs() < 0.001);
//! # Ok::<(), switchboard_wfm::WfmError>(())
//! ```

mod erlang;
mod error;
mod kpi;
mod staffing;
mod traffic;

pub use erlang::{erlang_b, erlang_c, is_stable};
pub use error::WfmError;
pub use kpi::{average_queue_length, average_speed_of_answer, occupancy, service_level};
pub use staffing::{
    ServiceLevelTarget, Staffing, agents_for_asa, agents_for_occupancy, agents_for_service_level,
    scheduled_headcount,
};
pub use traffic::Traffic;
