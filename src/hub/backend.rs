//! The backend seam: the one way the hub reaches room state. A backend owns members,
//! rooms, `seq` and history and applies the core's rules to them; the hub delivers what
//! it answers. [`InMemory`] keeps `hubbub-core`'s [`RoomState`] in this process; a
//! cluster's backend keeps it in a shared store and answers later
//! ([`Answer::Later`]), which the hub's sequencer keeps in order.

use std::sync::Arc;

use hubbub_core::{Command, Counts, Effects, NotAMember, RoomState, Settings, UnknownRoom};

use super::sequencer::Answer;
use crate::protocol::{
    ChatMessage, DisplayName, LeaveReason, MemberId, PageLimit, RoomName, RoomView, RoomsView,
    Timestamp,
};

/// What the hub asks of room state. Each call is answered in the order it was made.
pub trait RoomBackend {
    /// A connection has started.
    fn connect(&mut self, id: MemberId, name: DisplayName) -> Answer<Effects>;
    /// A client command from member `from`.
    fn apply(&mut self, from: MemberId, command: Command) -> Answer<Effects>;
    /// A connection has ended (only the first call for an id has effects).
    fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Answer<Effects>;
    /// A backend's message into a room, as `server`.
    fn publish(
        &mut self,
        room: RoomName,
        text: String,
    ) -> Answer<Result<(Arc<ChatMessage>, Effects), UnknownRoom>>;
    /// A backend's removal of a member from a room (`kicked`).
    fn kick(&mut self, room: RoomName, id: MemberId) -> Answer<Result<Effects, NotAMember>>;
    /// `member_count` to the big rooms whose count changed; asked for every
    /// `MEMBER_COUNT_INTERVAL_MS`.
    fn member_counts(&mut self) -> Answer<Effects>;
    /// One page of rooms, by name, after `after`.
    fn rooms_view(&mut self, after: Option<RoomName>, limit: PageLimit) -> Answer<RoomsView>;
    /// One room with a page of its members after `after`, and its history.
    fn room_view(
        &mut self,
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
    ) -> Answer<Option<RoomView>>;
    fn counts(&mut self) -> Answer<Counts>;
}

/// Room state in this process: one node, nothing shared.
pub struct InMemory {
    state: RoomState,
}

impl InMemory {
    pub fn new(settings: Settings) -> Self {
        Self {
            state: RoomState::new(settings),
        }
    }
}

impl RoomBackend for InMemory {
    fn connect(&mut self, id: MemberId, name: DisplayName) -> Answer<Effects> {
        self.state.connect(id, name, Timestamp::now());
        Answer::Now(Effects::new())
    }

    fn apply(&mut self, from: MemberId, command: Command) -> Answer<Effects> {
        Answer::Now(command.apply_to(&mut self.state, from, Timestamp::now()))
    }

    fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Answer<Effects> {
        Answer::Now(self.state.disconnect(id, reason))
    }

    fn publish(
        &mut self,
        room: RoomName,
        text: String,
    ) -> Answer<Result<(Arc<ChatMessage>, Effects), UnknownRoom>> {
        Answer::Now(self.state.publish(&room, text, Timestamp::now()))
    }

    fn kick(&mut self, room: RoomName, id: MemberId) -> Answer<Result<Effects, NotAMember>> {
        Answer::Now(self.state.kick(&room, id))
    }

    fn member_counts(&mut self) -> Answer<Effects> {
        Answer::Now(self.state.member_counts())
    }

    fn rooms_view(&mut self, after: Option<RoomName>, limit: PageLimit) -> Answer<RoomsView> {
        Answer::Now(self.state.rooms_view(after.as_ref(), limit))
    }

    fn room_view(
        &mut self,
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
    ) -> Answer<Option<RoomView>> {
        Answer::Now(self.state.room_view(&room, after, limit))
    }

    fn counts(&mut self) -> Answer<Counts> {
        Answer::Now(self.state.counts())
    }
}
