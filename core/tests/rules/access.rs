//! Connections with a token: a member carries its `user`, a `join` or `say` outside its
//! token's `rooms` is `forbidden`, `first`/`last` follow a user across its connections
//! in a room, and `reauthorize` (a refreshed token) replaces the name and the grant,
//! taking the member out of rooms the new grant no longer allows.

use hubbub_core::protocol::{Event, LeaveReason};
use serde_json::json;

use crate::helpers::*;

/// `member_joined.first` or `member_left.last`, of the one such event in `out` that
/// `to` receives.
fn flag_seen_by(out: &Outcome, to: hubbub_core::protocol::MemberId) -> bool {
    let events = out.received_by(to);
    match events.as_slice() {
        [Event::MemberJoined { first, .. }] => *first,
        [Event::MemberLeft { last, .. }] => *last,
        other => panic!("one member_joined or member_left expected, got {other:?}"),
    }
}

#[test]
fn a_join_outside_the_tokens_rooms_is_forbidden_and_changes_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.connect_as("ann", "u-ann", Some(&["lobby", "team-*"]));
    let before = hub.snapshot();

    for refused in ["elsewhere", "team", "lobby2", "Lobby"] {
        let out = hub.apply(ann, join(refused));
        assert_eq!(out.trace(), ["error forbidden -> reply:ann"], "{refused}");
        let Event::Error { message, .. } = out.reply() else {
            unreachable!("an error, by the trace");
        };
        assert!(message.contains(refused), "{message}");
        assert_eq!(hub.snapshot(), before, "{refused}: no room was made");
    }
    for allowed in ["lobby", "team-", "team-red"] {
        let out = hub.apply(ann, join(allowed));
        assert!(matches!(out.reply(), Event::Joined { .. }), "{allowed}");
    }
}

#[test]
fn an_empty_rooms_claim_allows_no_room_and_no_claim_allows_any() {
    let mut hub = TestHub::new();
    let nobody = hub.connect_as("nobody", "u-1", Some(&[]));
    let anybody = hub.connect_as("anybody", "u-2", None);
    assert_eq!(
        hub.apply(nobody, join("lobby")).trace(),
        ["error forbidden -> reply:nobody"]
    );
    assert!(matches!(
        hub.apply(anybody, join("lobby")).reply(),
        Event::Joined { .. }
    ));
}

#[test]
fn a_say_outside_the_tokens_rooms_is_forbidden_before_not_in_room() {
    let mut hub = TestHub::new();
    let _bob = hub.member_of("bob", "elsewhere");
    let ann = hub.connect_as("ann", "u-ann", Some(&["lobby"]));
    hub.apply(ann, join("lobby"));

    assert_eq!(
        hub.apply(ann, say("elsewhere", "hi")).trace(),
        ["error forbidden -> reply:ann"]
    );
    // Allowed but not joined: the usual answer.
    let out = hub.apply(ann, leave("lobby"));
    assert_eq!(out.trace()[1], "left lobby -> reply:ann");
    assert_eq!(
        hub.apply(ann, say("lobby", "hi")).trace(),
        ["error not_in_room -> reply:ann"]
    );
}

