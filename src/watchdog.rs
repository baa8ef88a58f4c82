//! Tears down `/echo` connections whose actor is jammed. A client that sends but never
//! reads fills its socket; the HTTP writer then stops polling the actor, whose own
//! timers stop with it, so nothing inside the connection can end it. The watchdog sees
//! the actor's heartbeat stop ticking and resets the socket from outside. (`/ws`
//! connections are watched by the hub, which must also tell their rooms.)

use std::{sync::Arc, time::Duration};

use actix::prelude::*;

use crate::outbox::SessionLink;

/// Watch this connection until it ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub link: Arc<SessionLink>,
}

pub struct Watchdog {
    /// How often to look.
    sweep_interval: Duration,
    /// A connection whose heartbeat has not ticked for this long is jammed.
    jammed_after: Duration,
    watched: Vec<Arc<SessionLink>>,
}

impl Watchdog {
    pub fn new(sweep_interval: Duration, jammed_after: Duration) -> Self {
        Self {
            sweep_interval,
            jammed_after,
            watched: Vec::new(),
        }
    }

    fn sweep(&mut self) {
        let jammed_after = self.jammed_after;
        self.watched.retain(|link| {
            if link.is_released() {
                return false;
            }
            if link.since_tick() > jammed_after {
                log::warn!("an /echo connection is jammed: resetting it");
                link.force_close();
                return false;
            }
            true
        });
    }
}

impl Actor for Watchdog {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.sweep_interval, |watchdog, _| watchdog.sweep());
    }
}

impl Handler<Watch> for Watchdog {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Self::Context) {
        self.watched.push(msg.link);
    }
}
