//! A cluster's *replica*: every node of a cluster keeps one [`RoomState`] per room it
//! follows, built from the room as the cluster's store holds it ([`RoomSnapshot`]) and
//! then fed the room's entries in the store's order. The entries are applied with the
//! core's own rules ([`Command::apply_to`], [`RoomState::publish`],
//! [`RoomState::disconnect`], [`RoomState::kick`], and [`RoomState::enter`] here for a
//! join), so every node computes the same room and the same events from the same
//! entries, and delivers to its own connections only what concerns them.
//!
//! What a single server decides for itself, a replica must not decide again: the
//! limits of a connection and of the whole server were the origin node's and the
//! store's business before the entry was written, so a replica's [`Settings`] lift them
//! ([`Settings::for_replica`]), and a replica's room lives as long as the node follows
//! it (it is never expired nor dropped to make room). Its `epoch` is the store's, not
//! one the state makes up.
//!
//! A replica holds members of every node: each is *connected* to it with the name and
//! user the store has for it, and a grant of any room (the origin node checked the
//! token). A member that leaves the room (a `leave`, a kick) is then forgotten
//! ([`RoomState::forget`]): the replica is only about the one room.

use std::{collections::BTreeSet, sync::Arc};

use crate::{
    cmd::{Join, Since},
    effects::Effects,
    grant::{Access, RoomGrant},
    protocol::{ChatMessage, Member, MemberId, RoomName, Timestamp},
    room::Room,
    state::{Connection, RoomState, Settings},
    Command,
};

/// One room as a cluster's store holds it: what a replica starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomSnapshot {
    pub room: RoomName,
    /// This life of the room (see `join`'s `since`).
    pub epoch: Arc<str>,
    /// The room's last `seq` (0 before its first message): the next post gets `seq + 1`.
    pub seq: u64,
    /// Every member, in any order, each with when it joined the room.
    pub members: Vec<Member>,
    /// Recent messages, oldest first (the last `HISTORY_LEN` are kept).
    pub history: Vec<Arc<ChatMessage>>,
}

impl RoomSnapshot {
    /// A room that does not exist yet: this `epoch`, no message, nobody in it.
    pub fn new_room(room: RoomName, epoch: Arc<str>) -> Self {
        Self {
            room,
            epoch,
            seq: 0,
            members: Vec::new(),
            history: Vec::new(),
        }
    }
}

impl Settings {
    /// The rules a replica applies. The per-connection and whole-server limits
    /// (`max_rooms_per_connection`, `max_rooms_total`, `history_max_bytes`) are the
    /// origin node's and the store's business, decided before the entry was written, so
    /// they are unlimited here: a replica never refuses an entry. `room_ttl_ms` is as
    /// long as it can be (never 0, never expiring, even should `expire` be called): a
    /// replica's room lives as long as the node follows it. `history_len`,
    /// `joined_members_max`, `presence_events_max` and the idempotency settings are
    /// kept: they shape the events every node must compute alike.
    pub fn for_replica(&self) -> Settings {
        Settings {
            max_rooms_per_connection: usize::MAX,
            max_rooms_total: usize::MAX,
            history_max_bytes: usize::MAX,
            // `expire` compares in i64 milliseconds: the largest TTL that stays positive.
            room_ttl_ms: i64::MAX as u64,
            ..self.clone()
        }
    }
}

impl RoomState {
    /// A state holding exactly the one room of `snapshot`: its epoch, its seq (the next
    /// post gets `seq + 1`), its history, and its members, each connected (its name,
    /// its user, any room) and in the room since its `joined_at`. The members are told
    /// nothing: they already know the room as the store has it, so the count they
    /// believe is its size (no `member_count` is due). `settings` are made
    /// [`Settings::for_replica`] here (again, if they were already). The state logs
    /// quietly (see [`RoomState::quiet`]).
    pub fn replica(settings: Settings, snapshot: RoomSnapshot) -> RoomState {
        let RoomSnapshot {
            room: name,
            epoch,
            seq,
            mut members,
            history,
        } = snapshot;
        let mut state = RoomState::new(settings.for_replica(), format!("replica-{epoch}"));
        state.quiet = true;
        members.sort_by_key(|member| member.id);
        members.dedup_by_key(|member| member.id);
        // Only an empty room's place in the idle index uses it: as late as the room is
        // known to have been used.
        let last_used = members
            .iter()
            .map(|member| member.joined_at)
            .chain(history.last().map(|message| message.at))
            .max()
            .unwrap_or(Timestamp::from_millis(0));
        let mut room = Room::restored(state.settings.history_len, epoch, seq, history, last_used);
        for member in &members {
            room.join(member.id, member.user.as_ref(), member.joined_at);
        }
        room.told_count = room.len();
        state.history_bytes = room.history_bytes();
        state.rooms.insert(name.clone(), room);
        for member in members {
            let connection = Connection {
                name: member.name,
                connected_at: member.joined_at,
                rooms: BTreeSet::from([name.clone()]),
                access: replica_access(member.user),
            };
            state.members.insert(member.id, connection);
        }
        state.index_idle(&name);
        state
    }

