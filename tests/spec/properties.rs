//! Properties of the pure parts of the server, checked on generated inputs rather than a
//! handful of examples: the frame decoder (`protocol::decode`), the validated names,
//! configuration parsing (`Config::from_vars`) and fragment reassembly (`Reassembler`).
//! Nothing here starts a server; `fuzz/` runs the decoder and the config parser far longer.
//!
//! Each property runs [`CASES`] cases so the module takes seconds in a debug build;
//! `PROPTEST_CASES=10000` digs deeper. Failures are not persisted to a regressions file:
//! a failing run prints the shrunk input, which belongs in an example test.

use std::collections::BTreeMap;

use actix_http::ws::Item;
use actix_web_actors::ws;
use bytes::Bytes;
use bytestring::ByteString;
use hubbub::{
    config::{Config, VARIABLES},
    protocol::{
        self, Command, DisplayName, ErrorCode, Inbound, MemberId, RoomName, MAX_NAME_CHARS,
        MAX_REF_CHARS, MAX_ROOM_CHARS,
    },
    transport::{Incoming, Reassembler, Violation},
};
use hubbub_core::{
    cmd::{Echo, Join, Leave, ListRooms, Refresh, Rename, Say, Since, Whisper, Who},
    protocol::{PageLimit, MAX_PAGE},
};
use proptest::{
    collection::{btree_map, vec},
    option,
    prelude::*,
    sample::{select, Index},
};
use serde_json::{json, Map, Value};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// Every client command type, as spelled on the wire: the core's own list, so a new
/// command is generated here without anyone remembering to add it.
const TYPES: &[&str] = Command::NAMES;
/// The commands that take a `room`.
const ROOM_TYPES: &[&str] = &["join", "leave", "say", "who"];
/// Field names clients use, so generated objects hit the decoder's real paths (checked
/// against the fuzz dictionary below).
const FIELDS: &[&str] = &[
    "type", "room", "text", "ref", "name", "to", "after", "limit", "since", "seq", "epoch", "token",
];

/// Any string of up to `max_chars` characters, control characters included
/// (proptest's `any::<String>()` leaves those out).
fn any_text(max_chars: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(FIELDS).prop_map(String::from),
        1 => any_text(8),
    ]
}

/// Any JSON value, biased towards strings that look like command types, rooms and ids.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |float| {
            serde_json::Number::from_f64(float).map(Value::Number)
        }),
        any_text(20).prop_map(Value::String),
        select(TYPES).prop_map(Value::from),
        "[A-Za-z0-9._-]{1,8}".prop_map(Value::String),
        "[0-9]{1,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(field_name(), inner, 0..4).prop_map(|fields| Value::Object(to_map(fields))),
        ]
    })
}

fn to_map(fields: BTreeMap<String, Value>) -> Map<String, Value> {
    fields.into_iter().collect()
}

/// A JSON object with client-like keys and values of every kind.
fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(field_name(), json_value(), 0..7).prop_map(to_map)
}

/// Any JSON value except an object.
fn json_non_object() -> impl Strategy<Value = Value> {
    json_value().prop_filter("objects are commands", |value| !value.is_object())
}

/// Whitespace JSON allows around a value.
fn json_space() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,3}"
}

fn valid_room() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,64}"
}

fn invalid_room() -> impl Strategy<Value = String> {
    let foreign = any::<char>().prop_filter("a character room names allow", |c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    });
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9._-]{65,100}",
        ("[A-Za-z0-9._-]{0,30}", foreign, "[A-Za-z0-9._-]{0,30}")
            .prop_map(|(before, foreign, after)| format!("{before}{foreign}{after}")),
    ]
}

/// A valid display name as a client may send it (maybe padded with whitespace), and the
/// name the server keeps.
fn valid_name() -> impl Strategy<Value = (String, String)> {
    let core = prop_oneof![
        "[^\\s\\p{Cc}]",
        "[^\\s\\p{Cc}][^\\p{Cc}]{0,30}[^\\s\\p{Cc}]",
    ];
    ("[ \t\n\\x{a0}]{0,3}", core, "[ \t\n\\x{3000}]{0,3}")
        .prop_map(|(before, core, after)| (format!("{before}{core}{after}"), core))
}

