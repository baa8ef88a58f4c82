//! One room's state: who is in it, its message counter and recent history.
//!
//! Plain Rust with no actix: the hub owns every `Room` and is the only code that
//! touches one, which is what keeps `seq` gap-free without locks.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use crate::protocol::{ChatMessage, MemberId, RoomName, Sender, Timestamp};

#[derive(Debug)]
pub struct Room {
    /// Members and when each joined; ordered by id, i.e. by connection order.
    members: BTreeMap<MemberId, Timestamp>,
    /// `seq` of the last message posted; 0 before the first.
    last_seq: u64,
    /// The last `history_len` messages, oldest first.
    history: VecDeque<Arc<ChatMessage>>,
    history_len: usize,
}

impl Room {
    pub fn new(history_len: usize) -> Self {
        Self {
            members: BTreeMap::new(),
            last_seq: 0,
            history: VecDeque::with_capacity(history_len.min(64)),
            history_len,
        }
    }

    /// Adds a member; `false` if it was already in.
    pub fn join(&mut self, id: MemberId, at: Timestamp) -> bool {
        if self.members.contains_key(&id) {
            return false;
        }
        self.members.insert(id, at);
        true
    }

    /// Removes a member, returning when it had joined.
    pub fn leave(&mut self, id: MemberId) -> Option<Timestamp> {
        self.members.remove(&id)
    }

    pub fn joined_at(&self, id: MemberId) -> Option<Timestamp> {
        self.members.get(&id).copied()
    }

    pub fn members(&self) -> impl Iterator<Item = (MemberId, Timestamp)> + '_ {
        self.members.iter().map(|(id, at)| (*id, *at))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Assigns the next `seq`, keeps the message in history and returns it for
    /// broadcasting.
    pub fn post(&mut self, room: &RoomName, from: Sender, text: Arc<str>) -> Arc<ChatMessage> {
        self.last_seq += 1;
        let message = Arc::new(ChatMessage {
            room: room.clone(),
            from,
            text,
            at: Timestamp::now(),
            seq: self.last_seq,
        });
        if self.history_len > 0 {
            if self.history.len() == self.history_len {
                self.history.pop_front();
            }
            self.history.push_back(message.clone());
        }
        message
    }

    /// Recent messages, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &Arc<ChatMessage>> {
        self.history.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room_name() -> RoomName {
        RoomName::parse("lobby").unwrap()
    }

    #[test]
    fn seq_starts_at_one_and_has_no_gaps() {
        let mut room = Room::new(3);
        let seqs: Vec<u64> = (0..5)
            .map(|i| {
                room.post(&room_name(), Sender::Server, format!("m{i}").into())
                    .seq
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn history_keeps_the_last_n_oldest_first() {
        let mut room = Room::new(2);
        for i in 0..4 {
            room.post(&room_name(), Sender::Server, format!("m{i}").into());
        }
        let texts: Vec<&str> = room.history().map(|m| &*m.text).collect();
        assert_eq!(texts, vec!["m2", "m3"]);
        let mut silent = Room::new(0);
        silent.post(&room_name(), Sender::Server, "x".into());
        assert_eq!(silent.history().count(), 0);
    }

    #[test]
    fn joining_twice_is_reported() {
        let mut room = Room::new(1);
        let now = Timestamp::now();
        assert!(room.join(MemberId(1), now));
        assert!(!room.join(MemberId(1), now));
        assert_eq!(room.len(), 1);
        assert_eq!(room.leave(MemberId(1)), Some(now));
        assert!(room.is_empty());
    }
}
