//! `rooms`: the rooms and how many members each has, a page at a time by name.

use serde::Deserialize;

use super::{Apply, Cx};
use crate::protocol::{Event, PageLimit, ProtocolError, RoomName};

/// Any other fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ListRooms {
    /// The page starts after this room (the previous page's `next`).
    #[serde(default)]
    pub after: Option<RoomName>,
    #[serde(default)]
    pub limit: Option<PageLimit>,
}

impl Apply for ListRooms {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let limit = self.limit.unwrap_or_default();
        let (rooms, next) = cx.state.room_counts(self.after.as_ref(), limit);
        cx.effects.reply(Event::Rooms { rooms, next });
        Ok(())
    }
}
