//! The node's gRPC server pieces: the readiness gate and the
//! `switchboard.system.v1` service.

use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use switchboard_proto::system::v1 as pb;
use tonic::{Request, Response, Status};
use tower::{Layer, Service};

use crate::Readiness;

/// Answers `UNAVAILABLE` while the node is not ready, except to health
/// and reflection, which must keep answering.
#[derive(Clone)]
pub(crate) struct ReadinessGateLayer {
    pub(crate) readiness: Readiness,
}

impl<S> Layer<S> for ReadinessGateLayer {
    type Service = ReadinessGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadinessGate {
            inner,
            readiness: self.readiness.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct ReadinessGate<S> {
    inner: S,
    readiness: Readiness,
}

impl<S, B, ResBody> Service<http::Request<B>> for ReadinessGate<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let always_open =
            path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.");
        if !always_open {
            let state = self.readiness.current();
            if !state.is_ready() {
                let status =
                    Status::unavailable(format!("service unavailable: {}", state.reason()));
                return futures::future::ready(Ok(status.into_http())).boxed();
            }
        }
        self.inner.call(request).boxed()
    }
}

/// `switchboard.system.v1.SystemService`: what this node is.
pub(crate) struct SystemService {
    pub(crate) readiness: Readiness,
    pub(crate) services: Vec<String>,
    pub(crate) installation_id: String,
}

#[tonic::async_trait]
impl pb::system_service_server::SystemService for SystemService {
    async fn get_node_info(
        &self,
        _request: Request<pb::GetNodeInfoRequest>,
    ) -> Result<Response<pb::GetNodeInfoResponse>, Status> {
        let state = self.readiness.current();
        let backends = state
            .backends
            .iter()
            .map(|status| pb::BackendStatus {
                backend: status.backend.as_str().to_owned(),
                implementation: status.implementation.to_owned(),
                ready: status.is_ready(),
                error: status.error.clone().unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::GetNodeInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            services: self.services.clone(),
            backends,
            installation_id: self.installation_id.clone(),
        }))
    }
}
