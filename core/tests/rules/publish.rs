//! `publish`: a backend posts into a room as `server`; the room must exist
//! ([`UnknownRoom`] otherwise, and nothing is created).

use std::sync::Arc;

use hubbub_core::{
    protocol::{ChatMessage, Event, Sender},
    UnknownRoom,
};
use serde_json::json;

use crate::helpers::*;

#[test]
fn publishing_reaches_every_member_as_server_with_the_next_seq() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    let outsider = hub.member_of("cid", "elsewhere");
    hub.apply(ann, say("lobby", "first"));

    let (message, out) = hub
        .publish("lobby", "from the backend ☃")
        .expect("lobby exists");

    assert_eq!(
        *message,
        ChatMessage {
            room: room("lobby"),
            from: Sender::Server,
            text: "from the backend ☃".into(),
            at: out.at,
            seq: 2,
        }
    );
    // No requester: everyone in the room alike, nobody outside it.
    assert_eq!(out.trace(), ["message lobby -> [ann bob]"]);
    assert_eq!(out.received_by(ann), [Event::Message(message.clone())]);
    assert_eq!(out.received_by(bob), [Event::Message(message.clone())]);
    assert!(out.received_by(outsider).is_empty());
    assert_eq!(
        wire(&Event::Message(message.clone()))["from"],
        json!({"id": "server", "name": "server"})
    );

    // Kept in history like any message.
    let history = hub
        .state()
        .whole_room(&room("lobby"))
        .unwrap()
        .history
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1], Event::Message(message));
}

#[test]
fn the_published_message_is_the_one_sent() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "lobby");
    let (message, out) = hub.publish("lobby", "x").unwrap();
    match out.events().as_slice() {
        [Event::Message(sent)] => assert!(Arc::ptr_eq(sent, &message), "shared, not copied"),
        other => panic!("one message expected: {other:?}"),
    }
}

#[test]
fn publishing_into_a_room_that_does_not_exist_is_unknown_room_and_creates_nothing() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "lobby");
    let before = hub.snapshot();

    // Room names are case-sensitive.
    for name in ["nowhere", "Lobby"] {
        assert_eq!(
            hub.publish(name, "anyone?").err(),
            Some(UnknownRoom),
            "{name}"
        );
        assert_eq!(hub.snapshot(), before, "{name}");
    }
}

#[test]
fn publishing_into_a_room_its_last_member_left_is_unknown_room() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, say("lobby", "bye"));
    hub.apply(ann, leave("lobby"));

    assert_eq!(hub.publish("lobby", "too late").err(), Some(UnknownRoom));
    assert!(hub.state().all_rooms().is_empty());
}

#[test]
fn published_and_said_messages_share_the_rooms_seq() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let mut seen = Vec::new();
    for i in 0..3 {
        seen.extend(
            hub.apply(ann, say("lobby", &format!("said {i}")))
                .received_by(ann),
        );
        let (_, out) = hub.publish("lobby", &format!("published {i}")).unwrap();
        seen.extend(out.received_by(ann));
    }
    assert_eq!(seqs(&seen), [1, 2, 3, 4, 5, 6]);
}