#[test]
fn an_authenticated_member_carries_its_user_everywhere_it_is_shown() {
    let mut hub = TestHub::new();
    let bob = hub.member_of("bob", "lobby");
    let ann = hub.connect_as("ann", "user-42", None);

    let out = hub.apply(ann, join("lobby"));
    let listed = members_in(&out.reply());
    let ann_listed = listed.iter().find(|m| m.id == ann).expect("ann is listed");
    assert_eq!(ann_listed.user, Some(user_id("user-42")));
    let bob_listed = listed.iter().find(|m| m.id == bob).expect("bob is listed");
    assert_eq!(
        bob_listed.user, None,
        "a connection without a token has none"
    );
    let Event::MemberJoined { member, .. } = &out.received_by(bob)[0] else {
        panic!("bob hears ann join");
    };
    assert_eq!(
        wire(&out.received_by(bob)[0])["member"],
        json!({"id": ann.to_string(), "name": "ann", "joined_at": member.joined_at, "user": "user-42"})
    );
    // A member without a user has no `user` field at all.
    assert!(wire(&Event::MemberJoined {
        room: room("lobby"),
        member: bob_listed.clone(),
        first: true
    })["member"]
        .get("user")
        .is_none());

    let said = hub.apply(ann, say("lobby", "hi"));
    assert_eq!(
        message_in(&said.received_by(bob)[0]).from,
        hubbub_core::protocol::Sender::Member(ann_listed.clone())
    );
    let whispered = hub.apply(ann, whisper(bob, "psst"));
    let Event::Whisper { from, .. } = &whispered.received_by(bob)[0] else {
        panic!("bob gets the whisper");
    };
    assert_eq!(from.user, Some(user_id("user-42")));
}

#[test]
fn first_and_last_follow_a_user_across_its_connections_in_a_room() {
    let mut hub = TestHub::new();
    let watcher = hub.member_of("watcher", "lobby");
    let phone = hub.connect_as("ann", "ann", None);
    let laptop = hub.connect_as("ann", "ann", None);
    let elsewhere = hub.connect_as("ann", "ann", None);
    hub.apply(elsewhere, join("side"));

    let out = hub.apply(phone, join("lobby"));
    assert!(
        flag_seen_by(&out, watcher),
        "ann's first connection in lobby"
    );
    let out = hub.apply(laptop, join("lobby"));
    assert!(!flag_seen_by(&out, watcher), "her second");
    assert!(
        !flag_seen_by(&out, phone),
        "her phone hears it too: not first"
    );
    // Joining again announces nothing and counts nothing.
    assert_eq!(hub.apply(laptop, join("lobby")).received_by(watcher), []);

    let out = hub.apply(phone, leave("lobby"));
    assert!(!flag_seen_by(&out, watcher), "her laptop is still in lobby");
    let out = hub.disconnect(laptop, LeaveReason::Disconnect);
    assert!(flag_seen_by(&out, watcher), "her last connection in lobby");

    // Back in through a kick's count as well.
    let out = hub.apply(phone, join("lobby"));
    assert!(flag_seen_by(&out, watcher), "first again");
    let other = hub.connect_as("ann", "ann", None);
    hub.apply(other, join("lobby"));
    let out = hub.kick("lobby", other).unwrap();
    assert!(!flag_seen_by(&out, watcher), "the phone is still in");
    let out = hub.kick("lobby", phone).unwrap();
    assert!(flag_seen_by(&out, watcher), "nobody of ann's left");
}

#[test]
fn connections_without_a_token_are_each_their_own_user() {
    let mut hub = TestHub::new();
    let watcher = hub.member_of("watcher", "lobby");
    let one = hub.connect("ann");
    let two = hub.connect("ann");
    assert!(flag_seen_by(&hub.apply(one, join("lobby")), watcher));
    assert!(flag_seen_by(&hub.apply(two, join("lobby")), watcher));
    assert!(flag_seen_by(&hub.apply(one, leave("lobby")), watcher));
}

#[test]
fn users_are_told_apart_by_their_id_not_their_name() {
    let mut hub = TestHub::new();
    let watcher = hub.member_of("watcher", "lobby");
    let ann = hub.connect_as("same name", "u-1", None);
    let other = hub.connect_as("same name", "u-2", None);
    assert!(flag_seen_by(&hub.apply(ann, join("lobby")), watcher));
    assert!(flag_seen_by(&hub.apply(other, join("lobby")), watcher));
}

