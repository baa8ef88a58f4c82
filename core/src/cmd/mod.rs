//! Client commands, one file each: the command's type (what `decode` fills from the
//! frame's fields) and its rules ([`Apply`]).
//!
//! Adding a command is one new file here and one line in `commands!` below (plus an
//! `Event` variant for what others receive, and its tests: `docs/extending.md` counts
//! every file). The list is the one source for the decoder's `type` names
//! ([`Command::NAMES`]); the property tests and the fuzz dictionary check themselves
//! against it, so they cannot go stale silently.

mod echo;
mod join;
mod leave;
mod refresh;
mod rename;
mod rooms;
mod say;
mod whisper;
mod who;

pub use echo::Echo;
pub use join::{Join, Since};
pub use leave::Leave;
pub use refresh::Refresh;
pub use rename::Rename;
pub use rooms::ListRooms;
pub use say::Say;
pub use whisper::Whisper;
pub use who::Who;

use crate::{
    effects::Effects,
    protocol::{Event, MemberId, ProtocolError, Timestamp},
    state::RoomState,
};

/// What a command's rules work with.
pub struct Cx<'a> {
    /// The member that sent the command (connected: [`Command::apply_to`] checks).
    pub from: MemberId,
    /// The time the command is applied at; the rules never read a clock.
    pub now: Timestamp,
    pub state: &'a mut RoomState,
    /// Where the rules say who hears what, in order.
    pub effects: &'a mut Effects,
}

/// A command's rules.
pub trait Apply: Sized {
    /// Checks the command against the room state, changes it, and records in
    /// `cx.effects` who hears what. An `Err` becomes an `error` reply to the requester
    /// (nothing else may have been recorded then).
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError>;

    /// A command that needs no room state (`echo`) answers here, so the connection
    /// replies without a trip to the hub (or to a cluster's store). `Err(self)`: it
    /// must be applied to the room state.
    fn answer_here(self, _now: Timestamp) -> Result<Event, Self> {
        Err(self)
    }
}

/// Declares [`Command`] from the list of `"type" => Variant(Type)` lines: the enum the
/// decoder fills, the names it accepts, and the dispatch to each type's [`Apply`].
macro_rules! commands {
    ($($(#[$doc:meta])* $name:literal => $variant:ident($command:ty),)*) => {
        /// One client command, decoded from `{"type": ..., ...}` by
        /// [`decode`](crate::protocol::decode). Field types validate themselves, so a
        /// `Command` that exists is well-formed. (Externally tagged for serde on purpose:
        /// `decode` reads `type` itself; see `decode.rs`.)
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        pub enum Command {
            $($(#[$doc])* #[serde(rename = $name)] $variant($command),)*
        }

        impl Command {
            /// Every command's `type`, as clients write it.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// This command's `type`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Command::$variant(_) => $name,)*
                }
            }

            /// This command's place in [`Command::NAMES`], for tables kept per command
            /// (the server's counters of messages received by type).
            pub fn index(&self) -> usize {
                /// One variant per command, in the list's order: its discriminant is
                /// the command's index.
                enum Place {
                    $($variant,)*
                }
                match self {
                    $(Command::$variant(_) => Place::$variant as usize,)*
                }
            }

            /// The reply, when the command needs no room state; else `Err(self)`.
            pub fn answer_here(self, now: Timestamp) -> Result<Event, Command> {
                match self {
                    $(Command::$variant(command) => {
                        command.answer_here(now).map_err(Command::$variant)
                    })*
                }
            }

            /// Runs the command's rules for member `from` at `now`. A member already
            /// gone (dropped as slow, say) may still have commands in flight: they do
            /// nothing. A refusal is the `error` reply to the requester.
            pub fn apply_to(self, state: &mut RoomState, from: MemberId, now: Timestamp) -> Effects {
                let mut effects = Effects::new();
                if !state.is_connected(from) {
                    return effects;
                }
                let mut cx = Cx {
                    from,
                    now,
                    state,
                    effects: &mut effects,
                };
                let applied = match self {
                    $(Command::$variant(command) => command.apply(&mut cx),)*
                };
                if let Err(error) = applied {
                    log::debug!("member {from}: refused: {}: {}", error.code, error.message);
                    effects.reply(error);
                }
                effects
            }
        }
    };
}

commands! {
    /// Reply `echo` to the sender only.
    "echo" => Echo(Echo),
    /// Join a room: `joined` to the sender, `member_joined` to the others.
    "join" => Join(Join),
    /// Leave a room: `left` to the sender, `member_left` (`leave`) to the others.
    "leave" => Leave(Leave),
    /// Send `message` to every member of a room the sender is in, the sender too.
    "say" => Say(Say),
    /// Send `whisper` to one member and back to the sender.
    "whisper" => Whisper(Whisper),
    /// Reply `presence` with a room's members.
    "who" => Who(Who),
    /// Reply `rooms` with every room and its member count.
    "rooms" => Rooms(ListRooms),
    /// Change the display name; every room of the sender sees `member_renamed`.
    "rename" => Rename(Rename),
    /// Replace the connection's token: answered by the connection (which verifies
    /// tokens), with `refreshed` or `bad_token`; never applied to room state.
    "refresh" => Refresh(Refresh),
}

/// The `forbidden` refusal: the connection's token does not allow this room (`join`,
/// `say`).
pub fn forbidden(room: &crate::protocol::RoomName) -> ProtocolError {
    ProtocolError::new(
        crate::protocol::ErrorCode::Forbidden,
        format!("your token does not allow room {room}"),
    )
}

/// The `not_in_room` refusal, shared by the commands about a room one must be in.
pub fn not_in_room(room: &crate::protocol::RoomName) -> ProtocolError {
    ProtocolError::new(
        crate::protocol::ErrorCode::NotInRoom,
        format!("you are not in room {room}"),
    )
}
