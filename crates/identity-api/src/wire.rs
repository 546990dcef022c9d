//! The API's values as `switchboard.identity.v1` messages and back, for
//! [`RemoteIdentity`](crate::RemoteIdentity) here and identity's gRPC
//! server: one place, so both sides agree.
//!
//! Encoding cannot fail. Decoding fails with a [`Malformed`] naming the
//! field: the server answers it as a validation error of the request,
//! the client as an internal error (a peer answering nonsense is a bug).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use switchboard_proto::identity::v1 as pb;
use switchboard_rpc::ServiceError;
use switchboard_tenancy::{ApiKeyId, ClientId, ClientScope, SessionId, Tenant, TenantId, UserId};

use crate::domain::{ApiScope, Role};
use crate::inputs::{
    NewApiKey, NewClient, NewUser, RequestOrigin, SignupRequest, TenantPatch, UserPatch,
};
use crate::principal::{Actor, Principal, RateLimits};
use crate::views::{
    ApiKeyView, AuditEventView, ClientView, CreatedApiKey, Invitation, SignupOutcome, TenantView,
    Tokens, UserView,
};

/// A message field that does not hold what it must.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct Malformed {
    pub field: &'static str,
    pub message: String,
}

impl Malformed {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// As a request's fault (server side).
    pub fn into_request_error(self) -> ServiceError {
        ServiceError::field(self.field, self.message)
    }

    /// As a peer's fault (client side).
    pub fn into_answer_error(self) -> ServiceError {
        ServiceError::internal(format!("malformed identity answer: {self}"))
    }
}

type Decoded<T> = Result<T, Malformed>;

pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A time that may be absent.
pub fn optional_time(at: Option<Timestamp>, field: &'static str) -> Decoded<Option<DateTime<Utc>>> {
    at.map(|at| {
        u32::try_from(at.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
            .ok_or_else(|| Malformed::new(field, "is not a valid time"))
    })
    .transpose()
}

/// A time that must be present.
pub fn time(at: Option<Timestamp>, field: &'static str) -> Decoded<DateTime<Utc>> {
    optional_time(at, field)?.ok_or_else(|| Malformed::new(field, "is required"))
}

/// An id (or other value parsed from text).
pub fn parse<T: FromStr>(text: &str, field: &'static str) -> Decoded<T> {
    text.parse()
        .map_err(|_| Malformed::new(field, format!("{text:?} is not valid here")))
}

/// An id or nothing (an empty string).
pub fn optional<T: FromStr>(text: &str, field: &'static str) -> Decoded<Option<T>> {
    match text {
        "" => Ok(None),
        text => parse(text, field).map(Some),
    }
}

fn ids<T: FromStr>(texts: &[String], field: &'static str) -> Decoded<Vec<T>> {
    texts.iter().map(|text| parse(text, field)).collect()
}

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

fn required<T>(value: Option<T>, field: &'static str) -> Decoded<T> {
    value.ok_or_else(|| Malformed::new(field, "is required"))
}

/// A page size between 1 and 1,000 (the gateway asks at most 201).
pub fn limit(limit: u32) -> Decoded<u64> {
    match limit {
        1..=1000 => Ok(u64::from(limit)),
        _ => Err(Malformed::new("limit", "must be between 1 and 1000")),
    }
}

/// A page size as sent (the in-process API takes a `u64`).
pub fn limit_message(limit: u64) -> u32 {
    u32::try_from(limit).unwrap_or(u32::MAX)
}

pub fn origin(origin: &RequestOrigin) -> Option<pb::RequestOrigin> {
    Some(pb::RequestOrigin {
        address: origin.address.clone(),
    })
}

pub fn origin_of(origin: Option<pb::RequestOrigin>) -> RequestOrigin {
    RequestOrigin {
        address: origin.and_then(|origin| origin.address),
    }
}

// Principals.

pub fn principal(principal: &Principal) -> pb::AuthenticateResponse {
    let client_ids = principal.tenant.clients().as_list();
    let actor = match &principal.actor {
        Actor::User { id, roles, session } => {
            pb::authenticate_response::Actor::User(pb::UserActor {
                user_id: id.to_string(),
                roles: strings(roles),
                session_id: session.to_string(),
            })
        }
        Actor::ApiKey {
            id,
            scopes,
            creator_roles,
        } => pb::authenticate_response::Actor::ApiKey(pb::ApiKeyActor {
            api_key_id: id.to_string(),
            scopes: strings(scopes),
            creator_roles: strings(creator_roles),
        }),
    };
    pb::AuthenticateResponse {
        tenant_id: principal.tenant.id().to_string(),
        client_scoped: client_ids.is_some(),
        client_ids: strings(&client_ids.unwrap_or_default()),
        actor: Some(actor),
        requests_per_second: principal.limits.requests_per_second,
        burst: principal.limits.burst,
        tenant_verified: principal.tenant_verified,
        expires_at: principal.expires_at.map(timestamp),
    }
}

pub fn principal_of(message: pb::AuthenticateResponse) -> Decoded<Principal> {
    let tenant_id: TenantId = parse(&message.tenant_id, "tenant_id")?;
    let clients = if message.client_scoped {
        ClientScope::from_list(Some(ids(&message.client_ids, "client_ids")?))
    } else {
        ClientScope::All
    };
    let actor = match required(message.actor, "actor")? {
        pb::authenticate_response::Actor::User(user) => Actor::User {
            id: parse::<UserId>(&user.user_id, "user_id")?,
            roles: ids::<Role>(&user.roles, "roles")?,
            session: parse::<SessionId>(&user.session_id, "session_id")?,
        },
        pb::authenticate_response::Actor::ApiKey(key) => Actor::ApiKey {
            id: parse::<ApiKeyId>(&key.api_key_id, "api_key_id")?,
            scopes: ids::<ApiScope>(&key.scopes, "scopes")?,
            creator_roles: ids::<Role>(&key.creator_roles, "creator_roles")?,
        },
    };
    Ok(Principal {
        tenant: Tenant::scoped(tenant_id, clients),
        actor,
        limits: RateLimits {
            requests_per_second: message.requests_per_second,
            burst: message.burst,
        },
        tenant_verified: message.tenant_verified,
        expires_at: optional_time(message.expires_at, "expires_at")?,
    })
}

// Views.

pub fn tokens(tokens: Tokens) -> Option<pb::Tokens> {
    Some(pb::Tokens {
        access_token: tokens.access_token,
        access_expires_at: Some(timestamp(tokens.access_expires_at)),
        refresh_token: tokens.refresh_token,
        refresh_expires_at: Some(timestamp(tokens.refresh_expires_at)),
    })
}

pub fn tokens_of(message: Option<pb::Tokens>) -> Decoded<Tokens> {
    let message = required(message, "tokens")?;
    Ok(Tokens {
        access_token: message.access_token,
        access_expires_at: time(message.access_expires_at, "access_expires_at")?,
        refresh_token: message.refresh_token,
        refresh_expires_at: time(message.refresh_expires_at, "refresh_expires_at")?,
    })
}

pub fn tenant(tenant: TenantView) -> Option<pb::Tenant> {
    Some(pb::Tenant {
        id: tenant.id.to_string(),
        name: tenant.name,
        slug: tenant.slug,
        time_zone: tenant.time_zone,
        status: tenant.status.as_str().to_owned(),
        plan: tenant.plan,
        seat_limit: tenant.seat_limit,
        seats_used: tenant.seats_used,
        email_verified: tenant.email_verified,
        created_at: Some(timestamp(tenant.created_at)),
    })
}

pub fn tenant_of(message: Option<pb::Tenant>) -> Decoded<TenantView> {
    let message = required(message, "tenant")?;
    Ok(TenantView {
        id: parse(&message.id, "tenant.id")?,
        name: message.name,
        slug: message.slug,
        time_zone: message.time_zone,
        status: parse(&message.status, "tenant.status")?,
        plan: message.plan,
        seat_limit: message.seat_limit,
        seats_used: message.seats_used,
        email_verified: message.email_verified,
        created_at: time(message.created_at, "tenant.created_at")?,
    })
}

pub fn user(user: UserView) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email,
        display_name: user.display_name,
        roles: strings(&user.roles),
        all_clients: user.clients.is_none(),
        client_ids: strings(&user.clients.unwrap_or_default()),
        status: user.status.as_str().to_owned(),
        created_at: Some(timestamp(user.created_at)),
        updated_at: Some(timestamp(user.updated_at)),
    }
}