fn invalid_name() -> impl Strategy<Value = String> {
    prop_oneof![
        // Nothing left after trimming.
        "[ \t\r\n\\x{a0}\\x{2003}\\x{3000}]{0,5}",
        // Too long.
        "[ ]{0,2}[^\\s\\p{Cc}]{33,50}[ ]{0,2}",
        // A control character inside (at the ends, whitespace ones would be trimmed).
        "[^\\s\\p{Cc}]{1,10}\\p{Cc}[^\\s\\p{Cc}]{1,10}",
    ]
}

/// A `ref` the protocol accepts: any string of at most 64 characters.
fn valid_ref() -> impl Strategy<Value = String> {
    any_text(MAX_REF_CHARS)
}

/// A well-formed command as JSON, and what it must decode to.
fn valid_command() -> impl Strategy<Value = (Map<String, Value>, Command)> {
    let room = |raw: &str| RoomName::parse(raw).expect("generated rooms are valid");
    prop_oneof![
        any_text(40).prop_map(move |text| (
            object(json!({"type": "echo", "text": text})),
            Command::Echo(Echo { text })
        )),
        (valid_room(), option::of((any::<u64>(), any_text(20)))).prop_map(move |(name, since)| {
            let mut fields = object(json!({"type": "join", "room": name}));
            if let Some((seq, epoch)) = &since {
                fields.insert("since".into(), json!({"seq": seq, "epoch": epoch}));
            }
            let since = since.map(|(seq, epoch)| Since { seq, epoch });
            (
                fields,
                Command::Join(Join {
                    room: room(&name),
                    since,
                }),
            )
        }),
        valid_room().prop_map(move |name| (
            object(json!({"type": "leave", "room": name})),
            Command::Leave(Leave { room: room(&name) })
        )),
        (valid_room(), any_text(40)).prop_map(move |(name, text)| (
            object(json!({"type": "say", "room": name, "text": text})),
            Command::Say(Say {
                room: room(&name),
                text
            })
        )),
        (any::<u64>(), any_text(40)).prop_map(move |(id, text)| (
            object(json!({"type": "whisper", "to": id.to_string(), "text": text})),
            Command::Whisper(Whisper {
                to: MemberId(id),
                text
            })
        )),
        (
            valid_room(),
            option::of(any::<u64>()),
            option::of(1..=MAX_PAGE as u64)
        )
            .prop_map(move |(name, after, limit)| {
                let mut fields = object(json!({"type": "who", "room": name}));
                if let Some(after) = after {
                    fields.insert("after".into(), Value::from(after.to_string()));
                }
                if let Some(limit) = limit {
                    fields.insert("limit".into(), Value::from(limit));
                }
                let who = Who {
                    room: room(&name),
                    after: after.map(MemberId),
                    limit: limit.map(|limit| PageLimit::parse(limit).expect("in range")),
                };
                (fields, Command::Who(who))
            }),
        (option::of(valid_room()), option::of(1..=MAX_PAGE as u64)).prop_map(
            move |(after, limit)| {
                let mut fields = object(json!({"type": "rooms"}));
                if let Some(after) = &after {
                    fields.insert("after".into(), Value::from(after.as_str()));
                }
                if let Some(limit) = limit {
                    fields.insert("limit".into(), Value::from(limit));
                }
                let rooms = ListRooms {
                    after: after.map(|after| room(&after)),
                    limit: limit.map(|limit| PageLimit::parse(limit).expect("in range")),
                };
                (fields, Command::Rooms(rooms))
            }
        ),
        valid_name().prop_map(move |(sent, kept)| (
            object(json!({"type": "rename", "name": sent})),
            Command::Rename(Rename {
                name: DisplayName::parse(&kept).expect("generated names are valid")
            })
        )),
        // Any string: the connection verifies the token, not the decoder.
        any_text(200).prop_map(|token| (
            object(json!({"type": "refresh", "token": token})),
            Command::Refresh(Refresh { token })
        )),
    ]
}

/// The fields a command may leave out (`join`'s `since`, the pages' `after` and
/// `limit`); every other field of a command is required, and a string.
const OPTIONAL_FIELDS: &[&str] = &["since", "after", "limit"];

/// A generated command's required fields, `type` included.
fn required_fields(fields: &Map<String, Value>) -> Vec<String> {
    fields
        .keys()
        .filter(|name| !OPTIONAL_FIELDS.contains(&name.as_str()))
        .cloned()
        .collect()
}

/// The fields of a `json!({..})` object.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        other => unreachable!("{other} is not an object"),
    }
}

/// A JSON value that is not a string (`null` included).
fn non_string() -> impl Strategy<Value = Value> {
    json_value().prop_filter("strings are what fields hold", |value| !value.is_string())
}

