//! `/v1/users`: users, invitations, roles and client scopes.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use switchboard_http::{ApiJson, Page, PageQuery};
use switchboard_identity::{NewUser, Principal, UserPatch};
use switchboard_tenancy::{ClientId, UserId};
use uuid::Uuid;

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{InviteBody, UserCreateBody, UserDto, UserPatchBody};
use crate::error::ApiResult;
use crate::routes::{id_of, page_of};

fn client_ids(list: Option<Vec<Uuid>>) -> Option<Vec<ClientId>> {
    list.map(|ids| ids.into_iter().map(ClientId::from_uuid).collect())
}

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

pub(crate) async fn create(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<UserCreateBody>,
) -> ApiResult<impl IntoResponse> {
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
    let mut answer = json!(UserDto::from(user));
    if let (true, Some(invitation)) = (invited, invitation) {
        answer["invitation"] =
            json!({ "token": invitation.token, "expires_at": invitation.expires_at });
    }
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// `POST /v1/users/invite`: a user without a password, who sets one with
/// the invitation token.
pub(crate) async fn invite(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<InviteBody>,
) -> ApiResult<impl IntoResponse> {
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
    let mut answer = json!(UserDto::from(user));
    if let Some(invitation) = invitation {
        answer["invitation"] =
            json!({ "token": invitation.token, "expires_at": invitation.expires_at });
    }
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

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
