//! `whisper`: a private message to one member, copied back to the sender.

use serde::Deserialize;

use super::{Apply, Cx};
use crate::{
    effects::Audience,
    protocol::{ErrorCode, Event, MemberId, ProtocolError},
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Whisper {
    pub to: MemberId,
    pub text: String,
}

impl Apply for Whisper {
    fn apply(self, cx: &mut Cx<'_>) -> Result<(), ProtocolError> {
        let Some(to) = cx.state.member(self.to) else {
            return Err(ProtocolError::new(
                ErrorCode::UnknownMember,
                format!("no member has id {}", self.to),
            ));
        };
        let Some(from) = cx.state.member(cx.from) else {
            return Ok(());
        };
        let whisper = Event::Whisper {
            from,
            to,
            text: self.text,
            at: cx.now,
        };
        if self.to == cx.from {
            cx.effects.reply(whisper);
        } else {
            cx.effects
                .send_both(whisper, Audience::Member(self.to), Audience::Requester);
        }
        Ok(())
    }
}
