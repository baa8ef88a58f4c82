//! The `/echo` actor: a plain RFC 6455 echo peer. Every text and binary message goes back
//! unchanged (fragmented ones joined first), pings get pongs, and the client's close code
//! is echoed. No JSON, no hub; the frames themselves are its [`Connection`]'s.

use std::sync::Arc;

use actix::prelude::*;

use crate::{
    admission::Ticket,
    outbox::SessionLink,
    session::ConnectionSettings,
    shutdown::{GoingAway, Shutdown, Subscription},
    transport::{Connection, ConnectionLimits, DataMessage, SocketCloser, WsContext, WsFrame},
    watchdog::{Watch, Watchdog},
};

pub struct EchoSession {
    settings: Arc<ConnectionSettings>,
    connection: Connection,
    /// Ticked by the heartbeat; the watchdog resets the socket if it stops.
    link: Arc<SessionLink>,
    watchdog: Addr<Watchdog>,
    shutdown: Shutdown,
    /// On this thread's shutdown list while the actor lives.
    going_away: Option<Subscription>,
    /// Holds this connection's slot under `MAX_CONNECTIONS`.
    _ticket: Ticket,
}

impl EchoSession {
    pub fn new(
        settings: Arc<ConnectionSettings>,
        shutdown: Shutdown,
        ticket: Ticket,
        socket: Option<SocketCloser>,
        watchdog: Addr<Watchdog>,
    ) -> Self {
        let limits = ConnectionLimits {
            max_message_bytes: settings.max_message_bytes,
            client_timeout: settings.client_timeout,
            close_timeout: settings.close_timeout,
        };
        Self {
            connection: Connection::new("echo client", limits, socket.clone()),
            link: Arc::new(SessionLink::new(socket)),
            watchdog,
            settings,
            _ticket: ticket,
            shutdown,
            going_away: None,
        }
    }

    fn heartbeat(&mut self, ctx: &mut WsContext<Self>) {
        self.link.tick();
        if !self.connection.heartbeat(ctx) {
            log::info!("echo client: no heartbeat, dropping");
        }
    }
}

impl Actor for EchoSession {
    type Context = WsContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.watchdog.do_send(Watch {
            link: self.link.clone(),
        });
        ctx.run_interval(self.settings.heartbeat_interval, Self::heartbeat);
        self.going_away = self.shutdown.subscribe(ctx.address().recipient());
    }
}

impl StreamHandler<WsFrame> for EchoSession {
    fn handle(&mut self, frame: WsFrame, ctx: &mut Self::Context) {
        match self.connection.on_frame(frame, ctx) {
            Some(DataMessage::Text(text)) => ctx.text(text),
            Some(DataMessage::Binary(data)) => ctx.binary(data),
            None => {}
        }
    }
}

impl Handler<GoingAway> for EchoSession {
    type Result = ();

    fn handle(&mut self, _: GoingAway, ctx: &mut Self::Context) {
        self.connection.going_away(ctx);
    }
}
