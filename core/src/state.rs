//! [`RoomState`]: every member and room of one hub, and the operations on them that do
//! not come from a client command (connect, disconnect, a backend's publish and kick,
//! the HTTP views). Client commands are applied to it by [`Command::apply_to`], which
//! runs each command's own rules (`cmd/`); this module knows nothing of them.
//!
//! [`Command::apply_to`]: crate::Command::apply_to
//!
//! Nothing here is shared or locked: whoever owns a `RoomState` applies one operation at
//! a time, which is what keeps `seq` gap-free.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
    sync::Arc,
};

use rustc_hash::FxHashMap;

use crate::{
    effects::{Audience, Effects},
    protocol::{
        ChatMessage, DisplayName, Event, LeaveReason, Member, MemberId, PageLimit, RoomCount,
        RoomName, RoomView, RoomsView, Sender, Timestamp,
    },
    room::Room,
};

/// The rules' settings, from the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Rooms one connection may be in at once (`MAX_ROOMS_PER_CONNECTION`).
    pub max_rooms_per_connection: usize,
    /// Messages kept per room and sent in `joined` (`HISTORY_LEN`).
    pub history_len: usize,
    /// Members listed in `joined`, the joiner always among them (`JOINED_MEMBERS_MAX`).
    pub joined_members_max: usize,
    /// Past this many members a room is *big*: joins and leaves there are counted
    /// (`member_count`), not announced one by one (`PRESENCE_EVENTS_MAX`).
    pub presence_events_max: usize,
}

/// A connected member as room state keeps it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) name: DisplayName,
    pub(crate) connected_at: Timestamp,
    /// The rooms it is in, sorted so that a rename reaches them in a stable order.
    pub(crate) rooms: BTreeSet<RoomName>,
}

impl Connection {
    /// The member as clients see it; `joined_at` is the room's join time, or the
    /// connection's start where no room is involved.
    pub(crate) fn member(&self, id: MemberId, joined_at: Timestamp) -> Member {
        Member {
            id,
            name: self.name.clone(),
            joined_at,
        }
    }
}

/// The room named in a request does not exist (it has no members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRoom;

/// The member named in a request is not in the room named with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAMember;

/// How much there is: connected members and rooms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub members: usize,
    pub rooms: usize,
}

#[derive(Debug)]
pub struct RoomState {
    pub(crate) settings: Settings,
    /// Keyed by ids the server assigned, not client input: a fast hash is safe.
    pub(crate) members: FxHashMap<MemberId, Connection>,
    /// Sorted, so listings come out in a stable order.
    pub(crate) rooms: BTreeMap<RoomName, Room>,
    /// Rooms whose members may believe a stale count: told at the next
    /// [`RoomState::member_counts`].
    counts_due: BTreeSet<RoomName>,
}

