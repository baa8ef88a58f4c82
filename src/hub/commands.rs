//! One handler per client command: what the hub does for it and who hears about it.
//! Adding a command means one more `impl Apply` here (see `docs/extending.md`).

use std::sync::Arc;

use bytestring::ByteString;

use super::{messages::*, room::Room, Apply, Hub};
use crate::protocol::{
    ErrorCode, Event, LeaveReason, MemberId, ProtocolError, Ref, RoomCount, RoomName, Sender,
    Timestamp,
};

impl Hub {
    fn reject(&mut self, to: MemberId, reference: Option<&Ref>, code: ErrorCode, message: String) {
        self.reply(to, reference, &ProtocolError::new(code, message).into());
    }

    fn not_in_room(&mut self, to: MemberId, reference: Option<&Ref>, room: &RoomName) {
        self.reject(
            to,
            reference,
            ErrorCode::NotInRoom,
            format!("you are not in room {room}"),
        );
    }

    fn is_in(&self, id: MemberId, room: &RoomName) -> bool {
        self.clients
            .get(&id)
            .is_some_and(|c| c.rooms.contains(room))
    }
}

/// The requester's copy of a frame the others also get: the same bytes, shared, unless
/// the request had a `ref`, which only this copy carries.
fn own_copy(frame: &ByteString, reference: Option<&Ref>) -> ByteString {
    match reference {
        Some(reference) => crate::protocol::ref_spliced(frame, reference).into(),
        None => frame.clone(),
    }
}

impl Apply for Join {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>) {
        let Some(client) = hub.clients.get_mut(&from) else {
            return;
        };
        let newly_joined = !client.rooms.contains(&self.room);
        if newly_joined {
            if client.rooms.len() >= hub.settings.max_rooms_per_connection {
                let limit = hub.settings.max_rooms_per_connection;
                hub.reject(
                    from,
                    reference.as_ref(),
                    ErrorCode::TooManyRooms,
                    format!("a connection may be in at most {limit} rooms"),
                );
                return;
            }
            client.rooms.insert(self.room.clone());
            let history_len = hub.settings.history_len;
            let room = hub
                .rooms
                .entry(self.room.clone())
                .or_insert_with(|| Room::new(history_len));
            room.join(from, Timestamp::now(), client.outbox.courier().clone());
        }
        // Joining a room one is already in just repeats `joined` (handy after a reconnect
        // race); only a real join is announced.
        let room = &hub.rooms[&self.room];
        let joined_at = room.joined_at(from).unwrap_or_else(Timestamp::now);
        let joined = Event::Joined {
            room: self.room.clone(),
            members: hub.members_of(&self.room),
            history: room.history().cloned().map(Event::Message).collect(),
        };
        hub.reply(from, reference.as_ref(), &joined);
        if newly_joined {
            let member = hub.clients[&from].member(from, joined_at);
            let announcement = Event::MemberJoined {
                room: self.room.clone(),
                member,
            };
            let frame = hub.encode(&announcement);
            hub.broadcast(&self.room, &frame.into(), Some(from));
        }
    }
}

impl Apply for Leave {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>) {
        if !hub.is_in(from, &self.room) {
            return hub.not_in_room(from, reference.as_ref(), &self.room);
        }
        let Some(client) = hub.clients.get_mut(&from) else {
            return;
        };
        client.rooms.remove(&self.room);
        let Some(room) = hub.rooms.get_mut(&self.room) else {
            return;
        };
        let joined_at = room.leave(from).unwrap_or_else(Timestamp::now);
        if room.is_empty() {
            hub.rooms.remove(&self.room);
        }
        hub.reply(
            from,
            reference.as_ref(),
            &Event::Left {
                room: self.room.clone(),
            },
        );
        let departure = Event::MemberLeft {
            room: self.room.clone(),
            member: hub.clients[&from].member(from, joined_at),
            reason: LeaveReason::Leave,
        };
        let frame = hub.encode(&departure);
        hub.broadcast(&self.room, &frame.into(), None);
    }
}

impl Apply for Say {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>) {
        if !hub.is_in(from, &self.room) {
            return hub.not_in_room(from, reference.as_ref(), &self.room);
        }
        let client = &hub.clients[&from];
        let Some(room) = hub.rooms.get_mut(&self.room) else {
            return;
        };
        let sender = client.member(from, room.joined_at(from).unwrap_or(client.connected_at));
        let message = room.post(&self.room, Sender::Member(sender), Arc::from(self.text));
        // Serialized once for everyone; only the sender's copy carries its `ref`, and
        // then goes first so its acknowledgement is not held up behind the room. Without
        // a `ref`, the sender is one of the room: one post per worker in all.
        let frame: ByteString = hub.encode(&Event::Message(message)).into();
        match reference {
            Some(reference) => {
                hub.send(from, own_copy(&frame, Some(&reference)));
                hub.broadcast(&self.room, &frame, Some(from));
            }
            None => hub.broadcast(&self.room, &frame, None),
        }
    }
}

impl Apply for Whisper {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>) {
        let Some(target) = hub.clients.get(&self.to) else {
            let message = format!("no member has id {}", self.to);
            return hub.reject(from, reference.as_ref(), ErrorCode::UnknownMember, message);
        };
        let sender = &hub.clients[&from];
        let whisper = Event::Whisper {
            from: sender.member(from, sender.connected_at),
            to: target.member(self.to, target.connected_at),
            text: self.text,
            at: Timestamp::now(),
        };
        let frame: ByteString = hub.encode(&whisper).into();
        if self.to != from {
            hub.send(self.to, frame.clone());
        }
        hub.send(from, own_copy(&frame, reference.as_ref()));
    }
}

impl Apply for Who {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>) {
        let presence = Event::Presence {
            members: hub.members_of(&self.room),
            room: self.room,
        };
        hub.reply(from, reference.as_ref(), &presence);
    }
}

impl Apply for ListRooms {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>) {
        let rooms = hub
            .rooms
            .iter()
            .map(|(name, room)| RoomCount {
                name: name.clone(),
                members: room.len(),
            })
            .collect();
        hub.reply(from, reference.as_ref(), &Event::Rooms { rooms });
    }
}

impl Apply for Rename {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>) {
        let Some(client) = hub.clients.get_mut(&from) else {
            return;
        };
        let old_name = std::mem::replace(&mut client.name, self.name);
        log::debug!("member {from} renamed from {old_name} to {}", client.name);
        let rooms: Vec<RoomName> = client.rooms.iter().cloned().collect();
        if rooms.is_empty() {
            // In no room, the sender still gets its confirmation.
            let client = &hub.clients[&from];
            let renamed = Event::MemberRenamed {
                room: None,
                member: client.member(from, client.connected_at),
                old_name,
            };
            return hub.reply(from, reference.as_ref(), &renamed);
        }
        for room_name in rooms {
            let joined_at = hub.rooms.get(&room_name).and_then(|r| r.joined_at(from));
            let client = &hub.clients[&from];
            let renamed = Event::MemberRenamed {
                room: Some(room_name.clone()),
                member: client.member(from, joined_at.unwrap_or(client.connected_at)),
                old_name: old_name.clone(),
            };
            let frame: ByteString = hub.encode(&renamed).into();
            hub.broadcast(&room_name, &frame, Some(from));
            hub.send(from, own_copy(&frame, reference.as_ref()));
        }
    }
}
