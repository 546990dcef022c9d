//! `/v1/audit-events`: the tenant's audit log, oldest first.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use switchboard_http::{ApiJson, Page, PageQuery};
use switchboard_identity_api::Principal;
use uuid::Uuid;

use crate::Gateway;
use crate::dto::AuditEventDto;
use crate::error::ApiResult;
use crate::openapi::{AuditEventPage, BadRequest, Forbidden, PageParams};
use crate::routes::page_of;

/// List audit events
///
/// The tenant's audit log, oldest first.
#[utoipa::path(
    get,
    path = "/v1/audit-events",
    tag = "audit",
    operation_id = "list_audit_events",
    params(PageParams),
    responses(
        (status = 200, description = "One page of audit events.", body = AuditEventPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<AuditEventDto>>> {
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?;
    let rows = gateway
        .identity
        .list_audit_events(&principal, after, page.fetch_limit())
        .await?;
    let rows: Vec<AuditEventDto> = rows.into_iter().map(Into::into).collect();
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |event| {
        event.id
    })?))
}
