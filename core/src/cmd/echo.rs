//! `echo`: the server repeats the text to the sender, with the time.

use serde::Deserialize;

use super::{Apply, Cx};
use crate::protocol::{Event, ProtocolError, Timestamp};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Echo {
    pub text: String,
}

impl Apply for Echo {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let now = cx.now;
        cx.effects.reply(self.echo(now));
        Ok(())
    }

    /// Needs no room state: the connection answers it itself.
    fn answer_here(self, now: Timestamp) -> Result<Event, Self> {
        Ok(self.echo(now))
    }
}

impl Echo {
    fn echo(self, at: Timestamp) -> Event {
        Event::Echo {
            text: self.text,
            at,
        }
    }
}
