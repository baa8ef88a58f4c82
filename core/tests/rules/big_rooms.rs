//! Big rooms: past `presence_events_max` members, joins and leaves are counted and told
//! as one `member_count` per round, only when the count changed; `joined` lists at most
//! `joined_members_max` members, the joiner among them; `who` pages.

use hubbub_core::protocol::{Event, MemberId};

use crate::helpers::*;

/// Big past 3 members; `joined` lists 2.
fn small_thresholds() -> TestHub {
    TestHub::with(|s| {
        s.presence_events_max = 3;
        s.joined_members_max = 2;
    })
}

fn counts_of(out: &Outcome) -> Vec<String> {
    out.trace()
}

#[test]
fn at_the_threshold_joins_are_announced_and_past_it_they_are_counted() {
    let mut hub = small_thresholds();
    let ann = hub.member_of("ann", "hall");
    let _bob = hub.member_of("bob", "hall");
    let cid = hub.connect("cid");
    // Three members: at the threshold, announced.
    assert_eq!(
        hub.apply(cid, join("hall")).trace(),
        [
            "subscribe cid hall",
            "joined hall -> reply:cid",
            "member_joined hall -> [ann bob]"
        ]
    );
    assert!(hub.member_counts().is_empty(), "nothing to count yet");
    let dan = hub.connect("dan");
    // Four: counted.
    assert_eq!(
        hub.apply(dan, join("hall")).trace(),
        ["subscribe dan hall", "joined hall -> reply:dan"]
    );
    let out = hub.member_counts();
    assert_eq!(counts_of(&out), ["member_count hall -> [ann bob cid dan]"]);
    assert_eq!(
        out.received_by(ann),
        [Event::MemberCount {
            room: room("hall"),
            count: 4
        }]
    );
    // Told once: the next round is silent until the count changes.
    assert!(hub.member_counts().is_empty());
}

/// The ids `joined` lists and its `member_count`.
fn listed(joined: &Event) -> (Vec<MemberId>, usize) {
    match joined {
        Event::Joined {
            members,
            member_count,
            ..
        } => (members.iter().map(|m| m.id).collect(), *member_count),
        other => panic!("not a joined: {other:?}"),
    }
}

#[test]
fn joined_lists_the_first_members_with_the_joiner_and_the_whole_count() {
    let mut hub = small_thresholds();
    // Connected first, joins last: its id is the smallest.
    let early = hub.connect("early");
    let ids: Vec<MemberId> = (0..4)
        .map(|i| hub.member_of(&format!("m{i}"), "hall"))
        .collect();
    let joined = hub.apply(early, join("hall")).reply();
    assert_eq!(listed(&joined), (vec![early, ids[0]], 5));
    // A late joiner with the largest id takes the last place.
    let late = hub.member_of("late", "hall");
    let joined = hub.apply(late, join("hall")).reply();
    assert_eq!(listed(&joined), (vec![early, late], 6));
}

#[test]
fn leaving_a_big_room_is_counted_and_at_the_threshold_announced_again() {
    let mut hub = small_thresholds();
    let ann = hub.member_of("ann", "hall");
    let bob = hub.member_of("bob", "hall");
    let cid = hub.member_of("cid", "hall");
    let dan = hub.member_of("dan", "hall");
    hub.member_counts();
    // Four to three: the room was big, counted.
    assert_eq!(
        hub.apply(dan, leave("hall")).trace(),
        ["unsubscribe dan hall", "left hall -> reply:dan"]
    );
    // Three to two: announced.
    assert_eq!(
        hub.apply(cid, leave("hall")).trace(),
        [
            "unsubscribe cid hall",
            "left hall -> reply:cid",
            "member_left hall -> [ann bob]"
        ]
    );
    // They were told four, then one left: they believe three, and the next round
    // puts it right.
    assert_eq!(
        counts_of(&hub.member_counts()),
        ["member_count hall -> [ann bob]"]
    );
    assert!(hub.member_counts().is_empty());
    let _ = (ann, bob);
}

#[test]
fn a_room_oscillating_around_the_threshold_gets_one_true_count_per_round() {
    let mut hub = small_thresholds();
    for name in ["ann", "bob", "cid"] {
        hub.member_of(name, "hall");
    }
    let guest = hub.connect("guest");
    for _ in 0..5 {
        hub.apply(guest, join("hall"));
        hub.apply(guest, leave("hall"));
    }
    // Back at three, which is what everyone was told: nothing is due.
    assert!(hub.member_counts().is_empty());
    hub.apply(guest, join("hall"));
    hub.apply(guest, leave("hall"));
    hub.apply(guest, join("hall"));
    let out = hub.member_counts();
    assert_eq!(
        counts_of(&out),
        ["member_count hall -> [ann bob cid guest]"]
    );
    assert_eq!(
        out.events(),
        [Event::MemberCount {
            room: room("hall"),
            count: 4
        }]
    );
}

#[test]
fn disconnects_and_kicks_in_a_big_room_are_counted_too() {
    let mut hub = small_thresholds();
    let ids: Vec<MemberId> = ["ann", "bob", "cid", "dan", "eve"]
        .iter()
        .map(|name| hub.member_of(name, "hall"))
        .collect();
    hub.member_counts();
    let out = hub.disconnect(ids[4], hubbub_core::protocol::LeaveReason::Timeout);
    assert_eq!(out.trace(), ["unsubscribe eve hall"]);
    let out = hub.kick("hall", ids[3]).unwrap();
    assert_eq!(out.trace(), ["unsubscribe dan hall", "left hall -> dan"]);
    assert_eq!(
        counts_of(&hub.member_counts()),
        ["member_count hall -> [ann bob cid]"]
    );
}

#[test]
fn who_pages_through_every_member_in_id_order() {
    let mut hub = small_thresholds();
    let ids: Vec<MemberId> = (0..5)
        .map(|i| hub.member_of(&format!("m{i}"), "hall"))
        .collect();
    let page = |hub: &mut TestHub, after: Option<MemberId>| {
        let command = decoded(
            &serde_json::json!({
                "type": "who",
                "room": "hall",
                "limit": 2,
                "after": after.map(|id| id.to_string()),
            })
            .to_string(),
        );
        match hub.apply(ids[0], command).reply() {
            Event::Presence {
                members,
                member_count,
                next,
                ..
            } => (
                members.iter().map(|m| m.id).collect::<Vec<_>>(),
                member_count,
                next,
            ),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        page(&mut hub, None),
        (vec![ids[0], ids[1]], 5, Some(ids[1]))
    );
    assert_eq!(
        page(&mut hub, Some(ids[1])),
        (vec![ids[2], ids[3]], 5, Some(ids[3]))
    );
    assert_eq!(page(&mut hub, Some(ids[3])), (vec![ids[4]], 5, None));
    // A departed member's id is still a valid cursor.
    hub.disconnect(ids[2], hubbub_core::protocol::LeaveReason::Leave);
    assert_eq!(
        page(&mut hub, Some(ids[2])),
        (vec![ids[3], ids[4]], 4, None)
    );
}
