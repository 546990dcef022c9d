//! `/v1/users/{id}/sip-account`: the SIP account a user's phone registers
//! with (the edge keeps it). A user manages their own; managing someone
//! else's takes the right to manage users and sight of that user (a
//! client-scoped admin reaches the users of their clients only).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use switchboard_http::{ApiJson, RevealsSecret};
use switchboard_identity_api::{Actor, Permission, Principal, UserStatus};
use switchboard_rpc::ServiceError;
use switchboard_tenancy::UserId;

use crate::Gateway;
use crate::dto::sip_accounts::{SipAccountDto, SipCredentialsDto};
use crate::error::ApiResult;
use crate::openapi::{Conflict, Forbidden, NotFound};
use crate::routes::id_of;

/// Whether `principal` may act on `user`'s SIP account, and (for issuing)
/// whether that user is active: their own always; another's with
/// [`Permission::ManageUsers`] if they can see that user.
async fn check(
    gateway: &Gateway,
    principal: &Principal,
    user: UserId,
    issuing: bool,
) -> ApiResult<()> {
    if let Actor::User { id, .. } = &principal.actor
        && *id == user
    {
        return Ok(());
    }
    principal.require(Permission::ManageUsers)?;
    let view = gateway.identity.get_user(principal, user).await?;
    if issuing && view.status != UserStatus::Active {
        return Err(ServiceError::conflict(
            "user_not_active",
            "the user is not active: enable them before giving them a SIP account",
        )
        .into());
    }
    Ok(())
}

/// Get a user's SIP account
///
/// Without its password, which is shown only when issued.
#[utoipa::path(
    get,
    path = "/v1/users/{id}/sip-account",
    tag = "users",
    operation_id = "get_sip_account",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The SIP account.", body = SipAccountDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<SipAccountDto>> {
    let user = id_of::<UserId>(&id, "user")?;
    check(&gateway, &principal, user, false).await?;
    let account = gateway
        .edge
        .get_sip_account(&principal.tenant, user)
        .await?;
    Ok(ApiJson(account.into()))
}

/// Issue a user's SIP account
///
/// Creates the account, or gives it a new password (the username stays,
/// and phones with the old password stop registering). The password is
/// in this answer only. 503 with `Retry-After` for a tenant created a
/// moment ago, whose SIP domain has not reached the edge yet.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/sip-account",
    tag = "users",
    operation_id = "issue_sip_account",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The account's credentials, with its password.", body = SipCredentialsDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn issue(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<(Extension<RevealsSecret>, ApiJson<SipCredentialsDto>)> {
    let user = id_of::<UserId>(&id, "user")?;
    check(&gateway, &principal, user, true).await?;
    let issued = gateway
        .edge
        .issue_sip_account(&principal.tenant, user)
        .await?;
    Ok((Extension(RevealsSecret), ApiJson(issued.into())))
}

/// Revoke a user's SIP account
///
/// Its phones can no longer register.
#[utoipa::path(
    delete,
    path = "/v1/users/{id}/sip-account",
    tag = "users",
    operation_id = "revoke_sip_account",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn revoke(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let user = id_of::<UserId>(&id, "user")?;
    check(&gateway, &principal, user, false).await?;
    gateway
        .edge
        .revoke_sip_account(&principal.tenant, user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
