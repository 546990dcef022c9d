//! An S3-compatible server (`s3s-fs`, installed by `scripts/test`) started
//! for one test on an ephemeral port, over a temporary directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
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
    /// Starts `s3s-fs` on a port of its choosing (`--port 0`) and reads
    /// the address from its start-up line: a port picked here and bound
    /// later by the child could be taken in between.
    pub async fn start() -> Self {
        let binary = find_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let access_key = "switchboard-test".to_owned();
        let secret_key = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let mut child = Command::new(&binary)
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .args(["--host", "127.0.0.1", "--port", "0"])
            .arg(dir.path())
            .env("RUST_LOG", "s3s_fs=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(line) = lines.next_line().await.expect("s3s-fs output") {
                if let Some((_, address)) = line.split_once(RUNNING) {
                    return format!("http://{}", address.trim());
                }
            }
            panic!("s3s-fs exited before it listened");
        })
        .await
        .expect("s3s-fs listened within 15 s");
        // Keep reading, so its logs never fill the pipe and block it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            endpoint,
            access_key,
            secret_key,
            _child: child,
            _dir: dir,
        }
    }
}

/// What `s3s-fs` logs, followed by its address, once it listens.
const RUNNING: &str = "server is running at http://";

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
