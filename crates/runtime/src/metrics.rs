//! Prometheus metrics: one process-wide recorder (the `metrics` facade),
//! rendered at `/metrics`. Names follow `switchboard_<area>_<thing>_<unit>`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets for request latencies, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. When another recorder
/// is already installed (an embedding program's), ours still renders what
/// is recorded through it directly.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
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
