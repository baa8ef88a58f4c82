//! The per-connection actor on `/ws`: decodes client frames, keeps the heartbeat, and
//! forwards commands to the hub; delivers the hub's frames to its client.
//!
//! It owns no room state. It registers with the hub (and the supervisor) in `started`
//! and deregisters in `stopping`, exactly once, and it records *why* it stopped so the
//! hub can tell the rooms (`disconnect`, `timeout`, `slow`). Everything it sends the hub
//! goes through its worker thread's [`Worker`].
//!
//! It counts what it receives by type, the errors it sends itself and the messages it
//! drops for their rate, in the server's [`crate::metrics`]: one atomic add each.
//!
//! With authentication on it holds the connection's token claims: it tells the hub the
//! user and the rooms the token allows when it connects (the room rules check `join`
//! and `say` against them: they are room rules, kept in `hubbub-core` with the others),
//! closes the connection with 4001 once the token has expired (plus the leeway), and
//! answers `refresh` itself, since it has the verifier and the claims: `refreshed` or
//! `bad_token`, and a [`Reauthorize`] to the hub when the new token brings a name or
//! other rooms.

use std::{
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use bytestring::ByteString;

use hubbub_core::{cmd::Join, Access};

use crate::{
    admission::Ticket,
    auth::{Claims, Verifier},
    hub::messages::{Connect, Disconnect, FromMember, Reauthorize},
    protocol::{
        self, Command, DisplayName, Event, Inbound, LeaveReason, Limits, MemberId, NodeId,
        ProtocolError, Ref, RoomName, Timestamp, PROTOCOL_VERSION,
    },
    rate_limit::{RateLimiter, Verdict},
    shutdown::{GoingAway, Subscription},
    supervisor::{ConnectionLink, Evict, Watch, WatchedMember},
    transport::{
        CloseCode, Connection, ConnectionLimits, DataMessage, SocketCloser, WsContext, WsFrame,
    },
    worker::Worker,
};

/// What every connection actor needs to know, built once from `Config` and shared.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// How often the server pings.
    pub heartbeat_interval: Duration,
    /// Silence after which a client is dropped.
    pub client_timeout: Duration,
    /// How long a server-initiated close waits for the client's close.
    pub close_timeout: Duration,
    /// Told to clients in `welcome`, and enforced: the largest message (fragments
    /// joined) and the outbound budget of one `/ws` connection come from here.
    pub limits: Limits,
    /// Per-connection rate limit on `/ws` (see `Config`); `rate_limit_per_s == 0` is off.
    pub rate_limit_per_s: u32,
    pub rate_limit_burst: u32,
    pub rate_limit_strikes: u32,
    /// This server's `NODE_ID`, told in `welcome.node`.
    pub node: NodeId,
    /// Checks tokens (at the upgrade and on `refresh`) when authentication is on.
    pub verifier: Option<Arc<Verifier>>,
}

impl ConnectionSettings {
    /// What the transport's [`Connection`] enforces.
    pub(crate) fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_message_bytes: self.limits.max_message_bytes,
            client_timeout: self.client_timeout,
            close_timeout: self.close_timeout,
        }
    }
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
    /// The upgrade's token, verified; `None` with authentication off.
    pub claims: Option<Claims>,
}

/// What the session does once, when it starts.
struct Start {
    name: DisplayName,
    room: Option<RoomName>,
    query_errors: Vec<ProtocolError>,
}

/// An authenticated connection's token (checked with `ConnectionSettings::verifier`).
struct Authenticated {
    /// The claims of the token it holds now (the last refreshed).
    claims: Claims,
    /// Closes the connection with 4001 at `exp` plus the leeway; re-armed by a refresh.
    expiry: Option<SpawnHandle>,
}

/// The longest a single expiry timer is set for: a token valid for months is checked
/// again each day rather than trusting one timer (and the clock) for that long.
const MAX_EXPIRY_TIMER: Duration = Duration::from_secs(86_400);

pub struct Session {
    id: MemberId,
    worker: Rc<Worker>,
    settings: Arc<ConnectionSettings>,
    link: Arc<ConnectionLink>,
    /// The frames, heartbeat and closing handshake of this connection.
    connection: Connection,
    /// Reported to the hub when the actor stops.
    leave_reason: LeaveReason,
    /// Taken in `started`. (The session keeps no name: the room state has it.)
    start: Option<Start>,
    /// On this thread's shutdown list while the actor lives.
    going_away: Option<Subscription>,
    /// `None` when rate limiting is off.
    rate_limiter: Option<RateLimiter>,
    /// `None` with authentication off.
    auth: Option<Authenticated>,
    /// Holds this connection's slot under `MAX_CONNECTIONS`.
    _ticket: Ticket,
}

