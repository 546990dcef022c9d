//! Running the `switchboard` binary as a user does, shared by the tests of
//! this crate.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

/// The binary in `dir`, with no `SWITCHBOARD_*` inherited from the caller.
pub fn switchboard(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("SWITCHBOARD_") {
            command.env_remove(key);
        }
    }
    command
        .env("SWITCHBOARD_SERVER__HTTP_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_SERVER__GRPC_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_SERVER__METRICS_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_EDGE__SIP_UDP", "127.0.0.1:0")
        .env("SWITCHBOARD_EDGE__SIP_TCP", "127.0.0.1:0")
        .env("SWITCHBOARD_READINESS__CHECK_INTERVAL", "200ms");
    command
}

pub async fn run_to_end(command: &mut Command) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        command.stdin(Stdio::null()).output(),
    )
    .await
    .expect("command finished in time")
    .expect("command ran")
}

/// A failure as the user sees it: non-zero exit, the last stderr line an
/// `error:` line naming the cause, no panic, no backtrace.
pub fn assert_clean_failure(output: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected failure, stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: "),
        "last line is not an error line: {stderr}"
    );
    for needle in expected {
        assert!(last.contains(needle), "{needle:?} missing from {last:?}");
    }
}

/// A running `dev`/`serve` process and the HTTP address its banner printed.
pub struct Running {
    pub child: Child,
    pub http: String,
    pub banner: String,
}

pub async fn start(mut command: Command) -> Running {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Press Ctrl-C") {
                return;
            }
        }
        panic!("process ended before its banner: {banner}");
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("banner printed in time");
    let http = banner
        .lines()
        .find_map(|line| line.trim().strip_prefix("HTTP"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("banner names the HTTP address")
        .to_owned();
    Running {
        child,
        http,
        banner,
    }
}

impl Running {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.http)).await.unwrap()
    }

    /// SIGTERM, then the exit status within the grace period.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stopped in time")
            .unwrap()
    }
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

/// A local HTTP receiver recording every POST.
pub async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Received>>>) {
    use axum::extract::State;
    type Log = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;
    let log: Log = Log::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(log): State<Log>, headers: axum::http::HeaderMap, body: String| async move {
                    log.lock().unwrap().push(Received { headers, body });
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}