    /// Member `member` (of any node) enters `room`: connected first unless it already
    /// is (with its name and user, and any room), then the core's own `join` rules
    /// with `since` applied at `now`, so the effects are exactly what a single server
    /// produces: `joined` to the requester (the member), `member_joined` to the others
    /// or a due `member_count` in a big room, and its Subscribe. Its join time in the
    /// room is `now` (the member's own `joined_at` is not used). A member already in the
    /// room gets `joined` again and nobody is told. A room this state does not hold
    /// does nothing: a replica has one room, made from a snapshot.
    pub fn enter(
        &mut self,
        room: &RoomName,
        member: Member,
        since: Option<Since>,
        now: Timestamp,
    ) -> Effects {
        if !self.holds(room, member.id) {
            return Effects::new();
        }
        let id = member.id;
        self.connect_replica_member(member, now);
        let join = Join {
            room: room.clone(),
            since,
        };
        Command::Join(join).apply_to(self, id, now)
    }

    /// Like [`RoomState::enter`] but announces nothing and replies nothing: only the
    /// Subscribe effect, and none for a member already in the room. For a member put
    /// back after the store lost its data: the others already knew it, so it counts
    /// in the count they believe.
    pub fn enter_quietly(&mut self, room: &RoomName, member: Member, now: Timestamp) -> Effects {
        let mut effects = Effects::new();
        if !self.holds(room, member.id) {
            return effects;
        }
        let id = member.id;
        self.connect_replica_member(member, now);
        if self.is_in(id, room) {
            return effects;
        }
        // The room exists and a replica's settings have no room limit: this cannot
        // be refused.
        if self.join_room(id, room, now).is_err() {
            return effects;
        }
        if let Some(connection) = self.members.get_mut(&id) {
            connection.rooms.insert(room.clone());
        }
        if let Some(room) = self.rooms.get_mut(room) {
            room.told_count += 1;
        }
        effects.subscribe(id, room.clone());
        effects
    }

    /// Member `id` leaves `room` because its refreshed token no longer allows it, as
    /// [`RoomState::reauthorize`] has it leave: `left` (`kicked`) to it as the
    /// requester, so the reply carries the `refresh`'s `ref`, and `member_left` to the
    /// others. A cluster's origin node applies its own revoke so; the other nodes, for
    /// whom the member is not the requester, apply it as a [`RoomState::kick`], which
    /// changes the room alike.
    pub fn revoke(&mut self, room: &RoomName, id: MemberId, now: Timestamp) -> Effects {
        let mut effects = Effects::new();
        self.remove_member(
            room,
            id,
            crate::effects::Audience::Requester,
            now,
            &mut effects,
        );
        effects
    }

    /// Forgets member `id` quietly: it is in no room of this state any more (it left
    /// the one room, by `leave` or a kick), or it is dropped without a word (after the
    /// store lost it); nobody is told. Does nothing if the member is unknown.
    pub fn forget(&mut self, id: MemberId) {
        let Some(connection) = self.members.remove(&id) else {
            return;
        };
        log::debug!("member {id} ({}) forgotten by a replica", connection.name);
        let user = connection.access.user.as_ref();
        for room in &connection.rooms {
            self.leave_room(id, user, room, connection.connected_at);
        }
    }

    /// The room's `epoch` and last `seq`, if this state has the room.
    pub fn position(&self, room: &RoomName) -> Option<(Arc<str>, u64)> {
        let room = self.rooms.get(room)?;
        Some((Arc::clone(&room.epoch), room.last_seq()))
    }

