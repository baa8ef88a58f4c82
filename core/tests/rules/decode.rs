//! Client frames into commands (`decode`): every error a frame can get before the rules
//! see it, the `ref` it keeps, and plain text. What the over-the-wire `errors` spec sends,
//! decoded here; where the rules give the error (`0` names nobody), through the hub.

use hubbub_core::{
    cmd::{Echo, Join, Leave, ListRooms, Refresh, Rename, Say, Whisper, Who},
    protocol::{decode, ErrorCode, Inbound, MemberId},
    Command,
};
use serde_json::{json, Value};

use crate::helpers::*;

/// The rejection of `frame`: its `ref`, if one could be read, and its code. Every
/// rejection comes with a message for people.
fn rejection(frame: &str) -> (Option<String>, ErrorCode) {
    match decode(frame) {
        Inbound::Rejected { reference, error } => {
            assert!(!error.message.is_empty(), "{frame}: a message");
            (reference.map(|r| r.as_str().to_owned()), error.code)
        }
        other => panic!("{frame} is rejected, got {other:?}"),
    }
}

fn code_of(frame: &Value) -> ErrorCode {
    rejection(&frame.to_string()).1
}

#[test]
fn text_that_starts_with_a_brace_but_is_not_json_is_bad_json_without_a_ref() {
    for frame in [
        r#"{"type": "echo""#,
        "{oops",
        "{\"type\": 'echo'}",
        "{}}",
        "  {",
    ] {
        assert_eq!(rejection(frame), (None, ErrorCode::BadJson), "{frame}");
    }
}

#[test]
fn a_field_of_the_wrong_type_is_bad_json() {
    for frame in [
        json!({"type": "join", "room": 5}),
        json!({"type": "say", "room": "lobby", "text": 5}),
        json!({"type": "say", "room": ["lobby"], "text": "hi"}),
        json!({"type": "echo", "text": {"nested": true}}),
        json!({"type": "rename", "name": 7}),
        json!({"type": "refresh", "token": 7}),
        json!({"type": "refresh", "token": null}),
        json!({"type": "whisper", "to": "1", "text": false}),
        json!({"type": "whisper", "to": 1, "text": "hi"}),
        json!({"type": null}),
        json!({"type": 5}),
    ] {
        assert_eq!(code_of(&frame), ErrorCode::BadJson, "{frame}");
    }
}

#[test]
fn a_ref_that_is_not_a_string_or_is_too_long_is_bad_json_and_not_kept() {
    for bad_ref in [
        json!(5),
        json!(true),
        json!(["r"]),
        json!({"r": 1}),
        json!("r".repeat(65)),
    ] {
        let frame = json!({"type": "echo", "text": "hi", "ref": bad_ref}).to_string();
        assert_eq!(rejection(&frame), (None, ErrorCode::BadJson), "{frame}");
    }

    // 64 characters (not bytes) is still fine, and so is no ref or a null one.
    let longest = "é".repeat(64);
    let frame = json!({"type": "echo", "text": "hi", "ref": longest}).to_string();
    match decode(&frame) {
        Inbound::Command { reference, .. } => {
            assert_eq!(reference.unwrap().as_str(), longest)
        }
        other => panic!("{other:?}"),
    }
    for frame in [
        json!({"type": "echo", "text": "hi"}),
        json!({"type": "echo", "text": "hi", "ref": null}),
    ] {
        assert!(matches!(
            decode(&frame.to_string()),
            Inbound::Command {
                reference: None,
                ..
            }
        ));
    }
}

#[test]
fn an_unknown_type_is_unknown_type() {
    for kind in ["dance", "JOIN", "", "welcome", "joined", "message"] {
        let frame = json!({"type": kind, "room": "lobby"});
        assert_eq!(code_of(&frame), ErrorCode::UnknownType, "{frame}");
    }
}

#[test]
fn a_missing_type_or_required_field_is_missing_field() {
    for frame in [
        json!({"text": "no type"}),
        json!({}),
        json!({"type": "echo"}),
        json!({"type": "join"}),
        json!({"type": "leave"}),
        json!({"type": "say", "room": "lobby"}),
        json!({"type": "say", "text": "where?"}),
        json!({"type": "whisper", "text": "to whom?"}),
        json!({"type": "whisper", "to": "1"}),
        json!({"type": "who"}),
        json!({"type": "rename"}),
        json!({"type": "refresh"}),
    ] {
        assert_eq!(code_of(&frame), ErrorCode::MissingField, "{frame}");
    }
}

#[test]
fn a_malformed_room_name_is_invalid_room_and_the_edges_are_allowed() {
    let too_long = "r".repeat(65);
    for name in ["", too_long.as_str(), "no spaces", "café", "a/b", "lobby\n"] {
        for frame in [
            json!({"type": "join", "room": name}),
            json!({"type": "leave", "room": name}),
            json!({"type": "say", "room": name, "text": "hi"}),
            json!({"type": "who", "room": name}),
        ] {
            assert_eq!(code_of(&frame), ErrorCode::InvalidRoom, "{frame}");
        }
    }

    // 64 characters of letters, digits, '-', '_', '.'.
    let longest = "a".repeat(64);
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    for name in [longest.as_str(), "Az09-_.", "."] {
        let frame = json!({"type": "join", "room": name}).to_string();
        assert_eq!(decoded(&frame), Command::Join(Join::room(room(name))));
        let out = hub.apply(ann, decoded(&frame));
        assert_eq!(out.trace()[1], format!("joined {name} -> reply:ann"));
    }
}

