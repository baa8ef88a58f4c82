//! `say`: a message to every member of a room the sender is in, the sender too, with
//! the room's next `seq`; `forbidden` in a room the sender's token does not allow.

use serde::Deserialize;

use super::{forbidden, not_in_room, Apply, Cx};
use crate::{
    effects::Audience,
    protocol::{Event, ProtocolError, RoomName, Sender},
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Say {
    pub room: RoomName,
    pub text: String,
}

impl Apply for Say {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let (from, now) = (cx.from, cx.now);
        let state = &mut *cx.state;
        // One lookup for both checks: this is the hot path.
        let Some(connection) = state.members.get(&from) else {
            return Ok(());
        };
        // Before membership: a room outside the token's grant is `forbidden` whether or
        // not the member is in it (a refresh takes it out of such rooms).
        if !connection.access.rooms.allows(&self.room) {
            return Err(forbidden(&self.room));
        }
        if !connection.rooms.contains(&self.room) {
            return Err(not_in_room(&self.room));
        }
        let Some(sender) = state.member_in(from, &self.room) else {
            return Ok(());
        };
        let message = state.post(&self.room, Sender::Member(sender), self.text.into(), now);
        // The sender's copy first (it acknowledges the request, with its `ref`), then
        // everyone else; serialized once for both.
        let others = Audience::Room {
            room: self.room,
            except: Some(from),
        };
        cx.effects
            .send_both(Event::Message(message), Audience::Requester, others);
        Ok(())
    }
}
