//! The views for the HTTP API and stats: `rooms_view` (every room and its members, by
//! name), `room_view` (one room with its history) and `counts`.

use hubbub_core::{
    protocol::{LeaveReason, RoomView},
    Counts,
};
use serde_json::json;

use crate::helpers::*;

#[test]
fn a_new_state_has_no_members_and_no_rooms() {
    let hub = TestHub::new();
    assert_eq!(hub.state().counts(), Counts::default());
    assert!(hub.state().all_rooms().is_empty());
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
}

#[test]
fn counts_are_every_connected_member_and_every_room() {
    let mut hub = TestHub::new();
    let _lonely = hub.connect("lonely");
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, join("side"));
    let bob = hub.member_of("bob", "lobby");
    assert_eq!(
        hub.state().counts(),
        Counts {
            members: 3,
            rooms: 2
        }
    );

    hub.apply(ann, leave("side"));
    hub.disconnect(bob, LeaveReason::Disconnect);
    assert_eq!(
        hub.state().counts(),
        Counts {
            members: 2,
            rooms: 1
        }
    );
}

#[test]
fn the_room_listing_shows_every_room_by_name_with_its_members_and_no_history() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.connect("bob");
    let bob_at = hub.apply(bob, join("lobby")).at;
    let cid = hub.connect("cid");
    let cid_at = hub.apply(cid, join("dev")).at;
    hub.apply(ann, say("lobby", "not listed here"));

    let views = hub.state().all_rooms();

    assert_eq!(
        views,
        [
            RoomView {
                name: room("dev"),
                members: vec![member(cid, "cid", cid_at)],
                member_count: 1,
                next: None,
                history: None,
            },
            RoomView {
                name: room("lobby"),
                members: vec![member(ann, "ann", ann_at), member(bob, "bob", bob_at)],
                member_count: 2,
                next: None,
                history: None,
            },
        ]
    );
    assert_eq!(
        serde_json::to_value(&views[0]).unwrap(),
        json!({
            "name": "dev",
            "members": [{"id": "3", "name": "cid", "joined_at": "2026-12-01T09:00:05.000Z"}],
            "member_count": 1,
            "next": null,
        })
    );
}

#[test]
fn one_room_shows_its_members_and_history_oldest_first() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.connect("bob");
    let bob_at = hub.apply(bob, join("lobby")).at;
    let mut sent = hub.apply(ann, say("lobby", "one")).events();
    sent.extend(hub.apply(bob, say("lobby", "two ☃")).events());

    let view = hub
        .state()
        .whole_room(&room("lobby"))
        .expect("lobby exists");

    assert_eq!(
        view,
        RoomView {
            name: room("lobby"),
            members: vec![member(ann, "ann", ann_at), member(bob, "bob", bob_at)],
            member_count: 2,
            next: None,
            history: Some(sent),
        }
    );
    // The members as `who` shows them.
    assert_eq!(
        view.members,
        members_in(&hub.apply(ann, who("lobby")).reply())
    );
}

#[test]
fn a_room_without_messages_shows_an_empty_history() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "quiet");
    let view = hub.state().whole_room(&room("quiet")).unwrap();
    assert_eq!(view.history, Some(vec![]));
    assert_eq!(serde_json::to_value(&view).unwrap()["history"], json!([]));
}

#[test]
fn a_room_view_keeps_only_the_last_history_len_messages() {
    let mut hub = TestHub::with(|s| s.history_len = 2);
    let ann = hub.member_of("ann", "lobby");
    for i in 1..=4 {
        hub.apply(ann, say("lobby", &format!("m{i}")));
    }
    let history = hub
        .state()
        .whole_room(&room("lobby"))
        .unwrap()
        .history
        .unwrap();
    assert_eq!(texts(&history), ["m3", "m4"]);
    assert_eq!(seqs(&history), [3, 4]);
}

#[test]
fn a_room_that_does_not_exist_has_no_view() {
    let mut hub = TestHub::new();
    let _ann = hub.member_of("ann", "lobby");
    assert_eq!(hub.state().whole_room(&room("nowhere")), None);
    // Room names are case-sensitive.
    assert_eq!(hub.state().whole_room(&room("Lobby")), None);
}

#[test]
fn a_room_is_gone_from_the_views_once_its_last_member_leaves() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    assert!(hub.state().whole_room(&room("lobby")).is_some());

    hub.apply(ann, leave("lobby"));

    assert_eq!(hub.state().whole_room(&room("lobby")), None);
    assert!(hub.state().all_rooms().is_empty());
}

#[test]
fn the_views_show_members_under_their_current_names() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_at = hub.apply(ann, join("lobby")).at;
    hub.apply(ann, rename("anna"));

    let anna = member(ann, "anna", ann_at);
    assert_eq!(hub.state().all_rooms()[0].members, vec![anna.clone()]);
    assert_eq!(
        hub.state().whole_room(&room("lobby")).unwrap().members,
        [anna]
    );
}
