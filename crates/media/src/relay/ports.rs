//! RTP/RTCP port pairs from the configured range: an even RTP port and
//! the odd RTCP port above it (RFC 3550 §11), bound on allocation and
//! returned to the pool only once both sockets are closed.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, PoisonError};

use socket2::{Domain, Protocol, Socket, Type};

use crate::MediaError;

/// The free even ports of a range. Freed ports go to the back of the
/// queue, so a port is reused as late as possible (stray packets of the
/// previous call have time to stop).
#[derive(Debug)]
pub(crate) struct PortPool {
    ip: IpAddr,
    first: u16,
    last: u16,
    free: Mutex<VecDeque<u16>>,
    pairs: usize,
}

impl PortPool {
    /// A pool of the pairs `(p, p + 1)` with `p` even and both within
    /// `first..=last`.
    pub(crate) fn new(ip: IpAddr, first: u16, last: u16) -> Result<Arc<Self>, MediaError> {
        let start = first.checked_add(first % 2).ok_or_else(|| {
            MediaError::InvalidOptions(format!("port range {first}-{last} holds no even/odd pair"))
        })?;
        let free: VecDeque<u16> = (start..last).step_by(2).filter(|&p| p != 0).collect();
        if free.is_empty() {
            return Err(MediaError::InvalidOptions(format!(
                "port range {first}-{last} holds no even/odd pair"
            )));
        }
        Ok(Arc::new(Self {
            ip,
            first,
            last,
            pairs: free.len(),
            free: Mutex::new(free),
        }))
    }

    /// Binds the next free pair. A port some other program holds is put
    /// back at the end and the next one tried; when none binds the range
    /// is exhausted.
    pub(crate) fn allocate(self: &Arc<Self>) -> Result<LegSockets, MediaError> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..free.len() {
            let Some(port) = free.pop_front() else { break };
            match (self.bind(port), self.bind(port + 1)) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(LegSockets {
                        rtp,
                        rtcp,
                        lease: PortLease {
                            pool: Arc::clone(self),
                            port,
                        },
                    });
                }
                _ => free.push_back(port),
            }
        }
        Err(MediaError::PortsExhausted {
            ip: self.ip,
            first: self.first,
            last: self.last,
        })
    }

    /// Binds one non-blocking UDP socket. Deliberately without
    /// `SO_REUSEPORT`: each leg has a port of its own served by one
    /// worker, so the option would spread no load, and it would let a
    /// second relay (or a test) bind the same port and silently take half
    /// of a call's packets instead of failing.
    fn bind(&self, port: u16) -> std::io::Result<UdpSocket> {
        let addr = SocketAddr::new(self.ip, port);
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        Ok(socket.into())
    }

    /// Pairs currently handed out.
    pub(crate) fn in_use(&self) -> usize {
        self.pairs
            - self
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }
}

/// A bound pair; the ports go back to the pool when it is dropped, after
/// both sockets are closed (fields drop in declaration order).
#[derive(Debug)]
pub(crate) struct LegSockets {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
    pub(crate) lease: PortLease,
}

#[derive(Debug)]
pub(crate) struct PortLease {
    pool: Arc<PortPool>,
    pub(crate) port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_start_even_and_stay_inside_the_range() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41001, 41006).unwrap();
        let free: Vec<u16> = pool.free.lock().unwrap().iter().copied().collect();
        assert_eq!(free, vec![41002, 41004]);
        assert!(PortPool::new("127.0.0.1".parse().unwrap(), 41001, 41002).is_err());
        assert!(PortPool::new("127.0.0.1".parse().unwrap(), 65535, 65535).is_err());
    }
}
