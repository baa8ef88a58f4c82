//! [`TestHub`]: a `RoomState` with members connected at fixed times, and the delivery of
//! each operation's [`Effects`] as the hub does it, turned into something easy to assert:
//! a [`Outcome::trace`] of who receives which event type, in order, and the events each
//! member receives ([`Outcome::received_by`]).
//!
//! `Audience::Room` is resolved against the room's subscribers at that point of the
//! effects, which the test hub knows only by replaying the `Subscribe`/`Unsubscribe`
//! effects it has seen. After every operation it checks that this replayed membership is
//! the state's own, that `counts` agree, that no member gets two copies of one event,
//! that a room event goes to its own room, and that every room's messages are numbered
//! from 1 without gaps. A wrong subscription or a skipped `seq` therefore fails the test
//! that caused it, whatever that test asserts itself.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use hubbub_core::{
    cmd::{Echo, Join, Leave, ListRooms, Refresh, Rename, Say, Whisper, Who},
    protocol::{
        decode, ChatMessage, DisplayName, ErrorCode, Event, Inbound, LeaveReason, Member, MemberId,
        PageLimit, RoomName, RoomView, Timestamp, UserId,
    },
    Access, Audience, Command, Counts, Effect, Effects, NotAMember, PublishRefused, RoomGrant,
    RoomState, Settings,
};

/// The time of a test hub's first operation: 2026-12-01T09:00:00.000Z.
pub const START_MILLIS: i64 = 1_796_115_600_000;
/// How far the test hub's clock moves between two operations, in milliseconds: every
/// operation has its own time, so a join time shows which join it came from.
pub const TICK_MILLIS: i64 = 1_000;

/// Settings for tests: the server's default room limit is too high to reach by hand;
/// the big-room settings are the server's defaults (big-room tests lower them).
pub fn settings() -> Settings {
    Settings {
        max_rooms_per_connection: 8,
        history_len: 50,
        joined_members_max: 100,
        presence_events_max: 200,
        // Rooms go when empty, as the server did before rooms were kept; the tests of
        // kept rooms set a TTL.
        room_ttl_ms: 0,
        max_rooms_total: 1_000,
        history_max_bytes: 1 << 30,
        idempotency_ttl_ms: 300_000,
        idempotency_keys_max: 1_000,
    }
}

/// The HTTP views read whole: every page of rooms, every page of a room's members.
pub trait WholeViews {
    /// Every room, by name, each with all of its members.
    fn all_rooms(&self) -> Vec<RoomView>;
    /// One room with all of its members and its history.
    fn whole_room(&self, name: &RoomName) -> Option<RoomView>;
}

impl WholeViews for RoomState {
    fn all_rooms(&self) -> Vec<RoomView> {
        let mut rooms = Vec::new();
        let mut after = None;
        loop {
            let page = self.rooms_view(after.as_ref(), PageLimit::parse(2).unwrap());
            for view in page.rooms {
                let mut whole = self.whole_room(&view.name).expect("a listed room exists");
                whole.history = None;
                rooms.push(whole);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return rooms,
            }
        }
    }

    fn whole_room(&self, name: &RoomName) -> Option<RoomView> {
        let mut whole = self.room_view(name, None, PageLimit::parse(3).unwrap())?;
        while let Some(after) = whole.next {
            let page = self.room_view(name, Some(after), PageLimit::parse(3).unwrap())?;
            assert_eq!(
                page.member_count, whole.member_count,
                "a stable count across pages"
            );
            whole.members.extend(page.members);
            whole.next = page.next;
        }
        assert_eq!(
            whole.members.len(),
            whole.member_count,
            "the pages hold every member"
        );
        Some(whole)
    }
}

/// Who did an operation: its `Audience::Requester`, if it has one.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Member(MemberId),
    /// `disconnect` and `publish`: nobody to reply to.
    Nobody(&'static str),
}

/// A `RoomState` driven at fixed times, which delivers what it is told to.
pub struct TestHub {
    state: RoomState,
    /// The next operation's time, in milliseconds since the Unix epoch.
    next_millis: i64,
    /// The last id handed out; ids start at 1 and are never reused, as on the server.
    last_id: u64,
    /// When each connected member connected.
    connected: BTreeMap<MemberId, Timestamp>,
    /// Every member ever connected, by the name it connected with: the traces' labels.
    labels: BTreeMap<MemberId, String>,
    /// Who hears what is sent to each room, as the Subscribe/Unsubscribe effects said.
    subscribed: BTreeMap<RoomName, BTreeSet<MemberId>>,
    /// The `seq` of the last message delivered in each room that still exists.
    last_seq: BTreeMap<RoomName, u64>,
}

