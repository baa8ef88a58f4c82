//! `rename`: a new display name; every room the member is in hears `member_renamed`
//! once (the member's copy after the room's), in room-name order; in no room, the member
//! alone gets it, without `room`. The new name is what every later event shows.

use hubbub_core::protocol::{Event, RoomView};
use serde_json::json;

use crate::helpers::*;

#[test]
fn a_rename_in_no_room_is_confirmed_to_the_member_without_a_room() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let _bob = hub.member_of("bob", "lobby");

    let out = hub.apply(ann, rename("anna"));

    assert_eq!(out.trace(), ["member_renamed -> reply:ann"]);
    let renamed = Event::MemberRenamed {
        room: None,
        member: member(ann, "anna", hub.connected_at(ann)),
        old_name: display_name("ann"),
    };
    assert_eq!(out.reply(), renamed);
    assert_eq!(
        wire(&renamed),
        json!({
            "type": "member_renamed",
            "member": {"id": "1", "name": "anna", "joined_at": "2026-12-01T09:00:00.000Z"},
            "old_name": "ann",
        })
    );
}

#[test]
fn a_rename_tells_each_room_of_the_member_once_in_room_name_order() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    // Joined in the other order than their names sort.
    let side_at = hub.apply(ann, join("side")).at;
    let lobby_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.member_of("bob", "lobby");
    let carol = hub.member_of("carol", "side");
    let dave = hub.member_of("dave", "elsewhere");

    let out = hub.apply(ann, rename("anna"));

    assert_eq!(
        out.trace(),
        [
            "member_renamed lobby -> [bob] + reply:ann",
            "member_renamed side -> [carol] + reply:ann"
        ]
    );
    // In each room, the member as that room lists it, under its new name.
    let in_lobby = Event::MemberRenamed {
        room: Some(room("lobby")),
        member: member(ann, "anna", lobby_at),
        old_name: display_name("ann"),
    };
    let in_side = Event::MemberRenamed {
        room: Some(room("side")),
        member: member(ann, "anna", side_at),
        old_name: display_name("ann"),
    };
    assert_eq!(out.replies(), [in_lobby.clone(), in_side.clone()]);
    assert_eq!(out.received_by(bob), [in_lobby]);
    assert_eq!(out.received_by(carol), [in_side]);
    assert!(out.received_by(dave).is_empty());
}

#[test]
fn the_new_name_is_what_every_later_event_and_view_shows() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.member_of("bob", "lobby");
    hub.apply(ann, rename("anna"));
    let anna = member(ann, "anna", ann_at);

    let said = message_in(&hub.apply(ann, say("lobby", "call me anna")).reply());
    assert_eq!(
        said.from,
        hubbub_core::protocol::Sender::Member(anna.clone())
    );

    let whispered = hub.apply(ann, whisper(bob, "still me")).reply();
    assert!(
        matches!(&whispered, Event::Whisper { from, .. } if from.name == display_name("anna")),
        "{whispered:?}"
    );

    let presence = members_in(&hub.apply(bob, who("lobby")).reply());
    assert_eq!(presence[0], anna);

    let carol = hub.connect("carol");
    assert_eq!(
        members_in(&hub.apply(carol, join("lobby")).reply())[0],
        anna
    );

    let views: Vec<RoomView> = hub.state().all_rooms();
    assert_eq!(views[0].members[0], anna);

    hub.apply(ann, leave("lobby"));
    let rejoined = hub.apply(ann, join("lobby"));
    assert!(members_in(&rejoined.reply()).contains(&member(ann, "anna", rejoined.at)));
}

#[test]
fn old_name_is_the_name_the_rename_replaced() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    hub.apply(ann, rename("anna"));

    let out = hub.apply(ann, rename("annie"));

    assert_eq!(
        out.reply(),
        Event::MemberRenamed {
            room: None,
            member: member(ann, "annie", hub.connected_at(ann)),
            old_name: display_name("anna"),
        }
    );
}
