//! `echo`: the text back to the sender alone, with the time; the one command that needs
//! no room state.

use hubbub_core::protocol::Event;
use serde_json::json;

use crate::helpers::*;

#[test]
fn echo_replies_to_the_sender_alone_with_the_text_and_the_time() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let _bob = hub.member_of("bob", "lobby");
    let before = hub.snapshot();

    let out = hub.apply(ann, echo("hi there ✓"));

    assert_eq!(out.trace(), ["echo -> reply:ann"]);
    assert_eq!(
        out.reply(),
        Event::Echo {
            text: "hi there ✓".into(),
            at: out.at,
        }
    );
    assert_eq!(
        wire(&out.reply()),
        json!({"type": "echo", "text": "hi there ✓", "at": "2026-12-01T09:00:04.000Z"})
    );
    assert_eq!(hub.snapshot(), before);
}

#[test]
fn echo_is_answered_without_the_room_state_and_no_other_command_is() {
    let now = at(START_MILLIS);
    assert_eq!(
        echo("hi").answer_here(now),
        Ok(Event::Echo {
            text: "hi".into(),
            at: now,
        })
    );
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    for command in one_of_each("lobby", ann).into_iter().skip(1) {
        assert_eq!(command.clone().answer_here(now), Err(command));
    }
}
