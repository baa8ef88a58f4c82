//! The messages the hub takes, but for the batch that carries connections' messages
//! (`mailbag.rs`). Each is a small struct with named fields and exactly one handler: a
//! connection's lifecycle ([`Connect`], [`Disconnect`]), its commands ([`FromMember`],
//! one message for every command: the command itself says what it is), a refreshed
//! token's new name and grant ([`Reauthorize`]), and the HTTP
//! API's queries (the room state's sizes for `/api/stats` and `/metrics` among them),
//! [`Publish`] and [`Kick`].

use std::sync::Arc;

use actix::prelude::*;

use crate::{
    courier::CourierHandle,
    protocol::{
        ChatMessage, DisplayName, LeaveReason, MemberId, PageLimit, Ref, RoomName, RoomView,
        RoomsView,
    },
};
use hubbub_core::{Access, Command, Counts, NotAMember, PublishRefused, RoomGrant};

/// A connection on `/ws` has started; from now on it receives frames through `courier`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub id: MemberId,
    pub name: DisplayName,
    /// Its token's user and rooms (anyone, anywhere, without authentication).
    pub access: Access,
    /// The courier of the worker thread the connection lives on.
    pub courier: CourierHandle,
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
pub struct FromMember {
    pub from: MemberId,
    pub reference: Option<Ref>,
    pub command: Command,
}

/// Member `id` refreshed its token: the token's `name` (if it has one) and `rooms` are
/// the member's from now on; rooms `rooms` no longer allows are left. Every reply
/// carries `reference`, the `refresh`'s.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reauthorize {
    pub id: MemberId,
    pub reference: Option<Ref>,
    pub name: Option<DisplayName>,
    pub rooms: RoomGrant,
}

/// The server is stopping and its connections have ended: answered once the backend
/// has stored what they left behind.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stopping;

/// Why an HTTP request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The hub stopped before it could answer (the server is going down).
    Stopped,
    /// The store that keeps a cluster's rooms cannot be reached; nothing was done.
    StoreUnavailable,
}

/// HTTP: one page of rooms, by name, after `after`.
#[derive(Message)]
#[rtype(result = "Result<RoomsView, Unanswered>")]
pub struct DescribeRooms {
    pub after: Option<RoomName>,
    pub limit: PageLimit,
}

/// HTTP: one room with a page of its members and its history; `None` if no such room.
#[derive(Message)]
#[rtype(result = "Result<Option<RoomView>, Unanswered>")]
pub struct DescribeRoom {
    pub room: RoomName,
    pub after: Option<MemberId>,
    pub limit: PageLimit,
}

/// HTTP: a backend posts into a room as `server`, making it if need be. Fails when a
/// new room is needed and every kept room is occupied.
#[derive(Message)]
#[rtype(result = "Result<Result<Arc<ChatMessage>, PublishRefused>, Unanswered>")]
pub struct Publish {
    pub room: RoomName,
    pub text: String,
    /// The request's `Idempotency-Key`: a retry publishes nothing.
    pub idempotency_key: Option<String>,
}

/// HTTP: a backend removes a member from a room (moderation, reason `kicked`). Fails
/// when the member is not in the room.
#[derive(Message)]
#[rtype(result = "Result<Result<(), NotAMember>, Unanswered>")]
pub struct Kick {
    pub room: RoomName,
    pub member: MemberId,
}

/// HTTP: how many members and rooms the room state holds (for `/api/stats` and
/// `/metrics`, which add the server's counters).
#[derive(Message)]
#[rtype(result = "Result<Counts, Unanswered>")]
pub struct DescribeCounts;
