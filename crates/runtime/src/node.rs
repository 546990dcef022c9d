//! A node: one process hosting some services on one set of backends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use switchboard_auth::ServiceKeys;
use switchboard_config::Config;
use switchboard_platform::Backends;
use switchboard_proto::system::v1::system_service_server::SystemServiceServer;
use switchboard_rpc::Authenticated;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;

use crate::grpc::{ReadinessGateLayer, SystemService};
use crate::readiness::{ReadinessProbe, ShutdownSignal};
use crate::{Readiness, RuntimeError};

/// What one service contributes to a node.
pub struct ServiceParts {
    /// The name used in `--services` (`routing`, `identity`, …).
    pub name: &'static str,
    /// Fully-qualified gRPC service names, for gRPC health.
    pub grpc_service_names: Vec<&'static str>,
    /// Adds its gRPC services to the node's routes, if it has any
    /// (`Some(Box::new(|routes| routes.add_service(server)))`).
    pub grpc: Option<Box<dyn FnOnce(Routes) -> Routes + Send>>,
    /// Its HTTP routes, if any (merged into the node's router).
    pub http: Option<Router>,
    /// Its background tasks (event relay, consumers, dispatchers): each is
    /// started with the node and given a token cancelled at shutdown, after
    /// requests have drained and before the backends close.
    pub workers: Vec<Worker>,
    /// Cancelled when the node starts draining, for what must end before
    /// the drain can (a gRPC server stream held open by a peer: it ends,
    /// and the peer re-subscribes elsewhere); `None` for nothing.
    pub draining: Option<CancellationToken>,
}

/// Starts one background task that stops when its token is cancelled.
pub type Worker = Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>;

/// How long stopping workers may take before they are abandoned.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What to run.
pub struct NodeOptions {
    pub config: Config,
    pub services: Vec<ServiceParts>,
    /// The installation id from the database (for `GetNodeInfo`).
    pub installation_id: String,
    /// The internal keys: `switchboard.system.v1` takes only calls with a
    /// service credential they verify (services wrap their own servers).
    pub service_keys: Arc<ServiceKeys>,
}

/// A node with its listeners bound, not serving yet.
pub struct Node {
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    metrics_listener: TcpListener,
    http_router: Router,
    grpc_routes: Routes,
    backends: Backends,
    readiness: Readiness,
    probe: ReadinessProbe,
    shutdown_signal: ShutdownSignal,
    health: tonic_health::server::HealthReporter,
    shutdown_grace: Duration,
    workers: Vec<Worker>,
    /// The services' draining tokens ([`ServiceParts::draining`]).
    streams: Vec<CancellationToken>,
}

