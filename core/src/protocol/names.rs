//! Identifiers and validated names: member ids, user ids, room names, display names and
//! `ref`s.
//! A value of these types that exists is valid; parsing is where the rules live.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize, Serializer};

use super::{ErrorCode, ValidationError};

/// Longest `ref` a client may attach, in characters.
pub const MAX_REF_CHARS: usize = 64;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest display name, in characters (after trimming).
pub const MAX_NAME_CHARS: usize = 32;
/// Longest user id (a token's `sub`), in characters: every member object of an
/// authenticated connection carries it, so it must stay short.
pub const MAX_USER_CHARS: usize = 128;

/// A connection's id on `/ws`: assigned by the server, unique for its lifetime, sent on
/// the wire as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for MemberId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        // Anything that is not an id we could have issued names no member.
        raw.parse::<u64>().map(MemberId).map_err(|_| {
            serde::de::Error::custom(ValidationError::new(
                ErrorCode::UnknownMember,
                format!("no member has id {raw:?}"),
            ))
        })
    }
}

/// Who an authenticated connection is: its token's `sub`, 1 to 128 characters without
/// control characters, taken as it is (not trimmed: it is an identifier, not a name).
/// Several connections may share one; a connection without a token has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let length = raw.chars().count();
        if length == 0 || length > MAX_USER_CHARS || raw.chars().any(char::is_control) {
            return Err(ValidationError::new(
                ErrorCode::BadToken,
                format!("a user id (sub) is 1 to {MAX_USER_CHARS} characters without control characters"),
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`; case-sensitive.
/// ASCII only so that a room name is safe in a URL path and cannot hide look-alikes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct RoomName(Arc<str>);

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if raw.is_empty() || raw.chars().count() > MAX_ROOM_CHARS || !valid_chars {
            return Err(ValidationError::new(
                ErrorCode::InvalidRoom,
                format!(
                    "room names are 1 to {MAX_ROOM_CHARS} characters of letters, digits, '-', '_' and '.'"
                ),
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoomName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest node id, in characters.
pub const MAX_NODE_CHARS: usize = 32;

/// The id of one server process (`NODE_ID`, shown in `welcome.node` and the logs): 1 to
/// 32 ASCII letters, digits, `-` or `_`, so it is safe in a log line, a Redis key and a
/// metric label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(Arc<str>);

impl NodeId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if raw.is_empty() || raw.len() > MAX_NODE_CHARS || !valid_chars {
            return Err(format!(
                "node ids are 1 to {MAX_NODE_CHARS} characters of letters, digits, '-' and '_'"
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: trimmed, 1 to 32 characters, no control characters. Names need not
/// be unique; ids are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct DisplayName(Arc<str>);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        let length = name.chars().count();
        if length == 0 || length > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                ErrorCode::InvalidName,
                format!("names are 1 to {MAX_NAME_CHARS} characters without control characters"),
            ));
        }
        Ok(Self(name.into()))
    }

    /// The name given to a connection that did not choose one: `guest-<n>`, the `n`th
    /// guest of this server (not its id, which is long since it is unique across
    /// restarts).
    pub fn guest(number: u64) -> Self {
        Self(format!("guest-{number}").into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most entries one page holds: of `who`, of `rooms`, of the HTTP listings.
pub const MAX_PAGE: usize = 1000;

/// How many entries a page may hold, as asked (`limit`): 1 to [`MAX_PAGE`], that by
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub struct PageLimit(usize);

impl PageLimit {
    pub fn parse(raw: u64) -> Result<Self, ValidationError> {
        if raw == 0 || raw > MAX_PAGE as u64 {
            return Err(ValidationError::new(
                ErrorCode::BadJson,
                format!("limit must be 1 to {MAX_PAGE}, got {raw}"),
            ));
        }
        Ok(Self(raw as usize))
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(MAX_PAGE)
    }
}

impl TryFrom<u64> for PageLimit {
    type Error = ValidationError;
    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

/// The client's correlation token, copied into every reply to the frame that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref(Arc<str>);

impl Ref {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() > MAX_REF_CHARS {
            return Err(ValidationError::new(
                ErrorCode::BadJson,
                format!("ref must be a string of at most {MAX_REF_CHARS} characters"),
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  ann ").unwrap().as_str(), "ann");
        assert!(DisplayName::parse(&"x".repeat(33)).is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(RoomName::parse(&"r".repeat(64)).is_ok());
        assert!(RoomName::parse(&"r".repeat(65)).is_err());
        assert!(RoomName::parse("café").is_err());
    }

    #[test]
    fn user_ids_are_kept_as_given_and_bounded() {
        assert_eq!(UserId::parse(" ann@x ").unwrap().as_str(), " ann@x ");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"u".repeat(MAX_USER_CHARS)).is_ok());
        assert!(UserId::parse(&"u".repeat(MAX_USER_CHARS + 1)).is_err());
        assert!(UserId::parse("a\nb").is_err());
    }
}
