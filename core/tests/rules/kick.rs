//! `kick` (the HTTP API's `DELETE /api/rooms/{room}/members/{id}`): the member leaves the
//! room with reason `kicked` and stays connected; a member not in the room is refused.

use hubbub_core::{
    protocol::{Event, LeaveReason},
    NotAMember,
};

use crate::helpers::*;

#[test]
fn a_kicked_member_gets_left_kicked_and_the_others_member_left_kicked() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.connect("bob");
    let bob_joined_at = hub.apply(bob, join("lobby")).at;

    let out = hub.kick("lobby", bob).expect("bob is in the lobby");

    assert_eq!(
        out.trace(),
        [
            "unsubscribe bob lobby",
            "left lobby -> bob",
            "member_left lobby -> [ann]"
        ]
    );
    assert_eq!(
        out.received_by(bob),
        [Event::Left {
            room: room("lobby"),
            reason: Some(LeaveReason::Kicked)
        }]
    );
    assert_eq!(
        out.received_by(ann),
        [Event::MemberLeft {
            room: room("lobby"),
            member: member(bob, "bob", bob_joined_at),
            reason: LeaveReason::Kicked,
            last: true,
        }]
    );
    assert_eq!(wire(&out.received_by(bob)[0])["reason"], "kicked");
}

#[test]
fn a_kicked_member_stays_connected_and_may_join_again() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    hub.kick("lobby", bob).unwrap();

    assert_eq!(
        hub.apply(bob, say("lobby", "hello?")).trace(),
        ["error not_in_room -> reply:bob"]
    );
    assert_eq!(hub.state().counts().members, 2);
    assert_eq!(
        hub.apply(bob, join("lobby")).trace(),
        [
            "subscribe bob lobby",
            "joined lobby -> reply:bob",
            "member_joined lobby -> [ann]"
        ]
    );
}

#[test]
fn kicking_the_last_member_drops_the_room_and_tells_only_the_member() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, say("lobby", "hi"));

    let out = hub.kick("lobby", ann).unwrap();

    assert_eq!(out.trace(), ["unsubscribe ann lobby", "left lobby -> ann"]);
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
}

#[test]
fn kicking_a_member_not_in_the_room_or_unknown_is_refused_and_changes_nothing() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "elsewhere");
    let before = hub.snapshot();

    assert_eq!(hub.kick("lobby", bob).unwrap_err(), NotAMember);
    let nobody = hub.unused_id();
    assert_eq!(hub.kick("lobby", nobody).unwrap_err(), NotAMember);
    assert_eq!(hub.kick("nowhere", bob).unwrap_err(), NotAMember);
    assert_eq!(hub.snapshot(), before);
}
