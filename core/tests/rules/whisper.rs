//! `whisper`: one event for the target and a copy for the sender, whatever rooms they
//! are in; one copy when whispering to oneself; `unknown_member` for an id nobody has.

use hubbub_core::protocol::{ErrorCode, Event, MemberId};
use serde_json::json;

use crate::helpers::*;

#[test]
fn a_whisper_reaches_the_target_then_the_sender_and_nobody_else() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    let carol = hub.member_of("carol", "lobby");

    let out = hub.apply(ann, whisper(bob, "psst"));

    assert_eq!(out.trace(), ["whisper -> bob + reply:ann"]);
    // No room is involved: both members carry their connection time.
    let whispered = Event::Whisper {
        from: member(ann, "ann", hub.connected_at(ann)),
        to: member(bob, "bob", hub.connected_at(bob)),
        text: "psst".into(),
        at: out.at,
    };
    assert_eq!(out.received_by(bob), vec![whispered.clone()]);
    assert_eq!(out.received_by(ann), vec![whispered.clone()]);
    assert!(out.received_by(carol).is_empty());
    assert_eq!(
        wire(&whispered),
        json!({
            "type": "whisper",
            "from": {"id": "1", "name": "ann", "joined_at": "2026-12-01T09:00:00.000Z"},
            "to": {"id": "2", "name": "bob", "joined_at": "2026-12-01T09:00:02.000Z"},
            "text": "psst",
            "at": "2026-12-01T09:00:06.000Z",
        })
    );
}

#[test]
fn a_whisper_needs_no_shared_room() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let bob = hub.member_of("bob", "lobby");
    let before = hub.snapshot();

    let out = hub.apply(ann, whisper(bob, "hello from outside"));

    assert_eq!(out.trace(), ["whisper -> bob + reply:ann"]);
    assert_eq!(out.received_by(bob), out.received_by(ann));
    // Nor does it touch any room.
    assert_eq!(hub.snapshot(), before);
}

#[test]
fn a_whisper_to_oneself_is_delivered_once() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");

    let out = hub.apply(ann, whisper(ann, "note to self"));

    assert_eq!(out.trace(), ["whisper -> reply:ann"]);
    let me = member(ann, "ann", hub.connected_at(ann));
    assert_eq!(
        out.received_by(ann),
        [Event::Whisper {
            from: me.clone(),
            to: me,
            text: "note to self".into(),
            at: out.at,
        }]
    );
}

#[test]
fn a_whisper_to_an_id_nobody_has_is_unknown_member_and_changes_nothing() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let _bob = hub.member_of("bob", "lobby");
    let before = hub.snapshot();

    for nobody in [hub.unused_id(), MemberId(0), MemberId(u64::MAX)] {
        let out = hub.apply(ann, whisper(nobody, "hi"));
        assert_eq!(
            out.trace(),
            ["error unknown_member -> reply:ann"],
            "{nobody}"
        );
        assert_eq!(
            error_in(&out.reply()),
            (
                ErrorCode::UnknownMember,
                format!("no member has id {nobody}")
            )
        );
        assert_eq!(hub.snapshot(), before);
    }
}

#[test]
fn a_whisper_to_a_departed_member_is_unknown_member() {
    let mut hub = TestHub::new();
    let ann = hub.member_of("ann", "lobby");
    let bob = hub.member_of("bob", "lobby");
    hub.disconnect(bob, hubbub_core::protocol::LeaveReason::Disconnect);

    assert_eq!(
        hub.apply(ann, whisper(bob, "hi")).trace(),
        ["error unknown_member -> reply:ann"]
    );
}

#[test]
fn a_whisper_carries_both_members_current_names() {
    let mut hub = TestHub::new();
    let ann = hub.connect("ann");
    let bob = hub.connect("bob");
    hub.apply(ann, rename("anna"));
    hub.apply(bob, rename("bobby"));

    let out = hub.apply(ann, whisper(bob, "still me"));

    assert_eq!(
        out.reply(),
        Event::Whisper {
            from: member(ann, "anna", hub.connected_at(ann)),
            to: member(bob, "bobby", hub.connected_at(bob)),
            text: "still me".into(),
            at: out.at,
        }
    );
}
