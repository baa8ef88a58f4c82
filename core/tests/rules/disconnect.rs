//! `disconnect`: a member's connection ended (it closed, timed out, was too slow, or
//! left for good). Every room it was in hears `member_left` with the reason, in room-name
//! order; only the first call for an id does anything; a departed member's commands do
//! nothing.

use hubbub_core::protocol::{Event, LeaveReason};
use serde_json::json;

use crate::helpers::*;

#[test]
fn a_disconnect_tells_the_room_why_for_each_reason() {
    for (reason, on_the_wire) in
        REASONS
            .into_iter()
            .zip(["leave", "disconnect", "timeout", "slow", "node_lost"])
    {
        let mut hub = TestHub::new();
        let ann = hub.member_of("ann", "lobby");
        let bob = hub.connect("bob");
        let bob_joined_at = hub.apply(bob, join("lobby")).at;
        let carol = hub.member_of("carol", "elsewhere");

        let out = hub.disconnect(bob, reason);

        assert_eq!(
            out.trace(),
            ["unsubscribe bob lobby", "member_left lobby -> [ann]"],
            "{on_the_wire}"
        );
        let departure = Event::MemberLeft {
            room: room("lobby"),
            member: member(bob, "bob", bob_joined_at),
            reason,
            last: true,
        };
        assert_eq!(out.received_by(ann), vec![departure.clone()]);
        assert!(out.received_by(carol).is_empty());
        assert_eq!(reason.as_str(), on_the_wire);
        assert_eq!(
            wire(&departure),
            json!({
                "type": "member_left",
                "room": "lobby",
                "member": {"id": "2", "name": "bob", "joined_at": "2026-12-01T09:00:03.000Z"},
                "reason": on_the_wire,
                "last": true,
            })
        );
    }
}

#[test]
fn a_disconnect_leaves_every_room_in_room_name_order() {
    let mut hub = TestHub::new();
    let bob = hub.connect("bob");
    let side_at = hub.apply(bob, join("side")).at;
    let lobby_at = hub.apply(bob, join("lobby")).at;
    let ann = hub.member_of("ann", "lobby");
    let carol = hub.member_of("carol", "side");

    let out = hub.disconnect(bob, LeaveReason::Timeout);

    assert_eq!(
        out.trace(),
        [
            "unsubscribe bob lobby",
            "member_left lobby -> [ann]",
            "unsubscribe bob side",
            "member_left side -> [carol]"
        ]
    );
    // In each room, the member as that room listed it.
    assert_eq!(
        out.received_by(ann),
        [Event::MemberLeft {
            room: room("lobby"),
            member: member(bob, "bob", lobby_at),
            reason: LeaveReason::Timeout,
            last: true,
        }]
    );
    assert_eq!(
        out.received_by(carol),
        [Event::MemberLeft {
            room: room("side"),
            member: member(bob, "bob", side_at),
            reason: LeaveReason::Timeout,
            last: true,
        }]
    );
}

#[test]
fn a_disconnect_is_processed_once() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    assert!(!hub.disconnect(bob, LeaveReason::Slow).is_empty());
    let after = hub.snapshot();

    // However often and for whatever reason it is reported again.
    for reason in REASONS {
        assert!(hub.disconnect(bob, reason).is_empty(), "{reason:?}");
        assert_eq!(hub.snapshot(), after);
    }
}

#[test]
fn a_member_in_no_room_disconnects_without_effects() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let _bob = hub.member_of("bob", "lobby");
    assert_eq!(hub.state().counts().members, 2);

    assert!(hub.disconnect(ann, LeaveReason::Disconnect).is_empty());

    assert_eq!(hub.state().counts().members, 1);
}

#[test]
fn the_last_member_disconnecting_drops_its_rooms_and_they_start_again_at_seq_one() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, say("lobby", "before"));
    hub.apply(ann, join("side"));
    let bob = hub.member_of("bob", "side");

    let out = hub.disconnect(ann, LeaveReason::Disconnect);

    assert_eq!(
        out.trace(),
        [
            "unsubscribe ann lobby",
            "unsubscribe ann side",
            "member_left side -> [bob]"
        ]
    );
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
    assert_eq!(
        hub.apply(bob, rooms()).reply(),
        Event::Rooms {
            rooms: vec![hubbub_core::protocol::RoomCount {
                name: room("side"),
                members: 1
            }],
            next: None
        }
    );

    // Recreated, "lobby" starts over: no history, `seq` from 1.
    let carol = hub.connect("carol");
    assert!(history_in(&hub.apply(carol, join("lobby")).reply()).is_empty());
    assert_eq!(
        seqs(&hub.apply(carol, say("lobby", "anyone?")).events()),
        [1]
    );
}

#[test]
fn commands_from_a_departed_member_do_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    hub.disconnect(bob, LeaveReason::Slow);
    let before = hub.snapshot();

    // Commands still in flight when it was dropped, say.
    for command in one_of_each("lobby", ann) {
        let name = command.name();
        assert!(hub.apply(bob, command).is_empty(), "{name}");
        assert_eq!(hub.snapshot(), before, "{name}");
    }
    assert!(hub.apply(bob, join("elsewhere")).is_empty());
    assert!(hub.apply(bob, whisper(bob, "me?")).is_empty());
}

#[test]
fn commands_from_a_member_that_never_connected_do_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let stranger = hub.unused_id();
    let before = hub.snapshot();

    for command in one_of_each("lobby", ann) {
        let name = command.name();
        assert!(hub.apply(stranger, command).is_empty(), "{name}");
        assert_eq!(hub.snapshot(), before, "{name}");
    }
}

#[test]
fn disconnecting_an_id_nobody_has_does_nothing() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "lobby");
    let before = hub.snapshot();

    for reason in REASONS {
        assert!(hub.disconnect(hub.unused_id(), reason).is_empty());
    }
    assert_eq!(hub.snapshot(), before);
}

#[test]
fn a_departed_member_is_gone_from_every_listing() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    hub.apply(bob, join("side"));
    let _carol = hub.member_of("carol", "side");

    hub.disconnect(bob, LeaveReason::Disconnect);

    let lobby: Vec<_> = members_in(&hub.apply(ann, who("lobby")).reply())
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(lobby, [ann]);
    assert!(hub
        .state()
        .all_rooms()
        .iter()
        .all(|view| view.members.iter().all(|m| m.id != bob)));
    assert_eq!(
        hub.apply(ann, whisper(bob, "hello?")).trace(),
        ["error unknown_member -> reply:ann"]
    );
}
