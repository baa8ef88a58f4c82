//! Rooms on `/ws`: `join`/`joined`, `leave`/`left`, `say`/`message` with its `seq` and
//! history, presence (`who`, `rooms`), rooms vanishing with their last member, and the
//! per-connection room limit.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{
    protocol::{frame::coding::CloseCode, CloseFrame},
    Message,
};

use crate::helpers::{spawn_app, spawn_app_with, Client, TestApp};

/// Asserts a wire timestamp: RFC 3339, UTC (`Z`), exactly three fractional digits, and
/// recent (so a constant or a local time cannot pass).
pub(crate) fn assert_wire_timestamp(at: &Value) {
    let text = at
        .as_str()
        .unwrap_or_else(|| panic!("`at` is a string: {at}"));
    let without_zone = text
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("UTC with a `Z` suffix: {text}"));
    let (_, fraction) = without_zone
        .rsplit_once('.')
        .unwrap_or_else(|| panic!("milliseconds after a '.': {text}"));
    assert!(
        fraction.len() == 3 && fraction.chars().all(|c| c.is_ascii_digit()),
        "exactly three fractional digits: {text}"
    );
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("RFC 3339 ({err}): {text}"));
    let age = chrono::Utc::now().signed_duration_since(parsed);
    assert!(
        age.num_seconds().abs() < 60,
        "a timestamp from now, not {text}"
    );
}

/// A member list as a set: sorted by id, since the protocol promises no order.
fn by_id(members: &Value) -> Vec<Value> {
    let mut members = members
        .as_array()
        .unwrap_or_else(|| panic!("members is an array: {members}"))
        .clone();
    members.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    members
}

/// The entry for `client` in a member list.
fn entry_of(members: &Value, client: &Client) -> Value {
    members
        .as_array()
        .and_then(|members| members.iter().find(|m| m["id"] == client.id.as_str()))
        .unwrap_or_else(|| panic!("{} ({}) is listed in {members}", client.name, client.id))
        .clone()
}

/// Sends `say` and returns the sender's own copy of the `message`.
async fn say(client: &mut Client, room: &str, text: &str) -> Value {
    client
        .send(json!({"type": "say", "room": room, "text": text}))
        .await;
    client.expect("message").await
}

/// The `rooms` reply, sorted by name (the protocol promises no order).
async fn room_counts(client: &mut Client) -> Vec<Value> {
    client.send(json!({"type": "rooms"})).await;
    let reply = client.expect("rooms").await;
    let mut rooms = reply["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("rooms is an array: {reply}"))
        .clone();
    rooms.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    rooms
}

#[actix_web::test]
async fn join_replies_joined_with_every_member_and_the_others_get_member_joined() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.connect("?name=bob").await;

    bob.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = bob.expect("joined").await;
    assert_eq!(joined["room"], "lobby");
    assert_eq!(joined["history"], json!([]));
    let members = by_id(&joined["members"]);
    assert_eq!(members.len(), 2, "ann and bob: {joined}");
    for (member, (id, name)) in members
        .iter()
        .zip([(ann.id.as_str(), "ann"), (bob.id.as_str(), "bob")])
    {
        assert_eq!(member["id"], id);
        assert_eq!(member["name"], name);
        assert_wire_timestamp(&member["joined_at"]);
        assert_eq!(
            member.as_object().unwrap().len(),
            3,
            "id, name, joined_at: {member}"
        );
    }

    let announced = ann.expect("member_joined").await;
    assert_eq!(announced["room"], "lobby");
    assert_eq!(announced["member"], entry_of(&joined["members"], &bob));

    // The joiner is not told about itself.
    bob.sync().await;
}

#[actix_web::test]
async fn joining_a_room_already_joined_repeats_joined_without_a_second_member_joined() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.connect("?name=bob").await;
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    let first = bob.expect("joined").await;
    ann.expect("member_joined").await;

    bob.send(json!({"type": "join", "room": "lobby"})).await;
    let again = bob.expect("joined").await;
    assert_eq!(again["room"], "lobby");
    assert_eq!(by_id(&again["members"]), by_id(&first["members"]));
    assert_eq!(again["history"], json!([]));

    // Bob's `joined` came from the hub, so it has handled the join: ann heard nothing.
    ann.sync().await;
    let counts = room_counts(&mut ann).await;
    assert_eq!(counts, vec![json!({"name": "lobby", "members": 2})]);
}

