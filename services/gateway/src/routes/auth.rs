//! Signup and sessions: `/v1/signup`, `/v1/auth/*`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use switchboard_http::ApiJson;
use switchboard_identity::{Principal, SignupRequest};

use crate::Gateway;
use crate::auth::Origin;
use crate::dto::{
    AcceptInvitationBody, LoginBody, RefreshBody, SignupBody, TenantDto, TokenBody, TokensDto,
    UserDto,
};
use crate::error::ApiResult;

pub(crate) async fn signup(
    State(gateway): State<Gateway>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<SignupBody>,
) -> ApiResult<impl IntoResponse> {
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
    let mut answer = json!({
        "tenant": TenantDto::from(outcome.tenant),
        "user": UserDto::from(outcome.owner),
        "tokens": TokensDto::from(outcome.tokens),
    });
    if gateway.options.expose_verification_token {
        answer["email_verification_token"] = json!(outcome.verification_token);
    }
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

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

pub(crate) async fn refresh(
    State(gateway): State<Gateway>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<ApiJson<TokensDto>> {
    Ok(ApiJson(
        gateway.identity.refresh(&body.refresh_token).await?.into(),
    ))
}

pub(crate) async fn logout(
    State(gateway): State<Gateway>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<StatusCode> {
    gateway.identity.logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/auth/session`: ends the session of the access token used.
pub(crate) async fn end_session(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<StatusCode> {
    gateway.identity.logout_session(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn verify_email(
    State(gateway): State<Gateway>,
    Origin(origin): Origin,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<StatusCode> {
    gateway.identity.verify_email(&body.token, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
