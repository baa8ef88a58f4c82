//! The part of the hub protocol (`/work/shared/PROTOCOL.md`, `docs/protocol.md`) the load
//! generator speaks: the frames it sends, and a borrowed view of the frames it reads.
//!
//! Every text the load generator puts in a frame is its own (digits, letters, `.`, `:`,
//! `-`), so frames are built with `format!` without escaping, and the hot `message`
//! frame is read by [`quick_message`] without a JSON parser, falling back to serde for
//! anything it does not recognise.

use std::borrow::Cow;

use serde::{de::IgnoredAny, Deserialize};

/// An `echo` command is `ECHO_PREFIX`, the text, `ECHO_SUFFIX`.
pub const ECHO_PREFIX: &str = r#"{"type":"echo","text":""#;
pub const ECHO_SUFFIX: &str = r#""}"#;

#[cfg(test)]
pub fn echo(text: &str) -> String {
    format!("{ECHO_PREFIX}{text}{ECHO_SUFFIX}")
}

/// Is `json` the `echo` event answering `text`? Compared in place when it has hubbub's
/// layout (`{"type":"echo","text":...,"at":...}`), parsed otherwise.
pub fn is_echo_of(json: &str, text: &str) -> Result<bool, String> {
    let in_place = json
        .strip_prefix(ECHO_PREFIX)
        .and_then(|rest| rest.strip_prefix(text))
        .is_some_and(|rest| rest.starts_with(r#"","at":""#));
    if in_place {
        return Ok(true);
    }
    let frame = parse(json)?;
    Ok(frame.is("echo") && frame.text.as_deref() == Some(text))
}

/// Presence events as hubbub writes them (`type` first) start with these: the `joins`
/// mode counts them by prefix, without a JSON parser, as a storm can bring millions.
pub const MEMBER_JOINED_PREFIX: &str = r#"{"type":"member_joined","#;
pub const MEMBER_LEFT_PREFIX: &str = r#"{"type":"member_left","#;

pub fn say(room: &str, text: &str) -> String {
    format!(r#"{{"type":"say","room":"{room}","text":"{text}"}}"#)
}

pub fn say_with_ref(room: &str, text: &str, reference: &str) -> String {
    format!(r#"{{"type":"say","room":"{room}","text":"{text}","ref":"{reference}"}}"#)
}

pub fn join(room: &str, reference: &str) -> String {
    format!(r#"{{"type":"join","room":"{room}","ref":"{reference}"}}"#)
}

pub fn leave(room: &str, reference: &str) -> String {
    format!(r#"{{"type":"leave","room":"{room}","ref":"{reference}"}}"#)
}

/// Any server frame; the fields it does not have are `None`.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub room: Option<Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, rename = "ref", borrow)]
    pub reference: Option<Cow<'a, str>>,
    /// `joined` and `presence`: the members, counted, not read.
    #[serde(default)]
    pub members: Option<Vec<IgnoredAny>>,
    /// `joined` and `presence`: everyone in the room (a server before big rooms lists
    /// them all in `members` and has no count).
    #[serde(default)]
    pub member_count: Option<u64>,
    /// `member_count`: everyone in the room.
    #[serde(default)]
    pub count: Option<u64>,
}

impl Frame<'_> {
    /// `welcome`, `joined`, ...: is this frame of that type?
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

pub fn parse(json: &str) -> Result<Frame<'_>, String> {
    serde_json::from_str(json)
        .map_err(|err| format!("not a hub frame ({err}): {}", crate::client::shorten(json)))
}

/// The fields of a `message` frame the fan-out checks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageView<'a> {
    pub room: &'a str,
    pub text: &'a str,
    pub seq: u64,
}

/// Reads a `message` frame as hubbub serializes it (`{"type":"message","room":...,
/// "from":{...},"text":...,"at":"<24 characters>","seq":N}`) by locating its fields from
/// both ends, several times cheaper than a JSON parser: the load generator must stay
/// cheaper than the server it measures. `None` for any other frame, or one it cannot
/// read this way (an escaped quote in the text, another field order or time format): the
/// caller then parses it with [`parse`].
pub fn quick_message(json: &str) -> Option<MessageView<'_>> {
    const AT_LEN: usize = "2026-11-24T23:14:20.113Z".len();
    let rest = json.strip_prefix(r#"{"type":"message","room":""#)?;
    let (room, _) = rest.split_once('"')?;
    let head = json.strip_suffix('}')?;
    let digits = head
        .bytes()
        .rev()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    let (head, seq) = head.split_at(head.len() - digits);
    let seq = seq.parse().ok()?;
    let head = head.strip_suffix(r#"","seq":"#)?;
    let head = head.get(..head.len().checked_sub(AT_LEN)?)?;
    let head = head.strip_suffix(r#"","at":""#)?;
    let text_starts = head.rfind('"')? + 1;
    head[..text_starts].strip_suffix(r#""text":""#)?;
    Some(MessageView {
        room,
        text: &head[text_starts..],
        seq,
    })
}

/// The same view from a parsed frame (the slow path).
pub fn message_of<'a>(frame: &'a Frame<'a>) -> Option<MessageView<'a>> {
    if !frame.is("message") {
        return None;
    }
    Some(MessageView {
        room: frame.room.as_deref()?,
        text: frame.text.as_deref()?,
        seq: frame.seq?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"{"type":"message","room":"r-1","from":{"id":"7","name":"r0m0","joined_at":"2026-11-24T23:14:17.002Z"},"text":"p0.0:12:345:xx","at":"2026-11-24T23:14:20.113Z","seq":13}"#;

    #[test]
    fn quick_message_agrees_with_the_parser() {
        let quick = quick_message(MESSAGE).unwrap();
        let frame = parse(MESSAGE).unwrap();
        assert_eq!(Some(quick), message_of(&frame));
        assert_eq!(quick.seq, 13);
        assert_eq!(quick.text, "p0.0:12:345:xx");
    }

    #[test]
    fn quick_message_declines_other_frames() {
        assert_eq!(
            quick_message(r#"{"type":"echo","text":"x","at":"t"}"#),
            None
        );
        let escaped = MESSAGE.replace("xx", r#"x\"x"#);
        assert_eq!(quick_message(&escaped), None);
        let reordered = MESSAGE.replace(r#","seq":13}"#, r#","seq":13,"ref":"s"}"#);
        assert_eq!(quick_message(&reordered), None);
    }

    #[test]
    fn echo_replies_are_recognised_in_place_or_parsed() {
        let reply = r#"{"type":"echo","text":"1:2:xx","at":"2026-11-24T23:14:16.981Z"}"#;
        assert_eq!(is_echo_of(reply, "1:2:xx"), Ok(true));
        assert_eq!(is_echo_of(reply, "1:2:x"), Ok(false));
        let reordered = r#"{"at":"2026-11-24T23:14:16.981Z","type":"echo","text":"1:2:xx"}"#;
        assert_eq!(is_echo_of(reordered, "1:2:xx"), Ok(true));
        assert!(is_echo_of("hello", "hello").is_err());
    }

    #[test]
    fn presence_prefixes_match_the_frames() {
        let joined = r#"{"type":"member_joined","room":"r","member":{"id":"7","name":"j7","joined_at":"2026-11-24T23:14:17.002Z"}}"#;
        assert!(joined.starts_with(MEMBER_JOINED_PREFIX));
        assert!(parse(joined).unwrap().is("member_joined"));
        let left = r#"{"type":"member_left","room":"r","member":{"id":"7","name":"j7","joined_at":"2026-11-24T23:14:17.002Z"},"reason":"leave"}"#;
        assert!(left.starts_with(MEMBER_LEFT_PREFIX));
        assert!(!left.starts_with(MEMBER_JOINED_PREFIX));
        let count = parse(r#"{"type":"member_count","room":"r","count":8000}"#).unwrap();
        assert_eq!(count.count, Some(8000));
    }

    #[test]
    fn built_frames_are_json() {
        for frame in [
            echo("a"),
            say("r", "t"),
            say_with_ref("r", "t", "s1"),
            join("r", "j1"),
            leave("r", "l1"),
        ] {
            serde_json::from_str::<serde_json::Value>(&frame).unwrap();
        }
    }
}
