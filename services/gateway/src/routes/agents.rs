//! `/v1/agents/me…`: the agent desktop — the signed-in user's agent state,
//! presence, offers (accept / decline), after-call work, and a WebSocket
//! pushing offers and state changes; and `/v1/queues/stats…`: every
//! queue's live figures, by REST and as a WebSocket stream for wallboards.
//!
//! The agent is the user of the access token (an agent's id is its user
//! id); API keys have no agent. WebSockets authenticate like every route,
//! or, since browsers cannot set headers on a WebSocket, with the access
//! token in the `access_token` query parameter (RFC 6750 §2.3).

use std::time::Duration;

use axum::Extension;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use switchboard_acd::{AgentId, ContactId, Presence};
use switchboard_http::{ApiJson, FieldError, Problem};
use switchboard_identity_api::{Actor, Principal, Role};
use switchboard_routing_api::acd::{Answer, Notice, NoticeEvent, Notices, Operation, Query};
use switchboard_tenancy::Tenant;

use crate::Gateway;
use crate::auth::{Credential, stream_credential_lapsed};
use crate::dto::agents::{
    AgentDto, AgentMessage, ExtendWrapUpBody, OfferDto, PresenceBody, QueueStatsDto,
    QueueStatsListDto, QueueStatsMessage,
};
use crate::error::{ApiError, ApiResult};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, ProblemDoc, Unavailable,
    UnsupportedMediaType,
};
use crate::routes::id_of;

/// How often a socket is pinged, so proxies keep it and dead peers show.
const PING_EVERY: Duration = Duration::from_secs(25);
/// Live queue figures go out at most this often.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// ... and at least this often (waits grow without any event).
const STATS_AT_LEAST_EVERY: Duration = Duration::from_secs(5);

/// The caller's tenant and agent: users only.
fn agent_of(principal: &Principal) -> ApiResult<(Tenant, AgentId)> {
    match &principal.actor {
        Actor::User { id, .. } => Ok((principal.tenant.clone(), AgentId::from_uuid(id.as_uuid()))),
        Actor::ApiKey { .. } => Err(Problem::forbidden(
            "not_an_agent",
            "agent routes act as the signed-in user; an API key is not an agent",
        )
        .into()),
    }
}

/// The caller's tenant and client scope, if it may watch live queue
/// figures: owners, admins, supervisors and quality analysts, and API keys
/// that may read the routing configuration. A client-scoped caller sees its
/// clients' queues only.
fn watcher_of(principal: &Principal) -> ApiResult<Tenant> {
    let allowed = match &principal.actor {
        Actor::User { roles, .. } => roles.iter().any(|role| {
            matches!(
                role,
                Role::Owner | Role::Admin | Role::Supervisor | Role::QualityAnalyst
            )
        }),
        Actor::ApiKey { .. } => principal
            .require(switchboard_identity_api::Permission::ReadRouting)
            .is_ok(),
    };
    if !allowed {
        return Err(Problem::forbidden(
            "forbidden",
            "watching queues takes the supervisor, admin or owner role",
        )
        .into());
    }
    Ok(principal.tenant.clone())
}

async fn agent_view(gateway: &Gateway, tenant: &Tenant, agent: AgentId) -> ApiResult<AgentDto> {
    match gateway
        .routing
        .query(tenant, Query::Agent { agent })
        .await?
    {
        Answer::Agent { view } => Ok(AgentDto::from(view.as_ref())),
        other => Err(unexpected(other)),
    }
}

fn unexpected(answer: Answer) -> ApiError {
    tracing::error!(?answer, "routing answered another query");
    Problem::internal().into()
}

/// Runs `operation` as the agent, then answers with the agent.
async fn act(
    gateway: &Gateway,
    tenant: &Tenant,
    agent: AgentId,
    operation: Operation,
) -> ApiResult<ApiJson<AgentDto>> {
    gateway.routing.execute(tenant, operation).await?;
    Ok(ApiJson(agent_view(gateway, tenant, agent).await?))
}

