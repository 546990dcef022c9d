//! The object store: recordings, attachments, prompts. Keys are
//! `/`-separated paths that start with the tenant (`<tenant>/recordings/…`).

mod local;
mod s3;

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use self::local::LocalObjectStore;
pub use self::s3::{S3ObjectStore, S3Options};
use crate::{Error, Result};

/// What a listing tells about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `body` under `key`, replacing any previous object.
    async fn put(&self, key: &str, body: Bytes, content_type: Option<&str>) -> Result<()>;

    /// The whole object; [`Error::NotFound`] if absent.
    async fn get(&self, key: &str) -> Result<Bytes>;

    /// Bytes `range.start..range.end` of the object (end exclusive, clamped
    /// to the object's size); [`Error::InvalidArgument`] for an empty range
    /// or one that starts past the end.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;

    /// Removes the object; removing an absent object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// A URL anyone can GET the object from until `expires_in` has passed.
    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String>;

    /// Answers when the backend is reachable (`/readyz`).
    async fn ping(&self) -> Result<()>;
}

/// Rejects keys that could escape a directory or confuse a store: empty,
/// longer than 1024 bytes, starting with `/`, with empty, `.` or `..`
/// segments, or with control characters.
pub fn validate_key(key: &str) -> Result<()> {
    let invalid = |why: &str| Err(Error::InvalidArgument(format!("object key {key:?} {why}")));
    if key.is_empty() {
        return invalid("is empty");
    }
    if key.len() > 1024 {
        return invalid("is longer than 1024 bytes");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return invalid("starts or ends with '/'");
    }
    if key.chars().any(char::is_control) {
        return invalid("contains control characters");
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return invalid("has an empty, '.' or '..' segment");
    }
    Ok(())
}

/// Checks a listing prefix: empty, or the start of a key — no leading `/`,
/// no `..` segment, no control characters.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let invalid = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "object prefix {prefix:?} {why}"
        )))
    };
    if prefix.len() > 1024 {
        return invalid("is longer than 1024 bytes");
    }
    if prefix.starts_with('/') {
        return invalid("starts with '/'");
    }
    if prefix.chars().any(char::is_control) {
        return invalid("contains control characters");
    }
    if prefix.split('/').any(|segment| segment == "..") {
        return invalid("has a '..' segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_loosely() {
        for prefix in ["", "t1/", "t1/rec", "t1"] {
            assert!(validate_prefix(prefix).is_ok(), "{prefix:?}");
        }
        for prefix in ["/t1/", "t1/../", "..", "t1/\n"] {
            assert!(validate_prefix(prefix).is_err(), "{prefix:?}");
        }
    }
}
