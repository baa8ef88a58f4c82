//! A cluster's replicas (`RoomState::replica`): a room built from the store's snapshot
//! answers `joined` with the snapshot's `epoch`, `seq` and history and goes on from
//! there; entering repeats the core's `join` rules; a quiet entry and a forget tell
//! nobody; and two replicas fed the same entries, one of them started from the other's
//! snapshot halfway, produce the same effects and end as the same room.

use std::sync::Arc;

use hubbub_core::{
    cmd::{Leave, Rename, Say, Since},
    protocol::{ChatMessage, Event, LeaveReason, Member, MemberId, RoomName, Sender, Timestamp},
    Audience, Command, Effect, Effects, RoomSnapshot, RoomState, Settings,
};
use proptest::prelude::*;

use crate::helpers::{at, display_name, member, room, settings, user_id, START_MILLIS};

fn lobby() -> RoomName {
    room("lobby")
}

fn message(seq: u64, text: &str) -> Arc<ChatMessage> {
    Arc::new(ChatMessage {
        room: lobby(),
        from: Sender::Server,
        text: text.into(),
        at: at(START_MILLIS + seq as i64),
        seq,
    })
}

/// Ann (user `ann`) and bob (no user) in the lobby, `seq` 7, messages 5 to 7 kept.
fn snapshot() -> RoomSnapshot {
    let mut ann = member(MemberId(10), "ann", at(START_MILLIS));
    ann.user = Some(user_id("ann"));
    RoomSnapshot {
        room: lobby(),
        epoch: "store-1".into(),
        seq: 7,
        // Any order.
        members: vec![member(MemberId(20), "bob", at(START_MILLIS + 1)), ann],
        history: (5..=7)
            .map(|seq| message(seq, &format!("m{seq}")))
            .collect(),
    }
}

fn since(seq: u64, epoch: &str) -> Option<Since> {
    Some(Since {
        seq,
        epoch: epoch.to_owned(),
    })
}

fn now() -> Timestamp {
    at(START_MILLIS + 60_000)
}

/// Each effect in order: the events with their audiences, and (un)subscriptions.
fn sends(effects: &Effects) -> Vec<(Event, Vec<Audience>)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { event, to } => Some((event.clone(), to.iter().cloned().collect())),
            _ => None,
        })
        .collect()
}

fn joined_parts(event: &Event) -> (Vec<MemberId>, usize, Vec<u64>, String, u64, Option<bool>) {
    match event {
        Event::Joined {
            members,
            member_count,
            history,
            epoch,
            seq,
            recovered,
            ..
        } => (
            members.iter().map(|m| m.id).collect(),
            *member_count,
            history
                .iter()
                .map(|event| match event {
                    Event::Message(message) => message.seq,
                    other => panic!("history holds messages, not {other:?}"),
                })
                .collect(),
            epoch.to_string(),
            *seq,
            *recovered,
        ),
        other => panic!("joined expected, got {other:?}"),
    }
}

#[test]
fn a_replica_answers_joined_with_the_snapshots_history_seq_and_epoch() {
    let mut replica = RoomState::replica(settings(), snapshot());
    assert_eq!(replica.position(&lobby()), Some(("store-1".into(), 7)));
    let carol = member(MemberId(30), "carol", now());

    let effects = replica.enter(&lobby(), carol.clone(), None, now());

    let mut iter = effects.iter();
    assert_eq!(
        iter.next(),
        Some(&Effect::Subscribe {
            member: MemberId(30),
            room: lobby()
        })
    );
    let sent = sends(&effects);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].1, vec![Audience::Requester]);
    assert_eq!(
        joined_parts(&sent[0].0),
        (
            vec![MemberId(10), MemberId(20), MemberId(30)],
            3,
            vec![5, 6, 7],
            "store-1".into(),
            7,
            None
        )
    );
    assert_eq!(
        sent[1],
        (
            Event::MemberJoined {
                room: lobby(),
                member: carol,
                first: true
            },
            vec![Audience::Room {
                room: lobby(),
                except: Some(MemberId(30))
            }]
        )
    );
}

#[test]
fn resuming_on_a_replica_recovers_exactly_what_its_history_holds() {
    let cases = [
        (since(6, "store-1"), vec![7], Some(true)),
        (since(7, "store-1"), vec![], Some(true)),
        (since(4, "store-1"), vec![5, 6, 7], Some(true)),
        (since(3, "store-1"), vec![5, 6, 7], Some(false)),
        (since(6, "another-life"), vec![5, 6, 7], Some(false)),
        (since(8, "store-1"), vec![5, 6, 7], Some(false)),
    ];
    for (since, history, recovered) in cases {
        let mut replica = RoomState::replica(settings(), snapshot());
        let carol = member(MemberId(30), "carol", now());
        let effects = replica.enter(&lobby(), carol, since.clone(), now());
        let (_, _, got, epoch, seq, got_recovered) = joined_parts(&sends(&effects)[0].0);
        assert_eq!(
            (got, epoch.as_str(), seq, got_recovered),
            (history, "store-1", 7, recovered),
            "{since:?}"
        );
    }
}

