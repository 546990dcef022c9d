//! One behaviour suite for every `ObjectStore` implementation: a local
//! directory (its presigned URLs served over HTTP on an ephemeral port),
//! and a real S3-compatible server (`s3s-fs`, started per test).

use std::any::Any;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, RANGE};
use switchboard_platform::objects::{LocalObjectStore, S3ObjectStore, S3Options};
use switchboard_platform::{Error, ObjectStore};
use switchboard_test_utils::{ClosedPort, S3Server, eventually, init_tracing, unique_name};

/// Asserts that `$call` (a future) fails with an error matching `$pattern`.
macro_rules! assert_fails {
    ($call:expr, $pattern:pat) => {{
        let error = $call.await.expect_err(stringify!($call));
        assert!(
            matches!(error, $pattern),
            "{}: {error:?}",
            stringify!($call)
        );
    }};
}

async fn put_then_get_returns_the_same_bytes_and_put_replaces(store: Arc<dyn ObjectStore>) {
    store
        .put(
            "t1/notes/a.txt",
            Bytes::from_static(b"hello"),
            Some("text/plain"),
        )
        .await
        .unwrap();
    assert_eq!(store.get("t1/notes/a.txt").await.unwrap(), "hello");

    store
        .put("t1/notes/a.txt", Bytes::from_static(b"a longer body"), None)
        .await
        .unwrap();
    assert_eq!(store.get("t1/notes/a.txt").await.unwrap(), "a longer body");
    store
        .put("t1/notes/a.txt", Bytes::from_static(b"short"), None)
        .await
        .unwrap();
    assert_eq!(store.get("t1/notes/a.txt").await.unwrap(), "short");
    assert_eq!(
        sizes(&*store, "t1/").await,
        [("t1/notes/a.txt".to_owned(), 5)]
    );
}

async fn get_range_returns_exactly_the_requested_slice(store: Arc<dyn ObjectStore>) {
    let body: Vec<u8> = (0..100).collect();
    store
        .put("t1/ranged", body.clone().into(), None)
        .await
        .unwrap();
    let slice = |range: Range<u64>| {
        let store = store.clone();
        async move { store.get_range("t1/ranged", range).await.unwrap() }
    };
    assert_eq!(slice(10..20).await, body[10..20]);
    assert_eq!(slice(0..1).await, body[..1]);
    assert_eq!(slice(99..100).await, body[99..]);
    assert_eq!(slice(0..100).await, body);
    assert_eq!(
        slice(90..1_000).await,
        body[90..],
        "the end is clamped to the size"
    );

    assert_fails!(
        store.get_range("t1/ranged", 100..110),
        Error::InvalidArgument(_)
    );
    assert_fails!(
        store.get_range("t1/ranged", 500..600),
        Error::InvalidArgument(_)
    );
    assert_fails!(
        store.get_range("t1/ranged", 5..5),
        Error::InvalidArgument(_)
    );
    assert_fails!(
        store.get_range("t1/ranged", Range { start: 10, end: 5 }),
        Error::InvalidArgument(_)
    );
    assert_fails!(store.get_range("t1/missing", 0..10), Error::NotFound(_));
}

async fn missing_objects_are_not_found_and_deleting_them_is_fine(store: Arc<dyn ObjectStore>) {
    assert_fails!(store.get("t1/never-written"), Error::NotFound(_));
    store.delete("t1/never-written").await.unwrap();

    store
        .put("t1/doomed", Bytes::from_static(b"x"), Some("text/plain"))
        .await
        .unwrap();
    store.delete("t1/doomed").await.unwrap();
    assert_fails!(store.get("t1/doomed"), Error::NotFound(_));
    store.delete("t1/doomed").await.unwrap();
    assert!(store.list("").await.unwrap().is_empty());
}