impl Default for TestHub {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHub {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// A test hub whose settings `configure` has changed from [`settings`].
    pub fn with(configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = settings();
        configure(&mut settings);
        Self {
            state: RoomState::new(settings, "test"),
            next_millis: START_MILLIS,
            last_id: 0,
            connected: BTreeMap::new(),
            labels: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            last_seq: BTreeMap::new(),
        }
    }

    /// This operation's time; the next one is a tick later.
    fn tick(&mut self) -> Timestamp {
        let now = Timestamp::from_millis(self.next_millis);
        self.next_millis += TICK_MILLIS;
        now
    }

    /// Connects a member named `name` (in no room yet) and returns its id. Its label in
    /// traces is `name`, or `name#id` if another member already has that label.
    pub fn connect(&mut self, name: &str) -> MemberId {
        self.connect_with(name, Access::default())
    }

    /// Connects a member named `name` as a connection of `user` whose token allows the
    /// rooms `rooms` matches (`None`: any room); labelled as [`TestHub::connect`] does.
    pub fn connect_as(&mut self, name: &str, user: &str, rooms: Option<&[&str]>) -> MemberId {
        let access = Access {
            user: Some(user_id(user)),
            rooms: rooms.map_or(RoomGrant::Any, grant),
        };
        self.connect_with(name, access)
    }

    fn connect_with(&mut self, name: &str, access: Access) -> MemberId {
        self.last_id += 1;
        let id = MemberId(self.last_id);
        let now = self.tick();
        self.state.connect_with(id, display_name(name), access, now);
        self.connected.insert(id, now);
        let taken = self.labels.values().any(|label| label == name);
        let label = if taken {
            format!("{name}#{id}")
        } else {
            name.to_owned()
        };
        self.labels.insert(id, label);
        self.check_state();
        id
    }

    /// Connects a member and joins it to `room`, returning its id (the join's effects
    /// are checked by the join tests, not here).
    pub fn member_of(&mut self, name: &str, room_name: &str) -> MemberId {
        let id = self.connect(name);
        let out = self.apply(id, join(room_name));
        assert!(
            matches!(out.reply(), Event::Joined { .. }),
            "{name} joins {room_name}: {:?}",
            out.trace()
        );
        id
    }

    /// When `id` connected.
    pub fn connected_at(&self, id: MemberId) -> Timestamp {
        self.connected[&id]
    }

    /// An id the hub has not handed out (yet): nobody has it.
    pub fn unused_id(&self) -> MemberId {
        MemberId(self.last_id + 1_000)
    }

    /// `command` from `from`, at the next tick.
    pub fn apply(&mut self, from: MemberId, command: Command) -> Outcome {
        let now = self.tick();
        let effects = command.apply_to(&mut self.state, from, now);
        self.deliver(Origin::Member(from), now, effects)
    }

    /// `id`'s connection ends for `reason`, at the next tick.
    pub fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Outcome {
        let now = self.tick();
        let effects = self.state.disconnect(id, reason, now);
        self.connected.remove(&id);
        self.deliver(Origin::Nobody("a disconnect"), now, effects)
    }

    /// A backend publishes `text` into `room_name`, at the next tick.
    pub fn publish(
        &mut self,
        room_name: &str,
        text: &str,
    ) -> Result<(Arc<ChatMessage>, Outcome), PublishRefused> {
        self.publish_with_key(room_name, text, None)
    }

