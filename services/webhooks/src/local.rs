//! [`WebhooksApi`] in process: the service's own methods, their errors as
//! [`ServiceError`]s. Webhooks carry the events of the whole tenant, so a
//! caller limited to some client organizations is refused here, whoever
//! calls (the gateway, or any service over gRPC).

use switchboard_rpc::ServiceError;
use switchboard_tenancy::{ClientScope, Tenant};
use switchboard_webhooks_api::{
    DeliveryId, DeliveryView, EndpointId, EndpointPatch, EndpointView, EndpointWithSecret,
    NewEndpoint, WebhooksApi,
};

use crate::Webhooks;

type Result<T> = std::result::Result<T, ServiceError>;

/// Refuses a caller limited to some client organizations (403
/// `client_scope`).
fn whole(tenant: &Tenant) -> Result<&Tenant> {
    if *tenant.clients() != ClientScope::All {
        return Err(ServiceError::forbidden(
            "client_scope",
            "webhooks carry the events of the whole tenant; a credential limited to some \
             client organizations may not manage them",
        ));
    }
    Ok(tenant)
}

#[async_trait::async_trait]
impl WebhooksApi for Webhooks {
    async fn create_endpoint(
        &self,
        tenant: &Tenant,
        new: NewEndpoint,
    ) -> Result<EndpointWithSecret> {
        Ok(Webhooks::create_endpoint(self, whole(tenant)?, new).await?)
    }

    async fn list_endpoints(
        &self,
        tenant: &Tenant,
        after: Option<EndpointId>,
        limit: u64,
    ) -> Result<Vec<EndpointView>> {
        Ok(Webhooks::list_endpoints(self, whole(tenant)?, after, limit).await?)
    }

    async fn get_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<EndpointView> {
        Ok(Webhooks::get_endpoint(self, whole(tenant)?, id).await?)
    }

    async fn update_endpoint(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<EndpointView> {
        Ok(Webhooks::update_endpoint(self, whole(tenant)?, id, patch).await?)
    }

    async fn delete_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<()> {
        Ok(Webhooks::delete_endpoint(self, whole(tenant)?, id).await?)
    }

    async fn rotate_secret(&self, tenant: &Tenant, id: EndpointId) -> Result<EndpointWithSecret> {
        Ok(Webhooks::rotate_secret(self, whole(tenant)?, id).await?)
    }

    async fn list_deliveries(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        before: Option<DeliveryId>,
        limit: u64,
    ) -> Result<Vec<DeliveryView>> {
        Ok(Webhooks::list_deliveries(self, whole(tenant)?, id, before, limit).await?)
    }

    async fn resend_delivery(
        &self,
        tenant: &Tenant,
        endpoint: EndpointId,
        id: DeliveryId,
    ) -> Result<DeliveryView> {
        Ok(Webhooks::resend_delivery(self, whole(tenant)?, endpoint, id).await?)
    }
}
