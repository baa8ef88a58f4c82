//! `publish`: a backend posts into a room as `server`; a room that does not exist is
//! made (and kept like any empty room); an `Idempotency-Key` makes a retry publish
//! nothing.

use std::sync::Arc;

use hubbub_core::protocol::{ChatMessage, Event, Sender};
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
fn publishing_into_a_room_that_does_not_exist_makes_it_with_seq_one() {
    let mut hub = TestHub::with(|s| s.room_ttl_ms = 60_000);
    let _ann = hub.member_of("ann", "lobby");
    let (message, out) = hub.publish("news", "first").unwrap();
    assert_eq!(message.seq, 1);
    assert_eq!(out.trace(), ["message news -> []"]);
    let view = hub.state().whole_room(&room("news")).expect("made");
    assert!(view.members.is_empty());
    assert_eq!(view.history.unwrap(), [Event::Message(message)]);
    // Someone joining later gets it in `joined`.
    let bob = hub.connect("bob");
    assert_eq!(history_in(&hub.apply(bob, join("news")).reply()).len(), 1);
}

#[test]
fn publishing_into_a_room_its_last_member_left_goes_on_from_its_seq() {
    let mut hub = TestHub::with(|s| s.room_ttl_ms = 60_000);
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, say("lobby", "bye"));
    hub.apply(ann, leave("lobby"));

    let (message, _) = hub.publish("lobby", "still here").unwrap();
    assert_eq!(message.seq, 2);
}

#[test]
fn a_retry_with_the_same_idempotency_key_publishes_nothing_and_answers_the_first_seq() {
    let mut hub = TestHub::with(|s| s.idempotency_ttl_ms = 10_000);
    let ann = hub.member_of("ann", "lobby");
    let (first, out) = hub
        .publish_with_key("lobby", "deploy done", Some("k1"))
        .unwrap();
    assert_eq!(out.trace(), ["message lobby -> [ann]"]);
    let (again, out) = hub
        .publish_with_key("lobby", "deploy done", Some("k1"))
        .unwrap();
    assert!(out.is_empty(), "nothing published: {:?}", out.trace());
    assert!(Arc::ptr_eq(&first, &again), "the first attempt's message");
    // Another key, or the same key in another room, publishes.
    let (other, _) = hub.publish_with_key("lobby", "again", Some("k2")).unwrap();
    assert_eq!(other.seq, first.seq + 1);
    let (elsewhere, _) = hub.publish_with_key("side", "x", Some("k1")).unwrap();
    assert_eq!(elsewhere.seq, 1);
    // Forgotten after IDEMPOTENCY_TTL_MS (each operation is a second on the test clock).
    for _ in 0..10 {
        hub.apply(ann, say("lobby", "time passes"));
    }
    let (late, out) = hub
        .publish_with_key("lobby", "deploy done", Some("k1"))
        .unwrap();
    assert!(late.seq > other.seq);
    assert_eq!(out.trace(), ["message lobby -> [ann]"]);
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

#[test]
fn every_key_is_kept_its_whole_time_so_a_room_full_of_young_keys_refuses_a_new_one() {
    let mut hub = TestHub::with(|s| {
        s.idempotency_ttl_ms = 5_000;
        s.idempotency_keys_max = 2;
    });
    let ann = hub.member_of("ann", "lobby");
    hub.publish_with_key("lobby", "a", Some("k1")).unwrap();
    hub.publish_with_key("lobby", "b", Some("k2")).unwrap();
    let before = hub.snapshot();
    assert_eq!(
        hub.publish_with_key("lobby", "c", Some("k3")).err(),
        Some(hubbub_core::PublishRefused::TooManyKeys { max: 2 })
    );
    assert_eq!(hub.snapshot(), before, "nothing published");
    // A retry of a remembered key still answers; a publish without a key still goes.
    assert!(hub
        .publish_with_key("lobby", "a", Some("k1"))
        .unwrap()
        .1
        .is_empty());
    hub.publish("lobby", "no key").unwrap();
    // Once the first keys are older than the TTL, new ones fit again.
    for _ in 0..5 {
        hub.apply(ann, say("lobby", "time passes"));
    }
    hub.publish_with_key("lobby", "c", Some("k3")).unwrap();
}
