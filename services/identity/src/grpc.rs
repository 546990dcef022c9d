//! The gRPC adapter of identity (`switchboard.identity.v1`): every method
//! of [`IdentityApi`] as an RPC, served over any implementation of it (the
//! node serves the in-process [`Identity`](crate::Identity)). The server is
//! wrapped in `switchboard_rpc::Authenticated` by the node: every call has
//! a verified service credential, and tenant-scoped calls take the tenant
//! and the end user's principal from it, never from the request. Errors
//! travel as [`ServiceError`]s, so a caller gets exactly what an
//! in-process call returns. Nothing here logs a request: they carry
//! passwords and tokens.

use std::sync::Arc;

use switchboard_identity_api::wire::{self, Malformed};
use switchboard_identity_api::{IdentityApi, Principal};
use switchboard_proto::identity::v1 as pb;
use switchboard_rpc::{Caller, ServiceError};
use switchboard_tenancy::{ApiKeyId, ClientId, ClientScope, Tenant, UserId};
use tonic::{Request, Response, Status};

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.identity.v1.IdentityService";

/// The service over `identity`, ready for `tonic`'s router (to be wrapped
/// in `switchboard_rpc::Authenticated`).
pub fn server(
    identity: Arc<dyn IdentityApi>,
) -> pb::identity_service_server::IdentityServiceServer<IdentityGrpc> {
    pb::identity_service_server::IdentityServiceServer::new(IdentityGrpc { identity })
}

pub struct IdentityGrpc {
    identity: Arc<dyn IdentityApi>,
}

type Answer<T> = Result<Response<T>, Status>;

/// A call that takes the end user's own credential in its message: the
/// service credential must name no tenant (the credential decides it).
fn without_tenant<T>(request: &Request<T>) -> Result<(), Status> {
    let caller = Caller::of(request)?;
    if caller.context.tenant.is_some() {
        return Err(ServiceError::bad_request(
            "this call takes the end user's own credential; sign it with a service credential naming no tenant",
        )
        .to_status());
    }
    Ok(())
}

/// The end user's principal from the call's verified service credential:
/// the tenant and clients from its claims, the actor from its `prn` claim.
fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    let caller = Caller::of(request)?;
    let tenant = caller.tenant()?.clone();
    Principal::from_claim(tenant, caller.principal()?).map_err(|error| error.to_status())
}

/// The tenant a service calls for (no end user needed).
fn tenant<T>(request: &Request<T>) -> Result<Tenant, Status> {
    Ok(Caller::of(request)?.tenant()?.clone())
}

fn reply<T>(result: Result<T, ServiceError>) -> Answer<T> {
    result.map(Response::new).map_err(|error| error.to_status())
}

fn input<T>(decoded: Result<T, Malformed>) -> Result<T, Status> {
    decoded.map_err(|malformed| malformed.into_request_error().to_status())
}

/// An id in a request: a malformed one is "not found", like another
/// tenant's (the answer never tells ids apart).
fn id_of<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, Status> {
    text.parse()
        .map_err(|_| ServiceError::not_found(what).to_status())
}

#[tonic::async_trait]
impl pb::identity_service_server::IdentityService for IdentityGrpc {
    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Answer<pb::AuthenticateResponse> {
        without_tenant(&request)?;
        // Exactly as in process: an empty or malformed credential is
        // identity's to refuse.
        reply(
            self.identity
                .authenticate(request.get_ref().credential.trim())
                .await
                .map(|principal| wire::principal(&principal)),
        )
    }