async fn list_returns_the_keys_under_a_prefix_in_key_order_with_sizes(store: Arc<dyn ObjectStore>) {
    assert!(
        store.list("").await.unwrap().is_empty(),
        "a new store is empty"
    );
    for (key, size) in [
        ("t10/x", 4),
        ("t1/b", 2),
        ("t2/y", 5),
        ("t1/sub/c", 3),
        ("t1/a", 1),
    ] {
        store.put(key, vec![b'.'; size].into(), None).await.unwrap();
    }
    let expected = |entries: &[(&str, u64)]| -> Vec<(String, u64)> {
        entries
            .iter()
            .map(|(key, size)| ((*key).to_owned(), *size))
            .collect()
    };
    assert_eq!(
        sizes(&*store, "t1/").await,
        expected(&[("t1/a", 1), ("t1/b", 2), ("t1/sub/c", 3)])
    );
    assert_eq!(sizes(&*store, "t10/").await, expected(&[("t10/x", 4)]));
    assert_eq!(
        sizes(&*store, "t1/sub/").await,
        expected(&[("t1/sub/c", 3)])
    );
    assert_eq!(sizes(&*store, "t1/s").await, expected(&[("t1/sub/c", 3)]));
    assert_eq!(
        sizes(&*store, "").await,
        expected(&[
            ("t1/a", 1),
            ("t1/b", 2),
            ("t1/sub/c", 3),
            ("t10/x", 4),
            ("t2/y", 5)
        ])
    );
    assert!(store.list("t3/").await.unwrap().is_empty());
    assert!(
        store
            .list("t1/")
            .await
            .unwrap()
            .iter()
            .all(|object| object.last_modified.is_some())
    );

    assert_fails!(store.list("/t1/"), Error::InvalidArgument(_));
    assert_fails!(store.list("t1/../t2/"), Error::InvalidArgument(_));
}

async fn list_pages_through_more_than_a_thousand_objects(store: Arc<dyn ObjectStore>) {
    let keys: Vec<String> = (0..1050).map(|i| format!("t1/many/{i:05}")).collect();
    futures::stream::iter(keys.clone())
        .map(|key| {
            let store = store.clone();
            async move { store.put(&key, Bytes::from_static(b"."), None).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    store
        .put("t1/other", Bytes::from_static(b"."), None)
        .await
        .unwrap();

    let listed: Vec<String> = store
        .list("t1/many/")
        .await
        .unwrap()
        .into_iter()
        .map(|object| object.key)
        .collect();
    assert_eq!(listed.len(), 1050);
    assert_eq!(listed, keys);
    assert_eq!(store.list("t1/").await.unwrap().len(), 1051);
}

async fn presigned_url_serves_the_object(store: Arc<dyn ObjectStore>) {
    let key = "t1/recordings/call 1+ä.wav";
    let body = Bytes::from_static(b"RIFF....WAVEfmt ");
    store
        .put(key, body.clone(), Some("audio/wav"))
        .await
        .unwrap();

    let url = store
        .presign_get(key, Duration::from_secs(300))
        .await
        .unwrap();
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert_eq!(response.headers()[CONTENT_TYPE], "audio/wav");
    assert_eq!(response.content_length(), Some(body.len() as u64));
    assert_eq!(response.bytes().await.unwrap(), body);

    let url = store
        .presign_get("t1/recordings/missing.wav", Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn presigned_url_serves_byte_ranges(store: Arc<dyn ObjectStore>) {
    let body: Bytes = (0..=255).collect::<Vec<u8>>().into();
    store
        .put("t1/ranged.bin", body.clone(), None)
        .await
        .unwrap();
    let url = store
        .presign_get("t1/ranged.bin", Duration::from_secs(300))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let fetch = |range: &'static str| client.get(&url).header(RANGE, range).send();

    let response = fetch("bytes=10-19").await.unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()[CONTENT_RANGE], "bytes 10-19/256");
    assert_eq!(response.bytes().await.unwrap(), body.slice(10..20));

    let response = fetch("bytes=250-").await.unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()[CONTENT_RANGE], "bytes 250-255/256");
    assert_eq!(response.bytes().await.unwrap(), body.slice(250..));

    assert_eq!(
        fetch("bytes=300-").await.unwrap().status(),
        StatusCode::RANGE_NOT_SATISFIABLE
    );
}

async fn tampered_presigned_url_is_refused(store: Arc<dyn ObjectStore>) {
    store
        .put("t1/secret", Bytes::from_static(b"s"), None)
        .await
        .unwrap();
    let url = store
        .presign_get("t1/secret", Duration::from_secs(300))
        .await
        .unwrap();
    // Change the first character of the signature (`signature=` locally,
    // `X-Amz-Signature=` on S3).
    let at = url.find("ignature=").expect("a signature parameter") + "ignature=".len();
    let flipped = if url[at..].starts_with('0') { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    assert_eq!(
        reqwest::get(&tampered).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);
}

async fn presigned_url_stops_working_once_expired(store: Arc<dyn ObjectStore>) {
    store
        .put("t1/short-lived", Bytes::from_static(b"s"), None)
        .await
        .unwrap();
    let url = store
        .presign_get("t1/short-lived", Duration::from_secs(1))
        .await
        .unwrap();
    let expired = eventually(Duration::from_secs(10), || async {
        reqwest::get(&url).await.unwrap().status() == StatusCode::FORBIDDEN
    })
    .await;
    assert!(expired, "{url} still works");
}

async fn invalid_keys_are_refused_and_nothing_is_written(store: Arc<dyn ObjectStore>) {
    for key in ["", "/abs", "a/../b", "a//b", "x\n", "a/./b", "trailing/"] {
        assert_fails!(
            store.put(key, Bytes::from_static(b"x"), None),
            Error::InvalidArgument(_)
        );
        assert_fails!(store.get(key), Error::InvalidArgument(_));
        assert_fails!(store.get_range(key, 0..1), Error::InvalidArgument(_));
        assert_fails!(store.delete(key), Error::InvalidArgument(_));
        assert_fails!(
            store.presign_get(key, Duration::from_secs(60)),
            Error::InvalidArgument(_)
        );
    }
    assert!(store.list("").await.unwrap().is_empty());
}

async fn binary_payloads_round_trip_unchanged(store: Arc<dyn ObjectStore>) {
    let every_byte: Bytes = (0..=255).collect::<Vec<u8>>().into();
    store
        .put(
            "t1/every-byte",
            every_byte.clone(),
            Some("application/octet-stream"),
        )
        .await
        .unwrap();
    assert_eq!(store.get("t1/every-byte").await.unwrap(), every_byte);

    let large = pseudo_random(5 * 1024 * 1024);
    store.put("t1/large", large.clone(), None).await.unwrap();
    assert!(
        store.get("t1/large").await.unwrap() == large,
        "5 MiB body changed"
    );
    let middle = 3 * 1024 * 1024..3 * 1024 * 1024 + 4096;
    assert!(
        store.get_range("t1/large", middle.clone()).await.unwrap()
            == large.slice(3 * 1024 * 1024..3 * 1024 * 1024 + 4096)
    );
    assert_eq!(
        sizes(&*store, "t1/large").await,
        [("t1/large".to_owned(), large.len() as u64)]
    );
}

async fn readers_never_see_a_half_written_object(store: Arc<dyn ObjectStore>) {
    let size = 512 * 1024;
    store
        .put("t1/busy", vec![b'a'; size].into(), None)
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..20 {
                let fill = if round % 2 == 0 { b'b' } else { b'a' };
                store
                    .put("t1/busy", vec![fill; size].into(), None)
                    .await
                    .unwrap();
            }
        })
    };
    while !writer.is_finished() {
        let body = store.get("t1/busy").await.unwrap();
        assert_eq!(body.len(), size);
        assert!(body.iter().all(|byte| *byte == body[0]), "mixed object");
    }
    writer.await.unwrap();
}

async fn ping_answers(store: Arc<dyn ObjectStore>) {
    store.ping().await.unwrap();
}

async fn sizes(store: &dyn ObjectStore, prefix: &str) -> Vec<(String, u64)> {
    store
        .list(prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|object| (object.key, object.size))
        .collect()
}

/// Deterministic bytes that compress badly (xorshift).
fn pseudo_random(len: usize) -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// A store for one test, and what must live as long as it does.
struct Fixture {
    store: Arc<dyn ObjectStore>,
    _guard: Box<dyn Any + Send>,
}

async fn local() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = serve_local(dir.path()).await;
    Fixture {
        store: Arc::new(store),
        _guard: Box::new(dir),
    }
}

