//! The embedded object store of `switchboard dev`: one plain file per
//! object under a directory, and presigned URLs that the HTTP server answers
//! through [`LocalObjectStore::router`].
//!
//! Layout of the directory:
//! - `<key>`: the object's bytes;
//! - `.meta/<key>`: its content type, when one was given;
//! - `.tmp/`: where a put writes before renaming into place, so a reader
//!   never sees half an object;
//! - `.presign-key`: the generated key that signs URLs.
//!
//! Names starting with `.` at the top belong to the store, so keys whose
//! first segment starts with `.` are refused (tenant keys never do). Being
//! a directory tree, the store cannot hold both `a` and `a/b`; the second
//! put is refused.
//!
//! A presigned URL is `{public_url}/objects/{key}?expires={unix seconds}&signature={hex}`,
//! the signature being HMAC-SHA256(secret, `"{key}\n{expires}"`).

use std::fmt;
use std::io::{self, ErrorKind, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header::{CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use sha2::Sha256;
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{ObjectMeta, ObjectStore, validate_key, validate_prefix};
use crate::{BackendKind, Error, Result};

const META_DIR: &str = ".meta";
const TMP_DIR: &str = ".tmp";
const KEY_FILE: &str = ".presign-key";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// What is percent-encoded in a key placed in a URL path: all but RFC 3986
/// unreserved characters and the `/` separator.
const KEY_IN_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Objects in a local directory. Cheap to clone.
#[derive(Clone)]
pub struct LocalObjectStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    public_url: String,
    secret: Vec<u8>,
}

impl fmt::Debug for LocalObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalObjectStore")
            .field("dir", &self.inner.dir)
            .field("public_url", &self.inner.public_url)
            .finish_non_exhaustive()
    }
}

