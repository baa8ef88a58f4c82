//! Every server -> client frame ([`Event`]) and the values inside them, with their
//! encoding: an event is serialized once and its bytes shared by every recipient; a
//! reply's `ref` is spliced in front by [`with_ref`], the one routine that adds it.

use std::sync::Arc;

use serde::{Serialize, Serializer};

use super::{
    DisplayName, ErrorCode, MemberId, NodeId, ProtocolError, Ref, RoomName, Timestamp, UserId,
};

/// A member as clients see it. `joined_at` is when it joined the room in question, or
/// when it connected where no room is involved (whispers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub id: MemberId,
    pub name: DisplayName,
    pub joined_at: Timestamp,
    /// The user of an authenticated connection (its token's `sub`); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
}

/// Who sent a room message: a member, or a backend through the HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub enum Sender {
    Member(Member),
    /// Serialized as `{"id":"server","name":"server"}`.
    Server,
}

impl Serialize for Sender {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct ServerSender {
            id: &'static str,
            name: &'static str,
        }
        match self {
            Sender::Member(member) => member.serialize(serializer),
            Sender::Server => ServerSender {
                id: "server",
                name: "server",
            }
            .serialize(serializer),
        }
    }
}

/// A room message, kept in history and shared (behind an `Arc`) by every event that
/// carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub room: RoomName,
    pub from: Sender,
    pub text: Arc<str>,
    pub at: Timestamp,
    /// Per-room counter: 1 for a room's first message, no gaps.
    pub seq: u64,
}

/// Why a member left a room. Written on the wire by [`LeaveReason::as_str`], the one
/// spelling of each reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// It sent `leave`.
    Leave,
    /// Its connection closed.
    Disconnect,
    /// Nothing was heard from it within the client timeout.
    Timeout,
    /// It stopped reading its frames; closed with 1013.
    Slow,
    /// A backend removed it through the HTTP API.
    Kicked,
    /// The cluster node holding its connection stopped answering for
    /// `NODE_TIMEOUT_MS`; another node took it out of its rooms.
    NodeLost,
}

impl Serialize for LeaveReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl LeaveReason {
    /// The reason as written on the wire (and in logs).
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Leave => "leave",
            LeaveReason::Disconnect => "disconnect",
            LeaveReason::Timeout => "timeout",
            LeaveReason::Slow => "slow",
            LeaveReason::Kicked => "kicked",
            LeaveReason::NodeLost => "node_lost",
        }
    }
}

/// The limits a client is told in `welcome`, so it can stay within them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_rooms: usize,
    pub max_pending_bytes: usize,
    pub history_len: usize,
    pub max_name_chars: usize,
    pub max_room_chars: usize,
    pub max_ref_chars: usize,
}

/// `{"name", "members"}` in a `rooms` reply: a room and how many are in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomCount {
    pub name: RoomName,
    pub members: usize,
}

/// A page of rooms as the HTTP API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomsView {
    pub rooms: Vec<RoomView>,
    /// The `after` of the next page; `null` on the last.
    pub next: Option<RoomName>,
}

/// Every server -> client frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Welcome {
        protocol: u32,
        id: MemberId,
        name: DisplayName,
        heartbeat_ms: u64,
        timeout_ms: u64,
        limits: Limits,
        /// The server process holding this connection (`NODE_ID`).
        node: NodeId,
        /// With authentication: the token's `sub`.
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<UserId>,
        /// With authentication: when the token expires (its `exp`); the connection is
        /// closed with 4001 a leeway after it unless a `refresh` comes first.
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<Timestamp>,
    },
    Echo {
        text: String,
        at: Timestamp,
    },
    Joined {
        room: RoomName,
        /// At most `JOINED_MEMBERS_MAX`, in id order, the joiner always among them.
        members: Vec<Member>,
        /// Everyone in the room, the joiner included.
        member_count: usize,
        /// Recent `message` events, oldest first; after a `since` that could be
        /// honoured, exactly the ones after it.
        history: Vec<Event>,
        /// This life of the room (see `join`'s `since`).
        epoch: Arc<str>,
        /// The room's last `seq`; 0 before its first message.
        seq: u64,
        /// Only when the join had `since`: whether `history` is exactly what was missed.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
    },
    /// The answer to `refresh`: the connection now holds the new token, which expires
    /// then.
    Refreshed {
        expires_at: Timestamp,
    },
    /// The room's history was lost (a cluster's store lost its data): what follows
    /// continues from this `epoch` and `seq`, and the member's view of the room may be
    /// stale.
    Resync {
        room: RoomName,
        epoch: Arc<str>,
        seq: u64,
    },
    Left {
        room: RoomName,
        /// `kicked` when a backend removed the member; absent when it left by itself.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<LeaveReason>,
    },
    MemberJoined {
        room: RoomName,
        member: Member,
        /// This is the member's user's only connection in the room (a connection
        /// without a token is its own user: always true then).
        first: bool,
    },
    MemberLeft {
        room: RoomName,
        member: Member,
        reason: LeaveReason,
        /// The member's user has no other connection left in the room.
        last: bool,
    },
    MemberRenamed {
        /// Absent only in the sender's own confirmation when it is in no room.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        member: Member,
        old_name: DisplayName,
    },
    Message(Arc<ChatMessage>),
    Whisper {
        from: Member,
        to: Member,
        text: String,
        at: Timestamp,
    },
    Presence {
        room: RoomName,
        /// One page, in id order.
        members: Vec<Member>,
        member_count: usize,
        /// The `after` of the next page; `null` on the last.
        next: Option<MemberId>,
    },
    Rooms {
        /// One page, by name.
        rooms: Vec<RoomCount>,
        /// The `after` of the next page; `null` on the last.
        next: Option<RoomName>,
    },
    /// In a big room, instead of `member_joined` and `member_left`.
    MemberCount {
        room: RoomName,
        count: usize,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl From<ProtocolError> for Event {
    fn from(err: ProtocolError) -> Self {
        Event::Error {
            code: err.code,
            message: err.message,
        }
    }
}

/// A room as the HTTP API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomView {
    pub name: RoomName,
    /// One page of members, in id order.
    pub members: Vec<Member>,
    pub member_count: usize,
    /// The `after` of the next page of members; `null` on the last.
    pub next: Option<MemberId>,
    /// Recent `message` events, oldest first; absent in the listing of every room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Event>>,
}

