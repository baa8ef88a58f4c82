//! One room: who is in it and since when, its message counter and recent history.

use std::{
    collections::{BTreeMap, VecDeque},
    ops::Bound,
    sync::Arc,
};

use crate::protocol::{ChatMessage, MemberId, RoomName, Sender, Timestamp, UserId};

/// What one kept message costs the history budget, in bytes: its text and about what
/// the message, its `Arc` and its place in the queue take beside it.
pub(crate) fn history_cost(message: &ChatMessage) -> usize {
    message.text.len() + 160
}

#[derive(Debug)]
pub struct Room {
    /// Members and when each joined; ordered by id, i.e. by connection order, which is
    /// the order listings show.
    members: BTreeMap<MemberId, Timestamp>,
    /// How many of the members each authenticated user has here (never 0: a user whose
    /// last connection left is removed), so `first` and `last` follow a user across its
    /// connections. Connections without a user are not counted: each is its own.
    users: BTreeMap<UserId, usize>,
    /// How many members the members believe there are: what the events they were sent
    /// add up to. In a big room changes are counted, not announced, and this lags
    /// behind until the next `member_count`.
    pub(crate) told_count: usize,
    /// Names this life of the room: a room made again after it was gone (or after a
    /// restart) has another, so a client never takes its `seq` 5 for the old one's.
    pub(crate) epoch: Arc<str>,
    /// `seq` of the last message posted; 0 before the first.
    last_seq: u64,
    /// The last `history_len` messages, oldest first.
    history: VecDeque<Arc<ChatMessage>>,
    history_len: usize,
    /// What `history` costs the history budget ([`history_cost`]).
    history_bytes: usize,
    /// When the room was last used: created, joined, left or posted to. An empty room
    /// is kept `ROOM_TTL_MS` after it.
    pub(crate) last_used: Timestamp,
    /// `Idempotency-Key`s of recent publishes and what each published, oldest first.
    idempotency: VecDeque<(Arc<str>, Timestamp, Arc<ChatMessage>)>,
}

impl Room {
    pub fn new(history_len: usize, epoch: Arc<str>, now: Timestamp) -> Self {
        Self {
            members: BTreeMap::new(),
            users: BTreeMap::new(),
            told_count: 0,
            epoch,
            last_seq: 0,
            history: VecDeque::with_capacity(history_len.min(64)),
            history_len,
            history_bytes: 0,
            last_used: now,
            idempotency: VecDeque::new(),
        }
    }

    /// A room as a cluster's store holds it: this life's `epoch`, the `seq` of its last
    /// message, and its history oldest first, of which the last `history_len` are kept.
    /// The `seq` is never below the newest kept message's, so the next post can never
    /// repeat a `seq` whatever the store said.
    pub(crate) fn restored(
        history_len: usize,
        epoch: Arc<str>,
        last_seq: u64,
        history: Vec<Arc<ChatMessage>>,
        now: Timestamp,
    ) -> Self {
        let mut room = Self::new(history_len, epoch, now);
        let newest = history.last().map_or(0, |message| message.seq);
        room.last_seq = last_seq.max(newest);
        let skip = history.len().saturating_sub(history_len);
        for message in history.into_iter().skip(skip) {
            room.history_bytes += history_cost(&message);
            room.history.push_back(message);
        }
        room
    }

    /// Adds a member, of `user` if it has one; one already in keeps its first join time.
    pub fn join(&mut self, id: MemberId, user: Option<&UserId>, at: Timestamp) {
        self.last_used = self.last_used.max(at);
        if self.members.contains_key(&id) {
            return;
        }
        self.members.insert(id, at);
        if let Some(user) = user {
            *self.users.entry(user.clone()).or_insert(0) += 1;
        }
    }