impl LocalObjectStore {
    /// Opens (creating it if needed) the store in `dir`. URLs are signed
    /// with `presign_secret`, or else with a key generated once and kept in
    /// `<dir>/.presign-key`, so they survive restarts.
    pub async fn open(
        dir: PathBuf,
        public_url: String,
        presign_secret: Option<Vec<u8>>,
    ) -> Result<Self> {
        fs::create_dir_all(dir.join(TMP_DIR))
            .await
            .map_err(|error| io_error(format!("cannot create {}", dir.display()), error))?;
        let secret = match presign_secret {
            Some(secret) if secret.is_empty() => {
                return Err(Error::InvalidArgument("the presign secret is empty".into()));
            }
            Some(secret) => secret,
            None => load_or_create_key(&dir).await?,
        };
        let public_url = public_url.trim_end_matches('/').to_owned();
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                public_url,
                secret,
            }),
        })
    }

    /// Serves presigned URLs: `GET /objects/{*key}?expires=…&signature=…`,
    /// with single byte ranges.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/objects/{*key}", get(serve_presigned))
            .with_state(self.clone())
    }

    fn object_path(&self, key: &str) -> PathBuf {
        self.inner.dir.join(key)
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.inner.dir.join(META_DIR).join(key)
    }

    fn check_key(key: &str) -> Result<()> {
        validate_key(key)?;
        if key.starts_with('.') {
            return Err(Error::InvalidArgument(format!(
                "object key {key:?} starts with '.', which the local store keeps for itself"
            )));
        }
        Ok(())
    }

    fn signature(&self, key: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.inner.secret)
            .expect("HMAC takes keys of any length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// Writes `bytes` to a temporary file and renames it to `path`.
    async fn write_atomically(&self, key: &str, path: &Path, bytes: &[u8]) -> Result<()> {
        let temp = self
            .inner
            .dir
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().simple().to_string());
        fs::write(&temp, bytes)
            .await
            .map_err(|error| io_error(format!("cannot write {}", temp.display()), error))?;
        // A concurrent delete may remove the (then empty) parent directory
        // between creating it and renaming into it: try again.
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            if let Some(parent) = path.parent()
                && let Err(error) = fs::create_dir_all(parent).await
            {
                break Err(error);
            }
            match fs::rename(&temp, path).await {
                Err(error) if error.kind() == ErrorKind::NotFound && attempts < 3 => continue,
                result => break result,
            }
        };
        if let Err(error) = result {
            let _ = fs::remove_file(&temp).await;
            return Err(match error.kind() {
                ErrorKind::NotADirectory | ErrorKind::IsADirectory | ErrorKind::AlreadyExists => {
                    Error::InvalidArgument(format!(
                        "object key {key:?} clashes with another object: the local store cannot hold both `a` and `a/b`"
                    ))
                }
                ErrorKind::InvalidFilename => {
                    Error::InvalidArgument(format!("object key {key:?}: {error}"))
                }
                _ => io_error(format!("cannot write {}", path.display()), error),
            });
        }
        Ok(())
    }

    /// Removes `path` if it is there, then the directories it leaves empty.
    async fn remove(&self, path: &Path, root: &Path) -> Result<()> {
        match fs::remove_file(path).await {
            Ok(()) => {}
            Err(error) if is_absent(&error) => return Ok(()),
            Err(error) => return Err(io_error(format!("cannot remove {}", path.display()), error)),
        }
        let mut dir = path.parent();
        while let Some(parent) = dir.filter(|parent| *parent != root) {
            if fs::remove_dir(parent).await.is_err() {
                break; // not empty (or already gone)
            }
            dir = parent.parent();
        }
        Ok(())
    }

    async fn content_type(&self, key: &str) -> String {
        fs::read_to_string(self.meta_path(key))
            .await
            .unwrap_or_else(|_| DEFAULT_CONTENT_TYPE.to_owned())
    }

    async fn size(&self, key: &str) -> Result<u64> {
        match fs::metadata(self.object_path(key)).await {
            Ok(metadata) if metadata.is_file() => Ok(metadata.len()),
            Ok(_) => Err(not_found(key)),
            Err(error) => Err(read_error(key, error)),
        }
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(&self, key: &str, body: Bytes, content_type: Option<&str>) -> Result<()> {
        Self::check_key(key)?;
        // The object first: if it clashes with another, no sidecar is left
        // behind.
        self.write_atomically(key, &self.object_path(key), &body)
            .await?;
        let meta = self.meta_path(key);
        match content_type {
            Some(content_type) => {
                self.write_atomically(key, &meta, content_type.as_bytes())
                    .await
            }
            None => self.remove(&meta, &self.inner.dir.join(META_DIR)).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        Self::check_key(key)?;
        fs::read(self.object_path(key))
            .await
            .map(Bytes::from)
            .map_err(|error| read_error(key, error))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        Self::check_key(key)?;
        check_range(&range)?;
        let mut file = fs::File::open(self.object_path(key))
            .await
            .map_err(|error| read_error(key, error))?;
        let metadata = file
            .metadata()
            .await
            .map_err(|error| read_error(key, error))?;
        if !metadata.is_file() {
            return Err(not_found(key));
        }
        let size = metadata.len();
        if range.start >= size {
            return Err(Error::InvalidArgument(format!(
                "range {range:?} starts past the end of object {key:?} ({size} bytes)"
            )));
        }
        let length = usize::try_from(range.end.min(size) - range.start)
            .map_err(|_| Error::InvalidArgument(format!("range {range:?} is too large")))?;
        let mut buffer = vec![0; length];
        file.seek(SeekFrom::Start(range.start))
            .await
            .map_err(|error| read_error(key, error))?;
        file.read_exact(&mut buffer)
            .await
            .map_err(|error| read_error(key, error))?;
        Ok(buffer.into())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Self::check_key(key)?;
        self.remove(&self.object_path(key), &self.inner.dir).await?;
        self.remove(&self.meta_path(key), &self.inner.dir.join(META_DIR))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        validate_prefix(prefix)?;
        let root = self.inner.dir.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || list_files(&root, &prefix))
            .await
            .map_err(|error| {
                Error::backend(BackendKind::Objects, format!("listing failed: {error}"))
            })?
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String> {
        Self::check_key(key)?;
        let deadline = SystemTime::now()
            .checked_add(expires_in)
            .and_then(|deadline| deadline.duration_since(UNIX_EPOCH).ok())
            .ok_or_else(|| {
                Error::InvalidArgument(format!("expiry {expires_in:?} is out of range"))
            })?;
        // Rounded up, so the URL works for at least `expires_in`.
        let expires = deadline.as_secs() + u64::from(deadline.subsec_nanos() > 0);
        let signature = hex::encode(self.signature(key, expires).finalize().into_bytes());
        let path = utf8_percent_encode(key, KEY_IN_PATH);
        Ok(format!(
            "{}/objects/{path}?expires={expires}&signature={signature}",
            self.inner.public_url
        ))
    }

    async fn ping(&self) -> Result<()> {
        match fs::metadata(&self.inner.dir).await {
            Ok(metadata) if metadata.is_dir() => Ok(()),
            Ok(_) => Err(Error::unavailable(
                BackendKind::Objects,
                format!("{} is not a directory", self.inner.dir.display()),
            )),
            Err(error) => Err(Error::unavailable(
                BackendKind::Objects,
                format!("{}: {error}", self.inner.dir.display()),
            )),
        }
    }
}

fn check_range(range: &Range<u64>) -> Result<()> {
    if range.start >= range.end {
        return Err(Error::InvalidArgument(format!("range {range:?} is empty")));
    }
    Ok(())
}

/// Every object file whose key starts with `prefix`, sorted by key. Walks
/// only the directory the prefix names, so listing one tenant does not read
/// the others.
fn list_files(root: &Path, prefix: &str) -> Result<Vec<ObjectMeta>> {
    let start = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
    if !start.is_empty() && (validate_key(start).is_err() || start.starts_with('.')) {
        return Ok(Vec::new()); // no key of ours lives there
    }
    let mut objects = Vec::new();
    let mut pending = vec![start.to_owned()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if is_absent(&error) => continue,
            Err(error) => return Err(io_error(format!("cannot list {}", dir.display()), error)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|error| io_error(format!("cannot list {}", dir.display()), error))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: not a key
            };
            if relative.is_empty() && name.starts_with('.') {
                continue; // the store's own files
            }
            let key = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                if format!("{key}/").starts_with(prefix) {
                    pending.push(key);
                }
            } else if file_type.is_file()
                && key.starts_with(prefix)
                && let Ok(metadata) = entry.metadata()
            {
                let last_modified = metadata.modified().ok().map(DateTime::<Utc>::from);
                objects.push(ObjectMeta {
                    key,
                    size: metadata.len(),
                    last_modified,
                });
            }
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

async fn load_or_create_key(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join(KEY_FILE);
    match fs::read(&path).await {
        Ok(key) if !key.is_empty() => return Ok(key),
        Ok(_) => {
            return Err(Error::backend(
                BackendKind::Objects,
                format!("{} is empty", path.display()),
            ));
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(format!("cannot read {}", path.display()), error)),
    }
    let key = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    // Written aside then linked into place: a key file is complete or
    // absent, and of two processes starting at once, one key wins.
    let temp = dir
        .join(TMP_DIR)
        .join(uuid::Uuid::new_v4().simple().to_string());
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let write = async {
        let mut file = options.open(&temp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, &key).await?;
        file.sync_all().await
    };
    write
        .await
        .map_err(|error| io_error(format!("cannot write {}", temp.display()), error))?;
    let linked = fs::hard_link(&temp, &path).await;
    let _ = fs::remove_file(&temp).await;
    match linked {
        Ok(()) => Ok(key),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => fs::read(&path)
            .await
            .map_err(|error| io_error(format!("cannot read {}", path.display()), error)),
        Err(error) => Err(io_error(format!("cannot write {}", path.display()), error)),
    }
}

/// Whether an I/O error means "no such object" (including a path through,
/// or onto, something that is not a file).
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory
    )
}

