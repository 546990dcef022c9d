//! The ACD as callers see it: agents' and contacts' operations on a
//! tenant's automatic call distributor, its reads, and the notices of what
//! each operation changed.
//!
//! - [`ops`]: [`Operation`], [`Query`], [`Answer`] and [`Refusal`], the
//!   one vocabulary of every adapter (REST, WebSockets, the edge's gRPC)
//!   and of routing's instances among themselves.
//! - [`RoutingApi`]: the API, object-safe, for the tenant of the call
//!   (`&Tenant` first): the routing service implements it in process and
//!   serves it over gRPC (`switchboard.routing.v1.Acd`);
//!   [`RemoteRouting`] is its tonic client.
//! - [`Notices`]: one tenant's notices, from now on, in process or
//!   streamed from a routing node.
//!
//! Errors are [`RoutingError`]s either way: a refusal crosses a gRPC hop
//! whole (kind, message, the agent's current state, the agent without a
//! profile) as a [`ServiceError`] whose `refusal` extension carries it.

pub mod ops;
mod remote;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_acd::{AgentEvent, ContactEvent, ContactId, Offer, Outcome};
use switchboard_proto::routing::v1 as pb;
use switchboard_rpc::{ErrorKind, ServiceError};
use switchboard_tenancy::{Tenant, TenantId};
use tokio::sync::broadcast;

pub use ops::{Answer, Connection, Operation, Query, QueueFigures, Refusal, RefusalKind};
pub use remote::RemoteRouting;

/// Why a routing call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    /// The ACD refused it; nothing changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The cache, the owning instance or the routing node could not be
    /// reached; try again.
    #[error("routing is unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt state.
    #[error("routing failed: {0}")]
    Internal(String),
}

/// The extension of a [`ServiceError`] that carries a [`Refusal`].
const REFUSAL_EXTENSION: &str = "refusal";

impl RoutingError {
    /// The error as every service API returns it: a refusal's problem code
    /// is `agent_profile_missing` (a user the ACD has no agent for),
    /// `not_found`, `illegal_state`, `queue_full` or `bad_request`.
    pub fn to_service_error(&self) -> ServiceError {
        match self {
            RoutingError::Refused(refusal) => {
                let (kind, code) = match (refusal.kind, refusal.unknown_agent) {
                    (RefusalKind::NotFound, Some(_)) => {
                        (ErrorKind::NotFound, "agent_profile_missing")
                    }
                    (RefusalKind::NotFound, None) => (ErrorKind::NotFound, "not_found"),
                    (RefusalKind::Conflict, _) => (ErrorKind::Conflict, "illegal_state"),
                    (RefusalKind::Overflow, _) => (ErrorKind::Conflict, "queue_full"),
                    (RefusalKind::InvalidArgument, _) => (ErrorKind::BadRequest, "bad_request"),
                };
                let error = ServiceError::new(kind, refusal.message.clone()).with_code(code);
                match serde_json::to_value(refusal) {
                    Ok(value) => error.with_extension(REFUSAL_EXTENSION, value),
                    Err(_) => error,
                }
            }
            RoutingError::Unavailable(detail) => ServiceError::unavailable(detail.clone()),
            RoutingError::Internal(detail) => ServiceError::internal(detail.clone()),
        }
    }

    /// The error [`RoutingError::to_service_error`] made, back; an error
    /// from elsewhere (the transport, a proxy, a refused credential) by
    /// its kind.
    pub fn from_service_error(error: ServiceError) -> Self {
        if let Some(refusal) = error
            .extensions
            .get(REFUSAL_EXTENSION)
            .and_then(|value| serde_json::from_value::<Refusal>(value.clone()).ok())
        {
            return RoutingError::Refused(refusal);
        }
        let refused = |kind| {
            RoutingError::Refused(Refusal {
                kind,
                message: error.detail.clone(),
                current_state: None,
                unknown_agent: None,
            })
        };
        match error.kind {
            ErrorKind::NotFound => refused(RefusalKind::NotFound),
            ErrorKind::Conflict => refused(RefusalKind::Conflict),
            ErrorKind::Validation | ErrorKind::BadRequest => refused(RefusalKind::InvalidArgument),
            ErrorKind::Unavailable | ErrorKind::Throttled => {
                RoutingError::Unavailable(error.detail)
            }
            ErrorKind::Unauthenticated | ErrorKind::Forbidden | ErrorKind::Internal => {
                RoutingError::Internal(format!("{}: {}", error.code, error.detail))
            }
        }
    }

    pub fn to_status(&self) -> tonic::Status {
        self.to_service_error().to_status()
    }

    pub fn from_status(status: &tonic::Status) -> Self {
        Self::from_service_error(ServiceError::from_status(status))
    }
}

impl From<RoutingError> for ServiceError {
    fn from(error: RoutingError) -> Self {
        error.to_service_error()
    }
}

/// What one operation did, as instances and agents' desktops hear it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub tenant: TenantId,
    pub offers: Vec<Offer>,
    pub withdrawn: Vec<Offer>,
    pub agent_events: Vec<AgentEvent>,
    pub contact_events: Vec<ContactEvent>,
}