    /// Removes a member (of `user`, as it joined), returning when it had joined.
    pub fn leave(
        &mut self,
        id: MemberId,
        user: Option<&UserId>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let joined_at = self.members.remove(&id)?;
        self.last_used = self.last_used.max(now);
        if let Some(user) = user {
            if let Some(count) = self.users.get_mut(user) {
                *count -= 1;
                if *count == 0 {
                    self.users.remove(user);
                }
            }
        }
        Some(joined_at)
    }

    /// How many of the room's members are connections of `user`.
    pub fn connections_of(&self, user: &UserId) -> usize {
        self.users.get(user).copied().unwrap_or(0)
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

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Assigns the next `seq`, keeps the message in history and returns it for
    /// broadcasting, with how much the history's cost grew (negative if an older,
    /// larger message made room).
    pub fn post(
        &mut self,
        room: &RoomName,
        from: Sender,
        text: Arc<str>,
        at: Timestamp,
    ) -> (Arc<ChatMessage>, isize) {
        self.last_seq += 1;
        self.last_used = self.last_used.max(at);
        let message = Arc::new(ChatMessage {
            room: room.clone(),
            from,
            text,
            at,
            seq: self.last_seq,
        });
        let before = self.history_bytes;
        if self.history_len > 0 {
            if self.history.len() == self.history_len {
                self.drop_oldest();
            }
            self.history_bytes += history_cost(&message);
            self.history.push_back(message.clone());
        }
        (message, self.history_bytes as isize - before as isize)
    }

    /// Drops the oldest kept message; returns what that freed.
    pub(crate) fn drop_oldest(&mut self) -> usize {
        let Some(oldest) = self.history.pop_front() else {
            return 0;
        };
        let freed = history_cost(&oldest);
        self.history_bytes -= freed;
        freed
    }

    /// Drops every kept message; returns what that freed. The room keeps its `seq` and
    /// `epoch`: a client resuming from before is told it missed what is gone.
    pub(crate) fn drop_history(&mut self) -> usize {
        let freed = self.history_bytes;
        self.history.clear();
        self.history_bytes = 0;
        freed
    }

    pub(crate) fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// Recent messages, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &Arc<ChatMessage>> {
        self.history.iter()
    }

