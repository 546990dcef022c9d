//! `/v1/trunks`: the tenant's carrier trunks (the edge keeps them). Trunks
//! are telephony settings of the whole tenant, like its numbers' routing:
//! every route, reads too (they show the carrier's addresses and
//! usernames), takes the routing-manage permission (owners, admins; API
//! keys with `full` or `routing:write`), and a credential that is not
//! limited to some client organizations (403 `client_scope`). Passwords
//! are write-only.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use switchboard_http::{ApiJson, Page, PageQuery, Problem};
use switchboard_identity_api::{Permission, Principal};
use switchboard_tenancy::{ClientScope, Tenant, TrunkId};
use uuid::Uuid;

use crate::Gateway;
use crate::dto::trunks::{TrunkBody, TrunkDto};
use crate::error::ApiResult;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, PayloadTooLarge, TrunkPage,
    UnsupportedMediaType,
};
use crate::routes::{id_of, page_of};

/// The caller's tenant, if it may manage trunks.
fn tenant_of(principal: &Principal) -> ApiResult<Tenant> {
    principal.require(Permission::ManageRouting)?;
    if *principal.tenant.clients() != ClientScope::All {
        return Err(Problem::forbidden(
            "client_scope",
            "trunks belong to the whole tenant; a credential limited to some client \
             organizations may not manage them",
        )
        .into());
    }
    Ok(principal.tenant.clone())
}

/// List trunks
///
/// Oldest first, without passwords.
#[utoipa::path(
    get,
    path = "/v1/trunks",
    tag = "trunks",
    operation_id = "list_trunks",
    params(PageParams),
    responses(
        (status = 200, description = "One page of trunks.", body = TrunkPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<TrunkDto>>> {
    let tenant = tenant_of(&principal)?;
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?.map(TrunkId::from_uuid);
    let rows = gateway
        .edge
        .list_trunks(&tenant, after, page.fetch_limit())
        .await?;
    let rows: Vec<TrunkDto> = rows.into_iter().map(Into::into).collect();
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |trunk| {
        trunk.id
    })?))
}

/// Add a trunk
///
/// Inbound, the carrier's requests are admitted when they come from one
/// of `inbound.allowed_sources`, or prove `inbound.username` and
/// `inbound.password` in answer to the edge's 407 challenge (digest,
/// SHA-256 or MD5). Outbound, calls go to `outbound.host` over its
/// transport, answering the carrier's challenges with `outbound.username`
/// and `outbound.password`. Each bad field is named in a 400
/// `validation_failed`; 409 `trunk_name_taken` or `trunk_username_taken`.
#[utoipa::path(
    post,
    path = "/v1/trunks",
    tag = "trunks",
    operation_id = "create_trunk",
    request_body = TrunkBody,
    responses(
        (status = 201, description = "Created, without its passwords.", body = TrunkDto),
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
    ApiJson(body): ApiJson<TrunkBody>,
) -> ApiResult<(StatusCode, ApiJson<TrunkDto>)> {
    let tenant = tenant_of(&principal)?;
    let created = gateway.edge.create_trunk(&tenant, body.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(created.into())))
}

/// Get a trunk
#[utoipa::path(
    get,
    path = "/v1/trunks/{id}",
    tag = "trunks",
    operation_id = "get_trunk",
    params(("id" = Uuid, Path, description = "The trunk's id.")),
    responses(
        (status = 200, description = "The trunk, without its passwords.", body = TrunkDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<TrunkDto>> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<TrunkId>(&id, "trunk")?;
    Ok(ApiJson(gateway.edge.get_trunk(&tenant, id).await?.into()))
}

/// Replace a trunk
///
/// The whole trunk, as for adding one. A password left out keeps the one
/// set before, as long as its username stays.
#[utoipa::path(
    put,
    path = "/v1/trunks/{id}",
    tag = "trunks",
    operation_id = "replace_trunk",
    params(("id" = Uuid, Path, description = "The trunk's id.")),
    request_body = TrunkBody,
    responses(
        (status = 200, description = "The trunk as replaced, without its passwords.", body = TrunkDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn replace(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TrunkBody>,
) -> ApiResult<ApiJson<TrunkDto>> {
    let tenant = tenant_of(&principal)?;
    let id = id_of::<TrunkId>(&id, "trunk")?;
    Ok(ApiJson(
        gateway
            .edge
            .replace_trunk(&tenant, id, body.into())
            .await?
            .into(),
    ))
}

/// Delete a trunk
///
/// Its carrier's requests are no longer admitted through it.
#[utoipa::path(
    delete,
    path = "/v1/trunks/{id}",
    tag = "trunks",
    operation_id = "delete_trunk",
    params(("id" = Uuid, Path, description = "The trunk's id.")),
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
    let id = id_of::<TrunkId>(&id, "trunk")?;
    gateway.edge.delete_trunk(&tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
