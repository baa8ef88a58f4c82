//! The node's own members of one room, grouped by *route*: for the hub, the courier of
//! the worker thread the member's connection lives on. A broadcast is then one post per
//! route with no per-member work in the hub. Joins and leaves are rare next to messages;
//! the grouping is rebuilt on the first broadcast after one.
//!
//! This is delivery state, not room state: who is in a room is the backend's to say
//! (through `Subscribe` and `Unsubscribe` effects); this only says how to reach them.

use std::{cell::OnceCell, collections::BTreeMap, sync::Arc};

use crate::protocol::MemberId;

/// The members of one route, in id order.
pub type RouteMembers<R> = (R, Arc<[MemberId]>);

#[derive(Debug)]
pub struct Subscribers<R> {
    /// Each member's route, ordered by id.
    routes: BTreeMap<MemberId, R>,
    /// `routes` grouped by route; emptied by every change.
    by_route: OnceCell<Vec<RouteMembers<R>>>,
}

impl<R> Default for Subscribers<R> {
    fn default() -> Self {
        Self {
            routes: BTreeMap::new(),
            by_route: OnceCell::new(),
        }
    }
}

impl<R: Clone + PartialEq> Subscribers<R> {
    pub fn add(&mut self, id: MemberId, route: R) {
        self.routes.insert(id, route);
        self.by_route.take();
    }

    pub fn remove(&mut self, id: MemberId) {
        if self.routes.remove(&id).is_some() {
            self.by_route.take();
        }
    }

    pub fn contains(&self, id: MemberId) -> bool {
        self.routes.contains_key(&id)
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every member, grouped by route (a handful of routes: one per worker thread).
    pub fn by_route(&self) -> &[RouteMembers<R>] {
        self.by_route.get_or_init(|| {
            let mut groups: Vec<(R, Vec<MemberId>)> = Vec::new();
            for (id, route) in &self.routes {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_grouped_by_route_and_regrouped_after_changes() {
        let mut subscribers: Subscribers<char> = Subscribers::default();
        for (id, route) in [(1, 'a'), (2, 'b'), (3, 'a'), (4, 'b'), (5, 'a')] {
            subscribers.add(MemberId(id), route);
        }
        let ids = |s: &Subscribers<char>| -> Vec<(char, Vec<u64>)> {
            s.by_route()
                .iter()
                .map(|(r, ids)| (*r, ids.iter().map(|id| id.0).collect()))
                .collect()
        };
        assert_eq!(
            ids(&subscribers),
            vec![('a', vec![1, 3, 5]), ('b', vec![2, 4])]
        );
        subscribers.remove(MemberId(3));
        subscribers.add(MemberId(6), 'c');
        assert_eq!(
            ids(&subscribers),
            vec![('a', vec![1, 5]), ('b', vec![2, 4]), ('c', vec![6])]
        );
        subscribers.remove(MemberId(2));
        subscribers.remove(MemberId(4));
        assert_eq!(ids(&subscribers), vec![('a', vec![1, 5]), ('c', vec![6])]);
        assert!(subscribers.contains(MemberId(6)) && !subscribers.contains(MemberId(2)));
    }
}
