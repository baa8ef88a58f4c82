//! [`RoomState::reauthorize`]: a connection refreshed its token, and the new token's
//! `name` and `rooms` replace the old ones. Rooms the new grant no longer allows are
//! left for the member, as if a backend had removed it (reason `kicked`): reading a
//! room is as much a right as saying into it, and the token that gave it is gone. A new
//! name is announced as a `rename` is.

use crate::{
    cmd::{Apply, Cx, Rename},
    effects::{Audience, Effects},
    grant::RoomGrant,
    protocol::{DisplayName, MemberId, RoomName, Timestamp},
    state::RoomState,
};

impl RoomState {
    /// Member `id` holds a new token: `rooms` is its grant from now on, and each room
    /// it is in that `rooms` does not allow is left (`left` with reason `kicked` to it,
    /// as the requester; `member_left` with reason `kicked` to the others). Then, if
    /// `name` is given and is not its name already, it is renamed as by `rename`
    /// (`member_renamed` in each of its rooms). Its user stays: a token for another
    /// user is refused before it gets here.
    pub fn reauthorize(
        &mut self,
        id: MemberId,
        name: Option<DisplayName>,
        rooms: RoomGrant,
        now: Timestamp,
    ) -> Effects {
        let mut effects = Effects::new();
        let Some(connection) = self.members.get_mut(&id) else {
            return effects;
        };
        connection.access.rooms = rooms;
        let revoked: Vec<RoomName> = connection
            .rooms
            .iter()
            .filter(|room| !connection.access.rooms.allows(room))
            .cloned()
            .collect();
        let renamed = name.filter(|name| *name != connection.name);
        for room in revoked {
            log::log!(
                self.members_log_level(),
                "member {id} left {room}: its refreshed token does not allow it"
            );
            self.remove_member(&room, id, Audience::Requester, now, &mut effects);
        }
        if let Some(name) = renamed {
            let mut cx = Cx {
                from: id,
                now,
                state: self,
                effects: &mut effects,
            };
            // A rename of a connected member cannot be refused.
            let _ = Rename { name }.apply(&mut cx);
        }
        effects
    }
}
