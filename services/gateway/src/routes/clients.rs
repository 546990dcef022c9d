//! `/v1/clients`: client organizations of an outsourcer tenant.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use switchboard_http::{ApiJson, Page, PageQuery};
use switchboard_identity_api::{NewClient, Principal};
use switchboard_tenancy::ClientId;
use uuid::Uuid;

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{ClientCreateBody, ClientDto};
use crate::error::ApiResult;
use crate::openapi::{
    BadRequest, ClientPage, Conflict, Forbidden, NotFound, PageParams, PayloadTooLarge,
    UnsupportedMediaType,
};
use crate::routes::{id_of, page_of};

/// List client organizations
///
/// Those the caller may see (all of them, or a client-scoped user's own),
/// oldest first.
#[utoipa::path(
    get,
    path = "/v1/clients",
    tag = "clients",
    operation_id = "list_clients",
    params(PageParams),
    responses(
        (status = 200, description = "One page of client organizations.", body = ClientPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
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

/// Create a client organization
#[utoipa::path(
    post,
    path = "/v1/clients",
    tag = "clients",
    operation_id = "create_client",
    request_body = ClientCreateBody,
    responses(
        (status = 201, description = "The new client organization.", body = ClientDto),
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
    Origin(origin): Origin,
    ApiJson(body): ApiJson<ClientCreateBody>,
) -> ApiResult<impl IntoResponse> {
    let client = gateway
        .identity
        .create_client(&principal, NewClient { name: body.name }, &origin)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(ClientDto::from(client))))
}

/// Get a client organization
#[utoipa::path(
    get,
    path = "/v1/clients/{id}",
    tag = "clients",
    operation_id = "get_client",
    params(("id" = Uuid, Path, description = "The client organization's id.")),
    responses(
        (status = 200, description = "The client organization.", body = ClientDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
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

/// Delete a client organization
#[utoipa::path(
    delete,
    path = "/v1/clients/{id}",
    tag = "clients",
    operation_id = "delete_client",
    params(("id" = Uuid, Path, description = "The client organization's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
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
