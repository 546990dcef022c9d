//! Signup and sessions: `/v1/signup`, `/v1/auth/*`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use switchboard_http::ApiJson;
use switchboard_identity_api::{Principal, SignupRequest};

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{
    AcceptInvitationBody, LoginBody, RefreshBody, SignupBody, SignupDto, TokenBody, TokensDto,
};
use crate::error::ApiResult;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized,
    UnsupportedMediaType,
};

/// Sign a company up
///
/// Creates the tenant and its owner, signed in. The tenant works at once;
/// inviting users waits until the email address is verified
/// (`POST /v1/auth/verify-email` with the token mailed).
#[utoipa::path(
    post,
    path = "/v1/signup",
    tag = "auth",
    operation_id = "signup",
    request_body = SignupBody,
    responses(
        (status = 201, description = "The tenant, its owner, and the owner's tokens.", body = SignupDto),
        (status = 400, response = BadRequest),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = TooManyRequests),
    )
)]
pub(crate) async fn signup(
    State(gateway): State<Gateway>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<SignupBody>,
) -> ApiResult<(StatusCode, ApiJson<SignupDto>)> {
    let address = origin.address.clone().unwrap_or_else(|| "unknown".into());
    gateway
        .limiter
        .check(&format!("signup:{address}"), &gateway.options.signup_limit)
        .await?;
    let outcome = gateway
        .identity
        .signup(
            SignupRequest {
                company: body.company,
                email: body.email,
                password: body.password,
                display_name: body.display_name,
                plan: body.plan,
                time_zone: body.time_zone,
            },
            &origin,
        )
        .await?;
    let answer = SignupDto::new(outcome, gateway.options.expose_verification_token);
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// Log in
///
/// Exchanges a user's credentials for tokens. Failed attempts are
/// throttled per account and address (429).
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    operation_id = "login",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in.", body = TokensDto),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = TooManyRequests),
    )
)]
pub(crate) async fn login(
    State(gateway): State<Gateway>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<ApiJson<TokensDto>> {
    let tokens = gateway
        .identity
        .login(&body.tenant, &body.email, &body.password, &origin)
        .await?;
    Ok(ApiJson(tokens.into()))
}

/// Refresh the tokens
///
/// Exchanges a refresh token for new tokens; the old refresh token stops
/// working. Reusing a spent one ends the whole session.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    operation_id = "refresh",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens.", body = TokensDto),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn refresh(
    State(gateway): State<Gateway>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<ApiJson<TokensDto>> {
    Ok(ApiJson(
        gateway.identity.refresh(&body.refresh_token).await?.into(),
    ))
}

/// Log out
///
/// Ends the session of a refresh token. An unknown or spent token is not
/// an error.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    operation_id = "logout",
    request_body = RefreshBody,
    responses(
        (status = 204, description = "The session is ended."),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn logout(
    State(gateway): State<Gateway>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<StatusCode> {
    gateway.identity.logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End this session
///
/// Ends the session of the access token used (with an API key: nothing to
/// end).
#[utoipa::path(
    delete,
    path = "/v1/auth/session",
    tag = "auth",
    operation_id = "end_session",
    responses(
        (status = 204, description = "The session is ended."),
    )
)]
pub(crate) async fn end_session(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<StatusCode> {
    gateway.identity.logout_session(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verify the email address
///
/// Marks the tenant's email address as verified with the one-time token
/// from signup.
#[utoipa::path(
    post,
    path = "/v1/auth/verify-email",
    tag = "auth",
    operation_id = "verify_email",
    request_body = TokenBody,
    responses(
        (status = 204, description = "Verified."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn verify_email(
    State(gateway): State<Gateway>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<StatusCode> {
    gateway.identity.verify_email(&body.token, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation
///
/// Sets the invited user's password with the invitation token; the user
/// becomes active and is signed in.
#[utoipa::path(
    post,
    path = "/v1/auth/accept-invitation",
    tag = "auth",
    operation_id = "accept_invitation",
    request_body = AcceptInvitationBody,
    responses(
        (status = 200, description = "The user is active and signed in.", body = TokensDto),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn accept_invitation(
    State(gateway): State<Gateway>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<AcceptInvitationBody>,
) -> ApiResult<ApiJson<TokensDto>> {
    let tokens = gateway
        .identity
        .accept_invitation(
            &body.token,
            &body.password,
            body.display_name.as_deref(),
            &origin,
        )
        .await?;
    Ok(ApiJson(tokens.into()))
}
