//! Logs and traces: `tracing` with JSON (or text) lines on stderr, and an
//! optional OTLP/gRPC trace exporter, on when `telemetry.otlp_endpoint` is
//! set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use switchboard_config::{LogFormat, TelemetryConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::RuntimeError;

/// Keeps the trace exporter alive; dropping it flushes pending spans.
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the trace exporter, if any.
    pub fn shutdown(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(error = %error, "trace exporter shutdown");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides
/// `telemetry.log_level`.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, RuntimeError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(&config.log_level),
    }
    .map_err(|error| {
        RuntimeError::Telemetry(format!("config key `telemetry.log_level`: {error}"))
    })?;

    let tracer_provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(otlp_tracer_provider(endpoint, &config.service_name)?),
        None => None,
    };
    let otel_layer = tracer_provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("switchboard")));

    let (json, text) = match config.log_format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            ),
            None,
        ),
        LogFormat::Text => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(colour_on_stderr())
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .with(otel_layer)
        .try_init()
        .map_err(|error| RuntimeError::Telemetry(error.to_string()))?;
    Ok(TelemetryGuard { tracer_provider })
}

/// Text logs are coloured only for a person at a terminal: never in a file
/// or a pipe, and never with `NO_COLOR` set (<https://no-color.org>).
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

fn otlp_tracer_provider(
    endpoint: &str,
    service_name: &str,
) -> Result<SdkTracerProvider, RuntimeError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| {
            RuntimeError::Telemetry(format!("config key `telemetry.otlp_endpoint`: {error}"))
        })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}
