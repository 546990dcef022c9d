//! `/v1/api-keys`: keys for integrations.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use switchboard_http::{ApiJson, Page, PageQuery, RevealsSecret};
use switchboard_identity_api::{NewApiKey, Principal};
use switchboard_tenancy::ApiKeyId;
use uuid::Uuid;

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{ApiKeyCreateBody, ApiKeyDto, CreatedApiKeyDto};
use crate::error::ApiResult;
use crate::openapi::{
    ApiKeyPage, BadRequest, Forbidden, NotFound, PageParams, PayloadTooLarge, UnsupportedMediaType,
};
use crate::routes::{id_of, page_of};

/// List API keys
///
/// Every key of the tenant, revoked ones included, without secrets.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    operation_id = "list_api_keys",
    params(PageParams),
    responses(
        (status = 200, description = "One page of API keys.", body = ApiKeyPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<ApiKeyDto>>> {
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?.map(ApiKeyId::from_uuid);
    let rows = gateway
        .identity
        .list_api_keys(&principal, after, page.fetch_limit())
        .await?;
    let rows: Vec<ApiKeyDto> = rows.into_iter().map(Into::into).collect();
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |key| key.id)?))
}

/// Create an API key
///
/// Answers the key's secret this once, as `secret`. Keys are created by
/// users, not by other keys.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    operation_id = "create_api_key",
    request_body = ApiKeyCreateBody,
    responses(
        (status = 201, description = "The new key, with its secret.", body = CreatedApiKeyDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn create(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<ApiKeyCreateBody>,
) -> ApiResult<(
    StatusCode,
    Extension<RevealsSecret>,
    ApiJson<CreatedApiKeyDto>,
)> {
    let new = NewApiKey {
        name: body.name,
        scopes: body.scopes,
        expires_at: body.expires_at,
    };
    let created = gateway
        .identity
        .create_api_key(&principal, new, &origin)
        .await?;
    Ok((
        StatusCode::CREATED,
        Extension(RevealsSecret),
        ApiJson(created.into()),
    ))
}

/// Revoke an API key
///
/// The key stops working at once; it is kept and listed as revoked.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    operation_id = "revoke_api_key",
    params(("id" = Uuid, Path, description = "The API key's id.")),
    responses(
        (status = 200, description = "The revoked key.", body = ApiKeyDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn revoke(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ApiKeyDto>> {
    let id = id_of::<ApiKeyId>(&id, "API key")?;
    Ok(ApiJson(
        gateway
            .identity
            .revoke_api_key(&principal, id, &origin)
            .await?
            .into(),
    ))
}
