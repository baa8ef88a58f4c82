//! The backend seam: the one way the hub reaches room state. A backend owns members,
//! rooms, `seq` and history and applies the core's rules to them; the hub delivers what
//! it answers. [`InMemory`] keeps `hubbub-core`'s [`RoomState`] in this process; a
//! cluster's backend keeps it in a shared store and answers later
//! ([`Answer::Later`]), which the hub's sequencer keeps in order.

use std::{pin::Pin, sync::Arc};

use futures_core::Stream;

use hubbub_core::{
    Access, Command, Counts, Effects, NotAMember, PublishRefused, RoomGrant, RoomState, Settings,
};

use super::sequencer::Answer;
use crate::protocol::{
    ChatMessage, DisplayName, LeaveReason, MemberId, PageLimit, Ref, RoomName, RoomView, RoomsView,
    Timestamp,
};

/// Effects a backend delivers on its own rather than as an answer: what other nodes'
/// members did, and the outcome of an ask it answered with nothing at first (a store's
/// answer that must keep its place among the other nodes' events).
#[derive(Debug)]
pub struct Delivery {
    /// Whom [`hubbub_core::Audience::Requester`] means (the member the entry is about).
    pub requester: Option<MemberId>,
    /// The `ref` of the ask this answers, when it answers one of this node's.
    pub reference: Option<Ref>,
    pub effects: Effects,
}

/// The store that keeps room state cannot be reached (a cluster's Redis): nothing was
/// done, and the asker may try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// What an HTTP request asks of a backend: answered, or not, because its store is away.
pub type Stored<T> = Answer<Result<T, Unavailable>>;

/// A backend's own deliveries, in the order they must be delivered.
pub type Feed = Pin<Box<dyn Stream<Item = Vec<Delivery>>>>;

/// What the hub asks of room state. Each call is answered in the order it was made.
pub trait RoomBackend {
    /// A connection has started, as `access` (its token's user and rooms) says.
    fn connect(&mut self, id: MemberId, name: DisplayName, access: Access) -> Answer<Effects>;
    /// A client command from member `from`, whose replies carry `reference` (a backend
    /// that delivers through its [`feed`](RoomBackend::feed) needs it; others ignore it).
    fn apply(
        &mut self,
        from: MemberId,
        reference: Option<&Ref>,
        command: Command,
    ) -> Answer<Effects>;
    /// Member `id` refreshed its token: its `name` (if the token has one) and `rooms`
    /// replace the old ones (see `RoomState::reauthorize`).
    fn reauthorize(
        &mut self,
        id: MemberId,
        reference: Option<&Ref>,
        name: Option<DisplayName>,
        rooms: RoomGrant,
    ) -> Answer<Effects>;
    /// A connection has ended (only the first call for an id has effects).
    fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Answer<Effects>;
    /// A backend's message into a room, as `server` (the room is made if need be). A
    /// retry with the same `idempotency_key` answers with the first message and
    /// publishes nothing.
    fn publish(
        &mut self,
        room: RoomName,
        text: String,
        idempotency_key: Option<String>,
    ) -> Stored<Result<(Arc<ChatMessage>, Effects), PublishRefused>>;
    /// Forgets the rooms kept past `ROOM_TTL_MS`; asked for every quarter second.
    fn expire_rooms(&mut self) -> Answer<()>;
    /// A backend's removal of a member from a room (`kicked`).
    fn kick(&mut self, room: RoomName, id: MemberId) -> Stored<Result<Effects, NotAMember>>;
    /// `member_count` to the big rooms whose count changed; asked for every
    /// `MEMBER_COUNT_INTERVAL_MS`.
    fn member_counts(&mut self) -> Answer<Effects>;
    /// One page of rooms, by name, after `after`.
    fn rooms_view(&mut self, after: Option<RoomName>, limit: PageLimit) -> Stored<RoomsView>;
    /// One room with a page of its members after `after`, and its history.
    fn room_view(
        &mut self,
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
    ) -> Stored<Option<RoomView>>;
    fn counts(&mut self) -> Answer<Counts>;
    /// The backend's own deliveries, taken once when the hub starts; `None` for a
    /// backend that answers everything it is asked and nothing else (one node).
    fn feed(&mut self) -> Option<Feed> {
        None
    }
    /// The server is stopping and every connection has ended: done once what they
    /// left behind is stored (a cluster's last leaves), so other nodes need not wait
    /// for this one's heartbeat to lapse.
    fn leave(&mut self) -> Answer<()> {
        Answer::Now(())
    }
}

/// Room state in this process: one node, nothing shared.
pub struct InMemory {
    state: RoomState,
}

impl InMemory {
    /// Room state in this process. Each room's `epoch` starts with this process's start
    /// time and a random number, so no room made after a restart (which forgets
    /// everything) has the `epoch` of one made before.
    pub fn new(settings: Settings) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let started = Timestamp::now().millis();
        // And a random part, from the OS's randomness that std seeds its hashers with:
        // two starts in one millisecond, or a clock set back, still differ.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u32;
        Self {
            state: RoomState::new(settings, format!("{started:x}{random:08x}")),
        }
    }
}

impl RoomBackend for InMemory {
    fn connect(&mut self, id: MemberId, name: DisplayName, access: Access) -> Answer<Effects> {
        self.state.connect_with(id, name, access, Timestamp::now());
        Answer::Now(Effects::new())
    }

    fn reauthorize(
        &mut self,
        id: MemberId,
        _: Option<&Ref>,
        name: Option<DisplayName>,
        rooms: RoomGrant,
    ) -> Answer<Effects> {
        Answer::Now(self.state.reauthorize(id, name, rooms, Timestamp::now()))
    }

    fn apply(&mut self, from: MemberId, _: Option<&Ref>, command: Command) -> Answer<Effects> {
        Answer::Now(command.apply_to(&mut self.state, from, Timestamp::now()))
    }

    fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Answer<Effects> {
        Answer::Now(self.state.disconnect(id, reason, Timestamp::now()))
    }

    fn publish(
        &mut self,
        room: RoomName,
        text: String,
        idempotency_key: Option<String>,
    ) -> Stored<Result<(Arc<ChatMessage>, Effects), PublishRefused>> {
        let key = idempotency_key.as_deref();
        Answer::Now(Ok(self.state.publish(&room, text, key, Timestamp::now())))
    }

    fn expire_rooms(&mut self) -> Answer<()> {
        self.state.expire(Timestamp::now());
        Answer::Now(())
    }

    fn kick(&mut self, room: RoomName, id: MemberId) -> Stored<Result<Effects, NotAMember>> {
        Answer::Now(Ok(self.state.kick(&room, id, Timestamp::now())))
    }

    fn member_counts(&mut self) -> Answer<Effects> {
        Answer::Now(self.state.member_counts())
    }

    fn rooms_view(&mut self, after: Option<RoomName>, limit: PageLimit) -> Stored<RoomsView> {
        Answer::Now(Ok(self.state.rooms_view(after.as_ref(), limit)))
    }

    fn room_view(
        &mut self,
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
    ) -> Stored<Option<RoomView>> {
        Answer::Now(Ok(self.state.room_view(&room, after, limit)))
    }

    fn counts(&mut self) -> Answer<Counts> {
        Answer::Now(self.state.counts())
    }
}
