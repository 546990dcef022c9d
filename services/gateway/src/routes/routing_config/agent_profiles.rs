//! Agent profiles (`/v1/agent-profiles/{id}`): keyed by their user's id,
//! created or replaced with one `PUT`.

use super::*;

/// List agent profiles
#[utoipa::path(
    get,
    path = "/v1/agent-profiles",
    tag = "routing",
    operation_id = "list_agent_profiles",
    params(PageParams),
    responses(
        (status = 200, description = "One page, oldest first.", body = AgentProfilePage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<Item<AgentProfileSpec>>>> {
    let tenant = reader(&principal)?;
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?;
    let rows = gateway
        .routing_config
        .list::<AgentProfileSpec>(&tenant, after, page.fetch_limit())
        .await?;
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |item| {
        item.id
    })?))
}

/// Get a user's agent profile
#[utoipa::path(
    get,
    path = "/v1/agent-profiles/{id}",
    tag = "routing",
    operation_id = "get_agent_profile",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "Found.", body = AgentProfileDoc),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Item<AgentProfileSpec>>> {
    let tenant = reader(&principal)?;
    let id = id_of::<Uuid>(&id, "agent profile")?;
    Ok(ApiJson(
        gateway
            .routing_config
            .get::<AgentProfileSpec>(&tenant, id)
            .await?,
    ))
}

/// Create or replace a user's agent profile
///
/// Skills with proficiency (1 to 10), capacity per channel, whether a
/// call blocks the other channels, agent groups. The agent serves the
/// client organizations its user is limited to.
#[utoipa::path(
    put,
    path = "/v1/agent-profiles/{id}",
    tag = "routing",
    operation_id = "put_agent_profile",
    params(("id" = Uuid, Path, description = "The user's id.")),
    request_body = AgentProfileSpec,
    responses(
        (status = 200, description = "Replaced.", body = AgentProfileDoc),
        (status = 201, description = "Created.", body = AgentProfileDoc),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn put(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AgentProfileSpec>,
) -> ApiResult<(StatusCode, ApiJson<Item<AgentProfileSpec>>)> {
    let (tenant, config) = manager(&gateway, &principal)?;
    let id = id_of::<Uuid>(&id, "user")?;
    let (item, created) = config.put_agent_profile(&tenant, id, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(item)))
}

/// Delete a user's agent profile
#[utoipa::path(
    delete,
    path = "/v1/agent-profiles/{id}",
    tag = "routing",
    operation_id = "delete_agent_profile",
    params(("id" = Uuid, Path, description = "The user's id.")),
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
    let id = id_of::<Uuid>(&id, "agent profile")?;
    config.delete::<AgentProfileSpec>(&tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
