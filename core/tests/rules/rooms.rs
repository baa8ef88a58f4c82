//! `rooms`: every room, by name, with how many members it has, to whoever asks.

use hubbub_core::protocol::{Event, LeaveReason, RoomCount};
use serde_json::json;

use crate::helpers::*;

fn counts(of: &[(&str, usize)]) -> Event {
    Event::Rooms {
        rooms: of
            .iter()
            .map(|(name, members)| RoomCount {
                name: room(name),
                members: *members,
            })
            .collect(),
        next: None,
    }
}

#[test]
fn rooms_lists_every_room_by_name_with_its_member_count() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "side");
    hub.apply(ann, join("lobby"));
    let _bob = hub.member_of("bob", "lobby");
    let carol = hub.connect("carol");
    let before = hub.snapshot();

    let out = hub.apply(carol, rooms());

    assert_eq!(out.trace(), ["rooms -> reply:carol"]);
    assert_eq!(out.reply(), counts(&[("lobby", 2), ("side", 1)]));
    assert_eq!(
        wire(&out.reply()),
        json!({"type": "rooms", "rooms": [
            {"name": "lobby", "members": 2},
            {"name": "side", "members": 1},
        ], "next": null})
    );
    assert_eq!(hub.snapshot(), before);
}

#[test]
fn rooms_is_empty_while_nobody_is_in_a_room() {
    let mut hub = TestHub::new();
    let lonely = hub.connect("lonely");
    assert_eq!(hub.apply(lonely, rooms()).reply(), counts(&[]));
}

#[test]
fn rooms_follows_joins_leaves_and_disconnects() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    hub.apply(bob, join("side"));
    assert_eq!(
        hub.apply(ann, rooms()).reply(),
        counts(&[("lobby", 2), ("side", 1)])
    );

    hub.apply(ann, leave("lobby"));
    assert_eq!(
        hub.apply(ann, rooms()).reply(),
        counts(&[("lobby", 1), ("side", 1)])
    );

    hub.disconnect(bob, LeaveReason::Slow);
    assert_eq!(hub.apply(ann, rooms()).reply(), counts(&[]));
}
