//! The hub's handle on one `/ws` connection, and the state it shares with it.
//!
//! actix-web-actors buffers `ctx.text()` without limit, and a connection whose socket
//! cannot be written stops polling its actor altogether (mailbox and timers included).
//! So the hub never writes into an unbounded queue blindly: frames reach a connection
//! through its worker's courier and its inbox, which counts them against
//! `MAX_PENDING_BYTES` ([`crate::courier`]). A connection over its budget is *slow*: the
//! hub evicts it (close 1013) and, if its actor stays jammed, tears the socket down from
//! outside ([`SocketCloser`]).
//!
//! Memory per connection is therefore bounded by about twice `MAX_PENDING_BYTES` (the
//! inbox, plus what the actor already handed to the HTTP writer) plus the kernel's
//! socket buffers.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use crate::{
    courier::CourierHandle,
    transport::{CloseCode, SocketCloser},
};
use actix::prelude::*;

/// The hub has dropped this connection (it was too slow): close with `code`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Evict {
    pub code: CloseCode,
    pub reason: &'static str,
}

/// State shared between a session actor and the hub's [`Outbox`] for it.
#[derive(Debug)]
pub struct SessionLink {
    /// Set once the hub has evicted the session; it then discards queued frames.
    evicted: AtomicBool,
    /// When the session's heartbeat timer last ran (ms on [`monotonic_ms`]). A session
    /// whose timer stops is jammed: its socket cannot be written.
    last_tick_ms: AtomicU64,
    /// Lets the hub close the socket of a jammed session; `None` where the transport
    /// gives no access to the socket.
    socket: Option<SocketCloser>,
}

impl SessionLink {
    pub fn new(socket: Option<SocketCloser>) -> Self {
        Self {
            evicted: AtomicBool::new(false),
            last_tick_ms: AtomicU64::new(monotonic_ms()),
            socket,
        }
    }

    /// The session's heartbeat timer ran: its actor is being polled.
    pub fn tick(&self) {
        self.last_tick_ms.store(monotonic_ms(), Ordering::Release);
    }

    /// How long since the session's timer last ran.
    pub fn since_tick(&self) -> Duration {
        Duration::from_millis(
            monotonic_ms().saturating_sub(self.last_tick_ms.load(Ordering::Acquire)),
        )
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// The session has ended: give the socket back so it is not held open.
    pub fn release_socket(&self) {
        if let Some(socket) = &self.socket {
            socket.release();
        }
    }

    /// The connection has ended (or never had a socket handle to watch).
    pub fn is_released(&self) -> bool {
        self.socket.as_ref().is_none_or(SocketCloser::is_released)
    }

    /// Shuts the socket down from outside the (jammed) actor; a no-op once released.
    pub fn force_close(&self) -> bool {
        self.socket.as_ref().is_some_and(SocketCloser::force_close)
    }
}

/// The hub side of a connection: the courier that delivers to it, and how to evict it.
#[derive(Clone)]
pub struct Outbox {
    courier: CourierHandle,
    evict: Recipient<Evict>,
    link: Arc<SessionLink>,
}

impl Outbox {
    pub fn new(courier: CourierHandle, evict: Recipient<Evict>, link: Arc<SessionLink>) -> Self {
        Self {
            courier,
            evict,
            link,
        }
    }

    /// The courier of the worker thread this connection lives on.
    pub fn courier(&self) -> &CourierHandle {
        &self.courier
    }

    /// Tells the session to close with `code`; from now on it drops queued frames.
    pub fn evict(&self, code: CloseCode, reason: &'static str) {
        self.link.evicted.store(true, Ordering::Release);
        self.evict.do_send(Evict { code, reason });
    }

    pub fn link(&self) -> &Arc<SessionLink> {
        &self.link
    }
}

/// Milliseconds on a process-wide monotonic clock; cheap to store in an atomic.
pub fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}
