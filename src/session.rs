//! The per-connection actor on `/ws`: decodes client frames, keeps the heartbeat, and
//! forwards commands to the hub; delivers the hub's frames to its client.
//!
//! It owns no room state. It registers with the hub in `started` and deregisters in
//! `stopping`, exactly once, and it records *why* it stopped so the hub can tell the
//! rooms (`disconnect`, `timeout`, `slow`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use bytestring::ByteString;

use crate::{
    admission::Ticket,
    courier,
    hub::{mailbag, messages::*, Hub},
    outbox::{Evict, Outbox, SessionLink},
    protocol::{
        self, Command, DisplayName, Event, Inbound, LeaveReason, Limits, MemberId, ProtocolError,
        Ref, RoomName, Timestamp, PROTOCOL_VERSION,
    },
    rate_limit::{RateLimiter, Verdict},
    shutdown::{GoingAway, Shutdown, Subscription},
    transport::{
        CloseCode, Connection, ConnectionLimits, DataMessage, SocketCloser, WsContext, WsFrame,
    },
};

/// What every connection actor needs to know, built once from `Config` and shared.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// How often the server pings.
    pub heartbeat_interval: Duration,
    /// Silence after which a client is dropped.
    pub client_timeout: Duration,
    /// Largest message, fragments joined.
    pub max_message_bytes: usize,
    /// How long a server-initiated close waits for the client's close.
    pub close_timeout: Duration,
    /// The outbound budget of one `/ws` connection.
    pub max_pending_bytes: usize,
    /// Told to clients in `welcome`.
    pub limits: Limits,
    /// Per-connection rate limit on `/ws` (see `Config`); `rate_limit_per_s == 0` is off.
    pub rate_limit_per_s: u32,
    pub rate_limit_burst: u32,
    pub rate_limit_strikes: u32,
}

/// A new `/ws` connection, before its actor starts.
pub struct SessionSetup {
    pub id: MemberId,
    pub name: DisplayName,
    /// Joined right after `welcome` (`?room=`).
    pub room: Option<RoomName>,
    /// Problems with the connect query, reported as `error` frames after `welcome`.
    pub query_errors: Vec<ProtocolError>,
    pub socket: Option<SocketCloser>,
    pub ticket: Ticket,
}

pub struct Session {
    id: MemberId,
    name: DisplayName,
    hub: Addr<Hub>,
    settings: Arc<ConnectionSettings>,
    link: Arc<SessionLink>,
    /// The frames, heartbeat and closing handshake of this connection.
    connection: Connection,
    /// Reported to the hub when the actor stops.
    leave_reason: LeaveReason,
    initial_room: Option<RoomName>,
    query_errors: Vec<ProtocolError>,
    shutdown: Shutdown,
    /// On this thread's shutdown list while the actor lives.
    going_away: Option<Subscription>,
    /// `None` when rate limiting is off.
    rate_limiter: Option<RateLimiter>,
    /// Holds this connection's slot under `MAX_CONNECTIONS`.
    _ticket: Ticket,
}

impl Session {
    pub fn new(
        setup: SessionSetup,
        hub: Addr<Hub>,
        settings: Arc<ConnectionSettings>,
        shutdown: Shutdown,
    ) -> Self {
        let rate_limiter = RateLimiter::new(
            settings.rate_limit_per_s,
            settings.rate_limit_burst,
            settings.rate_limit_strikes,
            Instant::now(),
        );
        let limits = ConnectionLimits {
            max_message_bytes: settings.max_message_bytes,
            client_timeout: settings.client_timeout,
            close_timeout: settings.close_timeout,
        };
        Self {
            rate_limiter,
            id: setup.id,
            name: setup.name,
            hub,
            connection: Connection::new(
                format!("member {}", setup.id),
                limits,
                setup.socket.clone(),
            ),
            settings,
            link: Arc::new(SessionLink::new(setup.socket)),
            leave_reason: LeaveReason::Disconnect,
            initial_room: setup.room,
            query_errors: setup.query_errors,
            _ticket: setup.ticket,
            shutdown,
            going_away: None,
        }
    }

    /// Sends an event straight to this client (replies that need no hub).
    fn reply(&self, ctx: &mut WsContext<Self>, reference: Option<&Ref>, event: &Event) {
        ctx.text(event.to_reply(reference));
    }

    fn forward<C: crate::hub::Apply>(&self, command: C, reference: Option<Ref>) {
        mailbag::send_to_hub(
            &self.hub,
            FromMember {
                from: self.id,
                reference,
                command,
            },
        );
    }