#[test]
fn the_next_say_on_a_replica_gets_the_snapshots_seq_plus_one() {
    let mut replica = RoomState::replica(settings(), snapshot());
    let say = Command::Say(Say {
        room: lobby(),
        text: "hi".into(),
    });
    let effects = say.apply_to(&mut replica, MemberId(20), now());
    let sent = sends(&effects);
    let Event::Message(said) = &sent[0].0 else {
        panic!("a message: {sent:?}");
    };
    assert_eq!(said.seq, 8);
    assert_eq!(
        said.from,
        Sender::Member(member(MemberId(20), "bob", at(START_MILLIS + 1)))
    );
    let (published, _) = replica
        .publish(&lobby(), "from the backend".into(), None, now())
        .unwrap();
    assert_eq!(published.seq, 9);
    assert_eq!(replica.position(&lobby()), Some(("store-1".into(), 9)));
    let history: Vec<u64> = replica
        .snapshot(&lobby())
        .unwrap()
        .history
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(history, vec![5, 6, 7, 8, 9]);
}

#[test]
fn entering_again_repeats_joined_and_announces_nothing() {
    let mut replica = RoomState::replica(settings(), snapshot());
    let ann = replica.snapshot(&lobby()).unwrap().members[0].clone();
    assert_eq!(ann.id, MemberId(10));

    let effects = replica.enter(&lobby(), ann, since(6, "store-1"), now());

    let sent = sends(&effects);
    assert_eq!(sent.len(), effects.iter().count(), "no (un)subscription");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, vec![Audience::Requester]);
    let (members, count, history, _, _, recovered) = joined_parts(&sent[0].0);
    assert_eq!(
        (members, count, history, recovered),
        (vec![MemberId(10), MemberId(20)], 2, vec![7], Some(true))
    );
}

#[test]
fn entering_quietly_only_subscribes() {
    let mut replica = RoomState::replica(settings(), snapshot());
    let carol = member(MemberId(30), "carol", now());

    let effects = replica.enter_quietly(&lobby(), carol.clone(), now());

    assert_eq!(
        effects.into_iter().collect::<Vec<_>>(),
        vec![Effect::Subscribe {
            member: MemberId(30),
            room: lobby()
        }]
    );
    assert!(replica.contains(&lobby(), MemberId(30)));
    assert!(
        replica
            .enter_quietly(&lobby(), carol, now())
            .into_iter()
            .next()
            .is_none(),
        "already in: nothing at all"
    );
    assert!(
        replica.member_counts().is_empty(),
        "the others knew it: no count is due"
    );
    let who = replica
        .room_view(&lobby(), None, Default::default())
        .unwrap();
    assert_eq!(who.member_count, 3);
}

#[test]
fn a_big_room_on_a_replica_counts_instead_of_announcing() {
    let settings = Settings {
        presence_events_max: 2,
        ..settings()
    };
    let mut snap = snapshot();
    snap.members
        .push(member(MemberId(25), "cid", at(START_MILLIS + 2)));
    let mut replica = RoomState::replica(settings, snap);
    assert!(
        replica.member_counts().is_empty(),
        "its members know its size from the store"
    );

    let effects = replica.enter(&lobby(), member(MemberId(30), "dan", now()), None, now());

    let sent = sends(&effects);
    assert_eq!(sent.len(), 1, "joined only: {sent:?}");
    assert_eq!(joined_parts(&sent[0].0).1, 4);
    assert_eq!(
        sends(&replica.member_counts()),
        vec![(
            Event::MemberCount {
                room: lobby(),
                count: 4
            },
            vec![Audience::Room {
                room: lobby(),
                except: None
            }]
        )]
    );
    assert!(replica.member_counts().is_empty(), "once per change");
    let effects = replica.disconnect(MemberId(30), LeaveReason::NodeLost, now());
    assert_eq!(sends(&effects), vec![], "counted, not announced");
    assert_eq!(sends(&replica.member_counts()).len(), 1);
}

