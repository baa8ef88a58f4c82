//! hubbub-core: the room logic of hubbub, as plain Rust with no actix, no tokio and no
//! I/O, so every rule can be unit-tested and any backend (in memory, or a cluster's
//! store) can carry it.
//!
//! - [`protocol`]: the wire types, their validation, encoding and decoding;
//! - [`cmd`]: one file per client command: its fields and its rules;
//! - [`state`]: [`RoomState`], every member and room, and the operations that are not
//!   client commands: connect, disconnect, a backend's publish and kick, the HTTP views,
//!   and the time-driven ones the hub asks for (big rooms' member counts, kept rooms'
//!   expiry);
//! - [`grant`]: who a connection is ([`Access`]: its user) and which rooms its token
//!   lets it use ([`RoomGrant`]); [`reauthorize`]: a refreshed token's new name and
//!   grant applied to room state;
//! - [`replica`]: a cluster node's copy of one room ([`RoomSnapshot`],
//!   [`RoomState::replica`]), fed the room's entries in the store's order so that every
//!   node computes the same room and events;
//! - [`room`]: one room's members (counted per user), `seq` and history;
//! - [`effects`]: what an operation produces: who hears which event, who subscribes to
//!   which room. The caller delivers them.
//!
//! Operations take the time (`now`) as an argument: the rules never read a clock.

#![forbid(unsafe_code)]
// The module map above links the crate's private modules too: the docs are for the
// people who work on hubbub, built with `cargo doc --document-private-items` (CI does,
// with -D warnings, so a broken link still fails).
#![allow(rustdoc::private_intra_doc_links)]

pub mod cmd;
pub mod effects;
pub mod grant;
pub mod protocol;
mod reauthorize;
pub mod replica;
mod room;
pub mod state;

pub use cmd::Command;
pub use effects::{Audience, Effect, Effects, Recipients};
pub use grant::{Access, RoomGrant};
pub use replica::RoomSnapshot;
pub use state::{Counts, NotAMember, PublishRefused, RoomState, RoomsFull, Settings};
