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
    grant::Access,
    protocol::{
        ChatMessage, DisplayName, Event, LeaveReason, Member, MemberId, PageLimit, RoomCount,
        RoomName, RoomView, RoomsView, Sender, Timestamp, UserId,
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
    /// How long a room with nobody in it is kept (its `seq`, `epoch` and history) after
    /// it was last used, in milliseconds; 0: gone when empty (`ROOM_TTL_MS`).
    pub room_ttl_ms: u64,
    /// Rooms kept at most, occupied or not (`MAX_ROOMS_TOTAL`).
    pub max_rooms_total: usize,
    /// What the kept history of every room may cost together, in bytes
    /// (`HISTORY_MAX_BYTES`, counted by [`crate::room`]'s `history_cost`).
    pub history_max_bytes: usize,
    /// How long a publish's `Idempotency-Key` is remembered, in milliseconds
    /// (`IDEMPOTENCY_TTL_MS`).
    pub idempotency_ttl_ms: u64,
    /// Keys remembered per room at most, the oldest forgotten first
    /// (`IDEMPOTENCY_KEYS_MAX`).
    pub idempotency_keys_max: usize,
}

/// A connected member as room state keeps it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) name: DisplayName,
    pub(crate) connected_at: Timestamp,
    /// The rooms it is in, sorted so that a rename reaches them in a stable order.
    pub(crate) rooms: BTreeSet<RoomName>,
    /// Its user and the rooms its token allows (anybody, anywhere, without a token).
    pub(crate) access: Access,
}

impl Connection {
    /// The member as clients see it; `joined_at` is the room's join time, or the
    /// connection's start where no room is involved.
    pub(crate) fn member(&self, id: MemberId, joined_at: Timestamp) -> Member {
        Member {
            id,
            name: self.name.clone(),
            joined_at,
            user: self.access.user.clone(),
        }
    }
}

/// A new room was asked for, but the server keeps `MAX_ROOMS_TOTAL` rooms and every one
/// is occupied (an empty one would have made room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomsFull {
    pub max: usize,
}

impl RoomsFull {
    pub fn message(&self) -> String {
        format!(
            "the server keeps at most {} rooms and every one is occupied; try again later",
            self.max
        )
    }
}

/// Why a backend's publish was refused; nothing was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishRefused {
    /// A new room was needed and every kept room is occupied.
    RoomsFull(RoomsFull),
    /// The room already remembers `IDEMPOTENCY_KEYS_MAX` keys, none of them older than
    /// `IDEMPOTENCY_TTL_MS`: a new one could not be kept as long as promised.
    TooManyKeys { max: usize },
}

impl PublishRefused {
    pub fn message(&self) -> String {
        match self {
            PublishRefused::RoomsFull(full) => full.message(),
            PublishRefused::TooManyKeys { max } => format!(
                "the room remembers {max} Idempotency-Keys from the last IDEMPOTENCY_TTL_MS; try again later"
            ),
        }
    }
}

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
    /// The rooms nobody is in, by when they were last used: the first is the one idle
    /// longest, which goes first when rooms or history must make room.
    idle: BTreeSet<(Timestamp, RoomName)>,
    /// What every room's kept history costs together.
    pub(crate) history_bytes: usize,
    /// Makes each room's `epoch`: this state's own prefix and a counter.
    epoch_prefix: String,
    rooms_made: u64,
    /// A cluster's replica ([`RoomState::replica`]): every node applies the same
    /// entries, so the lines a single server logs at info (a member connected,
    /// disconnected, was kicked) would repeat once per node; a replica logs them at
    /// debug and leaves info to the node that holds the connection.
    pub(crate) quiet: bool,
}

impl RoomState {
    /// `epoch_prefix` must differ for every `RoomState` a server ever makes (its start
    /// time, say): a room's `epoch` is it and a counter, so one made after a restart
    /// never has the `epoch` of one made before.
    pub fn new(settings: Settings, epoch_prefix: impl Into<String>) -> Self {
        Self {
            settings,
            members: FxHashMap::default(),
            rooms: BTreeMap::new(),
            counts_due: BTreeSet::new(),
            idle: BTreeSet::new(),
            history_bytes: 0,
            epoch_prefix: epoch_prefix.into(),
            rooms_made: 0,
            quiet: false,
        }
    }

