//! [`IdentityApi`] over gRPC: each method is one call to a node hosting
//! identity, signed with a fresh service credential that carries the
//! tenant and the end user's principal (never in the request body).

use async_trait::async_trait;
use switchboard_proto::identity::v1 as pb;
use switchboard_proto::identity::v1::identity_service_client::IdentityServiceClient;
use switchboard_rpc::{CallContext, Credentials, ServiceError};
use switchboard_tenancy::{ApiKeyId, ClientId, ClientScope, Tenant, UserId};
use tonic::transport::Channel;

use crate::wire::{self, Malformed};
use crate::{
    ApiKeyView, AuditEventView, ClientView, CreatedApiKey, IdentityApi, Invitation, NewApiKey,
    NewClient, NewUser, Principal, RequestOrigin, Result, SignupOutcome, SignupRequest,
    TenantPatch, TenantView, Tokens, UserPatch, UserView,
};

/// Identity on another node, through a (lazily connected) channel to it.
/// Cheap to clone.
#[derive(Clone)]
pub struct RemoteIdentity {
    client: IdentityServiceClient<Channel>,
    credentials: Credentials,
}

impl RemoteIdentity {
    /// Identity at the other end of `channel`, called with `credentials`
    /// (this node's service keys, signing as the calling service).
    pub fn new(channel: Channel, credentials: Credentials) -> Self {
        Self {
            client: IdentityServiceClient::new(channel),
            credentials,
        }
    }

    fn client(&self) -> IdentityServiceClient<Channel> {
        self.client.clone()
    }

    /// A request for a call that names no tenant (the end user's own
    /// credential is in the message).
    fn system<T>(&self, message: T) -> Result<tonic::Request<T>> {
        Ok(self.credentials.request(message, &CallContext::system())?)
    }

    /// A request acting for `principal`: its tenant and clients, and the
    /// principal itself, in the credential.
    fn acting<T>(&self, principal: &Principal, message: T) -> Result<tonic::Request<T>> {
        let context =
            CallContext::tenant(principal.tenant.clone()).with_principal(principal.to_claim());
        Ok(self.credentials.request(message, &context)?)
    }

    /// A request of a service for `tenant`, with no end user.
    fn for_tenant<T>(&self, tenant: &Tenant, message: T) -> Result<tonic::Request<T>> {
        Ok(self
            .credentials
            .request(message, &CallContext::tenant(tenant.clone()))?)
    }
}

/// The answer's message, or the error it carries.
fn answer<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<T> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| ServiceError::from_status(&status))
}

fn decoded<T>(result: Result<T, Malformed>) -> Result<T> {
    result.map_err(Malformed::into_answer_error)
}

fn collect<M, T>(messages: Vec<M>, decode: impl Fn(M) -> Result<T, Malformed>) -> Result<Vec<T>> {
    decoded(messages.into_iter().map(decode).collect())
}

#[async_trait]
impl IdentityApi for RemoteIdentity {
    async fn authenticate(&self, credential: &str) -> Result<Principal> {
        let request = self.system(pb::AuthenticateRequest {
            credential: credential.to_owned(),
        })?;
        decoded(wire::principal_of(answer(
            self.client().authenticate(request).await,
        )?))
    }

    async fn signup(
        &self,
        request: SignupRequest,
        origin: &RequestOrigin,
    ) -> Result<SignupOutcome> {
        let request = self.system(wire::signup_request(request, origin))?;
        decoded(wire::signup_outcome_of(answer(
            self.client().signup(request).await,
        )?))
    }

