//! Graceful shutdown: one signal that every connection actor hears, so each can send its
//! client close 1001 before the server stops.
//!
//! Connections do not each wait on the signal: a future spawned into an actor's context
//! is polled on every wake-up of that actor, i.e. on every frame. Instead each worker
//! thread has one [`Listeners`] list (held by its [`crate::worker::Worker`]) and one task
//! that waits for the signal and then tells every connection on the list.

use std::{
    cell::{Cell, RefCell},
    rc::{Rc, Weak},
};

use actix::prelude::*;
use rustc_hash::FxHashMap;
use tokio::sync::watch;

/// Shared by the server and every connection actor.
#[derive(Debug, Clone)]
pub struct Shutdown {
    signal: watch::Sender<bool>,
}

/// Told to a connection actor when the server shuts down: close with 1001.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GoingAway;

/// A connection's place on its thread's list; dropping it (with the actor) takes the
/// connection off the list.
pub struct Subscription {
    list: Weak<Listeners>,
    key: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(list) = self.list.upgrade() {
            list.listeners.borrow_mut().remove(&self.key);
        }
    }
}

/// The connections of one worker thread that are told when the server shuts down.
pub struct Listeners {
    shutdown: Shutdown,
    listeners: RefCell<FxHashMap<u64, Recipient<GoingAway>>>,
    next_key: Cell<u64>,
    /// Whether the waiting task has been started (by the first subscriber, which runs
    /// on the worker's arbiter).
    watching: Cell<bool>,
}

impl Listeners {
    pub fn new(shutdown: Shutdown) -> Rc<Self> {
        Rc::new(Self {
            shutdown,
            listeners: RefCell::default(),
            next_key: Cell::new(0),
            watching: Cell::new(false),
        })
    }

    /// Tells `listener`, an actor running on this list's thread, [`GoingAway`] when
    /// shutdown is triggered, or at once if it already was. Keep the subscription for as
    /// long as the actor lives.
    pub fn subscribe(self: &Rc<Self>, listener: Recipient<GoingAway>) -> Option<Subscription> {
        if self.shutdown.is_triggered() {
            listener.do_send(GoingAway);
            return None;
        }
        if !self.watching.replace(true) {
            let triggered = self.shutdown.triggered();
            let list = Rc::downgrade(self);
            actix_rt::spawn(async move {
                triggered.await;
                if let Some(list) = list.upgrade() {
                    for listener in list.listeners.take().into_values() {
                        listener.do_send(GoingAway);
                    }
                }
            });
        }
        let key = self.next_key.get();
        self.next_key.set(key + 1);
        self.listeners.borrow_mut().insert(key, listener);
        Some(Subscription {
            list: Rc::downgrade(self),
            key,
        })
    }
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

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        time::Duration,
    };

    use super::*;

    /// Counts the `GoingAway`s it is told.
    struct Listener(Arc<AtomicUsize>);

    impl Actor for Listener {
        type Context = Context<Self>;
    }

    impl Handler<GoingAway> for Listener {
        type Result = ();

        fn handle(&mut self, _: GoingAway, _: &mut Self::Context) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn listener() -> (Arc<AtomicUsize>, Recipient<GoingAway>) {
        let told = Arc::new(AtomicUsize::new(0));
        (told.clone(), Listener(told).start().recipient())
    }

    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[actix_rt::test]
    async fn subscribers_are_told_once_and_a_dropped_subscription_is_not() {
        let shutdown = Shutdown::default();
        let list = Listeners::new(shutdown.clone());
        let (kept, kept_recipient) = listener();
        let (dropped, dropped_recipient) = listener();
        let _kept = list.subscribe(kept_recipient);
        drop(list.subscribe(dropped_recipient));

        shutdown.trigger();
        wait_until("the subscriber is told", || {
            kept.load(Ordering::SeqCst) == 1
        })
        .await;
        // A round trip through the arbiter: anything else due has been delivered too.
        let (probe, probe_recipient) = listener();
        probe_recipient.do_send(GoingAway);
        wait_until("the probe is told", || probe.load(Ordering::SeqCst) == 1).await;
        assert_eq!(kept.load(Ordering::SeqCst), 1);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
    }

    #[actix_rt::test]
    async fn a_subscriber_after_the_trigger_is_told_at_once() {
        let shutdown = Shutdown::default();
        let list = Listeners::new(shutdown.clone());
        shutdown.trigger();
        let (told, recipient) = listener();
        assert!(list.subscribe(recipient).is_none());
        wait_until("the late subscriber is told", || {
            told.load(Ordering::SeqCst) == 1
        })
        .await;
    }
}
