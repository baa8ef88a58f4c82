//! One room's state: who is in it, its message counter and recent history.
//!
//! Plain Rust with no actix: the hub owns every `Room` and is the only code that
//! touches one, which is what keeps `seq` gap-free without locks.
//!
//! A room also remembers each member's *route* (for the hub, the courier of the worker
//! thread the member's connection lives on) and keeps its members grouped by route, so a
//! broadcast is one post per route with no per-member work in the hub. Joins and leaves
//! are rare next to messages; the grouping is rebuilt on the first broadcast after one.

use std::{
    cell::OnceCell,
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use crate::protocol::{ChatMessage, MemberId, RoomName, Sender, Timestamp};

/// The members of one route, in id order.
pub type RouteMembers<R> = (R, Arc<[MemberId]>);

#[derive(Debug)]
pub struct Room<R> {
    /// Members, when each joined and its route; ordered by id, i.e. by connection order.
    members: BTreeMap<MemberId, (Timestamp, R)>,
    /// `members` grouped by route; emptied by every join and leave.
    by_route: OnceCell<Vec<RouteMembers<R>>>,
    /// `seq` of the last message posted; 0 before the first.
    last_seq: u64,
    /// The last `history_len` messages, oldest first.
    history: VecDeque<Arc<ChatMessage>>,
    history_len: usize,
}

impl<R: Clone + PartialEq> Room<R> {
    pub fn new(history_len: usize) -> Self {
        Self {
            members: BTreeMap::new(),
            by_route: OnceCell::new(),
            last_seq: 0,
            history: VecDeque::with_capacity(history_len.min(64)),
            history_len,
        }
    }

    /// Adds a member reached through `route`; `false` if it was already in.
    pub fn join(&mut self, id: MemberId, at: Timestamp, route: R) -> bool {
        if self.members.contains_key(&id) {
            return false;
        }
        self.members.insert(id, (at, route));
        self.by_route.take();
        true
    }

    /// Removes a member, returning when it had joined.
    pub fn leave(&mut self, id: MemberId) -> Option<Timestamp> {
        let (at, _) = self.members.remove(&id)?;
        self.by_route.take();
        Some(at)
    }

    pub fn joined_at(&self, id: MemberId) -> Option<Timestamp> {
        self.members.get(&id).map(|(at, _)| *at)
    }

    pub fn members(&self) -> impl Iterator<Item = (MemberId, Timestamp)> + '_ {
        self.members.iter().map(|(id, (at, _))| (*id, *at))
    }

    /// Every member, grouped by route (a handful of routes: one per worker thread).
    pub fn by_route(&self) -> &[RouteMembers<R>] {
        self.by_route.get_or_init(|| {
            let mut groups: Vec<(R, Vec<MemberId>)> = Vec::new();
            for (id, (_, route)) in &self.members {
                match groups.iter_mut().find(|(r, _)| r == route) {
                    Some((_, ids)) => ids.push(*id),
                    None => groups.push((route.clone(), vec![*id])),
                }
            }
            groups
                .into_iter()
                .map(|(route, ids)| (route, ids.into()))
                .collect()
        })
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
        let mut room: Room<()> = Room::new(3);
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
        let mut room: Room<()> = Room::new(2);
        for i in 0..4 {
            room.post(&room_name(), Sender::Server, format!("m{i}").into());
        }
        let texts: Vec<&str> = room.history().map(|m| &*m.text).collect();
        assert_eq!(texts, vec!["m2", "m3"]);
        let mut silent: Room<()> = Room::new(0);
        silent.post(&room_name(), Sender::Server, "x".into());
        assert_eq!(silent.history().count(), 0);
    }

    #[test]
    fn members_are_grouped_by_route_and_regrouped_after_joins_and_leaves() {
        let mut room: Room<char> = Room::new(1);
        let now = Timestamp::now();
        for (id, route) in [(1, 'a'), (2, 'b'), (3, 'a'), (4, 'b'), (5, 'a')] {
            room.join(MemberId(id), now, route);
        }
        let ids = |room: &Room<char>| -> Vec<(char, Vec<u64>)> {
            room.by_route()
                .iter()
                .map(|(r, ids)| (*r, ids.iter().map(|id| id.0).collect()))
                .collect()
        };
        assert_eq!(ids(&room), vec![('a', vec![1, 3, 5]), ('b', vec![2, 4])]);
        room.leave(MemberId(3));
        room.join(MemberId(6), now, 'c');
        assert_eq!(
            ids(&room),
            vec![('a', vec![1, 5]), ('b', vec![2, 4]), ('c', vec![6])]
        );
        room.leave(MemberId(2));
        room.leave(MemberId(4));
        assert_eq!(ids(&room), vec![('a', vec![1, 5]), ('c', vec![6])]);
    }

    #[test]
    fn joining_twice_is_reported() {
        let mut room: Room<()> = Room::new(1);
        let now = Timestamp::now();
        assert!(room.join(MemberId(1), now, ()));
        assert!(!room.join(MemberId(1), now, ()));
        assert_eq!(room.len(), 1);
        assert_eq!(room.leave(MemberId(1)), Some(now));
        assert!(room.is_empty());
    }
}
