//! `join`: enter a room (created on first join). The joiner gets `joined` with the
//! member count, the first members (at most `JOINED_MEMBERS_MAX`, the joiner among them)
//! and recent history; the others get `member_joined`, or in a big room a later
//! `member_count`. Joining a room one is already in repeats `joined` (handy after a
//! reconnect race) and announces nothing.

use serde::Deserialize;

use super::{Apply, Cx};
use crate::{
    protocol::{ErrorCode, Event, ProtocolError, RoomName},
    room::Room,
    state::history_events,
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Join {
    pub room: RoomName,
}

impl Apply for Join {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let (from, now) = (cx.from, cx.now);
        let state = &mut *cx.state;
        let limit = state.settings.max_rooms_per_connection;
        let history_len = state.settings.history_len;
        let Some(connection) = state.members.get_mut(&from) else {
            return Ok(());
        };
        let newly_joined = !connection.rooms.contains(&self.room);
        if newly_joined {
            if connection.rooms.len() >= limit {
                return Err(ProtocolError::new(
                    ErrorCode::TooManyRooms,
                    format!("a connection may be in at most {limit} rooms"),
                ));
            }
            connection.rooms.insert(self.room.clone());
            state
                .rooms
                .entry(self.room.clone())
                .or_insert_with(|| Room::new(history_len))
                .join(from, now);
            cx.effects.subscribe(from, self.room.clone());
        }
        let Some(room) = state.rooms.get(&self.room) else {
            return Ok(());
        };
        let joined = Event::Joined {
            room: self.room.clone(),
            members: state.joined_members(room, from),
            member_count: room.len(),
            history: history_events(room),
        };
        cx.effects.reply(joined);
        if newly_joined {
            if let Some(member) = state.member_in(from, &self.room) {
                state.announce_arrival(&self.room, member, cx.effects);
            }
        }
        Ok(())
    }
}