pub fn user_of(message: Option<pb::User>) -> Decoded<UserView> {
    let message = required(message, "user")?;
    Ok(UserView {
        id: parse(&message.id, "user.id")?,
        email: message.email,
        display_name: message.display_name,
        roles: ids(&message.roles, "user.roles")?,
        clients: if message.all_clients {
            None
        } else {
            Some(ids(&message.client_ids, "user.client_ids")?)
        },
        status: parse(&message.status, "user.status")?,
        created_at: time(message.created_at, "user.created_at")?,
        updated_at: time(message.updated_at, "user.updated_at")?,
    })
}

pub fn invitation(invitation: Invitation) -> pb::Invitation {
    pb::Invitation {
        user: Some(user(invitation.user)),
        token: invitation.token,
        expires_at: Some(timestamp(invitation.expires_at)),
    }
}

pub fn invitation_of(message: pb::Invitation) -> Decoded<Invitation> {
    Ok(Invitation {
        user: user_of(message.user)?,
        token: message.token,
        expires_at: time(message.expires_at, "invitation.expires_at")?,
    })
}

pub fn signup_outcome(outcome: SignupOutcome) -> pb::SignupResponse {
    pb::SignupResponse {
        tenant: tenant(outcome.tenant),
        owner: Some(user(outcome.owner)),
        tokens: tokens(outcome.tokens),
        verification_token: outcome.verification_token,
    }
}

pub fn signup_outcome_of(message: pb::SignupResponse) -> Decoded<SignupOutcome> {
    Ok(SignupOutcome {
        tenant: tenant_of(message.tenant)?,
        owner: user_of(message.owner)?,
        tokens: tokens_of(message.tokens)?,
        verification_token: message.verification_token,
    })
}

pub fn client(client: ClientView) -> pb::Client {
    pb::Client {
        id: client.id.to_string(),
        name: client.name,
        created_at: Some(timestamp(client.created_at)),
    }
}

pub fn client_of(message: Option<pb::Client>) -> Decoded<ClientView> {
    let message = required(message, "client")?;
    Ok(ClientView {
        id: parse(&message.id, "client.id")?,
        name: message.name,
        created_at: time(message.created_at, "client.created_at")?,
    })
}

pub fn api_key(key: ApiKeyView) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        name: key.name,
        prefix: key.prefix,
        scopes: strings(&key.scopes),
        created_at: Some(timestamp(key.created_at)),
        expires_at: key.expires_at.map(timestamp),
        revoked_at: key.revoked_at.map(timestamp),
        last_used_at: key.last_used_at.map(timestamp),
    }
}

pub fn api_key_of(message: Option<pb::ApiKey>) -> Decoded<ApiKeyView> {
    let message = required(message, "key")?;
    Ok(ApiKeyView {
        id: parse(&message.id, "key.id")?,
        name: message.name,
        prefix: message.prefix,
        scopes: ids(&message.scopes, "key.scopes")?,
        created_at: time(message.created_at, "key.created_at")?,
        expires_at: optional_time(message.expires_at, "key.expires_at")?,
        revoked_at: optional_time(message.revoked_at, "key.revoked_at")?,
        last_used_at: optional_time(message.last_used_at, "key.last_used_at")?,
    })
}

pub fn created_api_key(created: CreatedApiKey) -> pb::CreateApiKeyResponse {
    pb::CreateApiKeyResponse {
        key: Some(api_key(created.key)),
        secret: created.secret,
    }
}

pub fn created_api_key_of(message: pb::CreateApiKeyResponse) -> Decoded<CreatedApiKey> {
    Ok(CreatedApiKey {
        key: api_key_of(message.key)?,
        secret: message.secret,
    })
}

pub fn audit_event(event: AuditEventView) -> pb::AuditEvent {
    pb::AuditEvent {
        id: event.id.to_string(),
        actor_type: event.actor_type,
        actor_id: event.actor_id.map(|id| id.to_string()),
        action: event.action,
        target_type: event.target_type,
        target_id: event.target_id.map(|id| id.to_string()),
        client_address: event.client_address,
        details_json: event.details.to_string(),
        occurred_at: Some(timestamp(event.occurred_at)),
    }
}

pub fn audit_event_of(message: pb::AuditEvent) -> Decoded<AuditEventView> {
    Ok(AuditEventView {
        id: parse(&message.id, "event.id")?,
        actor_type: message.actor_type,
        actor_id: message
            .actor_id
            .map(|id| parse(&id, "event.actor_id"))
            .transpose()?,
        action: message.action,
        target_type: message.target_type,
        target_id: message
            .target_id
            .map(|id| parse(&id, "event.target_id"))
            .transpose()?,
        client_address: message.client_address,
        details: serde_json::from_str(&message.details_json)
            .map_err(|error| Malformed::new("event.details_json", error.to_string()))?,
        occurred_at: time(message.occurred_at, "event.occurred_at")?,
    })
}