    async fn signup(&self, request: Request<pb::SignupRequest>) -> Answer<pb::SignupResponse> {
        without_tenant(&request)?;
        let (signup, origin) = wire::signup_request_of(request.into_inner());
        reply(
            self.identity
                .signup(signup, &origin)
                .await
                .map(wire::signup_outcome),
        )
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Answer<pb::LoginResponse> {
        without_tenant(&request)?;
        let message = request.into_inner();
        let origin = wire::origin_of(message.origin);
        reply(
            self.identity
                .login(&message.tenant, &message.email, &message.password, &origin)
                .await
                .map(|tokens| pb::LoginResponse {
                    tokens: wire::tokens(tokens),
                }),
        )
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Answer<pb::RefreshResponse> {
        without_tenant(&request)?;
        reply(
            self.identity
                .refresh(&request.get_ref().refresh_token)
                .await
                .map(|tokens| pb::RefreshResponse {
                    tokens: wire::tokens(tokens),
                }),
        )
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Answer<pb::LogoutResponse> {
        without_tenant(&request)?;
        reply(
            self.identity
                .logout(&request.get_ref().refresh_token)
                .await
                .map(|()| pb::LogoutResponse {}),
        )
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Answer<pb::VerifyEmailResponse> {
        without_tenant(&request)?;
        let message = request.into_inner();
        let origin = wire::origin_of(message.origin);
        reply(
            self.identity
                .verify_email(&message.token, &origin)
                .await
                .map(|()| pb::VerifyEmailResponse {}),
        )
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Answer<pb::AcceptInvitationResponse> {
        without_tenant(&request)?;
        let message = request.into_inner();
        let origin = wire::origin_of(message.origin);
        reply(
            self.identity
                .accept_invitation(
                    &message.token,
                    &message.password,
                    message.display_name.as_deref(),
                    &origin,
                )
                .await
                .map(|tokens| pb::AcceptInvitationResponse {
                    tokens: wire::tokens(tokens),
                }),
        )
    }

    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Answer<pb::EndSessionResponse> {
        let principal = principal(&request)?;
        reply(
            self.identity
                .logout_session(&principal)
                .await
                .map(|()| pb::EndSessionResponse {}),
        )
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Answer<pb::GetTenantResponse> {
        let principal = principal(&request)?;
        reply(
            self.identity
                .get_tenant(&principal)
                .await
                .map(|tenant| pb::GetTenantResponse {
                    tenant: wire::tenant(tenant),
                }),
        )
    }

    async fn update_tenant(
        &self,
        request: Request<pb::UpdateTenantRequest>,
    ) -> Answer<pb::UpdateTenantResponse> {
        let principal = principal(&request)?;
        let (patch, origin) = wire::tenant_patch_of(request.into_inner());
        reply(
            self.identity
                .update_tenant(&principal, patch, &origin)
                .await
                .map(|tenant| pb::UpdateTenantResponse {
                    tenant: wire::tenant(tenant),
                }),
        )
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Answer<pb::ListUsersResponse> {
        let principal = principal(&request)?;
        let limit = input(wire::limit(request.get_ref().limit))?;
        let after = input(wire::optional::<UserId>(&request.get_ref().after, "after"))?;
        reply(
            self.identity
                .list_users(&principal, after, limit)
                .await
                .map(|users| pb::ListUsersResponse {
                    users: users.into_iter().map(wire::user).collect(),
                }),
        )
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Answer<pb::GetUserResponse> {
        let principal = principal(&request)?;
        let id = id_of::<UserId>(&request.get_ref().user_id, "user")?;
        reply(
            self.identity
                .get_user(&principal, id)
                .await
                .map(|user| pb::GetUserResponse {
                    user: Some(wire::user(user)),
                }),
        )
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Answer<pb::CreateUserResponse> {
        let principal = principal(&request)?;
        let (new, origin) = input(wire::new_user_of(request.into_inner()))?;
        reply(
            self.identity
                .create_user(&principal, new, &origin)
                .await
                .map(|(user, invitation)| pb::CreateUserResponse {
                    user: Some(wire::user(user)),
                    invitation: invitation.map(wire::invitation),
                }),
        )
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Answer<pb::UpdateUserResponse> {
        let principal = principal(&request)?;
        let id = id_of::<UserId>(&request.get_ref().user_id, "user")?;
        let (patch, origin) = input(wire::user_patch_of(request.into_inner()))?;
        reply(
            self.identity
                .update_user(&principal, id, patch, &origin)
                .await
                .map(|user| pb::UpdateUserResponse {
                    user: Some(wire::user(user)),
                }),
        )
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Answer<pb::DeleteUserResponse> {
        let principal = principal(&request)?;
        let message = request.into_inner();
        let id = id_of::<UserId>(&message.user_id, "user")?;
        let origin = wire::origin_of(message.origin);
        reply(
            self.identity
                .delete_user(&principal, id, &origin)
                .await
                .map(|()| pb::DeleteUserResponse {}),
        )
    }

    async fn list_clients(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> Answer<pb::ListClientsResponse> {
        let principal = principal(&request)?;
        let limit = input(wire::limit(request.get_ref().limit))?;
        let after = input(wire::optional::<ClientId>(
            &request.get_ref().after,
            "after",
        ))?;
        reply(
            self.identity
                .list_clients(&principal, after, limit)
                .await
                .map(|clients| pb::ListClientsResponse {
                    clients: clients.into_iter().map(wire::client).collect(),
                }),
        )
    }

    async fn create_client(
        &self,
        request: Request<pb::CreateClientRequest>,
    ) -> Answer<pb::CreateClientResponse> {
        let principal = principal(&request)?;
        let (new, origin) = wire::new_client_of(request.into_inner());
        reply(
            self.identity
                .create_client(&principal, new, &origin)
                .await
                .map(|client| pb::CreateClientResponse {
                    client: Some(wire::client(client)),
                }),
        )
    }

    async fn get_client(
        &self,
        request: Request<pb::GetClientRequest>,
    ) -> Answer<pb::GetClientResponse> {
        let principal = principal(&request)?;
        let id = id_of::<ClientId>(&request.get_ref().client_id, "client organization")?;
        reply(
            self.identity
                .get_client(&principal, id)
                .await
                .map(|client| pb::GetClientResponse {
                    client: Some(wire::client(client)),
                }),
        )
    }

    async fn delete_client(
        &self,
        request: Request<pb::DeleteClientRequest>,
    ) -> Answer<pb::DeleteClientResponse> {
        let principal = principal(&request)?;
        let message = request.into_inner();
        let id = id_of::<ClientId>(&message.client_id, "client organization")?;
        let origin = wire::origin_of(message.origin);
        reply(
            self.identity
                .delete_client(&principal, id, &origin)
                .await
                .map(|()| pb::DeleteClientResponse {}),
        )
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Answer<pb::CreateApiKeyResponse> {
        let principal = principal(&request)?;
        let (new, origin) = input(wire::new_api_key_of(request.into_inner()))?;
        reply(
            self.identity
                .create_api_key(&principal, new, &origin)
                .await
                .map(wire::created_api_key),
        )
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Answer<pb::ListApiKeysResponse> {
        let principal = principal(&request)?;
        let limit = input(wire::limit(request.get_ref().limit))?;
        let after = input(wire::optional::<ApiKeyId>(
            &request.get_ref().after,
            "after",
        ))?;
        reply(
            self.identity
                .list_api_keys(&principal, after, limit)
                .await
                .map(|keys| pb::ListApiKeysResponse {
                    keys: keys.into_iter().map(wire::api_key).collect(),
                }),
        )
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Answer<pb::RevokeApiKeyResponse> {
        let principal = principal(&request)?;
        let message = request.into_inner();
        let id = id_of::<ApiKeyId>(&message.api_key_id, "API key")?;
        let origin = wire::origin_of(message.origin);
        reply(
            self.identity
                .revoke_api_key(&principal, id, &origin)
                .await
                .map(|key| pb::RevokeApiKeyResponse {
                    key: Some(wire::api_key(key)),
                }),
        )
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Answer<pb::ListAuditEventsResponse> {
        let principal = principal(&request)?;
        let limit = input(wire::limit(request.get_ref().limit))?;
        let after = input(wire::optional::<uuid::Uuid>(
            &request.get_ref().after,
            "after",
        ))?;
        reply(
            self.identity
                .list_audit_events(&principal, after, limit)
                .await
                .map(|events| pb::ListAuditEventsResponse {
                    events: events.into_iter().map(wire::audit_event).collect(),
                }),
        )
    }

    async fn user_exists(
        &self,
        request: Request<pb::UserExistsRequest>,
    ) -> Answer<pb::UserExistsResponse> {
        let tenant = tenant(&request)?;
        // A malformed id names no user.
        let Ok(id) = request.get_ref().user_id.parse::<UserId>() else {
            return reply(Ok(pb::UserExistsResponse { exists: false }));
        };
        reply(
            self.identity
                .user_exists(&tenant, id)
                .await
                .map(|exists| pb::UserExistsResponse { exists }),
        )
    }

    async fn user_scope(
        &self,
        request: Request<pb::UserScopeRequest>,
    ) -> Answer<pb::UserScopeResponse> {
        let tenant = tenant(&request)?;
        let Ok(id) = request.get_ref().user_id.parse::<UserId>() else {
            return reply(Ok(pb::UserScopeResponse::default()));
        };
        reply(self.identity.user_scope(&tenant, id).await.map(|scope| {
            match scope {
                None => pb::UserScopeResponse::default(),
                Some(scope) => pb::UserScopeResponse {
                    exists: true,
                    all_clients: scope == ClientScope::All,
                    client_ids: scope
                        .as_list()
                        .unwrap_or_default()
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                },
            }
        }))
    }

    async fn client_exists(
        &self,
        request: Request<pb::ClientExistsRequest>,
    ) -> Answer<pb::ClientExistsResponse> {
        let tenant = tenant(&request)?;
        let Ok(id) = request.get_ref().client_id.parse::<ClientId>() else {
            return reply(Ok(pb::ClientExistsResponse { exists: false }));
        };
        reply(
            self.identity
                .client_exists(&tenant, id)
                .await
                .map(|exists| pb::ClientExistsResponse { exists }),
        )
    }
}
