//! What connections send the hub, carried in batches: one actix message per worker
//! thread and scheduler round, not one per command.
//!
//! The hub runs on its own thread. Each message to it wakes that thread, and where the
//! hub and a worker share a core, the woken hub preempts the worker: at 100 rooms of 10,
//! half of the hub thread's time went to being switched in, once per `say`. Instead, a
//! connection puts its message in its thread's *mailbag*, and the first message into an
//! empty bag wakes the thread's carrier task, which sends the whole bag to the hub. Tasks
//! on a worker run in the order they were woken, so the carrier runs after every
//! connection already woken this round has had its turn: a busy worker sends many
//! commands per message to the hub, an idle one sends at once.
//!
//! Every message from a connection to the hub goes this way (`Connect`, commands,
//! `Disconnect`), so each connection's messages keep their order.

use std::{
    cell::{Cell, RefCell},
    task::{Poll, Waker},
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
pub struct Mailbag(Vec<Box<dyn ForHub>>);

impl Handler<Mailbag> for Hub {
    type Result = ();

    fn handle(&mut self, bag: Mailbag, ctx: &mut Self::Context) {
        // Posts to the couriers go out together at the end, one per worker.
        self.hold_posts();
        for message in bag.0 {
            message.deliver(self, ctx);
        }
        self.release_posts();
    }
}

thread_local! {
    /// This thread's messages not yet sent.
    static BAG: RefCell<Vec<Box<dyn ForHub>>> = const { RefCell::new(Vec::new()) };
    /// The thread's carrier task, when it waits for an empty bag to fill.
    static CARRIER: Cell<Option<Waker>> = const { Cell::new(None) };
    static CARRIER_STARTED: Cell<bool> = const { Cell::new(false) };
}

/// Sends `message` to `hub` with the other messages of this thread's round. The first
/// call on a thread must come from an actor on an actix arbiter (a connection's
/// `started`), where it starts the thread's carrier task; later calls only wake it, which
/// is safe anywhere, even while the arbiter is being torn down.
pub fn send_to_hub<M: ForHub>(hub: &Addr<Hub>, message: M) {
    if !CARRIER_STARTED.replace(true) {
        actix_rt::spawn(carry(hub.clone()));
    }
    let first = BAG.with_borrow_mut(|bag| {
        bag.push(Box::new(message));
        bag.len() == 1
    });
    if first {
        // Scheduled behind the tasks already woken: it runs once they have had their turn.
        if let Some(carrier) = CARRIER.take() {
            carrier.wake();
        }
    }
}

/// The thread's carrier: waits for the bag to fill, sends it whole, and waits again.
async fn carry(hub: Addr<Hub>) {
    loop {
        std::future::poll_fn(|cx| {
            if BAG.with_borrow(Vec::is_empty) {
                CARRIER.set(Some(cx.waker().clone()));
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        hub.do_send(Mailbag(BAG.take()));
    }
}
