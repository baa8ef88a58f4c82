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
