//! `join`: the joiner is subscribed and gets `joined` (every member, recent history),
//! then the others get `member_joined`; a repeated join repeats `joined` and announces
//! nothing; the per-connection room limit (`too_many_rooms`).

use hubbub_core::{
    protocol::{ErrorCode, Event, RoomCount},
    Counts,
};
use serde_json::json;

use crate::helpers::*;

#[test]
fn a_first_join_creates_the_room_and_lists_only_the_joiner() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");

    let out = hub.apply(ann, join("lobby"));

    // Nobody else is there: nothing is announced.
    assert_eq!(
        out.trace(),
        ["subscribe ann lobby", "joined lobby -> reply:ann"]
    );
    assert_eq!(
        out.reply(),
        Event::Joined {
            room: room("lobby"),
            members: vec![member(ann, "ann", out.at)],
            member_count: 1,
            history: vec![],
            epoch: "test-1".into(),
            seq: 0,
            recovered: None,
        }
    );
    assert_eq!(
        hub.state().counts(),
        Counts {
            members: 1,
            rooms: 1
        }
    );
}

#[test]
fn join_subscribes_replies_joined_then_tells_the_others_but_not_the_joiner() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_joined_at = hub.apply(ann, join("lobby")).at;
    let carol = hub.member_of("carol", "elsewhere");
    let bob = hub.connect("bob");

    let out = hub.apply(bob, join("lobby"));

    assert_eq!(
        out.trace(),
        [
            "subscribe bob lobby",
            "joined lobby -> reply:bob",
            "member_joined lobby -> [ann]"
        ]
    );
    let bob_in_lobby = member(bob, "bob", out.at);
    assert_eq!(
        out.received_by(bob),
        [Event::Joined {
            room: room("lobby"),
            members: vec![member(ann, "ann", ann_joined_at), bob_in_lobby.clone()],
            member_count: 2,
            history: vec![],
            epoch: "test-1".into(),
            seq: 0,
            recovered: None,
        }]
    );
    // The others hear of the joiner as `joined` lists it.
    assert_eq!(
        out.received_by(ann),
        [Event::MemberJoined {
            room: room("lobby"),
            member: bob_in_lobby,
            first: true,
        }]
    );
    assert!(out.received_by(carol).is_empty());
}

#[test]
fn a_member_on_the_wire_is_its_id_name_and_join_time() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let joined = hub.apply(ann, join("lobby")).reply();
    // Connected at 09:00:00, joined a tick later; ids are decimal strings.
    assert_eq!(
        wire(&joined),
        json!({
            "type": "joined",
            "room": "lobby",
            "members": [{"id": "1", "name": "ann", "joined_at": "2026-12-01T09:00:01.000Z"}],
            "member_count": 1,
            "history": [],
            "epoch": "test-1",
            "seq": 0,
        })
    );
}

#[test]
fn a_repeated_join_announces_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.connect("bob");
    let first = hub.apply(bob, join("lobby"));

    let again = hub.apply(bob, join("lobby"));

    // No second subscription, no `member_joined`: only `joined` again, as before.
    assert_eq!(again.trace(), ["joined lobby -> reply:bob"]);
    assert_eq!(again.reply(), first.reply());
    assert!(again.received_by(ann).is_empty());
    let again = hub.apply(ann, rooms());
    assert_eq!(
        again.reply(),
        Event::Rooms {
            rooms: vec![RoomCount {
                name: room("lobby"),
                members: 2
            }],
            next: None
        }
    );
}

#[test]
fn a_repeated_join_keeps_the_first_join_time_and_shows_the_history() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let joined_at = hub.apply(ann, join("lobby")).at;
    let said = hub.apply(ann, say("lobby", "one")).events();

    let again = hub.apply(ann, join("lobby"));

    assert_eq!(again.trace(), ["joined lobby -> reply:ann"]);
    assert_eq!(
        again.reply(),
        Event::Joined {
            room: room("lobby"),
            members: vec![member(ann, "ann", joined_at)],
            member_count: 1,
            history: said,
            epoch: "test-1".into(),
            seq: 1,
            recovered: None,
        }
    );
}

#[test]
fn members_are_listed_in_id_order_each_with_its_own_join_time() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let bob = hub.connect("bob");
    let carol = hub.connect("carol");
    let carol_at = hub.apply(carol, join("lobby")).at;
    let ann_at = hub.apply(ann, join("lobby")).at;

    let out = hub.apply(bob, join("lobby"));

    assert_eq!(
        members_in(&out.reply()),
        [
            member(ann, "ann", ann_at),
            member(bob, "bob", out.at),
            member(carol, "carol", carol_at),
        ]
    );
    assert_eq!(
        out.trace(),
        [
            "subscribe bob lobby",
            "joined lobby -> reply:bob",
            "member_joined lobby -> [ann carol]"
        ]
    );
}

#[test]
fn names_need_not_be_unique_but_ids_are() {
    let mut hub = TestHub::new();
    let first = hub.connect("ann");
    let first_at = hub.apply(first, join("lobby")).at;
    let second = hub.connect("ann");

    let out = hub.apply(second, join("lobby"));

    assert_eq!(
        out.trace(),
        [
            "subscribe ann#2 lobby",
            "joined lobby -> reply:ann#2",
            "member_joined lobby -> [ann]"
        ]
    );
    assert_eq!(
        members_in(&out.reply()),
        [
            member(first, "ann", first_at),
            member(second, "ann", out.at)
        ]
    );
}

