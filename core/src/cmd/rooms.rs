//! `rooms`: every room and how many members it has.

use serde::Deserialize;

use super::{Apply, Cx};
use crate::protocol::{Event, ProtocolError};

/// Takes no fields (any others are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListRooms {}

impl Apply for ListRooms {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let rooms = cx.state.room_counts();
        cx.effects.reply(Event::Rooms { rooms });
        Ok(())
    }
}
