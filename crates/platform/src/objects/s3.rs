//! The production object store: any S3-compatible service (AWS S3, MinIO,
//! Garage, Ceph RGW, s3s) through aws-sdk-s3, with static credentials from
//! the configuration.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{ObjectMeta, ObjectStore, validate_key, validate_prefix};
use crate::{BackendKind, Error, Result};

/// Where the bucket is and how to sign in.
#[derive(Clone)]
pub struct S3Options {
    /// `None` for AWS itself; the service's URL for S3-compatible stores.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `https://host/bucket/key` rather than `https://bucket.host/key`;
    /// most S3-compatible stores want it.
    pub force_path_style: bool,
    /// Create the bucket at connect time when it does not exist.
    pub create_bucket: bool,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("force_path_style", &self.force_path_style)
            .field("create_bucket", &self.create_bucket)
            .finish_non_exhaustive()
    }
}

/// Objects in one S3 bucket. Cheap to clone.
#[derive(Clone, Debug)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
}

impl S3ObjectStore {
    /// Builds the client; reaches the service only to create the bucket
    /// when asked to ([`ObjectStore::ping`] checks it is reachable).
    pub async fn connect(options: S3Options) -> Result<Self> {
        if options.bucket.is_empty() {
            return Err(Error::InvalidArgument("the S3 bucket name is empty".into()));
        }
        let credentials = Credentials::new(
            options.access_key_id,
            options.secret_access_key,
            None,
            None,
            "switchboard-config",
        );
        // A dead endpoint fails in seconds instead of hanging a caller.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(30))
            .build();
        let mut config = aws_sdk_s3::config::Builder::new()
            .behavior_version_latest()
            .region(Region::new(options.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(options.force_path_style)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            // S3-compatible stores often reject the newer default checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let store = Self {
            client: Client::from_conf(config.build()),
            bucket: options.bucket,
        };
        if options.create_bucket {
            store.create_bucket_if_missing(&options.region).await?;
        }
        Ok(store)
    }

    async fn create_bucket_if_missing(&self, region: &str) -> Result<()> {
        let bucket = &self.bucket;
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(()),
            Err(error) => match map_error(error, &format!("bucket {bucket:?}")) {
                Error::NotFound(_) => {}
                error => return Err(error),
            },
        }
        // AWS wants the region spelled out everywhere but in us-east-1.
        let location = (region != "us-east-1").then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build()
        });
        let created = self
            .client
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(location)
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(bucket = %bucket, "created object bucket");
                Ok(())
            }
            Err(error) if error.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(error) => Err(map_error(error, &format!("creating bucket {bucket:?}"))),
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, body: Bytes, content_type: Option<&str>) -> Result<()> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .set_content_type(content_type.map(str::to_owned))
            .send()
            .await
            .map_err(|error| map_error(error, &object(key)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        validate_key(key)?;
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| map_error(error, &object(key)))?;
        collect(key, output.body).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        validate_key(key)?;
        if range.start >= range.end {
            return Err(Error::InvalidArgument(format!("range {range:?} is empty")));
        }
        // The service clamps the end to the size, and answers 416
        // InvalidRange when the start is past it.
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|error| map_error(error, &object(key)))?;
        let ranged = output.content_range().is_some();
        let body = collect(key, output.body).await?;
        if ranged {
            return Ok(body);
        }
        // A store that ignored the Range header sent the whole object.
        let size = body.len() as u64;
        if range.start >= size {
            return Err(Error::InvalidArgument(format!(
                "range {range:?} starts past the end of object {key:?} ({size} bytes)"
            )));
        }
        Ok(body.slice(range.start as usize..range.end.min(size) as usize))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match deleted.map_err(|error| map_error(error, &object(key))) {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        validate_prefix(prefix)?;
        let mut objects = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_prefix((!prefix.is_empty()).then(|| prefix.to_owned()))
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(|error| map_error(error, &format!("listing {prefix:?}")))?;
            objects.extend(page.contents().iter().filter_map(|object| {
                Some(ObjectMeta {
                    key: object.key()?.to_owned(),
                    size: object
                        .size()
                        .and_then(|size| u64::try_from(size).ok())
                        .unwrap_or(0),
                    last_modified: object.last_modified().and_then(|at| {
                        DateTime::<Utc>::from_timestamp(at.secs(), at.subsec_nanos())
                    }),
                })
            }));
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => {
                    continuation = Some(token.to_owned())
                }
                _ => break,
            }
        }
        // S3 lists in UTF-8 byte order already; not every compatible store does.
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String> {
        validate_key(key)?;
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|error| Error::InvalidArgument(format!("expiry {expires_in:?}: {error}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|error| map_error(error, &object(key)))?;
        Ok(request.uri().to_owned())
    }

    async fn ping(&self) -> Result<()> {
        let bucket = &self.bucket;
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(error) => Err(match map_error(error, &format!("bucket {bucket:?}")) {
                Error::NotFound(_) => Error::backend(
                    BackendKind::Objects,
                    format!("bucket {bucket:?} does not exist"),
                ),
                error => error,
            }),
        }
    }
}

fn object(key: &str) -> String {
    format!("object {key:?}")
}

async fn collect(key: &str, body: ByteStream) -> Result<Bytes> {
    let body = body.collect().await.map_err(|error| {
        Error::unavailable(
            BackendKind::Objects,
            format!("reading {}: {}", object(key), DisplayErrorContext(&error)),
        )
    })?;
    Ok(body.into_bytes())
}

/// Sorts an SDK error into ours: no answer → `Unavailable`; 404 →
/// `NotFound`; 416 → `InvalidArgument`; any other answer → `Backend`, with
/// the service's code and message.
fn map_error<E>(error: SdkError<E>, what: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Error::unavailable(
            BackendKind::Objects,
            format!("{what}: {}", DisplayErrorContext(&error)),
        ),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("no code");
            let message = service.err().message().unwrap_or("no message");
            let detail = format!("{what}: HTTP {status} {code}: {message}");
            match (status, code) {
                // A missing bucket is a configuration error, not a missing object.
                (_, "NoSuchBucket") => Error::backend(BackendKind::Objects, detail),
                (404, _) | (_, "NoSuchKey" | "NotFound") => Error::NotFound(what.to_owned()),
                (416, _) | (_, "InvalidRange") => Error::InvalidArgument(detail),
                (503, _) | (_, "SlowDown" | "ServiceUnavailable") => {
                    Error::unavailable(BackendKind::Objects, detail)
                }
                _ => Error::backend(BackendKind::Objects, detail),
            }
        }
        _ => Error::backend(
            BackendKind::Objects,
            format!("{what}: {}", DisplayErrorContext(&error)),
        ),
    }
}