#[test]
fn a_forgotten_member_is_gone_without_a_word() {
    let mut replica = RoomState::replica(settings(), snapshot());
    let leave = Command::Leave(Leave { room: lobby() });
    let effects = leave.apply_to(&mut replica, MemberId(20), now());
    assert_eq!(sends(&effects).len(), 2, "left and member_left");
    assert!(!replica.contains(&lobby(), MemberId(20)));

    replica.forget(MemberId(20));
    replica.forget(MemberId(99));

    assert!(replica
        .disconnect(MemberId(20), LeaveReason::Disconnect, now())
        .is_empty());
    assert_eq!(replica.counts().members, 1);
    // Forgetting a member still in the room takes it out quietly too.
    replica.forget(MemberId(10));
    let snap = replica.snapshot(&lobby()).unwrap();
    assert!(snap.members.is_empty());
    assert_eq!((snap.seq, &*snap.epoch), (7, "store-1"));
}

#[test]
fn a_replicas_room_stays_when_it_empties_and_knows_no_limit() {
    let mut replica = RoomState::replica(
        Settings {
            room_ttl_ms: 0,
            max_rooms_total: 1,
            max_rooms_per_connection: 1,
            history_max_bytes: 0,
            ..settings()
        },
        snapshot(),
    );
    for id in [MemberId(10), MemberId(20)] {
        replica.disconnect(id, LeaveReason::Timeout, now());
    }
    assert_eq!(replica.position(&lobby()), Some(("store-1".into(), 7)));
    replica.expire(at(i64::MAX / 2));
    let (published, _) = replica
        .publish(&lobby(), "x".repeat(1_000), None, now())
        .unwrap();
    assert_eq!(published.seq, 8);
    let snap = replica.snapshot(&lobby()).unwrap();
    assert_eq!(snap.history.len(), 4, "HISTORY_MAX_BYTES is the store's");
    assert_eq!(replica.counts().rooms, 1);
}

#[test]
fn for_replica_lifts_the_limits_and_keeps_the_rules() {
    let own = settings();
    let replica = own.for_replica();
    assert_eq!(replica.max_rooms_per_connection, usize::MAX);
    assert_eq!(replica.max_rooms_total, usize::MAX);
    assert_eq!(replica.history_max_bytes, usize::MAX);
    assert!(replica.room_ttl_ms > 0 && replica.room_ttl_ms <= i64::MAX as u64);
    assert_eq!(
        Settings {
            max_rooms_per_connection: own.max_rooms_per_connection,
            max_rooms_total: own.max_rooms_total,
            history_max_bytes: own.history_max_bytes,
            room_ttl_ms: own.room_ttl_ms,
            ..replica.clone()
        },
        own
    );
    assert_eq!(replica.for_replica(), replica);
}

#[test]
fn a_snapshot_of_a_replica_is_its_snapshot() {
    let mut sorted = snapshot();
    sorted.members.sort_by_key(|m| m.id);
    let replica = RoomState::replica(settings(), snapshot());
    assert_eq!(replica.snapshot(&lobby()), Some(sorted));
    assert_eq!(replica.snapshot(&room("elsewhere")), None);
    assert_eq!(replica.position(&room("elsewhere")), None);
    let mut other = RoomState::replica(settings(), snapshot());
    assert!(
        other
            .enter(
                &room("elsewhere"),
                member(MemberId(1), "x", now()),
                None,
                now()
            )
            .is_empty(),
        "a replica holds its one room"
    );
}

#[test]
fn a_snapshot_keeps_the_last_history_len_and_never_repeats_a_seq() {
    let mut snap = snapshot();
    snap.seq = 3; // behind its own history: the history wins
    let mut replica = RoomState::replica(
        Settings {
            history_len: 2,
            ..settings()
        },
        snap,
    );
    let kept: Vec<u64> = replica
        .snapshot(&lobby())
        .unwrap()
        .history
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(kept, vec![6, 7]);
    let (published, _) = replica
        .publish(&lobby(), "next".into(), None, now())
        .unwrap();
    assert_eq!(published.seq, 8);
}

// --- two replicas, the same entries ---------------------------------------------------

/// One entry of the room's log, as the store would have it.
#[derive(Debug, Clone)]
enum Entry {
    Enter { id: u64, since: Option<u64> },
    EnterQuietly { id: u64 },
    Say { id: u64 },
    Publish,
    Leave { id: u64 },
    Disconnect { id: u64, reason: LeaveReason },
    Rename { id: u64, name: u8 },
    Kick { id: u64 },
}

/// Ids 1 to 6; ids 1 and 2 are connections of user `u`, 3 of `v`, the rest have none.
fn user_of(id: u64) -> Option<hubbub_core::protocol::UserId> {
    match id {
        1 | 2 => Some(user_id("u")),
        3 => Some(user_id("v")),
        _ => None,
    }
}

