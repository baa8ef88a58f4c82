//! What applying a command produces: [`Effects`], a list of what must happen, in order,
//! for the node that delivers them. The core never delivers anything itself; the hub
//! encodes each [`Effect::Send`] once and hands its bytes to every recipient.

use crate::protocol::{Event, MemberId, RoomName};

/// Who receives one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The member whose command this answers; its copy carries the request's `ref`.
    Requester,
    /// One member, whoever asked.
    Member(MemberId),
    /// Every member of a room (as the room is when the event is delivered), but `except`.
    Room {
        room: RoomName,
        except: Option<MemberId>,
    },
}

/// The audiences of one event: one or two (a broadcast and the requester's own copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients {
    first: Audience,
    second: Option<Audience>,
}

impl Recipients {
    pub fn one(audience: Audience) -> Self {
        Self {
            first: audience,
            second: None,
        }
    }

    pub fn two(first: Audience, second: Audience) -> Self {
        Self {
            first,
            second: Some(second),
        }
    }

    /// The first audience and, if there is one, the second.
    pub fn as_pair(&self) -> (&Audience, Option<&Audience>) {
        (&self.first, self.second.as_ref())
    }

    /// In the order they are to be served.
    pub fn iter(&self) -> impl Iterator<Item = &Audience> {
        std::iter::once(&self.first).chain(self.second.as_ref())
    }
}

/// One thing the node must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Deliver `event` to `to`, serialized once.
    Send { event: Event, to: Recipients },
    /// From now on `member` receives what is sent to `room`.
    Subscribe { member: MemberId, room: RoomName },
    /// `member` no longer receives what is sent to `room`.
    Unsubscribe { member: MemberId, room: RoomName },
}

/// The effects of one operation, in the order they must happen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects(Vec<Effect>);

impl Effects {
    pub fn new() -> Self {
        Self::default()
    }

    /// `event` to `audience`.
    pub fn send(&mut self, event: impl Into<Event>, audience: Audience) {
        self.0.push(Effect::Send {
            event: event.into(),
            to: Recipients::one(audience),
        });
    }

    /// `event` to two audiences, in that order, serialized once for both.
    pub fn send_both(&mut self, event: impl Into<Event>, first: Audience, second: Audience) {
        self.0.push(Effect::Send {
            event: event.into(),
            to: Recipients::two(first, second),
        });
    }

    /// A reply to the requester alone.
    pub fn reply(&mut self, event: impl Into<Event>) {
        self.send(event, Audience::Requester);
    }

    pub fn subscribe(&mut self, member: MemberId, room: RoomName) {
        self.0.push(Effect::Subscribe { member, room });
    }

    pub fn unsubscribe(&mut self, member: MemberId, room: RoomName) {
        self.0.push(Effect::Unsubscribe { member, room });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Effect> {
        self.0.iter()
    }
}

impl IntoIterator for Effects {
    type Item = Effect;
    type IntoIter = std::vec::IntoIter<Effect>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
