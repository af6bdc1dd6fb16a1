//! The listening socket: non-blocking, close-on-exec, SO_REUSEADDR, a deep backlog.

use anyhow::{Context, Result, bail};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, getsockname, listen,
    setsockopt, socket, sockopt,
};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Connections the kernel may queue before we accept them (capped by somaxconn):
/// a burst of thousands of idle connections must not be dropped.
const BACKLOG: i32 = 4096;

/// Whether other sockets may listen on the same port.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PortSharing {
    Exclusive,
    /// SO_REUSEPORT: the kernel spreads connections over every listener of the port.
    Shared,
}

pub struct Listener {
    fd: OwnedFd,
    addr: SocketAddr,
}

impl Listener {
    /// Binds and listens.
    pub fn bind(addr: SocketAddr, sharing: PortSharing) -> Result<Listener> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let fd = socket(family, SockType::Stream, flags, None).context("socket")?;
        setsockopt(&fd, sockopt::ReuseAddr, &true).context("setsockopt(SO_REUSEADDR)")?;
        if sharing == PortSharing::Shared {
            setsockopt(&fd, sockopt::ReusePort, &true).context("setsockopt(SO_REUSEPORT)")?;
        }
        if let Err(e) = bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
            let hint = match e {
                nix::errno::Errno::EADDRINUSE => {
                    ": the port is in use; stop the other server or pick another port (port 0 picks a free one)"
                }
                nix::errno::Errno::EADDRNOTAVAIL => {
                    ": no interface on this machine has that address (try 127.0.0.1)"
                }
                nix::errno::Errno::EACCES => ": ports below 1024 need privileges",
                _ => "",
            };
            bail!("cannot listen on {addr}: {e}{hint}");
        }
        let backlog = Backlog::new(BACKLOG).context("listen backlog")?;
        listen(&fd, backlog).with_context(|| format!("listen on {addr}"))?;
        let bound: SockaddrStorage = getsockname(fd.as_raw_fd()).context("getsockname")?;
        let addr = to_socket_addr(&bound).context("listening socket has no IP address")?;
        Ok(Listener { fd, addr })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The bound address, with the real port when port 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

fn to_socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
}
