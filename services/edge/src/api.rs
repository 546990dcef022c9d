//! [`EdgeApi`] in process ([`LocalEdge`], over [`Accounts`] and the
//! [`TrunkStore`]), and its gRPC server (`switchboard.edge.v1.Edge`,
//! `proto/switchboard/edge/v1/edge.proto`).
//! Serve it wrapped in `switchboard_rpc::Authenticated`: each call acts for
//! the tenant of its service credential, never one named in a message.

use std::sync::Arc;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbErr};
use switchboard_edge_api::{
    EdgeApi, RegistrationView, Result, SipAccountView, SipCredentials, TrunkSpec, TrunkView,
};
use switchboard_proto::edge::v1 as pb;
use switchboard_proto::edge::v1::edge_server::{Edge as EdgeService, EdgeServer};
use switchboard_rpc::{Caller, ServiceError};
use switchboard_tenancy::{Tenant, TrunkId, UserId};
use tonic::{Request, Response, Status};

use crate::accounts::{AccountError, Accounts};
use crate::trunks::TrunkStore;
use crate::trunks::registration::TrunkRegistrations;

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.edge.v1.Edge";

fn database_error(error: DbErr) -> ServiceError {
    tracing::error!(%error, "the edge's database failed");
    ServiceError::unavailable("the edge's database is unavailable; try again")
}

/// The edge's API in process: agents' SIP accounts and tenants' trunks.
#[derive(Clone)]
pub struct LocalEdge {
    accounts: Accounts,
    trunks: TrunkStore,
    registrations: Option<TrunkRegistrations>,
}

impl LocalEdge {
    pub fn new(accounts: Accounts, trunks: TrunkStore) -> Self {
        Self {
            accounts,
            trunks,
            registrations: None,
        }
    }

    /// Answers trunks with the state of their registrations.
    pub fn with_registrations(mut self, registrations: TrunkRegistrations) -> Self {
        self.registrations = Some(registrations);
        self
    }

    /// `trunk` with its registration's state, when it registers.
    async fn with_registration(&self, tenant: &Tenant, mut trunk: TrunkView) -> TrunkView {
        if let (Some(registrations), Some(outbound)) = (&self.registrations, &mut trunk.outbound)
            && outbound.register
        {
            outbound.registration =
                registrations
                    .status(tenant.id(), trunk.id)
                    .await
                    .map(|status| RegistrationView {
                        state: status.state,
                        expires_at: status.expires_at,
                        last_status: status.last_status,
                        error: status.error,
                        updated_at: status.updated_at,
                    });
        }
        trunk
    }
}

#[async_trait::async_trait]
impl EdgeApi for LocalEdge {
    async fn issue_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<SipCredentials> {
        match self.accounts.issue(tenant.id(), user).await {
            Ok(issued) => Ok(SipCredentials {
                username: issued.username,
                password: issued.password,
                domain: issued.domain,
            }),
            Err(AccountError::DomainUnknown) => {
                let mut error = ServiceError::unavailable(AccountError::DomainUnknown.to_string());
                // The tenant's `tenant.created` event is on its way.
                error.retry_after = Some(std::time::Duration::from_secs(2));
                Err(error)
            }
            Err(AccountError::Database(error)) => Err(database_error(error)),
        }
    }

    async fn get_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<SipAccountView> {
        self.accounts
            .view(tenant, user)
            .await
            .map_err(database_error)?
            .ok_or_else(|| ServiceError::not_found("SIP account"))
    }

    async fn revoke_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<()> {
        match self.accounts.revoke(tenant.id(), user).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServiceError::not_found("SIP account")),
            Err(error) => Err(database_error(error)),
        }
    }

    async fn create_trunk(&self, tenant: &Tenant, spec: TrunkSpec) -> Result<TrunkView> {
        let trunk = self.trunks.create(tenant, spec).await?;
        Ok(self.with_registration(tenant, trunk).await)
    }

    async fn list_trunks(
        &self,
        tenant: &Tenant,
        after: Option<TrunkId>,
        limit: u64,
    ) -> Result<Vec<TrunkView>> {
        let mut trunks = Vec::new();
        for trunk in self.trunks.list(tenant, after, limit).await? {
            trunks.push(self.with_registration(tenant, trunk).await);
        }
        Ok(trunks)
    }

    async fn get_trunk(&self, tenant: &Tenant, id: TrunkId) -> Result<TrunkView> {
        let trunk = self.trunks.get(tenant, id).await?;
        Ok(self.with_registration(tenant, trunk).await)
    }

    async fn replace_trunk(
        &self,
        tenant: &Tenant,
        id: TrunkId,
        spec: TrunkSpec,
    ) -> Result<TrunkView> {
        let trunk = self.trunks.replace(tenant, id, spec).await?;
        Ok(self.with_registration(tenant, trunk).await)
    }

    async fn delete_trunk(&self, tenant: &Tenant, id: TrunkId) -> Result<()> {
        self.trunks.delete(tenant, id).await
    }
}

