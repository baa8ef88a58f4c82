//! The commands besides joining and speaking: `echo`, `ref` correlation, `whisper`,
//! `rename`, and how plain (non-object) text frames are answered.

use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, Client},
    rooms::assert_wire_timestamp,
};

/// Joins `room` as an already connected `client`, returning its `joined`.
async fn join(client: &mut Client, room: &str) -> Value {
    client.send(json!({"type": "join", "room": room})).await;
    client.expect("joined").await
}

/// The reply must carry no `ref` at all (not even `null`).
fn assert_no_ref(event: &Value) {
    assert!(event.get("ref").is_none(), "no ref expected: {event}");
}

#[actix_web::test]
async fn echo_replies_with_the_same_text_and_a_timestamp() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    ann.send(json!({"type": "echo", "text": "hi there ✓"}))
        .await;
    let echo = ann.expect("echo").await;
    assert_eq!(echo["text"], "hi there ✓");
    assert_wire_timestamp(&echo["at"]);
    assert_no_ref(&echo);
    assert_eq!(echo.as_object().unwrap().len(), 3, "type, text, at: {echo}");
}

#[actix_web::test]
async fn ref_is_copied_into_echo_joined_left_presence_and_rooms_replies() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;

    ann.send(json!({"type": "echo", "text": "x", "ref": "r-echo"}))
        .await;
    let echo = ann.expect("echo").await;
    assert_eq!(echo["ref"], "r-echo");
    assert_eq!(echo["text"], "x");

    ann.send(json!({"type": "join", "room": "lobby", "ref": "r-join"}))
        .await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["ref"], "r-join");
    assert_eq!(joined["room"], "lobby");

    ann.send(json!({"type": "who", "room": "lobby", "ref": "r-who"}))
        .await;
    let presence = ann.expect("presence").await;
    assert_eq!(presence["ref"], "r-who");
    assert_eq!(presence["room"], "lobby");

    ann.send(json!({"type": "rooms", "ref": "r-rooms"})).await;
    let rooms = ann.expect("rooms").await;
    assert_eq!(rooms["ref"], "r-rooms");
    assert_eq!(rooms["rooms"], json!([{"name": "lobby", "members": 1}]));

    ann.send(json!({"type": "leave", "room": "lobby", "ref": "r-leave"}))
        .await;
    assert_eq!(
        ann.expect("left").await,
        json!({"type": "left", "room": "lobby", "ref": "r-leave"})
    );

    // An error reply carries it too.
    ann.send(json!({"type": "leave", "room": "lobby", "ref": "r-again"}))
        .await;
    assert_eq!(ann.expect_error("not_in_room").await["ref"], "r-again");
}

#[actix_web::test]
async fn only_the_senders_copy_of_a_message_carries_its_ref() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;

    ann.send(json!({"type": "say", "room": "lobby", "text": "hi", "ref": "m1"}))
        .await;
    let own_copy = ann.expect("message").await;
    assert_eq!(own_copy["ref"], "m1");
    let bobs_copy = bob.expect("message").await;
    assert_no_ref(&bobs_copy);

    // Apart from the ref, both copies are the same message.
    let mut without_ref = own_copy.clone();
    without_ref.as_object_mut().unwrap().remove("ref");
    assert_eq!(without_ref, bobs_copy);
    assert_eq!(bobs_copy["text"], "hi");
    assert_eq!(bobs_copy["seq"], 1);

    // What others hear of a request never carries the requester's ref.
    let mut carol = app.connect("?name=carol").await;
    carol
        .send(json!({"type": "join", "room": "lobby", "ref": "c-join"}))
        .await;
    assert_eq!(carol.expect("joined").await["ref"], "c-join");
    assert_no_ref(&ann.expect("member_joined").await);
    assert_no_ref(&bob.expect("member_joined").await);
}

#[actix_web::test]
async fn whisper_reaches_only_the_target_and_the_sender() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let mut carol = app.member("carol", "lobby").await;
    ann.expect("member_joined").await;
    bob.expect("member_joined").await;

    ann.send(json!({"type": "whisper", "to": bob.id, "text": "psst", "ref": "w1"}))
        .await;
    let own_copy = ann.expect("whisper").await;
    assert_eq!(own_copy["ref"], "w1");
    assert_eq!(own_copy["from"]["id"], ann.id.as_str());
    assert_eq!(own_copy["from"]["name"], "ann");
    assert_eq!(own_copy["to"]["id"], bob.id.as_str());
    assert_eq!(own_copy["to"]["name"], "bob");
    assert_eq!(own_copy["text"], "psst");
    assert_wire_timestamp(&own_copy["at"]);

    let bobs_copy = bob.expect("whisper").await;
    assert_no_ref(&bobs_copy);
    let mut without_ref = own_copy.clone();
    without_ref.as_object_mut().unwrap().remove("ref");
    assert_eq!(without_ref, bobs_copy);

    // Ann's copy came from the hub, so it has handled the whisper: carol got nothing,
    // and the two of them got one copy each.
    carol.sync().await;
    ann.sync().await;
    bob.sync().await;
}

#[actix_web::test]
async fn a_whisper_needs_no_shared_room() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    let mut bob = app.member("bob", "lobby").await;

    ann.send(json!({"type": "whisper", "to": bob.id, "text": "hello from outside"}))
        .await;
    let own_copy = ann.expect("whisper").await;
    assert_no_ref(&own_copy);
    let bobs_copy = bob.expect("whisper").await;
    assert_eq!(bobs_copy["from"]["id"], ann.id.as_str());
    assert_eq!(bobs_copy["text"], "hello from outside");
    assert_eq!(bobs_copy, own_copy);
}