#[actix_web::test]
async fn room_names_are_case_sensitive() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "Lobby").await;
    ann.sync().await;
    bob.sync().await;
    let counts = room_counts(&mut ann).await;
    assert_eq!(
        counts,
        vec![
            json!({"name": "Lobby", "members": 1}),
            json!({"name": "lobby", "members": 1}),
        ]
    );
}

#[actix_web::test]
async fn leave_replies_left_and_the_others_get_member_left_with_reason_leave() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.connect("?name=bob").await;
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = bob.expect("joined").await;
    ann.expect("member_joined").await;

    bob.send(json!({"type": "leave", "room": "lobby"})).await;
    assert_eq!(
        bob.expect("left").await,
        json!({"type": "left", "room": "lobby"})
    );

    let departed = ann.expect("member_left").await;
    assert_eq!(departed["room"], "lobby");
    assert_eq!(departed["reason"], "leave");
    assert_eq!(departed["member"], entry_of(&joined["members"], &bob));

    // The leaver hears nothing more from the room, and is no longer listed in it.
    say(&mut ann, "lobby", "still here?").await;
    bob.sync().await;
    ann.send(json!({"type": "who", "room": "lobby"})).await;
    let presence = ann.expect("presence").await;
    assert_eq!(by_id(&presence["members"]).len(), 1, "{presence}");
    assert_eq!(presence["members"][0]["id"], ann.id.as_str());
}

#[actix_web::test]
async fn say_reaches_every_member_including_the_sender_with_the_next_seq() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    ann.send(json!({"type": "join", "room": "lobby"})).await;
    let ann_joined = ann.expect("joined").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let mut carol = app.member("carol", "elsewhere").await;

    let own_copy = say(&mut ann, "lobby", "hello, lobby").await;
    assert_eq!(own_copy["room"], "lobby");
    assert_eq!(own_copy["text"], "hello, lobby");
    assert_eq!(own_copy["seq"], 1);
    assert_eq!(own_copy["from"]["id"], ann.id.as_str());
    assert_eq!(own_copy["from"]["name"], "ann");
    assert_eq!(own_copy["from"], entry_of(&ann_joined["members"], &ann));
    assert_wire_timestamp(&own_copy["at"]);

    let bobs_copy = bob.expect("message").await;
    assert_eq!(bobs_copy, own_copy);

    // One copy each; a member of another room gets nothing.
    ann.sync().await;
    bob.sync().await;
    carol.sync().await;
}

#[actix_web::test]
async fn seq_starts_at_one_and_has_no_gaps_across_senders() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;

    // Both post at once, without waiting: the hub still numbers them 1..=10.
    for i in 0..5 {
        ann.send(json!({"type": "say", "room": "lobby", "text": format!("ann {i}")}))
            .await;
        bob.send(json!({"type": "say", "room": "lobby", "text": format!("bob {i}")}))
            .await;
    }
    let mut seen_by_ann = Vec::new();
    let mut seen_by_bob = Vec::new();
    for _ in 0..10 {
        seen_by_ann.push(ann.expect("message").await);
        seen_by_bob.push(bob.expect("message").await);
    }
    let seqs: Vec<u64> = seen_by_ann
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
    // Everyone sees the same messages in the same order.
    assert_eq!(seen_by_ann, seen_by_bob);
    // Each sender's messages keep their order.
    for sender in ["ann", "bob"] {
        let texts: Vec<&str> = seen_by_ann
            .iter()
            .filter(|m| m["from"]["name"] == sender)
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..5).map(|i| format!("{sender} {i}")).collect();
        assert_eq!(texts, expected);
    }
}

