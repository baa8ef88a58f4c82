//! Connection health, for `/ws` and `/echo` alike: one actor that finds connections
//! which cannot be served any more and ends them. The hub hears about a `/ws` member
//! ended here as it hears about any other disconnect: a [`Disconnect`] with its reason.
//!
//! Two kinds of trouble, one rule each:
//! - *slow*: a connection's inbox went over `MAX_PENDING_BYTES` (its courier reports
//!   [`Overflowed`]): it is evicted, close 1013, and if it has not closed within the
//!   grace its socket is reset;
//! - *jammed*: a connection whose heartbeat timer has not run for `jammed_after`. A
//!   client that stops reading fills its socket, and actix-web-actors then stops polling
//!   the actor (mailbox and timers included), so nothing inside the connection can end
//!   it: its socket is reset from here ([`SocketCloser::force_close`]).
//!
//! The supervisor knows nothing of rooms; the hub knows nothing of sockets.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use actix::prelude::*;
use rustc_hash::FxHashMap;

use crate::{
    courier::Overflowed,
    hub::messages::Disconnect,
    metrics::Counters,
    protocol::{LeaveReason, MemberId},
    transport::{CloseCode, SocketCloser},
};

/// What a connection actor and the supervisor share.
#[derive(Debug)]
pub struct ConnectionLink {
    /// Set once the connection is evicted; it then discards queued frames.
    evicted: AtomicBool,
    /// Set when the connection's actor has stopped.
    ended: AtomicBool,
    /// When the connection's heartbeat timer last ran (ms on [`monotonic_ms`]).
    last_tick_ms: AtomicU64,
    /// Resets the socket of a jammed connection; `None` where the transport gives no
    /// access to the socket.
    socket: Option<SocketCloser>,
}

impl ConnectionLink {
    pub fn new(socket: Option<SocketCloser>) -> Self {
        Self {
            evicted: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            last_tick_ms: AtomicU64::new(monotonic_ms()),
            socket,
        }
    }

    /// The connection's heartbeat timer ran: its actor is being polled.
    pub fn tick(&self) {
        self.last_tick_ms.store(monotonic_ms(), Ordering::Release);
    }

    fn since_tick(&self) -> Duration {
        Duration::from_millis(
            monotonic_ms().saturating_sub(self.last_tick_ms.load(Ordering::Acquire)),
        )
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// The connection's actor has stopped.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }

    /// Nothing left to watch: the socket is released (the transport lets go of it when
    /// the connection is dropped, which an actor stopped on a stuck socket may never
    /// be), or, without a socket handle, the actor has stopped.
    fn has_ended(&self) -> bool {
        match &self.socket {
            Some(socket) => socket.is_released(),
            None => self.ended.load(Ordering::Acquire),
        }
    }

    /// Shuts the socket down from outside the (jammed) actor; `false` if there was
    /// nothing to shut.
    fn force_close(&self) -> bool {
        self.socket.as_ref().is_some_and(SocketCloser::force_close)
    }
}

/// The one rule for a jammed connection: its heartbeat timer has stopped running.
fn is_jammed(link: &ConnectionLink, jammed_after: Duration) -> bool {
    link.since_tick() > jammed_after
}

/// Milliseconds on a process-wide monotonic clock; cheap to store in an atomic.
fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Told to a `/ws` connection that the supervisor evicts: close with `code`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Evict {
    pub code: CloseCode,
    pub reason: &'static str,
}

/// Watch a connection until it ends. `member` for `/ws` connections: whom to tell the
/// hub has gone, and how to evict it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub link: Arc<ConnectionLink>,
    pub member: Option<WatchedMember>,
}

pub struct WatchedMember {
    pub id: MemberId,
    pub evict: Recipient<Evict>,
}

/// The supervisor's timing, from `Config`.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    /// How often connections are looked at; also the grace an evicted connection has to
    /// close before its socket is reset.
    pub sweep_interval: Duration,
    /// A connection whose heartbeat timer has not run for this long is jammed.
    pub jammed_after: Duration,
}

pub struct Supervisor {
    settings: SupervisorSettings,
    hub: Recipient<Disconnect>,
    /// The supervisor's own share of the server's metrics.
    metrics: Arc<Counters>,
    /// `/ws` connections, by member id (an overflow report names the member).
    members: FxHashMap<MemberId, (Arc<ConnectionLink>, Recipient<Evict>)>,
    /// `/echo` connections.
    others: Vec<Arc<ConnectionLink>>,
    /// Evicted connections and when to reset their socket if they have not closed.
    evicted: Vec<(Instant, Arc<ConnectionLink>)>,
}

impl Supervisor {
    pub fn new(
        settings: SupervisorSettings,
        hub: Recipient<Disconnect>,
        metrics: Arc<Counters>,
    ) -> Self {
        Self {
            settings,
            hub,
            metrics,
            members: FxHashMap::default(),
            others: Vec::new(),
            evicted: Vec::new(),
        }
    }

    fn sweep(&mut self) {
        let jammed_after = self.settings.jammed_after;
        let mut jammed = Vec::new();
        self.members.retain(|id, (link, _)| {
            if link.has_ended() {
                return false;
            }
            if is_jammed(link, jammed_after) {
                jammed.push((*id, link.clone()));
                return false;
            }
            true
        });
        for (id, link) in jammed {
            log::warn!("member {id} is jammed: resetting its connection");
            // The hub hears why first: the reset ends the session, whose own Disconnect
            // (reason `disconnect`) must come second and count for nothing.
            self.hub.do_send(Disconnect {
                id,
                reason: LeaveReason::Slow,
            });
            link.force_close();
        }
        self.others.retain(|link| {
            if link.has_ended() {
                return false;
            }
            if is_jammed(link, jammed_after) {
                log::warn!("an /echo connection is jammed: resetting it");
                link.force_close();
                return false;
            }
            true
        });
        let now = Instant::now();
        self.evicted.retain(|(deadline, link)| {
            if *deadline > now {
                return true;
            }
            if !link.has_ended() && link.force_close() {
                log::warn!("an evicted connection did not close in time: reset it");
            }
            false
        });
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.settings.sweep_interval, |supervisor, _| {
            supervisor.sweep()
        });
    }
}

impl Handler<Watch> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Self::Context) {
        match msg.member {
            Some(member) => {
                self.members.insert(member.id, (msg.link, member.evict));
            }
            None => self.others.push(msg.link),
        }
    }
}

impl Handler<Overflowed> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Overflowed, _: &mut Self::Context) {
        let Some((link, evict)) = self.members.remove(&msg.id) else {
            return;
        };
        log::warn!(
            "member {} is too slow: {} bytes waiting; closing with 1013",
            msg.id,
            msg.pending_bytes
        );
        link.evicted.store(true, Ordering::Release);
        // The hub hears why before the session can end and report its own reason.
        self.hub.do_send(Disconnect {
            id: msg.id,
            reason: LeaveReason::Slow,
        });
        evict.do_send(Evict {
            code: CloseCode::TryAgainLater,
            reason: "too slow to read its frames",
        });
        self.metrics.slow_eviction();
        self.evicted
            .push((Instant::now() + self.settings.sweep_interval, link));
    }
}