#[test]
fn reauthorize_with_a_new_name_renames_in_every_room() {
    let mut hub = TestHub::new();
    let bob = hub.member_of("bob", "lobby");
    let ann = hub.connect_as("ann", "u-ann", None);
    hub.apply(ann, join("lobby"));

    let out = hub.reauthorize(ann, Some("Ann B."), None);

    assert_eq!(out.trace(), ["member_renamed lobby -> [bob] + reply:ann"]);
    let Event::MemberRenamed {
        member, old_name, ..
    } = &out.received_by(bob)[0]
    else {
        panic!("bob hears the rename");
    };
    assert_eq!((member.name.as_str(), old_name.as_str()), ("Ann B.", "ann"));
    assert_eq!(member.user, Some(user_id("u-ann")));
    // The same name, or none, is no rename.
    assert!(hub.reauthorize(ann, Some("Ann B."), None).is_empty());
    assert!(hub.reauthorize(ann, None, None).is_empty());
}

#[test]
fn reauthorize_with_narrower_rooms_takes_the_member_out_of_the_others() {
    let mut hub = TestHub::new();
    let bob = hub.member_of("bob", "team-red");
    let ann = hub.connect_as("ann", "u-ann", Some(&["lobby", "team-*"]));
    hub.apply(ann, join("lobby"));
    hub.apply(ann, join("team-red"));

    let out = hub.reauthorize(ann, None, Some(&["lobby"]));

    assert_eq!(
        out.trace(),
        [
            "unsubscribe ann team-red",
            "left team-red -> reply:ann",
            "member_left team-red -> [bob]"
        ]
    );
    assert_eq!(
        out.received_by(ann),
        [Event::Left {
            room: room("team-red"),
            reason: Some(LeaveReason::Kicked)
        }]
    );
    let Event::MemberLeft { reason, last, .. } = &out.received_by(bob)[0] else {
        panic!("bob hears ann go");
    };
    assert_eq!((*reason, *last), (LeaveReason::Kicked, true));
    assert_eq!(
        hub.apply(ann, join("team-blue")).trace(),
        ["error forbidden -> reply:ann"]
    );
    assert_eq!(
        hub.apply(ann, say("team-red", "back?")).trace(),
        ["error forbidden -> reply:ann"]
    );
    assert!(matches!(
        hub.apply(ann, say("lobby", "still here")).reply(),
        Event::Message(_)
    ));
}

#[test]
fn reauthorize_with_wider_rooms_allows_them_and_removes_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.connect_as("ann", "u-ann", Some(&["lobby"]));
    hub.apply(ann, join("lobby"));
    assert_eq!(
        hub.apply(ann, join("side")).trace(),
        ["error forbidden -> reply:ann"]
    );

    assert!(hub.reauthorize(ann, None, None).is_empty());

    assert!(matches!(
        hub.apply(ann, join("side")).reply(),
        Event::Joined { .. }
    ));
}

#[test]
fn reauthorize_removes_first_then_renames_and_leaves_the_count_right() {
    let mut hub = TestHub::new();
    let bob = hub.member_of("bob", "side");
    let _carol = hub.member_of("carol", "lobby");
    let ann = hub.connect_as("ann", "u-ann", None);
    let ann_too = hub.connect_as("ann", "u-ann", None);
    hub.apply(ann, join("lobby"));
    hub.apply(ann, join("side"));
    hub.apply(ann_too, join("side"));

    let out = hub.reauthorize(ann, Some("anna"), Some(&["lobby"]));

    assert_eq!(
        out.trace(),
        [
            "unsubscribe ann side",
            "left side -> reply:ann",
            "member_left side -> [bob ann#4]",
            "member_renamed lobby -> [carol] + reply:ann"
        ]
    );
    assert!(
        !flag_seen_by(&out, bob),
        "ann's other connection is still in side"
    );
}

#[test]
fn a_refresh_that_reaches_the_rules_is_bad_token() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let before = hub.snapshot();
    let out = hub.apply(ann, refresh("a.b.c"));
    assert_eq!(out.trace(), ["error bad_token -> reply:ann"]);
    assert_eq!(hub.snapshot(), before);
}