    /// Spends a token for one incoming message; `false` if it must not be served.
    fn within_rate(&mut self, reference: Option<&Ref>, ctx: &mut WsContext<Self>) -> bool {
        let Some(limiter) = self.rate_limiter.as_mut() else {
            return true;
        };
        match limiter.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::Refuse => {
                let error = ProtocolError::new(
                    protocol::ErrorCode::RateLimited,
                    format!(
                        "more than {} messages a second: this one was dropped",
                        self.settings.rate_limit_per_s
                    ),
                );
                self.reply(ctx, reference, &error.into());
                false
            }
            Verdict::Disconnect => {
                log::info!(
                    "member {} ({}): kept breaking the rate limit, closing with 1008",
                    self.id,
                    self.name
                );
                self.connection
                    .close(ctx, CloseCode::Policy, "rate limit exceeded repeatedly");
                false
            }
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut WsContext<Self>) {
        let inbound = protocol::decode(text);
        let reference = match &inbound {
            Inbound::Command { reference, .. } | Inbound::Rejected { reference, .. } => {
                reference.as_ref()
            }
            Inbound::Plain(_) => None,
        };
        if !self.within_rate(reference, ctx) {
            return;
        }
        match inbound {
            Inbound::Plain(text) => self.reply(
                ctx,
                None,
                &Event::Echo {
                    text,
                    at: Timestamp::now(),
                },
            ),
            Inbound::Rejected { reference, error } => {
                log::debug!("member {}: rejected frame: {:?}", self.id, error);
                self.reply(ctx, reference.as_ref(), &error.into())
            }
            Inbound::Command { reference, command } => self.dispatch(command, reference, ctx),
        }
    }

    /// One arm per client command: answer here or hand it to the hub.
    fn dispatch(&mut self, command: Command, reference: Option<Ref>, ctx: &mut WsContext<Self>) {
        match command {
            Command::Echo { text } => {
                let echo = Event::Echo {
                    text,
                    at: Timestamp::now(),
                };
                self.reply(ctx, reference.as_ref(), &echo)
            }
            Command::Join { room } => self.forward(Join { room }, reference),
            Command::Leave { room } => self.forward(Leave { room }, reference),
            Command::Say { room, text } => self.forward(Say { room, text }, reference),
            Command::Whisper { to, text } => self.forward(Whisper { to, text }, reference),
            Command::Who { room } => self.forward(Who { room }, reference),
            Command::Rooms => self.forward(ListRooms, reference),
            Command::Rename { name } => self.forward(Rename { name }, reference),
        }
    }

    fn heartbeat(&mut self, ctx: &mut WsContext<Self>) {
        self.link.tick();
        if !self.connection.heartbeat(ctx) {
            log::info!("member {} ({}): no heartbeat, dropping", self.id, self.name);
            self.leave_reason = LeaveReason::Timeout;
        }
    }
}

impl Actor for Session {
    type Context = WsContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The inbox exists before the hub hears of this connection, so its first reply
        // has somewhere to go.
        ctx.add_stream(courier::open_inbox(
            self.id,
            self.settings.max_pending_bytes,
        ));
        let courier = courier::local_courier(|| self.hub.clone().recipient());
        mailbag::send_to_hub(
            &self.hub,
            Connect {
                id: self.id,
                name: self.name.clone(),
                outbox: Outbox::new(courier, ctx.address().recipient(), self.link.clone()),
            },
        );
        let welcome = Event::Welcome {
            protocol: PROTOCOL_VERSION,
            id: self.id,
            name: self.name.clone(),
            heartbeat_ms: self.settings.heartbeat_interval.as_millis() as u64,
            timeout_ms: self.settings.client_timeout.as_millis() as u64,
            limits: self.settings.limits.clone(),
        };
        self.reply(ctx, None, &welcome);
        for error in std::mem::take(&mut self.query_errors) {
            self.reply(ctx, None, &error.into());
        }
        if let Some(room) = self.initial_room.take() {
            self.forward(Join { room }, None);
        }
        ctx.run_interval(self.settings.heartbeat_interval, Self::heartbeat);
        self.going_away = self.shutdown.subscribe(ctx.address().recipient());
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        courier::close_inbox(self.id);
        mailbag::send_to_hub(
            &self.hub,
            Disconnect {
                id: self.id,
                reason: self.leave_reason,
            },
        );
        Running::Stop
    }
}

impl StreamHandler<WsFrame> for Session {
    fn handle(&mut self, frame: WsFrame, ctx: &mut Self::Context) {
        match self.connection.on_frame(frame, ctx) {
            Some(DataMessage::Text(text)) => self.on_text(&text, ctx),
            Some(DataMessage::Binary(_)) => {
                if !self.within_rate(None, ctx) {
                    return;
                }
                let error = ProtocolError::new(
                    protocol::ErrorCode::BadJson,
                    "binary frames are not part of the /ws protocol: send JSON as text",
                );
                self.reply(ctx, None, &error.into());
            }
            None => {}
        }
    }
}

/// Frames from the hub, through this connection's inbox ([`courier`]).
impl StreamHandler<ByteString> for Session {
    fn handle(&mut self, frame: ByteString, ctx: &mut Self::Context) {
        // Once evicted, queued frames are dropped so the close goes out promptly.
        if !self.link.is_evicted() {
            ctx.text(frame);
        }
    }

    /// The inbox never ends; the connection's own end is the frame stream's.
    fn finished(&mut self, _: &mut Self::Context) {}
}

impl Handler<Evict> for Session {
    type Result = ();

    fn handle(&mut self, msg: Evict, ctx: &mut Self::Context) {
        self.leave_reason = LeaveReason::Slow;
        self.connection.close(ctx, msg.code, msg.reason);
    }
}

impl Handler<GoingAway> for Session {
    type Result = ();

    fn handle(&mut self, _: GoingAway, ctx: &mut Self::Context) {
        self.connection.going_away(ctx);
    }
}
