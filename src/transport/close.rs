//! Closing: the [`CloseCode`]s the server sends, the server's side of the closing
//! handshake ([`CloseHandshake`]), and which codes a client may send. It does not decide
//! *when* to close (the connection actors and the hub do).

use std::time::Duration;

use actix::{ActorContext, AsyncContext};
use actix_web_actors::ws::{self, CloseReason};

use super::{Violation, WsContext};

/// The close codes the server sends (RFC 6455 section 7.4.1), one per reason to close,
/// so a code the server does not mean cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1001: the server is shutting down.
    GoingAway = 1001,
    /// 1002: the client broke the framing rules.
    ProtocolError = 1002,
    /// 1007: text that is not UTF-8.
    InvalidPayload = 1007,
    /// 1008: the client kept breaking a rule of ours (the rate limit).
    Policy = 1008,
    /// 1009: a message over the size limit.
    TooBig = 1009,
    /// 1013: the client reads too slowly to keep up; it may come back later.
    TryAgainLater = 1013,
    /// 4001 (the private range): the connection's token expired and no `refresh` came
    /// in time; the client may reconnect with a fresh token.
    TokenExpired = 4001,
}

impl From<CloseCode> for ws::CloseCode {
    fn from(code: CloseCode) -> Self {
        ws::CloseCode::from(code as u16)
    }
}

/// Close codes a peer may send (RFC 6455 section 7.4): the defined ones that are not
/// reserved for local use, and the registered and private ranges.
pub(crate) fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// The server's side of the closing handshake. A close we start waits (up to
/// `close_timeout`) for the client's close before the actor stops and TCP is closed:
/// stopping at once would close TCP while the client may still be sending, and the
/// resulting reset can destroy the close frame in flight.
#[derive(Debug)]
pub(crate) struct CloseHandshake {
    /// How long to wait for the client's close after sending ours.
    close_timeout: Duration,
    /// Our close frame has gone out: no other may follow, and what the client sends
    /// from now on is dropped until its close.
    sent: bool,
}

impl CloseHandshake {
    pub(crate) fn new(close_timeout: Duration) -> Self {
        Self {
            close_timeout,
            sent: false,
        }
    }

    /// A handshake whose close has gone out, for tests of what follows it.
    #[cfg(test)]
    pub(crate) fn sent(close_timeout: Duration) -> Self {
        let mut handshake = Self::new(close_timeout);
        handshake.begin();
        handshake
    }

    /// Our close frame has gone out.
    pub(crate) fn is_sent(&self) -> bool {
        self.sent
    }

    /// Marks our close as sent; `false` if it already was (nothing more to send).
    fn begin(&mut self) -> bool {
        !std::mem::replace(&mut self.sent, true)
    }

    /// Starts the closing handshake: sends a close frame with `code` and a short
    /// description, then stops the actor when the client answers or `close_timeout`
    /// passes. Only the first close counts.
    pub(crate) fn close<A>(
        &mut self,
        ctx: &mut WsContext<A>,
        code: CloseCode,
        description: impl Into<String>,
    ) where
        A: actix::Actor<Context = WsContext<A>>,
    {
        if !self.begin() {
            return;
        }
        ctx.close(Some(CloseReason {
            code: code.into(),
            description: Some(description.into()),
        }));
        ctx.run_later(self.close_timeout, |_, ctx| ctx.stop());
    }

    /// The server is shutting down: close 1001, the same for every kind of connection.
    pub(crate) fn close_going_away<A>(&mut self, ctx: &mut WsContext<A>)
    where
        A: actix::Actor<Context = WsContext<A>>,
    {
        self.close(ctx, CloseCode::GoingAway, "server shutting down");
    }

    /// Ends the connection for a [`Violation`]: a handshake for an oversize message,
    /// failed at once for broken framing, just stopped when the peer is gone.
    pub(crate) fn close_for<A>(&mut self, ctx: &mut WsContext<A>, violation: &Violation)
    where
        A: actix::Actor<Context = WsContext<A>>,
    {
        match violation.close_code() {
            None => ctx.stop(),
            // A well-formed but unwanted message: the normal closing handshake.
            Some(code @ CloseCode::TooBig) => self.close(ctx, code, violation.description()),
            // RFC 6455 section 7.1.7, "Fail the WebSocket Connection": a peer that broke
            // the framing rules gets its close code, and TCP is closed at once.
            Some(code) => {
                if self.begin() {
                    ctx.close(Some(CloseReason {
                        code: code.into(),
                        description: Some(violation.description()),
                    }));
                }
                ctx.stop();
            }
        }
    }

    /// The client's close frame, its code already checked: answers our close, or echoes
    /// the client's (RFC 6455 section 5.5.1). Either way the handshake is complete.
    pub(crate) fn peer_closed<A>(&mut self, ctx: &mut WsContext<A>, reason: Option<CloseReason>)
    where
        A: actix::Actor<Context = WsContext<A>>,
    {
        if self.begin() {
            ctx.close(reason);
        }
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_close_code_is_its_number_on_the_wire() {
        let sent = [
            (CloseCode::GoingAway, 1001),
            (CloseCode::ProtocolError, 1002),
            (CloseCode::InvalidPayload, 1007),
            (CloseCode::Policy, 1008),
            (CloseCode::TooBig, 1009),
            (CloseCode::TryAgainLater, 1013),
        ];
        for (code, number) in sent {
            assert_eq!(u16::from(ws::CloseCode::from(code)), number, "{code:?}");
        }
    }

    #[test]
    fn reserved_and_undefined_codes_are_not_valid_from_a_peer() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!is_valid_close_code(code), "{code}");
        }
    }

    #[test]
    fn only_the_first_close_is_sent() {
        let mut handshake = CloseHandshake::new(Duration::from_secs(1));
        assert!(!handshake.is_sent());
        assert!(handshake.begin());
        assert!(!handshake.begin());
        assert!(handshake.is_sent());
    }
}
