//! Batched UDP receive and send (`recvmmsg(2)`, `sendmmsg(2)`) over
//! buffers allocated once per worker.
//!
//! The `unsafe` here is confined to the two system calls and to reading
//! and writing socket addresses: every pointer handed to the kernel points
//! into this struct's own arrays, which outlive the call, with lengths
//! that match those arrays.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams read or written per system call.
pub(crate) const BATCH: usize = 32;
/// The largest datagram relayed; a longer one is truncated by the kernel
/// (`MSG_TRUNC`) and dropped. RTP over an Ethernet path fits in 1,500.
pub(crate) const MAX_DATAGRAM: usize = 2048;

/// A socket address encoded once for the kernel.
#[derive(Clone, Copy)]
pub(crate) struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    pub(crate) addr: SocketAddr,
}

impl RawAddr {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        // SAFETY: sockaddr_storage is plain data for which all zeroes is a
        // valid (AF_UNSPEC) value.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned at
                // least as strictly as sockaddr_in (POSIX guarantees it).
                let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>()
            }
        };
        Self {
            storage,
            len: len as libc::socklen_t,
            addr,
        }
    }
}

/// Decodes an address the kernel wrote; `None` for a family other than
/// IPv4 or IPv6.
fn decode(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, and
            // the storage is large and aligned enough for one.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One datagram of the last receive.
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) source: Option<SocketAddr>,
    pub(crate) truncated: bool,
}

/// The outgoing queue of one socket: indexes into the receive buffers.
struct Queue {
    msgs: [libc::mmsghdr; BATCH],
    iov: [libc::iovec; BATCH],
    names: [libc::sockaddr_storage; BATCH],
    /// Buffer index and tag of each queued datagram.
    items: [(usize, u8); BATCH],
    len: usize,
}

/// A worker's buffers. Built once per worker thread and never moved
/// while a system call runs (it is boxed and borrowed mutably).
pub(crate) struct Batch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    msgs: [libc::mmsghdr; BATCH],
    iov: [libc::iovec; BATCH],
    names: [libc::sockaddr_storage; BATCH],
    received: usize,
    queues: [Queue; 2],
}

impl Batch {
    pub(crate) fn new() -> Box<Self> {
        // SAFETY: mmsghdr, iovec and sockaddr_storage are C structs of
        // integers and raw pointers, for which all zeroes is valid (null
        // pointers are never followed: each is set before a system call).
        let zero_queue = || Queue {
            msgs: unsafe { zeroed() },
            iov: unsafe { zeroed() },
            names: unsafe { zeroed() },
            items: [(0, 0); BATCH],
            len: 0,
        };
        Box::new(Self {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH].into_boxed_slice(),
            msgs: unsafe { zeroed() },
            iov: unsafe { zeroed() },
            names: unsafe { zeroed() },
            received: 0,
            queues: [zero_queue(), zero_queue()],
        })
    }

    /// Reads up to [`BATCH`] datagrams without blocking. Returns how many
    /// (0 when none is waiting).
    pub(crate) fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        self.received = 0;
        for q in &mut self.queues {
            q.len = 0;
        }
        for i in 0..BATCH {
            self.iov[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut self.iov[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        // SAFETY: `msgs` holds BATCH headers, each pointing at its own
        // iovec (one buffer of MAX_DATAGRAM bytes) and sockaddr_storage,
        // all owned by `self` and alive for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(error),
            };
        }
        self.received = n as usize;
        Ok(self.received)
    }

    /// The `i`-th datagram of the last receive.
    pub(crate) fn received(&self, i: usize) -> Received {
        let hdr = &self.msgs[i].msg_hdr;
        Received {
            len: (self.msgs[i].msg_len as usize).min(MAX_DATAGRAM),
            source: decode(&self.names[i], hdr.msg_namelen),
            truncated: hdr.msg_flags & libc::MSG_TRUNC != 0,
        }
    }

    pub(crate) fn buffer(&self, i: usize) -> &[u8] {
        &self.bufs[i]
    }

    pub(crate) fn buffer_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.bufs[i]
    }

    /// Queues datagram `i` (its first `len` bytes) for `queue` (0 or 1:
    /// the caller's two sockets), to `to`, with a tag the caller reads
    /// back in [`Batch::flush`].
    pub(crate) fn queue(&mut self, queue: usize, i: usize, len: usize, to: &RawAddr, tag: u8) {
        let q = &mut self.queues[queue];
        let k = q.len;
        q.names[k] = to.storage;
        q.iov[k] = libc::iovec {
            iov_base: self.bufs[i].as_mut_ptr().cast(),
            iov_len: len,
        };
        let hdr = &mut q.msgs[k].msg_hdr;
        hdr.msg_name = (&mut q.names[k] as *mut libc::sockaddr_storage).cast();
        hdr.msg_namelen = to.len;
        hdr.msg_iov = &mut q.iov[k];
        hdr.msg_iovlen = 1;
        hdr.msg_control = std::ptr::null_mut();
        hdr.msg_controllen = 0;
        hdr.msg_flags = 0;
        q.items[k] = (len, tag);
        q.len += 1;
    }

    /// Sends a queue on `fd` and calls `sent(len, tag, ok)` for each of its
    /// datagrams: a datagram the kernel refused is skipped, and when the
    /// socket's buffer is full the rest of the queue is dropped (a relay
    /// must not block or fall behind on stale audio).
    pub(crate) fn flush(&mut self, queue: usize, fd: RawFd, mut sent: impl FnMut(usize, u8, bool)) {
        let q = &mut self.queues[queue];
        let mut start = 0;
        while start < q.len {
            // SAFETY: the headers from `start` to `q.len` were filled by
            // `queue`, pointing at this queue's iovecs and addresses and at
            // receive buffers, all owned by `self` and alive for the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    q.msgs[start..].as_mut_ptr(),
                    (q.len - start) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                for &(len, tag) in &q.items[start..start + n as usize] {
                    sent(len, tag, true);
                }
                start += n as usize;
                continue;
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    for &(len, tag) in &q.items[start..q.len] {
                        sent(len, tag, false);
                    }
                    break;
                }
                _ => {
                    let (len, tag) = q.items[start];
                    sent(len, tag, false);
                    start += 1;
                }
            }
        }
        q.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_survive_encoding_and_decoding() {
        for text in [
            "127.0.0.1:5004",
            "[2001:db8::1]:49170",
            "0.0.0.0:0",
            "[::1]:65535",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let raw = RawAddr::new(addr);
            assert_eq!(decode(&raw.storage, raw.len), Some(addr));
        }
        // SAFETY: all zeroes is AF_UNSPEC.
        let unspec: libc::sockaddr_storage = unsafe { zeroed() };
        assert_eq!(
            decode(
                &unspec,
                size_of::<libc::sockaddr_storage>() as libc::socklen_t
            ),
            None
        );
    }
}
