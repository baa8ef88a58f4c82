//! Rooms that last: an empty room is kept `room_ttl_ms` after it was last used (its last
//! member left, or its last message), with its `seq`, `epoch` and history; looking at it
//! does not extend it. At `max_rooms_total` the empty room idle longest makes room, and
//! when every room is occupied a new one is refused. Kept history has a total budget.

use hubbub_core::protocol::{ErrorCode, Event, RoomCount};

use crate::helpers::*;

/// Each operation is a second on the test clock: a TTL of 5 s is five operations.
fn kept_five_seconds() -> TestHub {
    TestHub::with(|s| s.room_ttl_ms = 5_000)
}

#[test]
fn an_empty_room_is_kept_for_its_ttl_with_its_seq_and_history_then_goes() {
    let mut hub = kept_five_seconds();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, say("lobby", "one"));
    hub.apply(ann, say("lobby", "two"));
    let left = hub.apply(ann, leave("lobby"));
    // Nobody to tell, but the room stays.
    assert_eq!(
        left.trace(),
        ["unsubscribe ann lobby", "left lobby -> reply:ann"]
    );
    let view = hub.state().whole_room(&room("lobby")).expect("kept");
    assert_eq!((view.member_count, view.history.unwrap().len()), (0, 2));
    assert_eq!(
        hub.apply(ann, rooms()).reply(),
        Event::Rooms {
            rooms: vec![RoomCount {
                name: room("lobby"),
                members: 0
            }],
            next: None
        },
        "rooms lists kept rooms"
    );
    // Swept at 2, 3 and 4 s after the leave: kept.
    for _ in 0..3 {
        hub.expire();
        assert!(hub.state().whole_room(&room("lobby")).is_some());
    }
    // 5 s after: gone.
    hub.expire();
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
}

#[test]
fn a_rejoin_within_the_ttl_goes_on_from_the_rooms_seq_with_its_epoch() {
    let mut hub = kept_five_seconds();
    let ann = hub.member_of("ann", "lobby");
    let (epoch, _, _) = resumed(&hub.apply(ann, join("lobby")).reply());
    hub.apply(ann, say("lobby", "one"));
    hub.apply(ann, leave("lobby"));
    let joined = hub.apply(ann, join("lobby")).reply();
    assert_eq!(resumed(&joined), (epoch.clone(), 1, None));
    assert_eq!(history_in(&joined).len(), 1);
    assert_eq!(seqs(&hub.apply(ann, say("lobby", "two")).events()), [2]);
}

#[test]
fn looking_at_an_empty_room_does_not_extend_it() {
    let mut hub = TestHub::with(|s| {
        s.room_ttl_ms = 5_000;
        s.max_rooms_per_connection = 1;
    });
    let bob = hub.member_of("bob", "elsewhere");
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, leave("lobby"));
    // Looks a second apart: who, the views, rooms, and a join refused at the
    // connection's room limit (bob is in as many rooms as he may be).
    hub.apply(ann, who("lobby"));
    let _ = hub.state().whole_room(&room("lobby"));
    hub.apply(ann, rooms());
    let refused = hub.apply(bob, join("lobby"));
    assert_eq!(refused.trace(), ["error too_many_rooms -> reply:bob"]);
    hub.apply(ann, who("lobby"));
    // Five seconds after the leave.
    hub.expire();
    assert_eq!(hub.state().whole_room(&room("lobby")), None, "gone on time");
}

#[test]
fn a_message_into_an_empty_room_extends_it() {
    let mut hub = kept_five_seconds();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, leave("lobby"));
    hub.expire();
    hub.expire();
    hub.publish("lobby", "still used").unwrap();
    for _ in 0..4 {
        hub.expire();
        assert!(hub.state().whole_room(&room("lobby")).is_some());
    }
    hub.expire();
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
}

#[test]
fn with_a_ttl_of_zero_a_room_goes_when_its_last_member_leaves() {
    let mut hub = TestHub::with(|s| s.room_ttl_ms = 0);
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, leave("lobby"));
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
}

#[test]
fn at_the_room_cap_the_empty_room_idle_longest_makes_room() {
    let mut hub = TestHub::with(|s| {
        s.room_ttl_ms = 60_000;
        s.max_rooms_total = 2;
    });
    let ann = hub.connect("ann");
    for name in ["old", "newer"] {
        hub.apply(ann, join(name));
        hub.apply(ann, leave(name));
    }
    hub.apply(ann, join("third"));
    let kept: Vec<String> = hub
        .state()
        .all_rooms()
        .iter()
        .map(|room| room.name.to_string())
        .collect();
    assert_eq!(kept, ["newer", "third"], "the idlest room went");
}

#[test]
fn when_every_kept_room_is_occupied_a_new_one_is_refused_with_rooms_full() {
    let mut hub = TestHub::with(|s| {
        s.room_ttl_ms = 60_000;
        s.max_rooms_total = 2;
    });
    let _ann = hub.member_of("ann", "one");
    let bob = hub.member_of("bob", "two");
    let before = hub.snapshot();
    let out = hub.apply(bob, join("three"));
    assert_eq!(out.trace(), ["error rooms_full -> reply:bob"]);
    assert!(matches!(
        out.reply(),
        Event::Error {
            code: ErrorCode::RoomsFull,
            ..
        }
    ));
    assert_eq!(hub.snapshot(), before, "nothing changed");
    assert!(
        hub.publish("three", "x").is_err(),
        "a publish is refused too"
    );
    // An existing room can still be joined.
    assert_eq!(
        hub.apply(bob, join("one")).trace(),
        [
            "subscribe bob one",
            "joined one -> reply:bob",
            "member_joined one -> [ann]"
        ]
    );
}

#[test]
fn past_the_history_budget_idle_rooms_lose_their_history_first_then_the_largest_its_oldest() {
    // Room for about ten 1 KB messages in all.
    let mut hub = TestHub::with(|s| {
        s.room_ttl_ms = 60_000;
        s.history_max_bytes = 10 * (1024 + 160);
    });
    let big = "x".repeat(1024);
    let ann = hub.member_of("ann", "busy");
    let bob = hub.member_of("bob", "idle");
    for _ in 0..3 {
        hub.apply(bob, say("idle", &big));
    }
    hub.apply(bob, leave("idle"));
    for _ in 0..7 {
        hub.apply(ann, say("busy", &big));
    }
    assert!(hub.state().history_bytes() <= 10 * (1024 + 160));
    // One more: over budget. The idle room's history goes first.
    hub.apply(ann, say("busy", &big));
    let idle = hub.state().whole_room(&room("idle")).unwrap();
    assert_eq!(
        idle.history.unwrap().len(),
        0,
        "the idle room's history went first"
    );
    let busy = hub.state().whole_room(&room("busy")).unwrap();
    assert_eq!(
        busy.history.unwrap().len(),
        8,
        "the busy room kept all of its"
    );
    // Keep going: now the busy room's oldest messages go; the budget holds.
    for _ in 0..20 {
        hub.apply(ann, say("busy", &big));
        assert!(hub.state().history_bytes() <= 10 * (1024 + 160));
    }
    let history = hub
        .state()
        .whole_room(&room("busy"))
        .unwrap()
        .history
        .unwrap();
    let kept = seqs(&history);
    assert!(!kept.is_empty() && kept.len() < 28);
    assert_eq!(*kept.last().unwrap(), 28, "the newest are kept");
}