/// Serializes a frame the way some client might: compact or pretty.
fn frame(fields: &Map<String, Value>, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(fields).expect("a JSON map serializes")
    } else {
        serde_json::to_string(fields).expect("a JSON map serializes")
    }
}

fn with_ref(mut fields: Map<String, Value>, reference: &Option<String>) -> Map<String, Value> {
    if let Some(reference) = reference {
        fields.insert("ref".into(), Value::from(reference.as_str()));
    }
    fields
}

/// The error code of a rejection, and the ref it carried; panics on anything else.
fn rejection(text: &str) -> (ErrorCode, Option<String>) {
    match protocol::decode(text) {
        Inbound::Rejected { reference, error } => {
            (error.code, reference.map(|r| r.as_str().to_owned()))
        }
        other => panic!("expected a rejection of {text:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Reference predicates, written from PROTOCOL.md rather than from the implementation
// ---------------------------------------------------------------------------------------

/// "1 to 64 characters of letters, digits, `-`, `_`, `.`" (ASCII letters and digits).
fn is_documented_room(raw: &str) -> bool {
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte);
    // Only ASCII passes `allowed`, so when it holds, bytes and characters are the same.
    (1..=MAX_ROOM_CHARS).contains(&raw.len()) && raw.bytes().all(allowed)
}

/// "1 to 32 characters, no control characters, trimmed": the name kept, if valid.
fn documented_name(raw: &str) -> Option<&str> {
    // Unicode's control characters (general category Cc): C0, DEL and C1.
    let is_control = |c: char| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}');
    let name = raw.trim();
    let length = name.chars().count();
    ((1..=MAX_NAME_CHARS).contains(&length) && !name.chars().any(is_control)).then_some(name)
}

// ---------------------------------------------------------------------------------------
// Decoding client frames
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_never_panics_on_arbitrary_text(text in any_text(200)) {
        let _ = protocol::decode(&text);
    }

    #[test]
    fn decode_never_panics_on_broken_json(
        fields in json_object(),
        cut in any::<Index>(),
        junk in any_text(3),
    ) {
        let whole = frame(&fields, false);
        let boundaries: Vec<usize> = whole
            .char_indices()
            .map(|(at, _)| at)
            .chain([whole.len()])
            .collect();
        let at = boundaries[cut.index(boundaries.len())];
        let text = format!("{}{junk}", &whole[..at]);
        let _ = protocol::decode(&text);
    }

    /// Arbitrary objects never pass as plain text, and their `ref` is handled per the
    /// spec whatever else they hold: a string of at most 64 characters is carried by the
    /// command or the rejection, anything else but `null` is `bad_json`.
    #[test]
    fn any_json_object_is_a_command_or_a_rejection_that_keeps_its_ref(
        fields in json_object(),
        pretty in any::<bool>(),
    ) {
        let text = frame(&fields, pretty);
        let (reference, rejected) = match protocol::decode(&text) {
            Inbound::Plain(_) => panic!("the object {text} was taken as plain text"),
            Inbound::Command { reference, .. } => (reference, None),
            Inbound::Rejected { reference, error } => (reference, Some(error.code)),
        };
        let reference = reference.map(|r| r.as_str().to_owned());
        match fields.get("ref") {
            None | Some(Value::Null) => prop_assert_eq!(reference, None),
            Some(Value::String(sent)) if sent.chars().count() <= MAX_REF_CHARS => {
                prop_assert_eq!(reference.as_ref(), Some(sent));
            }
            Some(_) => {
                prop_assert_eq!(reference, None);
                prop_assert_eq!(rejected, Some(ErrorCode::BadJson));
            }
        }
    }

    #[test]
    fn every_valid_command_decodes_to_itself_with_its_ref(
        (fields, command) in valid_command(),
        reference in proptest::option::of(valid_ref()),
        pretty in any::<bool>(),
        padding in json_space(),
    ) {
        let text = format!("{padding}{}{padding}", frame(&with_ref(fields, &reference), pretty));
        match protocol::decode(&text) {
            Inbound::Command { reference: got, command: decoded } => {
                prop_assert_eq!(decoded, command);
                prop_assert_eq!(got.map(|r| r.as_str().to_owned()), reference);
            }
            other => panic!("{text} decoded to {other:?}"),
        }
    }

    #[test]
    fn an_invalid_room_is_invalid_room_in_every_command_that_takes_one(
        kind in select(ROOM_TYPES),
        room in invalid_room(),
        reference in proptest::option::of(valid_ref()),
    ) {
        let mut fields = Map::new();
        fields.insert("type".into(), kind.into());
        fields.insert("room".into(), room.into());
        if kind == "say" {
            fields.insert("text".into(), "hi".into());
        }
        let text = frame(&with_ref(fields, &reference), false);
        prop_assert_eq!(rejection(&text), (ErrorCode::InvalidRoom, reference));
    }

    #[test]
    fn an_invalid_name_in_rename_is_invalid_name(
        name in invalid_name(),
        reference in proptest::option::of(valid_ref()),
    ) {
        let fields = with_ref(object(json!({"type": "rename", "name": name})), &reference);
        let text = frame(&fields, false);
        prop_assert_eq!(rejection(&text), (ErrorCode::InvalidName, reference));
    }

    /// `type` included: an object without one is `missing_field` too.
    #[test]
    fn a_command_without_a_required_field_is_missing_field(
        (fields, _) in valid_command(),
        which in any::<Index>(),
        reference in proptest::option::of(valid_ref()),
    ) {
        let mut fields = fields;
        let names = required_fields(&fields);
        fields.remove(&names[which.index(names.len())]);
        let text = frame(&with_ref(fields, &reference), false);
        prop_assert_eq!(rejection(&text), (ErrorCode::MissingField, reference));
    }

    /// `type` included: a small number is not taken as the position of a command in the
    /// list (serde accepts variant indices for some enum shapes).
    #[test]
    fn a_field_that_is_not_a_string_is_bad_json(
        (fields, _) in valid_command(),
        which in any::<Index>(),
        value in prop_oneof![3 => non_string(), 1 => (0..TYPES.len() as u64).prop_map(Value::from)],
        reference in proptest::option::of(valid_ref()),
    ) {
        let mut fields = fields;
        let names = required_fields(&fields);
        fields.insert(names[which.index(names.len())].clone(), value);
        let text = frame(&with_ref(fields, &reference), false);
        prop_assert_eq!(rejection(&text), (ErrorCode::BadJson, reference));
    }

    #[test]
    fn a_type_that_is_no_command_is_unknown_type(
        (fields, _) in valid_command(),
        kind in any_text(12).prop_filter("a real command type", |kind| !TYPES.contains(&kind.as_str())),
        reference in proptest::option::of(valid_ref()),
    ) {
        let mut fields = fields;
        fields.insert("type".into(), kind.into());
        let text = frame(&with_ref(fields, &reference), false);
        prop_assert_eq!(rejection(&text), (ErrorCode::UnknownType, reference));
    }

    #[test]
    fn a_whisper_to_something_that_is_no_id_is_unknown_member(
        to in any_text(12).prop_filter("a valid id", |to| to.parse::<u64>().is_err()),
        reference in proptest::option::of(valid_ref()),
    ) {
        let fields = with_ref(object(json!({"type": "whisper", "to": to, "text": "psst"})), &reference);
        let text = frame(&fields, false);
        prop_assert_eq!(rejection(&text), (ErrorCode::UnknownMember, reference));
    }

    #[test]
    fn a_ref_over_64_characters_is_bad_json_without_a_ref(
        fields in prop_oneof![valid_command().prop_map(|(fields, _)| fields), json_object()],
        reference in vec(any::<char>(), MAX_REF_CHARS + 1..100).prop_map(String::from_iter),
    ) {
        let text = frame(&with_ref(fields, &Some(reference)), false);
        prop_assert_eq!(rejection(&text), (ErrorCode::BadJson, None));
    }

    #[test]
    fn a_ref_that_is_not_a_string_is_bad_json_without_a_ref(
        fields in prop_oneof![valid_command().prop_map(|(fields, _)| fields), json_object()],
        reference in non_string().prop_filter("null means no ref", |value| !value.is_null()),
    ) {
        let mut fields = fields;
        fields.insert("ref".into(), reference);
        let text = frame(&fields, false);
        prop_assert_eq!(rejection(&text), (ErrorCode::BadJson, None));
    }

    /// The rule for terminal clients: only what could be an object is treated as JSON.
    #[test]
    fn text_that_cannot_be_an_object_is_plain_text_unchanged(
        text in prop_oneof![
            any_text(60),
            (json_space(), json_non_object(), json_space())
                .prop_map(|(before, value, after)| format!("{before}{value}{after}")),
        ].prop_filter("starts like an object", |text| !text.trim_start().starts_with('{')),
    ) {
        prop_assert_eq!(protocol::decode(&text), Inbound::Plain(text.clone()));
    }
}

