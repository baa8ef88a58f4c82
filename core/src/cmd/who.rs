//! `who`: the members of a room, a page at a time in id order (anyone may ask; a room
//! that does not exist has none).

use serde::Deserialize;

use super::{Apply, Cx};
use crate::protocol::{Event, MemberId, PageLimit, ProtocolError, RoomName};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Who {
    pub room: RoomName,
    /// The page starts after this member (the previous page's `next`).
    #[serde(default)]
    pub after: Option<MemberId>,
    #[serde(default)]
    pub limit: Option<PageLimit>,
}

impl Apply for Who {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let limit = self.limit.unwrap_or_default().get();
        let (members, member_count, next) = match cx.state.rooms.get(&self.room) {
            Some(room) => {
                let (members, next) = cx.state.members_page(room, self.after, limit);
                (members, room.len(), next)
            }
            None => (Vec::new(), 0, None),
        };
        cx.effects.reply(Event::Presence {
            room: self.room,
            members,
            member_count,
            next,
        });
        Ok(())
    }
}
