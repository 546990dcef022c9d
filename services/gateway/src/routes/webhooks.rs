//! `/v1/webhooks`: the tenant's webhook endpoints, their deliveries and
//! attempts. Webhooks are tenant settings and carry the whole tenant's
//! events: they take the tenant-management permission (owners, admins; API
//! keys with `full` or `tenant:write`) and a credential that is not limited
//! to some client organizations.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use switchboard_http::{ApiJson, Page, PageQuery, Problem, RevealsSecret};
use switchboard_identity_api::{Permission, Principal};
use switchboard_tenancy::{ClientScope, Tenant};
use switchboard_webhooks_api::{DeliveryId, EndpointId, EndpointPatch, NewEndpoint};
use uuid::Uuid;

use crate::Gateway;
use crate::dto::webhooks::{
    DeliveryDto, WebhookCreateBody, WebhookDto, WebhookPatchBody, WebhookWithSecretDto,
};
use crate::error::ApiResult;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, PayloadTooLarge, UnsupportedMediaType,
    WebhookDeliveryPage, WebhookPage,
};
use crate::routes::{id_of, page_of};

/// The caller's tenant, if it may manage webhooks.
fn tenant_of(principal: &Principal) -> ApiResult<Tenant> {
    principal.require(Permission::ManageTenant)?;
    if *principal.tenant.clients() != ClientScope::All {
        return Err(Problem::forbidden(
            "client_scope",
            "webhooks carry the events of the whole tenant; a credential limited to some \
             client organizations may not manage them",
        )
        .into());
    }
    Ok(principal.tenant.clone())
}

/// List webhook endpoints
///
/// Oldest first, without secrets.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "list_webhooks",
    params(PageParams),
    responses(
        (status = 200, description = "One page of webhook endpoints.", body = WebhookPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<WebhookDto>>> {
    let tenant = tenant_of(&principal)?;
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?.map(EndpointId::from_uuid);
    let rows = gateway
        .webhooks
        .list_endpoints(&tenant, after, page.fetch_limit())
        .await?;
    let rows: Vec<WebhookDto> = rows.into_iter().map(Into::into).collect();
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |webhook| {
        webhook.id
    })?))
}

