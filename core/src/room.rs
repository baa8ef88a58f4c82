//! One room: who is in it and since when, its message counter and recent history.

use std::{
    collections::{BTreeMap, VecDeque},
    ops::Bound,
    sync::Arc,
};

use crate::protocol::{ChatMessage, MemberId, RoomName, Sender, Timestamp};

#[derive(Debug)]
pub struct Room {
    /// Members and when each joined; ordered by id, i.e. by connection order, which is
    /// the order listings show.
    members: BTreeMap<MemberId, Timestamp>,
    /// How many members the members believe there are: what the events they were sent
    /// add up to. In a big room changes are counted, not announced, and this lags
    /// behind until the next `member_count`.
    pub(crate) told_count: usize,
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
            told_count: 0,
            last_seq: 0,
            history: VecDeque::with_capacity(history_len.min(64)),
            history_len,
        }
    }

    /// Adds a member; one already in keeps its first join time.
    pub fn join(&mut self, id: MemberId, at: Timestamp) {
        self.members.entry(id).or_insert(at);
    }

    /// Removes a member, returning when it had joined.
    pub fn leave(&mut self, id: MemberId) -> Option<Timestamp> {
        self.members.remove(&id)
    }

    pub fn joined_at(&self, id: MemberId) -> Option<Timestamp> {
        self.members.get(&id).copied()
    }

    /// Members and their join times after `after` (from the first without), in id order:
    /// the stable order pages follow.
    pub fn members_after(
        &self,
        after: Option<MemberId>,
    ) -> impl Iterator<Item = (MemberId, Timestamp)> + '_ {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.members
            .range((from, Bound::Unbounded))
            .map(|(id, at)| (*id, *at))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Assigns the next `seq`, keeps the message in history and returns it for
    /// broadcasting.
    pub fn post(
        &mut self,
        room: &RoomName,
        from: Sender,
        text: Arc<str>,
        at: Timestamp,
    ) -> Arc<ChatMessage> {
        self.last_seq += 1;
        let message = Arc::new(ChatMessage {
            room: room.clone(),
            from,
            text,
            at,
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

    fn lobby() -> RoomName {
        RoomName::parse("lobby").unwrap()
    }

    #[test]
    fn seq_starts_at_one_and_has_no_gaps() {
        let mut room = Room::new(3);
        let now = Timestamp::from_millis(0);
        let seqs: Vec<u64> = (0..5)
            .map(|i| {
                room.post(&lobby(), Sender::Server, format!("m{i}").into(), now)
                    .seq
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn history_keeps_the_last_n_oldest_first() {
        let now = Timestamp::from_millis(0);
        let mut room = Room::new(2);
        for i in 0..4 {
            room.post(&lobby(), Sender::Server, format!("m{i}").into(), now);
        }
        let texts: Vec<&str> = room.history().map(|m| &*m.text).collect();
        assert_eq!(texts, vec!["m2", "m3"]);
        let mut silent = Room::new(0);
        silent.post(&lobby(), Sender::Server, "x".into(), now);
        assert_eq!(silent.history().count(), 0);
    }

    #[test]
    fn joining_twice_keeps_the_first_join() {
        let mut room = Room::new(1);
        let (first, later) = (Timestamp::from_millis(1), Timestamp::from_millis(2));
        room.join(MemberId(1), first);
        room.join(MemberId(1), later);
        assert_eq!(room.len(), 1);
        assert_eq!(room.joined_at(MemberId(1)), Some(first));
        assert_eq!(room.leave(MemberId(1)), Some(first));
        assert!(room.is_empty());
    }
}
