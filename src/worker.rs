//! One worker thread's plumbing: its way to the hub ([`ToHub`]), its connections'
//! inboxes and their [`Courier`], its shutdown list, and its share of the server's
//! metrics ([`Counters`]). Built once per worker in the
//! `HttpServer` factory ([`crate::startup`]) and handed to the handlers as app data, so
//! it is bound to this server's hub, supervisor and shutdown: two servers in one process
//! never share any of it.

use std::{cell::OnceCell, rc::Rc, sync::Arc};

use actix::prelude::*;

use crate::{
    courier::{Courier, CourierHandle, InboxStream, Inboxes},
    hub::{
        mailbag::{ForHub, ToHub},
        Hub,
    },
    metrics::Counters,
    protocol::MemberId,
    shutdown::{GoingAway, Listeners, Shutdown, Subscription},
    supervisor::{Supervisor, Watch},
};

pub struct Worker {
    to_hub: Rc<ToHub>,
    inboxes: Rc<Inboxes>,
    /// Started by the first connection, on the worker's arbiter.
    courier: OnceCell<CourierHandle>,
    supervisor: Addr<Supervisor>,
    listeners: Rc<Listeners>,
    /// What this thread's connections and upgrades count: this thread's own, summed
    /// with the others' at each scrape.
    counters: Arc<Counters>,
}

impl Worker {
    pub fn new(
        hub: Addr<Hub>,
        supervisor: Addr<Supervisor>,
        shutdown: Shutdown,
        counters: Arc<Counters>,
    ) -> Rc<Self> {
        Rc::new(Self {
            to_hub: ToHub::new(hub),
            inboxes: Rc::default(),
            courier: OnceCell::new(),
            supervisor,
            listeners: Listeners::new(shutdown),
            counters,
        })
    }

    /// This thread's counters, for its connections and upgrades to count in.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Sends `message` to the hub, batched with this thread's other messages.
    pub fn send_to_hub<M: ForHub>(&self, message: M) {
        self.to_hub.send(message);
    }

    /// This thread's courier, through which the hub reaches its connections. The first
    /// call must come from an actor on the worker's arbiter.
    pub fn courier(&self) -> CourierHandle {
        self.courier
            .get_or_init(|| {
                Courier::start_here(self.supervisor.clone().recipient(), self.inboxes.clone())
            })
            .clone()
    }

    /// Gives member `id` an inbox that the courier fills; close it with
    /// [`Worker::close_inbox`].
    pub fn open_inbox(&self, id: MemberId, max_pending_bytes: usize) -> InboxStream {
        self.inboxes.open(id, max_pending_bytes)
    }

    pub fn close_inbox(&self, id: MemberId) {
        self.inboxes.close(id);
    }

    /// Has the supervisor watch a connection until it ends.
    pub fn watch(&self, watch: Watch) {
        self.supervisor.do_send(watch);
    }

    /// Tells `listener` (an actor on this thread) [`GoingAway`] at shutdown.
    pub fn on_shutdown(&self, listener: Recipient<GoingAway>) -> Option<Subscription> {
        self.listeners.subscribe(listener)
    }
}