impl Event {
    /// The room the event is about, if it is about one. (Exhaustive on purpose: a new
    /// event must say.)
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            Event::Joined { room, .. }
            | Event::Left { room, .. }
            | Event::MemberJoined { room, .. }
            | Event::MemberLeft { room, .. }
            | Event::Presence { room, .. }
            | Event::MemberCount { room, .. }
            | Event::Resync { room, .. } => Some(room),
            Event::MemberRenamed { room, .. } => room.as_ref(),
            Event::Message(message) => Some(&message.room),
            Event::Welcome { .. }
            | Event::Refreshed { .. }
            | Event::Echo { .. }
            | Event::Whisper { .. }
            | Event::Rooms { .. }
            | Event::Error { .. } => None,
        }
    }

    /// Serializes the event once; the text is then shared by every recipient.
    pub fn to_json(&self) -> String {
        // Every field is a string, number, bool or nested struct of those: there is no
        // map with non-string keys and no fallible Serialize impl, so this cannot fail.
        serde_json::to_string(self).expect("events always serialize")
    }

    /// The event as a reply: `ref` added when the request carried one.
    pub fn to_reply(&self, reference: Option<&Ref>) -> String {
        match reference {
            None => self.to_json(),
            Some(reference) => with_ref(reference, |out| {
                serde_json::to_writer(out, self).expect("events always serialize")
            }),
        }
    }
}

/// `{"ref":"…",` followed by the JSON object that `write_object` writes, whose opening
/// brace becomes the comma: one buffer, no second copy. Used both to serialize a reply
/// and to patch the requester's copy of an already serialized broadcast
/// ([`ref_spliced`]), so there is one way a `ref` gets into a frame.
pub fn with_ref(reference: &Ref, write_object: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"ref\":");
    serde_json::to_writer(&mut out, reference.as_str()).expect("a string always serializes");
    let brace = out.len();
    write_object(&mut out);
    debug_assert_eq!(out.get(brace), Some(&b'{'), "an event is a JSON object");
    if out.get(brace + 1) == Some(&b'}') {
        // `{}`: nothing follows the ref.
        out.remove(brace);
    } else {
        out[brace] = b',';
    }
    // serde_json writes UTF-8 only, and `write_object` wrote a serialized object.
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// A copy of the serialized event `json` with `"ref"` added first, so a broadcast is
/// serialized once and only the requester's copy is patched; the original stays as it
/// is (it is what everyone else gets).
pub fn ref_spliced(json: &str, reference: &Ref) -> String {
    with_ref(reference, |out| out.extend_from_slice(json.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_is_written_as_the_protocol_says() {
        let resync = Event::Resync {
            room: RoomName::parse("lobby").unwrap(),
            epoch: "n1-7".into(),
            seq: 42,
        };
        assert_eq!(
            serde_json::to_value(&resync).unwrap(),
            serde_json::json!({"type": "resync", "room": "lobby", "epoch": "n1-7", "seq": 42})
        );
        assert_eq!(resync.room().map(RoomName::as_str), Some("lobby"));
    }

    #[test]
    fn node_lost_is_written_as_the_protocol_says() {
        assert_eq!(LeaveReason::NodeLost.as_str(), "node_lost");
        let left = Event::MemberLeft {
            room: RoomName::parse("lobby").unwrap(),
            member: Member {
                id: MemberId(7),
                name: DisplayName::parse("ann").unwrap(),
                joined_at: Timestamp::from_millis(0),
                user: None,
            },
            reason: LeaveReason::NodeLost,
            last: true,
        };
        let value = serde_json::to_value(&left).unwrap();
        assert_eq!(value["type"], "member_left");
        assert_eq!(value["reason"], "node_lost");
    }

    #[test]
    fn ref_spliced_patches_a_serialized_broadcast() {
        let reference = Ref::parse("a\"b").unwrap();
        let broadcast = Event::Left {
            room: RoomName::parse("r").unwrap(),
            reason: None,
        }
        .to_json();
        let value: serde_json::Value =
            serde_json::from_str(&ref_spliced(&broadcast, &reference)).unwrap();
        assert_eq!(value["ref"], "a\"b");
        assert_eq!(value["type"], "left");
        assert_eq!(value["room"], "r");
        assert_eq!(ref_spliced("{}", &reference), r#"{"ref":"a\"b"}"#);
    }

    #[test]
    fn replies_with_a_ref_are_one_valid_object() {
        let reference = Ref::parse("r\\1").unwrap();
        let event = Event::Echo {
            text: "hé \"x\"".into(),
            at: Timestamp::now(),
        };
        let reply = event.to_reply(Some(&reference));
        let value: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(value["ref"], "r\\1");
        assert_eq!(value["type"], "echo");
        assert_eq!(value["text"], "hé \"x\"");
        assert_eq!(event.to_reply(None), event.to_json());
        assert_eq!(reply, ref_spliced(&event.to_json(), &reference));
    }
}