#[actix_web::test]
async fn joined_carries_the_last_history_len_messages_oldest_first() {
    let app = spawn_app_with(|c| c.history_len = 3).await;
    let mut ann = app.member("ann", "lobby").await;
    let mut posted = Vec::new();
    for i in 1..=5 {
        posted.push(say(&mut ann, "lobby", &format!("m{i}")).await);
    }

    let mut bob = app.connect("?name=bob").await;
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = bob.expect("joined").await;
    let history = joined["history"].as_array().expect("history is an array");
    assert_eq!(history.len(), 3, "{joined}");
    for (entry, (seq, text)) in history.iter().zip([(3, "m3"), (4, "m4"), (5, "m5")]) {
        assert_eq!(entry["type"], "message");
        assert_eq!(entry["room"], "lobby");
        assert_eq!(entry["seq"], seq);
        assert_eq!(entry["text"], text);
        assert_eq!(entry["from"]["id"], ann.id.as_str());
    }
    // History entries are the very `message` events the members were sent.
    assert_eq!(history.as_slice(), &posted[2..]);
}

#[actix_web::test]
async fn with_room_ttl_0_a_room_disappears_when_its_last_member_leaves_and_starts_afresh() {
    let app = spawn_app_with(|config| config.room_ttl = std::time::Duration::ZERO).await;
    let mut ann = app.member("ann", "lobby").await;
    say(&mut ann, "lobby", "one").await;
    assert_eq!(say(&mut ann, "lobby", "two").await["seq"], 2);

    ann.send(json!({"type": "leave", "room": "lobby"})).await;
    ann.expect("left").await;
    assert_eq!(room_counts(&mut ann).await, Vec::<Value>::new());

    ann.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["history"], json!([]));
    assert_eq!(by_id(&joined["members"]).len(), 1);
    assert_eq!(say(&mut ann, "lobby", "fresh").await["seq"], 1);
}

#[actix_web::test]
async fn disconnect_sends_member_left_with_reason_disconnect() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.connect("?name=bob").await;
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = bob.expect("joined").await;
    ann.expect("member_joined").await;
    let bob_entry = entry_of(&joined["members"], &bob);

    bob.close().await;

    let departed = ann.expect("member_left").await;
    assert_eq!(departed["room"], "lobby");
    assert_eq!(departed["reason"], "disconnect");
    assert_eq!(departed["member"], bob_entry);
    assert_eq!(
        room_counts(&mut ann).await,
        vec![json!({"name": "lobby", "members": 1})]
    );
}

#[actix_web::test]
async fn what_a_member_says_right_before_closing_arrives_before_its_departure() {
    last_words_arrive_before_the_departure(&spawn_app().await).await;
}

