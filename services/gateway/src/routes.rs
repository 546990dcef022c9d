//! The `/v1` route table, and what every handler shares.

mod api_keys;
mod audit;
mod auth;
mod clients;
mod tenant;
mod users;

use std::str::FromStr;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::{get, post};
use axum::{Extension, Router, middleware};
use switchboard_http::{BodyLimit, FieldError, PageQuery, PageRequest, Problem, idempotency};

use crate::Gateway;
use crate::auth::authenticate;
use crate::error::ApiError;

pub(crate) fn router(gateway: Gateway) -> Router {
    let public = Router::new()
        .route("/v1/signup", post(auth::signup))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/verify-email", post(auth::verify_email))
        .route("/v1/auth/accept-invitation", post(auth::accept_invitation));
    let authenticated = Router::new()
        .route("/v1/tenant", get(tenant::get).patch(tenant::update))
        .route("/v1/clients", get(clients::list).post(clients::create))
        .route(
            "/v1/clients/{id}",
            get(clients::get).delete(clients::delete),
        )
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/invite", post(users::invite))
        .route(
            "/v1/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/v1/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/v1/api-keys/{id}", axum::routing::delete(api_keys::revoke))
        .route("/v1/audit-events", get(audit::list))
        .route("/v1/auth/session", axum::routing::delete(auth::end_session))
        // Runs after authentication (layers run outside-in: last added first).
        .layer(middleware::from_fn_with_state(
            gateway.idempotency.clone(),
            idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            gateway.clone(),
            authenticate,
        ));
    let public = public.layer(middleware::from_fn_with_state(
        gateway.idempotency.clone(),
        idempotency,
    ));
    public
        .merge(authenticated)
        .layer(Extension(BodyLimit(gateway.options.body_limit)))
        .with_state(gateway)
}

/// The checked page of a list request; a malformed query is a 400 problem.
pub(crate) fn page_of(
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<PageRequest, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        Problem::validation(vec![FieldError::new("query", rejection.body_text())])
    })?;
    Ok(PageRequest::from_query(query.limit, query.cursor)?)
}

/// An id from the path. A malformed id is "not found", like another
/// tenant's: the answer never tells ids apart.
pub(crate) fn id_of<T: FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError(Problem::not_found(format!("{what} not found"))))
}