// ---------------------------------------------------------------------------------------
// Validated names
// ---------------------------------------------------------------------------------------

/// Strings near the boundaries: mostly allowed characters, lengths around the limit.
fn room_candidate() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => "[A-Za-z0-9._-]",
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        any_text(70),
        vec(piece, 0..=MAX_ROOM_CHARS + 6).prop_map(|pieces| pieces.concat()),
        "[A-Za-z0-9._-]{62,66}",
    ]
}

fn name_candidate() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[A-Za-z0-9 ]",
        2 => "[\t\n\r\\x{a0}\\x{85}\\x{2003}\\x{3000}]",
        1 => "\\p{Cc}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        any_text(40),
        vec(piece, 0..=MAX_NAME_CHARS + 8).prop_map(|pieces| pieces.concat()),
        "[ \t]{0,2}[^\\s\\p{Cc}]{30,34}[ \t]{0,2}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn room_names_are_exactly_the_documented_ones(raw in room_candidate()) {
        match RoomName::parse(&raw) {
            Ok(room) => {
                prop_assert!(is_documented_room(&raw), "{raw:?} was accepted");
                prop_assert_eq!(room.as_str(), raw.as_str());
            }
            Err(_) => prop_assert!(!is_documented_room(&raw), "{raw:?} was refused"),
        }
    }

    #[test]
    fn display_names_are_exactly_the_documented_ones_trimmed(raw in name_candidate()) {
        let parsed = DisplayName::parse(&raw).ok();
        prop_assert_eq!(parsed.as_ref().map(DisplayName::as_str), documented_name(&raw));
    }
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// Reads the field a numeric variable sets, in the unit the variable is written in.
type Field = fn(&Config) -> u64;