fn entry() -> impl Strategy<Value = Entry> {
    let id = 1..=6u64;
    let reason = prop_oneof![
        Just(LeaveReason::Disconnect),
        Just(LeaveReason::Timeout),
        Just(LeaveReason::Slow),
        Just(LeaveReason::NodeLost),
    ];
    prop_oneof![
        4 => (id.clone(), proptest::option::of(0..12u64))
            .prop_map(|(id, since)| Entry::Enter { id, since }),
        1 => id.clone().prop_map(|id| Entry::EnterQuietly { id }),
        4 => id.clone().prop_map(|id| Entry::Say { id }),
        1 => Just(Entry::Publish),
        2 => id.clone().prop_map(|id| Entry::Leave { id }),
        2 => (id.clone(), reason).prop_map(|(id, reason)| Entry::Disconnect { id, reason }),
        1 => (id.clone(), 0..3u8).prop_map(|(id, name)| Entry::Rename { id, name }),
        1 => id.prop_map(|id| Entry::Kick { id }),
    ]
}

/// Applies entry number `step` as a cluster node does: with the entry's time, and a
/// member that left the room (a `leave`, a kick) forgotten after it.
fn feed(state: &mut RoomState, step: usize, entry: &Entry) -> Effects {
    let now = at(START_MILLIS + 1_000 * step as i64);
    let (effects, gone) = match *entry {
        Entry::Enter { id, since } => {
            let mut member = member(MemberId(id), &format!("m{id}"), now);
            member.user = user_of(id);
            let since = since.map(|seq| Since {
                seq,
                epoch: "e1".into(),
            });
            (state.enter(&lobby(), member, since, now), None)
        }
        Entry::EnterQuietly { id } => {
            let member = Member {
                user: user_of(id),
                ..member(MemberId(id), &format!("q{id}"), now)
            };
            (state.enter_quietly(&lobby(), member, now), None)
        }
        Entry::Say { id } => {
            let say = Command::Say(Say {
                room: lobby(),
                text: format!("said at {step}"),
            });
            (say.apply_to(state, MemberId(id), now), None)
        }
        Entry::Publish => {
            let published = state.publish(&lobby(), format!("published at {step}"), None, now);
            (published.expect("a replica never refuses").1, None)
        }
        Entry::Leave { id } => {
            let leave = Command::Leave(Leave { room: lobby() });
            (leave.apply_to(state, MemberId(id), now), Some(id))
        }
        Entry::Disconnect { id, reason } => (state.disconnect(MemberId(id), reason, now), None),
        Entry::Rename { id, name } => {
            let rename = Command::Rename(Rename {
                name: display_name(&format!("n{name}")),
            });
            (rename.apply_to(state, MemberId(id), now), None)
        }
        Entry::Kick { id } => (
            state.kick(&lobby(), MemberId(id), now).unwrap_or_default(),
            Some(id),
        ),
    };
    if let Some(id) = gone {
        if !state.contains(&lobby(), MemberId(id)) {
            state.forget(MemberId(id));
        }
    }
    effects
}

/// The effects as JSON lines: what members would receive, and to whom.
fn wire(effects: &Effects) -> Vec<String> {
    effects
        .iter()
        .map(|effect| match effect {
            Effect::Send { event, to } => format!("{} -> {to:?}", event.to_json()),
            other => format!("{other:?}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn two_replicas_fed_the_same_entries_agree(
        entries in proptest::collection::vec(entry(), 0..60),
        split in 0.0..=1.0f64,
        history_len in 0..4usize,
        presence_events_max in 1..5usize,
    ) {
        let settings = Settings {
            history_len,
            presence_events_max,
            joined_members_max: 3,
            ..settings()
        };
        let k = ((entries.len() as f64) * split) as usize;
        let mut a = RoomState::replica(
            settings.clone(),
            RoomSnapshot::new_room(lobby(), "e1".into()),
        );
        for (step, entry) in entries[..k].iter().enumerate() {
            feed(&mut a, step, entry);
        }
        let mut b = RoomState::replica(settings, a.snapshot(&lobby()).unwrap());
        prop_assert_eq!(a.snapshot(&lobby()), b.snapshot(&lobby()));
        for (step, entry) in entries.iter().enumerate().skip(k) {
            let (from_a, from_b) = (feed(&mut a, step, entry), feed(&mut b, step, entry));
            prop_assert_eq!(wire(&from_a), wire(&from_b), "entry {} {:?}", step, entry);
            prop_assert_eq!(from_a, from_b);
        }
        prop_assert_eq!(a.snapshot(&lobby()), b.snapshot(&lobby()));
        prop_assert_eq!(a.position(&lobby()), b.position(&lobby()));
        prop_assert_eq!(a.counts(), b.counts());
    }
}
