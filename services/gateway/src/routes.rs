//! The `/v1` route table, and what every handler shares.

mod agents;
mod api_keys;
mod audit;
mod auth;
mod clients;
mod routing_config;
mod sip_accounts;
mod tenant;
mod trunks;
mod users;
mod webhooks;

use std::str::FromStr;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::{Extension, Router, middleware};
use switchboard_http::{BodyLimit, FieldError, PageQuery, PageRequest, Problem, idempotency};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::Gateway;
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::openapi;

/// The `/v1` routes and their OpenAPI document, built from one table: a
/// route is added with `routes!(handler)`, which takes the method and path
/// from the handler's `#[utoipa::path]` and documents it in the same step,
/// so nothing is served that the document does not show (one `routes!` per
/// path: it registers its handlers on every path it is given).
pub(crate) fn router(gateway: Gateway) -> (Router, OpenApi) {
    let public = table([
        routes!(auth::signup),
        routes!(auth::login),
        routes!(auth::refresh),
        routes!(auth::logout),
        routes!(auth::verify_email),
        routes!(auth::accept_invitation),
    ]);
    let authenticated = table([
        routes!(tenant::get, tenant::update),
        routes!(clients::list, clients::create),
        routes!(clients::get, clients::delete),
        routes!(users::list, users::create),
        routes!(users::invite),
        routes!(users::get, users::update, users::delete),
        routes!(sip_accounts::get, sip_accounts::issue, sip_accounts::revoke),
        routes!(api_keys::list, api_keys::create),
        routes!(api_keys::revoke),
        routes!(audit::list),
        routes!(webhooks::list, webhooks::create),
        routes!(webhooks::get, webhooks::update, webhooks::delete),
        routes!(webhooks::rotate_secret),
        routes!(webhooks::deliveries),
        routes!(webhooks::resend),
        routes!(trunks::list, trunks::create),
        routes!(trunks::get, trunks::replace, trunks::delete),
        routes!(auth::end_session),
        routes!(agents::me),
        routes!(agents::set_presence),
        routes!(agents::accept),
        routes!(agents::decline),
        routes!(agents::extend_wrap_up),
        routes!(agents::end_wrap_up),
        routes!(agents::agent_stream),
        routes!(agents::queue_stats),
        routes!(agents::queue_stats_stream),
    ]);
    let authenticated = authenticated.merge(routing_table());
    let mut authenticated = authenticated
        // Runs after authentication (layers run outside-in: last added first).
        .layer(middleware::from_fn_with_state(
            gateway.idempotency.clone(),
            idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            gateway.clone(),
            authenticate,
        ));
    // The document shows what the middleware adds where it is layered:
    // security, 401/403/429, rate-limit headers and `Idempotency-Key` on
    // every POST here; no credential on the public routes, which take no
    // `Idempotency-Key` (their callers are anonymous, their answers
    // credentials); 5xx on all, below.
    openapi::authenticated(authenticated.get_openapi_mut());
    openapi::idempotent(authenticated.get_openapi_mut());
    let mut public = public;
    openapi::public(public.get_openapi_mut());
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::base())
        .merge(public)
        .merge(authenticated)
        .layer(Extension(BodyLimit(gateway.options.body_limit)))
        .split_for_parts();
    openapi::common(&mut document);
    (router.with_state(gateway), document)
}

/// The routing configuration's routes (`routes/routing_config.rs` and
/// `routes/routing_config/`).
fn routing_table() -> OpenApiRouter<Gateway> {
    use routing_config::*;
    table([
        routes!(numbers::list, numbers::create),
        routes!(numbers::get, numbers::replace, numbers::delete),
        routes!(schedules::list, schedules::create),
        routes!(schedules::get, schedules::replace, schedules::delete),
        routes!(inbound_rules::list, inbound_rules::create),
        routes!(
            inbound_rules::get,
            inbound_rules::replace,
            inbound_rules::delete
        ),
        routes!(inbound_rules::forced_mode),
        routes!(flows::list, flows::create),
        routes!(flows::get, flows::replace, flows::delete),
        routes!(flows::versions, flows::publish),
        routes!(flows::version),
        routes!(queues::list, queues::create),
        routes!(queues::get, queues::replace, queues::delete),
        routes!(skills::list, skills::create),
        routes!(skills::get, skills::replace, skills::delete),
        routes!(agent_profiles::list),
        routes!(
            agent_profiles::get,
            agent_profiles::put,
            agent_profiles::delete
        ),
        routes!(agent_groups::list, agent_groups::create),
        routes!(
            agent_groups::get,
            agent_groups::replace,
            agent_groups::delete
        ),
        routes!(ring_groups::list, ring_groups::create),
        routes!(ring_groups::get, ring_groups::replace, ring_groups::delete),
        routes!(voicemail_boxes::list, voicemail_boxes::create),
        routes!(
            voicemail_boxes::get,
            voicemail_boxes::replace,
            voicemail_boxes::delete
        ),
        routes!(outbound_rules::list, outbound_rules::create),
        routes!(
            outbound_rules::get,
            outbound_rules::replace,
            outbound_rules::delete
        ),
        routes!(reason_codes::list, reason_codes::create),
        routes!(
            reason_codes::get,
            reason_codes::replace,
            reason_codes::delete
        ),
    ])
}

/// A router of documented routes only (no `.route(…)` way in).
fn table<const N: usize>(routes: [UtoipaMethodRouter<Gateway>; N]) -> OpenApiRouter<Gateway> {
    routes
        .into_iter()
        .fold(OpenApiRouter::new(), OpenApiRouter::routes)
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
