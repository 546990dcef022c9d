//! The gRPC adapter of identity (`switchboard.identity.v1`). The server is
//! wrapped in `switchboard_rpc::Authenticated` by the node: every call has
//! a verified service credential, and tenant-scoped calls take the tenant
//! and the end user's principal from it, never from the request.

use switchboard_auth::looks_like_api_key;
use switchboard_proto::identity::v1 as pb;
use switchboard_rpc::Caller;
use switchboard_tenancy::UserId;
use tonic::{Request, Response, Status};

use crate::views::{TenantView, UserView};
use crate::{Actor, Identity, IdentityError, Principal};

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.identity.v1.IdentityService";

/// The service, ready for `tonic`'s router.
pub fn server(
    identity: Identity,
) -> pb::identity_service_server::IdentityServiceServer<IdentityGrpc> {
    pb::identity_service_server::IdentityServiceServer::new(IdentityGrpc { identity })
}

pub struct IdentityGrpc {
    identity: Identity,
}

impl IdentityGrpc {
    /// The end user's principal from the call's verified service
    /// credential (see `switchboard_rpc`): the tenant and clients from its
    /// claims, the actor from its `prn` claim.
    fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let caller = Caller::of(request)?;
        let tenant = caller.tenant()?.clone();
        Principal::from_claim(tenant, caller.principal()?).map_err(status)
    }
}

/// Each identity error maps to one gRPC code, here.
pub fn status(error: IdentityError) -> Status {
    match error {
        IdentityError::Validation(errors) => Status::invalid_argument(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        IdentityError::NotFound(what) => Status::not_found(format!("{what} not found")),
        IdentityError::Conflict { code, detail } => {
            Status::failed_precondition(format!("{code}: {detail}"))
        }
        IdentityError::Unauthenticated(detail) => Status::unauthenticated(detail),
        IdentityError::Forbidden { code, detail } => {
            Status::permission_denied(format!("{code}: {detail}"))
        }
        IdentityError::Throttled { retry_after } => {
            Status::resource_exhausted(format!("retry in {} s", retry_after.as_secs().max(1)))
        }
        IdentityError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "backend unavailable");
            Status::unavailable("a backend is unavailable; retry later")
        }
        IdentityError::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            Status::internal("internal error")
        }
    }
}

#[tonic::async_trait]
impl pb::identity_service_server::IdentityService for IdentityGrpc {
    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        Caller::of(&request)?;
        let credential = request.get_ref().credential.trim();
        if credential.is_empty() {
            return Err(Status::invalid_argument(
                "`credential` (the end user's access token or API key) is required",
            ));
        }
        let principal = if looks_like_api_key(credential) {
            self.identity.authenticate_api_key(credential).await
        } else {
            self.identity.authenticate_access_token(credential).await
        }
        .map_err(status)?;
        let client_ids = principal.tenant.clients().as_list();
        let actor = match &principal.actor {
            Actor::User { id, roles, session } => {
                pb::authenticate_response::Actor::User(pb::UserActor {
                    user_id: id.to_string(),
                    roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
                    session_id: session.to_string(),
                })
            }
            Actor::ApiKey {
                id,
                scopes,
                creator_roles,
            } => pb::authenticate_response::Actor::ApiKey(pb::ApiKeyActor {
                api_key_id: id.to_string(),
                scopes: scopes.iter().map(ToString::to_string).collect(),
                creator_roles: creator_roles
                    .iter()
                    .map(|role| role.as_str().to_owned())
                    .collect(),
            }),
        };
        Ok(Response::new(pb::AuthenticateResponse {
            tenant_id: principal.tenant.id().to_string(),
            client_scoped: client_ids.is_some(),
            client_ids: client_ids
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
            actor: Some(actor),
            requests_per_second: principal.limits.requests_per_second,
            burst: principal.limits.burst,
            tenant_verified: principal.tenant_verified,
        }))
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::GetTenantResponse>, Status> {
        let principal = self.principal(&request)?;
        let tenant = self.identity.get_tenant(&principal).await.map_err(status)?;
        Ok(Response::new(pb::GetTenantResponse {
            tenant: Some(tenant_message(tenant)),
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let principal = self.principal(&request)?;
        let limit = match request.get_ref().limit {
            0 => 50,
            limit @ 1..=200 => u64::from(limit),
            _ => return Err(Status::invalid_argument("limit must be between 1 and 200")),
        };
        let after = match request.get_ref().after.as_str() {
            "" => None,
            text => Some(
                text.parse::<UserId>()
                    .map_err(|_| Status::invalid_argument("after is not a user id"))?,
            ),
        };
        let mut users = self
            .identity
            .list_users(&principal, after, limit + 1)
            .await
            .map_err(status)?;
        let more = users.len() as u64 > limit;
        users.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_after = if more {
            users
                .last()
                .map(|user| user.id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_message).collect(),
            next_after,
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let principal = self.principal(&request)?;
        // A malformed id is "not found", like another tenant's.
        let id = request
            .get_ref()
            .user_id
            .parse::<UserId>()
            .map_err(|_| Status::not_found("user not found"))?;
        let user = self
            .identity
            .get_user(&principal, id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_message(user)),
        }))
    }
}

fn timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn tenant_message(tenant: TenantView) -> pb::Tenant {
    pb::Tenant {
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
    }
}

fn user_message(user: UserView) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email,
        display_name: user.display_name,
        roles: user
            .roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect(),
        all_clients: user.clients.is_none(),
        client_ids: user
            .clients
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect(),
        status: user.status.as_str().to_owned(),
        created_at: Some(timestamp(user.created_at)),
        updated_at: Some(timestamp(user.updated_at)),
    }
}
