//! Error codes and the errors that become `error` frames. The list of codes is written
//! once, in `error_codes!`: the enum, its wire text and the lookup by text all come
//! from it, so a new code cannot be missing from one of them.

use std::{fmt, str::FromStr};

use serde::{Serialize, Serializer};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// The `code` of an `error` frame.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the protocol's list.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as written on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

error_codes! {
    /// Not valid JSON, or a field of the wrong JSON type.
    BadJson = "bad_json",
    /// A `type` the server does not know.
    UnknownType = "unknown_type",
    /// A required field is absent.
    MissingField = "missing_field",
    /// A room name that breaks the naming rules.
    InvalidRoom = "invalid_room",
    /// A display name that breaks the naming rules.
    InvalidName = "invalid_name",
    /// A command about a room the sender is not in.
    NotInRoom = "not_in_room",
    /// A member id that names nobody connected.
    UnknownMember = "unknown_member",
    /// Over the connection's message rate; the message was dropped.
    RateLimited = "rate_limited",
    /// Over `MAX_ROOMS_PER_CONNECTION`.
    TooManyRooms = "too_many_rooms",
    /// A `join` or `say` into a room the connection's token does not allow (its `rooms`
    /// claim).
    Forbidden = "forbidden",
    /// A `refresh` whose token is invalid, for another user, or sent to a server
    /// without authentication.
    BadToken = "bad_token",
    /// A new room, but the server keeps `MAX_ROOMS_TOTAL` and every one is occupied.
    RoomsFull = "rooms_full",
    /// A cluster's store cannot be reached: nothing was done; retry later.
    Unavailable = "unavailable",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or(())
    }
}

/// A rejected command: becomes one `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A value that failed validation. Its `Display` starts with the error code so that the
/// code survives serde's error plumbing (see `decode.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError(ProtocolError);

impl ValidationError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ProtocolError::new(code, message))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.message)
    }
}

impl From<ValidationError> for ProtocolError {
    fn from(err: ValidationError) -> Self {
        err.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_text() {
        for &code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
        assert!("no_such_code".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn unavailable_is_written_as_the_protocol_says() {
        let error = crate::protocol::Event::from(ProtocolError::new(
            ErrorCode::Unavailable,
            "the store cannot be reached",
        ));
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            serde_json::json!({
                "type": "error",
                "code": "unavailable",
                "message": "the store cannot be reached",
            })
        );
    }
}