#[test]
fn a_malformed_display_name_is_invalid_name_and_names_are_trimmed() {
    let too_long = "n".repeat(33);
    for name in [
        "",
        "   ",
        "\t\n",
        too_long.as_str(),
        "a\u{7}b",
        "tab\there",
        "nul\u{0}",
    ] {
        let frame = json!({"type": "rename", "name": name});
        assert_eq!(code_of(&frame), ErrorCode::InvalidName, "{frame}");
    }

    // 32 characters (not bytes) is fine; surrounding blanks are not part of the name.
    let longest = "é".repeat(32);
    for (sent, kept) in [(longest.as_str(), longest.as_str()), ("  anna  ", "anna")] {
        let frame = json!({"type": "rename", "name": sent}).to_string();
        assert_eq!(
            decoded(&frame),
            Command::Rename(Rename {
                name: display_name(kept)
            })
        );
    }
}

#[test]
fn a_whisper_to_an_id_nobody_has_is_unknown_member() {
    // Not an id the server could have issued: refused before the rules.
    for to in ["-1", "abc", "", "1.5", "18446744073709551616"] {
        let frame = json!({"type": "whisper", "to": to, "text": "hi"});
        assert_eq!(code_of(&frame), ErrorCode::UnknownMember, "{frame}");
    }
    // An id nobody has: the rules refuse it.
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    for to in ["0", "18446744073709551615"] {
        let frame = json!({"type": "whisper", "to": to, "text": "hi"}).to_string();
        let out = hub.apply(ann, decoded(&frame));
        assert_eq!(out.trace(), ["error unknown_member -> reply:ann"], "{to}");
    }
}

#[test]
fn an_error_keeps_the_ref_of_the_request() {
    for (frame, code) in [
        (json!({"type": "join", "room": 5}), ErrorCode::BadJson),
        (json!({"type": "dance"}), ErrorCode::UnknownType),
        (json!({"room": "lobby"}), ErrorCode::MissingField),
        (
            json!({"type": "say", "room": "lobby"}),
            ErrorCode::MissingField,
        ),
        (
            json!({"type": "join", "room": "no spaces"}),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "rename", "name": " "}),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "whisper", "to": "abc", "text": "hi"}),
            ErrorCode::UnknownMember,
        ),
    ] {
        let mut frame = frame;
        frame["ref"] = json!(format!("ref-{code}"));
        assert_eq!(
            rejection(&frame.to_string()),
            (Some(format!("ref-{code}")), code),
            "{frame}"
        );
    }
}

#[test]
fn every_command_decodes_from_its_frame() {
    let cases = [
        (
            json!({"type": "echo", "text": "hi"}),
            Command::Echo(Echo { text: "hi".into() }),
        ),
        (
            json!({"type": "join", "room": "lobby"}),
            Command::Join(Join::room(room("lobby"))),
        ),
        (
            json!({"type": "leave", "room": "lobby"}),
            Command::Leave(Leave {
                room: room("lobby"),
            }),
        ),
        (
            json!({"type": "say", "room": "lobby", "text": "hi"}),
            Command::Say(Say {
                room: room("lobby"),
                text: "hi".into(),
            }),
        ),
        (
            json!({"type": "whisper", "to": "7", "text": "psst"}),
            Command::Whisper(Whisper {
                to: MemberId(7),
                text: "psst".into(),
            }),
        ),
        (
            json!({"type": "who", "room": "lobby"}),
            Command::Who(Who {
                room: room("lobby"),
                after: None,
                limit: None,
            }),
        ),
        (
            json!({"type": "rooms"}),
            Command::Rooms(ListRooms::default()),
        ),
        (
            json!({"type": "rename", "name": "anna"}),
            Command::Rename(Rename {
                name: display_name("anna"),
            }),
        ),
        (
            json!({"type": "refresh", "token": "a.b.c"}),
            Command::Refresh(Refresh {
                token: "a.b.c".into(),
            }),
        ),
    ];
    let mut names: Vec<&str> = Vec::new();
    for (mut frame, expected) in cases {
        // Unknown fields and a `ref` are no part of the command.
        frame["ref"] = json!("r1");
        frame["extra"] = json!({"nested": [1, null]});
        let Inbound::Command { reference, command } = decode(&frame.to_string()) else {
            panic!("{frame} decodes");
        };
        assert_eq!(reference.unwrap().as_str(), "r1");
        assert_eq!(command.name(), frame["type"]);
        names.push(command.name());
        assert_eq!(command, expected);
    }
    assert_eq!(names, Command::NAMES, "every command, in the list's order");
}

#[test]
fn text_that_is_not_a_json_object_is_plain_text() {
    for text in [
        "hello",
        "[1,2]",
        "42",
        "\"just a string\"",
        "null",
        "[{\"type\": \"rooms\"}]",
        "",
    ] {
        assert_eq!(decode(text), Inbound::Plain(text.to_owned()), "{text:?}");
    }
}