impl RoomState {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            members: FxHashMap::default(),
            rooms: BTreeMap::new(),
            counts_due: BTreeSet::new(),
        }
    }

    /// A connection has started; it is in no room yet.
    pub fn connect(&mut self, id: MemberId, name: DisplayName, now: Timestamp) {
        log::info!("member {id} ({name}) connected");
        debug_assert!(
            !self.members.contains_key(&id),
            "member ids are never reused"
        );
        self.members.insert(
            id,
            Connection {
                name,
                connected_at: now,
                rooms: BTreeSet::new(),
            },
        );
    }

    /// Takes a member out of every room (they hear `member_left` with `reason`) and
    /// forgets it. Only the first call for an id does anything, so a disconnect is
    /// processed exactly once whatever its cause and however often it is reported.
    pub fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Effects {
        let mut effects = Effects::new();
        let Some(connection) = self.members.remove(&id) else {
            return effects;
        };
        log::info!(
            "member {id} ({}) disconnected: {}",
            connection.name,
            reason.as_str()
        );
        for room_name in &connection.rooms {
            let Some(joined_at) = self.leave_room(id, room_name) else {
                continue;
            };
            effects.unsubscribe(id, room_name.clone());
            let member = connection.member(id, joined_at);
            self.announce_departure(room_name, member, reason, &mut effects);
        }
        effects
    }

    /// A backend posts into a room as `server`; the room must exist.
    pub fn publish(
        &mut self,
        room_name: &RoomName,
        text: String,
        now: Timestamp,
    ) -> Result<(Arc<ChatMessage>, Effects), UnknownRoom> {
        let room = self.rooms.get_mut(room_name).ok_or(UnknownRoom)?;
        let message = room.post(room_name, Sender::Server, text.into(), now);
        let mut effects = Effects::new();
        effects.send(Event::Message(message.clone()), room_audience(room_name));
        Ok((message, effects))
    }

    /// A backend removes member `id` from a room (moderation): it gets `left` with
    /// reason `kicked`, the others `member_left` with reason `kicked`. It stays
    /// connected and may join again.
    pub fn kick(&mut self, room_name: &RoomName, id: MemberId) -> Result<Effects, NotAMember> {
        if !self.is_in(id, room_name) {
            return Err(NotAMember);
        }
        let member = self.member_in(id, room_name).ok_or(NotAMember)?;
        if let Some(connection) = self.members.get_mut(&id) {
            connection.rooms.remove(room_name);
        }
        self.leave_room(id, room_name);
        log::info!("member {id} kicked from {room_name}");
        let mut effects = Effects::new();
        effects.unsubscribe(id, room_name.clone());
        let left = Event::Left {
            room: room_name.clone(),
            reason: Some(LeaveReason::Kicked),
        };
        effects.send(left, Audience::Member(id));
        self.announce_departure(room_name, member, LeaveReason::Kicked, &mut effects);
        Ok(effects)
    }

    /// `member_count` to every room whose members may believe a stale count (a big
    /// room that changed), once per room. The hub calls it every
    /// `MEMBER_COUNT_INTERVAL_MS`, which is what makes it "at most once per interval".
    pub fn member_counts(&mut self) -> Effects {
        let mut effects = Effects::new();
        for name in std::mem::take(&mut self.counts_due) {
            let Some(room) = self.rooms.get_mut(&name) else {
                continue;
            };
            if room.told_count == room.len() {
                continue;
            }
            room.told_count = room.len();
            let count = Event::MemberCount {
                room: name.clone(),
                count: room.len(),
            };
            effects.send(count, room_audience(&name));
        }
        effects
    }

    /// One page of rooms, by name, after `after`; each with its member count and at
    /// most `JOINED_MEMBERS_MAX` of its members (`next` pages through the rest).
    pub fn rooms_view(&self, after: Option<&RoomName>, limit: PageLimit) -> RoomsView {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rooms = self.rooms.range::<RoomName, _>((from, Bound::Unbounded));
        let page: Vec<RoomView> = rooms
            .by_ref()
            .take(limit.get())
            .map(|(name, room)| {
                let (members, next) =
                    self.members_page(room, None, self.settings.joined_members_max);
                RoomView {
                    name: name.clone(),
                    members,
                    member_count: room.len(),
                    next,
                    history: None,
                }
            })
            .collect();
        let next = match rooms.next() {
            Some(_) => page.last().map(|room| room.name.clone()),
            None => None,
        };
        RoomsView { rooms: page, next }
    }

    /// One room with a page of its members (after `after`) and its history; `None` if
    /// it does not exist.
    pub fn room_view(
        &self,
        name: &RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
    ) -> Option<RoomView> {
        let room = self.rooms.get(name)?;
        let (members, next) = self.members_page(room, after, limit.get());
        Some(RoomView {
            name: name.clone(),
            members,
            member_count: room.len(),
            next,
            history: Some(history_events(room)),
        })
    }

    pub fn counts(&self) -> Counts {
        Counts {
            members: self.members.len(),
            rooms: self.rooms.len(),
        }
    }

    // --- what commands build on --------------------------------------------------------

    /// Up to `limit` of the room's members after `after`, as clients see them, in id
    /// order, and the `after` of the next page if there is one.
    pub(crate) fn members_page(
        &self,
        room: &Room,
        after: Option<MemberId>,
        limit: usize,
    ) -> (Vec<Member>, Option<MemberId>) {
        let mut members = room
            .members_after(after)
            .filter_map(|(id, at)| self.members.get(&id).map(|c| c.member(id, at)));
        let page: Vec<Member> = members.by_ref().take(limit).collect();
        let next = match members.next() {
            Some(_) => page.last().map(|member| member.id),
            None => None,
        };
        (page, next)
    }

    /// The members `joined` lists: the first `JOINED_MEMBERS_MAX` in id order, the
    /// joiner always among them (in the last place if it would not have been).
    pub(crate) fn joined_members(&self, room: &Room, joiner: MemberId) -> Vec<Member> {
        let max = self.settings.joined_members_max;
        let (mut members, _) = self.members_page(room, None, max);
        if !members.iter().any(|m| m.id == joiner) {
            // Not among the first: its id is above all of theirs, so last keeps the order.
            members.truncate(max.saturating_sub(1));
            let at = room.joined_at(joiner);
            if let (Some(connection), Some(at)) = (self.members.get(&joiner), at) {
                members.push(connection.member(joiner, at));
            }
        }
        members
    }

    /// Up to `limit` rooms after `after` and how many are in each, by name, and the
    /// `after` of the next page if there is one.
    pub(crate) fn room_counts(
        &self,
        after: Option<&RoomName>,
        limit: PageLimit,
    ) -> (Vec<RoomCount>, Option<RoomName>) {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rooms = self.rooms.range::<RoomName, _>((from, Bound::Unbounded));
        let page: Vec<RoomCount> = rooms
            .by_ref()
            .take(limit.get())
            .map(|(name, room)| RoomCount {
                name: name.clone(),
                members: room.len(),
            })
            .collect();
        let next = match rooms.next() {
            Some(_) => page.last().map(|room| room.name.clone()),
            None => None,
        };
        (page, next)
    }

    /// After `member` joined the room: the others hear `member_joined`, or, in a big
    /// room (over `PRESENCE_EVENTS_MAX` with the joiner), the change is counted for the
    /// next `member_count`.
    pub(crate) fn announce_arrival(
        &mut self,
        room_name: &RoomName,
        member: Member,
        effects: &mut Effects,
    ) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if room.len() == 1 {
            // Alone: nobody to tell, and the joiner's `joined` has the count.
            room.told_count = 1;
        } else if room.len() > self.settings.presence_events_max {
            self.counts_due.insert(room_name.clone());
        } else {
            room.told_count += 1;
            let others = Audience::Room {
                room: room_name.clone(),
                except: Some(member.id),
            };
            let arrival = Event::MemberJoined {
                room: room_name.clone(),
                member,
            };
            effects.send(arrival, others);
        }
    }

    /// After `member` left the room (for `reason`): the others hear `member_left`, or,
    /// in a room that was big (over `PRESENCE_EVENTS_MAX` with the leaver), the change is
    /// counted for the next `member_count`. The last one out tells nobody: the room is
    /// gone.
    pub(crate) fn announce_departure(
        &mut self,
        room_name: &RoomName,
        member: Member,
        reason: LeaveReason,
        effects: &mut Effects,
    ) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if room.len() + 1 > self.settings.presence_events_max {
            self.counts_due.insert(room_name.clone());
            return;
        }
        room.told_count = room.told_count.saturating_sub(1);
        let departure = Event::MemberLeft {
            room: room_name.clone(),
            member,
            reason,
        };
        effects.send(departure, room_audience(room_name));
    }

    pub(crate) fn is_connected(&self, id: MemberId) -> bool {
        self.members.contains_key(&id)
    }

    pub(crate) fn is_in(&self, id: MemberId, room: &RoomName) -> bool {
        self.members
            .get(&id)
            .is_some_and(|c| c.rooms.contains(room))
    }

    /// The member as clients see it in `room` (its join time there), or with its
    /// connection time if it is not in it. `None` if no such member.
    pub(crate) fn member_in(&self, id: MemberId, room: &RoomName) -> Option<Member> {
        let connection = self.members.get(&id)?;
        let joined_at = self
            .rooms
            .get(room)
            .and_then(|r| r.joined_at(id))
            .unwrap_or(connection.connected_at);
        Some(connection.member(id, joined_at))
    }

    /// The member as clients see it outside any room (whispers).
    pub(crate) fn member(&self, id: MemberId) -> Option<Member> {
        self.members.get(&id).map(|c| c.member(id, c.connected_at))
    }

    /// Removes `id` from one room's member list, dropping the room when it empties
    /// (history and `seq` go with it); returns when it had joined. The member's own list
    /// of rooms is the caller's to update.
    pub(crate) fn leave_room(&mut self, id: MemberId, name: &RoomName) -> Option<Timestamp> {
        let room = self.rooms.get_mut(name)?;
        let joined_at = room.leave(id)?;
        if room.is_empty() {
            self.rooms.remove(name);
        }
        Some(joined_at)
    }
}

/// A room's history as `message` events, oldest first.
pub(crate) fn history_events(room: &Room) -> Vec<Event> {
    room.history().cloned().map(Event::Message).collect()
}

/// Everyone in the room.
pub(crate) fn room_audience(room: &RoomName) -> Audience {
    Audience::Room {
        room: room.clone(),
        except: None,
    }
}
