//! The edge as its callers see it: [`EdgeApi`] (agents' SIP accounts and
//! tenants' carrier trunks), its types ([`trunks`] for trunks'), and [`RemoteEdge`], the implementation that calls an edge on
//! another node over gRPC (`switchboard.edge.v1.Edge`). The edge crate
//! implements the trait in process and serves it over gRPC; callers hold
//! an `Arc<dyn EdgeApi>` and never know which one they have.
//!
//! Every method acts for the `&Tenant` it is given first (over gRPC, the
//! tenant of the signed service credential); another tenant's users have
//! no account here, and another tenant's trunks are not found. Who may act
//! on whose account is the caller's decision; trunks belong to the whole
//! tenant, so a tenant context limited to some client organizations is
//! refused (forbidden, `client_scope`).

pub mod trunks;

pub use trunks::{InboundSpec, OutboundSpec, OutboundView, RegistrationView, TrunkSpec, TrunkView};

use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_proto::edge::v1 as pb;
use switchboard_proto::edge::v1::edge_client::EdgeClient;
use switchboard_proto::time::{datetime, timestamp};
use switchboard_rpc::{CallContext, Credentials, ServiceError};
use switchboard_tenancy::{Tenant, TrunkId, UserId};
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

/// Agents' SIP accounts and tenants' carrier trunks.
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

    /// Adds a trunk. Validation names each bad field; conflict for a name
    /// the tenant uses already (`trunk_name_taken`) or an inbound username
    /// any tenant uses (`trunk_username_taken`).
    async fn create_trunk(&self, tenant: &Tenant, spec: TrunkSpec) -> Result<TrunkView>;

    /// At most `limit` trunks, oldest first, after `after`.
    async fn list_trunks(
        &self,
        tenant: &Tenant,
        after: Option<TrunkId>,
        limit: u64,
    ) -> Result<Vec<TrunkView>>;

    /// One trunk; not found for an unknown id or another tenant's.
    async fn get_trunk(&self, tenant: &Tenant, id: TrunkId) -> Result<TrunkView>;

    /// Replaces a trunk whole; an absent password keeps the one set before
    /// while its username stays (a new username needs its password).
    async fn replace_trunk(
        &self,
        tenant: &Tenant,
        id: TrunkId,
        spec: TrunkSpec,
    ) -> Result<TrunkView>;

    /// Removes a trunk; not found when there is none.
    async fn delete_trunk(&self, tenant: &Tenant, id: TrunkId) -> Result<()>;
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
        self.signed(
            tenant,
            pb::UserRef {
                user_id: user.to_string(),
            },
        )
    }

    fn signed<T>(&self, tenant: &Tenant, message: T) -> Result<tonic::Request<T>> {
        self.credentials
            .request(message, &CallContext::tenant(tenant.clone()))
            .map_err(|status| ServiceError::from_status(&status))
    }

    fn trunk_ref(&self, tenant: &Tenant, id: TrunkId) -> Result<tonic::Request<pb::TrunkRef>> {
        self.signed(
            tenant,
            pb::TrunkRef {
                trunk_id: id.to_string(),
            },
        )
    }
}

pub(crate) fn malformed(what: &str) -> ServiceError {
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

    async fn create_trunk(&self, tenant: &Tenant, spec: TrunkSpec) -> Result<TrunkView> {
        let request = self.signed(tenant, pb::TrunkSpec::from(spec))?;
        self.client
            .clone()
            .create_trunk(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn list_trunks(
        &self,
        tenant: &Tenant,
        after: Option<TrunkId>,
        limit: u64,
    ) -> Result<Vec<TrunkView>> {
        let request = self.signed(
            tenant,
            pb::ListTrunksRequest {
                after: after.map(|id| id.to_string()),
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
            },
        )?;
        self.client
            .clone()
            .list_trunks(request)
            .await?
            .into_inner()
            .trunks
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }

    async fn get_trunk(&self, tenant: &Tenant, id: TrunkId) -> Result<TrunkView> {
        let request = self.trunk_ref(tenant, id)?;
        self.client
            .clone()
            .get_trunk(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn replace_trunk(
        &self,
        tenant: &Tenant,
        id: TrunkId,
        spec: TrunkSpec,
    ) -> Result<TrunkView> {
        let request = self.signed(
            tenant,
            pb::ReplaceTrunkRequest {
                trunk_id: id.to_string(),
                spec: Some(spec.into()),
            },
        )?;
        self.client
            .clone()
            .replace_trunk(request)
            .await?
            .into_inner()
            .try_into()
    }

    async fn delete_trunk(&self, tenant: &Tenant, id: TrunkId) -> Result<()> {
        let request = self.trunk_ref(tenant, id)?;
        self.client.clone().delete_trunk(request).await?;
        Ok(())
    }
}
