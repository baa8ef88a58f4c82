//! The `/echo` actor: a plain RFC 6455 echo peer. Every text and binary message goes back
//! unchanged (fragmented ones joined first), pings get pongs, and the client's close code
//! is echoed. No JSON, no hub.

use std::{rc::Rc, sync::Arc};

use actix::prelude::*;

use crate::{
    admission::Ticket,
    session::ConnectionSettings,
    shutdown::{GoingAway, Subscription},
    supervisor::{ConnectionLink, Watch},
    transport::{self, Incoming, Liveness, Reassembler, SocketCloser, WsContext, WsFrame},
    worker::Worker,
};

pub struct EchoSession {
    settings: Arc<ConnectionSettings>,
    incoming: Reassembler,
    /// When anything last came from the client.
    liveness: Liveness,
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
            link: Arc::new(ConnectionLink::new(socket)),
            worker,
            incoming: Reassembler::new(settings.limits.max_message_bytes)
                .with_close_timeout(settings.close_timeout),
            settings,
            liveness: Liveness::default(),
            _ticket: ticket,
            going_away: None,
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
        ctx.run_interval(self.settings.heartbeat_interval, |echo, ctx| {
            echo.link.tick();
            if echo.liveness.silent_for() > echo.settings.client_timeout {
                log::info!("echo client: no heartbeat, dropping");
                ctx.stop();
            } else {
                ctx.ping(b"");
            }
        });
        self.going_away = self.worker.on_shutdown(ctx.address().recipient());
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.link.end();
        Running::Stop
    }
}

impl StreamHandler<WsFrame> for EchoSession {
    fn handle(&mut self, frame: WsFrame, ctx: &mut Self::Context) {
        self.liveness.heard();
        match self.incoming.push(frame) {
            Ok(None) => {}
            Ok(Some(Incoming::Text(text))) => ctx.text(text),
            Ok(Some(Incoming::Binary(data))) => ctx.binary(data),
            Ok(Some(Incoming::Ping(data))) => ctx.pong(&data),
            Ok(Some(Incoming::Pong)) => {}
            Ok(Some(Incoming::Close(reason))) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(Some(Incoming::CloseAcknowledged)) => ctx.stop(),
            Err(violation) => {
                log::debug!("echo client: ending: {}", violation.description());
                transport::close_for(ctx, &mut self.incoming, &violation);
            }
        }
    }
}

impl Handler<GoingAway> for EchoSession {
    type Result = ();

    fn handle(&mut self, _: GoingAway, ctx: &mut Self::Context) {
        transport::close_going_away(ctx, &mut self.incoming);
    }
}
