//! The webhooks gRPC API (`switchboard.webhooks.v1.Webhooks`, see
//! `proto/switchboard/webhooks/v1/webhooks.proto`) over any
//! [`WebhooksApi`]. Serve it wrapped in `switchboard_rpc::Authenticated`:
//! each call acts for the tenant of its service credential, never one
//! named in a message, so another tenant's ids are not found.

use std::sync::Arc;

use switchboard_proto::webhooks::v1 as pb;
use switchboard_proto::webhooks::v1::webhooks_server::{
    Webhooks as WebhooksService, WebhooksServer,
};
use switchboard_rpc::{Caller, ServiceError};
use switchboard_tenancy::Tenant;
use switchboard_webhooks_api::wire::{cursor, patch_of, request_id};
use switchboard_webhooks_api::{DeliveryId, EndpointId, WebhooksApi};
use tonic::{Request, Response, Status};

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.webhooks.v1.Webhooks";

/// The service over `api`, ready for tonic's router (wrap it in
/// `Authenticated`).
pub fn server(api: Arc<dyn WebhooksApi>) -> WebhooksServer<WebhooksGrpc> {
    WebhooksServer::new(WebhooksGrpc { api })
}

pub struct WebhooksGrpc {
    api: Arc<dyn WebhooksApi>,
}

/// The tenant of the call's credential.
fn tenant_of<T>(request: &Request<T>) -> Result<Tenant, Status> {
    Ok(Caller::of(request)?.tenant()?.clone())
}

fn endpoint_id(text: &str) -> Result<EndpointId, ServiceError> {
    request_id(text, "webhook endpoint")
}

fn status(error: ServiceError) -> Status {
    error.to_status()
}

#[tonic::async_trait]
impl WebhooksService for WebhooksGrpc {
    async fn create_endpoint(
        &self,
        request: Request<pb::CreateEndpointRequest>,
    ) -> Result<Response<pb::EndpointWithSecret>, Status> {
        let tenant = tenant_of(&request)?;
        let created = self
            .api
            .create_endpoint(&tenant, request.into_inner().into())
            .await
            .map_err(status)?;
        Ok(Response::new(created.into()))
    }

    async fn list_endpoints(
        &self,
        request: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let message = request.into_inner();
        let after = cursor(&message.after, "webhook endpoint").map_err(status)?;
        let endpoints = self
            .api
            .list_endpoints(&tenant, after, message.limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListEndpointsResponse {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::EndpointRef>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let tenant = tenant_of(&request)?;
        let id = endpoint_id(&request.get_ref().endpoint_id).map_err(status)?;
        let endpoint = self.api.get_endpoint(&tenant, id).await.map_err(status)?;
        Ok(Response::new(endpoint.into()))
    }

    async fn update_endpoint(
        &self,
        request: Request<pb::UpdateEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let tenant = tenant_of(&request)?;
        let message = request.into_inner();
        let id = endpoint_id(&message.endpoint_id).map_err(status)?;
        let endpoint = self
            .api
            .update_endpoint(&tenant, id, patch_of(message))
            .await
            .map_err(status)?;
        Ok(Response::new(endpoint.into()))
    }

    async fn delete_endpoint(
        &self,
        request: Request<pb::EndpointRef>,
    ) -> Result<Response<()>, Status> {
        let tenant = tenant_of(&request)?;
        let id = endpoint_id(&request.get_ref().endpoint_id).map_err(status)?;
        self.api
            .delete_endpoint(&tenant, id)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn rotate_secret(
        &self,
        request: Request<pb::EndpointRef>,
    ) -> Result<Response<pb::EndpointWithSecret>, Status> {
        let tenant = tenant_of(&request)?;
        let id = endpoint_id(&request.get_ref().endpoint_id).map_err(status)?;
        let rotated = self.api.rotate_secret(&tenant, id).await.map_err(status)?;
        Ok(Response::new(rotated.into()))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let message = request.into_inner();
        let id = endpoint_id(&message.endpoint_id).map_err(status)?;
        let before = cursor(&message.before, "webhook delivery").map_err(status)?;
        let deliveries = self
            .api
            .list_deliveries(&tenant, id, before, message.limit)
            .await
            .map_err(status)?;
        let deliveries = deliveries
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, ServiceError>>()
            .map_err(status)?;
        Ok(Response::new(pb::ListDeliveriesResponse { deliveries }))
    }

    async fn resend_delivery(
        &self,
        request: Request<pb::ResendDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let tenant = tenant_of(&request)?;
        let message = request.get_ref();
        let endpoint = endpoint_id(&message.endpoint_id).map_err(status)?;
        let id: DeliveryId =
            request_id(&message.delivery_id, "webhook delivery").map_err(status)?;
        let delivery = self
            .api
            .resend_delivery(&tenant, endpoint, id)
            .await
            .map_err(status)?;
        Ok(Response::new(delivery.try_into().map_err(status)?))
    }
}
