//! The WebSocket transport: the only code that touches `actix-web-actors` (and
//! `actix-http`'s WebSocket types), so the hub and the protocol never see it and the
//! transport can change in one place. It owns frames, the closing handshake and the
//! socket; it owns no protocol (what a text message means is the connection actor's
//! business) and no state shared with the hub.
//!
//! The parts, in the order a connection meets them:
//!
//! - `socket`: at accept, `TCP_NODELAY` and the descriptor's number; at upgrade, the
//!   duplicate a [`SocketCloser`] holds to reset a connection whose actor is jammed.
//! - `handshake`: the strict upgrade check ([`check_handshake`]) and [`upgrade`].
//! - `frame_guard`: refuses a frame whose header declares too much, before buffering it.
//! - `connection`: the [`Connection`] each connection actor embeds: control frames,
//!   violations, heartbeat, the closing handshake; it hands back only data messages.
//! - `reassembler`: joins fragments into whole [`Incoming`] messages.
//! - `violation`: what breaks a connection ([`Violation`]), mapped from the transport's
//!   errors in one place.
//! - `close`: the [`CloseCode`]s the server sends and the server's side of the closing
//!   handshake.
//! - `liveness`: when the client was last heard from.

mod close;
mod connection;
mod frame_guard;
mod handshake;
mod liveness;
mod reassembler;
mod socket;
mod violation;

pub(crate) use close::CloseCode;
pub(crate) use connection::{Connection, ConnectionLimits, DataMessage};
pub(crate) use handshake::{check_handshake, upgrade, HandshakeRefusal};
pub use reassembler::{Incoming, Reassembler};
pub(crate) use socket::on_connect;
pub(crate) use socket::SocketCloser;
pub use violation::Violation;

pub(crate) use actix_web_actors::ws::WebsocketContext as WsContext;

/// What a WebSocket stream yields to a connection actor.
pub(crate) type WsFrame =
    Result<actix_web_actors::ws::Message, actix_web_actors::ws::ProtocolError>;
