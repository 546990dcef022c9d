//! The set of backends a process runs on, built from the configuration,
//! and their health for `/readyz`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_config::{BusBackend, CacheBackend, Config, ObjectsBackend};

use crate::bus::{MemoryBus, RabbitMqBus};
use crate::cache::{MemoryCache, RedisCache};
use crate::database::{DatabaseKind, DatabaseOptions};
use crate::objects::{LocalObjectStore, S3ObjectStore, S3Options};
use crate::{BackendKind, Bus, Cache, Database, Error, ObjectStore, Result};

/// Every backend a service may use. Cheap to clone.
#[derive(Clone)]
pub struct Backends {
    pub database: Database,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<dyn Bus>,
    pub objects: Arc<dyn ObjectStore>,
    /// The local object store, when objects are local: its router serves
    /// presigned URLs from the HTTP server.
    pub local_objects: Option<LocalObjectStore>,
    /// Which implementation backs each kind, for logs and `/readyz`.
    pub implementations: Implementations,
}

/// Which implementation backs each backend kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Implementations {
    pub database: &'static str,
    pub cache: &'static str,
    pub bus: &'static str,
    pub objects: &'static str,
}

impl Implementations {
    pub fn of(&self, kind: BackendKind) -> &'static str {
        match kind {
            BackendKind::Database => self.database,
            BackendKind::Cache => self.cache,
            BackendKind::Bus => self.bus,
            BackendKind::Objects => self.objects,
        }
    }
}

/// One backend's answer to a readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    pub backend: BackendKind,
    pub implementation: &'static str,
    pub latency: Duration,
    /// Why it is not ready; `None` when it answered.
    pub error: Option<String>,
}

impl BackendStatus {
    pub fn is_ready(&self) -> bool {
        self.error.is_none()
    }
}

impl Backends {
    /// Connects every backend the configuration names, all at once; the
    /// first failure is returned, naming the backend and the cause.
    pub async fn connect(config: &Config) -> Result<Self> {
        let database = async {
            let options = DatabaseOptions {
                max_connections: config.database.max_connections,
                connect_timeout: config.database.connect_timeout,
            };
            let database = Database::connect(&config.database_url(), &options).await?;
            match config.system_database_url() {
                Some(url) => database.with_system(Database::connect(&url, &options).await?),
                None => Ok(database),
            }
        };
        let cache = async {
            Ok::<_, Error>(match config.cache.backend {
                CacheBackend::Memory => (Arc::new(MemoryCache::new()) as Arc<dyn Cache>, "memory"),
                CacheBackend::Redis => {
                    let redis = &config.cache.redis;
                    (
                        Arc::new(RedisCache::connect(redis.url.expose(), &redis.key_prefix).await?)
                            as Arc<dyn Cache>,
                        "redis",
                    )
                }
            })
        };
        let bus = async {
            Ok::<_, Error>(match config.bus.backend {
                BusBackend::Memory => (Arc::new(MemoryBus::new()) as Arc<dyn Bus>, "memory"),
                BusBackend::Rabbitmq => {
                    let rabbitmq = &config.bus.rabbitmq;
                    let bus = RabbitMqBus::connect(
                        rabbitmq.url.expose(),
                        &rabbitmq.exchange,
                        rabbitmq.prefetch,
                    )
                    .await?;
                    (Arc::new(bus) as Arc<dyn Bus>, "rabbitmq")
                }
            })
        };
        let objects = async {
            Ok::<_, Error>(match config.objects.backend {
                ObjectsBackend::Local => {
                    let secret = config
                        .objects
                        .local
                        .presign_secret
                        .as_ref()
                        .map(|secret| secret.expose().as_bytes().to_vec());
                    let store = LocalObjectStore::open(
                        config.local_objects_dir(),
                        config.public_url(),
                        secret,
                    )
                    .await?;
                    (
                        Arc::new(store.clone()) as Arc<dyn ObjectStore>,
                        Some(store),
                        "local",
                    )
                }
                ObjectsBackend::S3 => {
                    let s3 = &config.objects.s3;
                    let store = S3ObjectStore::connect(S3Options {
                        endpoint: s3.endpoint.clone(),
                        region: s3.region.clone(),
                        bucket: s3.bucket.clone(),
                        access_key_id: s3.access_key_id.clone(),
                        secret_access_key: s3
                            .secret_access_key
                            .as_ref()
                            .map(|key| key.expose().to_owned())
                            .unwrap_or_default(),
                        force_path_style: s3.force_path_style,
                        create_bucket: s3.create_bucket,
                    })
                    .await?;
                    (Arc::new(store) as Arc<dyn ObjectStore>, None, "s3")
                }
            })
        };
        let (
            database,
            (cache, cache_name),
            (bus, bus_name),
            (objects, local_objects, objects_name),
        ) = tokio::try_join!(database, cache, bus, objects)?;
        let implementations = Implementations {
            database: match database.kind() {
                DatabaseKind::Postgres => "postgres",
                DatabaseKind::Sqlite => "sqlite",
            },
            cache: cache_name,
            bus: bus_name,
            objects: objects_name,
        };
        Ok(Self {
            database,
            cache,
            bus,
            objects,
            local_objects,
            implementations,
        })
    }

    /// Asks every backend at once, each within `timeout`.
    pub async fn check(&self, timeout: Duration) -> Vec<BackendStatus> {
        let (database, cache, bus, objects) = tokio::join!(
            self.timed(BackendKind::Database, timeout, self.database.ping()),
            self.timed(BackendKind::Cache, timeout, self.cache.ping()),
            self.timed(BackendKind::Bus, timeout, self.bus.ping()),
            self.timed(BackendKind::Objects, timeout, self.objects.ping()),
        );
        vec![database, cache, bus, objects]
    }

    async fn timed(
        &self,
        kind: BackendKind,
        timeout: Duration,
        check: impl Future<Output = Result<()>>,
    ) -> BackendStatus {
        let started = Instant::now();
        let error = match tokio::time::timeout(timeout, check).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("{kind} did not answer within {timeout:?}")),
        };
        BackendStatus {
            backend: kind,
            implementation: self.implementations.of(kind),
            latency: started.elapsed(),
            error,
        }
    }

    /// Flushes the bus and closes the database pool (graceful shutdown).
    pub async fn close(&self) {
        if let Err(error) = self.bus.close().await {
            tracing::warn!(error = %error, "closing the bus");
        }
        self.database.close().await;
    }
}
