//! An S3-compatible server (`s3s-fs`, installed by `scripts/test`) started
//! for one test on an ephemeral port, over a temporary directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// A running `s3s-fs`; stopped when dropped.
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` and waits until it accepts connections.
    pub async fn start() -> Self {
        let binary = find_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port().await;
        let access_key = "switchboard-test".to_owned();
        let secret_key = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let child = Command::new(&binary)
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "s3s-fs did not listen on port {port} within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
            _child: child,
            _dir: dir,
        }
    }
}

fn find_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SB_TEST_S3S_FS") {
        return PathBuf::from(path);
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("s3s-fs"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/s3s-fs"));
    }
    candidates
        .into_iter()
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "s3s-fs not found on PATH or in ~/.cargo/bin; run ./scripts/test, which installs it"
            )
        })
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("local addr").port()
}
