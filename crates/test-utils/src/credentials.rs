//! Service credentials for tests of internal gRPC APIs: a fresh internal
//! key, and the credentials every such API must refuse.

use std::sync::Arc;

use chrono::{Duration, Utc};
use switchboard_auth::{ServiceClaims, ServiceKeys, SigningKey};
use switchboard_rpc::{CallContext, Credentials};
use switchboard_tenancy::Tenant;

/// A fresh internal key named `kid`.
pub fn service_keys(kid: &str) -> Arc<ServiceKeys> {
    Arc::new(ServiceKeys::new(vec![SigningKey::generate(kid).unwrap()]).unwrap())
}

/// The `authorization` values a tenant-scoped internal API must answer
/// `UNAUTHENTICATED`, each with what it is (for the failure message): none
/// at all, one of `keys` expired an hour ago, one naming `tenant` signed
/// with another key, one of `keys` naming no tenant, and an end user's
/// bearer token.
pub fn refused_credentials(
    keys: &Arc<ServiceKeys>,
    tenant: &Tenant,
) -> Vec<(&'static str, Option<String>)> {
    let mut expired = ServiceClaims::new("gateway", Utc::now() - Duration::hours(1));
    expired.tid = Some(tenant.id().as_uuid());
    let expired = format!("Bearer {}", keys.sign(&expired).unwrap());
    let foreign = Credentials::new(service_keys("another-deployment"), "gateway")
        .token(&CallContext::tenant(tenant.clone()))
        .unwrap();
    let no_tenant = Credentials::new(keys.clone(), "gateway")
        .token(&CallContext::system())
        .unwrap();
    vec![
        ("no credential", None),
        ("an expired credential", Some(expired)),
        ("a credential signed with another key", Some(foreign)),
        ("a credential naming no tenant", Some(no_tenant)),
        (
            "an end user's bearer token",
            Some("Bearer sk_live_abc".to_owned()),
        ),
    ]
}
