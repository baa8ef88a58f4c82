//! `refresh`: the client replaces its connection's token before it expires. Tokens are
//! verified by the server's connection, which holds the key and the connection's
//! claims: it answers `refreshed` or `bad_token` itself and tells room state only what
//! changed (a new name or grant: [`RoomState::reauthorize`]). This file is the
//! command's wire form; the rules never see a token.
//!
//! [`RoomState::reauthorize`]: crate::RoomState::reauthorize

use std::fmt;

use serde::Deserialize;

use super::{Apply, Cx};
use crate::protocol::{ErrorCode, ProtocolError};

#[derive(Clone, PartialEq, Deserialize)]
pub struct Refresh {
    /// The new token, as the client sent it (not yet verified).
    pub token: String,
}

/// A token is a credential: it is never printed, not even in a debug log line.
impl fmt::Debug for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresh")
            .field("token", &format_args!("<{} bytes>", self.token.len()))
            .finish()
    }
}

impl Apply for Refresh {
    /// Only a server without the means to verify a token lets one get here.
    fn apply(self, _: &mut Cx<'_>) -> Result<(), ProtocolError> {
        Err(ProtocolError::new(
            ErrorCode::BadToken,
            "this server does not check tokens: there is nothing to refresh",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_form_hides_the_token() {
        let refresh = Refresh {
            token: "eyJhbGciOiJIUzI1NiJ9.secret.sig".into(),
        };
        let shown = format!("{refresh:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("31 bytes"), "{shown}");
    }
}
