//! Who a connection is and where it may go: [`Access`], a user id and a [`RoomGrant`],
//! the rooms it may join and say into (a token's `rooms` claim: room names, and
//! prefixes ending in `*`). The room rules check the grant (`join`, `say`) and keep the
//! user with each member; reading and verifying a token is the server's business, not
//! this crate's: what arrives here has been checked already.

use std::{collections::BTreeSet, sync::Arc};

use crate::protocol::{ErrorCode, RoomName, UserId, ValidationError, MAX_ROOM_CHARS};

/// Who a connection is and which rooms it may use. The default (no token) is nobody in
/// particular, allowed everywhere: every such connection is its own user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The token's `sub`; `None` without authentication.
    pub user: Option<UserId>,
    pub rooms: RoomGrant,
}

/// The rooms a connection may join and say into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoomGrant {
    /// Any room: no token, or a token without `rooms` (or with the pattern `*`).
    #[default]
    Any,
    /// Only the rooms these patterns match (none at all for an empty list). Shared:
    /// every connection of a token holds the same patterns.
    Only(Arc<Patterns>),
}

/// Room names matched exactly, and prefixes matched as such.
#[derive(Debug, PartialEq, Eq)]
pub struct Patterns {
    names: BTreeSet<RoomName>,
    /// Without their `*`; sorted, with no prefix of another among them.
    prefixes: Vec<Box<str>>,
}

impl RoomGrant {
    /// The grant a `rooms` claim describes: each entry a room name (`lobby`), or a
    /// prefix followed by `*` (`team-*`: every room whose name starts with `team-`; `*`
    /// alone: every room). `bad_token` for anything else.
    pub fn parse<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, ValidationError> {
        let mut names = BTreeSet::new();
        let mut prefixes: Vec<Box<str>> = Vec::new();
        for pattern in patterns {
            match pattern.strip_suffix('*') {
                Some("") => return Ok(RoomGrant::Any),
                Some(prefix) => {
                    let valid = prefix.len() <= MAX_ROOM_CHARS
                        && prefix
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    if !valid {
                        return Err(bad_pattern(pattern));
                    }
                    prefixes.push(prefix.into());
                }
                None => {
                    let name = RoomName::parse(pattern).map_err(|_| bad_pattern(pattern))?;
                    names.insert(name);
                }
            }
        }
        // A prefix that another prefix starts with adds nothing: keep the shortest.
        prefixes.sort_unstable();
        prefixes.dedup_by(|longer, shorter| longer.starts_with(&**shorter));
        Ok(RoomGrant::Only(Arc::new(Patterns { names, prefixes })))
    }

    /// Whether the grant lets its holder into `room`.
    pub fn allows(&self, room: &RoomName) -> bool {
        match self {
            RoomGrant::Any => true,
            RoomGrant::Only(patterns) => {
                patterns.names.contains(room)
                    || patterns
                        .prefixes
                        .iter()
                        .any(|prefix| room.as_str().starts_with(&**prefix))
            }
        }
    }
}

fn bad_pattern(pattern: &str) -> ValidationError {
    let shown: String = pattern.chars().take(80).collect();
    ValidationError::new(
        ErrorCode::BadToken,
        format!(
            "rooms: {shown:?} is neither a room name nor a prefix of one followed by '*' \
             (room names are 1 to {MAX_ROOM_CHARS} letters, digits, '-', '_' and '.')"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn grant(patterns: &[&str]) -> RoomGrant {
        RoomGrant::parse(patterns.iter().copied()).unwrap()
    }

    #[test]
    fn names_match_exactly_and_prefixes_match_what_starts_with_them() {
        let grant = grant(&["lobby", "team-*"]);
        for allowed in ["lobby", "team-", "team-a", "team-a.b"] {
            assert!(grant.allows(&room(allowed)), "{allowed}");
        }
        for refused in ["Lobby", "lobby2", "lobb", "team", "teams", "x-team-a"] {
            assert!(!grant.allows(&room(refused)), "{refused}");
        }
    }

    #[test]
    fn a_star_alone_is_any_room_and_an_empty_list_is_none() {
        assert_eq!(grant(&["lobby", "*"]), RoomGrant::Any);
        assert!(grant(&["*"]).allows(&room("anything")));
        assert!(!grant(&[]).allows(&room("lobby")));
        assert!(RoomGrant::default().allows(&room("lobby")));
    }

    #[test]
    fn a_pattern_that_is_no_room_name_or_prefix_is_bad_token() {
        for bad in [
            "",
            "no spaces",
            "a*b",
            "**",
            "café*",
            &"r".repeat(65),
            "x*y*",
        ] {
            let err = RoomGrant::parse([bad]).expect_err(bad);
            assert_eq!(
                crate::protocol::ProtocolError::from(err).code,
                ErrorCode::BadToken,
                "{bad:?}"
            );
        }
        assert!(RoomGrant::parse([&*"r".repeat(64)]).is_ok());
    }

    #[test]
    fn overlapping_prefixes_keep_the_shortest() {
        let RoomGrant::Only(patterns) = grant(&["team-a*", "team-*", "x*"]) else {
            panic!("a grant of patterns");
        };
        assert_eq!(
            patterns.prefixes,
            vec![Box::<str>::from("team-"), Box::<str>::from("x")]
        );
    }
}
