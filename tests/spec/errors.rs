//! Error replies on `/ws`: every v1 error code a client can provoke, the `ref` they
//! carry, and the promise that an error never closes the connection.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, spawn_app_with, Client};

/// The connection still works: an `echo` comes straight back.
async fn assert_still_open(client: &mut Client) {
    client
        .send(json!({"type": "echo", "text": "still there?"}))
        .await;
    let echo = client.expect("echo").await;
    assert_eq!(echo["text"], "still there?");
}

/// Sends `frame` as text and expects an `error` with `code`, then checks the connection
/// survived. Returns the error.
async fn rejects_text(client: &mut Client, frame: &str, code: &str) -> Value {
    client.send_text(frame).await;
    let error = client.next_event().await;
    assert_eq!(error["type"], "error", "{frame} is refused, got {error}");
    assert_eq!(
        error["code"], code,
        "{frame} is refused with {code}, got {error}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a human-readable message: {error}"
    );
    assert_still_open(client).await;
    error
}

/// As [`rejects_text`], for a frame built with `json!`.
async fn rejects(client: &mut Client, frame: Value, code: &str) -> Value {
    rejects_text(client, &frame.to_string(), code).await
}

#[actix_web::test]
async fn text_that_starts_with_a_brace_but_is_not_json_is_bad_json() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    for frame in [r#"{"type": "echo""#, "{oops", "{\"type\": 'echo'}", "{}}"] {
        let error = rejects_text(&mut ann, frame, "bad_json").await;
        assert!(error.get("ref").is_none(), "no ref could be read: {error}");
    }
}

#[actix_web::test]
async fn a_field_of_the_wrong_type_is_bad_json() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let frames = [
        json!({"type": "join", "room": 5}),
        json!({"type": "say", "room": "lobby", "text": 5}),
        json!({"type": "say", "room": ["lobby"], "text": "hi"}),
        json!({"type": "echo", "text": {"nested": true}}),
        json!({"type": "rename", "name": 7}),
        json!({"type": "whisper", "to": ann.id, "text": false}),
    ];
    for frame in frames {
        rejects(&mut ann, frame, "bad_json").await;
    }
    // None of them reached the room.
    ann.send(json!({"type": "say", "room": "lobby", "text": "first"}))
        .await;
    assert_eq!(ann.expect("message").await["seq"], 1);
}

#[actix_web::test]
async fn a_ref_that_is_not_a_string_or_too_long_is_bad_json() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    for bad_ref in [
        json!(5),
        json!(true),
        json!(["r"]),
        json!({"r": 1}),
        json!("r".repeat(65)),
    ] {
        let frame = json!({"type": "echo", "text": "hi", "ref": bad_ref});
        let error = rejects(&mut ann, frame, "bad_json").await;
        assert!(
            error.get("ref").is_none(),
            "an invalid ref is not echoed: {error}"
        );
    }

    // 64 characters (not bytes) is still fine.
    let longest = "é".repeat(64);
    ann.send(json!({"type": "echo", "text": "hi", "ref": longest}))
        .await;
    assert_eq!(ann.expect("echo").await["ref"], longest.as_str());
}

#[actix_web::test]
async fn an_unknown_type_is_unknown_type() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    for kind in ["dance", "JOIN", "", "welcome"] {
        rejects(
            &mut ann,
            json!({"type": kind, "room": "lobby"}),
            "unknown_type",
        )
        .await;
    }
}

#[actix_web::test]
async fn a_missing_type_or_required_field_is_missing_field() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let frames = [
        json!({"text": "no type"}),
        json!({}),
        json!({"type": "echo"}),
        json!({"type": "join"}),
        json!({"type": "leave"}),
        json!({"type": "say", "room": "lobby"}),
        json!({"type": "say", "text": "where?"}),
        json!({"type": "whisper", "text": "to whom?"}),
        json!({"type": "whisper", "to": ann.id}),
        json!({"type": "who"}),
        json!({"type": "rename"}),
    ];
    for frame in frames {
        rejects(&mut ann, frame, "missing_field").await;
    }
}

#[actix_web::test]
async fn a_malformed_room_name_is_invalid_room() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    let too_long = "r".repeat(65);
    for room in ["", too_long.as_str(), "no spaces", "café", "a/b", "lobby\n"] {
        for frame in [
            json!({"type": "join", "room": room}),
            json!({"type": "leave", "room": room}),
            json!({"type": "say", "room": room, "text": "hi"}),
            json!({"type": "who", "room": room}),
        ] {
            rejects(&mut ann, frame, "invalid_room").await;
        }
    }
    ann.sync().await;
    // Nothing was created along the way.
    ann.send(json!({"type": "rooms"})).await;
    assert_eq!(ann.expect("rooms").await["rooms"], json!([]));

    // The edges of what is allowed: 64 characters of letters, digits, '-', '_', '.'.
    let longest = "a".repeat(64);
    for room in [longest.as_str(), "Az09-_.", "."] {
        ann.send(json!({"type": "join", "room": room})).await;
        assert_eq!(ann.expect("joined").await["room"], room);
    }
}

