//! The socket under a WebSocket connection: `TCP_NODELAY` at accept, and a
//! [`SocketCloser`] that can reset the connection from outside its actor. It never reads
//! or writes the socket, and it does not own the connection's I/O (actix-http does).

use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::{dev::Extensions, HttpRequest};

/// What a [`SocketCloser`] holds: its own descriptor for the connection's socket.
#[cfg(unix)]
type Duplicate = std::os::fd::OwnedFd;
/// No descriptors to duplicate: a [`SocketCloser`] is never made.
#[cfg(not(unix))]
type Duplicate = std::convert::Infallible;

/// The number of an accepted connection's descriptor, recorded in the connection's data
/// for [`SocketCloser::for_request`]. Only a number: it is valid while the connection is
/// open, which only code serving one of its requests can be sure of.
#[cfg(unix)]
#[derive(Debug, Clone, Copy)]
struct AcceptedSocket {
    fd: std::os::fd::RawFd,
}

/// What a TLS listener hands [`on_connect`]: the TCP stream inside rustls.
type TlsStream = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;

/// `HttpServer::on_connect` hook: turns off Nagle (a chat server sends small frames that
/// must not wait for an ACK) and records the descriptor for [`SocketCloser::for_request`].
/// On a TLS listener (called after the TLS handshake) it is the TCP socket under the TLS
/// stream: resetting that ends the connection just the same, TLS or not.
pub(crate) fn on_connect(connection: &dyn std::any::Any, data: &mut Extensions) {
    let stream = connection
        .downcast_ref::<actix_web::rt::net::TcpStream>()
        .or_else(|| {
            connection
                .downcast_ref::<TlsStream>()
                .map(|tls| tls.get_ref().0)
        });
    if let Some(stream) = stream {
        if let Err(err) = stream.set_nodelay(true) {
            log::warn!("could not set TCP_NODELAY: {err}");
        }
        #[cfg(unix)]
        data.insert(AcceptedSocket {
            fd: std::os::fd::AsRawFd::as_raw_fd(stream),
        });
    }
    #[cfg(not(unix))]
    let _ = data;
}

/// A handle on a WebSocket connection's socket, so the supervisor can reset it
/// when the actor serving it can no longer run: a client that stopped reading jams the
/// writer, which stops the actor's timers and mailbox too.
///
/// It holds a duplicate of the connection's descriptor, taken at the upgrade, so it can
/// never act on another socket: the duplicate keeps the socket itself open until it is
/// dropped, whatever actix-http does with its own descriptor. Clones share the duplicate;
/// the [`Connection`](super::Connection) holding one releases it when its actor is
/// dropped, which is no later than the connection's end. An open WebSocket therefore
/// holds two descriptors.
#[derive(Debug, Clone)]
pub struct SocketCloser {
    /// `None` once released or forced closed.
    socket: Arc<Mutex<Option<Duplicate>>>,
}

impl SocketCloser {
    /// Duplicates the socket of the connection `req` arrived on, if it is known. Call it
    /// from the handler serving `req`, when the upgrade is accepted.
    pub(crate) fn for_request(req: &HttpRequest) -> Option<Self> {
        #[cfg(unix)]
        {
            let AcceptedSocket { fd } = *req.conn_data::<AcceptedSocket>()?;
            // SAFETY: `fd` was recorded by `on_connect` for the connection `req` arrived
            // on, and that connection's TCP stream (which owns `fd`; with TLS, inside the
            // TLS stream) lives as long as the HTTP dispatcher serving it. We run inside
            // the request's handler, which that dispatcher polls while holding the stream
            // (no middleware here moves a handler to another task), so `fd` is open and
            // is this connection's socket for the whole borrow, which ends before we
            // return; we keep only our own duplicate.
            #[allow(unsafe_code)]
            let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            match socket.try_clone_to_owned() {
                Ok(duplicate) => Some(Self::holding(duplicate)),
                Err(err) => {
                    log::warn!(
                        "could not duplicate a WebSocket's socket ({err}): \
                         if its client stops reading, it cannot be reset"
                    );
                    None
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = req;
            None
        }
    }

    fn holding(duplicate: Duplicate) -> Self {
        Self {
            socket: Arc::new(Mutex::new(Some(duplicate))),
        }
    }

    /// The connection has ended, or has been reset.
    pub(crate) fn is_released(&self) -> bool {
        self.lock().is_none()
    }

    /// The connection is ending: close the duplicate, so the socket goes when actix-http
    /// closes its own descriptor.
    pub(crate) fn release(&self) {
        drop(self.lock().take());
    }

    /// Resets the connection: pending output is discarded and the peer gets an RST, so
    /// the writer that was stuck on it fails and the connection is dropped. `false` if
    /// it was already released.
    pub(crate) fn force_close(&self) -> bool {
        let Some(duplicate) = self.lock().take() else {
            return false;
        };
        #[cfg(unix)]
        {
            let socket = socket2::SockRef::from(&duplicate);
            // Linger 0: when the last descriptor closes, the socket is reset and its
            // unsent buffer freed at once instead of waiting on a peer that does not read.
            if let Err(err) = socket.set_linger(Some(std::time::Duration::ZERO)) {
                log::debug!("could not set SO_LINGER on a jammed socket: {err}");
            }
            // Shutdown acts on the socket, not on a descriptor: actix-http's writer,
            // waiting on the same socket, fails, and the connection ends.
            if let Err(err) = socket.shutdown(std::net::Shutdown::Both) {
                log::debug!("could not shut a jammed socket down: {err}");
            }
        }
        drop(duplicate);
        true
    }

    fn lock(&self) -> MutexGuard<'_, Option<Duplicate>> {
        // A panic while holding this lock cannot leave the Option half-updated.
        self.socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::{
        io::{Read, Write},
        net::{TcpListener, TcpStream},
        os::fd::AsFd,
    };

    use super::*;

    /// A connected pair: the server's end and the client's.
    fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (server, client)
    }

    #[test]
    fn force_close_ends_the_connection_for_both_ends() {
        let (mut server, mut client) = connected();
        let closer = SocketCloser::holding(server.as_fd().try_clone_to_owned().unwrap());
        assert!(closer.force_close());
        assert!(closer.is_released());
        // The server's own descriptor is still open but its socket is shut down.
        assert!(server.write_all(b"late").is_err());
        let mut buffer = [0u8; 8];
        assert!(matches!(client.read(&mut buffer), Ok(0) | Err(_)));
        assert!(!closer.force_close(), "a second reset does nothing");
    }

    #[test]
    fn release_leaves_the_connection_alone() {
        let (mut server, mut client) = connected();
        let closer = SocketCloser::holding(server.as_fd().try_clone_to_owned().unwrap());
        let clone = closer.clone();
        closer.release();
        assert!(clone.is_released(), "clones share the duplicate");
        assert!(!clone.force_close(), "nothing left to reset");
        server.write_all(b"still here").unwrap();
        let mut buffer = [0u8; 10];
        client.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer, b"still here");
    }
}