/// Opens a local store in `dir` and serves its presigned URLs on an
/// ephemeral port, which its URLs point at.
async fn serve_local(dir: &Path) -> (LocalObjectStore, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = LocalObjectStore::open(dir.to_owned(), format!("http://{addr}"), None)
        .await
        .unwrap();
    let router = store.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (store, addr)
}

async fn s3() -> Fixture {
    let server = S3Server::start().await;
    let store = S3ObjectStore::connect(s3_options(&server, &unique_name("sbt").replace('_', "-")))
        .await
        .expect("s3s-fs answers");
    Fixture {
        store: Arc::new(store),
        _guard: Box::new(server),
    }
}

fn s3_options(server: &S3Server, bucket: &str) -> S3Options {
    S3Options {
        endpoint: Some(server.endpoint.clone()),
        region: "us-east-1".into(),
        bucket: bucket.into(),
        access_key_id: server.access_key.clone(),
        secret_access_key: server.secret_key.clone(),
        force_path_style: true,
        create_bucket: true,
    }
}

macro_rules! conformance {
    ($module:ident) => {
        mod $module {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        init_tracing();
                        let fixture = super::$module().await;
                        tokio::time::timeout(
                            Duration::from_secs(60),
                            super::$name(fixture.store.clone()),
                        )
                        .await
                        .expect("test timed out");
                    }
                };
            }

            case!(put_then_get_returns_the_same_bytes_and_put_replaces);
            case!(get_range_returns_exactly_the_requested_slice);
            case!(missing_objects_are_not_found_and_deleting_them_is_fine);
            case!(list_returns_the_keys_under_a_prefix_in_key_order_with_sizes);
            case!(list_pages_through_more_than_a_thousand_objects);
            case!(presigned_url_serves_the_object);
            case!(presigned_url_serves_byte_ranges);
            case!(tampered_presigned_url_is_refused);
            case!(presigned_url_stops_working_once_expired);
            case!(invalid_keys_are_refused_and_nothing_is_written);
            case!(binary_payloads_round_trip_unchanged);
            case!(readers_never_see_a_half_written_object);
            case!(ping_answers);
        }
    };
}

