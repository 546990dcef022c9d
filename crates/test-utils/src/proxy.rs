//! A TCP proxy a test can close and reopen, to make a backend "go away"
//! while a server runs and come back on the same address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Forwards connections from its own loopback port to `target`.
pub struct TcpProxy {
    addr: SocketAddr,
    target: SocketAddr,
    open: Mutex<Option<CancellationToken>>,
    connections: Arc<Mutex<Vec<CancellationToken>>>,
}

impl TcpProxy {
    /// Starts forwarding from an ephemeral port to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Self {
            addr: listener.local_addr()?,
            target,
            open: Mutex::new(None),
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and cuts every open connection: to clients the
    /// backend is gone (connections reset, new ones refused).
    pub fn close(&self) {
        if let Some(token) = self.open.lock().expect("proxy lock").take() {
            token.cancel();
        }
        for token in self.connections.lock().expect("proxy lock").drain(..) {
            token.cancel();
        }
    }

    /// Listens again on the same address.
    pub async fn reopen(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&self, listener: TcpListener) {
        let token = CancellationToken::new();
        *self.open.lock().expect("proxy lock") = Some(token.clone());
        let target = self.target;
        let connections = self.connections.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    biased;
                    _ = token.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let connection = CancellationToken::new();
                connections
                    .lock()
                    .expect("proxy lock")
                    .push(connection.clone());
                // Accepted while `close` ran (after it drained the list, or
                // from the backlog before this loop saw the cancellation):
                // the backend is gone for this one too.
                if token.is_cancelled() {
                    connection.cancel();
                    return;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = connection.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.close();
    }
}
