//! The part of a connection actor that is transport: what `/ws` and `/echo` share. A
//! [`Connection`] answers control frames, ends the connection on violations, keeps the
//! heartbeat's timeout and the closing handshake, and holds the socket's
//! [`SocketCloser`]; it hands back only data messages. What those mean is the actor's.

use std::time::Duration;

use actix::ActorContext;
use actix_web_actors::ws::{self, CloseReason};
use bytes::Bytes;
use bytestring::ByteString;

use super::{
    close::{is_valid_close_code, CloseHandshake},
    liveness::Liveness,
    CloseCode, Incoming, Reassembler, SocketCloser, Violation, WsContext, WsFrame,
};

/// A whole data message from the client, for the actor to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataMessage {
    Text(ByteString),
    Binary(Bytes),
}

/// A connection's transport limits, from `Config`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Largest message, fragments joined.
    pub(crate) max_message_bytes: usize,
    /// Silence after which a client is dropped.
    pub(crate) client_timeout: Duration,
    /// How long a server-initiated close waits for the client's close.
    pub(crate) close_timeout: Duration,
}

/// The transport half of one WebSocket connection, embedded in its actor.
#[derive(Debug)]
pub(crate) struct Connection {
    /// Who is on the other end, for the log: `member 42`, `echo client`.
    peer: String,
    incoming: Reassembler,
    close: CloseHandshake,
    /// When anything (a frame, a pong) last came from the client.
    liveness: Liveness,
    client_timeout: Duration,
    /// Released when the connection is dropped (see [`SocketCloser`]).
    socket: Option<SocketCloser>,
}

/// What one frame asks of the connection; decided apart from the actor's context so it
/// can be tested without one.
#[derive(Debug, PartialEq)]
enum Reaction {
    /// Part of a message, a pong, or whatever arrives after our close.
    Nothing,
    Deliver(DataMessage),
    Pong(Bytes),
    /// The client's close: ours answers it, or it answers ours.
    PeerClosed(Option<CloseReason>),
    End(Violation),
}

impl Connection {
    pub(crate) fn new(
        peer: impl Into<String>,
        limits: ConnectionLimits,
        socket: Option<SocketCloser>,
    ) -> Self {
        Self {
            peer: peer.into(),
            incoming: Reassembler::new(limits.max_message_bytes),
            close: CloseHandshake::new(limits.close_timeout),
            liveness: Liveness::default(),
            client_timeout: limits.client_timeout,
            socket,
        }
    }

    /// Takes one frame from the client: pings are answered, a close completes the
    /// handshake, a violation ends the connection (logged here); a whole data message
    /// is handed back.
    pub(crate) fn on_frame<A>(
        &mut self,
        frame: WsFrame,
        ctx: &mut WsContext<A>,
    ) -> Option<DataMessage>
    where
        A: actix::Actor<Context = WsContext<A>>,
    {
        self.liveness.heard();
        match self.react(frame) {
            Reaction::Nothing => {}
            Reaction::Deliver(message) => return Some(message),
            Reaction::Pong(data) => ctx.pong(&data),
            Reaction::PeerClosed(reason) => self.close.peer_closed(ctx, reason),
            Reaction::End(violation) => {
                log::debug!("{}: ending: {}", self.peer, violation.description());
                self.close.close_for(ctx, &violation);
            }
        }
        None
    }

    fn react(&mut self, frame: WsFrame) -> Reaction {
        let message = match frame {
            Ok(message) => message,
            Err(err) => return Reaction::End(err.into()),
        };
        if self.close.is_sent() {
            // Whatever the client was still sending when our close went out is dropped.
            return match message {
                ws::Message::Close(reason) => Reaction::PeerClosed(reason),
                _ => Reaction::Nothing,
            };
        }
        match self.incoming.push(message) {
            Ok(None | Some(Incoming::Pong)) => Reaction::Nothing,
            Ok(Some(Incoming::Text(text))) => Reaction::Deliver(DataMessage::Text(text)),
            Ok(Some(Incoming::Binary(data))) => Reaction::Deliver(DataMessage::Binary(data)),
            Ok(Some(Incoming::Ping(data))) => Reaction::Pong(data),
            Ok(Some(Incoming::Close(Some(reason))))
                if !is_valid_close_code(u16::from(reason.code)) =>
            {
                Reaction::End(Violation::Protocol("invalid close code".into()))
            }
            Ok(Some(Incoming::Close(reason))) => Reaction::PeerClosed(reason),
            Err(violation) => Reaction::End(violation),
        }
    }