conformance!(local);
conformance!(s3);

#[tokio::test]
async fn s3_ping_against_a_closed_port_is_unavailable_within_seconds() {
    init_tracing();
    let closed = ClosedPort::new().unwrap();
    let port = closed.port();
    let store = S3ObjectStore::connect(S3Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        bucket: "nowhere".into(),
        access_key_id: "k".into(),
        secret_access_key: "s".into(),
        force_path_style: true,
        create_bucket: false,
    })
    .await
    .expect("connect does not reach the server");
    let error = tokio::time::timeout(Duration::from_secs(10), store.ping())
        .await
        .expect("ping gave up within 10 s")
        .expect_err("nothing listens");
    assert!(error.is_unavailable(), "{error:?}");
}

#[tokio::test]
async fn s3_connecting_again_to_an_existing_bucket_keeps_its_objects() {
    init_tracing();
    let server = S3Server::start().await;
    let bucket = unique_name("sbt").replace('_', "-");
    let first = S3ObjectStore::connect(s3_options(&server, &bucket))
        .await
        .unwrap();
    first
        .put("t1/kept", Bytes::from_static(b"kept"), None)
        .await
        .unwrap();
    let second = S3ObjectStore::connect(s3_options(&server, &bucket))
        .await
        .unwrap();
    assert_eq!(second.get("t1/kept").await.unwrap(), "kept");
}

#[tokio::test]
async fn local_store_reopened_keeps_its_objects_and_presign_key() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = serve_local(dir.path()).await;
    first
        .put("t1/kept", Bytes::from_static(b"kept"), Some("text/plain"))
        .await
        .unwrap();
    let url = first
        .presign_get("t1/kept", Duration::from_secs(300))
        .await
        .unwrap();
    drop(first);

    let (second, addr) = serve_local(dir.path()).await;
    assert_eq!(second.get("t1/kept").await.unwrap(), "kept");
    // The same signed path and query, asked of the reopened store.
    let (_, signed) = url.split_once("/objects/").unwrap();
    let response = reqwest::get(format!("http://{addr}/objects/{signed}"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/plain");
    assert_eq!(response.bytes().await.unwrap(), "kept");
    assert_eq!(
        sizes(&second, "").await,
        [("t1/kept".to_owned(), 4)],
        "the store's own files are not listed"
    );
}

#[tokio::test]
async fn local_store_keeps_dot_names_for_itself() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = serve_local(dir.path()).await;
    let key_file = std::fs::read(dir.path().join(".presign-key")).unwrap();
    assert_eq!(key_file.len(), 32);
    assert_fails!(
        store.put(".presign-key", Bytes::from_static(b"mine"), None),
        Error::InvalidArgument(_)
    );
    assert_fails!(store.get(".meta/x"), Error::InvalidArgument(_));
    assert_eq!(
        std::fs::read(dir.path().join(".presign-key")).unwrap(),
        key_file
    );
    assert!(store.list(".").await.unwrap().is_empty());
    assert!(store.list(".meta/").await.unwrap().is_empty());
}

#[tokio::test]
async fn local_store_refuses_a_key_that_is_also_a_prefix_of_another() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = serve_local(dir.path()).await;
    store
        .put("t1/a", Bytes::from_static(b"file"), None)
        .await
        .unwrap();
    assert_fails!(
        store.put("t1/a/b", Bytes::from_static(b"x"), None),
        Error::InvalidArgument(_)
    );
    store
        .put("t1/c/d", Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    assert_fails!(
        store.put("t1/c", Bytes::from_static(b"x"), None),
        Error::InvalidArgument(_)
    );
    assert_fails!(store.get("t1/c"), Error::NotFound(_));
    assert_fails!(store.get("t1/a/b"), Error::NotFound(_));
    // Once `t1/c/d` is gone, so is the directory, and `t1/c` can be written.
    store.delete("t1/c/d").await.unwrap();
    store
        .put("t1/c", Bytes::from_static(b"now a file"), None)
        .await
        .unwrap();
    assert_eq!(
        sizes(&store, "t1/").await,
        [("t1/a".to_owned(), 4), ("t1/c".to_owned(), 10)]
    );
}