    /// The level of the lines a single server logs at info about members coming,
    /// going and being removed: debug on a replica (see [`RoomState::quiet`]).
    pub(crate) fn members_log_level(&self) -> log::Level {
        if self.quiet {
            log::Level::Debug
        } else {
            log::Level::Info
        }
    }

    /// A connection without a token has started; it is in no room yet.
    pub fn connect(&mut self, id: MemberId, name: DisplayName, now: Timestamp) {
        self.connect_with(id, name, Access::default(), now);
    }

    /// A connection has started as `access` says (its token's user and rooms); it is in
    /// no room yet.
    pub fn connect_with(
        &mut self,
        id: MemberId,
        name: DisplayName,
        access: Access,
        now: Timestamp,
    ) {
        let level = self.members_log_level();
        match &access.user {
            Some(user) => log::log!(level, "member {id} ({name}, user {user}) connected"),
            None => log::log!(level, "member {id} ({name}) connected"),
        }
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
                access,
            },
        );
    }

    /// Takes a member out of every room (they hear `member_left` with `reason`) and
    /// forgets it. Only the first call for an id does anything, so a disconnect is
    /// processed exactly once whatever its cause and however often it is reported.
    pub fn disconnect(&mut self, id: MemberId, reason: LeaveReason, now: Timestamp) -> Effects {
        let mut effects = Effects::new();
        let Some(connection) = self.members.remove(&id) else {
            return effects;
        };
        log::log!(
            self.members_log_level(),
            "member {id} ({}) disconnected: {}",
            connection.name,
            reason.as_str()
        );
        let user = connection.access.user.as_ref();
        for room_name in &connection.rooms {
            let Some(joined_at) = self.leave_room(id, user, room_name, now) else {
                continue;
            };
            effects.unsubscribe(id, room_name.clone());
            let member = connection.member(id, joined_at);
            self.announce_departure(room_name, member, reason, &mut effects);
        }
        effects
    }

    /// A backend posts into a room as `server`, making the room if it does not exist
    /// (an empty room is kept as any other). With an `idempotency_key` seen in this room
    /// within `IDEMPOTENCY_TTL_MS`, nothing is published: the first attempt's message
    /// is the answer, with no effects.
    pub fn publish(
        &mut self,
        room_name: &RoomName,
        text: String,
        idempotency_key: Option<&str>,
        now: Timestamp,
    ) -> Result<(Arc<ChatMessage>, Effects), PublishRefused> {
        let keep_ms = self.settings.idempotency_ttl_ms as i64;
        let max_keys = self.settings.idempotency_keys_max;
        if let (Some(key), Some(room)) = (idempotency_key, self.rooms.get_mut(room_name)) {
            if let Some(first) = room.published_with(key, now, keep_ms) {
                return Ok((first, Effects::new()));
            }
            // Every key is kept its whole time: a full room refuses a new one.
            if room.remembered_keys() >= max_keys {
                return Err(PublishRefused::TooManyKeys { max: max_keys });
            }
        }
        if idempotency_key.is_some() && max_keys == 0 {
            return Err(PublishRefused::TooManyKeys { max: 0 });
        }
        self.open_room(room_name, now)
            .map_err(PublishRefused::RoomsFull)?;
        let message = self.post(room_name, Sender::Server, text.into(), now);
        if let (Some(key), Some(room)) = (idempotency_key, self.rooms.get_mut(room_name)) {
            room.remember(key.into(), now, message.clone());
        }
        let mut effects = Effects::new();
        effects.send(Event::Message(message.clone()), room_audience(room_name));
        Ok((message, effects))
    }

    /// Forgets the empty rooms not used for `ROOM_TTL_MS`. The hub calls it often
    /// enough that a room is gone within a second of its time.
    pub fn expire(&mut self, now: Timestamp) {
        let ttl = self.settings.room_ttl_ms as i64;
        while let Some((last_used, _)) = self.idle.first() {
            if now.millis() - last_used.millis() < ttl {
                break;
            }
            if let Some((_, name)) = self.idle.pop_first() {
                log::debug!("room {name} expired");
                self.remove_room(&name);
            }
        }
    }

    /// A backend removes member `id` from a room (moderation): it gets `left` with
    /// reason `kicked`, the others `member_left` with reason `kicked`. It stays
    /// connected and may join again.
    pub fn kick(
        &mut self,
        room_name: &RoomName,
        id: MemberId,
        now: Timestamp,
    ) -> Result<Effects, NotAMember> {
        if !self.is_in(id, room_name) {
            return Err(NotAMember);
        }
        let mut effects = Effects::new();
        self.remove_member(room_name, id, Audience::Member(id), now, &mut effects);
        log::log!(
            self.members_log_level(),
            "member {id} kicked from {room_name}"
        );
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

    /// Takes member `id` out of a room it is in, not by its own choice: `left` with
    /// reason `kicked` to `told` (the member, as `Audience::Member` or as the requester
    /// whose command caused it), `member_left` with reason `kicked` to the others.
    pub(crate) fn remove_member(
        &mut self,
        room_name: &RoomName,
        id: MemberId,
        told: Audience,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let Some(member) = self.member_in(id, room_name) else {
            return;
        };
        if let Some(connection) = self.members.get_mut(&id) {
            connection.rooms.remove(room_name);
        }
        self.leave_room(id, member.user.as_ref(), room_name, now);
        effects.unsubscribe(id, room_name.clone());
        let left = Event::Left {
            room: room_name.clone(),
            reason: Some(LeaveReason::Kicked),
        };
        effects.send(left, told);
        self.announce_departure(room_name, member, LeaveReason::Kicked, effects);
    }

    /// Whether member `id`'s token lets it into `room` (always, without a token).
    pub(crate) fn may_enter(&self, id: MemberId, room: &RoomName) -> bool {
        self.members
            .get(&id)
            .is_some_and(|c| c.access.rooms.allows(room))
    }

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
            // A connection without a token is its own user: always its first.
            let first = member
                .user
                .as_ref()
                .is_none_or(|user| room.connections_of(user) == 1);
            let arrival = Event::MemberJoined {
                room: room_name.clone(),
                member,
                first,
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
        if room.is_empty() {
            // The last one out tells nobody.
            return;
        }
        if room.len() + 1 > self.settings.presence_events_max {
            self.counts_due.insert(room_name.clone());
            return;
        }
        room.told_count = room.told_count.saturating_sub(1);
        // A connection without a token is its own user: always its last.
        let last = member
            .user
            .as_ref()
            .is_none_or(|user| room.connections_of(user) == 0);
        let departure = Event::MemberLeft {
            room: room_name.clone(),
            member,
            reason,
            last,
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

    /// Removes `id` (a connection of `user`, if it has one) from one room's member list;
    /// returns when it had joined. A room left empty is kept for `ROOM_TTL_MS` (with a
    /// TTL of 0 it goes at once, history and `seq` with it). The member's own list of
    /// rooms is the caller's to update.
    pub(crate) fn leave_room(
        &mut self,
        id: MemberId,
        user: Option<&UserId>,
        name: &RoomName,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let joined_at = self.rooms.get_mut(name)?.leave(id, user, now)?;
        if self.rooms.get(name).is_some_and(Room::is_empty) {
            if self.settings.room_ttl_ms == 0 {
                self.remove_room(name);
            } else {
                self.index_idle(name);
            }
        }
        Some(joined_at)
    }

    /// Adds `id` to a room (made if it does not exist, see [`RoomState::open_room`]).
    pub(crate) fn join_room(
        &mut self,
        id: MemberId,
        name: &RoomName,
        now: Timestamp,
    ) -> Result<(), RoomsFull> {
        self.open_room(name, now)?;
        self.unindex_idle(name);
        let user = self.members.get(&id).and_then(|c| c.access.user.as_ref());
        if let Some(room) = self.rooms.get_mut(name) {
            room.join(id, user, now);
        }
        Ok(())
    }

    /// The room, made if it does not exist. At `MAX_ROOMS_TOTAL` the empty room idle
    /// longest goes to make room; when every room is occupied, a new one is refused.
    pub(crate) fn open_room(&mut self, name: &RoomName, now: Timestamp) -> Result<(), RoomsFull> {
        if self.rooms.contains_key(name) {
            return Ok(());
        }
        if self.rooms.len() >= self.settings.max_rooms_total {
            let Some((_, idlest)) = self.idle.pop_first() else {
                return Err(RoomsFull {
                    max: self.settings.max_rooms_total,
                });
            };
            log::debug!("room {idlest} dropped to make room for {name}");
            self.remove_room(&idlest);
        }
        self.rooms_made += 1;
        let epoch: Arc<str> = format!("{}-{:x}", self.epoch_prefix, self.rooms_made).into();
        let room = Room::new(self.settings.history_len, epoch, now);
        self.rooms.insert(name.clone(), room);
        // Empty until someone joins: a room made by a publish is idle from the start.
        self.index_idle(name);
        Ok(())
    }

    /// Posts into an existing room, keeping the history budget.
    pub(crate) fn post(
        &mut self,
        name: &RoomName,
        from: Sender,
        text: Arc<str>,
        now: Timestamp,
    ) -> Arc<ChatMessage> {
        // One lookup: a say is the hot path. Only an empty room (a publish into it) is
        // in the idle index, and its place there moves with its last use.
        let room = self
            .rooms
            .get_mut(name)
            .expect("post is only called for a room that exists");
        let was_used = room.is_empty().then_some(room.last_used);
        let (message, grew) = room.post(name, from, text, now);
        if let Some(was_used) = was_used {
            self.idle.remove(&(was_used, name.clone()));
            self.idle.insert((room.last_used, name.clone()));
        }
        self.history_bytes = self.history_bytes.saturating_add_signed(grew);
        self.keep_history_budget();
        message
    }

    /// Past `HISTORY_MAX_BYTES`: the history of the empty rooms idle longest goes first,
    /// then the oldest messages of the rooms whose history is largest, down to 15/16 of
    /// the budget, so the next posts do not each pay for a trim.
    fn keep_history_budget(&mut self) {
        let budget = self.settings.history_max_bytes;
        if self.history_bytes <= budget {
            return;
        }
        let target = budget - budget / 16;
        let idle: Vec<RoomName> = self.idle.iter().map(|(_, name)| name.clone()).collect();
        for name in idle {
            if self.history_bytes <= target {
                return;
            }
            if let Some(room) = self.rooms.get_mut(&name) {
                self.history_bytes -= room.drop_history();
            }
        }
        let mut largest: std::collections::BinaryHeap<(usize, RoomName)> = self
            .rooms
            .iter()
            .filter(|(_, room)| room.history_bytes() > 0)
            .map(|(name, room)| (room.history_bytes(), name.clone()))
            .collect();
        while self.history_bytes > target {
            let Some((_, name)) = largest.pop() else {
                return;
            };
            let Some(room) = self.rooms.get_mut(&name) else {
                continue;
            };
            self.history_bytes -= room.drop_oldest();
            if room.history_bytes() > 0 {
                largest.push((room.history_bytes(), name));
            }
        }
    }

    fn remove_room(&mut self, name: &RoomName) {
        self.unindex_idle(name);
        if let Some(room) = self.rooms.remove(name) {
            self.history_bytes -= room.history_bytes();
        }
        self.counts_due.remove(name);
    }

    /// An empty room goes in the idle index, by when it was last used.
    pub(crate) fn index_idle(&mut self, name: &RoomName) {
        if let Some(room) = self.rooms.get(name) {
            if room.is_empty() {
                self.idle.insert((room.last_used, name.clone()));
            }
        }
    }

    /// Out of the idle index, before a change to the room's use (call
    /// [`RoomState::index_idle`] after it).
    fn unindex_idle(&mut self, name: &RoomName) {
        if let Some(room) = self.rooms.get(name) {
            if room.is_empty() {
                self.idle.remove(&(room.last_used, name.clone()));
            }
        }
    }

    /// What every room's kept history costs together, in bytes.
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
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
