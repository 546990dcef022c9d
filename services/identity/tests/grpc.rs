//! `switchboard.identity.v1` over a real gRPC connection: the forwarded
//! credential decides the tenant; another tenant's ids are not found.

use std::sync::Arc;

use switchboard_auth::{LoginThrottle, SigningKey, ThrottlePolicy, TokenKeys};
use switchboard_identity::{Identity, IdentityOptions, RequestOrigin, SignupRequest};
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_proto::identity::v1::identity_service_client::IdentityServiceClient;
use switchboard_proto::identity::v1::{
    AuthenticateRequest, GetTenantRequest, GetUserRequest, ListUsersRequest, authenticate_response,
};
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

fn with_credential<T>(message: T, credential: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {credential}").parse().unwrap(),
    );
    request
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
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(switchboard_identity::grpc::server(identity))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = IdentityServiceClient::new(channel);

    let principal = client
        .authenticate(with_credential(AuthenticateRequest {}, &a_token))
        .await
        .unwrap()
        .into_inner();
    assert!(!principal.client_scoped);
    let Some(authenticate_response::Actor::User(user)) = principal.actor else {
        panic!("a user")
    };
    assert_eq!(user.user_id, a_owner);
    assert_eq!(user.roles, ["owner"]);

    let tenant = client
        .get_tenant(with_credential(GetTenantRequest {}, &a_token))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(tenant.slug, "grpc-a");
    assert_eq!(tenant.id, principal.tenant_id);

    let users = client
        .list_users(with_credential(
            ListUsersRequest {
                limit: 0,
                after: String::new(),
            },
            &a_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(users.users.len(), 1);
    assert_eq!(users.users[0].id, a_owner);
    assert!(users.next_after.is_empty());
    let own = client
        .get_user(with_credential(
            GetUserRequest {
                user_id: a_owner.clone(),
            },
            &a_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.user.unwrap().email, "owner@example.com");

    // B's user with A's credential: not found, exactly like a missing id.
    let error = client
        .get_user(with_credential(
            GetUserRequest {
                user_id: b_owner.clone(),
            },
            &a_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    let error = client
        .get_user(with_credential(
            GetUserRequest {
                user_id: "nope".into(),
            },
            &a_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert!(
        client
            .get_user(with_credential(
                GetUserRequest { user_id: b_owner },
                &b_token
            ))
            .await
            .is_ok()
    );

    // No credential, or a forged one: unauthenticated.
    let error = client
        .get_tenant(tonic::Request::new(GetTenantRequest {}))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    let error = client
        .get_tenant(with_credential(GetTenantRequest {}, "not.a.jwt"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    let error = client
        .list_users(with_credential(
            ListUsersRequest {
                limit: 500,
                after: String::new(),
            },
            &a_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
}
