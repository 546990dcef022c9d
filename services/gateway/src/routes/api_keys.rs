//! `/v1/api-keys`: keys for integrations.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use switchboard_http::{ApiJson, Page, PageQuery};
use switchboard_identity::{NewApiKey, Principal};
use switchboard_tenancy::ApiKeyId;
use uuid::Uuid;

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{ApiKeyCreateBody, ApiKeyDto};
use crate::error::ApiResult;
use crate::routes::{id_of, page_of};

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

/// Answers the key's secret this once, as `secret`.
pub(crate) async fn create(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<ApiKeyCreateBody>,
) -> ApiResult<impl IntoResponse> {
    let new = NewApiKey {
        name: body.name,
        scopes: body.scopes,
        expires_at: body.expires_at,
    };
    let created = gateway
        .identity
        .create_api_key(&principal, new, &origin)
        .await?;
    let mut answer = json!(ApiKeyDto::from(created.key));
    answer["secret"] = json!(created.secret);
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// `DELETE /v1/api-keys/{id}`: revokes the key (kept, listed as revoked).
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
