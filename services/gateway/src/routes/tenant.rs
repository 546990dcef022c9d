//! `/v1/tenant`: the caller's own tenant.

use axum::Extension;
use axum::extract::State;
use switchboard_http::ApiJson;
use switchboard_identity_api::{Principal, TenantPatch};

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{TenantDto, TenantPatchBody};
use crate::error::ApiResult;
use crate::openapi::{BadRequest, Conflict, Forbidden, PayloadTooLarge, UnsupportedMediaType};

/// Get the tenant
#[utoipa::path(
    get,
    path = "/v1/tenant",
    tag = "tenant",
    operation_id = "get_tenant",
    responses(
        (status = 200, description = "The caller's tenant.", body = TenantDto),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<ApiJson<TenantDto>> {
    Ok(ApiJson(
        gateway.identity.get_tenant(&principal).await?.into(),
    ))
}

/// Change the tenant
///
/// Changes the name or time zone. The plan is not the tenant's to pick
/// (400 naming `plan`): tenants start on `trial`, and other plans come
/// through billing (until then, an operator sets them). A client-scoped
/// user changes nothing here (403 `client_scope`).
#[utoipa::path(
    patch,
    path = "/v1/tenant",
    tag = "tenant",
    operation_id = "update_tenant",
    request_body = TenantPatchBody,
    responses(
        (status = 200, description = "The changed tenant.", body = TenantDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn update(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<TenantPatchBody>,
) -> ApiResult<ApiJson<TenantDto>> {
    let patch = TenantPatch {
        name: body.name,
        time_zone: body.time_zone,
        plan: body.plan,
    };
    Ok(ApiJson(
        gateway
            .identity
            .update_tenant(&principal, patch, &origin)
            .await?
            .into(),
    ))
}