#[actix_web::test]
async fn a_malformed_display_name_is_invalid_name_and_the_old_name_stays() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
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
        rejects(
            &mut ann,
            json!({"type": "rename", "name": name}),
            "invalid_name",
        )
        .await;
    }

    // 32 characters (not bytes) is fine, and the failed renames changed nothing.
    let longest = "é".repeat(32);
    ann.send(json!({"type": "rename", "name": longest})).await;
    let renamed = ann.expect("member_renamed").await;
    assert_eq!(renamed["old_name"], "ann");
    assert_eq!(renamed["member"]["name"], longest.as_str());
}

#[actix_web::test]
async fn say_or_leave_in_a_room_one_is_not_in_is_not_in_room() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    let mut bob = app.member("bob", "lobby").await;
    for room in ["lobby", "nowhere"] {
        rejects(
            &mut ann,
            json!({"type": "say", "room": room, "text": "hi"}),
            "not_in_room",
        )
        .await;
        rejects(
            &mut ann,
            json!({"type": "leave", "room": room}),
            "not_in_room",
        )
        .await;
    }
    // Bob's room heard nothing of it, and "nowhere" was not created.
    bob.sync().await;
    bob.send(json!({"type": "rooms"})).await;
    assert_eq!(
        bob.expect("rooms").await["rooms"],
        json!([{"name": "lobby", "members": 1}])
    );
    bob.send(json!({"type": "say", "room": "lobby", "text": "first"}))
        .await;
    assert_eq!(bob.expect("message").await["seq"], 1);
}

#[actix_web::test]
async fn a_whisper_to_an_id_nobody_has_is_unknown_member() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    for to in ["0", "18446744073709551615", "-1", "abc", ""] {
        rejects(
            &mut ann,
            json!({"type": "whisper", "to": to, "text": "hi"}),
            "unknown_member",
        )
        .await;
    }
}

#[actix_web::test]
async fn a_join_past_the_room_limit_is_too_many_rooms() {
    let app = spawn_app_with(|c| c.max_rooms_per_connection = 1).await;
    let mut ann = app.member("ann", "one").await;
    let error = rejects(
        &mut ann,
        json!({"type": "join", "room": "two", "ref": "j2"}),
        "too_many_rooms",
    )
    .await;
    assert_eq!(error["ref"], "j2");
}

#[actix_web::test]
async fn an_error_carries_the_ref_of_the_request() {
    let app = spawn_app_with(|c| c.max_rooms_per_connection = 1).await;
    let mut ann = app.member("ann", "lobby").await;
    let cases = [
        (json!({"type": "join", "room": 5}), "bad_json"),
        (json!({"type": "dance"}), "unknown_type"),
        (json!({"room": "lobby"}), "missing_field"),
        (json!({"type": "say", "room": "lobby"}), "missing_field"),
        (json!({"type": "join", "room": "no spaces"}), "invalid_room"),
        (json!({"type": "rename", "name": " "}), "invalid_name"),
        (
            json!({"type": "say", "room": "other", "text": "hi"}),
            "not_in_room",
        ),
        (
            json!({"type": "whisper", "to": "999999", "text": "hi"}),
            "unknown_member",
        ),
        (
            json!({"type": "whisper", "to": "abc", "text": "hi"}),
            "unknown_member",
        ),
        (json!({"type": "join", "room": "other"}), "too_many_rooms"),
    ];
    for (i, (mut frame, code)) in cases.into_iter().enumerate() {
        let reference = format!("ref-{i}-{code}");
        frame["ref"] = json!(reference);
        let error = rejects(&mut ann, frame, code).await;
        assert_eq!(error["ref"], reference.as_str(), "{error}");
    }
}

#[actix_web::test]
async fn errors_in_a_row_never_close_the_connection() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    for _ in 0..3 {
        rejects_text(&mut ann, "{nope", "bad_json").await;
        rejects(&mut ann, json!({"type": "dance"}), "unknown_type").await;
        rejects(&mut ann, json!({"type": "join"}), "missing_field").await;
        rejects(
            &mut ann,
            json!({"type": "join", "room": ""}),
            "invalid_room",
        )
        .await;
        rejects(
            &mut ann,
            json!({"type": "rename", "name": ""}),
            "invalid_name",
        )
        .await;
        rejects(
            &mut ann,
            json!({"type": "leave", "room": "x"}),
            "not_in_room",
        )
        .await;
        rejects(
            &mut ann,
            json!({"type": "whisper", "to": "0", "text": "hi"}),
            "unknown_member",
        )
        .await;
    }
    // Still a full member of the hub afterwards.
    ann.send(json!({"type": "join", "room": "lobby"})).await;
    assert_eq!(ann.expect("joined").await["room"], "lobby");
}

#[actix_web::test]
async fn a_binary_frame_is_bad_json_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    let command = json!({"type": "echo", "text": "in binary", "ref": "b1"});
    for payload in [command.to_string().into_bytes(), vec![0, 159, 146, 150]] {
        ann.send_message(Message::binary(payload)).await;
        let error = ann.expect_error("bad_json").await;
        assert!(
            error.get("ref").is_none(),
            "binary frames are not read: {error}"
        );
        assert_still_open(&mut ann).await;
    }
}