#[actix_web::test]
async fn whisper_to_an_unknown_or_departed_id_is_unknown_member() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let bob_id = bob.id.clone();

    ann.send(json!({"type": "whisper", "to": "999999", "text": "hi", "ref": "w1"}))
        .await;
    assert_eq!(ann.expect_error("unknown_member").await["ref"], "w1");

    ann.send(json!({"type": "whisper", "to": "nobody", "text": "hi", "ref": "w2"}))
        .await;
    assert_eq!(ann.expect_error("unknown_member").await["ref"], "w2");

    bob.close().await;
    ann.expect("member_left").await;
    ann.send(json!({"type": "whisper", "to": bob_id, "text": "hi", "ref": "w3"}))
        .await;
    assert_eq!(ann.expect_error("unknown_member").await["ref"], "w3");
}

#[actix_web::test]
async fn rename_sends_member_renamed_with_the_old_name_to_every_room_of_the_sender() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let side = join(&mut ann, "side").await;
    let ann_in_side = side["members"][0].clone();
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let mut carol = app.member("carol", "side").await;
    ann.expect("member_joined").await;
    let mut dave = app.member("dave", "elsewhere").await;

    ann.send(json!({"type": "rename", "name": "anna", "ref": "n1"}))
        .await;
    let mut own_copies = vec![
        ann.expect("member_renamed").await,
        ann.expect("member_renamed").await,
    ];
    own_copies.sort_by(|a, b| a["room"].as_str().cmp(&b["room"].as_str()));
    assert_eq!(own_copies[0]["room"], "lobby");
    assert_eq!(own_copies[1]["room"], "side");
    for copy in &own_copies {
        assert_eq!(copy["ref"], "n1");
        assert_eq!(copy["old_name"], "ann");
        assert_eq!(copy["member"]["id"], ann.id.as_str());
        assert_eq!(copy["member"]["name"], "anna");
        assert_wire_timestamp(&copy["member"]["joined_at"]);
    }
    // The member is as listed in that room, under its new name.
    assert_eq!(
        own_copies[1]["member"]["joined_at"],
        ann_in_side["joined_at"]
    );

    let in_lobby = bob.expect("member_renamed").await;
    assert_no_ref(&in_lobby);
    assert_eq!(in_lobby["room"], "lobby");
    assert_eq!(in_lobby["old_name"], "ann");
    assert_eq!(in_lobby["member"], own_copies[0]["member"]);

    let in_side = carol.expect("member_renamed").await;
    assert_no_ref(&in_side);
    assert_eq!(in_side["room"], "side");
    assert_eq!(in_side["member"], own_copies[1]["member"]);

    // Each room hears of it once; a room ann is not in hears nothing.
    ann.sync().await;
    bob.sync().await;
    carol.sync().await;
    dave.sync().await;
}

#[actix_web::test]
async fn messages_after_a_rename_carry_the_new_name() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;

    ann.send(json!({"type": "rename", "name": "anna"})).await;
    ann.expect("member_renamed").await;
    bob.expect("member_renamed").await;

    ann.send(json!({"type": "say", "room": "lobby", "text": "call me anna"}))
        .await;
    assert_eq!(ann.expect("message").await["from"]["name"], "anna");
    let bobs_copy = bob.expect("message").await;
    assert_eq!(bobs_copy["from"]["id"], ann.id.as_str());
    assert_eq!(bobs_copy["from"]["name"], "anna");

    ann.send(json!({"type": "whisper", "to": bob.id, "text": "still me"}))
        .await;
    ann.expect("whisper").await;
    assert_eq!(bob.expect("whisper").await["from"]["name"], "anna");

    bob.send(json!({"type": "who", "room": "lobby"})).await;
    let presence = bob.expect("presence").await;
    let listed = presence["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == ann.id.as_str())
        .unwrap_or_else(|| panic!("ann is listed: {presence}"));
    assert_eq!(listed["name"], "anna");
}

#[actix_web::test]
async fn a_rename_in_no_room_is_confirmed_without_a_room_field() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;

    ann.send(json!({"type": "rename", "name": "  anna  ", "ref": "n1"}))
        .await;
    let renamed = ann.expect("member_renamed").await;
    assert!(renamed.get("room").is_none(), "no room: {renamed}");
    assert_eq!(renamed["ref"], "n1");
    assert_eq!(renamed["old_name"], "ann");
    assert_eq!(renamed["member"]["id"], ann.id.as_str());
    // Display names are trimmed.
    assert_eq!(renamed["member"]["name"], "anna");
    assert_wire_timestamp(&renamed["member"]["joined_at"]);

    // The new name sticks: the next join lists it.
    let joined = join(&mut ann, "lobby").await;
    assert_eq!(joined["members"][0]["name"], "anna");
}

#[actix_web::test]
async fn a_plain_text_frame_is_answered_with_echo() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    ann.send_text("hello").await;
    let echo = ann.expect("echo").await;
    assert_eq!(echo["text"], "hello");
    assert_wire_timestamp(&echo["at"]);
    assert_no_ref(&echo);
}

#[actix_web::test]
async fn json_that_is_not_an_object_is_answered_with_echo() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    for text in [
        "[1,2]",
        "42",
        "\"just a string\"",
        "null",
        "[{\"type\": \"rooms\"}]",
    ] {
        ann.send_text(text).await;
        let echo = ann.expect("echo").await;
        assert_eq!(echo["text"], text, "echo of {text}");
        assert_wire_timestamp(&echo["at"]);
    }
}
