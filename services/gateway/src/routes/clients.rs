//! `/v1/clients`: client organizations of an outsourcer tenant.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use switchboard_http::{ApiJson, Page, PageQuery};
use switchboard_identity::{NewClient, Principal};
use switchboard_tenancy::ClientId;
use uuid::Uuid;

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{ClientCreateBody, ClientDto};
use crate::error::ApiResult;
use crate::routes::{id_of, page_of};

pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<ClientDto>>> {
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?.map(ClientId::from_uuid);
    let rows = gateway
        .identity
        .list_clients(&principal, after, page.fetch_limit())
        .await?;
    let rows: Vec<ClientDto> = rows.into_iter().map(Into::into).collect();
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |client| {
        client.id
    })?))
}

pub(crate) async fn create(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<ClientCreateBody>,
) -> ApiResult<impl IntoResponse> {
    let client = gateway
        .identity
        .create_client(&principal, NewClient { name: body.name }, &origin)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(ClientDto::from(client))))
}

pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ClientDto>> {
    let id = id_of::<ClientId>(&id, "client organization")?;
    Ok(ApiJson(
        gateway.identity.get_client(&principal, id).await?.into(),
    ))
}

pub(crate) async fn delete(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = id_of::<ClientId>(&id, "client organization")?;
    gateway
        .identity
        .delete_client(&principal, id, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
