//! Graceful shutdown: one signal that every connection actor listens for, so each can
//! send its client close 1001 before the server stops.

use tokio::sync::watch;

/// Shared by the server and every connection actor.
#[derive(Debug, Clone)]
pub struct Shutdown {
    signal: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            signal: watch::Sender::new(false),
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
}
