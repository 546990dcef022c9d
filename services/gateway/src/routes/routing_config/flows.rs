//! IVR flows (`/v1/flows`): drafts and their published versions.

use super::*;

/// List flows
#[utoipa::path(
    get,
    path = "/v1/flows",
    tag = "routing",
    operation_id = "list_flows",
    params(PageParams),
    responses(
        (status = 200, description = "One page, oldest first.", body = FlowPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<FlowView>>> {
    let tenant = reader(&principal)?;
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?;
    let rows = gateway
        .routing_config
        .list_flows(&tenant, after, page.fetch_limit())
        .await?;
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |flow| {
        flow.item.id
    })?))
}

/// Create a flow
///
/// Saves its draft, validated: unknown node types, dangling edges,
/// unreachable nodes, loops without input, missing prompts, and queues,
/// agents, ring groups or voicemail boxes the tenant does not have are
/// refused naming the node (`definition.nodes.<node>.<field>`). Publish
/// it to take calls.
#[utoipa::path(
    post,
    path = "/v1/flows",
    tag = "routing",
    operation_id = "create_flow",
    request_body = FlowSpec,
    responses(
        (status = 201, description = "Created.", body = FlowDoc),
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
    ApiJson(body): ApiJson<FlowSpec>,
) -> ApiResult<(StatusCode, ApiJson<FlowView>)> {
    let (tenant, config) = manager(&gateway, &principal)?;
    let created = config.create_flow(&tenant, body).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Get a flow
#[utoipa::path(
    get,
    path = "/v1/flows/{id}",
    tag = "routing",
    operation_id = "get_flow",
    params(("id" = Uuid, Path, description = "The flow's id.")),
    responses(
        (status = 200, description = "Found.", body = FlowDoc),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<FlowView>> {
    let tenant = reader(&principal)?;
    let id = id_of::<Uuid>(&id, "flow")?;
    Ok(ApiJson(gateway.routing_config.flow(&tenant, id).await?))
}

/// Replace a flow's draft
///
/// Published versions do not change.
#[utoipa::path(
    put,
    path = "/v1/flows/{id}",
    tag = "routing",
    operation_id = "replace_flow",
    params(("id" = Uuid, Path, description = "The flow's id.")),
    request_body = FlowSpec,
    responses(
        (status = 200, description = "Replaced.", body = FlowDoc),
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
    ApiJson(body): ApiJson<FlowSpec>,
) -> ApiResult<ApiJson<FlowView>> {
    let (tenant, config) = manager(&gateway, &principal)?;
    let id = id_of::<Uuid>(&id, "flow")?;
    Ok(ApiJson(config.replace_flow(&tenant, id, body).await?))
}

/// Delete a flow
///
/// With its versions; 409 `in_use` while a rule or a queue sends
/// contacts to it.
#[utoipa::path(
    delete,
    path = "/v1/flows/{id}",
    tag = "routing",
    operation_id = "delete_flow",
    params(("id" = Uuid, Path, description = "The flow's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn delete(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (tenant, config) = manager(&gateway, &principal)?;
    let id = id_of::<Uuid>(&id, "flow")?;
    config.delete::<FlowSpec>(&tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publish a flow's draft
///
/// As the next immutable version (1, 2, …); new calls start on it,
/// calls in progress keep theirs.
#[utoipa::path(
    post,
    path = "/v1/flows/{id}/versions",
    tag = "routing",
    operation_id = "publish_flow",
    params(("id" = Uuid, Path, description = "The flow's id.")),
    responses(
        (status = 201, description = "The new version.", body = FlowVersionDoc),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn publish(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, ApiJson<FlowVersionView>)> {
    let (tenant, config) = manager(&gateway, &principal)?;
    let id = id_of::<Uuid>(&id, "flow")?;
    let version = config
        .publish_flow(&tenant, id, &changed_by(&principal))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(version)))
}

/// List a flow's published versions
#[utoipa::path(
    get,
    path = "/v1/flows/{id}/versions",
    tag = "routing",
    operation_id = "list_flow_versions",
    params(("id" = Uuid, Path, description = "The flow's id."), PageParams),
    responses(
        (status = 200, description = "One page, oldest first.", body = FlowVersionPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn versions(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<FlowVersionView>>> {
    let tenant = reader(&principal)?;
    let id = id_of::<Uuid>(&id, "flow")?;
    let page = page_of(query)?;
    let after = page.after::<i32>()?;
    let rows = gateway
        .routing_config
        .list_flow_versions(&tenant, id, after, page.fetch_limit())
        .await?;
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |version| {
        version.version
    })?))
}

/// Get a published version of a flow
#[utoipa::path(
    get,
    path = "/v1/flows/{id}/versions/{version}",
    tag = "routing",
    operation_id = "get_flow_version",
    params(
        ("id" = Uuid, Path, description = "The flow's id."),
        ("version" = i32, Path, description = "The version number."),
    ),
    responses(
        (status = 200, description = "Found.", body = FlowVersionDoc),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn version(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<ApiJson<FlowVersionView>> {
    let tenant = reader(&principal)?;
    let id = id_of::<Uuid>(&id, "flow")?;
    let version = id_of::<i32>(&version, "flow version")?;
    Ok(ApiJson(
        gateway
            .routing_config
            .flow_version(&tenant, id, version)
            .await?,
    ))
}
