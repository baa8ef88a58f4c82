//! `join`: enter a room (created on first join). The joiner gets `joined` with the
//! members and recent history; the others get `member_joined`. Joining a room one is
//! already in repeats `joined` (handy after a reconnect race) and announces nothing.

use serde::Deserialize;

use super::{Apply, Cx};
use crate::{
    effects::Audience,
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
        let joined = Event::Joined {
            room: self.room.clone(),
            members: state.members_of(&self.room),
            history: state
                .rooms
                .get(&self.room)
                .map(history_events)
                .unwrap_or_default(),
        };
        cx.effects.reply(joined);
        let others_there = state.rooms.get(&self.room).is_some_and(|r| r.len() > 1);
        if newly_joined && others_there {
            if let Some(member) = state.member_in(from, &self.room) {
                let announcement = Event::MemberJoined {
                    room: self.room.clone(),
                    member,
                };
                let others = Audience::Room {
                    room: self.room,
                    except: Some(from),
                };
                cx.effects.send(announcement, others);
            }
        }
        Ok(())
    }
}
