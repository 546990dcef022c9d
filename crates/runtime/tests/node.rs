//! A whole node started in process on ephemeral ports, talked to over the
//! wire: health, readiness, metrics, gRPC, the readiness gate, graceful
//! shutdown, and a port already in use.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use switchboard_auth::ServiceKeys;
use switchboard_config::{CacheBackend, Config};
use switchboard_platform::Backends;
use switchboard_proto::system::v1::GetNodeInfoRequest;
use switchboard_proto::system::v1::system_service_client::SystemServiceClient;
use switchboard_rpc::{CallContext, Credentials};
use switchboard_runtime::{Node, NodeHandle, NodeOptions, ServiceParts};
use switchboard_test_utils::{TcpProxy, eventually, init_tracing, redis_url, unique_name};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// An embedded-backend config in `dir`, on ephemeral ports, checking
/// readiness often.
fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.server.http_addr = "127.0.0.1:0".parse().unwrap();
    config.server.grpc_addr = "127.0.0.1:0".parse().unwrap();
    config.server.metrics_addr = "127.0.0.1:0".parse().unwrap();
    config.server.shutdown_grace = Duration::from_secs(5);
    config.readiness.check_interval = Duration::from_millis(100);
    config.readiness.check_timeout = Duration::from_millis(500);
    config
}

/// Told when a request reaches the slow route's handler.
static SLOW_ARRIVED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A service with one fast and one slow route (it works 700 ms).
fn test_service() -> ServiceParts {
    let http = Router::new()
        .route("/v1/echo", get(|| async { "echo" }))
        .route(
            "/v1/slow",
            get(|| async {
                SLOW_ARRIVED.notify_one();
                tokio::time::sleep(Duration::from_millis(700)).await;
                "slow"
            }),
        );
    ServiceParts {
        name: "test",
        grpc_service_names: Vec::new(),
        grpc: None,
        http: Some(http),
        workers: Vec::new(),
        draining: None,
    }
}

/// The internal key every test node and its callers share.
fn service_keys() -> Arc<ServiceKeys> {
    static KEYS: std::sync::OnceLock<Arc<ServiceKeys>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| switchboard_test_utils::service_keys("test-internal"))
        .clone()
}

/// A `GetNodeInfo` request with a valid service credential.
fn node_info_request() -> tonic::Request<GetNodeInfoRequest> {
    Credentials::new(service_keys(), "test")
        .request(GetNodeInfoRequest {}, &CallContext::system())
        .unwrap()
}

async fn start(config: Config) -> NodeHandle {
    let backends = Backends::connect(&config).await.expect("backends");
    let node = Node::build(
        NodeOptions {
            config,
            services: vec![test_service()],
            installation_id: "test-installation".into(),
            service_keys: service_keys(),
        },
        backends,
    )
    .await
    .expect("node builds");
    node.start()
}

async fn channel(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(endpoint.to_owned())
        .unwrap()
        .connect()
        .await
        .expect("gRPC connects")
}

