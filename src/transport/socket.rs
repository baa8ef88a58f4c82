//! The socket under a WebSocket connection: `TCP_NODELAY` at accept, and a
//! [`SocketCloser`] that can reset the connection from outside its actor. It never reads
//! or writes the socket, and it does not own the connection's I/O (actix-http does).

use std::sync::{Mutex, MutexGuard};

use actix_web::{dev::Extensions, HttpRequest};

/// The connection's raw socket and its two addresses, recorded when it is accepted.
#[derive(Debug, Clone, Copy)]
struct ConnectionSocket {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
}

/// `HttpServer::on_connect` hook: turns off Nagle (a chat server sends small frames that
/// must not wait for an ACK) and records the socket for [`SocketCloser::for_request`].
pub(crate) fn on_connect(connection: &dyn std::any::Any, data: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(err) = stream.set_nodelay(true) {
            log::warn!("could not set TCP_NODELAY: {err}");
        }
        #[cfg(unix)]
        if let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) {
            use std::os::fd::AsRawFd;
            data.insert(ConnectionSocket {
                fd: stream.as_raw_fd(),
                local,
                peer,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = data;
}

/// A handle on a connection's socket, so the hub (or the watchdog) can reset it when the
/// actor serving it can no longer run: a client that stopped reading jams the writer,
/// which stops the actor's timers and mailbox too.
///
/// It holds the raw descriptor, not a duplicate, so a connection costs one descriptor,
/// not two. That is safe because (1) the actor calls [`SocketCloser::release`] when it
/// stops, and actix-http drops a connection's response body (the actor) before its I/O
/// object, so release happens before the descriptor is closed; release and
/// [`SocketCloser::force_close`] exclude each other through the mutex; and (2) as a second
/// guard, `force_close` first checks that the descriptor still has the local and peer
/// addresses recorded at accept time, so a reused descriptor is never touched.
#[derive(Debug)]
pub struct SocketCloser {
    socket: Mutex<Option<ConnectionSocket>>,
}

impl SocketCloser {
    /// The socket of the connection `req` arrived on, if it is known.
    pub(crate) fn for_request(req: &HttpRequest) -> Option<Self> {
        let recorded = *req.conn_data::<ConnectionSocket>()?;
        Some(Self {
            socket: Mutex::new(Some(recorded)),
        })
    }

    pub(crate) fn is_released(&self) -> bool {
        self.lock().is_none()
    }

    /// The connection ended normally: forget the descriptor before it is closed.
    pub(crate) fn release(&self) {
        self.lock().take();
    }

    /// Resets the connection: pending output is discarded and the peer gets an RST, so
    /// the writer that was stuck on it fails and the connection is dropped.
    pub(crate) fn force_close(&self) -> bool {
        let mut guard = self.lock();
        let Some(recorded) = guard.take() else {
            return false;
        };
        #[cfg(unix)]
        {
            use std::os::fd::BorrowedFd;
            // SAFETY: the descriptor is open: the connection has not released it (see the
            // type's docs), and we hold the lock that release needs.
            let fd = unsafe { BorrowedFd::borrow_raw(recorded.fd) };
            let socket = socket2::SockRef::from(&fd);
            let same_connection = socket.local_addr().ok().and_then(|a| a.as_socket())
                == Some(recorded.local)
                && socket.peer_addr().ok().and_then(|a| a.as_socket()) == Some(recorded.peer);
            if !same_connection {
                log::warn!("not resetting a socket that no longer is the connection's");
                return false;
            }
            // Linger 0 turns the close into a reset, freeing the unsent buffer at once.
            let _ = socket.set_linger(Some(std::time::Duration::ZERO));
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        drop(guard);
        true
    }

    fn lock(&self) -> MutexGuard<'_, Option<ConnectionSocket>> {
        // A panic while holding this lock cannot leave the Option half-updated.
        self.socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
