//! Prometheus metrics: one process-wide recorder (the `metrics` facade),
//! rendered at `/metrics`. Names follow `switchboard_<area>_<thing>_<unit>`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets for request latencies, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for how long contacts wait in their queues, in seconds: 1 s to
/// an hour, finer around the usual service-level thresholds (20 s, 30 s,
/// 60 s).
const QUEUE_WAIT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0,
    1800.0, 3600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. When another recorder
/// is already installed (an embedding program's), ours still renders what
/// is recorded through it directly.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // A full name's buckets win over a suffix's.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full("switchboard_routing_queue_wait_seconds".into()),
                    QUEUE_WAIT_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only when a global recorder exists already.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The text exposition format, for `/metrics`.
pub fn render() -> String {
    handle().render()
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_waits_are_bucketed_in_minutes_and_latencies_in_milliseconds() {
        let handle = super::handle();
        metrics::histogram!("switchboard_routing_queue_wait_seconds", "outcome" => "answered")
            .record(42.0);
        metrics::histogram!("switchboard_test_request_duration_seconds").record(0.003);
        let text = handle.render();
        for line in [
            "switchboard_routing_queue_wait_seconds_bucket{outcome=\"answered\",le=\"30\"} 0",
            "switchboard_routing_queue_wait_seconds_bucket{outcome=\"answered\",le=\"45\"} 1",
            "switchboard_routing_queue_wait_seconds_bucket{outcome=\"answered\",le=\"3600\"} 1",
            "switchboard_test_request_duration_seconds_bucket{le=\"0.0025\"} 0",
            "switchboard_test_request_duration_seconds_bucket{le=\"0.005\"} 1",
        ] {
            assert!(text.lines().any(|got| got == line), "{line} in {text}");
        }
    }
}