/// Every numeric variable and the config field it sets.
const NUMERIC: &[(&str, Field)] = &[
    ("PORT", |c| c.port.into()),
    ("MAX_MESSAGE_BYTES", |c| c.max_message_bytes as u64),
    ("MAX_ROOMS_PER_CONNECTION", |c| {
        c.max_rooms_per_connection as u64
    }),
    ("MAX_PENDING_BYTES", |c| c.max_pending_bytes as u64),
    ("HEARTBEAT_INTERVAL_MS", |c| {
        c.heartbeat_interval.as_millis() as u64
    }),
    ("CLIENT_TIMEOUT_MS", |c| c.client_timeout.as_millis() as u64),
    ("HISTORY_LEN", |c| c.history_len as u64),
    ("JOINED_MEMBERS_MAX", |c| c.joined_members_max as u64),
    ("PRESENCE_EVENTS_MAX", |c| c.presence_events_max as u64),
    ("MEMBER_COUNT_INTERVAL_MS", |c| {
        c.member_count_interval.as_millis() as u64
    }),
    ("ROOM_TTL_MS", |c| c.room_ttl.as_millis() as u64),
    ("MAX_ROOMS_TOTAL", |c| c.max_rooms_total as u64),
    ("HISTORY_MAX_BYTES", |c| c.history_max_bytes as u64),
    ("IDEMPOTENCY_TTL_MS", |c| {
        c.idempotency_ttl.as_millis() as u64
    }),
    ("IDEMPOTENCY_KEYS_MAX", |c| c.idempotency_keys_max as u64),
    ("SHUTDOWN_TIMEOUT_MS", |c| {
        c.shutdown_timeout.as_millis() as u64
    }),
    ("CLOSE_LINGER_MS", |c| c.close_linger.as_millis() as u64),
    ("CLOSE_TIMEOUT_MS", |c| c.close_timeout.as_millis() as u64),
    ("WORKERS", |c| c.workers as u64),
    ("MAX_CONNECTIONS", |c| c.max_connections as u64),
    ("MAX_CONNECTIONS_PER_IP", |c| {
        c.max_connections_per_ip as u64
    }),
    ("RATE_LIMIT_PER_S", |c| c.rate_limit_per_s.into()),
    ("RATE_LIMIT_BURST", |c| c.rate_limit_burst.into()),
    ("RATE_LIMIT_STRIKES", |c| c.rate_limit_strikes.into()),
    ("HANDSHAKE_TIMEOUT_MS", |c| {
        c.handshake_timeout.as_millis() as u64
    }),
    ("TLS_RELOAD_INTERVAL_MS", |c| {
        c.tls_reload_interval.as_millis() as u64
    }),
    ("AUTH_LEEWAY_MS", |c| c.auth_leeway.as_millis() as u64),
    ("AUTH_TOKEN_MAX_BYTES", |c| c.auth_token_max_bytes as u64),
    ("NODE_TIMEOUT_MS", |c| c.node_timeout.as_millis() as u64),
    ("REDIS_LOG_LEN", |c| c.redis_log_len as u64),
];
/// The variables that take text.
const TEXTUAL: [&str; 12] = [
    "HOST",
    "STATIC_DIR",
    "ALLOWED_ORIGINS",
    "API_KEY",
    "NODE_ID",
    "TRUSTED_PROXIES",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "AUTH_JWT_SECRET",
    "AUTH_JWT_PUBLIC_KEY_FILE",
    "REDIS_URL",
    "REDIS_PREFIX",
];

