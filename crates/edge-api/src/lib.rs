//! The edge as its callers see it: [`EdgeApi`] (agents' SIP accounts),
//! its types, and [`RemoteEdge`], the implementation that calls an edge on
//! another node over gRPC (`switchboard.edge.v1.Edge`). The edge crate
//! implements the trait in process and serves it over gRPC; callers hold
//! an `Arc<dyn EdgeApi>` and never know which one they have.
//!
//! Every method acts for the `&Tenant` it is given first (over gRPC, the
//! tenant of the signed service credential); another tenant's users have
//! no account here. Who may act on whose account is the caller's decision.

use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_proto::edge::v1 as pb;
use switchboard_proto::edge::v1::edge_client::EdgeClient;
use switchboard_proto::time::{datetime, timestamp};
use switchboard_rpc::{CallContext, Credentials, ServiceError};
use switchboard_tenancy::{Tenant, UserId};
use tonic::transport::Channel;

/// What an edge call answers.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// A SIP account's credentials as issued: the password is in this answer
/// only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipCredentials {
    pub username: String,
    pub password: String,
    /// The tenant's SIP domain: where phones register, and the realm.
    pub domain: String,
}

/// A SIP account without its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipAccountView {
    pub user_id: UserId,
    pub username: String,
    pub domain: String,
    /// False while the user is not active.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Agents' SIP accounts.
#[async_trait::async_trait]
pub trait EdgeApi: Send + Sync {
    /// Creates `user`'s SIP account, or gives it a new password (the
    /// username stays; phones with the old one stop registering).
    /// Unavailable, to retry, while the tenant's domain has not reached the
    /// edge yet.
    async fn issue_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<SipCredentials>;

    /// `user`'s SIP account; not found when there is none.
    async fn get_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<SipAccountView>;

    /// Removes `user`'s SIP account; not found when there is none.
    async fn revoke_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<()>;
}

/// The edge on another node. Every call carries a fresh service credential
/// naming the tenant it is for. Cheap to clone.
#[derive(Clone)]
pub struct RemoteEdge {
    client: EdgeClient<Channel>,
    credentials: Credentials,
}

impl RemoteEdge {
    /// Calls the edge over `channel`, signing with `credentials`.
    pub fn new(channel: Channel, credentials: Credentials) -> Self {
        Self {
            client: EdgeClient::new(channel),
            credentials,
        }
    }

    fn request(&self, tenant: &Tenant, user: UserId) -> Result<tonic::Request<pb::UserRef>> {
        self.credentials
            .request(
                pb::UserRef {
                    user_id: user.to_string(),
                },
                &CallContext::tenant(tenant.clone()),
            )
            .map_err(|status| ServiceError::from_status(&status))
    }
}

fn malformed(what: &str) -> ServiceError {
    ServiceError::internal(format!("the edge answered a malformed {what}"))
}

impl TryFrom<pb::SipAccount> for SipAccountView {
    type Error = ServiceError;

    fn try_from(account: pb::SipAccount) -> Result<Self> {
        let time = |at: Option<prost_types::Timestamp>| {
            at.as_ref()
                .and_then(datetime)
                .ok_or_else(|| malformed("account time"))
        };
        Ok(Self {
            user_id: account.user_id.parse().map_err(|_| malformed("user id"))?,
            username: account.username,
            domain: account.domain,
            active: account.active,
            created_at: time(account.created_at)?,
            updated_at: time(account.updated_at)?,
        })
    }
}

impl From<SipAccountView> for pb::SipAccount {
    fn from(account: SipAccountView) -> Self {
        Self {
            user_id: account.user_id.to_string(),
            username: account.username,
            domain: account.domain,
            active: account.active,
            created_at: Some(timestamp(account.created_at)),
            updated_at: Some(timestamp(account.updated_at)),
        }
    }
}

impl From<SipCredentials> for pb::SipCredentials {
    fn from(credentials: SipCredentials) -> Self {
        Self {
            username: credentials.username,
            password: credentials.password,
            domain: credentials.domain,
        }
    }
}

impl From<pb::SipCredentials> for SipCredentials {
    fn from(credentials: pb::SipCredentials) -> Self {
        Self {
            username: credentials.username,
            password: credentials.password,
            domain: credentials.domain,
        }
    }
}

#[async_trait::async_trait]
impl EdgeApi for RemoteEdge {
    async fn issue_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<SipCredentials> {
        let request = self.request(tenant, user)?;
        Ok(self
            .client
            .clone()
            .issue_sip_account(request)
            .await?
            .into_inner()
            .into())
    }

    async fn get_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<SipAccountView> {
        let request = self.request(tenant, user)?;
        self.client
            .clone()
            .get_sip_account(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn revoke_sip_account(&self, tenant: &Tenant, user: UserId) -> Result<()> {
        let request = self.request(tenant, user)?;
        self.client.clone().revoke_sip_account(request).await?;
        Ok(())
    }
}
