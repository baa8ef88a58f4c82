//! The `/ws` wire protocol: every frame type a client sends or receives, and the
//! validation of names, rooms and refs (see `docs/protocol.md`).
//!
//! This module knows nothing of actix or sockets: it turns text into a [`Command`] or a
//! [`ProtocolError`], and [`Event`]s into JSON text. Adding a client command starts with
//! one variant of [`Command`].

use std::{
    cell::Cell,
    fmt,
    str::FromStr,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

mod decode;

pub use decode::decode;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// Sent in `welcome`; bumped when a change would break existing clients.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest `ref` a client may attach, in characters.
pub const MAX_REF_CHARS: usize = 64;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest display name, in characters (after trimming).
pub const MAX_NAME_CHARS: usize = 32;

// ---------------------------------------------------------------------------------------
// Identifiers and validated names
// ---------------------------------------------------------------------------------------

/// A connection's id on `/ws`: assigned by the hub, unique for the server's lifetime,
/// sent on the wire as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for MemberId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        // Anything that is not an id we could have issued names no member.
        raw.parse::<u64>().map(MemberId).map_err(|_| {
            serde::de::Error::custom(ValidationError::new(
                ErrorCode::UnknownMember,
                format!("no member has id {raw:?}"),
            ))
        })
    }
}

/// A room name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`; case-sensitive.
/// ASCII only so that a room name is safe in a URL path and cannot hide look-alikes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct RoomName(Arc<str>);

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if raw.is_empty() || raw.chars().count() > MAX_ROOM_CHARS || !valid_chars {
            return Err(ValidationError::new(
                ErrorCode::InvalidRoom,
                format!(
                    "room names are 1 to {MAX_ROOM_CHARS} characters of letters, digits, '-', '_' and '.'"
                ),
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoomName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: trimmed, 1 to 32 characters, no control characters. Names need not
/// be unique; ids are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct DisplayName(Arc<str>);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        let length = name.chars().count();
        if length == 0 || length > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                ErrorCode::InvalidName,
                format!("names are 1 to {MAX_NAME_CHARS} characters without control characters"),
            ));
        }
        Ok(Self(name.into()))
    }

    /// The name given to a connection that did not choose one.
    pub fn guest(id: MemberId) -> Self {
        Self(format!("guest-{id}").into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client's correlation token, copied into every reply to the frame that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref(Arc<str>);

impl Ref {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() > MAX_REF_CHARS {
            return Err(ValidationError::new(
                ErrorCode::BadJson,
                format!("ref must be a string of at most {MAX_REF_CHARS} characters"),
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An instant to the millisecond, written on the wire as RFC 3339 UTC with milliseconds
/// (`2026-11-25T01:40:00.123Z`), the only time format there is.
///
/// Kept as milliseconds since the Unix epoch: reading the clock is one `SystemTime` call,
/// and the text, which every message and echo carries, is made once per millisecond per
/// thread and then reused. (Through chrono on every frame, the clock and the formatting
/// cost about 7 % of a `/ws` echo.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self::from_millis(since_epoch.as_millis() as i64)
    }

    pub fn from_millis(millis: i64) -> Self {
        Self { millis }
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(&self) -> i64 {
        self.millis
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the same text as chrono's
    /// `to_rfc3339_opts(SecondsFormat::Millis, true)`, written digit by digit. `false`
    /// for years outside 0..=9999, which need another width.
    fn write_rfc3339(&self, out: &mut [u8; 24]) -> bool {
        use chrono::{Datelike, Timelike};
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(self.millis) else {
            return false;
        };
        let (date, time) = (at.date_naive(), at.time());
        if !(0..=9999).contains(&date.year()) {
            return false;
        }
        let mut put = |at: usize, value: u32, digits: usize| {
            let mut value = value;
            for i in (at..at + digits).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, date.year() as u32, 4);
        put(5, date.month(), 2);
        put(8, date.day(), 2);
        put(11, time.hour(), 2);
        put(14, time.minute(), 2);
        put(17, time.second(), 2);
        put(20, time.nanosecond() / 1_000_000, 3);
        for (at, byte) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ] {
            out[at] = byte;
        }
        true
    }

    fn to_chrono_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.millis)
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| format!("{}ms since the Unix epoch", self.millis))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        thread_local! {
            /// The last timestamp this thread wrote, and its text.
            static LAST: Cell<(i64, [u8; 24])> = const { Cell::new((i64::MIN, [0; 24])) };
        }
        let (last, mut text) = LAST.get();
        if last != self.millis {
            if !self.write_rfc3339(&mut text) {
                return serializer.serialize_str(&self.to_chrono_rfc3339());
            }
            LAST.set((self.millis, text));
        }
        // Only ASCII digits and separators were written.
        serializer.serialize_str(std::str::from_utf8(&text).expect("ASCII"))
    }
}

// ---------------------------------------------------------------------------------------
// Client -> server
// ---------------------------------------------------------------------------------------

/// One client command, decoded from `{"type": ..., ...}` by [`decode`]. Field types
/// validate themselves, so a `Command` that exists is well-formed. (Externally tagged for
/// serde on purpose: `decode` reads `type` itself; see `decode.rs`.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Reply `echo` to the sender only.
    Echo { text: String },
    /// Join a room: `joined` to the sender, `member_joined` to the others.
    Join { room: RoomName },
    /// Leave a room: `left` to the sender, `member_left` (`leave`) to the others.
    Leave { room: RoomName },
    /// Send `message` to every member of a room the sender is in, the sender too.
    Say { room: RoomName, text: String },
    /// Send `whisper` to one member and back to the sender.
    Whisper { to: MemberId, text: String },
    /// Reply `presence` with a room's members.
    Who { room: RoomName },
    /// Reply `rooms` with every room and its member count.
    Rooms,
    /// Change the display name; every room of the sender sees `member_renamed`.
    Rename { name: DisplayName },
}

/// What a client's text frame turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A well-formed command.
    Command {
        reference: Option<Ref>,
        command: Command,
    },
    /// Not a JSON object (e.g. `hello` typed into a terminal): answered with `echo`.
    Plain(String),
    /// Meant as a command but unusable: answered with an `error` frame.
    Rejected {
        reference: Option<Ref>,
        error: ProtocolError,
    },
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The `code` of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    MissingField,
    InvalidRoom,
    InvalidName,
    NotInRoom,
    UnknownMember,
    RateLimited,
    TooManyRooms,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::UnknownMember => "unknown_member",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyRooms => "too_many_rooms",
        }
    }
}

