//! `/v1/tenant`: the caller's own tenant.

use axum::Extension;
use axum::extract::State;
use switchboard_http::ApiJson;
use switchboard_identity::{Principal, TenantPatch};

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{TenantDto, TenantPatchBody};
use crate::error::ApiResult;

pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<ApiJson<TenantDto>> {
    Ok(ApiJson(
        gateway.identity.get_tenant(&principal).await?.into(),
    ))
}

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