impl Accounts {
    /// `user`'s account without its password.
    pub(crate) async fn view(
        &self,
        tenant: &Tenant,
        user: UserId,
    ) -> Result<Option<SipAccountView>, DbErr> {
        let col = Alias::new;
        let query = Query::select()
            .columns([
                col("username"),
                col("active"),
                col("created_at"),
                col("updated_at"),
            ])
            .from(col("edge_sip_accounts"))
            .and_where(Expr::col(col("tenant_id")).eq(tenant.id().as_uuid()))
            .and_where(Expr::col(col("user_id")).eq(user.as_uuid()))
            .to_owned();
        let transaction = self.begin(tenant.id()).await?;
        let row = transaction.query_one(&query).await?;
        let slug = self.slug_of(&transaction, tenant.id()).await?;
        transaction.commit().await?;
        let (Some(row), Some(slug)) = (row, slug) else {
            return Ok(None);
        };
        Ok(Some(SipAccountView {
            user_id: user,
            username: row.try_get("", "username")?,
            domain: self.domain_of(&slug),
            active: row.try_get("", "active")?,
            created_at: row.try_get("", "created_at")?,
            updated_at: row.try_get("", "updated_at")?,
        }))
    }
}

/// The gRPC service over `api`, ready for tonic's router (wrap it in
/// `Authenticated`).
pub fn server(api: Arc<dyn EdgeApi>) -> EdgeServer<EdgeGrpc> {
    EdgeServer::new(EdgeGrpc { api })
}

pub struct EdgeGrpc {
    api: Arc<dyn EdgeApi>,
}

/// The tenant of the call's credential.
fn tenant_of<T>(request: &Request<T>) -> Result<Tenant, Status> {
    Ok(Caller::of(request)?.tenant()?.clone())
}

/// A trunk id from a message: a malformed one is not found, like another
/// tenant's.
fn trunk_id(text: &str) -> Result<TrunkId, Status> {
    text.parse()
        .map_err(|_| ServiceError::not_found("trunk").to_status())
}

/// The tenant of the call's credential, and the user the message names.
fn target(request: &Request<pb::UserRef>) -> Result<(Tenant, UserId), Status> {
    let tenant = Caller::of(request)?.tenant()?.clone();
    let user = request
        .get_ref()
        .user_id
        .parse()
        .map_err(|_| ServiceError::not_found("SIP account").to_status())?;
    Ok((tenant, user))
}

#[tonic::async_trait]
impl EdgeService for EdgeGrpc {
    async fn issue_sip_account(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::SipCredentials>, Status> {
        let (tenant, user) = target(&request)?;
        let issued = self
            .api
            .issue_sip_account(&tenant, user)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(issued.into()))
    }

    async fn get_sip_account(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<pb::SipAccount>, Status> {
        let (tenant, user) = target(&request)?;
        let account = self
            .api
            .get_sip_account(&tenant, user)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(account.into()))
    }

    async fn revoke_sip_account(
        &self,
        request: Request<pb::UserRef>,
    ) -> Result<Response<()>, Status> {
        let (tenant, user) = target(&request)?;
        self.api
            .revoke_sip_account(&tenant, user)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(()))
    }

    async fn create_trunk(
        &self,
        request: Request<pb::TrunkSpec>,
    ) -> Result<Response<pb::Trunk>, Status> {
        let tenant = tenant_of(&request)?;
        let trunk = self
            .api
            .create_trunk(&tenant, request.into_inner().into())
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(trunk.into()))
    }

    async fn list_trunks(
        &self,
        request: Request<pb::ListTrunksRequest>,
    ) -> Result<Response<pb::ListTrunksResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let message = request.into_inner();
        let after = match message.after.as_deref() {
            None | Some("") => None,
            Some(after) => Some(
                trunk_id(after)
                    .map_err(|_| ServiceError::field("after", "is not a trunk id").to_status())?,
            ),
        };
        let limit = match message.limit {
            1..=1000 => u64::from(message.limit),
            _ => {
                return Err(ServiceError::field("limit", "must be between 1 and 1000").to_status());
            }
        };
        let trunks = self
            .api
            .list_trunks(&tenant, after, limit)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(pb::ListTrunksResponse {
            trunks: trunks.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_trunk(
        &self,
        request: Request<pb::TrunkRef>,
    ) -> Result<Response<pb::Trunk>, Status> {
        let tenant = tenant_of(&request)?;
        let id = trunk_id(&request.get_ref().trunk_id)?;
        let trunk = self
            .api
            .get_trunk(&tenant, id)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(trunk.into()))
    }

    async fn replace_trunk(
        &self,
        request: Request<pb::ReplaceTrunkRequest>,
    ) -> Result<Response<pb::Trunk>, Status> {
        let tenant = tenant_of(&request)?;
        let message = request.into_inner();
        let id = trunk_id(&message.trunk_id)?;
        let spec = message.spec.unwrap_or_default().into();
        let trunk = self
            .api
            .replace_trunk(&tenant, id, spec)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(trunk.into()))
    }

    async fn delete_trunk(&self, request: Request<pb::TrunkRef>) -> Result<Response<()>, Status> {
        let tenant = tenant_of(&request)?;
        let id = trunk_id(&request.get_ref().trunk_id)?;
        self.api
            .delete_trunk(&tenant, id)
            .await
            .map_err(|error| error.to_status())?;
        Ok(Response::new(()))
    }
}
