//! `/v1/users`: users, invitations, roles and client scopes.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use switchboard_http::{ApiJson, Page, PageQuery, RevealsSecret};
use switchboard_identity_api::{NewUser, Principal, UserPatch};
use switchboard_tenancy::{ClientId, UserId};
use uuid::Uuid;

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{CreatedUserDto, InviteBody, UserCreateBody, UserDto, UserPatchBody};
use crate::error::ApiResult;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, PayloadTooLarge, UnsupportedMediaType,
    UserPage,
};
use crate::routes::{id_of, page_of};

fn client_ids(list: Option<Vec<Uuid>>) -> Option<Vec<ClientId>> {
    list.map(|ids| ids.into_iter().map(ClientId::from_uuid).collect())
}

/// List users
///
/// Those the caller may see (a client-scoped user sees the users of its
/// clients), oldest first.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    operation_id = "list_users",
    params(PageParams),
    responses(
        (status = 200, description = "One page of users.", body = UserPage),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<ApiJson<Page<UserDto>>> {
    let page = page_of(query)?;
    let after = page.after::<Uuid>()?.map(UserId::from_uuid);
    let rows = gateway
        .identity
        .list_users(&principal, after, page.fetch_limit())
        .await?;
    let rows: Vec<UserDto> = rows.into_iter().map(Into::into).collect();
    Ok(ApiJson(Page::from_rows(rows, page.limit(), |user| {
        user.id
    })?))
}

/// Get a user
#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "get_user",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The user.", body = UserDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<UserDto>> {
    let id = id_of::<UserId>(&id, "user")?;
    Ok(ApiJson(
        gateway.identity.get_user(&principal, id).await?.into(),
    ))
}

/// Create a user
///
/// With a `password` the user is active at once; without, the user is
/// invited and the answer carries the invitation. Agents and supervisors
/// take a seat of the plan (409 `seat_limit_reached` when none is left).
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    operation_id = "create_user",
    request_body = UserCreateBody,
    responses(
        (status = 201, description = "The new user (and the invitation when invited).", body = CreatedUserDto),
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
    ApiJson(body): ApiJson<UserCreateBody>,
) -> ApiResult<(
    StatusCode,
    Option<Extension<RevealsSecret>>,
    ApiJson<CreatedUserDto>,
)> {
    let invited = body.password.is_none();
    let new = NewUser {
        email: body.email,
        display_name: body.display_name,
        roles: body.roles,
        clients: client_ids(body.clients),
        password: body.password,
    };
    let (user, invitation) = gateway
        .identity
        .create_user(&principal, new, &origin)
        .await?;
    let answer = CreatedUserDto {
        user: user.into(),
        invitation: invitation.filter(|_| invited).map(Into::into),
    };
    let secret = answer
        .invitation
        .is_some()
        .then_some(Extension(RevealsSecret));
    Ok((StatusCode::CREATED, secret, ApiJson(answer)))
}

/// Invite a user
///
/// Creates a user without a password, who sets one with the invitation
/// token (`POST /v1/auth/accept-invitation`). Takes a verified email
/// address (403 `email_unverified`).
#[utoipa::path(
    post,
    path = "/v1/users/invite",
    tag = "users",
    operation_id = "invite_user",
    request_body = InviteBody,
    responses(
        (status = 201, description = "The invited user and the invitation.", body = CreatedUserDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn invite(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<InviteBody>,
) -> ApiResult<(
    StatusCode,
    Extension<RevealsSecret>,
    ApiJson<CreatedUserDto>,
)> {
    let new = NewUser {
        email: body.email,
        display_name: body.display_name,
        roles: body.roles,
        clients: client_ids(body.clients),
        password: None,
    };
    let (user, invitation) = gateway
        .identity
        .create_user(&principal, new, &origin)
        .await?;
    let answer = CreatedUserDto {
        user: user.into(),
        invitation: invitation.map(Into::into),
    };
    Ok((
        StatusCode::CREATED,
        Extension(RevealsSecret),
        ApiJson(answer),
    ))
}

/// Change a user
///
/// Changes the name, roles, status (`active` / `disabled`) or client
/// scope. Only an owner may change an owner; the last active owner stays.
#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "update_user",
    params(("id" = Uuid, Path, description = "The user's id.")),
    request_body = UserPatchBody,
    responses(
        (status = 200, description = "The changed user.", body = UserDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn update(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatchBody>,
) -> ApiResult<ApiJson<UserDto>> {
    let id = id_of::<UserId>(&id, "user")?;
    let patch = UserPatch {
        display_name: body.display_name,
        roles: body.roles,
        status: body.status,
        clients: body.clients.map(client_ids),
    };
    Ok(ApiJson(
        gateway
            .identity
            .update_user(&principal, id, patch, &origin)
            .await?
            .into(),
    ))
}

/// Delete a user
///
/// Frees the user's seat. The last active owner cannot be deleted (409
/// `last_owner`).
#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "delete_user",
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
    Origin(origin): Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = id_of::<UserId>(&id, "user")?;
    gateway
        .identity
        .delete_user(&principal, id, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