fn numeric(variable: &str) -> Option<Field> {
    NUMERIC
        .iter()
        .find(|(name, _)| *name == variable)
        .map(|(_, field)| *field)
}

/// Whether setting `set` alone may be refused with an error about `named`: its own
/// variable, or the other side of a cross-field rule it can break with the defaults.
fn may_blame(set: &str, named: &str) -> bool {
    named == set
        || matches!(
            (set, named),
            ("HEARTBEAT_INTERVAL_MS", "CLIENT_TIMEOUT_MS")
                | ("MAX_MESSAGE_BYTES", "MAX_PENDING_BYTES")
        )
}

/// A whole number as an operator might write it: padded, with `+` or leading zeros; the
/// values are biased to the edges of the ranges the parser enforces.
fn number_text() -> impl Strategy<Value = (u64, String)> {
    let number = prop_oneof![
        any::<u64>(),
        0u64..2_000,
        0u64..200_000,
        0u64..20_000_000,
        select(vec![
            0,
            1,
            124,
            125,
            1023,
            1024,
            65_535,
            65_536,
            (1 << 20) - 1,
            1 << 20,
            (1 << 20) + 1,
            (1 << 30) + 1,
            (1 << 34) + 1,
            86_400_000,
            86_400_001,
            u32::MAX as u64 + 1,
            u64::MAX,
        ]),
    ];
    (number, "[ \t]{0,2}", "(\\+|0{1,3})?", "[ \t]{0,2}").prop_map(
        |(number, before, sign, after)| (number, format!("{before}{sign}{number}{after}")),
    )
}

fn config_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(30),
        number_text().prop_map(|(_, text)| text),
        "-[0-9]{1,25}",
        "[0-9]{19,30}",
        "[0-9]{1,6}(\\.[0-9]{1,3}|e[0-9]|ms|_000)",
        "(https?://[a-z.:0-9]{0,20}/?|[ ,]){1,4}",
        // Address lists (TRUSTED_PROXIES), well-formed or nearly.
        "(([0-9]{1,3}\\.){1,3}[0-9]{1,3}(/[0-9]{1,3})?|[0-9a-f:]{2,12}(/[0-9]{1,3})?|[ ,]){1,4}",
    ]
}

#[test]
fn the_property_tables_cover_every_config_variable() {
    let mut covered: Vec<&str> = NUMERIC.iter().map(|(name, _)| *name).collect();
    covered.extend(TEXTUAL);
    covered.sort_unstable();
    let mut variables = VARIABLES.to_vec();
    variables.sort_unstable();
    assert_eq!(covered, variables);
}