impl Session {
    pub fn new(setup: SessionSetup, worker: Rc<Worker>, settings: Arc<ConnectionSettings>) -> Self {
        let rate_limiter = RateLimiter::new(
            settings.rate_limit_per_s,
            settings.rate_limit_burst,
            settings.rate_limit_strikes,
            Instant::now(),
        );
        let auth = setup.claims.map(|claims| Authenticated {
            claims,
            expiry: None,
        });
        Self {
            rate_limiter,
            auth,
            id: setup.id,
            worker,
            connection: Connection::new(
                format!("member {}", setup.id),
                settings.connection_limits(),
                setup.socket.clone(),
            ),
            settings,
            link: Arc::new(ConnectionLink::new(setup.socket)),
            leave_reason: LeaveReason::Disconnect,
            start: Some(Start {
                name: setup.name,
                room: setup.room,
                query_errors: setup.query_errors,
            }),
            _ticket: setup.ticket,
            going_away: None,
        }
    }

    /// Sends an event straight to this client (replies that need no hub).
    fn reply(&self, ctx: &mut WsContext<Self>, reference: Option<&Ref>, event: &Event) {
        ctx.text(event.to_reply(reference));
    }

    /// Sends an `error` straight to this client, counted by its code.
    fn reply_error(
        &self,
        ctx: &mut WsContext<Self>,
        reference: Option<&Ref>,
        error: ProtocolError,
    ) {
        self.worker.counters().error_sent(error.code);
        self.reply(ctx, reference, &error.into());
    }

    /// Answers a command here if it needs no room state (or is `refresh`), else hands it
    /// to the hub.
    fn dispatch(&mut self, command: Command, reference: Option<Ref>, ctx: &mut WsContext<Self>) {
        let command = match command {
            Command::Refresh(refresh) => return self.refresh(refresh.token, reference, ctx),
            other => other,
        };
        match command.answer_here(Timestamp::now()) {
            Ok(reply) => self.reply(ctx, reference.as_ref(), &reply),
            Err(command) => self.worker.send_to_hub(FromMember {
                from: self.id,
                reference,
                command,
            }),
        }
    }

    /// `refresh`: the connection holds `token` from now on if it is valid and for the
    /// same user; `refreshed` with its expiry, or `bad_token` (and nothing changes).
    fn refresh(&mut self, token: String, reference: Option<Ref>, ctx: &mut WsContext<Self>) {
        let bad_token =
            |message: String| ProtocolError::new(protocol::ErrorCode::BadToken, message);
        let (Some(auth), Some(verifier)) = (self.auth.as_mut(), self.settings.verifier.as_ref())
        else {
            let error = bad_token(
                "authentication is off on this server: there is no token to refresh".into(),
            );
            return self.reply_error(ctx, reference.as_ref(), error);
        };
        let claims = match verifier.verify(&token, Timestamp::now()) {
            Ok(claims) => claims,
            Err(refusal) => {
                log::info!("member {}: refresh refused: {refusal}", self.id);
                return self.reply_error(ctx, reference.as_ref(), bad_token(refusal.to_string()));
            }
        };
        if claims.user != auth.claims.user {
            log::info!(
                "member {}: refresh refused: a token for user {} on user {}'s connection",
                self.id,
                claims.user,
                auth.claims.user
            );
            let error = bad_token(format!(
                "the token is for another user than this connection's ({}); connect again to \
                 change users",
                auth.claims.user
            ));
            return self.reply_error(ctx, reference.as_ref(), error);
        }
        let expires_at = claims.expires_at;
        let changed = claims.name.is_some() || claims.rooms != auth.claims.rooms;
        let reauthorize = changed.then(|| Reauthorize {
            id: self.id,
            reference: reference.clone(),
            name: claims.name.clone(),
            rooms: claims.rooms.clone(),
        });
        auth.claims = claims;
        log::info!(
            "member {}: token refreshed, expires at {}",
            self.id,
            expires_at
        );
        // `refreshed` first: should the new deadline already be due, its 4001 follows
        // the answer instead of overtaking it.
        self.reply(ctx, reference.as_ref(), &Event::Refreshed { expires_at });
        if let Some(reauthorize) = reauthorize {
            self.worker.send_to_hub(reauthorize);
        }
        self.arm_expiry(ctx);
    }

    /// Sets the timer that closes the connection with 4001 once its token has expired
    /// (plus the leeway), in place of any earlier one.
    fn arm_expiry(&mut self, ctx: &mut WsContext<Self>) {
        let (Some(auth), Some(verifier)) = (self.auth.as_mut(), self.settings.verifier.as_ref())
        else {
            return;
        };
        if let Some(earlier) = auth.expiry.take() {
            ctx.cancel_future(earlier);
        }
        let deadline = auth.claims.expires_at.millis() + verifier.leeway().as_millis() as i64;
        let left = deadline - Timestamp::now().millis();
        if left <= 0 {
            return self.token_expired(ctx);
        }
        let wait = Duration::from_millis(left as u64).min(MAX_EXPIRY_TIMER);
        auth.expiry = Some(ctx.run_later(wait, Self::arm_expiry));
    }

