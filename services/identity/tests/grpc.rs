//! `switchboard.identity.v1` over a real gRPC connection, wrapped as a node
//! wraps it: no call without a valid service credential; the credential's
//! tenant and principal decide what is seen; another tenant's ids are not
//! found.

use std::sync::Arc;

use switchboard_auth::{
    LoginThrottle, ServiceClaims, ServiceKeys, SigningKey, ThrottlePolicy, TokenKeys,
};
use switchboard_identity::{Identity, IdentityOptions, RequestOrigin, SignupRequest};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_proto::identity::v1::identity_service_client::IdentityServiceClient;
use switchboard_proto::identity::v1::{
    AuthenticateRequest, GetTenantRequest, GetUserRequest, ListUsersRequest, authenticate_response,
};
use switchboard_rpc::{Authenticated, CallContext, Credentials};
use switchboard_test_utils::{fresh_sqlite_database, init_tracing};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";

async fn signup(identity: &Identity, company: &str) -> (String, String) {
    let outcome = identity
        .signup(
            SignupRequest {
                company: company.into(),
                email: "owner@example.com".into(),
                password: PASSWORD.into(),
                display_name: None,
                plan: "trial".into(),
                time_zone: "UTC".into(),
            },
            &RequestOrigin::default(),
        )
        .await
        .unwrap();
    // Plans are set by operators.
    identity
        .set_plan(&outcome.tenant.slug, "starter")
        .await
        .unwrap();
    (outcome.tokens.access_token, outcome.owner.id.to_string())
}

fn internal_keys() -> Arc<ServiceKeys> {
    Arc::new(ServiceKeys::new(vec![SigningKey::generate("internal-test").unwrap()]).unwrap())
}

/// A request with a raw `authorization` value, or none.
fn authorized<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    request
}

/// What the gateway does: authenticate the end user's credential, then
/// call for that principal.
async fn context_of(
    client: &mut IdentityServiceClient<Channel>,
    gateway: &Credentials,
    identity: &Identity,
    token: &str,
) -> CallContext {
    let principal = identity.authenticate_access_token(token).await.unwrap();
    // The same principal comes back over gRPC.
    let answer = client
        .authenticate(
            gateway
                .request(
                    AuthenticateRequest {
                        credential: token.to_owned(),
                    },
                    &CallContext::system(),
                )
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.tenant_id, principal.tenant.id().to_string());
    CallContext::tenant(principal.tenant.clone()).with_principal(principal.to_claim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_answers_over_grpc_for_the_forwarded_credential_only() {
    init_tracing();
    let (url, _dir) = fresh_sqlite_database();
    let database = Database::connect(&url, &DatabaseOptions::default())
        .await
        .unwrap();
    Migrator::up(database.connection(), None).await.unwrap();
    let cache = Arc::new(MemoryCache::new());
    let keys = TokenKeys::new(vec![
        SigningKey::new("g", b"grpc-test-secret-at-least-32-bytes-long".to_vec()).unwrap(),
    ])
    .unwrap();
    let identity = Identity::new(
        database,
        keys,
        LoginThrottle::new(cache.clone(), ThrottlePolicy::default()),
        IdentityOptions::default(),
    )
    .with_credential_cache(cache);
    let (a_token, a_owner) = signup(&identity, "Grpc A").await;
    let (b_token, b_owner) = signup(&identity, "Grpc B").await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let keys = internal_keys();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Authenticated::new(
                switchboard_identity::grpc::server(identity.clone()),
                keys.clone(),
            ))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = IdentityServiceClient::new(channel);
    let gateway = Credentials::new(keys.clone(), "gateway");

    let principal = client
        .authenticate(
            gateway
                .request(
                    AuthenticateRequest {
                        credential: a_token.clone(),
                    },
                    &CallContext::system(),
                )
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(!principal.client_scoped);
    let Some(authenticate_response::Actor::User(user)) = principal.actor else {
        panic!("a user")
    };
    assert_eq!(user.user_id, a_owner);
    assert_eq!(user.roles, ["owner"]);
    let a = context_of(&mut client, &gateway, &identity, &a_token).await;
    let b = context_of(&mut client, &gateway, &identity, &b_token).await;

    let tenant = client
        .get_tenant(gateway.request(GetTenantRequest {}, &a).unwrap())
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(tenant.slug, "grpc-a");
    assert_eq!(tenant.id, principal.tenant_id);

    let users = client
        .list_users(
            gateway
                .request(
                    ListUsersRequest {
                        limit: 0,
                        after: String::new(),
                    },
                    &a,
                )
                .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(users.users.len(), 1);
    assert_eq!(users.users[0].id, a_owner);
    assert!(users.next_after.is_empty());
    let get_user = |user_id: &str, context: &CallContext| {
        gateway
            .request(
                GetUserRequest {
                    user_id: user_id.to_owned(),
                },
                context,
            )
            .unwrap()
    };
    let own = client
        .get_user(get_user(&a_owner, &a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.user.unwrap().email, "owner@example.com");

    // B's user for A's tenant: not found, exactly like a missing id.
    let error = client.get_user(get_user(&b_owner, &a)).await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    let error = client.get_user(get_user("nope", &a)).await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert!(client.get_user(get_user(&b_owner, &b)).await.is_ok());

    // A tenant-scoped call whose credential names no tenant, or carries no
    // principal: unauthenticated.
    let error = client
        .get_tenant(
            gateway
                .request(GetTenantRequest {}, &CallContext::system())
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    let no_principal = CallContext::tenant(a.tenant.clone().unwrap());
    let error = client
        .get_tenant(gateway.request(GetTenantRequest {}, &no_principal).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    // No service credential, an end user's token in its place, one signed
    // with another key, or an expired one: unauthenticated, for every call.
    let stranger = Credentials::new(internal_keys(), "gateway");
    let expired = {
        let mut claims = ServiceClaims::new(
            "gateway",
            chrono::Utc::now() - chrono::TimeDelta::minutes(5),
        );
        claims.tid = Some(a.tenant.as_ref().unwrap().id().as_uuid());
        claims.prn = a.principal.clone();
        format!("Bearer {}", keys.sign(&claims).unwrap())
    };
    let refused: Vec<(&str, Option<String>)> = vec![
        ("no credential", None),
        ("end user's token", Some(format!("Bearer {a_token}"))),
        ("another key", Some(stranger.token(&a).unwrap())),
        ("expired", Some(expired)),
    ];
    for (case, authorization) in refused {
        let authorization = authorization.as_deref();
        let error = client
            .get_tenant(authorized(GetTenantRequest {}, authorization))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated, "{case}: {error:?}");
        let error = client
            .authenticate(authorized(
                AuthenticateRequest {
                    credential: a_token.clone(),
                },
                authorization,
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated, "{case}: {error:?}");
        let error = client
            .get_user(authorized(
                GetUserRequest {
                    user_id: a_owner.clone(),
                },
                authorization,
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated, "{case}: {error:?}");
    }

    // A forged end-user credential in Authenticate: unauthenticated.
    let error = client
        .authenticate(
            gateway
                .request(
                    AuthenticateRequest {
                        credential: "not.a.jwt".into(),
                    },
                    &CallContext::system(),
                )
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    let error = client
        .list_users(
            gateway
                .request(
                    ListUsersRequest {
                        limit: 500,
                        after: String::new(),
                    },
                    &a,
                )
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
}