proptest! {
    #![proptest_config(config())]

    /// Also: a numeric variable that is blank means its default, and one that is not a
    /// whole number is refused naming that variable.
    #[test]
    fn any_value_for_any_variable_is_a_config_or_an_error_naming_it(
        variable in select(VARIABLES),
        value in config_value(),
    ) {
        let result = Config::from_vars([(variable, value.as_str())]);
        if let Err(err) = &result {
            prop_assert!(may_blame(variable, &err.variable), "{variable}={value:?} blamed {err}");
        }
        if let Some(field) = numeric(variable) {
            let trimmed = value.trim();
            if trimmed.is_empty() {
                let config = result.expect("a blank value means the default");
                prop_assert_eq!(field(&config), field(&Config::default()));
            } else if trimmed.parse::<u64>().is_err() {
                prop_assert_eq!(result.map(|_| ()).unwrap_err().variable, variable);
            }
        }
    }

    #[test]
    fn a_number_for_a_numeric_variable_is_taken_as_is_or_refused_naming_it(
        (variable, field) in select(NUMERIC),
        (number, text) in number_text(),
    ) {
        match Config::from_vars([(variable, text.as_str())]) {
            Ok(config) => prop_assert_eq!(field(&config), number, "{}={:?}", variable, text),
            Err(err) => {
                prop_assert!(may_blame(variable, &err.variable), "{variable}={text:?} blamed {err}");
                // A cross-field error means the number itself was in range.
                if err.variable == "CLIENT_TIMEOUT_MS" && variable != "CLIENT_TIMEOUT_MS" {
                    prop_assert!(number >= Config::default().client_timeout.as_millis() as u64);
                }
                if err.variable == "MAX_PENDING_BYTES" && variable != "MAX_PENDING_BYTES" {
                    prop_assert!(number > Config::default().max_pending_bytes as u64);
                }
            }
        }
    }

    #[test]
    fn any_set_of_variables_is_a_config_or_an_error_naming_one_of_them(
        vars in btree_map(
            prop_oneof![4 => select(VARIABLES).prop_map(String::from), 1 => any_text(10)],
            config_value(),
            0..VARIABLES.len(),
        ),
    ) {
        if let Err(err) = Config::from_vars(vars.clone()) {
            let cross_field = ["CLIENT_TIMEOUT_MS", "MAX_PENDING_BYTES"];
            prop_assert!(
                vars.contains_key(&err.variable) || cross_field.contains(&err.variable.as_str()),
                "{vars:?} blamed {err}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reassembly of fragmented messages
// ---------------------------------------------------------------------------------------

/// `data` cut at `cuts` (byte offsets, so characters may be split) into at least two
/// fragments, empty ones allowed.
fn split(data: &[u8], cuts: &[Index]) -> Vec<Bytes> {
    let mut offsets: Vec<usize> = cuts.iter().map(|cut| cut.index(data.len() + 1)).collect();
    offsets.sort_unstable();
    let mut fragments = Vec::with_capacity(offsets.len() + 1);
    let mut start = 0;
    for offset in offsets.into_iter().chain([data.len()]) {
        fragments.push(Bytes::copy_from_slice(&data[start..offset]));
        start = offset;
    }
    fragments
}

/// The fragments as the transport delivers them: first, continuations, last.
fn continuation_frames(fragments: Vec<Bytes>, text: bool) -> Vec<ws::Message> {
    let last = fragments.len() - 1;
    fragments
        .into_iter()
        .enumerate()
        .map(|(position, data)| {
            let item = match position {
                0 if text => Item::FirstText(data),
                0 => Item::FirstBinary(data),
                position if position == last => Item::Last(data),
                _ => Item::Continue(data),
            };
            ws::Message::Continuation(item)
        })
        .collect()
}

fn payload(item: &Item) -> &Bytes {
    match item {
        Item::FirstText(data)
        | Item::FirstBinary(data)
        | Item::Continue(data)
        | Item::Last(data) => data,
    }
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 1..6)
}

/// Bytes that are often, but not always, valid UTF-8.
fn maybe_utf8() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..64),
        any_text(40).prop_map(String::into_bytes),
        (any_text(40), any::<Index>(), any::<u8>()).prop_map(|(text, at, byte)| {
            let mut bytes = text.into_bytes();
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        }),
        // A multi-byte character cut short at the end.
        (any_text(20), "[\\x{80}-\\x{10ffff}]").prop_map(|(text, wide)| {
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&wide.as_bytes()[..wide.len() - 1]);
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Pings may arrive between fragments; the message after is unaffected.
    #[test]
    fn fragmented_text_is_reassembled_exactly(
        text in any_text(200),
        cuts in cuts(),
        headroom in 0usize..10,
        pings in any::<bool>(),
    ) {
        let mut reassembler = Reassembler::new(text.len() + headroom);
        let frames = continuation_frames(split(text.as_bytes(), &cuts), true);
        let last = frames.len() - 1;
        for (position, frame) in frames.into_iter().enumerate() {
            if pings && position > 0 {
                let ping = ws::Message::Ping(Bytes::from_static(b"p"));
                prop_assert_eq!(reassembler.push(ping), Ok(Some(Incoming::Ping(Bytes::from_static(b"p")))));
            }
            let expected = if position == last {
                Some(Incoming::Text(ByteString::from(text.clone())))
            } else {
                None
            };
            prop_assert_eq!(reassembler.push(frame), Ok(expected));
        }
        let after = ByteString::from_static("after");
        prop_assert_eq!(
            reassembler.push(ws::Message::Text(after.clone())),
            Ok(Some(Incoming::Text(after)))
        );
    }

    #[test]
    fn fragmented_binary_is_reassembled_exactly(data in vec(any::<u8>(), 0..200), cuts in cuts()) {
        let mut reassembler = Reassembler::new(data.len());
        let frames = continuation_frames(split(&data, &cuts), false);
        let last = frames.len() - 1;
        for (position, frame) in frames.into_iter().enumerate() {
            let expected = (position == last).then(|| Incoming::Binary(Bytes::from(data.clone())));
            prop_assert_eq!(reassembler.push(frame), Ok(expected));
        }
    }

    /// It fails at the first fragment that takes the message over the limit, not later.
    #[test]
    fn text_over_the_limit_is_too_big_at_the_fragment_that_crosses_it(
        text in any_text(100).prop_filter("empty text fits any limit", |text| !text.is_empty()),
        limit in any::<Index>(),
        cuts in cuts(),
    ) {
        let limit = limit.index(text.len());
        let mut reassembler = Reassembler::new(limit);
        let mut received = 0;
        for frame in continuation_frames(split(text.as_bytes(), &cuts), true) {
            let ws::Message::Continuation(item) = &frame else { unreachable!() };
            received += payload(item).len();
            let result = reassembler.push(frame);
            if received > limit {
                prop_assert_eq!(result, Err(Violation::TooBig));
                break;
            }
            prop_assert_eq!(result, Ok(None));
        }
        prop_assert!(received > limit, "{} bytes passed a limit of {limit}", text.len());
    }

    /// Bad text fails at the fragment that makes it impossible to be UTF-8; a character
    /// split across fragments is fine, one cut short at the end is not.
    #[test]
    fn arbitrary_bytes_as_text_are_that_text_or_invalid_utf8(data in maybe_utf8(), cuts in cuts()) {
        let mut reassembler = Reassembler::new(1 << 20);
        let frames = continuation_frames(split(&data, &cuts), true);
        let last = frames.len() - 1;
        let mut received = Vec::new();
        for (position, frame) in frames.into_iter().enumerate() {
            let ws::Message::Continuation(item) = &frame else { unreachable!() };
            received.extend_from_slice(payload(item));
            let broken = match std::str::from_utf8(&received) {
                Ok(_) => false,
                Err(err) => position == last || err.error_len().is_some(),
            };
            let result = reassembler.push(frame);
            if broken {
                prop_assert_eq!(result, Err(Violation::InvalidUtf8));
                prop_assert!(std::str::from_utf8(&data).is_err());
                return Ok(());
            }
            let expected = (position == last).then(|| {
                let text = String::from_utf8(data.clone()).expect("checked above");
                Incoming::Text(ByteString::from(text))
            });
            prop_assert_eq!(result, Ok(expected));
        }
    }
}

/// The generators and the fuzz dictionary follow the core's list of commands: a command
/// added there and forgotten here fails this test instead of going untested.
#[test]
fn every_command_is_generated_and_in_the_fuzz_dictionary() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let generated: std::collections::BTreeSet<&str> = (0..512)
        .map(|_| {
            let (fields, command) = valid_command()
                .new_tree(&mut runner)
                .expect("a generated command")
                .current();
            assert_eq!(fields["type"], command.name());
            command.name()
        })
        .collect();
    let known: std::collections::BTreeSet<&str> = Command::NAMES.iter().copied().collect();
    assert_eq!(
        generated, known,
        "valid_command() must generate every command"
    );
    let dictionary = include_str!("../../fuzz/decode_frame.dict");
    for field in FIELDS {
        assert!(
            dictionary.contains(&format!("\"\\\"{field}\\\"\"")),
            "fuzz/decode_frame.dict lacks the field {field:?}"
        );
    }
    for name in Command::NAMES {
        assert!(
            dictionary.contains(&format!("\"\\\"{name}\\\"\"")),
            "fuzz/decode_frame.dict lacks the command type {name:?}"
        );
    }
}

/// The config fuzzer's dictionary names every variable the config reads.
#[test]
fn the_config_fuzz_dictionary_names_every_variable() {
    let dictionary = include_str!("../../fuzz/config_vars.dict");
    for variable in VARIABLES {
        assert!(
            dictionary.contains(&format!("\"{variable}=\"")),
            "fuzz/config_vars.dict lacks {variable}"
        );
    }
}