    fn token_expired(&mut self, ctx: &mut WsContext<Self>) {
        log::info!(
            "member {}: its token expired and was not refreshed, closing with 4001",
            self.id
        );
        self.connection
            .close(ctx, CloseCode::TokenExpired, "token expired");
    }

    /// Spends a token for one incoming message; `false` if it must not be served.
    fn within_rate(&mut self, reference: Option<&Ref>, ctx: &mut WsContext<Self>) -> bool {
        let Some(limiter) = self.rate_limiter.as_mut() else {
            return true;
        };
        match limiter.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::Refuse => {
                self.worker.counters().rate_limited();
                let error = ProtocolError::new(
                    protocol::ErrorCode::RateLimited,
                    format!(
                        "more than {} messages a second: this one was dropped",
                        self.settings.rate_limit_per_s
                    ),
                );
                self.reply_error(ctx, reference, error);
                false
            }
            Verdict::Disconnect => {
                log::info!(
                    "member {}: kept breaking the rate limit, closing with 1008",
                    self.id
                );
                self.connection
                    .close(ctx, CloseCode::Policy, "rate limit exceeded repeatedly");
                false
            }
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut WsContext<Self>) {
        let inbound = protocol::decode(text);
        self.worker.counters().message_received(&inbound);
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
                self.reply_error(ctx, reference.as_ref(), error)
            }
            Inbound::Command { reference, command } => self.dispatch(command, reference, ctx),
        }
    }

    fn heartbeat(&mut self, ctx: &mut WsContext<Self>) {
        self.link.tick();
        if !self.connection.heartbeat(ctx) {
            log::info!("member {}: no heartbeat, dropping", self.id);
            self.leave_reason = LeaveReason::Timeout;
        }
    }
}

impl Actor for Session {
    type Context = WsContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(start) = self.start.take() else {
            return;
        };
        // The inbox exists before the hub hears of this connection, so its first reply
        // has somewhere to go.
        ctx.add_stream(
            self.worker
                .open_inbox(self.id, self.settings.limits.max_pending_bytes),
        );
        let access = self
            .auth
            .as_ref()
            .map_or_else(Access::default, |auth| Access {
                user: Some(auth.claims.user.clone()),
                rooms: auth.claims.rooms.clone(),
            });
        self.worker.send_to_hub(Connect {
            id: self.id,
            name: start.name.clone(),
            access,
            courier: self.worker.courier(),
        });
        self.worker.watch(Watch {
            link: self.link.clone(),
            member: Some(WatchedMember {
                id: self.id,
                evict: ctx.address().recipient(),
            }),
        });
        let welcome = Event::Welcome {
            protocol: PROTOCOL_VERSION,
            id: self.id,
            name: start.name,
            heartbeat_ms: self.settings.heartbeat_interval.as_millis() as u64,
            timeout_ms: self.settings.client_timeout.as_millis() as u64,
            limits: self.settings.limits.clone(),
            node: self.settings.node.clone(),
            user: self.auth.as_ref().map(|auth| auth.claims.user.clone()),
            expires_at: self.auth.as_ref().map(|auth| auth.claims.expires_at),
        };
        self.reply(ctx, None, &welcome);
        for error in start.query_errors {
            self.reply_error(ctx, None, error);
        }
        if let Some(room) = start.room {
            self.dispatch(Command::Join(Join::room(room)), None, ctx);
        }
        ctx.run_interval(self.settings.heartbeat_interval, Self::heartbeat);
        self.arm_expiry(ctx);
        self.going_away = self.worker.on_shutdown(ctx.address().recipient());
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.worker.close_inbox(self.id);
        self.worker.send_to_hub(Disconnect {
            id: self.id,
            reason: self.leave_reason,
        });
        self.link.end();
        Running::Stop
    }
}

impl StreamHandler<WsFrame> for Session {
    fn handle(&mut self, frame: WsFrame, ctx: &mut Self::Context) {
        match self.connection.on_frame(frame, ctx) {
            Some(DataMessage::Text(text)) => self.on_text(&text, ctx),
            Some(DataMessage::Binary(_)) => {
                self.worker.counters().binary_received();
                if !self.within_rate(None, ctx) {
                    return;
                }
                let error = ProtocolError::new(
                    protocol::ErrorCode::BadJson,
                    "binary frames are not part of the /ws protocol: send JSON as text",
                );
                self.reply_error(ctx, None, error);
            }
            None => {}
        }
    }
}

/// Frames from the hub, through this connection's inbox ([`crate::courier`]).
impl StreamHandler<ByteString> for Session {
    fn handle(&mut self, frame: ByteString, ctx: &mut Self::Context) {
        // Once evicted, queued frames are dropped so the close goes out promptly; once
        // our close frame is out (a 4001 at expiry, say), no data frame may follow it.
        if !self.link.is_evicted() && !self.connection.is_closing() {
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
