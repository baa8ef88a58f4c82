//! `join`: enter a room (made on first join, or kept from before), if the connection's
//! token allows it (`forbidden` otherwise). The joiner gets
//! `joined` with the member count, the first members (at most `JOINED_MEMBERS_MAX`, the
//! joiner among them), the room's `epoch` and `seq`, and recent history; the others get
//! `member_joined`, or in a big room a later `member_count`. Joining a room one is
//! already in repeats `joined` (handy after a reconnect race) and announces nothing.
//!
//! With `since` (the `seq` and `epoch` a reconnecting client last saw), `history` is
//! exactly the messages it missed, `recovered: true`, when the room is the same life
//! (`epoch`) and every missed message is still kept; otherwise `recovered: false` and
//! the usual history. History and membership are taken in one step: no message can
//! fall between what `joined` holds and what the member receives next.

use std::sync::Arc;

use serde::Deserialize;

use super::{forbidden, Apply, Cx};
use crate::{
    protocol::{ErrorCode, Event, ProtocolError, RoomName},
    state::history_events,
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Join {
    pub room: RoomName,
    /// Where a reconnecting client left off.
    #[serde(default)]
    pub since: Option<Since>,
}

/// The last `seq` a client saw in a room, and that room's `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Since {
    pub seq: u64,
    pub epoch: String,
}

impl Join {
    pub fn room(room: RoomName) -> Self {
        Self { room, since: None }
    }
}

impl Apply for Join {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let (from, now) = (cx.from, cx.now);
        let state = &mut *cx.state;
        if !state.may_enter(from, &self.room) {
            return Err(forbidden(&self.room));
        }
        let limit = state.settings.max_rooms_per_connection;
        let Some(connection) = state.members.get(&from) else {
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
            state
                .join_room(from, &self.room, now)
                .map_err(|full| ProtocolError::new(ErrorCode::RoomsFull, full.message()))?;
            if let Some(connection) = state.members.get_mut(&from) {
                connection.rooms.insert(self.room.clone());
            }
            cx.effects.subscribe(from, self.room.clone());
        }
        let Some(room) = state.rooms.get(&self.room) else {
            return Ok(());
        };
        let resumed = self.since.as_ref().map(|since| {
            if *since.epoch != *room.epoch {
                return None;
            }
            room.history_after(since.seq)
        });
        let (history, recovered) = match resumed {
            None => (history_events(room), None),
            Some(None) => (history_events(room), Some(false)),
            Some(Some(missed)) => (missed.into_iter().map(Event::Message).collect(), Some(true)),
        };
        let joined = Event::Joined {
            room: self.room.clone(),
            members: state.joined_members(room, from),
            member_count: room.len(),
            history,
            epoch: Arc::clone(&room.epoch),
            seq: room.last_seq(),
            recovered,
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