    /// A backend publishes `text` into `room_name` with an `Idempotency-Key`, at the
    /// next tick.
    pub fn publish_with_key(
        &mut self,
        room_name: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<(Arc<ChatMessage>, Outcome), PublishRefused> {
        let now = self.tick();
        let published = self
            .state
            .publish(&room(room_name), text.to_owned(), key, now);
        match published {
            Ok((message, effects)) => {
                let out = self.deliver(Origin::Nobody("a publish"), now, effects);
                Ok((message, out))
            }
            Err(unknown) => {
                self.check_state();
                Err(unknown)
            }
        }
    }

    /// The hub's periodic sweep of kept rooms, at the next tick.
    pub fn expire(&mut self) {
        let now = self.tick();
        self.state.expire(now);
        self.check_state();
    }

    /// The hub's periodic `member_count` round, at the next tick.
    pub fn member_counts(&mut self) -> Outcome {
        let now = self.tick();
        let effects = self.state.member_counts();
        self.deliver(Origin::Nobody("a member count round"), now, effects)
    }

    /// Member `id` refreshed its token, whose `name` and `rooms` (`None`: any room) are
    /// now its own, at the next tick. The requester is `id`.
    pub fn reauthorize(
        &mut self,
        id: MemberId,
        name: Option<&str>,
        rooms: Option<&[&str]>,
    ) -> Outcome {
        let now = self.tick();
        let rooms = rooms.map_or(RoomGrant::Any, grant);
        let effects = self
            .state
            .reauthorize(id, name.map(display_name), rooms, now);
        self.deliver(Origin::Member(id), now, effects)
    }

    /// A backend removes `id` from `room_name`, at the next tick.
    pub fn kick(&mut self, room_name: &str, id: MemberId) -> Result<Outcome, NotAMember> {
        let now = self.tick();
        match self.state.kick(&room(room_name), id, now) {
            Ok(effects) => Ok(self.deliver(Origin::Nobody("a kick"), now, effects)),
            Err(refused) => {
                self.check_state();
                Err(refused)
            }
        }
    }

    pub fn state(&self) -> &RoomState {
        &self.state
    }

    /// Everything the views show: counts, and every room with members and history.
    pub fn snapshot(&self) -> Snapshot {
        let rooms = self
            .state
            .all_rooms()
            .iter()
            .map(|view| {
                self.state
                    .whole_room(&view.name)
                    .unwrap_or_else(|| panic!("room {} is listed but has no view", view.name))
            })
            .collect();
        Snapshot {
            counts: self.state.counts(),
            rooms,
        }
    }

    fn label(&self, id: MemberId) -> String {
        self.labels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// Plays `effects` in order: subscriptions change as they say, and each send goes
    /// to its audiences as they are at that point.
    fn deliver(&mut self, origin: Origin, at: Timestamp, effects: Effects) -> Outcome {
        let mut trace = Vec::new();
        let mut deliveries = Vec::new();
        for effect in effects.iter() {
            match effect {
                Effect::Subscribe { member, room } => {
                    let added = self
                        .subscribed
                        .entry(room.clone())
                        .or_default()
                        .insert(*member);
                    assert!(added, "{member} subscribed to {room} twice");
                    trace.push(format!("subscribe {} {room}", self.label(*member)));
                }
                Effect::Unsubscribe { member, room } => {
                    let removed = self
                        .subscribed
                        .get_mut(room)
                        .is_some_and(|members| members.remove(member));
                    assert!(removed, "{member} unsubscribed from {room}, not subscribed");
                    if self.subscribed.get(room).is_some_and(BTreeSet::is_empty) {
                        self.subscribed.remove(room);
                    }
                    trace.push(format!("unsubscribe {} {room}", self.label(*member)));
                }
                Effect::Send { event, to } => {
                    if let Event::Message(message) = event {
                        self.check_next_seq(message);
                    }
                    let mut served = BTreeSet::new();
                    let mut audiences = Vec::new();
                    for audience in to.iter() {
                        let (members, as_reply, text) = self.resolve(origin, event, audience);
                        for member in members {
                            assert!(
                                served.insert(member),
                                "{} gets two copies of {event:?}",
                                self.label(member)
                            );
                            deliveries.push(Delivery {
                                member,
                                as_reply,
                                event: event.clone(),
                            });
                        }
                        audiences.push(text);
                    }
                    trace.push(format!("{} -> {}", describe(event), audiences.join(" + ")));
                }
            }
        }
        for delivery in &deliveries {
            assert!(
                self.connected.contains_key(&delivery.member),
                "{} is not connected but gets {:?}",
                self.label(delivery.member),
                delivery.event
            );
        }
        self.check_state();
        Outcome {
            at,
            effects,
            trace,
            deliveries,
        }
    }

    /// Who an audience is right now, whether it is the requester's reply, and how the
    /// trace shows it.
    fn resolve(
        &self,
        origin: Origin,
        event: &Event,
        audience: &Audience,
    ) -> (Vec<MemberId>, bool, String) {
        match audience {
            Audience::Requester => {
                let id = match origin {
                    Origin::Member(id) => id,
                    Origin::Nobody(what) => panic!("{what} has no requester to send {event:?}"),
                };
                (vec![id], true, format!("reply:{}", self.label(id)))
            }
            Audience::Member(id) => (vec![*id], false, self.label(*id)),
            Audience::Room { room, except } => {
                assert_eq!(
                    room_of(event),
                    Some(room),
                    "an event sent to room {room} is about that room"
                );
                let members: Vec<MemberId> = self
                    .subscribed
                    .get(room)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|id| Some(*id) != *except)
                    .collect();
                let labels: Vec<String> = members.iter().map(|id| self.label(*id)).collect();
                (members, false, format!("[{}]", labels.join(" ")))
            }
        }
    }

    fn check_next_seq(&mut self, message: &ChatMessage) {
        let last = self.last_seq.entry(message.room.clone()).or_insert(0);
        assert_eq!(
            message.seq,
            *last + 1,
            "room {}'s messages are numbered from 1 without gaps",
            message.room
        );
        *last = message.seq;
    }

    /// The replayed subscriptions are the state's membership, and the counts agree.
    fn check_state(&mut self) {
        let views = self.state.all_rooms();
        let membership: BTreeMap<RoomName, BTreeSet<MemberId>> = views
            .iter()
            .filter(|view| !view.members.is_empty())
            .map(|view| {
                let ids = view.members.iter().map(|m| m.id).collect();
                (view.name.clone(), ids)
            })
            .collect();
        assert_eq!(
            self.subscribed, membership,
            "the Subscribe/Unsubscribe effects so far add up to the rooms' members"
        );
        assert_eq!(
            self.state.counts(),
            Counts {
                members: self.connected.len(),
                rooms: views.len(),
            }
        );
        let kept: BTreeSet<RoomName> = views.iter().map(|view| view.name.clone()).collect();
        // A room that is gone starts again at 1.
        self.last_seq.retain(|room, _| kept.contains(room));
    }
}

/// What the views show at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub counts: Counts,
    /// Every room's `room_view`, by name.
    pub rooms: Vec<RoomView>,
}

/// One copy of an event for one member.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub member: MemberId,
    /// Sent as `Audience::Requester`: the reply to the command, the copy with its `ref`.
    pub as_reply: bool,
    pub event: Event,
}

