//! `leave`: the member leaves a room; it gets `left`, the others `member_left` with
//! reason `leave` (in a big room, a later `member_count`). A room its last member left
//! is kept for `ROOM_TTL_MS` (see `RoomState::leave_room`).

use serde::Deserialize;

use super::{not_in_room, Apply, Cx};
use crate::protocol::{Event, LeaveReason, ProtocolError, RoomName};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Leave {
    pub room: RoomName,
}

impl Apply for Leave {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let from = cx.from;
        let state = &mut *cx.state;
        if !state.is_in(from, &self.room) {
            return Err(not_in_room(&self.room));
        }
        let Some(member) = state.member_in(from, &self.room) else {
            return Ok(());
        };
        if let Some(connection) = state.members.get_mut(&from) {
            connection.rooms.remove(&self.room);
        }
        state.leave_room(from, member.user.as_ref(), &self.room, cx.now);
        cx.effects.unsubscribe(from, self.room.clone());
        cx.effects.reply(Event::Left {
            room: self.room.clone(),
            reason: None,
        });
        state.announce_departure(&self.room, member, LeaveReason::Leave, cx.effects);
        Ok(())
    }
}