    async fn login(
        &self,
        tenant_slug: &str,
        email: &str,
        password: &str,
        origin: &RequestOrigin,
    ) -> Result<Tokens> {
        let request = self.system(pb::LoginRequest {
            tenant: tenant_slug.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            origin: wire::origin(origin),
        })?;
        decoded(wire::tokens_of(
            answer(self.client().login(request).await)?.tokens,
        ))
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let request = self.system(pb::RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        })?;
        decoded(wire::tokens_of(
            answer(self.client().refresh(request).await)?.tokens,
        ))
    }

    async fn logout(&self, refresh_token: &str) -> Result<()> {
        let request = self.system(pb::LogoutRequest {
            refresh_token: refresh_token.to_owned(),
        })?;
        answer(self.client().logout(request).await)?;
        Ok(())
    }

    async fn verify_email(&self, token: &str, origin: &RequestOrigin) -> Result<()> {
        let request = self.system(pb::VerifyEmailRequest {
            token: token.to_owned(),
            origin: wire::origin(origin),
        })?;
        answer(self.client().verify_email(request).await)?;
        Ok(())
    }

    async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        display_name: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Tokens> {
        let request = self.system(pb::AcceptInvitationRequest {
            token: token.to_owned(),
            password: password.to_owned(),
            display_name: display_name.map(str::to_owned),
            origin: wire::origin(origin),
        })?;
        decoded(wire::tokens_of(
            answer(self.client().accept_invitation(request).await)?.tokens,
        ))
    }

    async fn logout_session(&self, principal: &Principal) -> Result<()> {
        let request = self.acting(principal, pb::EndSessionRequest {})?;
        answer(self.client().end_session(request).await)?;
        Ok(())
    }

    async fn get_tenant(&self, principal: &Principal) -> Result<TenantView> {
        let request = self.acting(principal, pb::GetTenantRequest {})?;
        decoded(wire::tenant_of(
            answer(self.client().get_tenant(request).await)?.tenant,
        ))
    }

    async fn update_tenant(
        &self,
        principal: &Principal,
        patch: TenantPatch,
        origin: &RequestOrigin,
    ) -> Result<TenantView> {
        let request = self.acting(principal, wire::tenant_patch(patch, origin))?;
        decoded(wire::tenant_of(
            answer(self.client().update_tenant(request).await)?.tenant,
        ))
    }

    async fn list_users(
        &self,
        principal: &Principal,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<UserView>> {
        let request = self.acting(
            principal,
            pb::ListUsersRequest {
                limit: wire::limit_message(limit),
                after: after.map(|id| id.to_string()).unwrap_or_default(),
            },
        )?;
        let users = answer(self.client().list_users(request).await)?.users;
        collect(users, |user| wire::user_of(Some(user)))
    }

    async fn get_user(&self, principal: &Principal, id: UserId) -> Result<UserView> {
        let request = self.acting(
            principal,
            pb::GetUserRequest {
                user_id: id.to_string(),
            },
        )?;
        decoded(wire::user_of(
            answer(self.client().get_user(request).await)?.user,
        ))
    }

    async fn create_user(
        &self,
        principal: &Principal,
        new: NewUser,
        origin: &RequestOrigin,
    ) -> Result<(UserView, Option<Invitation>)> {
        let request = self.acting(principal, wire::new_user(new, origin))?;
        let created = answer(self.client().create_user(request).await)?;
        let user = decoded(wire::user_of(created.user))?;
        let invitation = decoded(created.invitation.map(wire::invitation_of).transpose())?;
        Ok((user, invitation))
    }

    async fn update_user(
        &self,
        principal: &Principal,
        id: UserId,
        patch: UserPatch,
        origin: &RequestOrigin,
    ) -> Result<UserView> {
        let request = self.acting(principal, wire::user_patch(id, patch, origin))?;
        decoded(wire::user_of(
            answer(self.client().update_user(request).await)?.user,
        ))
    }

    async fn delete_user(
        &self,
        principal: &Principal,
        id: UserId,
        origin: &RequestOrigin,
    ) -> Result<()> {
        let request = self.acting(
            principal,
            pb::DeleteUserRequest {
                user_id: id.to_string(),
                origin: wire::origin(origin),
            },
        )?;
        answer(self.client().delete_user(request).await)?;
        Ok(())
    }

    async fn list_clients(
        &self,
        principal: &Principal,
        after: Option<ClientId>,
        limit: u64,
    ) -> Result<Vec<ClientView>> {
        let request = self.acting(
            principal,
            pb::ListClientsRequest {
                limit: wire::limit_message(limit),
                after: after.map(|id| id.to_string()).unwrap_or_default(),
            },
        )?;
        let clients = answer(self.client().list_clients(request).await)?.clients;
        collect(clients, |client| wire::client_of(Some(client)))
    }

    async fn create_client(
        &self,
        principal: &Principal,
        new: NewClient,
        origin: &RequestOrigin,
    ) -> Result<ClientView> {
        let request = self.acting(principal, wire::new_client(new, origin))?;
        decoded(wire::client_of(
            answer(self.client().create_client(request).await)?.client,
        ))
    }

    async fn get_client(&self, principal: &Principal, id: ClientId) -> Result<ClientView> {
        let request = self.acting(
            principal,
            pb::GetClientRequest {
                client_id: id.to_string(),
            },
        )?;
        decoded(wire::client_of(
            answer(self.client().get_client(request).await)?.client,
        ))
    }

    async fn delete_client(
        &self,
        principal: &Principal,
        id: ClientId,
        origin: &RequestOrigin,
    ) -> Result<()> {
        let request = self.acting(
            principal,
            pb::DeleteClientRequest {
                client_id: id.to_string(),
                origin: wire::origin(origin),
            },
        )?;
        answer(self.client().delete_client(request).await)?;
        Ok(())
    }

    async fn create_api_key(
        &self,
        principal: &Principal,
        new: NewApiKey,
        origin: &RequestOrigin,
    ) -> Result<CreatedApiKey> {
        let request = self.acting(principal, wire::new_api_key(new, origin))?;
        decoded(wire::created_api_key_of(answer(
            self.client().create_api_key(request).await,
        )?))
    }

    async fn list_api_keys(
        &self,
        principal: &Principal,
        after: Option<ApiKeyId>,
        limit: u64,
    ) -> Result<Vec<ApiKeyView>> {
        let request = self.acting(
            principal,
            pb::ListApiKeysRequest {
                limit: wire::limit_message(limit),
                after: after.map(|id| id.to_string()).unwrap_or_default(),
            },
        )?;
        let keys = answer(self.client().list_api_keys(request).await)?.keys;
        collect(keys, |key| wire::api_key_of(Some(key)))
    }

    async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        origin: &RequestOrigin,
    ) -> Result<ApiKeyView> {
        let request = self.acting(
            principal,
            pb::RevokeApiKeyRequest {
                api_key_id: id.to_string(),
                origin: wire::origin(origin),
            },
        )?;
        decoded(wire::api_key_of(
            answer(self.client().revoke_api_key(request).await)?.key,
        ))
    }

    async fn list_audit_events(
        &self,
        principal: &Principal,
        after: Option<uuid::Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEventView>> {
        let request = self.acting(
            principal,
            pb::ListAuditEventsRequest {
                limit: wire::limit_message(limit),
                after: after.map(|id| id.to_string()).unwrap_or_default(),
            },
        )?;
        let events = answer(self.client().list_audit_events(request).await)?.events;
        collect(events, wire::audit_event_of)
    }

    async fn user_exists(&self, tenant: &Tenant, user: UserId) -> Result<bool> {
        let request = self.for_tenant(
            tenant,
            pb::UserExistsRequest {
                user_id: user.to_string(),
            },
        )?;
        Ok(answer(self.client().user_exists(request).await)?.exists)
    }

    async fn client_exists(&self, tenant: &Tenant, client: ClientId) -> Result<bool> {
        let request = self.for_tenant(
            tenant,
            pb::ClientExistsRequest {
                client_id: client.to_string(),
            },
        )?;
        Ok(answer(self.client().client_exists(request).await)?.exists)
    }

    async fn user_scope(&self, tenant: &Tenant, user: UserId) -> Result<Option<ClientScope>> {
        let request = self.for_tenant(
            tenant,
            pb::UserScopeRequest {
                user_id: user.to_string(),
            },
        )?;
        let scope = answer(self.client().user_scope(request).await)?;
        if !scope.exists {
            return Ok(None);
        }
        if scope.all_clients {
            return Ok(Some(ClientScope::All));
        }
        let clients = scope
            .client_ids
            .iter()
            .map(|id| {
                id.parse::<ClientId>().map_err(|_| {
                    ServiceError::internal(format!(
                        "identity answered a malformed client id {id:?}"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(ClientScope::Only(clients)))
    }
}
