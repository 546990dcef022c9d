//! [`RemoteRouting`]: the ACD over gRPC to a routing service on another
//! node (`switchboard.routing.v1.Acd`).

use switchboard_acd::{ContactId, Outcome};
use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::acd_client::AcdClient;
use switchboard_rpc::{CallContext, Credentials};
use switchboard_tenancy::Tenant;
use tonic::transport::Channel;

use super::{Answer, Notices, Operation, Query, RoutingApi, RoutingError};

/// The ACD on another node. Every call carries a fresh service credential
/// naming its tenant and client scope. Cheap to clone.
#[derive(Clone)]
pub struct RemoteRouting {
    client: AcdClient<Channel>,
    credentials: Credentials,
}

impl RemoteRouting {
    /// Calls the service over `channel`, signing with `credentials`.
    pub fn new(channel: Channel, credentials: Credentials) -> Self {
        Self {
            client: AcdClient::new(channel),
            credentials,
        }
    }

    fn request<T>(&self, tenant: &Tenant, message: T) -> Result<tonic::Request<T>, RoutingError> {
        self.credentials
            .request(message, &CallContext::tenant(tenant.clone()))
            .map_err(|status| RoutingError::from_status(&status))
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, RoutingError> {
    serde_json::to_string(value)
        .map_err(|error| RoutingError::Internal(format!("cannot encode a request: {error}")))
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, RoutingError> {
    serde_json::from_str(json)
        .map_err(|error| RoutingError::Internal(format!("malformed answer from routing: {error}")))
}

fn failed(status: tonic::Status) -> RoutingError {
    RoutingError::from_status(&status)
}

#[async_trait::async_trait]
impl RoutingApi for RemoteRouting {
    async fn execute(
        &self,
        tenant: &Tenant,
        operation: Operation,
    ) -> Result<Outcome, RoutingError> {
        let request = self.request(
            tenant,
            pb::OperationRequest {
                operation_json: encode(&operation)?,
            },
        )?;
        let answer = self.client.clone().execute(request).await.map_err(failed)?;
        decode(&answer.into_inner().outcome_json)
    }

    async fn query(&self, tenant: &Tenant, query: Query) -> Result<Answer, RoutingError> {
        let request = self.request(
            tenant,
            pb::QueryRequest {
                query_json: encode(&query)?,
            },
        )?;
        let answer = self.client.clone().query(request).await.map_err(failed)?;
        decode(&answer.into_inner().answer_json)
    }

    async fn callback_number(
        &self,
        tenant: &Tenant,
        contact: ContactId,
    ) -> Result<Option<String>, RoutingError> {
        let request = self.request(
            tenant,
            pb::ContactRef {
                contact_id: contact.to_string(),
            },
        )?;
        let answer = self
            .client
            .clone()
            .callback_number(request)
            .await
            .map_err(failed)?;
        Ok(answer.into_inner().number)
    }

    async fn notices(&self, tenant: &Tenant) -> Result<Notices, RoutingError> {
        let request = self.request(tenant, ())?;
        let stream = self.client.clone().notices(request).await.map_err(failed)?;
        Ok(Notices::remote(stream.into_inner()))
    }
}