fn not_found(key: &str) -> Error {
    Error::NotFound(format!("object {key:?}"))
}

fn read_error(key: &str, error: io::Error) -> Error {
    if is_absent(&error) {
        not_found(key)
    } else {
        io_error(format!("cannot read object {key:?}"), error)
    }
}

fn io_error(context: String, error: io::Error) -> Error {
    Error::backend(BackendKind::Objects, format!("{context}: {error}"))
}

#[derive(Deserialize)]
struct PresignedQuery {
    expires: u64,
    signature: String,
}

/// `GET /objects/{*key}` of a presigned URL (a malformed query is answered
/// 400 by the `Query` extractor).
async fn serve_presigned(
    State(store): State<LocalObjectStore>,
    UrlPath(key): UrlPath<String>,
    Query(query): Query<PresignedQuery>,
    headers: HeaderMap,
) -> Response {
    if LocalObjectStore::check_key(&key).is_err() {
        return (StatusCode::BAD_REQUEST, "invalid object key").into_response();
    }
    let signature = hex::decode(&query.signature).unwrap_or_default();
    if store
        .signature(&key, query.expires)
        .verify_slice(&signature)
        .is_err()
    {
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if now >= Duration::from_secs(query.expires) {
        return (StatusCode::FORBIDDEN, "url expired").into_response();
    }
    let size = match store.size(&key).await {
        Ok(size) => size,
        Err(error) => return error_response(error),
    };
    let content_type = HeaderValue::from_str(&store.content_type(&key).await)
        .unwrap_or(HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
    match requested_range(&headers, size) {
        Requested::Whole => match store.get(&key).await {
            Ok(body) => ([(CONTENT_TYPE, content_type)], body).into_response(),
            Err(error) => error_response(error),
        },
        Requested::Part(range) => match store.get_range(&key, range.clone()).await {
            Ok(body) => {
                let content_range = format!("bytes {}-{}/{size}", range.start, range.end - 1);
                (
                    StatusCode::PARTIAL_CONTENT,
                    [(CONTENT_TYPE, content_type)],
                    [(CONTENT_RANGE, content_range)],
                    body,
                )
                    .into_response()
            }
            Err(error) => error_response(error),
        },
        Requested::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(CONTENT_RANGE, format!("bytes */{size}"))],
        )
            .into_response(),
    }
}