/// What one operation did.
#[derive(Debug)]
pub struct Outcome {
    /// The operation's time.
    pub at: Timestamp,
    /// The effects as the state returned them.
    pub effects: Effects,
    trace: Vec<String>,
    deliveries: Vec<Delivery>,
}

impl Outcome {
    /// One line per effect, in order: `subscribe ann lobby`, `unsubscribe ann lobby`, or
    /// `<type>[ <room>][ <error code>] -> <audiences>` where the audiences are served
    /// left to right and each is `reply:ann` (the requester), `ann` (one member) or
    /// `[ann bob]` (a room's members at that point, in id order, `except` left out).
    pub fn trace(&self) -> Vec<String> {
        self.trace.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    /// Every copy delivered, in the order they were served.
    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    /// The events `member` receives, in order.
    pub fn received_by(&self, member: MemberId) -> Vec<Event> {
        self.deliveries
            .iter()
            .filter(|d| d.member == member)
            .map(|d| d.event.clone())
            .collect()
    }

    /// The events sent as the requester's replies, in order.
    pub fn replies(&self) -> Vec<Event> {
        self.deliveries
            .iter()
            .filter(|d| d.as_reply)
            .map(|d| d.event.clone())
            .collect()
    }

    /// The one reply to the requester; panics unless there is exactly one.
    pub fn reply(&self) -> Event {
        match self.replies().as_slice() {
            [reply] => reply.clone(),
            replies => panic!("one reply expected, got {replies:?}: {:?}", self.trace),
        }
    }

    /// Each event sent, once, in order (whoever gets it).
    pub fn events(&self) -> Vec<Event> {
        self.effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Send { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The event's `type` and what the trace shows with it.
fn describe(event: &Event) -> String {
    let mut text = event_type(event);
    if let Some(room) = room_of(event) {
        text = format!("{text} {room}");
    }
    if let Event::Error { code, .. } = event {
        text = format!("{text} {code}");
    }
    text
}

/// The event's `type` on the wire.
pub fn event_type(event: &Event) -> String {
    wire(event)["type"]
        .as_str()
        .expect("every event has a type")
        .to_owned()
}

/// The room an event is about, if any.
pub fn room_of(event: &Event) -> Option<&RoomName> {
    event.room()
}

/// The event as JSON, as clients get it (without a `ref`).
pub fn wire(event: &Event) -> serde_json::Value {
    serde_json::from_str(&event.to_json()).expect("an event is JSON")
}

// --- values ---------------------------------------------------------------------------

pub fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap_or_else(|err| panic!("{name:?} is a valid room name: {err}"))
}

pub fn display_name(name: &str) -> DisplayName {
    DisplayName::parse(name).unwrap_or_else(|err| panic!("{name:?} is a valid name: {err}"))
}

pub fn member(id: MemberId, name: &str, joined_at: Timestamp) -> Member {
    Member {
        id,
        name: display_name(name),
        joined_at,
        user: None,
    }
}

pub fn user_id(user: &str) -> UserId {
    UserId::parse(user).unwrap_or_else(|err| panic!("{user:?} is a valid user id: {err}"))
}

/// The grant of a token whose `rooms` claim is `patterns`.
pub fn grant(patterns: &[&str]) -> RoomGrant {
    RoomGrant::parse(patterns.iter().copied())
        .unwrap_or_else(|err| panic!("{patterns:?} is a valid grant: {err}"))
}

pub fn at(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis)
}

// --- commands -------------------------------------------------------------------------

pub fn echo(text: &str) -> Command {
    Command::Echo(Echo { text: text.into() })
}

pub fn join(room_name: &str) -> Command {
    Command::Join(Join::room(room(room_name)))
}

/// `join` with `since`: where a reconnecting client left off.
pub fn join_since(room_name: &str, seq: u64, epoch: &str) -> Command {
    Command::Join(Join {
        room: room(room_name),
        since: Some(hubbub_core::cmd::Since {
            seq,
            epoch: epoch.to_owned(),
        }),
    })
}

/// `joined`'s `epoch`, `seq` and `recovered`.
pub fn resumed(joined: &Event) -> (String, u64, Option<bool>) {
    match joined {
        Event::Joined {
            epoch,
            seq,
            recovered,
            ..
        } => (epoch.to_string(), *seq, *recovered),
        other => panic!("not a joined: {other:?}"),
    }
}

pub fn leave(room_name: &str) -> Command {
    Command::Leave(Leave {
        room: room(room_name),
    })
}

pub fn say(room_name: &str, text: &str) -> Command {
    Command::Say(Say {
        room: room(room_name),
        text: text.into(),
    })
}

pub fn whisper(to: MemberId, text: &str) -> Command {
    Command::Whisper(Whisper {
        to,
        text: text.into(),
    })
}

pub fn who(room_name: &str) -> Command {
    Command::Who(Who {
        room: room(room_name),
        after: None,
        limit: None,
    })
}

pub fn rooms() -> Command {
    Command::Rooms(ListRooms::default())
}

pub fn rename(name: &str) -> Command {
    Command::Rename(Rename {
        name: display_name(name),
    })
}

pub fn refresh(token: &str) -> Command {
    Command::Refresh(Refresh {
        token: token.into(),
    })
}

/// One of each command, aimed at `room_name` and `someone`.
pub fn one_of_each(room_name: &str, someone: MemberId) -> Vec<Command> {
    vec![
        echo("hi"),
        join(room_name),
        leave(room_name),
        say(room_name, "hi"),
        whisper(someone, "psst"),
        who(room_name),
        rooms(),
        rename("someone else"),
        refresh("a.b.c"),
    ]
}

/// The command a client frame decodes to; panics if it is not one.
pub fn decoded(frame: &str) -> Command {
    match decode(frame) {
        Inbound::Command { command, .. } => command,
        other => panic!("{frame} is a command, got {other:?}"),
    }
}

// --- reading events -------------------------------------------------------------------

/// The members listed in a `joined` or `presence`.
pub fn members_in(event: &Event) -> Vec<Member> {
    match event {
        Event::Joined { members, .. } | Event::Presence { members, .. } => members.clone(),
        other => panic!("joined or presence expected, got {other:?}"),
    }
}

/// The history in a `joined`.
pub fn history_in(event: &Event) -> Vec<Event> {
    match event {
        Event::Joined { history, .. } => history.clone(),
        other => panic!("joined expected, got {other:?}"),
    }
}

/// The message in a `message` event.
pub fn message_in(event: &Event) -> Arc<ChatMessage> {
    match event {
        Event::Message(message) => message.clone(),
        other => panic!("message expected, got {other:?}"),
    }
}

/// The code and text of an `error`.
pub fn error_in(event: &Event) -> (ErrorCode, String) {
    match event {
        Event::Error { code, message } => (*code, message.clone()),
        other => panic!("error expected, got {other:?}"),
    }
}

/// The `seq` of each `message` event, in order.
pub fn seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => Some(message.seq),
            _ => None,
        })
        .collect()
}

/// The text of each `message` event, in order.
pub fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => Some(message.text.to_string()),
            _ => None,
        })
        .collect()
}

/// Every reason a connection ends (`kicked` is a room's, not a connection's;
/// `node_lost` ends it as the other nodes of a cluster see it).
pub const REASONS: [LeaveReason; 5] = [
    LeaveReason::Leave,
    LeaveReason::Disconnect,
    LeaveReason::Timeout,
    LeaveReason::Slow,
    LeaveReason::NodeLost,
];
