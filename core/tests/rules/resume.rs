//! Resuming: `join` with `since` (the `seq` and `epoch` a client last saw). `joined`
//! carries exactly the missed messages with `recovered: true` when the room is the same
//! life and all of them are still kept; else `recovered: false` and the usual history.

use crate::helpers::*;

/// A room with messages 1 to 5, history 3 long; ann is back in no room.
fn room_with_five_messages() -> (TestHub, hubbub_core::protocol::MemberId, String) {
    let mut hub = TestHub::with(|s| {
        s.history_len = 3;
        s.room_ttl_ms = 60_000;
    });
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    let (epoch, _, _) = resumed(&hub.apply(bob, join("lobby")).reply());
    for i in 1..=5 {
        hub.apply(bob, say("lobby", &format!("m{i}")));
    }
    hub.apply(ann, leave("lobby"));
    (hub, ann, epoch)
}

#[test]
fn a_short_disconnect_recovers_exactly_the_missed_messages() {
    let (mut hub, ann, epoch) = room_with_five_messages();
    let joined = hub.apply(ann, join_since("lobby", 3, &epoch)).reply();
    assert_eq!(resumed(&joined), (epoch, 5, Some(true)));
    assert_eq!(seqs(&history_in(&joined)), [4, 5]);
}

#[test]
fn nothing_missed_recovers_with_an_empty_history() {
    let (mut hub, ann, epoch) = room_with_five_messages();
    let joined = hub.apply(ann, join_since("lobby", 5, &epoch)).reply();
    assert_eq!(resumed(&joined).2, Some(true));
    assert!(history_in(&joined).is_empty());
}

#[test]
fn a_gap_longer_than_the_history_is_not_recovered_and_gets_the_usual_history() {
    let (mut hub, ann, epoch) = room_with_five_messages();
    // Missed 2 to 5; only 3 to 5 are kept.
    let joined = hub.apply(ann, join_since("lobby", 1, &epoch)).reply();
    assert_eq!(resumed(&joined).2, Some(false));
    assert_eq!(seqs(&history_in(&joined)), [3, 4, 5]);
    // Exactly at the edge: missed 3 to 5, all kept.
    let joined = hub.apply(ann, join_since("lobby", 2, &epoch)).reply();
    assert_eq!(resumed(&joined).2, Some(true));
}

#[test]
fn a_wrong_epoch_or_a_seq_beyond_the_rooms_is_not_recovered() {
    let (mut hub, ann, epoch) = room_with_five_messages();
    let joined = hub
        .apply(ann, join_since("lobby", 4, "another-epoch"))
        .reply();
    assert_eq!(resumed(&joined).2, Some(false));
    assert_eq!(seqs(&history_in(&joined)), [3, 4, 5]);
    let joined = hub.apply(ann, join_since("lobby", 9, &epoch)).reply();
    assert_eq!(resumed(&joined).2, Some(false));
}

#[test]
fn a_room_that_expired_and_was_made_again_is_not_recovered() {
    let (mut hub, ann, epoch) = room_with_five_messages();
    let bob = hub.member_of("bob2", "elsewhere");
    let _ = bob;
    // Everyone leaves; the room outlives its TTL and goes.
    for id in hub
        .state()
        .whole_room(&room("lobby"))
        .unwrap()
        .members
        .iter()
        .map(|m| m.id)
        .collect::<Vec<_>>()
    {
        hub.apply(id, leave("lobby"));
    }
    for _ in 0..61 {
        hub.expire();
    }
    assert_eq!(hub.state().whole_room(&room("lobby")), None);
    let joined = hub.apply(ann, join_since("lobby", 5, &epoch)).reply();
    let (new_epoch, seq, recovered) = resumed(&joined);
    assert_ne!(new_epoch, epoch);
    assert_eq!((seq, recovered), (0, Some(false)));
    assert!(history_in(&joined).is_empty());
}

#[test]
fn a_plain_join_says_nothing_of_recovery() {
    let (mut hub, ann, epoch) = room_with_five_messages();
    let joined = hub.apply(ann, join("lobby")).reply();
    assert_eq!(resumed(&joined), (epoch, 5, None));
    assert_eq!(wire(&joined).get("recovered"), None);
}