/// Register a webhook endpoint
///
/// Every event of the tenant whose type is in `event_types` (or every
/// event, with `["*"]`) is POSTed to `url` as JSON (`{"id", "type",
/// "tenant_id", "source", "occurred_at", "schema_version", "data"}`),
/// signed as the Standard Webhooks specification says
/// (<https://www.standardwebhooks.com/>):
///
/// - `webhook-id`: the event's id, the same on every retry (deduplicate on it);
/// - `webhook-timestamp`: Unix seconds of the attempt (refuse old ones);
/// - `webhook-signature`: `v1,` + base64 of the HMAC-SHA256 (RFC 2104) of
///   `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded
///   part of `secret` after `whsec_`;
/// - `webhook-key-id`: which secret signed (`key_id`; it changes when the
///   secret is rotated).
///
/// The answer carries `secret` this once. A 2xx answer within the timeout
/// is a success; anything else (another status, a redirect, a timeout, a
/// closed connection) is retried with exponential backoff for 24 hours,
/// after which the delivery fails and the endpoint is disabled (recorded in
/// the audit log as `webhook.endpoint_disabled`, and sent as an event of
/// that type). `410 Gone` disables the endpoint at once. The URL must be
/// `https` and resolve to public addresses only.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    request_body = WebhookCreateBody,
    responses(
        (status = 201, description = "The new endpoint, with its signing secret.", body = WebhookWithSecretDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn create(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<WebhookCreateBody>,
) -> ApiResult<(
    StatusCode,
    Extension<RevealsSecret>,
    ApiJson<WebhookWithSecretDto>,
)> {
    let tenant = tenant_of(&principal)?;
    principal.require_verified("register webhooks")?;
    let new = NewEndpoint {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
    };
    let created = gateway.webhooks.create_endpoint(&tenant, new).await?;
    Ok((
        StatusCode::CREATED,
        Extension(RevealsSecret),
        ApiJson(created.into()),
    ))
}

/// Get a webhook endpoint
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "get_webhook",
    params(("id" = Uuid, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint, without its secret.", body = WebhookDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<WebhookDto>> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<EndpointId>(&id, "webhook endpoint")?;
    Ok(ApiJson(
        gateway.webhooks.get_endpoint(&tenant, id).await?.into(),
    ))
}

/// Change a webhook endpoint
///
/// Change its URL, description or event types, disable it, or enable it
/// again after it was disabled for failing.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "update_webhook",
    params(("id" = Uuid, Path, description = "The endpoint's id.")),
    request_body = WebhookPatchBody,
    responses(
        (status = 200, description = "The changed endpoint.", body = WebhookDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn update(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WebhookPatchBody>,
) -> ApiResult<ApiJson<WebhookDto>> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<EndpointId>(&id, "webhook endpoint")?;
    let patch = EndpointPatch {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        status: body.status,
    };
    Ok(ApiJson(
        gateway
            .webhooks
            .update_endpoint(&tenant, id, patch)
            .await?
            .into(),
    ))
}

/// Delete a webhook endpoint
///
/// With its deliveries and their attempts.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "delete_webhook",
    params(("id" = Uuid, Path, description = "The endpoint's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn delete(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<EndpointId>(&id, "webhook endpoint")?;
    gateway.webhooks.delete_endpoint(&tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a webhook endpoint's secret
///
/// A new secret and key id replace the old ones at once; the answer
/// carries the new `secret` this once.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    params(("id" = Uuid, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint, with its new signing secret.", body = WebhookWithSecretDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn rotate_secret(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<(Extension<RevealsSecret>, ApiJson<WebhookWithSecretDto>)> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<EndpointId>(&id, "webhook endpoint")?;
    Ok((
        Extension(RevealsSecret),
        ApiJson(gateway.webhooks.rotate_secret(&tenant, id).await?.into()),
    ))
}

/// List a webhook endpoint's deliveries
///
/// Newest first, each with its attempts (oldest first).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    params(("id" = Uuid, Path, description = "The endpoint's id."), PageParams),
    responses(
        (status = 200, description = "One page of deliveries.", body = WebhookDeliveryPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn deliveries(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<DeliveryDto>>> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<EndpointId>(&id, "webhook endpoint")?;
    let page = page_of(query)?;
    let before = page.after::<Uuid>()?.map(DeliveryId::from_uuid);
    let rows = gateway
        .webhooks
        .list_deliveries(&tenant, id, before, page.fetch_limit())
        .await?;
    let rows: Vec<DeliveryDto> = rows.into_iter().map(Into::into).collect();
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |delivery| {
        delivery.id
    })?))
}

/// Resend a webhook delivery
///
/// The delivery becomes `pending` and due now, with a new 24-hour retry
/// period, whatever its state; the receiver gets the same `webhook-id` and
/// body again, and the new attempts are listed after the old ones. Refused
/// with 409 `endpoint_disabled` while the endpoint is disabled.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/deliveries/{delivery_id}/resend",
    tag = "webhooks",
    operation_id = "resend_webhook_delivery",
    params(
        ("id" = Uuid, Path, description = "The endpoint's id."),
        ("delivery_id" = Uuid, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 202, description = "The delivery, pending again.", body = DeliveryDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn resend(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, ApiJson<DeliveryDto>)> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<EndpointId>(&id, "webhook endpoint")?;
    let delivery_id = id_of::<DeliveryId>(&delivery_id, "webhook delivery")?;
    let delivery = gateway
        .webhooks
        .resend_delivery(&tenant, id, delivery_id)
        .await?;
    Ok((StatusCode::ACCEPTED, ApiJson(delivery.into())))
}