impl Node {
    /// Binds both listeners (a port in use fails here, naming the key) and
    /// checks the backends once.
    pub async fn build(options: NodeOptions, backends: Backends) -> Result<Self, RuntimeError> {
        let NodeOptions {
            config,
            services,
            installation_id,
            service_keys,
        } = options;
        // Install the recorder before anything records (readiness gauges).
        crate::metrics::handle();
        let http_listener = bind("server.http_addr", config.server.http_addr).await?;
        let grpc_listener = bind("server.grpc_addr", config.server.grpc_addr).await?;
        let metrics_listener = bind("server.metrics_addr", config.server.metrics_addr).await?;

        let (health, health_service) = tonic_health::server::health_reporter();
        let mut grpc_service_names = vec!["switchboard.system.v1.SystemService"];
        grpc_service_names.extend(
            services
                .iter()
                .flat_map(|service| service.grpc_service_names.iter().copied()),
        );
        let (probe, readiness) = ReadinessProbe::new(
            backends.clone(),
            config.readiness.clone(),
            health.clone(),
            grpc_service_names,
        )
        .await;
        let shutdown_signal = probe.handle();

        let system = SystemService {
            readiness: readiness.clone(),
            services: services
                .iter()
                .map(|service| service.name.to_owned())
                .collect(),
            installation_id,
        };
        let mut grpc_routes = Routes::new(health_service).add_service(Authenticated::new(
            SystemServiceServer::new(system),
            service_keys,
        ));
        // Reflection lists every service and message of the cluster's
        // internal API: served only when the operator asks for it.
        if config.internal.grpc_reflection {
            let reflection = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(switchboard_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()
                .map_err(|error| RuntimeError::Grpc(format!("reflection: {error}")))?;
            grpc_routes = grpc_routes.add_service(reflection);
        }
        let mut service_router = Router::new();
        let mut workers = Vec::new();
        let mut streams = Vec::new();
        if let Some(local_objects) = &backends.local_objects {
            service_router = service_router.merge(local_objects.router());
        }
        for service in services {
            if let Some(add) = service.grpc {
                grpc_routes = add(grpc_routes);
            }
            if let Some(http) = service.http {
                service_router = service_router.merge(http);
            }
            workers.extend(service.workers);
            streams.extend(service.draining);
        }
        let http_router = crate::http::router(readiness.clone(), service_router);
        Ok(Self {
            http_listener,
            grpc_listener,
            metrics_listener,
            http_router,
            grpc_routes,
            backends,
            readiness,
            probe,
            shutdown_signal,
            health,
            shutdown_grace: config.server.shutdown_grace,
            workers,
            streams,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        local_addr(&self.http_listener)
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        local_addr(&self.grpc_listener)
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        local_addr(&self.metrics_listener)
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Starts serving; the returned handle stops the node.
    pub fn start(self) -> NodeHandle {
        let stop = CancellationToken::new();
        let http_addr = self.http_addr();
        let grpc_addr = self.grpc_addr();
        let metrics_addr = self.metrics_addr();
        let readiness = self.readiness.clone();
        let task = tokio::spawn(self.run(stop.clone()));
        NodeHandle {
            stop,
            task,
            http_addr,
            grpc_addr,
            metrics_addr,
            readiness,
        }
    }

    async fn run(self, stop: CancellationToken) -> Result<(), RuntimeError> {
        let Self {
            http_listener,
            grpc_listener,
            metrics_listener,
            http_router,
            grpc_routes,
            backends,
            readiness,
            probe,
            shutdown_signal,
            health,
            shutdown_grace,
            workers,
            streams,
        } = self;
        let draining = CancellationToken::new();
        let workers_stop = CancellationToken::new();
        let workers: Vec<JoinHandle<()>> = workers
            .into_iter()
            .map(|start| start(workers_stop.clone()))
            .collect();
        let probe_stop = CancellationToken::new();
        let probe_task = tokio::spawn(probe.run(probe_stop.clone()));

        let http = {
            let draining = draining.clone();
            tokio::spawn(async move {
                // Responses go out as soon as they are written (no Nagle
                // delay behind an unacknowledged segment).
                let http_listener = http_listener.tap_io(|stream| {
                    let _ = stream.set_nodelay(true);
                });
                axum::serve(
                    http_listener,
                    http_router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move { draining.cancelled().await })
                .await
            })
        };
        // Scraped until the node stops; a scrape is quick, so no draining.
        let metrics_stop = CancellationToken::new();
        let metrics = {
            let stop = metrics_stop.clone();
            tokio::spawn(async move {
                axum::serve(metrics_listener, crate::http::metrics_router())
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            })
        };
        let grpc = {
            let draining = draining.clone();
            let readiness = readiness.clone();
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .layer(ReadinessGateLayer { readiness })
                    .add_routes(grpc_routes)
                    .serve_with_incoming_shutdown(
                        // Many calls share one HTTP/2 connection: without
                        // TCP_NODELAY a response waits behind the previous
                        // one's unacknowledged segment (Nagle).
                        TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                        draining.cancelled(),
                    )
                    .await
            })
        };
        let (mut http, mut grpc) = (http, grpc);
        // Serve until asked to stop, or until a server fails on its own.
        let early_exit = tokio::select! {
            _ = stop.cancelled() => None,
            result = &mut http => Some(format!("HTTP server stopped: {result:?}")),
            result = &mut grpc => Some(format!("gRPC server stopped: {result:?}")),
        };

        tracing::info!("shutting down: draining in-flight requests");
        shutdown_signal.mark();
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        draining.cancel();
        for stream in &streams {
            stream.cancel();
        }
        let drained = tokio::time::timeout(shutdown_grace, async {
            let _ = (&mut http).await;
            let _ = (&mut grpc).await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(grace = ?shutdown_grace, "requests still running after the grace period; stopping them");
            http.abort();
            grpc.abort();
        }
        workers_stop.cancel();
        let stopped = tokio::time::timeout(WORKER_STOP_TIMEOUT, async {
            for worker in workers {
                let _ = worker.await;
            }
        })
        .await;
        if stopped.is_err() {
            tracing::warn!(timeout = ?WORKER_STOP_TIMEOUT, "background workers still running; closing the backends anyway");
        }
        probe_stop.cancel();
        let _ = probe_task.await;
        metrics_stop.cancel();
        let _ = metrics.await;
        backends.close().await;
        tracing::info!("stopped");
        match early_exit {
            Some(reason) => Err(RuntimeError::Grpc(reason)),
            None => Ok(()),
        }
    }
}

/// A running node.
pub struct NodeHandle {
    stop: CancellationToken,
    task: JoinHandle<Result<(), RuntimeError>>,
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    metrics_addr: SocketAddr,
    readiness: Readiness,
}

impl NodeHandle {
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// A token that stops the node when cancelled (for signal handlers).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops accepting, drains in-flight requests (up to the grace period),
    /// flushes the bus and closes the backends.
    pub async fn shutdown(self) -> Result<(), RuntimeError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the node stops (after [`NodeHandle::stop_token`] is
    /// cancelled, or a server fails).
    pub async fn wait(self) -> Result<(), RuntimeError> {
        match self.task.await {
            Ok(result) => result,
            Err(error) => Err(RuntimeError::Grpc(format!("node task failed: {error}"))),
        }
    }
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, RuntimeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RuntimeError::Bind { key, addr, source })
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    // A bound TCP listener always has a local address.
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}