#[test]
fn joined_carries_the_last_history_len_messages_oldest_first() {
    let mut hub = TestHub::with(|s| s.history_len = 3);
    let ann = hub.member_of("ann", "lobby");
    let posted: Vec<Event> = (1..=5)
        .flat_map(|i| hub.apply(ann, say("lobby", &format!("m{i}"))).events())
        .collect();
    let bob = hub.connect("bob");

    let history = history_in(&hub.apply(bob, join("lobby")).reply());

    // The very `message` events the members were sent.
    assert_eq!(history, posted[2..]);
    assert_eq!(seqs(&history), [3, 4, 5]);
    assert_eq!(texts(&history), ["m3", "m4", "m5"]);
}

#[test]
fn with_a_history_len_of_zero_joined_has_no_history_but_seq_still_counts() {
    let mut hub = TestHub::with(|s| s.history_len = 0);
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, say("lobby", "one"));
    hub.apply(ann, say("lobby", "two"));
    let bob = hub.connect("bob");

    assert!(history_in(&hub.apply(bob, join("lobby")).reply()).is_empty());
    assert_eq!(seqs(&hub.apply(bob, say("lobby", "three")).events()), [3]);
}

#[test]
fn room_names_are_case_sensitive() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.connect("bob");

    let out = hub.apply(bob, join("Lobby"));

    assert_eq!(
        out.trace(),
        ["subscribe bob Lobby", "joined Lobby -> reply:bob"]
    );
    assert_eq!(
        hub.apply(ann, rooms()).reply(),
        Event::Rooms {
            rooms: vec![
                RoomCount {
                    name: room("Lobby"),
                    members: 1
                },
                RoomCount {
                    name: room("lobby"),
                    members: 1
                },
            ],
            next: None
        }
    );
}

#[test]
fn a_join_past_the_room_limit_is_too_many_rooms_and_changes_nothing() {
    let mut hub = TestHub::with(|s| s.max_rooms_per_connection = 2);
    let ann = hub.member_of("ann", "one");
    hub.apply(ann, join("two"));
    let bob = hub.connect("bob");
    let bob_joined_at = hub.apply(bob, join("three")).at;
    let before = hub.snapshot();

    // A room that exists (bob's) and one that does not.
    for name in ["three", "four"] {
        let out = hub.apply(ann, join(name));
        assert_eq!(out.trace(), ["error too_many_rooms -> reply:ann"], "{name}");
        let (code, message) = error_in(&out.reply());
        assert_eq!(code, ErrorCode::TooManyRooms);
        assert_eq!(message, "a connection may be in at most 2 rooms");
        assert_eq!(hub.snapshot(), before, "{name}");
    }

    // Not in the third room: only bob is, and ann cannot speak there.
    assert_eq!(
        members_in(&hub.apply(ann, who("three")).reply()),
        [member(bob, "bob", bob_joined_at)]
    );
    assert_eq!(
        hub.apply(ann, say("three", "hi")).trace(),
        ["error not_in_room -> reply:ann"]
    );
    assert_eq!(
        hub.apply(ann, who("four")).reply(),
        Event::Presence {
            room: room("four"),
            members: vec![],
            member_count: 0,
            next: None
        }
    );
}

#[test]
fn at_the_room_limit_a_room_one_is_in_can_be_joined_again_and_a_leave_makes_room() {
    let mut hub = TestHub::with(|s| s.max_rooms_per_connection = 2);
    let ann = hub.member_of("ann", "one");
    hub.apply(ann, join("two"));

    assert_eq!(
        hub.apply(ann, join("two")).trace(),
        ["joined two -> reply:ann"]
    );
    hub.apply(ann, leave("one"));
    assert_eq!(
        hub.apply(ann, join("three")).trace(),
        ["subscribe ann three", "joined three -> reply:ann"]
    );
    assert_eq!(
        hub.apply(ann, join("one")).trace(),
        ["error too_many_rooms -> reply:ann"]
    );
}

#[test]
fn the_room_limit_is_per_connection() {
    let mut hub = TestHub::with(|s| s.max_rooms_per_connection = 1);
    let ann = hub.member_of("ann", "one");
    let bob = hub.connect("bob");

    // Ann at her limit does not keep bob out, of her room or of another.
    assert_eq!(
        hub.apply(bob, join("one")).trace(),
        [
            "subscribe bob one",
            "joined one -> reply:bob",
            "member_joined one -> [ann]"
        ]
    );
    let carol = hub.connect("carol");
    assert_eq!(
        hub.apply(carol, join("two")).trace(),
        ["subscribe carol two", "joined two -> reply:carol"]
    );
    // A refused join into an occupied room is not announced there.
    assert_eq!(
        hub.apply(ann, join("two")).trace(),
        ["error too_many_rooms -> reply:ann"]
    );
}

#[test]
fn a_room_limit_of_zero_refuses_every_join() {
    let mut hub = TestHub::with(|s| s.max_rooms_per_connection = 0);
    let ann = hub.connect("ann");
    let out = hub.apply(ann, join("lobby"));
    assert_eq!(out.trace(), ["error too_many_rooms -> reply:ann"]);
    assert_eq!(
        error_in(&out.reply()).1,
        "a connection may be in at most 0 rooms"
    );
    assert!(hub.state().all_rooms().is_empty());
}
