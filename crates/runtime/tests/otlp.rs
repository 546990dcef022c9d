//! The OTLP trace exporter, on with one config key, against a collector
//! speaking the real OTLP/gRPC protocol.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use switchboard_config::TelemetryConfig;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;

struct Collector {
    received: mpsc::UnboundedSender<ExportTraceServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.received.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_configured_otlp_collector() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, mut received) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector { received: sender }))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let config = TelemetryConfig {
        otlp_endpoint: Some(format!("http://{addr}")),
        service_name: "switchboard-otlp-test".into(),
        ..TelemetryConfig::default()
    };
    let mut guard = switchboard_runtime::telemetry::init(&config).expect("telemetry starts");
    tracing::info_span!("otlp_probe", tenant_id = "t1")
        .in_scope(|| tracing::info!("inside the probe span"));
    // Shutting down flushes the batch to the collector.
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let request = tokio::time::timeout(Duration::from_secs(15), received.recv())
        .await
        .expect("the collector received spans in time")
        .expect("an export request");
    let resource_spans = &request.resource_spans[0];
    let service_name = resource_spans
        .resource
        .as_ref()
        .and_then(|resource| {
            resource
                .attributes
                .iter()
                .find(|attribute| attribute.key == "service.name")
        })
        .and_then(|attribute| attribute.value.as_ref()?.value.clone());
    assert_eq!(
        service_name,
        Some(Value::StringValue("switchboard-otlp-test".into()))
    );
    let names: Vec<&str> = resource_spans
        .scope_spans
        .iter()
        .flat_map(|scope| scope.spans.iter().map(|span| span.name.as_str()))
        .collect();
    assert!(names.contains(&"otlp_probe"), "{names:?}");
}
