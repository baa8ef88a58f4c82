//! `say`: one `message` for every member of the room, the sender's copy first, with the
//! room's next `seq`; kept in history; `not_in_room` outside the sender's rooms.

use std::sync::Arc;

use hubbub_core::protocol::{ChatMessage, ErrorCode, Event, Member, MemberId, Sender};

use crate::helpers::*;

#[test]
fn say_reaches_every_member_the_senders_copy_first_with_the_next_seq() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let ann_joined_at = hub.apply(ann, join("lobby")).at;
    let bob = hub.member_of("bob", "lobby");
    let carol = hub.member_of("carol", "elsewhere");

    let out = hub.apply(ann, say("lobby", "hello, lobby"));

    assert_eq!(out.trace(), ["message lobby -> reply:ann + [bob]"]);
    let message = Event::Message(Arc::new(ChatMessage {
        room: room("lobby"),
        from: Sender::Member(member(ann, "ann", ann_joined_at)),
        text: "hello, lobby".into(),
        at: out.at,
        seq: 1,
    }));
    let served: Vec<(MemberId, bool)> = out
        .deliveries()
        .iter()
        .map(|d| (d.member, d.as_reply))
        .collect();
    assert_eq!(served, [(ann, true), (bob, false)]);
    assert_eq!(out.received_by(ann), vec![message.clone()]);
    assert_eq!(out.received_by(bob), [message]);
    assert!(out.received_by(carol).is_empty());
}

#[test]
fn a_message_is_from_the_sender_as_listed_in_that_room() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    hub.apply(ann, join("side"));
    let lobby_at = hub.apply(ann, join("lobby")).at;

    let message = message_in(&hub.apply(ann, say("lobby", "hi")).reply());

    // Its join time in this room: not its connection's, nor another room's.
    assert_eq!(message.from, Sender::Member(member(ann, "ann", lobby_at)));
    assert_ne!(lobby_at, hub.connected_at(ann));
}

#[test]
fn a_member_alone_in_a_room_gets_its_own_message() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let out = hub.apply(ann, say("lobby", "anyone?"));
    assert_eq!(out.trace(), ["message lobby -> reply:ann + []"]);
    assert_eq!(seqs(&out.received_by(ann)), [1]);
}

#[test]
fn seq_starts_at_one_and_has_no_gaps_across_senders() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    let mut seen_by_ann = Vec::new();
    let mut seen_by_bob = Vec::new();

    for i in 0..5 {
        for (sender, name) in [(ann, "ann"), (bob, "bob")] {
            let out = hub.apply(sender, say("lobby", &format!("{name} {i}")));
            seen_by_ann.extend(out.received_by(ann));
            seen_by_bob.extend(out.received_by(bob));
        }
    }

    assert_eq!(seqs(&seen_by_ann), (1..=10).collect::<Vec<u64>>());
    // Everyone sees the same messages in the same order.
    assert_eq!(seen_by_ann, seen_by_bob);
    let expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("ann {i}"), format!("bob {i}")])
        .collect();
    assert_eq!(texts(&seen_by_ann), expected);
}

#[test]
fn each_room_counts_its_own_seq() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    hub.apply(ann, join("side"));

    let mut lobby = Vec::new();
    let mut side = Vec::new();
    for _ in 0..3 {
        lobby.extend(hub.apply(ann, say("lobby", "l")).events());
        side.extend(hub.apply(ann, say("side", "s")).events());
    }

    assert_eq!(seqs(&lobby), [1, 2, 3]);
    assert_eq!(seqs(&side), [1, 2, 3]);
}

#[test]
fn saying_in_a_room_one_is_not_in_is_not_in_room_and_changes_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let bob = hub.member_of("bob", "lobby");

    for name in ["lobby", "nowhere"] {
        let before = hub.snapshot();
        let out = hub.apply(ann, say(name, "hi"));
        assert_eq!(out.trace(), ["error not_in_room -> reply:ann"], "{name}");
        assert_eq!(
            error_in(&out.reply()),
            (ErrorCode::NotInRoom, format!("you are not in room {name}"))
        );
        assert_eq!(hub.snapshot(), before, "{name}");
    }

    // Nothing reached bob's room (its first message is seq 1), nothing was created.
    assert_eq!(seqs(&hub.apply(bob, say("lobby", "first")).events()), [1]);
    assert_eq!(hub.state().whole_room(&room("nowhere")), None);
}

#[test]
fn a_message_goes_into_the_rooms_history_as_it_was_sent() {
    let mut hub = TestHub::with(|s| s.history_len = 2);
    let ann = hub.member_of("ann", "lobby");
    let mut sent = Vec::new();
    sent.extend(hub.apply(ann, say("lobby", "one")).events());
    sent.extend(hub.apply(ann, say("lobby", "two")).events());
    hub.apply(ann, rename("anna"));
    sent.extend(hub.apply(ann, say("lobby", "three")).events());

    let history = hub.state().whole_room(&room("lobby")).unwrap().history;

    // The last two, oldest first; each under the name it was sent with.
    assert_eq!(history, Some(sent[1..].to_vec()));
    let names: Vec<String> = sent[1..]
        .iter()
        .map(|event| from_member(&message_in(event).from).name.to_string())
        .collect();
    assert_eq!(names, ["ann", "anna"]);
}

/// The over-the-wire `concurrency` spec, with the arrivals interleaved by a fixed
/// pseudo-random walk instead of by the network.
#[test]
fn twenty_members_saying_a_hundred_times_each_all_see_two_thousand_in_seq_order() {
    const MEMBERS: usize = 20;
    const SAYS_EACH: usize = 100;
    let mut hub = TestHub::new();
    let members: Vec<MemberId> = (0..MEMBERS)
        .map(|i| hub.member_of(&format!("c{i}"), "crowd"))
        .collect();
    let mut said = [0usize; MEMBERS];
    let mut seen: Vec<Vec<Event>> = vec![Vec::new(); MEMBERS];
    let mut walk: u64 = 7;

    while said.iter().sum::<usize>() < MEMBERS * SAYS_EACH {
        walk = walk
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let i = (walk >> 33) as usize % MEMBERS;
        if said[i] == SAYS_EACH {
            continue;
        }
        let text = format!("{}:{}", members[i], said[i]);
        let out = hub.apply(members[i], say("crowd", &text));
        said[i] += 1;
        for (j, id) in members.iter().enumerate() {
            seen[j].extend(out.received_by(*id));
        }
    }

    let total = (MEMBERS * SAYS_EACH) as u64;
    for messages in &seen {
        assert_eq!(*seqs(messages), (1..=total).collect::<Vec<u64>>());
        assert_eq!(messages, &seen[0], "everyone sees one order");
        // Each sender's messages keep their order.
        let mut next = [0usize; MEMBERS];
        for event in messages {
            let message = message_in(event);
            let (sender, n) = message.text.split_once(':').unwrap();
            let i = members
                .iter()
                .position(|id| id.to_string() == sender)
                .unwrap();
            assert_eq!(from_member(&message.from).id, members[i]);
            assert_eq!(n.parse::<usize>().unwrap(), next[i]);
            next[i] += 1;
        }
        assert!(next.iter().all(|count| *count == SAYS_EACH));
    }
}

/// The member a message is from (a member's message, not the server's).
fn from_member(from: &Sender) -> Member {
    match from {
        Sender::Member(member) => member.clone(),
        Sender::Server => panic!("a member's message"),
    }
}