/// The signed-in agent
///
/// Its state (`offline`, `available`, `not_ready` with a reason, `reserved`
/// while a contact rings, `busy`, `after_call_work` until a time), the
/// presence it asked for, and its offered and connected contacts. 404 if
/// the user has no agent profile.
#[utoipa::path(
    get,
    path = "/v1/agents/me",
    tag = "agents",
    operation_id = "get_my_agent",
    responses(
        (status = 200, description = "The agent.", body = AgentDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn me(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<ApiJson<AgentDto>> {
    let (tenant, agent) = agent_of(&principal)?;
    Ok(ApiJson(agent_view(&gateway, &tenant, agent).await?))
}

/// Set the agent's presence
///
/// `available` (takes contacts), `not_ready` with one of the tenant's
/// reason codes (`/v1/reason-codes`), or
/// `offline`. While a contact rings or is connected, or during after-call
/// work, the new presence applies once the agent is free; going `offline`
/// then is refused. A refused change is a 409 problem whose
/// `current_state` member is the agent's state. A user without an agent
/// profile gets a 404 `agent_profile_missing`: an owner or admin creates
/// the profile with `PUT /v1/agent-profiles/{user_id}`.
#[utoipa::path(
    put,
    path = "/v1/agents/me/presence",
    tag = "agents",
    operation_id = "set_my_presence",
    request_body = PresenceBody,
    responses(
        (status = 200, description = "The agent after the change.", body = AgentDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn set_presence(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<PresenceBody>,
) -> ApiResult<ApiJson<AgentDto>> {
    let (tenant, agent) = agent_of(&principal)?;
    let presence = body
        .presence()
        .map_err(|(field, message)| Problem::validation(vec![FieldError::new(field, message)]))?;
    if let Presence::NotReady { reason } = &presence
        && !gateway
            .routing_config
            .has_reason_code(&principal.tenant, reason.as_ref())
            .await?
    {
        return Err(Problem::validation(vec![FieldError::new(
            "reason",
            format!("{reason:?} is not one of the tenant's reason codes (/v1/reason-codes)"),
        )])
        .into());
    }
    act(
        &gateway,
        &tenant,
        agent,
        Operation::SetPresence { agent, presence },
    )
    .await
}

/// Accept an offered contact
///
/// The contact is connected to the agent. 409 if it is not (or no longer)
/// offered to this agent.
#[utoipa::path(
    post,
    path = "/v1/agents/me/offers/{contact_id}/accept",
    tag = "agents",
    operation_id = "accept_offer",
    params(("contact_id" = Uuid, Path, description = "The offered contact.")),
    responses(
        (status = 200, description = "The agent, now busy with the contact.", body = AgentDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn accept(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(contact): Path<String>,
) -> ApiResult<ApiJson<AgentDto>> {
    let (tenant, agent) = agent_of(&principal)?;
    let contact = id_of::<ContactId>(&contact, "contact")?;
    act(
        &gateway,
        &tenant,
        agent,
        Operation::Accept { agent, contact },
    )
    .await
}

/// Decline an offered contact
///
/// The contact goes back to its place in its queue, and the agent goes not
/// ready with reason `declined`.
#[utoipa::path(
    post,
    path = "/v1/agents/me/offers/{contact_id}/decline",
    tag = "agents",
    operation_id = "decline_offer",
    params(("contact_id" = Uuid, Path, description = "The offered contact.")),
    responses(
        (status = 200, description = "The agent after declining.", body = AgentDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn decline(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Path(contact): Path<String>,
) -> ApiResult<ApiJson<AgentDto>> {
    let (tenant, agent) = agent_of(&principal)?;
    let contact = id_of::<ContactId>(&contact, "contact")?;
    act(
        &gateway,
        &tenant,
        agent,
        Operation::Decline { agent, contact },
    )
    .await
}

/// Extend after-call work
#[utoipa::path(
    post,
    path = "/v1/agents/me/wrap-up/extend",
    tag = "agents",
    operation_id = "extend_wrap_up",
    request_body = ExtendWrapUpBody,
    responses(
        (status = 200, description = "The agent, with its new `until`.", body = AgentDto),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    )
)]
pub(crate) async fn extend_wrap_up(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<ExtendWrapUpBody>,
) -> ApiResult<ApiJson<AgentDto>> {
    let (tenant, agent) = agent_of(&principal)?;
    if !(1..=3600).contains(&body.seconds) {
        return Err(Problem::validation(vec![FieldError::new(
            "seconds",
            "must be between 1 and 3600",
        )])
        .into());
    }
    let by_ms = u64::from(body.seconds) * 1000;
    act(
        &gateway,
        &tenant,
        agent,
        Operation::ExtendWrapUp { agent, by_ms },
    )
    .await
}

/// End after-call work now
#[utoipa::path(
    post,
    path = "/v1/agents/me/wrap-up/end",
    tag = "agents",
    operation_id = "end_wrap_up",
    responses(
        (status = 200, description = "The agent, back to its presence.", body = AgentDto),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn end_wrap_up(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<ApiJson<AgentDto>> {
    let (tenant, agent) = agent_of(&principal)?;
    act(&gateway, &tenant, agent, Operation::EndWrapUp { agent }).await
}

/// The agent's live stream (WebSocket)
///
/// JSON text frames: `{"type":"snapshot","agent":{…}}` first (and again
/// whenever messages may have been lost), then `{"type":"offer","offer":{…}}`
/// when a contact rings, `{"type":"offer_withdrawn","offer":{…}}` when it
/// stops ringing unanswered, and `{"type":"state","from","to","cause","at"}`
/// for every state change. Answer offers with the REST routes.
#[utoipa::path(
    get,
    path = "/v1/agents/me/stream",
    tag = "agents",
    operation_id = "stream_my_agent",
    params(("access_token" = Option<String>, Query, description = "The access token, for clients that cannot send `Authorization` with a WebSocket handshake (RFC 6750 §2.3).")),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket."),
        (status = 426, description = "Upgrade Required: the route is a WebSocket; the request was not a WebSocket handshake.", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn agent_stream(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Extension(Credential(credential)): Extension<Credential>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let (tenant, agent) = agent_of(&principal)?;
    let upgrade = upgrade.map_err(not_a_handshake)?;
    // Subscribed before the snapshot is read, so nothing falls between.
    let notices = gateway.routing.notices(&tenant).await?;
    let snapshot = agent_view(&gateway, &tenant, agent).await?;
    let credential = StreamCredential {
        credential,
        expires_at: principal.expires_at,
    };
    Ok(upgrade.on_upgrade(move |socket| {
        agent_session(
            socket,
            gateway,
            credential,
            (tenant, agent),
            snapshot,
            notices,
        )
    }))
}

/// The credential a stream was opened with, checked again while it is open.
struct StreamCredential {
    credential: String,
    expires_at: Option<chrono::DateTime<Utc>>,
}

impl StreamCredential {
    /// Completes with the reason once the credential no longer admits a
    /// caller for whom `still_admits` holds.
    async fn lapsed(&self, gateway: &Gateway, still_admits: impl Fn(&Principal) -> bool) -> String {
        stream_credential_lapsed(gateway, &self.credential, self.expires_at, still_admits).await
    }
}

/// Closes a stream whose credential lapsed: 1008 policy violation (RFC
/// 6455 §7.4.1), the reason in the close frame (at most 123 bytes).
async fn close_lapsed(socket: &mut WebSocket, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code: close_code::POLICY,
        reason: reason[..end].to_owned().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Closes a stream whose source of notices went away (the routing node it
/// listened to stopped) with 1012 Service Restart (RFC 6455 §7.4, IANA
/// registry): the client reconnects and is served by another node.
async fn close_gone(socket: &mut WebSocket) {
    let frame = CloseFrame {
        code: close_code::RESTART,
        reason: "routing restarted; reconnect".into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// 426 Upgrade Required (RFC 9110 §15.5.22) for a plain request to a
/// WebSocket route.
fn not_a_handshake(rejection: WebSocketUpgradeRejection) -> ApiError {
    Problem::new(
        axum::http::StatusCode::UPGRADE_REQUIRED,
        "websocket_required",
        format!("this route is a WebSocket: open it with a WebSocket handshake ({rejection})"),
    )
    .with_header(
        axum::http::header::UPGRADE,
        axum::http::HeaderValue::from_static("websocket"),
    )
    .into()
}

async fn send_json(socket: &mut WebSocket, message: &impl serde::Serialize) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(error) => {
            tracing::error!(%error, "cannot encode a stream message");
            false
        }
    }
}

async fn agent_session(
    mut socket: WebSocket,
    gateway: Gateway,
    credential: StreamCredential,
    (tenant, agent): (Tenant, AgentId),
    snapshot: AgentDto,
    mut notices: Notices,
) {
    if !send_json(&mut socket, &AgentMessage::Snapshot { agent: snapshot }).await {
        return;
    }
    let lapsed = credential.lapsed(&gateway, |principal| {
        agent_of(principal).is_ok_and(|(of, found)| of.id() == tenant.id() && found == agent)
    });
    tokio::pin!(lapsed);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let messages = tokio::select! {
            reason = &mut lapsed => {
                close_lapsed(&mut socket, &reason).await;
                return;
            }
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
                continue;
            }
            notice = notices.next() => match notice {
                Some(NoticeEvent::Notice(notice)) => agent_messages(&notice, agent),
                Some(NoticeEvent::Gap) => match agent_view(&gateway, &tenant, agent).await {
                    Ok(agent) => vec![AgentMessage::Snapshot { agent }],
                    Err(_) => return,
                },
                // Routing went away: the desktop reconnects.
                None => {
                    close_gone(&mut socket).await;
                    return;
                }
            },
        };
        for mut message in messages {
            if let AgentMessage::Offer { offer } = &mut message {
                let contact = ContactId::from_uuid(offer.contact_id);
                offer.callback_number = gateway
                    .routing
                    .callback_number(&tenant, contact)
                    .await
                    .unwrap_or_default();
            }
            if !send_json(&mut socket, &message).await {
                return;
            }
        }
    }
}

/// What of a notice concerns `agent`, in order.
fn agent_messages(notice: &Notice, agent: AgentId) -> Vec<AgentMessage> {
    let mut messages = Vec::new();
    for offer in notice.withdrawn.iter().filter(|offer| offer.agent == agent) {
        messages.push(AgentMessage::OfferWithdrawn {
            offer: OfferDto::from(offer),
        });
    }
    for offer in notice.offers.iter().filter(|offer| offer.agent == agent) {
        messages.push(AgentMessage::Offer {
            offer: OfferDto::from(offer),
        });
    }
    for change in notice
        .agent_events
        .iter()
        .filter(|change| change.agent == agent)
    {
        messages.push(AgentMessage::State {
            from: (&change.from).into(),
            to: (&change.to).into(),
            cause: change.reason.name().to_owned(),
            at: change.at,
        });
    }
    messages
}

/// The figures of the queues `tenant`'s client scope allows (routing
/// leaves the others out).
async fn queue_stats_of(gateway: &Gateway, tenant: &Tenant) -> ApiResult<QueueStatsListDto> {
    match gateway.routing.query(tenant, Query::QueueStats).await? {
        Answer::QueueStats { queues } => Ok(QueueStatsListDto {
            at: Utc::now(),
            queues: queues.iter().map(QueueStatsDto::from).collect(),
        }),
        other => Err(unexpected(other)),
    }
}

/// Live figures of every queue
///
/// Of every queue the caller may see (a client-scoped caller: its clients'
/// queues). Per queue: contacts waiting, the oldest wait, contacts ringing and
/// connected, and the queue's qualified agents by state.
#[utoipa::path(
    get,
    path = "/v1/queues/stats",
    tag = "queues",
    operation_id = "queue_stats",
    responses(
        (status = 200, description = "Every queue's figures now.", body = QueueStatsListDto),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn queue_stats(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
) -> ApiResult<ApiJson<QueueStatsListDto>> {
    let watcher = watcher_of(&principal)?;
    Ok(ApiJson(queue_stats_of(&gateway, &watcher).await?))
}

/// Live figures of every queue (WebSocket)
///
/// JSON text frames `{"type":"queue_stats","at":…,"queues":[…]}` (the body
/// of `GET /v1/queues/stats`): at once, after every change (at most twice a
/// second), and at least every 5 seconds.
#[utoipa::path(
    get,
    path = "/v1/queues/stats/stream",
    tag = "queues",
    operation_id = "stream_queue_stats",
    params(("access_token" = Option<String>, Query, description = "The access token, for clients that cannot send `Authorization` with a WebSocket handshake (RFC 6750 §2.3).")),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket."),
        (status = 426, description = "Upgrade Required: the route is a WebSocket; the request was not a WebSocket handshake.", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn queue_stats_stream(
    State(gateway): State<Gateway>,
    Extension(principal): Extension<Principal>,
    Extension(Credential(credential)): Extension<Credential>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let watcher = watcher_of(&principal)?;
    let upgrade = upgrade.map_err(not_a_handshake)?;
    let notices = gateway.routing.notices(&watcher).await?;
    let first = queue_stats_of(&gateway, &watcher).await?;
    let credential = StreamCredential {
        credential,
        expires_at: principal.expires_at,
    };
    Ok(upgrade.on_upgrade(move |socket| {
        stats_session(socket, gateway, credential, watcher, first, notices)
    }))
}

async fn stats_session(
    mut socket: WebSocket,
    gateway: Gateway,
    credential: StreamCredential,
    watcher: Tenant,
    first: QueueStatsListDto,
    mut notices: Notices,
) {
    if !send_json(&mut socket, &QueueStatsMessage::QueueStats { stats: first }).await {
        return;
    }
    let lapsed = credential.lapsed(&gateway, |principal| {
        watcher_of(principal).is_ok_and(|found| found == watcher)
    });
    tokio::pin!(lapsed);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_sent = tokio::time::Instant::now();
    let mut dirty = false;
    loop {
        let next_send = if dirty {
            last_sent + STATS_EVERY
        } else {
            last_sent + STATS_AT_LEAST_EVERY
        };
        tokio::select! {
            reason = &mut lapsed => {
                close_lapsed(&mut socket, &reason).await;
                return;
            }
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            notice = notices.next() => match notice {
                Some(_) => dirty = true,
                None => {
                    close_gone(&mut socket).await;
                    return;
                }
            },
            _ = tokio::time::sleep_until(next_send) => {
                let Ok(stats) = queue_stats_of(&gateway, &watcher).await else {
                    return;
                };
                if !send_json(&mut socket, &QueueStatsMessage::QueueStats { stats }).await {
                    return;
                }
                last_sent = tokio::time::Instant::now();
                dirty = false;
            }
        }
    }
}
