//! The `/echo` actor: a plain RFC 6455 echo peer. Every text and binary message goes back
//! unchanged (fragmented ones joined first), pings get pongs, and the client's close code
//! is echoed. No JSON, no hub; the frames themselves are its [`Connection`]'s.

use std::{rc::Rc, sync::Arc};

use actix::prelude::*;

use crate::{
    admission::Ticket,
    session::ConnectionSettings,
    shutdown::{GoingAway, Subscription},
    supervisor::{ConnectionLink, Watch},
    transport::{Connection, DataMessage, SocketCloser, WsContext, WsFrame},
    worker::Worker,
};

pub struct EchoSession {
    settings: Arc<ConnectionSettings>,
    connection: Connection,
    /// Ticked by the heartbeat; the supervisor resets the socket if it stops.
    link: Arc<ConnectionLink>,
    worker: Rc<Worker>,
    /// On this thread's shutdown list while the actor lives.
    going_away: Option<Subscription>,
    /// Holds this connection's slot under `MAX_CONNECTIONS`.
    _ticket: Ticket,
}

impl EchoSession {
    pub fn new(
        settings: Arc<ConnectionSettings>,
        worker: Rc<Worker>,
        ticket: Ticket,
        socket: Option<SocketCloser>,
    ) -> Self {
        Self {
            connection: Connection::new(
                "echo client",
                settings.connection_limits(),
                socket.clone(),
            ),
            link: Arc::new(ConnectionLink::new(socket)),
            worker,
            settings,
            _ticket: ticket,
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
        self.worker.watch(Watch {
            link: self.link.clone(),
            member: None,
        });
        ctx.run_interval(self.settings.heartbeat_interval, Self::heartbeat);
        self.going_away = self.worker.on_shutdown(ctx.address().recipient());
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.link.end();
        Running::Stop
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
