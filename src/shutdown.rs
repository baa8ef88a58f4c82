//! Graceful shutdown: one signal every connection actor listens for, and a count of the
//! connections still open so shutdown can wait for their close frames to go out.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use tokio::sync::watch;

/// Shared by the server and every connection actor.
#[derive(Debug, Clone)]
pub struct Shutdown {
    signal: watch::Sender<bool>,
    open_connections: Arc<AtomicUsize>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            signal: watch::Sender::new(false),
            open_connections: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Shutdown {
    /// Asks every connection to close with 1001.
    pub fn trigger(&self) {
        self.signal.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.signal.borrow()
    }

    /// Resolves once shutdown has been triggered (at once if it already was).
    pub fn triggered(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut receiver = self.signal.subscribe();
        async move {
            // An error means the sender is gone, i.e. the server itself is gone.
            let _ = receiver.wait_for(|triggered| *triggered).await;
        }
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn track_connection(&self) -> ConnectionGuard {
        self.open_connections.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(self.open_connections.clone())
    }

    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::Acquire)
    }
}

/// Held by a connection actor for its lifetime.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
