//! `rename`: a new display name; every room the member is in hears `member_renamed`,
//! and a member in no room still gets its own confirmation (without `room`).

use serde::Deserialize;

use super::{Apply, Cx};
use crate::{
    effects::Audience,
    protocol::{DisplayName, Event, ProtocolError, RoomName},
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rename {
    pub name: DisplayName,
}

impl Apply for Rename {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let from = cx.from;
        let state = &mut *cx.state;
        let Some(connection) = state.members.get_mut(&from) else {
            return Ok(());
        };
        let old_name = std::mem::replace(&mut connection.name, self.name);
        log::debug!(
            "member {from} renamed from {old_name} to {}",
            connection.name
        );
        let rooms: Vec<RoomName> = connection.rooms.iter().cloned().collect();
        if rooms.is_empty() {
            if let Some(member) = state.member(from) {
                cx.effects.reply(Event::MemberRenamed {
                    room: None,
                    member,
                    old_name,
                });
            }
            return Ok(());
        }
        for room in rooms {
            let Some(member) = state.member_in(from, &room) else {
                continue;
            };
            let renamed = Event::MemberRenamed {
                room: Some(room.clone()),
                member,
                old_name: old_name.clone(),
            };
            let others = Audience::Room {
                room,
                except: Some(from),
            };
            cx.effects.send_both(renamed, others, Audience::Requester);
        }
        Ok(())
    }
}
