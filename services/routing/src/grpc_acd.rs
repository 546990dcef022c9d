//! The ACD's gRPC API (`switchboard.routing.v1.Acd`, see
//! `proto/switchboard/routing/v1/acd.proto`) over any [`RoutingApi`].
//! Serve it wrapped in `switchboard_rpc::Authenticated`: each call acts for
//! the tenant (and client scope) of its service credential, never one named
//! in a message.

use std::pin::Pin;
use std::sync::Arc;

use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::acd_server::{Acd, AcdServer};
use switchboard_routing_api::acd::{NoticeEvent, Operation, Query, RoutingApi};
use switchboard_rpc::{Caller, ServiceError};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.routing.v1.Acd";

/// Notices a remote listener may be behind by before its stream ends (it
/// re-subscribes and re-reads, as after a gap).
const STREAM_BUFFER: usize = 256;

/// The service over `api`, ready for tonic's router (wrap it in
/// `Authenticated`).
/// The service, ready for `tonic`'s router. Notice streams end when
/// `draining` is cancelled (the node stops), so the drain can finish and
/// their listeners re-subscribe to another node.
pub fn server(api: Arc<dyn RoutingApi>, draining: CancellationToken) -> AcdServer<AcdGrpc> {
    AcdServer::new(AcdGrpc { api, draining })
}

pub struct AcdGrpc {
    api: Arc<dyn RoutingApi>,
    draining: CancellationToken,
}

fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T, Status> {
    serde_json::from_str(json).map_err(|error| {
        ServiceError::bad_request(format!("malformed {what}: {error}")).to_status()
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, Status> {
    serde_json::to_string(value)
        .map_err(|error| ServiceError::internal(format!("cannot encode: {error}")).to_status())
}

type NoticeStream = Pin<Box<dyn Stream<Item = Result<pb::AcdNotice, Status>> + Send>>;

#[tonic::async_trait]
impl Acd for AcdGrpc {
    async fn execute(
        &self,
        request: Request<pb::OperationRequest>,
    ) -> Result<Response<pb::OutcomeResponse>, Status> {
        let tenant = Caller::of(&request)?.tenant()?.clone();
        let operation: Operation = parse(&request.get_ref().operation_json, "operation")?;
        let outcome = self
            .api
            .execute(&tenant, operation)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(pb::OutcomeResponse {
            outcome_json: encode(&outcome)?,
        }))
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::AnswerResponse>, Status> {
        let tenant = Caller::of(&request)?.tenant()?.clone();
        let query: Query = parse(&request.get_ref().query_json, "query")?;
        let answer = self
            .api
            .query(&tenant, query)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(pb::AnswerResponse {
            answer_json: encode(&answer)?,
        }))
    }

    async fn callback_number(
        &self,
        request: Request<pb::ContactRef>,
    ) -> Result<Response<pb::CallbackNumberResponse>, Status> {
        let tenant = Caller::of(&request)?.tenant()?.clone();
        // An id that does not parse names no contact: no number.
        let Ok(contact) = request.get_ref().contact_id.parse() else {
            return Ok(Response::new(pb::CallbackNumberResponse { number: None }));
        };
        let number = self
            .api
            .callback_number(&tenant, contact)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(pb::CallbackNumberResponse { number }))
    }

    type NoticesStream = NoticeStream;

    async fn notices(&self, request: Request<()>) -> Result<Response<NoticeStream>, Status> {
        let tenant = Caller::of(&request)?.tenant()?.clone();
        let mut notices = self
            .api
            .notices(&tenant)
            .await
            .map_err(|error| error.to_status())?;
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let draining = self.draining.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    // The listener went away: stop listening for it.
                    _ = sender.closed() => return,
                    // The node stops: the stream ends.
                    _ = draining.cancelled() => return,
                    event = notices.next() => match event {
                        Some(NoticeEvent::Notice(notice)) => match serde_json::to_string(&*notice) {
                            Ok(json) => pb::AcdNotice { notice_json: Some(json) },
                            Err(_) => pb::AcdNotice { notice_json: None },
                        },
                        Some(NoticeEvent::Gap) => pb::AcdNotice { notice_json: None },
                        None => return,
                    },
                };
                // A listener that fell this far behind is cut off: it
                // re-subscribes and re-reads.
                if sender.try_send(Ok(message)).is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
