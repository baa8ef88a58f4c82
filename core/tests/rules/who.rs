//! `who`: `presence` with a room's members, to whoever asks; a room that does not exist
//! has none and is not created by asking.

use hubbub_core::protocol::{Event, LeaveReason};
use serde_json::json;

use crate::helpers::*;

#[test]
fn who_replies_presence_with_the_rooms_members_as_joined_lists_them() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.connect("bob");
    let bob_joined = hub.apply(bob, join("lobby"));
    let _carol = hub.member_of("carol", "elsewhere");

    let out = hub.apply(ann, who("lobby"));

    assert_eq!(out.trace(), ["presence lobby -> reply:ann"]);
    assert_eq!(
        out.reply(),
        Event::Presence {
            room: room("lobby"),
            members: vec![
                member(ann, "ann", ann_at),
                member(bob, "bob", bob_joined.at)
            ],
            member_count: 2,
            next: None,
        }
    );
    assert_eq!(members_in(&out.reply()), members_in(&bob_joined.reply()));
}

#[test]
fn anyone_may_ask_who_is_in_a_room() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_at = hub.apply(ann, join("lobby")).at;
    let outsider = hub.connect("outsider");
    let before = hub.snapshot();

    let out = hub.apply(outsider, who("lobby"));

    assert_eq!(out.trace(), ["presence lobby -> reply:outsider"]);
    assert_eq!(members_in(&out.reply()), [member(ann, "ann", ann_at)]);
    assert_eq!(hub.snapshot(), before);
}

#[test]
fn who_of_a_room_that_does_not_exist_is_empty_and_creates_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let before = hub.snapshot();

    // Room names are case-sensitive: "Lobby" is not ann's room.
    for name in ["empty", "Lobby"] {
        let out = hub.apply(ann, who(name));
        assert_eq!(out.trace(), [format!("presence {name} -> reply:ann")]);
        assert_eq!(
            wire(&out.reply()),
            json!({"type": "presence", "room": name, "members": [], "member_count": 0, "next": null})
        );
        assert_eq!(hub.snapshot(), before);
    }
}

#[test]
fn who_follows_joins_renames_leaves_and_disconnects() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.member_of("bob", "lobby");
    let carol = hub.connect("carol");
    let carol_at = hub.apply(carol, join("lobby")).at;

    hub.apply(carol, rename("caz"));
    hub.apply(bob, leave("lobby"));
    assert_eq!(
        members_in(&hub.apply(ann, who("lobby")).reply()),
        [member(ann, "ann", ann_at), member(carol, "caz", carol_at)]
    );

    hub.apply(bob, join("lobby"));
    hub.disconnect(carol, LeaveReason::Timeout);
    let listed: Vec<_> = members_in(&hub.apply(ann, who("lobby")).reply())
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, [ann, bob]);
}