fn url(handle: &NodeHandle, path: &str) -> String {
    format!("http://{}{path}", handle.http_addr())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_serves_health_readiness_and_metrics() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let node = start(test_config(dir.path())).await;

    let health = reqwest::get(url(&node, "/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        health.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );

    let ready = reqwest::get(url(&node, "/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let backends: Vec<(String, String)> = body["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["backend"].as_str().unwrap().to_owned(),
                b["implementation"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        backends,
        [
            ("database", "sqlite"),
            ("cache", "memory"),
            ("bus", "memory"),
            ("objects", "local")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    let echo = reqwest::Client::new()
        .get(url(&node, "/v1/echo"))
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(echo.headers()["x-request-id"], "client-chosen-id");
    assert_eq!(echo.text().await.unwrap(), "echo");

    // Metrics are on their own listener, never on the public port.
    let public = reqwest::get(url(&node, "/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    let metrics = reqwest::get(format!("http://{}/metrics", node.metrics_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("switchboard_backend_up{backend=\"database\",implementation=\"sqlite\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_http_requests_total{"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/v1/echo\""), "{metrics}");

    let missing = reqwest::get(url(&node, "/v1/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );

    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_serves_health_reflection_and_node_info() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.internal.grpc_reflection = true;
    let node = start(config).await;
    let endpoint = format!("http://{}", node.grpc_addr());

    let mut health = HealthClient::new(channel(&endpoint).await);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let status = health
        .check(HealthCheckRequest {
            service: "switchboard.system.v1.SystemService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let services = list_services_by_reflection(&endpoint).await;
    assert!(
        services.contains(&"switchboard.system.v1.SystemService".to_owned()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_owned()),
        "{services:?}"
    );

    let mut system = SystemServiceClient::connect(endpoint).await.unwrap();
    let info = system
        .get_node_info(node_info_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.services, ["test"]);
    assert_eq!(info.installation_id, "test-installation");
    assert_eq!(info.backends.len(), 4);
    assert!(info.backends.iter().all(|backend| backend.ready));

    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_info_needs_a_service_credential_and_reflection_is_off_by_default() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let node = start(test_config(dir.path())).await;
    let endpoint = format!("http://{}", node.grpc_addr());
    let mut system = SystemServiceClient::new(channel(&endpoint).await);

    let refused = system
        .get_node_info(GetNodeInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("missing service credential"));

    let stranger = switchboard_test_utils::service_keys("test-internal");
    let forged = Credentials::new(stranger, "test")
        .request(GetNodeInfoRequest {}, &CallContext::system())
        .unwrap();
    let refused = system.get_node_info(forged).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    assert!(system.get_node_info(node_info_request()).await.is_ok());

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let mut reflection = ServerReflectionClient::new(channel(&endpoint).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let off = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap_err();
    assert_eq!(off.code(), tonic::Code::Unimplemented, "{off:?}");

    node.shutdown().await.unwrap();
}

async fn list_services_by_reflection(endpoint: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(channel(endpoint).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect(),
        other => panic!("unexpected reflection response {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_backend_that_goes_away_and_comes_back() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let proxy = TcpProxy::start(redis_url().trim_start_matches("redis://").parse().unwrap())
        .await
        .unwrap();
    let mut config = test_config(dir.path());
    config.cache.backend = CacheBackend::Redis;
    config.cache.redis.url =
        switchboard_config::SecretUrl::new(format!("redis://{}", proxy.addr()));
    config.cache.redis.key_prefix = unique_name("readiness");
    let node = start(config).await;
    let endpoint = format!("http://{}", node.grpc_addr());
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(url(&node, "/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.close();
    assert!(
        eventually(Duration::from_secs(15), || async {
            client
                .get(url(&node, "/readyz"))
                .send()
                .await
                .unwrap()
                .status()
                == 503
        })
        .await,
        "/readyz stayed ready with Redis gone"
    );
    let body: serde_json::Value = client
        .get(url(&node, "/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["reason"].as_str().unwrap().contains("cache (redis)"),
        "{body}"
    );

    // Service requests are refused with a clear 503, not run half-way.
    let refused = client.get(url(&node, "/v1/echo")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("cache"),
        "{problem}"
    );
    // /healthz still answers: the process is alive.
    assert_eq!(
        client
            .get(url(&node, "/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // gRPC: health says NOT_SERVING and calls get UNAVAILABLE.
    let mut health = HealthClient::new(channel(&endpoint).await);
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    let mut system = SystemServiceClient::connect(endpoint.clone())
        .await
        .unwrap();
    let error = system.get_node_info(node_info_request()).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable);

    proxy.reopen();
    assert!(
        eventually(Duration::from_secs(20), || async {
            client
                .get(url(&node, "/readyz"))
                .send()
                .await
                .unwrap()
                .status()
                == 200
        })
        .await,
        "/readyz did not recover after Redis came back"
    );
    assert_eq!(
        client
            .get(url(&node, "/v1/echo"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    assert!(system.get_node_info(node_info_request()).await.is_ok());

    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_in_flight_requests() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let node = start(test_config(dir.path())).await;
    let slow_url = url(&node, "/v1/slow");
    let health_url = url(&node, "/healthz");
    let in_flight = tokio::spawn(async move { reqwest::get(slow_url).await });
    // Stop once the slow request is in its handler.
    SLOW_ARRIVED.notified().await;
    node.shutdown().await.unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request completed");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slow");
    assert!(
        reqwest::get(health_url).await.is_err(),
        "a stopped node accepts no new connection"
    );
}

#[tokio::test]
async fn a_port_in_use_fails_naming_the_key() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config(dir.path());
    config.server.grpc_addr = taken.local_addr().unwrap();
    let backends = Backends::connect(&config).await.unwrap();
    let error = Node::build(
        NodeOptions {
            config,
            services: Vec::new(),
            installation_id: String::new(),
            service_keys: service_keys(),
        },
        backends,
    )
    .await
    .err()
    .expect("must fail");
    let message = error.to_string();
    assert!(message.contains("server.grpc_addr"), "{message}");
    assert!(
        message.contains(&taken.local_addr().unwrap().to_string()),
        "{message}"
    );
    assert!(message.to_lowercase().contains("in use"), "{message}");
}