// Inputs.

pub fn signup_request(request: SignupRequest, from: &RequestOrigin) -> pb::SignupRequest {
    pb::SignupRequest {
        company: request.company,
        email: request.email,
        password: request.password,
        display_name: request.display_name,
        plan: request.plan,
        time_zone: request.time_zone,
        origin: origin(from),
    }
}

pub fn signup_request_of(message: pb::SignupRequest) -> (SignupRequest, RequestOrigin) {
    (
        SignupRequest {
            company: message.company,
            email: message.email,
            password: message.password,
            display_name: message.display_name,
            plan: message.plan,
            time_zone: message.time_zone,
        },
        origin_of(message.origin),
    )
}

pub fn tenant_patch(patch: TenantPatch, from: &RequestOrigin) -> pb::UpdateTenantRequest {
    pb::UpdateTenantRequest {
        name: patch.name,
        time_zone: patch.time_zone,
        plan: patch.plan,
        origin: origin(from),
    }
}

pub fn tenant_patch_of(message: pb::UpdateTenantRequest) -> (TenantPatch, RequestOrigin) {
    (
        TenantPatch {
            name: message.name,
            time_zone: message.time_zone,
            plan: message.plan,
        },
        origin_of(message.origin),
    )
}

pub fn new_user(new: NewUser, from: &RequestOrigin) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        email: new.email,
        display_name: new.display_name,
        roles: new.roles,
        client_ids: new.clients.map(|clients| pb::StringList {
            values: strings(&clients),
        }),
        password: new.password,
        origin: origin(from),
    }
}

pub fn new_user_of(message: pb::CreateUserRequest) -> Decoded<(NewUser, RequestOrigin)> {
    Ok((
        NewUser {
            email: message.email,
            display_name: message.display_name,
            roles: message.roles,
            clients: message
                .client_ids
                .map(|list| ids::<ClientId>(&list.values, "clients"))
                .transpose()?,
            password: message.password,
        },
        origin_of(message.origin),
    ))
}

pub fn user_patch(id: UserId, patch: UserPatch, from: &RequestOrigin) -> pb::UpdateUserRequest {
    pb::UpdateUserRequest {
        user_id: id.to_string(),
        display_name: patch.display_name,
        roles: patch.roles.map(|values| pb::StringList { values }),
        status: patch.status,
        clients: patch.clients.map(|clients| pb::ClientsChange {
            all_clients: clients.is_none(),
            client_ids: strings(&clients.unwrap_or_default()),
        }),
        origin: origin(from),
    }
}

/// The patch of an update (the user id is decoded by the caller: a
/// malformed one is "not found", like another tenant's).
pub fn user_patch_of(message: pb::UpdateUserRequest) -> Decoded<(UserPatch, RequestOrigin)> {
    let clients = match message.clients {
        None => None,
        Some(change) if change.all_clients => Some(None),
        Some(change) => Some(Some(ids::<ClientId>(&change.client_ids, "clients")?)),
    };
    Ok((
        UserPatch {
            display_name: message.display_name,
            roles: message.roles.map(|list| list.values),
            status: message.status,
            clients,
        },
        origin_of(message.origin),
    ))
}

pub fn new_client(new: NewClient, from: &RequestOrigin) -> pb::CreateClientRequest {
    pb::CreateClientRequest {
        name: new.name,
        origin: origin(from),
    }
}

pub fn new_client_of(message: pb::CreateClientRequest) -> (NewClient, RequestOrigin) {
    (NewClient { name: message.name }, origin_of(message.origin))
}

pub fn new_api_key(new: NewApiKey, from: &RequestOrigin) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        name: new.name,
        scopes: new.scopes,
        expires_at: new.expires_at.map(timestamp),
        origin: origin(from),
    }
}

pub fn new_api_key_of(message: pb::CreateApiKeyRequest) -> Decoded<(NewApiKey, RequestOrigin)> {
    Ok((
        NewApiKey {
            name: message.name,
            scopes: message.scopes,
            expires_at: optional_time(message.expires_at, "expires_at")?,
        },
        origin_of(message.origin),
    ))
}
