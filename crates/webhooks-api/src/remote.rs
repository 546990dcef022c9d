//! [`RemoteWebhooks`]: the API over gRPC to a webhooks service on
//! another node.

use switchboard_proto::webhooks::v1 as pb;
use switchboard_proto::webhooks::v1::webhooks_client::WebhooksClient;
use switchboard_rpc::{CallContext, Credentials, ServiceError};
use switchboard_tenancy::Tenant;
use tonic::transport::Channel;

use crate::wire::update_request;
use crate::{
    DeliveryId, DeliveryView, EndpointId, EndpointPatch, EndpointView, EndpointWithSecret,
    NewEndpoint, Result, WebhooksApi,
};

/// The webhooks service on another node. Every call carries a fresh
/// service credential naming the tenant it is for. Cheap to clone.
#[derive(Clone)]
pub struct RemoteWebhooks {
    client: WebhooksClient<Channel>,
    credentials: Credentials,
}

impl RemoteWebhooks {
    /// Calls the service over `channel`, signing with `credentials`.
    pub fn new(channel: Channel, credentials: Credentials) -> Self {
        Self {
            client: WebhooksClient::new(channel),
            credentials,
        }
    }

    fn request<T>(&self, tenant: &Tenant, message: T) -> Result<tonic::Request<T>> {
        self.credentials
            .request(message, &CallContext::tenant(tenant.clone()))
            .map_err(|status| ServiceError::from_status(&status))
    }

    fn client(&self) -> WebhooksClient<Channel> {
        self.client.clone()
    }
}

fn endpoint_ref(id: EndpointId) -> pb::EndpointRef {
    pb::EndpointRef {
        endpoint_id: id.to_string(),
    }
}

#[async_trait::async_trait]
impl WebhooksApi for RemoteWebhooks {
    async fn create_endpoint(
        &self,
        tenant: &Tenant,
        new: NewEndpoint,
    ) -> Result<EndpointWithSecret> {
        let request = self.request(tenant, pb::CreateEndpointRequest::from(new))?;
        self.client()
            .create_endpoint(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn list_endpoints(
        &self,
        tenant: &Tenant,
        after: Option<EndpointId>,
        limit: u64,
    ) -> Result<Vec<EndpointView>> {
        let request = self.request(
            tenant,
            pb::ListEndpointsRequest {
                after: after.map(|id| id.to_string()).unwrap_or_default(),
                limit,
            },
        )?;
        self.client()
            .list_endpoints(request)
            .await?
            .into_inner()
            .endpoints
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }

    async fn get_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<EndpointView> {
        let request = self.request(tenant, endpoint_ref(id))?;
        self.client()
            .get_endpoint(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn update_endpoint(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<EndpointView> {
        let request = self.request(tenant, update_request(id, patch))?;
        self.client()
            .update_endpoint(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn delete_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<()> {
        let request = self.request(tenant, endpoint_ref(id))?;
        self.client().delete_endpoint(request).await?;
        Ok(())
    }

    async fn rotate_secret(&self, tenant: &Tenant, id: EndpointId) -> Result<EndpointWithSecret> {
        let request = self.request(tenant, endpoint_ref(id))?;
        self.client()
            .rotate_secret(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn list_deliveries(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        before: Option<DeliveryId>,
        limit: u64,
    ) -> Result<Vec<DeliveryView>> {
        let request = self.request(
            tenant,
            pb::ListDeliveriesRequest {
                endpoint_id: id.to_string(),
                before: before.map(|id| id.to_string()).unwrap_or_default(),
                limit,
            },
        )?;
        self.client()
            .list_deliveries(request)
            .await?
            .into_inner()
            .deliveries
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }

    async fn resend_delivery(
        &self,
        tenant: &Tenant,
        endpoint: EndpointId,
        id: DeliveryId,
    ) -> Result<DeliveryView> {
        let request = self.request(
            tenant,
            pb::ResendDeliveryRequest {
                endpoint_id: endpoint.to_string(),
                delivery_id: id.to_string(),
            },
        )?;
        self.client()
            .resend_delivery(request)
            .await?
            .into_inner()
            .try_into()
    }
}
