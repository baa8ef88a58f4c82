//! `say`: a message to every member of a room the sender is in, the sender too, with
//! the room's next `seq`.

use serde::Deserialize;

use super::{not_in_room, Apply, Cx};
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
        if !state.is_in(from, &self.room) {
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