fn error_response(error: Error) -> Response {
    match error {
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "no such object").into_response(),
        Error::InvalidArgument(_) => StatusCode::RANGE_NOT_SATISFIABLE.into_response(), // shrank meanwhile
        error => {
            tracing::warn!(%error, "cannot serve presigned object");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What a request's `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum Requested {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// Reads a single byte range (`bytes=first-last`, `bytes=first-`,
/// `bytes=-suffix`) as RFC 9110 §14.1.2 defines it, clamped to `size`.
/// Absent, malformed and multi-range headers are ignored (the whole object
/// is sent), which §14.2 allows. Written here because it is these few lines
/// and the crates that do it pull in a file server.
fn requested_range(headers: &HeaderMap, size: u64) -> Requested {
    let Some(spec) = headers.get(RANGE).and_then(|value| value.to_str().ok()) else {
        return Requested::Whole;
    };
    let Some((first, last)) = spec
        .trim()
        .strip_prefix("bytes=")
        .and_then(|spec| spec.split_once('-'))
    else {
        return Requested::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let from = |start: u64, end: u64| {
        if start >= size {
            Requested::Unsatisfiable
        } else {
            Requested::Part(start..end.min(size))
        }
    };
    match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(first), Ok(last)) if first <= last => from(first, last.saturating_add(1)),
        (Ok(first), Err(_)) if last.is_empty() => from(first, size),
        (Err(_), Ok(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                Requested::Unsatisfiable
            } else {
                Requested::Part(size.saturating_sub(suffix)..size)
            }
        }
        _ => Requested::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(header: &str, size: u64) -> Requested {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, HeaderValue::from_str(header).unwrap());
        requested_range(&headers, size)
    }

    #[test]
    fn range_headers_are_read_as_rfc_9110_says() {
        assert_eq!(range("bytes=0-9", 100), Requested::Part(0..10));
        assert_eq!(range("bytes=90-200", 100), Requested::Part(90..100));
        assert_eq!(range("bytes=10-", 100), Requested::Part(10..100));
        assert_eq!(range("bytes=-30", 100), Requested::Part(70..100));
        assert_eq!(range("bytes=-300", 100), Requested::Part(0..100));
        assert_eq!(range("bytes=100-", 100), Requested::Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), Requested::Unsatisfiable);
        assert_eq!(range("bytes=0-0", 0), Requested::Unsatisfiable);
        assert_eq!(range("bytes=5-2", 100), Requested::Whole);
        assert_eq!(range("bytes=0-1,5-6", 100), Requested::Whole);
        assert_eq!(range("items=0-1", 100), Requested::Whole);
        assert_eq!(requested_range(&HeaderMap::new(), 100), Requested::Whole);
    }
}
