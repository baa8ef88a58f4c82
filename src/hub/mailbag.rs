//! What connections send the hub, carried in batches: one actix message per worker
//! thread and scheduler round, not one per command.
//!
//! The hub runs on its own thread. Each message to it wakes that thread, and where the
//! hub and a worker share a core, the woken hub preempts the worker, once per message
//! (docs/benchmarks.md). Instead, a connection puts its message in its thread's *mailbag*, and the first message into an
//! empty bag wakes the thread's carrier task, which sends the whole bag to the hub. Tasks
//! on a worker run in the order they were woken, so the carrier runs after every
//! connection already woken this round has had its turn: a busy worker sends many
//! commands per message to the hub, an idle one sends at once.
//!
//! Every message from a connection to the hub goes this way (`Connect`, commands,
//! `Disconnect`), so each connection's messages keep their order. Each worker thread
//! has one [`ToHub`], held by its [`crate::worker::Worker`] and bound to that server's
//! hub.
//!
//! Each bag carries when its first message went in, and the hub records how long the
//! bag took to reach it (`hubbub_hub_mailbox_delay_seconds`): the time a connection's
//! command waits before the hub starts on it, scheduling, the worker's round and the
//! hub's queue together. One clock read per bag on each side, none per message.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    task::{Poll, Waker},
    time::Instant,
};

use actix::prelude::*;

use super::Hub;

/// A message a connection sends the hub, whatever its type.
pub trait ForHub: Send + 'static {
    fn deliver(self: Box<Self>, hub: &mut Hub, ctx: &mut Context<Hub>);
}

impl<M> ForHub for M
where
    M: Message<Result = ()> + Send + 'static,
    Hub: Handler<M>,
{
    fn deliver(self: Box<Self>, hub: &mut Hub, ctx: &mut Context<Hub>) {
        <Hub as Handler<M>>::handle(hub, *self, ctx);
    }
}

/// One worker thread's messages for the hub, in the order they were sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Mailbag {
    messages: Vec<Box<dyn ForHub>>,
    /// When the first of `messages` went into the empty bag.
    filled_at: Instant,
}

impl Handler<Mailbag> for Hub {
    type Result = ();

    fn handle(&mut self, bag: Mailbag, ctx: &mut Self::Context) {
        self.metrics.mailbox_delay(bag.filled_at.elapsed());
        // Posts to the couriers go out together at the end, one per worker.
        self.hold_posts();
        for message in bag.messages {
            message.deliver(self, ctx);
        }
        self.release_posts();
    }
}

/// One worker thread's way to the hub: the bag of messages not yet sent, and the
/// carrier task that sends it.
pub struct ToHub {
    hub: Addr<Hub>,
    bag: RefCell<Vec<Box<dyn ForHub>>>,
    /// When the first message now in `bag` went in (stale while the bag is empty).
    filled_at: Cell<Instant>,
    /// The carrier task, when it waits for an empty bag to fill.
    carrier: Cell<Option<Waker>>,
    carrier_started: Cell<bool>,
}

impl ToHub {
    pub fn new(hub: Addr<Hub>) -> Rc<Self> {
        Rc::new(Self {
            hub,
            bag: RefCell::default(),
            filled_at: Cell::new(Instant::now()),
            carrier: Cell::new(None),
            carrier_started: Cell::new(false),
        })
    }

    /// Sends `message` to the hub with the other messages of this thread's round. The
    /// first call must come from an actor on the worker's arbiter (a connection's
    /// `started`), where it starts the carrier task; later calls only wake it, which is
    /// safe anywhere, even while the arbiter is being torn down.
    pub fn send<M: ForHub>(self: &Rc<Self>, message: M) {
        if !self.carrier_started.replace(true) {
            actix_rt::spawn(carry(Rc::downgrade(self)));
        }
        let first = {
            let mut bag = self.bag.borrow_mut();
            bag.push(Box::new(message));
            bag.len() == 1
        };
        if first {
            self.filled_at.set(Instant::now());
            // Scheduled behind the tasks already woken: it runs once they have had their turn.
            if let Some(carrier) = self.carrier.take() {
                carrier.wake();
            }
        }
    }
}

/// The carrier: waits for the bag to fill, sends it whole, and waits again; ends with
/// its worker.
async fn carry(to_hub: std::rc::Weak<ToHub>) {
    loop {
        let ready = std::future::poll_fn(|cx| {
            let Some(to_hub) = to_hub.upgrade() else {
                return Poll::Ready(None);
            };
            if to_hub.bag.borrow().is_empty() {
                to_hub.carrier.set(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(Some(to_hub))
            }
        })
        .await;
        let Some(to_hub) = ready else {
            return;
        };
        let messages = to_hub.bag.take();
        to_hub.hub.do_send(Mailbag {
            messages,
            filled_at: to_hub.filled_at.get(),
        });
    }
}