/// A connection's frames reach the hub in the order it sent them, its close last,
/// however the server batches them on the way (and whenever its backend answers: also
/// run over a late backend in `backend_seam.rs`).
pub async fn last_words_arrive_before_the_departure(app: &TestApp) {
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    for i in 0..20 {
        bob.send(json!({"type": "say", "room": "lobby", "text": format!("last words {i}")}))
            .await;
    }
    bob.send(json!({"type": "leave", "room": "lobby"})).await;
    // A complete closing handshake: bob waits for the server's close, reading what
    // came before it (a client that drops its socket with unread data gets it reset).
    bob.send_message(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await;
    bob.expect_close(1000).await;

    for i in 0..20 {
        let message = ann.expect("message").await;
        assert_eq!(message["text"], format!("last words {i}"));
        assert_eq!(message["seq"], i + 1);
    }
    let departed = ann.expect("member_left").await;
    assert_eq!(departed["reason"], "leave");
    ann.sync().await;
}

#[actix_web::test]
async fn with_room_ttl_0_a_room_disappears_when_its_last_member_disconnects() {
    let app = spawn_app_with(|config| config.room_ttl = std::time::Duration::ZERO).await;
    let mut ann = app.member("ann", "lobby").await;
    say(&mut ann, "lobby", "before").await;
    ann.send(json!({"type": "join", "room": "side"})).await;
    ann.expect("joined").await;
    let mut bob = app.member("bob", "side").await;
    ann.expect("member_joined").await;

    ann.close().await;

    // Bob hearing of it means the hub has handled the whole disconnect.
    let departed = bob.expect("member_left").await;
    assert_eq!(departed["room"], "side");
    assert_eq!(departed["reason"], "disconnect");
    assert_eq!(
        room_counts(&mut bob).await,
        vec![json!({"name": "side", "members": 1})]
    );

    // Recreated, "lobby" starts over: no history, `seq` from 1.
    let mut carol = app.connect("?name=carol").await;
    carol.send(json!({"type": "join", "room": "lobby"})).await;
    assert_eq!(carol.expect("joined").await["history"], json!([]));
    assert_eq!(say(&mut carol, "lobby", "anyone?").await["seq"], 1);
}

#[actix_web::test]
async fn who_replies_presence_with_the_rooms_members() {
    let app = spawn_app().await;
    let mut ann = app.connect("?name=ann").await;
    ann.send(json!({"type": "join", "room": "lobby"})).await;
    ann.expect("joined").await;
    let mut bob = app.connect("?name=bob").await;
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = bob.expect("joined").await;
    ann.expect("member_joined").await;
    let _carol = app.member("carol", "elsewhere").await;

    ann.send(json!({"type": "who", "room": "lobby"})).await;
    let presence = ann.expect("presence").await;
    assert_eq!(presence["room"], "lobby");
    assert_eq!(by_id(&presence["members"]), by_id(&joined["members"]));
    assert_eq!(by_id(&presence["members"]).len(), 2);
    assert_eq!(presence["member_count"], 2);
    assert_eq!(joined["member_count"], 2);

    ann.send(json!({"type": "who", "room": "empty"})).await;
    assert_eq!(
        ann.expect("presence").await,
        json!({"type": "presence", "room": "empty", "members": [], "member_count": 0, "next": null})
    );
}

#[actix_web::test]
async fn rooms_lists_every_room_with_its_member_count() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    ann.send(json!({"type": "join", "room": "side"})).await;
    ann.expect("joined").await;
    let _bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let mut carol = app.connect("?name=carol").await;

    assert_eq!(
        room_counts(&mut carol).await,
        vec![
            json!({"name": "lobby", "members": 2}),
            json!({"name": "side", "members": 1}),
        ]
    );
}

#[actix_web::test]
async fn a_join_past_max_rooms_is_refused_with_too_many_rooms() {
    let app = spawn_app_with(|c| c.max_rooms_per_connection = 2).await;
    let mut ann = app.member("ann", "one").await;
    ann.send(json!({"type": "join", "room": "two"})).await;
    ann.expect("joined").await;

    ann.send(json!({"type": "join", "room": "three"})).await;
    ann.expect_error("too_many_rooms").await;

    // Not in the third room: nobody is, and ann cannot speak there.
    ann.send(json!({"type": "who", "room": "three"})).await;
    assert_eq!(ann.expect("presence").await["members"], json!([]));
    ann.send(json!({"type": "say", "room": "three", "text": "hi"}))
        .await;
    ann.expect_error("not_in_room").await;
    assert_eq!(
        room_counts(&mut ann).await,
        vec![
            json!({"name": "one", "members": 1}),
            json!({"name": "two", "members": 1}),
        ]
    );

    // At the limit, re-joining a room ann is in still works...
    ann.send(json!({"type": "join", "room": "two"})).await;
    assert_eq!(ann.expect("joined").await["room"], "two");
    // ...and leaving one makes room for another.
    ann.send(json!({"type": "leave", "room": "one"})).await;
    ann.expect("left").await;
    ann.send(json!({"type": "join", "room": "three"})).await;
    assert_eq!(ann.expect("joined").await["room"], "three");
}

#[actix_web::test]
async fn without_tokens_every_connection_is_its_own_user_so_first_and_last_are_true() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    // The same name twice is still two users: names are not identities.
    let bob = app.member("ann", "lobby").await;
    let joined = ann.expect("member_joined").await;
    assert_eq!(joined["first"], true);
    bob.close().await;
    let left = ann.expect("member_left").await;
    assert_eq!(left["last"], true);
}