    /// The room as a snapshot (members in id order, history oldest first), from which
    /// [`RoomState::replica`] makes a state that goes on exactly as this one; `None` if
    /// the state does not have the room.
    pub fn snapshot(&self, room_name: &RoomName) -> Option<RoomSnapshot> {
        let room = self.rooms.get(room_name)?;
        let members = room
            .members_after(None)
            .filter_map(|(id, at)| self.members.get(&id).map(|c| c.member(id, at)))
            .collect();
        Some(RoomSnapshot {
            room: room_name.clone(),
            epoch: Arc::clone(&room.epoch),
            seq: room.last_seq(),
            members,
            history: room.history().cloned().collect(),
        })
    }

    /// Whether member `id` is in `room`.
    pub fn contains(&self, room: &RoomName, id: MemberId) -> bool {
        self.is_in(id, room)
    }

    /// Whether this state has `room` (a replica's one room); logs the misuse if not.
    fn holds(&self, room: &RoomName, id: MemberId) -> bool {
        let holds = self.rooms.contains_key(room);
        if !holds {
            log::warn!("member {id} cannot enter {room}: this replica does not hold it");
        }
        holds
    }

    /// Connects a member of any node, unless it is connected already.
    fn connect_replica_member(&mut self, member: Member, now: Timestamp) {
        if !self.is_connected(member.id) {
            self.connect_with(member.id, member.name, replica_access(member.user), now);
        }
    }
}

/// A replica's member: its user, and any room (its own node checked its token's grant
/// before the entry was written).
fn replica_access(user: Option<crate::protocol::UserId>) -> Access {
    Access {
        user,
        rooms: RoomGrant::Any,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::protocol::{DisplayName, LeaveReason};

    thread_local! {
        /// The lines this thread logged, with their levels.
        static LINES: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    /// Keeps each thread's lines for that thread: tests run in parallel.
    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            let line = (record.level(), record.args().to_string());
            LINES.with(|lines| lines.borrow_mut().push(line));
        }
        fn flush(&self) {}
    }

    fn levels_of_member_lines(state: &mut RoomState) -> Vec<log::Level> {
        static CAPTURE: Capture = Capture;
        // Another test may have installed it first: either way it is installed.
        let _ = log::set_logger(&CAPTURE);
        log::set_max_level(log::LevelFilter::Trace);
        LINES.with(|lines| lines.borrow_mut().clear());
        let room = RoomName::parse("lobby").unwrap();
        let at = Timestamp::from_millis(0);
        let ann = Member {
            id: MemberId(1),
            name: DisplayName::parse("ann").unwrap(),
            joined_at: at,
            user: None,
        };
        if state.rooms.is_empty() {
            state
                .publish(&room, "make the room".into(), None, at)
                .unwrap();
        }
        state.connect(ann.id, ann.name.clone(), at);
        let _ = Command::Join(Join::room(room.clone())).apply_to(state, ann.id, at);
        let _ = state.kick(&room, ann.id, at);
        let _ = state.disconnect(ann.id, LeaveReason::Disconnect, at);
        LINES.with(|lines| {
            lines
                .borrow()
                .iter()
                .filter(|(_, line)| line.starts_with("member 1 "))
                .map(|(level, _)| *level)
                .collect()
        })
    }

    #[test]
    fn a_replica_logs_members_coming_and_going_at_debug() {
        let settings = Settings {
            max_rooms_per_connection: 8,
            history_len: 5,
            joined_members_max: 10,
            presence_events_max: 10,
            room_ttl_ms: 1_000,
            max_rooms_total: 10,
            history_max_bytes: 1 << 20,
            idempotency_ttl_ms: 1_000,
            idempotency_keys_max: 10,
        };
        let mut single = RoomState::new(settings.clone(), "t");
        assert_eq!(
            levels_of_member_lines(&mut single),
            [log::Level::Info; 3],
            "connected, kicked, disconnected"
        );
        let snapshot = RoomSnapshot::new_room(RoomName::parse("lobby").unwrap(), "e".into());
        let mut replica = RoomState::replica(settings, snapshot);
        assert_eq!(levels_of_member_lines(&mut replica), [log::Level::Debug; 3]);
    }
}
