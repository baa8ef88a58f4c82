//! What breaks a connection: [`Violation`], and the one place the transport's errors
//! (actix-http's `ProtocolError`, and the I/O errors it carries) are mapped to one. It
//! does not decide how the connection ends (see `close`).

use actix_web_actors::ws::ProtocolError;

use super::CloseCode;

/// Why a connection must be closed; each maps to one close code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A message over the size limit (1009).
    TooBig,
    /// Text that is not UTF-8 (1007).
    InvalidUtf8,
    /// Anything else RFC 6455 forbids (1002).
    Protocol(String),
    /// The connection broke (TCP closed without a close frame): nothing to send.
    ConnectionLost(String),
}

impl Violation {
    /// The close code to send, or `None` when the peer is already gone.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Violation::TooBig => Some(CloseCode::TooBig),
            Violation::InvalidUtf8 => Some(CloseCode::InvalidPayload),
            Violation::Protocol(_) => Some(CloseCode::ProtocolError),
            Violation::ConnectionLost(_) => None,
        }
    }

    /// Says what went wrong, for the close frame's reason and the log.
    pub fn description(&self) -> String {
        match self {
            Violation::TooBig => "message too big".into(),
            Violation::InvalidUtf8 => "text is not valid UTF-8".into(),
            Violation::Protocol(detail) | Violation::ConnectionLost(detail) => detail.clone(),
        }
    }
}

/// Several of the decoder's verdicts reach us only as I/O errors: the stream wrapper in
/// actix-web-actors turns every payload error into `io::ErrorKind::Other` with the
/// error's text, and reports text that is not UTF-8 the same way. The text is all there
/// is to tell them apart, so this is the one place that reads it.
impl From<ProtocolError> for Violation {
    fn from(err: ProtocolError) -> Self {
        match err {
            ProtocolError::Overflow => Violation::TooBig,
            // The FrameSizeGuard's verdict, carried through the decoder as an I/O error.
            ProtocolError::Io(io)
                if io.to_string() == actix_web::error::PayloadError::Overflow.to_string() =>
            {
                Violation::TooBig
            }
            // Framing the decoder rejects (e.g. reserved bits set) arrives as invalid data.
            ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                Violation::Protocol(io.to_string())
            }
            // The decoder reports text that is not UTF-8 as an I/O error naming UTF-8.
            ProtocolError::Io(io) if io.to_string().to_ascii_lowercase().contains("utf-8") => {
                Violation::InvalidUtf8
            }
            ProtocolError::Io(io) => Violation::ConnectionLost(io.to_string()),
            other => Violation::Protocol(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use actix_web::error::PayloadError;
    use bytes::Bytes;
    use bytestring::ByteString;

    use super::*;

    /// An error as actix-web-actors' stream wrapper builds it: kind `Other`, the text of
    /// what went wrong.
    fn wrapped(what: impl std::fmt::Display) -> ProtocolError {
        ProtocolError::Io(io::Error::other(what.to_string()))
    }

    #[test]
    fn an_oversize_frame_is_too_big() {
        assert_eq!(Violation::from(ProtocolError::Overflow), Violation::TooBig);
    }

    #[test]
    fn the_frame_size_guards_overflow_is_too_big() {
        assert_eq!(
            Violation::from(wrapped(PayloadError::Overflow)),
            Violation::TooBig
        );
    }

    #[test]
    fn invalid_data_is_a_protocol_violation() {
        let reserved_bits = io::Error::new(
            io::ErrorKind::InvalidData,
            "Received a frame with non-zero reserved bits",
        );
        assert_eq!(
            Violation::from(ProtocolError::Io(reserved_bits)),
            Violation::Protocol("Received a frame with non-zero reserved bits".into())
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_invalid_utf8() {
        let not_utf8 = ByteString::try_from(Bytes::from_static(&[0xff])).unwrap_err();
        assert_eq!(Violation::from(wrapped(not_utf8)), Violation::InvalidUtf8);
    }

    #[test]
    fn any_other_io_error_is_a_lost_connection() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let text = reset.to_string();
        assert_eq!(
            Violation::from(ProtocolError::Io(reset)),
            Violation::ConnectionLost(text)
        );
        let closed = wrapped(PayloadError::Incomplete(None));
        assert!(matches!(
            Violation::from(closed),
            Violation::ConnectionLost(_)
        ));
    }

    #[test]
    fn any_other_protocol_error_is_a_protocol_violation() {
        let unmasked = ProtocolError::UnmaskedFrame;
        let text = unmasked.to_string();
        assert_eq!(Violation::from(unmasked), Violation::Protocol(text));
    }

    #[test]
    fn each_violation_has_its_close_code() {
        let codes: Vec<_> = [
            Violation::TooBig,
            Violation::InvalidUtf8,
            Violation::Protocol(String::new()),
            Violation::ConnectionLost(String::new()),
        ]
        .iter()
        .map(Violation::close_code)
        .collect();
        assert_eq!(
            codes,
            [
                Some(CloseCode::TooBig),
                Some(CloseCode::InvalidPayload),
                Some(CloseCode::ProtocolError),
                None
            ]
        );
    }
}
