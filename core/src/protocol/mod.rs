//! The `/ws` wire protocol: the values on the wire and their validation (`names.rs`),
//! error codes (`error.rs`), timestamps (`timestamp.rs`), server -> client frames and
//! their encoding (`event.rs`), and the decoding of a client's text frame ([`decode()`]).
//! Client commands themselves live in [`crate::cmd`], one file each.
//!
//! Nothing here knows of actix or sockets: text in, [`Inbound`] out; [`Event`]s in,
//! JSON text out.

mod decode;
mod error;
mod event;
mod names;
mod timestamp;

pub use decode::decode;
pub use error::{ErrorCode, ProtocolError, ValidationError};
pub use event::{
    ref_spliced, with_ref, ChatMessage, Event, LeaveReason, Limits, Member, RoomCount, RoomView,
    RoomsView, Sender,
};
pub use names::{
    DisplayName, MemberId, NodeId, PageLimit, Ref, RoomName, UserId, MAX_NAME_CHARS,
    MAX_NODE_CHARS, MAX_PAGE, MAX_REF_CHARS, MAX_ROOM_CHARS, MAX_USER_CHARS,
};
pub use timestamp::Timestamp;

/// Here too, since [`Inbound`] carries one.
pub use crate::cmd::Command;

/// Sent in `welcome`; bumped when a change would break existing clients.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a client's text frame turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A well-formed command.
    Command {
        reference: Option<Ref>,
        command: Command,
    },
    /// Not a JSON object (e.g. `hello` typed into a terminal): answered with `echo`.
    Plain(String),
    /// Meant as a command but unusable: answered with an `error` frame.
    Rejected {
        reference: Option<Ref>,
        error: ProtocolError,
    },
}
