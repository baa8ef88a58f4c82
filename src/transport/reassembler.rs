//! Reassembly: joins a client's fragmented messages into whole ones, enforcing the size
//! limit and UTF-8 on the whole message. It does not answer control frames or track the
//! closing handshake (see `connection` and `close`).

use actix_http::ws::Item;
use actix_web_actors::ws::{self, CloseReason};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::Violation;

/// A whole message from the client, fragments already joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    /// The client's close frame, its code not yet checked.
    Close(Option<CloseReason>),
}

/// Joins continuation frames into whole messages, enforcing the size limit on the whole
/// message (the decoder enforces it per frame). Control frames may arrive between
/// fragments (RFC 6455 section 5.4) and pass straight through.
#[derive(Debug)]
pub struct Reassembler {
    max_message_bytes: usize,
    /// The message being assembled: `Some(true)` text, `Some(false)` binary.
    in_progress: Option<bool>,
    buffer: BytesMut,
    /// How much of a text message's buffer is known to be valid UTF-8, so each fragment
    /// is checked once and bad text fails at the fragment that breaks it.
    valid_utf8_up_to: usize,
}

impl Reassembler {
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            in_progress: None,
            buffer: BytesMut::new(),
            valid_utf8_up_to: 0,
        }
    }

    /// Feeds one frame from the transport; `Ok(None)` means "part of a message, keep going".
    pub fn push(&mut self, message: ws::Message) -> Result<Option<Incoming>, Violation> {
        match message {
            ws::Message::Text(text) => {
                self.no_fragment_open()?;
                Ok(Some(Incoming::Text(text)))
            }
            ws::Message::Binary(data) => {
                self.no_fragment_open()?;
                Ok(Some(Incoming::Binary(data)))
            }
            ws::Message::Ping(data) => Ok(Some(Incoming::Ping(data))),
            ws::Message::Pong(_) => Ok(Some(Incoming::Pong)),
            ws::Message::Close(reason) => Ok(Some(Incoming::Close(reason))),
            ws::Message::Nop => Ok(None),
            ws::Message::Continuation(item) => self.continuation(item),
        }
    }

    fn continuation(&mut self, item: Item) -> Result<Option<Incoming>, Violation> {
        match item {
            Item::FirstText(data) => self.start(true, data),
            Item::FirstBinary(data) => self.start(false, data),
            Item::Continue(data) => {
                self.append(data)?;
                Ok(None)
            }
            Item::Last(data) => {
                self.append(data)?;
                let is_text = self.in_progress.take().unwrap_or(false);
                let whole = self.buffer.split().freeze();
                if is_text {
                    ByteString::try_from(whole)
                        .map(|text| Some(Incoming::Text(text)))
                        .map_err(|_| Violation::InvalidUtf8)
                } else {
                    Ok(Some(Incoming::Binary(whole)))
                }
            }
        }
    }

    fn start(&mut self, is_text: bool, data: Bytes) -> Result<Option<Incoming>, Violation> {
        self.no_fragment_open()?;
        self.in_progress = Some(is_text);
        self.buffer.clear();
        self.valid_utf8_up_to = 0;
        self.append(data)?;
        Ok(None)
    }

    fn append(&mut self, data: Bytes) -> Result<(), Violation> {
        if self.in_progress.is_none() {
            return Err(Violation::Protocol(
                "continuation frame without a message to continue".into(),
            ));
        }
        if self.buffer.len() + data.len() > self.max_message_bytes {
            return Err(Violation::TooBig);
        }
        self.buffer.extend_from_slice(&data);
        if self.in_progress == Some(true) {
            self.check_utf8_so_far()?;
        }
        Ok(())
    }

    /// Fails as soon as the text so far cannot be the start of valid UTF-8; a character
    /// cut off at the end of a fragment is fine (the next fragment may complete it).
    fn check_utf8_so_far(&mut self) -> Result<(), Violation> {
        match std::str::from_utf8(&self.buffer[self.valid_utf8_up_to..]) {
            Ok(_) => {
                self.valid_utf8_up_to = self.buffer.len();
                Ok(())
            }
            Err(err) if err.error_len().is_none() => {
                self.valid_utf8_up_to += err.valid_up_to();
                Ok(())
            }
            Err(_) => Err(Violation::InvalidUtf8),
        }
    }

    fn no_fragment_open(&self) -> Result<(), Violation> {
        match self.in_progress {
            Some(_) => Err(Violation::Protocol(
                "new data frame while a fragmented message is open".into(),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> ws::Message {
        ws::Message::Continuation(Item::FirstText(Bytes::from_static(s.as_bytes())))
    }

    #[test]
    fn joins_fragments_into_one_message() {
        let mut reassembler = Reassembler::new(100);
        assert_eq!(reassembler.push(text("hel")), Ok(None));
        let ping = ws::Message::Ping(Bytes::from_static(b"p"));
        assert_eq!(
            reassembler.push(ping),
            Ok(Some(Incoming::Ping(Bytes::from_static(b"p"))))
        );
        let cont = ws::Message::Continuation(Item::Continue(Bytes::from_static(b"lo ")));
        assert_eq!(reassembler.push(cont), Ok(None));
        let last = ws::Message::Continuation(Item::Last(Bytes::from_static(b"you")));
        assert_eq!(
            reassembler.push(last),
            Ok(Some(Incoming::Text(ByteString::from_static("hello you"))))
        );
    }

    #[test]
    fn enforces_the_limit_across_fragments() {
        let mut reassembler = Reassembler::new(4);
        assert_eq!(reassembler.push(text("abc")), Ok(None));
        let last = ws::Message::Continuation(Item::Last(Bytes::from_static(b"de")));
        assert_eq!(reassembler.push(last), Err(Violation::TooBig));
    }

    #[test]
    fn rejects_interleaved_and_orphan_fragments() {
        let mut reassembler = Reassembler::new(100);
        let orphan = ws::Message::Continuation(Item::Last(Bytes::new()));
        assert!(matches!(
            reassembler.push(orphan),
            Err(Violation::Protocol(_))
        ));
        reassembler.push(text("a")).unwrap();
        let interleaved = ws::Message::Text(ByteString::from_static("b"));
        assert!(matches!(
            reassembler.push(interleaved),
            Err(Violation::Protocol(_))
        ));
    }

    #[test]
    fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
        let mut reassembler = Reassembler::new(100);
        reassembler.push(text("ok")).unwrap();
        let bad = ws::Message::Continuation(Item::Continue(Bytes::from_static(&[0xff])));
        assert_eq!(reassembler.push(bad), Err(Violation::InvalidUtf8));
    }

    #[test]
    fn a_character_split_across_fragments_is_fine() {
        let mut reassembler = Reassembler::new(100);
        let snowman = "\u{2603}".as_bytes();
        let first =
            ws::Message::Continuation(Item::FirstText(Bytes::copy_from_slice(&snowman[..1])));
        assert_eq!(reassembler.push(first), Ok(None));
        let last = ws::Message::Continuation(Item::Last(Bytes::copy_from_slice(&snowman[1..])));
        assert_eq!(
            reassembler.push(last),
            Ok(Some(Incoming::Text(ByteString::from_static("\u{2603}"))))
        );
    }

    #[test]
    fn invalid_utf8_across_fragments_is_1007() {
        let mut reassembler = Reassembler::new(100);
        let first = ws::Message::Continuation(Item::FirstText(Bytes::from_static(&[0xce])));
        reassembler.push(first).unwrap();
        let last = ws::Message::Continuation(Item::Last(Bytes::from_static(&[0xff])));
        assert_eq!(reassembler.push(last), Err(Violation::InvalidUtf8));
    }
}