    /// The messages after `seq`, if every one of them is still kept.
    pub fn history_after(&self, seq: u64) -> Option<Vec<Arc<ChatMessage>>> {
        if seq > self.last_seq {
            return None;
        }
        if seq == self.last_seq {
            return Some(Vec::new());
        }
        let oldest = self.history.front()?.seq;
        if oldest > seq + 1 {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|message| message.seq > seq)
                .cloned()
                .collect(),
        )
    }

    /// What a publish with `key` published, if it is still remembered; keys older than
    /// `keep_ms` are forgotten first.
    pub(crate) fn published_with(
        &mut self,
        key: &str,
        now: Timestamp,
        keep_ms: i64,
    ) -> Option<Arc<ChatMessage>> {
        while let Some((_, at, _)) = self.idempotency.front() {
            if now.millis() - at.millis() < keep_ms {
                break;
            }
            self.idempotency.pop_front();
        }
        self.idempotency
            .iter()
            .find(|(k, _, _)| &**k == key)
            .map(|(_, _, message)| message.clone())
    }

    /// Keys remembered now (after [`Room::published_with`] forgot the old ones).
    pub(crate) fn remembered_keys(&self) -> usize {
        self.idempotency.len()
    }

    /// Remembers what a publish with `key` published (the caller checks the cap).
    pub(crate) fn remember(&mut self, key: Arc<str>, now: Timestamp, message: Arc<ChatMessage>) {
        self.idempotency.push_back((key, now, message));
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
        let mut room = Room::new(3, "e".into(), Timestamp::from_millis(0));
        let now = Timestamp::from_millis(0);
        let seqs: Vec<u64> = (0..5)
            .map(|i| {
                room.post(&lobby(), Sender::Server, format!("m{i}").into(), now)
                    .0
                    .seq
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn history_keeps_the_last_n_oldest_first() {
        let now = Timestamp::from_millis(0);
        let mut room = Room::new(2, "e".into(), Timestamp::from_millis(0));
        for i in 0..4 {
            room.post(&lobby(), Sender::Server, format!("m{i}").into(), now);
        }
        let texts: Vec<&str> = room.history().map(|m| &*m.text).collect();
        assert_eq!(texts, vec!["m2", "m3"]);
        let mut silent = Room::new(0, "e".into(), Timestamp::from_millis(0));
        silent.post(&lobby(), Sender::Server, "x".into(), now);
        assert_eq!(silent.history().count(), 0);
    }

    #[test]
    fn joining_twice_keeps_the_first_join() {
        let mut room = Room::new(1, "e".into(), Timestamp::from_millis(0));
        let (first, later) = (Timestamp::from_millis(1), Timestamp::from_millis(2));
        room.join(MemberId(1), None, first);
        room.join(MemberId(1), None, later);
        assert_eq!(room.len(), 1);
        assert_eq!(room.joined_at(MemberId(1)), Some(first));
        assert_eq!(room.leave(MemberId(1), None, later), Some(first));
        assert!(room.is_empty());
    }

    #[test]
    fn a_users_connections_are_counted_once_each() {
        let now = Timestamp::from_millis(0);
        let ann = UserId::parse("ann").unwrap();
        let mut room = Room::new(1, "e".into(), now);
        room.join(MemberId(1), Some(&ann), now);
        room.join(MemberId(1), Some(&ann), now);
        assert_eq!(
            room.connections_of(&ann),
            1,
            "joining twice is one connection"
        );
        room.join(MemberId(2), Some(&ann), now);
        room.join(MemberId(3), None, now);
        assert_eq!(room.connections_of(&ann), 2);
        room.leave(MemberId(1), Some(&ann), now);
        assert_eq!(room.connections_of(&ann), 1);
        assert_eq!(room.leave(MemberId(9), Some(&ann), now), None);
        assert_eq!(
            room.connections_of(&ann),
            1,
            "a stranger's leave counts nothing"
        );
        room.leave(MemberId(2), Some(&ann), now);
        assert_eq!(room.connections_of(&ann), 0);
        assert!(room.users.is_empty());
    }

    #[test]
    fn history_after_gives_exactly_the_missed_messages_or_none() {
        let now = Timestamp::from_millis(0);
        let mut room = Room::new(3, "e".into(), now);
        assert_eq!(
            room.history_after(0),
            Some(vec![]),
            "nothing said, nothing missed"
        );
        for i in 1..=5 {
            room.post(&lobby(), Sender::Server, format!("m{i}").into(), now);
        }
        let seqs = |after| {
            room.history_after(after)
                .map(|m| m.iter().map(|m| m.seq).collect::<Vec<_>>())
        };
        assert_eq!(seqs(5), Some(vec![]));
        assert_eq!(seqs(4), Some(vec![5]));
        assert_eq!(seqs(2), Some(vec![3, 4, 5]), "the oldest kept is 3");
        assert_eq!(seqs(1), None, "2 is gone");
        assert_eq!(seqs(6), None, "beyond the room's seq");
    }

    #[test]
    fn the_history_cost_is_kept_as_messages_come_and_go() {
        let now = Timestamp::from_millis(0);
        let mut room = Room::new(2, "e".into(), now);
        let (first, grew) = room.post(&lobby(), Sender::Server, "a".repeat(100).into(), now);
        assert_eq!(grew as usize, history_cost(&first));
        let (_, grew) = room.post(&lobby(), Sender::Server, "b".into(), now);
        assert_eq!(grew, 161);
        // The third pushes the first (100 bytes of text) out.
        let (_, grew) = room.post(&lobby(), Sender::Server, "c".into(), now);
        assert_eq!(grew, 161 - 260);
        assert_eq!(room.history_bytes(), 2 * 161);
        assert_eq!(room.drop_history(), 2 * 161);
        assert_eq!((room.history_bytes(), room.last_seq()), (0, 3));
    }
}
