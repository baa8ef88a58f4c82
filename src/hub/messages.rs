//! Every message the hub takes. Each is a small struct with named fields and exactly
//! one handler: session lifecycle ([`Connect`], [`Disconnect`]), one struct per client
//! command (wrapped in [`FromMember`]), and the HTTP API's queries and [`Publish`].
//!
//! Room state stays private to the hub; these messages are its whole interface, which is
//! what lets a multi-node hub slot in behind them later.

use std::sync::Arc;

use actix::prelude::*;

use crate::{
    outbox::Outbox,
    protocol::{ChatMessage, DisplayName, Event, LeaveReason, Member, MemberId, Ref, RoomName},
};

/// A connection on `/ws` has started; from now on it receives events through `outbox`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub id: MemberId,
    pub name: DisplayName,
    pub outbox: Outbox,
}

/// A connection has ended. Safe to send more than once: only the first one counts,
/// so every member leaves its rooms exactly once whatever ended it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub id: MemberId,
    pub reason: LeaveReason,
}

/// A client command on behalf of member `from`; every reply carries `reference`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromMember<C> {
    pub from: MemberId,
    pub reference: Option<Ref>,
    pub command: C,
}

/// Join a room.
pub struct Join {
    pub room: RoomName,
}

/// Leave a room.
pub struct Leave {
    pub room: RoomName,
}

/// Post a message to a room the sender is in.
pub struct Say {
    pub room: RoomName,
    pub text: String,
}

/// Send a private message to one member.
pub struct Whisper {
    pub to: MemberId,
    pub text: String,
}

/// Ask for a room's members.
pub struct Who {
    pub room: RoomName,
}

/// Ask for every room and its member count.
pub struct ListRooms;

/// Change the sender's display name.
pub struct Rename {
    pub name: DisplayName,
}

/// A room as the HTTP API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomView {
    pub name: RoomName,
    pub members: Vec<Member>,
    /// Recent `message` events, oldest first; absent in the listing of every room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Event>>,
}

/// HTTP: every room with its members.
#[derive(Message)]
#[rtype(result = "Vec<RoomView>")]
pub struct DescribeRooms;

/// HTTP: one room with its members and history; `None` if no such room.
#[derive(Message)]
#[rtype(result = "Option<RoomView>")]
pub struct DescribeRoom {
    pub room: RoomName,
}

/// HTTP: a backend posts into a room as `server`. Fails when the room does not exist.
#[derive(Message)]
#[rtype(result = "Result<Arc<ChatMessage>, UnknownRoom>")]
pub struct Publish {
    pub room: RoomName,
    pub text: String,
}

/// HTTP: the hub's counters.
#[derive(Message)]
#[rtype(result = "HubStats")]
pub struct DescribeStats;

/// What the hub has done since it started; cheap to keep, shown at `GET /api/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, MessageResponse)]
pub struct HubStats {
    /// Connected `/ws` members now.
    pub members: usize,
    /// Rooms that exist now.
    pub rooms: usize,
    /// Frames serialized: once per event, however many members receive it.
    pub frames_serialized: u64,
    /// Frames queued to members; over `frames_serialized`, the fan-out factor.
    pub frames_delivered: u64,
    /// Messages to the worker threads' couriers: one per worker per broadcast (carrying
    /// the frame and that worker's recipients) and one per reply. Over
    /// `frames_delivered`, how much delivering cost in cross-thread messages.
    pub posts: u64,
    /// Members dropped for being too slow to read.
    pub members_dropped_slow: u64,
}

/// The room named in a request does not exist (it has no members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRoom;
