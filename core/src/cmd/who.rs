//! `who`: the members of a room (anyone may ask; a room that does not exist has none).

use serde::Deserialize;

use super::{Apply, Cx};
use crate::protocol::{Event, ProtocolError, RoomName};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Who {
    pub room: RoomName,
}

impl Apply for Who {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let presence = Event::Presence {
            members: cx.state.members_of(&self.room),
            room: self.room,
        };
        cx.effects.reply(presence);
        Ok(())
    }
}