    /// For the actor's heartbeat timer: pings the client, or, if it has been silent
    /// longer than the client timeout, stops the actor and returns `false` (the actor
    /// logs why, and records it if it must).
    pub(crate) fn heartbeat<A>(&mut self, ctx: &mut WsContext<A>) -> bool
    where
        A: actix::Actor<Context = WsContext<A>>,
    {
        if self.liveness.silent_for() > self.client_timeout {
            ctx.stop();
            return false;
        }
        ctx.ping(b"");
        true
    }

    /// Closes with `code` through the closing handshake (see [`CloseHandshake::close`]).
    pub(crate) fn close<A>(
        &mut self,
        ctx: &mut WsContext<A>,
        code: CloseCode,
        description: impl Into<String>,
    ) where
        A: actix::Actor<Context = WsContext<A>>,
    {
        self.close.close(ctx, code, description);
    }

    /// Whether our close frame has gone out: RFC 6455 (5.5.1) lets no data frame follow
    /// it, so what is still queued for the client is dropped.
    pub(crate) fn is_closing(&self) -> bool {
        self.close.is_sent()
    }

    /// The server is shutting down: close 1001.
    pub(crate) fn going_away<A>(&mut self, ctx: &mut WsContext<A>)
    where
        A: actix::Actor<Context = WsContext<A>>,
    {
        self.close.close_going_away(ctx);
    }
}

/// The actor is dropped with the HTTP connection serving it (its context is that
/// connection's response body), so the socket's duplicate is closed by then at the
/// latest, whichever way the actor ended.
impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(socket) = &self.socket {
            socket.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_http::ws::Item;

    use super::*;

    fn connection() -> Connection {
        let limits = ConnectionLimits {
            max_message_bytes: 100,
            client_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(1),
        };
        Connection::new("test client", limits, None)
    }

    fn close_with(code: u16) -> WsFrame {
        Ok(ws::Message::Close(Some(CloseReason {
            code: ws::CloseCode::from(code),
            description: None,
        })))
    }

    #[test]
    fn data_comes_back_and_control_frames_do_not() {
        let mut connection = connection();
        let text = ByteString::from_static("hi");
        assert_eq!(
            connection.react(Ok(ws::Message::Text(text.clone()))),
            Reaction::Deliver(DataMessage::Text(text))
        );
        let ping = Bytes::from_static(b"p");
        assert_eq!(
            connection.react(Ok(ws::Message::Ping(ping.clone()))),
            Reaction::Pong(ping)
        );
        assert_eq!(
            connection.react(Ok(ws::Message::Pong(Bytes::new()))),
            Reaction::Nothing
        );
        let first = ws::Message::Continuation(Item::FirstBinary(Bytes::from_static(b"a")));
        assert_eq!(connection.react(Ok(first)), Reaction::Nothing);
        let last = ws::Message::Continuation(Item::Last(Bytes::from_static(b"b")));
        assert_eq!(
            connection.react(Ok(last)),
            Reaction::Deliver(DataMessage::Binary(Bytes::from_static(b"ab")))
        );
    }

    #[test]
    fn a_close_with_a_code_peers_may_not_send_is_a_protocol_violation() {
        assert_eq!(
            connection().react(close_with(1005)),
            Reaction::End(Violation::Protocol("invalid close code".into()))
        );
        assert!(matches!(
            connection().react(close_with(4000)),
            Reaction::PeerClosed(Some(_))
        ));
    }

    #[test]
    fn after_our_close_only_the_clients_close_counts() {
        let mut connection = connection();
        connection.close = CloseHandshake::sent(Duration::from_secs(1));
        let late = Ok(ws::Message::Text(ByteString::from_static("late")));
        assert_eq!(connection.react(late), Reaction::Nothing);
        let unfinished = ws::Message::Continuation(Item::Last(Bytes::new()));
        assert_eq!(connection.react(Ok(unfinished)), Reaction::Nothing);
        assert_eq!(
            connection.react(close_with(1005)),
            Reaction::PeerClosed(Some(CloseReason {
                code: ws::CloseCode::from(1005),
                description: None
            })),
            "an answer to our close is not checked"
        );
    }

    #[test]
    fn transport_errors_end_the_connection() {
        let mut connection = connection();
        assert_eq!(
            connection.react(Err(ws::ProtocolError::Overflow)),
            Reaction::End(Violation::TooBig)
        );
    }
}
