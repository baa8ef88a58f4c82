//! Graceful shutdown: one signal that every connection actor hears, so each can send its
//! client close 1001 before the server stops.
//!
//! Connections do not each wait on the signal: a future spawned into an actor's context
//! is polled on every wake-up of that actor, i.e. on every frame (about 1 % of the CPU of
//! `/echo`). Instead each worker thread has one task that waits for it and then tells
//! every connection registered on that thread ([`Shutdown::subscribe`]).

use std::cell::{Cell, RefCell};

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
    key: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        LISTENERS.with_borrow_mut(|listeners| listeners.remove(&self.key));
    }
}

thread_local! {
    /// The connections on this thread, by subscription key.
    static LISTENERS: RefCell<FxHashMap<u64, Recipient<GoingAway>>> =
        RefCell::new(FxHashMap::default());
    static NEXT_KEY: Cell<u64> = const { Cell::new(0) };
    /// Whether this thread's waiting task has been started.
    static WATCHING: Cell<bool> = const { Cell::new(false) };
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

    /// Tells `listener`, an actor running on the calling thread, [`GoingAway`] when
    /// shutdown is triggered, or at once if it already was. Keep the subscription for
    /// as long as the actor lives.
    pub fn subscribe(&self, listener: Recipient<GoingAway>) -> Option<Subscription> {
        if self.is_triggered() {
            listener.do_send(GoingAway);
            return None;
        }
        if !WATCHING.replace(true) {
            let triggered = self.triggered();
            actix_rt::spawn(async move {
                triggered.await;
                for listener in LISTENERS.take().into_values() {
                    listener.do_send(GoingAway);
                }
            });
        }
        let key = NEXT_KEY.get();
        NEXT_KEY.set(key + 1);
        LISTENERS.with_borrow_mut(|listeners| listeners.insert(key, listener));
        Some(Subscription { key })
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
        let (kept, kept_recipient) = listener();
        let (dropped, dropped_recipient) = listener();
        let _kept = shutdown.subscribe(kept_recipient);
        drop(shutdown.subscribe(dropped_recipient));

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
        shutdown.trigger();
        let (told, recipient) = listener();
        assert!(shutdown.subscribe(recipient).is_none());
        wait_until("the late subscriber is told", || {
            told.load(Ordering::SeqCst) == 1
        })
        .await;
    }
}
