//! Readiness: a background task asks every backend at a fixed interval and
//! publishes the result, which `/readyz`, gRPC health and the request gates
//! read. A backend that goes away makes the node unready; it becomes ready
//! again by itself once the backend answers.

use std::sync::Arc;

use switchboard_config::ReadinessConfig;
use switchboard_platform::{BackendStatus, Backends};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The node's readiness at the last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessState {
    pub backends: Vec<BackendStatus>,
    /// Set once shutdown starts: a draining node takes no new work.
    pub shutting_down: bool,
}

impl ReadinessState {
    pub fn is_ready(&self) -> bool {
        !self.shutting_down && self.backends.iter().all(BackendStatus::is_ready)
    }

    /// One line naming what is not ready, for 503 bodies and logs.
    pub fn reason(&self) -> String {
        if self.shutting_down {
            return "the node is shutting down".into();
        }
        let failing: Vec<String> =
            self.backends
                .iter()
                .filter_map(|status| {
                    status.error.as_ref().map(|error| {
                        format!("{} ({}): {error}", status.backend, status.implementation)
                    })
                })
                .collect();
        if failing.is_empty() {
            "ready".into()
        } else {
            failing.join("; ")
        }
    }
}

/// A read handle on the node's readiness; cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    state: watch::Receiver<ReadinessState>,
}

impl Readiness {
    pub fn current(&self) -> ReadinessState {
        self.state.borrow().clone()
    }

    pub fn is_ready(&self) -> bool {
        self.state.borrow().is_ready()
    }
}

/// The writing side, owned by the node.
pub(crate) struct ReadinessProbe {
    sender: Arc<watch::Sender<ReadinessState>>,
    backends: Backends,
    config: ReadinessConfig,
    health: HealthReporter,
    grpc_services: Vec<&'static str>,
}

impl ReadinessProbe {
    /// Checks once now, so the node starts with a true state.
    pub(crate) async fn new(
        backends: Backends,
        config: ReadinessConfig,
        health: HealthReporter,
        grpc_services: Vec<&'static str>,
    ) -> (Self, Readiness) {
        let backends_status = backends.check(config.check_timeout).await;
        let state = ReadinessState {
            backends: backends_status,
            shutting_down: false,
        };
        let (sender, receiver) = watch::channel(state.clone());
        let probe = Self {
            sender: Arc::new(sender),
            backends,
            config,
            health,
            grpc_services,
        };
        probe.publish(state, None).await;
        (probe, Readiness { state: receiver })
    }

    /// Checks at every interval until `stop` is cancelled.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut interval = tokio::time::interval(self.config.check_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = interval.tick() => {}
            }
            let backends = self.backends.check(self.config.check_timeout).await;
            let previous = self.sender.borrow().clone();
            let next = ReadinessState {
                backends,
                shutting_down: previous.shutting_down,
            };
            self.publish(next, Some(&previous)).await;
        }
    }

    pub(crate) fn handle(&self) -> ShutdownSignal {
        ShutdownSignal {
            sender: self.sender.clone(),
        }
    }

    async fn publish(&self, next: ReadinessState, previous: Option<&ReadinessState>) {
        for status in &next.backends {
            let was = previous.and_then(|previous| {
                previous
                    .backends
                    .iter()
                    .find(|old| old.backend == status.backend)
            });
            let was_ready = was.is_none_or(BackendStatus::is_ready);
            match (&status.error, was_ready) {
                (Some(error), true) => {
                    tracing::warn!(backend = %status.backend, implementation = status.implementation, error = %error, "backend unavailable")
                }
                (None, false) if was.is_some() => {
                    tracing::info!(backend = %status.backend, implementation = status.implementation, "backend available again")
                }
                _ => {}
            }
            metrics::gauge!("switchboard_backend_up", "backend" => status.backend.as_str(), "implementation" => status.implementation)
                .set(if status.is_ready() { 1.0 } else { 0.0 });
        }
        let serving = if next.is_ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.health.set_service_status("", serving).await;
        for service in &self.grpc_services {
            self.health.set_service_status(*service, serving).await;
        }
        self.sender.send_replace(next);
    }
}

/// Lets the node mark itself as draining without owning the probe.
#[derive(Clone)]
pub(crate) struct ShutdownSignal {
    sender: Arc<watch::Sender<ReadinessState>>,
}

impl ShutdownSignal {
    pub(crate) fn mark(&self) {
        self.sender.send_modify(|state| state.shutting_down = true);
    }
}