impl FromStr for ErrorCode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [
            ErrorCode::BadJson,
            ErrorCode::UnknownType,
            ErrorCode::MissingField,
            ErrorCode::InvalidRoom,
            ErrorCode::InvalidName,
            ErrorCode::NotInRoom,
            ErrorCode::UnknownMember,
            ErrorCode::RateLimited,
            ErrorCode::TooManyRooms,
        ]
        .into_iter()
        .find(|code| code.as_str() == s)
        .ok_or(())
    }
}

/// A rejected command: becomes one `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A value that failed validation. Its `Display` starts with the error code so that the
/// code survives serde's error plumbing (see [`classify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError(ProtocolError);

impl ValidationError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ProtocolError::new(code, message))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code.as_str(), self.0.message)
    }
}

impl From<ValidationError> for ProtocolError {
    fn from(err: ValidationError) -> Self {
        err.0
    }
}

// ---------------------------------------------------------------------------------------
// Server -> client
// ---------------------------------------------------------------------------------------

/// A member as clients see it. `joined_at` is when it joined the room in question, or
/// when it connected where no room is involved (whispers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub id: MemberId,
    pub name: DisplayName,
    pub joined_at: Timestamp,
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

/// Why a member left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It sent `leave`.
    Leave,
    /// Its connection closed.
    Disconnect,
    /// Nothing was heard from it within the client timeout.
    Timeout,
    /// It stopped reading its frames; closed with 1013.
    Slow,
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
    },
    Echo {
        text: String,
        at: Timestamp,
    },
    Joined {
        room: RoomName,
        members: Vec<Member>,
        /// Recent `message` events, oldest first.
        history: Vec<Event>,
    },
    Left {
        room: RoomName,
    },
    MemberJoined {
        room: RoomName,
        member: Member,
    },
    MemberLeft {
        room: RoomName,
        member: Member,
        reason: LeaveReason,
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
        members: Vec<Member>,
    },
    Rooms {
        rooms: Vec<RoomCount>,
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

impl Event {
    /// Serializes the event once; the text is then shared by every recipient.
    pub fn to_json(&self) -> String {
        // Every field is a string, number, bool or nested struct of those: there is no
        // map with non-string keys and no fallible Serialize impl, so this cannot fail.
        serde_json::to_string(self).expect("events always serialize")
    }

    /// The event as a reply: `ref` added when the request carried one.
    pub fn to_reply(&self, reference: Option<&Ref>) -> String {
        let Some(reference) = reference else {
            return self.to_json();
        };
        // `{"ref":"…"` then the event, whose opening brace becomes the comma: one buffer,
        // no copy (an event always has at least its `type`).
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"{\"ref\":");
        serde_json::to_writer(&mut out, reference.as_str()).expect("a string always serializes");
        let brace = out.len();
        serde_json::to_writer(&mut out, self).expect("events always serialize");
        debug_assert_eq!(out[brace], b'{');
        out[brace] = b',';
        // serde_json writes UTF-8 only.
        String::from_utf8(out).expect("JSON is UTF-8")
    }
}

