//! The webhooks service as its callers see it: [`WebhooksApi`], the
//! types it takes and answers, and [`RemoteWebhooks`], the implementation
//! that calls a webhooks service on another node over gRPC
//! (`switchboard.webhooks.v1.Webhooks`). The service crate implements the
//! trait in process and serves it over gRPC; callers hold an
//! `Arc<dyn WebhooksApi>` and never know which one they have.
//!
//! Every method acts for the `&Tenant` it is given first (over gRPC, the
//! tenant of the signed service credential); another tenant's ids are not
//! found. Errors are [`ServiceError`]s, the same in process and remote.

mod ids;
mod remote;
mod views;
pub mod wire;

use switchboard_rpc::ServiceError;
use switchboard_tenancy::Tenant;

pub use ids::{DeliveryId, EndpointId};
pub use remote::RemoteWebhooks;
pub use views::{
    AttemptView, DeliveryStatus, DeliveryView, EndpointPatch, EndpointStatus, EndpointView,
    EndpointWithSecret, NewEndpoint,
};

/// What a webhooks call answers.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// A tenant's webhook endpoints and their deliveries.
#[async_trait::async_trait]
pub trait WebhooksApi: Send + Sync {
    /// Registers an endpoint; its signing secret is in the answer and
    /// never shown again. Validation (URL, its addresses, event types,
    /// description) fails naming the fields; past the tenant's limit a
    /// conflict `endpoint_limit_reached`.
    async fn create_endpoint(
        &self,
        tenant: &Tenant,
        new: NewEndpoint,
    ) -> Result<EndpointWithSecret>;

    /// Endpoints in creation order, after `after`, at most `limit`.
    async fn list_endpoints(
        &self,
        tenant: &Tenant,
        after: Option<EndpointId>,
        limit: u64,
    ) -> Result<Vec<EndpointView>>;

    async fn get_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<EndpointView>;

    async fn update_endpoint(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<EndpointView>;

    /// Removes an endpoint with its deliveries and their attempts.
    async fn delete_endpoint(&self, tenant: &Tenant, id: EndpointId) -> Result<()>;

    /// Replaces an endpoint's secret (and key id) at once; the new secret
    /// is in the answer and never shown again.
    async fn rotate_secret(&self, tenant: &Tenant, id: EndpointId) -> Result<EndpointWithSecret>;

    /// The deliveries of endpoint `id`, newest first, older than `before`,
    /// at most `limit`, each with its attempts (oldest first).
    async fn list_deliveries(
        &self,
        tenant: &Tenant,
        id: EndpointId,
        before: Option<DeliveryId>,
        limit: u64,
    ) -> Result<Vec<DeliveryView>>;

    /// Makes a delivery pending and due now, with a new retry period;
    /// a conflict `endpoint_disabled` while its endpoint is disabled.
    async fn resend_delivery(
        &self,
        tenant: &Tenant,
        endpoint: EndpointId,
        id: DeliveryId,
    ) -> Result<DeliveryView>;
}
