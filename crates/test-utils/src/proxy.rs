//! A TCP proxy a test can close and reopen, to make a backend "go away"
//! while a server runs and come back on the same address.
//!
//! The proxy keeps its listening socket for its whole life: closing it
//! cuts the open connections and drops new ones as soon as they are
//! accepted, instead of releasing the port. A released port can be taken
//! by any other connection on a busy machine (an ephemeral port is free
//! for anyone), so binding it again would fail now and then with
//! `AddrInUse`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Forwards connections from its own loopback port to `target`.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the accept loop (and so frees the port) when the proxy drops.
    stop: CancellationToken,
}

struct Shared {
    /// Whether new connections are forwarded.
    open: AtomicBool,
    /// The forwarded connections, cut by `close`.
    connections: Mutex<Vec<CancellationToken>>,
}

impl TcpProxy {
    /// Starts forwarding from an ephemeral port to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Self {
            addr: listener.local_addr()?,
            shared: Arc::new(Shared {
                open: AtomicBool::new(true),
                connections: Mutex::new(Vec::new()),
            }),
            stop: CancellationToken::new(),
        };
        tokio::spawn(serve(
            listener,
            target,
            proxy.shared.clone(),
            proxy.stop.clone(),
        ));
        Ok(proxy)
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every open connection and drops new ones as soon as they are
    /// accepted: to clients the backend is gone (connections reset or
    /// closed before the backend says a word). The port stays the proxy's.
    pub fn close(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        for token in self
            .shared
            .connections
            .lock()
            .expect("proxy lock")
            .drain(..)
        {
            token.cancel();
        }
    }

    /// Forwards new connections again, on the same address.
    pub fn reopen(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut inbound, _)) = accepted else {
            continue;
        };
        let connection = CancellationToken::new();
        {
            // Checked under the lock `close` drains, so a connection is
            // either refused here or in the list `close` cuts.
            let mut connections = shared.connections.lock().expect("proxy lock");
            if !shared.open.load(Ordering::SeqCst) {
                drop(inbound);
                continue;
            }
            connections.retain(|token| !token.is_cancelled());
            connections.push(connection.clone());
        }
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                _ = connection.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
            }
            connection.cancel();
        });
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.close();
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server on an ephemeral port.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    /// Sends `ping` through the proxy: the echo, or `None` when the
    /// connection is cut before an answer.
    async fn round_trip(addr: SocketAddr) -> Option<Vec<u8>> {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"ping").await.ok()?;
        let mut answer = vec![0; 4];
        stream.read_exact(&mut answer).await.ok()?;
        Some(answer)
    }

    #[tokio::test]
    async fn a_closed_proxy_keeps_its_port_and_forwards_again_when_reopened() {
        let proxy = TcpProxy::start(echo().await).await.unwrap();
        assert_eq!(
            round_trip(proxy.addr()).await.as_deref(),
            Some(&b"ping"[..])
        );

        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut answer = [0; 4];
        open.read_exact(&mut answer).await.unwrap();
        proxy.close();
        // The open connection is cut, new ones do not reach the backend ...
        assert_eq!(open.read(&mut answer).await.unwrap_or(0), 0);
        assert_eq!(round_trip(proxy.addr()).await, None);
        // ... and nobody else can take the port meanwhile.
        let taken = std::net::TcpListener::bind(proxy.addr());
        assert_eq!(
            taken.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse,
            "the closed proxy released its port"
        );

        proxy.reopen();
        assert_eq!(
            round_trip(proxy.addr()).await.as_deref(),
            Some(&b"ping"[..])
        );
    }
}