/// A copy of the serialized event `json` with `"ref"` added first, so a broadcast is
/// serialized once and only the requester's copy is patched; the original stays as it
/// is (it is what everyone else gets).
pub fn ref_spliced(json: &str, reference: &Ref) -> String {
    debug_assert!(json.starts_with('{'));
    let encoded_ref =
        serde_json::to_string(reference.as_str()).expect("a string always serializes");
    let mut out = String::with_capacity(json.len() + encoded_ref.len() + 8);
    out.push_str("{\"ref\":");
    out.push_str(&encoded_ref);
    let rest = &json[1..];
    if rest != "}" {
        out.push(',');
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected_code(text: &str) -> ErrorCode {
        match decode(text) {
            Inbound::Rejected { error, .. } => error.code,
            other => panic!("expected a rejection for {text}, got {other:?}"),
        }
    }

    #[test]
    fn decodes_every_command() {
        let cases = [
            (
                r#"{"type":"echo","text":"hi"}"#,
                Command::Echo { text: "hi".into() },
            ),
            (r#"{"type":"rooms"}"#, Command::Rooms),
            (
                r#"{"type":"whisper","to":"7","text":"psst"}"#,
                Command::Whisper {
                    to: MemberId(7),
                    text: "psst".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                decode(text),
                Inbound::Command {
                    reference: None,
                    command: expected
                }
            );
        }
    }

    #[test]
    fn maps_failures_to_codes() {
        assert_eq!(rejected_code(r#"{"type":"join"}"#), ErrorCode::MissingField);
        assert_eq!(rejected_code(r#"{"room":"a"}"#), ErrorCode::MissingField);
        assert_eq!(rejected_code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            rejected_code(r#"{"type":"join","room":"a b"}"#),
            ErrorCode::InvalidRoom
        );
        assert_eq!(
            rejected_code(r#"{"type":"join","room":5}"#),
            ErrorCode::BadJson
        );
        assert_eq!(
            rejected_code(r#"{"type":"rename","name":"  "}"#),
            ErrorCode::InvalidName
        );
        assert_eq!(
            rejected_code(r#"{"type":"whisper","to":"x","text":""}"#),
            ErrorCode::UnknownMember
        );
        assert_eq!(rejected_code(r#"{"type":"join","#), ErrorCode::BadJson);
        assert_eq!(
            rejected_code(r#"{"type":"rooms","ref":7}"#),
            ErrorCode::BadJson
        );
    }

    #[test]
    fn non_objects_are_plain_text() {
        assert_eq!(decode("hello"), Inbound::Plain("hello".into()));
        assert_eq!(decode("[1,2]"), Inbound::Plain("[1,2]".into()));
        assert_eq!(decode("42"), Inbound::Plain("42".into()));
    }

    #[test]
    fn ref_is_kept_even_when_the_command_fails() {
        match decode(r#"{"type":"dance","ref":"r1"}"#) {
            Inbound::Rejected { reference, .. } => assert_eq!(reference.unwrap().as_str(), "r1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ref_spliced_patches_a_serialized_broadcast() {
        let reference = Ref::parse("a\"b").unwrap();
        let broadcast = Event::Left {
            room: RoomName::parse("r").unwrap(),
        }
        .to_json();
        let value: serde_json::Value =
            serde_json::from_str(&ref_spliced(&broadcast, &reference)).unwrap();
        assert_eq!(value["ref"], "a\"b");
        assert_eq!(value["type"], "left");
        assert_eq!(value["room"], "r");
    }

    #[test]
    fn to_reply_adds_the_ref() {
        let reference = Ref::parse("a\"b").unwrap();
        let json = Event::Left {
            room: RoomName::parse("r").unwrap(),
        }
        .to_reply(Some(&reference));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["ref"], "a\"b");
        assert_eq!(value["type"], "left");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  ann ").unwrap().as_str(), "ann");
        assert!(DisplayName::parse(&"x".repeat(33)).is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(RoomName::parse(&"r".repeat(64)).is_ok());
        assert!(RoomName::parse(&"r".repeat(65)).is_err());
        assert!(RoomName::parse("café").is_err());
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let day = 86_400_000;
        let mut cases: Vec<i64> = vec![
            0,
            -1,
            Timestamp::now().millis(),
            -62_167_219_200_000,     // 0000-01-01T00:00:00.000Z
            -62_167_219_200_000 - 1, // the year before: chrono's own text
            253_402_300_799_999,     // 9999-12-31T23:59:59.999Z
            253_402_300_799_999 + 1, // year 10000
            1_483_228_799_999,       // 2016-12-31T23:59:59.999Z
            951_782_400_000 - 1,     // 2000-02-28T23:59:59.999Z, then a leap day
            951_782_400_000 + day,
        ];
        // A pseudo-random walk over four centuries around now.
        let mut t: i64 = 1_000_000_007;
        for _ in 0..10_000 {
            t = t
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            cases.push((t >> 1).rem_euclid(400 * 365 * day) - 200 * 365 * day);
        }
        for millis in cases {
            // Twice: the second comes from this thread's cache.
            for _ in 0..2 {
                let at = Timestamp::from_millis(millis);
                let ours = serde_json::to_string(&at).unwrap();
                assert_eq!(ours, format!("\"{}\"", at.to_chrono_rfc3339()), "{millis}");
            }
        }
        assert_eq!(
            serde_json::to_string(&Timestamp::from_millis(1_483_228_799_999)).unwrap(),
            "\"2016-12-31T23:59:59.999Z\""
        );
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
    }
}
