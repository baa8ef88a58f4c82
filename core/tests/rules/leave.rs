//! `leave`: the leaver is unsubscribed and gets `left`, then the others get `member_left`
//! with reason `leave`; the last member out takes the room (history, `seq`) with it;
//! leaving a room one is not in is `not_in_room`.

use hubbub_core::protocol::{ErrorCode, Event, LeaveReason};
use serde_json::json;

use crate::helpers::*;

#[test]
fn leave_unsubscribes_replies_left_then_tells_the_others_with_reason_leave() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.connect("bob");
    let bob_joined_at = hub.apply(bob, join("lobby")).at;
    let carol = hub.member_of("carol", "elsewhere");

    let out = hub.apply(bob, leave("lobby"));

    assert_eq!(
        out.trace(),
        [
            "unsubscribe bob lobby",
            "left lobby -> reply:bob",
            "member_left lobby -> [ann]"
        ]
    );
    assert_eq!(
        out.received_by(bob),
        [Event::Left {
            room: room("lobby"),
            reason: None
        }]
    );
    // The leaver as the room listed it: its join time there.
    let departure = Event::MemberLeft {
        room: room("lobby"),
        member: member(bob, "bob", bob_joined_at),
        reason: LeaveReason::Leave,
        last: true,
    };
    assert_eq!(out.received_by(ann), vec![departure.clone()]);
    assert!(out.received_by(carol).is_empty());
    assert_eq!(wire(&out.reply()), json!({"type": "left", "room": "lobby"}));
    assert_eq!(wire(&departure)["reason"], "leave");
}

#[test]
fn the_leaver_hears_nothing_more_from_the_room_and_is_no_longer_listed() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_joined_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.member_of("bob", "lobby");
    hub.apply(bob, leave("lobby"));

    assert_eq!(
        hub.apply(ann, say("lobby", "still here?")).trace(),
        ["message lobby -> reply:ann + []"]
    );
    assert_eq!(
        members_in(&hub.apply(ann, who("lobby")).reply()),
        [member(ann, "ann", ann_joined_at)]
    );
}

#[test]
fn the_last_leave_drops_the_room_and_it_starts_again_at_seq_one() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, say("lobby", "one"));
    assert_eq!(seqs(&hub.apply(ann, say("lobby", "two")).events()), [2]);

    let out = hub.apply(ann, leave("lobby"));

    assert_eq!(
        out.trace(),
        ["unsubscribe ann lobby", "left lobby -> reply:ann"]
    );
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
    assert!(hub.state().all_rooms().is_empty());
    assert_eq!(hub.state().counts().rooms, 0);
    assert_eq!(hub.state().counts().members, 1);
    assert_eq!(
        hub.apply(ann, rooms()).reply(),
        Event::Rooms {
            rooms: vec![],
            next: None
        }
    );

    // Recreated: no history, a new join time, `seq` from 1.
    let rejoined = hub.apply(ann, join("lobby"));
    assert_eq!(
        rejoined.reply(),
        Event::Joined {
            room: room("lobby"),
            members: vec![member(ann, "ann", rejoined.at)],
            member_count: 1,
            history: vec![],
            // Another life of the room: another epoch.
            epoch: "test-2".into(),
            seq: 0,
            recovered: None,
        }
    );
    assert_eq!(seqs(&hub.apply(ann, say("lobby", "fresh")).events()), [1]);
}

#[test]
fn leaving_a_room_one_is_not_in_is_not_in_room_and_changes_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let bob = hub.member_of("bob", "lobby");

    // A room of someone else's, and one that does not exist.
    for name in ["lobby", "nowhere"] {
        let before = hub.snapshot();
        let out = hub.apply(ann, leave(name));
        assert_eq!(out.trace(), ["error not_in_room -> reply:ann"], "{name}");
        assert_eq!(
            error_in(&out.reply()),
            (ErrorCode::NotInRoom, format!("you are not in room {name}"))
        );
        assert_eq!(hub.snapshot(), before, "{name}");
    }

    // Bob's room heard nothing of it: its first message is still seq 1.
    assert_eq!(seqs(&hub.apply(bob, say("lobby", "first")).events()), [1]);
    assert_eq!(hub.state().whole_room(&room("nowhere")), None);
}

#[test]
fn leaving_twice_is_not_in_room_the_second_time() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let _bob = hub.member_of("bob", "lobby");
    hub.apply(ann, leave("lobby"));
    let before = hub.snapshot();

    let again = hub.apply(ann, leave("lobby"));

    assert_eq!(again.trace(), ["error not_in_room -> reply:ann"]);
    assert_eq!(hub.snapshot(), before);
}

#[test]
fn leaving_one_room_keeps_the_others() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, join("side"));
    let _bob = hub.member_of("bob", "lobby");
    let _carol = hub.member_of("carol", "side");

    assert_eq!(
        hub.apply(ann, leave("lobby")).trace(),
        [
            "unsubscribe ann lobby",
            "left lobby -> reply:ann",
            "member_left lobby -> [bob]"
        ]
    );
    assert_eq!(
        hub.apply(ann, say("side", "still here")).trace(),
        ["message side -> reply:ann + [carol]"]
    );
    assert_eq!(
        hub.apply(ann, rename("anna")).trace(),
        ["member_renamed side -> [carol] + reply:ann"]
    );
}