impl Notice {
    /// The notice of `outcome`; `None` when it offered, withdrew and
    /// changed nothing.
    pub fn of(tenant: TenantId, outcome: &Outcome) -> Option<Self> {
        let notice = Notice {
            tenant,
            offers: outcome.offers.clone(),
            withdrawn: outcome.withdrawn.clone(),
            agent_events: outcome.agent_events.clone(),
            contact_events: outcome.contact_events.clone(),
        };
        let empty = notice.offers.is_empty()
            && notice.withdrawn.is_empty()
            && notice.agent_events.is_empty()
            && notice.contact_events.is_empty();
        (!empty).then_some(notice)
    }
}

/// One item of a tenant's [`Notices`].
#[derive(Debug, Clone)]
pub enum NoticeEvent {
    Notice(Arc<Notice>),
    /// Notices may have been lost: re-read what you show.
    Gap,
}

/// One tenant's notices, from the moment they were asked for: in process
/// (a channel of the routing runtime) or streamed from a routing node.
pub struct Notices {
    source: Source,
}

enum Source {
    Local(broadcast::Receiver<NoticeEvent>),
    Remote(Box<tonic::Streaming<pb::AcdNotice>>),
}

impl Notices {
    /// The notices sent on `receiver`'s channel (the routing runtime's
    /// channel of one tenant); a receiver that fell behind hears a
    /// [`NoticeEvent::Gap`].
    pub fn local(receiver: broadcast::Receiver<NoticeEvent>) -> Self {
        Self {
            source: Source::Local(receiver),
        }
    }

    fn remote(stream: tonic::Streaming<pb::AcdNotice>) -> Self {
        Self {
            source: Source::Remote(Box::new(stream)),
        }
    }

    /// The next notice; `None` once the source is gone (the runtime
    /// stopped, the routing node went away): the caller re-subscribes,
    /// as an agent's desktop reconnects.
    pub async fn next(&mut self) -> Option<NoticeEvent> {
        match &mut self.source {
            Source::Local(receiver) => match receiver.recv().await {
                Ok(event) => Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(NoticeEvent::Gap),
                Err(broadcast::error::RecvError::Closed) => None,
            },
            Source::Remote(stream) => {
                let message = match stream.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => return None,
                    Err(status) => {
                        tracing::debug!(%status, "routing notice stream ended");
                        return None;
                    }
                };
                match message.notice_json {
                    None => Some(NoticeEvent::Gap),
                    Some(json) => match serde_json::from_str::<Notice>(&json) {
                        Ok(notice) => Some(NoticeEvent::Notice(Arc::new(notice))),
                        Err(error) => {
                            // A notice we cannot read is a lost notice.
                            tracing::warn!(%error, "malformed routing notice");
                            Some(NoticeEvent::Gap)
                        }
                    },
                }
            }
        }
    }
}

/// A tenant's ACD, for the tenant of each call. Object-safe: callers hold
/// an `Arc<dyn RoutingApi>` and never know whether routing runs in their
/// process.
#[async_trait::async_trait]
pub trait RoutingApi: Send + Sync {
    /// Runs `operation` on the tenant's ACD, wherever its owner is.
    async fn execute(&self, tenant: &Tenant, operation: Operation)
    -> Result<Outcome, RoutingError>;

    /// Reads the tenant's ACD. Queue figures are those of the queues the
    /// tenant's client scope allows; another client's queue is not found.
    async fn query(&self, tenant: &Tenant, query: Query) -> Result<Answer, RoutingError>;

    /// The number to call back, if the contact is a callback (virtual
    /// hold).
    async fn callback_number(
        &self,
        tenant: &Tenant,
        contact: ContactId,
    ) -> Result<Option<String>, RoutingError>;

    /// The tenant's notices from now on (no other tenant's).
    async fn notices(&self, tenant: &Tenant) -> Result<Notices, RoutingError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_acd::{AgentId, AgentState};

    #[test]
    fn a_refusal_crosses_a_grpc_status_whole() {
        let agent = AgentId::new();
        let refusals = [
            Refusal {
                kind: RefusalKind::Conflict,
                message: "agent is offline".into(),
                current_state: Some(AgentState::Offline),
                unknown_agent: None,
            },
            Refusal {
                kind: RefusalKind::NotFound,
                message: "no such agent".into(),
                current_state: None,
                unknown_agent: Some(agent),
            },
            Refusal {
                kind: RefusalKind::Overflow,
                message: "the queue is full".into(),
                current_state: None,
                unknown_agent: None,
            },
        ];
        let codes = ["illegal_state", "agent_profile_missing", "queue_full"];
        for (refusal, code) in refusals.into_iter().zip(codes) {
            let error = RoutingError::Refused(refusal);
            assert_eq!(error.to_service_error().code, code);
            let status = error.to_status();
            assert_eq!(RoutingError::from_status(&status), error);
        }
    }

    #[test]
    fn other_failures_keep_their_kind() {
        let unavailable = RoutingError::Unavailable("the cache is down".into());
        let back = RoutingError::from_status(&unavailable.to_status());
        assert!(matches!(back, RoutingError::Unavailable(_)), "{back:?}");
        assert_eq!(
            unavailable.to_status().code(),
            tonic::Code::Unavailable,
            "the table's code"
        );
        let refused = RoutingError::from_status(&tonic::Status::unauthenticated("no credential"));
        assert!(matches!(refused, RoutingError::Internal(_)), "{refused:?}");
        let transport = RoutingError::from_status(&tonic::Status::unavailable("connect refused"));
        assert!(
            matches!(transport, RoutingError::Unavailable(_)),
            "{transport:?}"
        );
    }
}
