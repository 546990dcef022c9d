//! [`EdgeApi`] in process, over [`Accounts`], and its gRPC server
//! (`switchboard.edge.v1.Edge`, `proto/switchboard/edge/v1/edge.proto`).
//! Serve it wrapped in `switchboard_rpc::Authenticated`: each call acts for
//! the tenant of its service credential, never one named in a message.

use std::sync::Arc;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbErr};
use switchboard_edge_api::{EdgeApi, Result, SipAccountView, SipCredentials};
use switchboard_proto::edge::v1 as pb;
use switchboard_proto::edge::v1::edge_server::{Edge as EdgeService, EdgeServer};
use switchboard_rpc::{Caller, ServiceError};
use switchboard_tenancy::{Tenant, UserId};
use tonic::{Request, Response, Status};

use crate::accounts::{AccountError, Accounts};

/// The fully-qualified service name, for gRPC health.
pub const SERVICE_NAME: &str = "switchboard.edge.v1.Edge";

fn database_error(error: DbErr) -> ServiceError {
    tracing::error!(%error, "the edge's database failed");
    ServiceError::unavailable("the edge's database is unavailable; try again")
}

#[async_trait::async_trait]
impl EdgeApi for Accounts {
    async fn issue_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<SipCredentials> {
        match self.issue(tenant.id(), user).await {
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
        self.view(tenant, user)
            .await
            .map_err(database_error)?
            .ok_or_else(|| ServiceError::not_found("SIP account"))
    }

    async fn revoke_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<()> {
        match self.revoke(tenant.id(), user).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServiceError::not_found("SIP account")),
            Err(error) => Err(database_error(error)),
        }
    }
}

impl Accounts {
    /// `user`'s account without its password.
    async fn view(&self, tenant: &Tenant, user: UserId) -> Result<Option<SipAccountView>, DbErr> {
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
}
