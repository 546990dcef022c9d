//! Inbound rules (`/v1/inbound-rules`), with their forced mode.

use super::*;

/// List inbound rules
#[utoipa::path(
    get,
    path = "/v1/inbound-rules",
    tag = "routing",
    operation_id = "list_inbound_rules",
    params(PageParams),
    responses(
        (status = 200, description = "One page, oldest first.", body = InboundRulePage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<RuleView>>> {
    let tenant = reader(&principal)?;
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?;
    let rows = gateway
        .routing_config
        .list_rules(&tenant, after, page.fetch_limit())
        .await?;
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |rule| {
        rule.item.id
    })?))
}

/// Create an inbound rule
///
/// A next step per schedule status (open, closed, holiday): a flow (its
/// latest published version), a queue, an agent, a ring group, a
/// voicemail box, an external number or a hang-up with a message.
#[utoipa::path(
    post,
    path = "/v1/inbound-rules",
    tag = "routing",
    operation_id = "create_inbound_rule",
    request_body = InboundRuleSpec,
    responses(
        (status = 201, description = "Created.", body = InboundRuleDoc),
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
    ApiJson(body): ApiJson<InboundRuleSpec>,
) -> ApiResult<(StatusCode, ApiJson<RuleView>)> {
    let (tenant, config) = manager(&gateway, &principal)?;
    let created = config.create_rule(&tenant, body).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Get an inbound rule
#[utoipa::path(
    get,
    path = "/v1/inbound-rules/{id}",
    tag = "routing",
    operation_id = "get_inbound_rule",
    params(("id" = Uuid, Path, description = "The rule's id.")),
    responses(
        (status = 200, description = "Found.", body = InboundRuleDoc),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<RuleView>> {
    let tenant = reader(&principal)?;
    let id = id_of::<Uuid>(&id, "inbound rule")?;
    Ok(ApiJson(gateway.routing_config.rule(&tenant, id).await?))
}

/// Replace an inbound rule
///
/// Its forced mode, if set, stays.
#[utoipa::path(
    put,
    path = "/v1/inbound-rules/{id}",
    tag = "routing",
    operation_id = "replace_inbound_rule",
    params(("id" = Uuid, Path, description = "The rule's id.")),
    request_body = InboundRuleSpec,
    responses(
        (status = 200, description = "Replaced.", body = InboundRuleDoc),
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
    ApiJson(body): ApiJson<InboundRuleSpec>,
) -> ApiResult<ApiJson<RuleView>> {
    let (tenant, config) = manager(&gateway, &principal)?;
    let id = id_of::<Uuid>(&id, "inbound rule")?;
    Ok(ApiJson(config.replace_rule(&tenant, id, body).await?))
}

/// Delete an inbound rule
///
/// 409 `in_use` while a number is bound to it.
#[utoipa::path(
    delete,
    path = "/v1/inbound-rules/{id}",
    tag = "routing",
    operation_id = "delete_inbound_rule",
    params(("id" = Uuid, Path, description = "The rule's id.")),
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
    let id = id_of::<Uuid>(&id, "inbound rule")?;
    config.delete::<InboundRuleSpec>(&tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set or clear an inbound rule's forced mode
///
/// `closed`, `open` or `holiday` take that outcome of the rule, and
/// `destination` sends every call to `destination`, whatever the
/// schedule says, until mode `none` clears it. Who set it and when are
/// kept with it and in the audit log. Supervisors may do this.
#[utoipa::path(
    post,
    path = "/v1/inbound-rules/{id}/forced-mode",
    tag = "routing",
    operation_id = "set_inbound_rule_forced_mode",
    params(("id" = Uuid, Path, description = "The rule's id.")),
    request_body = ForcedModeSpec,
    responses(
        (status = 200, description = "The rule with its forced mode.", body = InboundRuleDoc),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn forced_mode(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ForcedModeSpec>,
) -> ApiResult<ApiJson<RuleView>> {
    principal.require(Permission::ForceRoutingMode)?;
    let tenant = principal.tenant.clone();
    let id = id_of::<Uuid>(&id, "inbound rule")?;
    let rule = gateway
        .routing_config
        .set_forced_mode(&tenant, id, body, &changed_by(&principal))
        .await?;
    Ok(ApiJson(rule))
}
