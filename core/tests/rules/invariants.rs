//! Long mixed runs of every operation. The test hub checks after each one that the
//! Subscribe/Unsubscribe effects add up to the rooms' members, that counts agree, that
//! nobody gets two copies of an event or one while not connected, and that every room's
//! messages are numbered from 1 without gaps. Here, besides: a refused command changes
//! nothing, and what a command sends reaches exactly the room's members.

use hubbub_core::protocol::{Event, MemberId};

use crate::helpers::*;

/// A fixed pseudo-random walk (a linear congruential generator): the same run every time.
struct Walk(u64);

impl Walk {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize % n
    }
}

const ROOMS: [&str; 4] = ["lobby", "side", "Lobby", "dev"];

#[test]
fn a_long_mixed_run_keeps_rooms_subscriptions_and_seq_consistent() {
    for seed in 1..=8 {
        run(seed, 1_500);
    }
}

fn run(seed: u64, steps: usize) {
    let mut hub = TestHub::with(|s| {
        s.max_rooms_per_connection = 2;
        s.history_len = 3;
    });
    let mut walk = Walk(seed);
    let mut members: Vec<MemberId> = (0..5).map(|i| hub.connect(&format!("m{i}"))).collect();
    let mut departed: Vec<MemberId> = Vec::new();

    for step in 0..steps {
        let slot = walk.below(members.len());
        let actor = members[slot];
        let room_name = ROOMS[walk.below(ROOMS.len())];
        let before = hub.snapshot();
        let out = match walk.below(12) {
            0..=2 => hub.apply(actor, join(room_name)),
            3 => hub.apply(actor, leave(room_name)),
            4..=6 => hub.apply(actor, say(room_name, &format!("step {step}"))),
            7 => {
                let to = if walk.below(4) == 0 && !departed.is_empty() {
                    departed[walk.below(departed.len())]
                } else {
                    members[walk.below(members.len())]
                };
                hub.apply(actor, whisper(to, "psst"))
            }
            8 => hub.apply(actor, rename(&format!("m{slot}-{step}"))),
            9 => match hub.publish(room_name, "from the backend") {
                Ok((_, out)) => out,
                Err(_) => {
                    assert_eq!(hub.snapshot(), before, "a refused publish changes nothing");
                    continue;
                }
            },
            10 => {
                if walk.below(3) == 0 {
                    // A command after the end of the connection does nothing.
                    let gone = departed.last().copied().unwrap_or(hub.unused_id());
                    let out = hub.apply(gone, say(room_name, "ghost"));
                    assert!(out.is_empty());
                    out
                } else {
                    hub.apply(
                        actor,
                        if walk.below(2) == 0 {
                            who(room_name)
                        } else {
                            rooms()
                        },
                    )
                }
            }
            _ => {
                let reason = REASONS[walk.below(REASONS.len())];
                let out = hub.disconnect(actor, reason);
                assert!(hub.disconnect(actor, reason).is_empty(), "once only");
                departed.push(actor);
                members[slot] = hub.connect(&format!("m{slot}"));
                out
            }
        };

        if let [Event::Error { .. }] = out.events().as_slice() {
            assert_eq!(
                out.replies().len(),
                1,
                "an error goes to the requester alone"
            );
            assert_eq!(hub.snapshot(), before, "a refused command changes nothing");
        }
        // A message reaches the members the room had before it, and no one else.
        for event in out.events() {
            if let Event::Message(message) = &event {
                let expected: Vec<MemberId> = before
                    .rooms
                    .iter()
                    .find(|view| view.name == message.room)
                    .map(|view| view.members.iter().map(|m| m.id).collect())
                    .unwrap_or_default();
                let mut got: Vec<MemberId> = out
                    .deliveries()
                    .iter()
                    .filter(|d| d.event == event)
                    .map(|d| d.member)
                    .collect();
                got.sort();
                assert_eq!(got, expected, "seed {seed}, step {step}: {:?}", out.trace());
            }
        }
        // History is the room's last messages, numbered without gaps.
        for view in hub.snapshot().rooms {
            let history = seqs(&view.history.unwrap());
            assert!(history.len() <= 3);
            assert!(history.windows(2).all(|w| w[1] == w[0] + 1), "{history:?}");
        }
    }
}
