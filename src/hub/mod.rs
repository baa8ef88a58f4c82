//! The hub: the session-manager actor that owns every room, member, `seq` and history.
//!
//! Connections and the HTTP API reach it only through the messages in [`messages`]; it
//! answers connections through their [`Outbox`]: one post per worker thread to that
//! worker's courier, which fills each connection's bounded inbox, so one slow reader
//! can neither grow memory without bound nor hold anyone else up. All room state is
//! private to this module: a multi-node hub can replace it behind the same messages.
//!
//! - `messages.rs`: every message the hub takes;
//! - `mailbag.rs`: how connections' messages reach it, batched per worker thread;
//! - `commands.rs`: one handler per client command;
//! - `room.rs`: one room's members, `seq` and history (plain Rust).

mod commands;
pub mod mailbag;
pub mod messages;
pub mod room;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::prelude::*;
use bytestring::ByteString;
use rustc_hash::FxHashMap;

use crate::{
    config::Config,
    courier::{Addressees, CourierHandle, Overflowed, Post},
    outbox::{Outbox, SessionLink},
    protocol::{
        ChatMessage, DisplayName, Event, LeaveReason, Member, MemberId, Ref, RoomName, Sender,
        Timestamp,
    },
    transport::CloseCode,
};
use messages::*;
use room::Room;

/// Hands out member ids. Owned by the hub and shared with the `/ws` route, so a
/// connection knows its id before its actor starts (no placeholder id); ids are never
/// reused while the server runs.
#[derive(Debug, Clone, Default)]
pub struct MemberIds(Arc<AtomicU64>);

impl MemberIds {
    pub fn next(&self) -> MemberId {
        MemberId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// The settings the hub acts on, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub max_rooms_per_connection: usize,
    pub history_len: usize,
    /// How often the hub looks for jammed and evicted connections.
    pub sweep_interval: Duration,
    /// A connection whose heartbeat timer has not run for this long is jammed.
    pub jammed_after: Duration,
}

impl From<&Config> for HubSettings {
    fn from(config: &Config) -> Self {
        Self {
            max_rooms_per_connection: config.max_rooms_per_connection,
            history_len: config.history_len,
            sweep_interval: config.heartbeat_interval,
            jammed_after: config.client_timeout + config.heartbeat_interval,
        }
    }
}

/// A connected member as the hub keeps it.
struct Client {
    name: DisplayName,
    connected_at: Timestamp,
    rooms: BTreeSet<RoomName>,
    outbox: Outbox,
}

impl Client {
    fn member(&self, id: MemberId, joined_at: Timestamp) -> Member {
        Member {
            id,
            name: self.name.clone(),
            joined_at,
        }
    }
}

pub struct Hub {
    settings: HubSettings,
    ids: MemberIds,
    /// Keyed by ids the hub assigned, not client input: a fast hash is safe.
    clients: FxHashMap<MemberId, Client>,
    /// Sorted, so listings come out in a stable order.
    rooms: BTreeMap<RoomName, Room<CourierHandle>>,
    /// Evicted connections and when to reset their socket if they have not closed.
    evicted: Vec<(Instant, Arc<SessionLink>)>,
    /// While a [`mailbag::Mailbag`] is handled: the posts made, by courier, sent at its
    /// end in one message per courier.
    held_posts: Option<Vec<(CourierHandle, Vec<Post>)>>,
    stats: HubStats,
}

impl Hub {
    pub fn new(settings: HubSettings) -> Self {
        Self {
            settings,
            ids: MemberIds::default(),
            clients: FxHashMap::default(),
            rooms: BTreeMap::new(),
            evicted: Vec::new(),
            held_posts: None,
            stats: HubStats::default(),
        }
    }

    pub fn member_ids(&self) -> MemberIds {
        self.ids.clone()
    }

    /// Queues a frame for one member.
    fn send(&mut self, id: MemberId, frame: ByteString) {
        if let Some(client) = self.clients.get(&id) {
            let courier = client.outbox.courier().clone();
            self.stats.frames_delivered += 1;
            self.post(&courier, frame, Addressees::One(id));
        }
    }

    fn post(&mut self, courier: &CourierHandle, frame: ByteString, to: Addressees) {
        post(&mut self.held_posts, &mut self.stats, courier, frame, to);
    }

    fn hold_posts(&mut self) {
        self.held_posts.get_or_insert_with(Vec::new);
    }

    fn release_posts(&mut self) {
        for (courier, posts) in self.held_posts.take().unwrap_or_default() {
            courier.post_all(posts);
        }
    }

    /// Serializes an event; every frame the hub sends is made here, once, however many
    /// members receive it (counted in [`HubStats::frames_serialized`]).
    fn encode(&mut self, event: &Event) -> String {
        self.stats.frames_serialized += 1;
        event.to_json()
    }

    /// Queues an event as the reply to a request (with its `ref`).
    fn reply(&mut self, id: MemberId, reference: Option<&Ref>, event: &Event) {
        self.stats.frames_serialized += 1;
        self.send(id, event.to_reply(reference).into());
    }

    /// Sends one serialized frame to every member of `room` but `except`: one [`Post`]
    /// per worker thread, carrying the same bytes and the room's member list for that
    /// worker (shared, kept by the room between joins and leaves).
    ///
    /// [`Post`]: crate::courier::Post
    fn broadcast(&mut self, room: &RoomName, frame: &ByteString, except: Option<MemberId>) {
        let Some(room) = self.rooms.get(room) else {
            return;
        };
        for (courier, ids) in room.by_route() {
            // Ids are sorted: is `except` among this worker's members?
            let skipped = except.is_some_and(|e| ids.binary_search(&e).is_ok());
            self.stats.frames_delivered += (ids.len() - usize::from(skipped)) as u64;
            let to = Addressees::Room {
                ids: ids.clone(),
                except,
            };
            post(
                &mut self.held_posts,
                &mut self.stats,
                courier,
                frame.clone(),
                to,
            );
        }
    }

    /// The room's members as clients see them.
    fn members_of(&self, room: &RoomName) -> Vec<Member> {
        self.rooms
            .get(room)
            .map(|room| {
                room.members()
                    .filter_map(|(id, at)| self.clients.get(&id).map(|c| c.member(id, at)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes a member out of every room and forgets it; only the first call for an id
    /// does anything, so a disconnect is processed exactly once whatever its cause.
    fn remove_client(&mut self, id: MemberId, reason: LeaveReason) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        log::info!(
            "member {id} ({}) disconnected: {}",
            client.name,
            reason_str(reason)
        );
        for room_name in &client.rooms {
            let Some(room) = self.rooms.get_mut(room_name) else {
                continue;
            };
            let Some(joined_at) = room.leave(id) else {
                continue;
            };
            if room.is_empty() {
                self.rooms.remove(room_name);
                continue;
            }
            let event = Event::MemberLeft {
                room: room_name.clone(),
                member: client.member(id, joined_at),
                reason,
            };
            let frame = self.encode(&event);
            self.broadcast(room_name, &frame.into(), None);
        }
    }

    /// Drops a member that is too slow to read its frames: close 1013, and its rooms
    /// hear `member_left` with reason `slow`.
    fn drop_slow_member(&mut self, id: MemberId, pending_bytes: usize) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        log::warn!(
            "member {id} ({}) is too slow: {pending_bytes} bytes waiting; closing with 1013",
            client.name,
        );
        client
            .outbox
            .evict(CloseCode::TryAgainLater, "too slow to read its frames");
        self.stats.members_dropped_slow += 1;
        self.evicted.push((
            Instant::now() + self.settings.sweep_interval,
            client.outbox.link().clone(),
        ));
        self.remove_client(id, LeaveReason::Slow);
    }

    /// Runs every `sweep_interval`: drops connections whose actor is jammed (its timer
    /// stopped because its socket cannot be written) and resets the sockets of evicted
    /// connections that have not closed by their deadline.
    fn sweep(&mut self) {
        let jammed: Vec<MemberId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.outbox.link().since_tick() > self.settings.jammed_after)
            .map(|(id, _)| *id)
            .collect();
        for id in jammed {
            if let Some(client) = self.clients.get(&id) {
                log::warn!(
                    "member {id} ({}) is jammed: resetting its connection",
                    client.name
                );
                client.outbox.link().force_close();
            }
            self.remove_client(id, LeaveReason::Slow);
        }
        let now = Instant::now();
        self.evicted.retain(|(deadline, link)| {
            if *deadline > now {
                return true;
            }
            if link.force_close() {
                log::warn!("an evicted connection did not close in time: reset it");
            }
            false
        });
    }
}

/// Hands a frame to a courier, or, while a mailbag is handled, holds it for the end.
fn post(
    held_posts: &mut Option<Vec<(CourierHandle, Vec<Post>)>>,
    stats: &mut HubStats,
    courier: &CourierHandle,
    frame: ByteString,
    to: Addressees,
) {
    stats.posts += 1;
    let Some(held) = held_posts else {
        return courier.post(frame, to);
    };
    let post = Post { frame, to };
    match held.iter_mut().find(|(c, _)| c == courier) {
        Some((_, posts)) => posts.push(post),
        None => held.push((courier.clone(), vec![post])),
    }
}

fn reason_str(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Leave => "leave",
        LeaveReason::Disconnect => "disconnect",
        LeaveReason::Timeout => "timeout",
        LeaveReason::Slow => "slow",
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.settings.sweep_interval, |hub, _| hub.sweep());
    }
}

impl Handler<Connect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Self::Context) {
        log::info!("member {} ({}) connected", msg.id, msg.name);
        self.clients.insert(
            msg.id,
            Client {
                name: msg.name,
                connected_at: Timestamp::now(),
                rooms: BTreeSet::new(),
                outbox: msg.outbox,
            },
        );
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Self::Context) {
        self.remove_client(msg.id, msg.reason);
    }
}

/// A client command the hub can carry out on behalf of member `from`.
pub trait Apply: Send + 'static {
    fn apply(self, hub: &mut Hub, from: MemberId, reference: Option<Ref>);
}

impl<C: Apply> Handler<FromMember<C>> for Hub {
    type Result = ();

    fn handle(&mut self, msg: FromMember<C>, _: &mut Self::Context) {
        // A member already dropped (e.g. found slow) may still have commands in flight.
        if !self.clients.contains_key(&msg.from) {
            return;
        }
        msg.command.apply(self, msg.from, msg.reference);
    }
}

impl Handler<Overflowed> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Overflowed, _: &mut Self::Context) {
        self.drop_slow_member(msg.id, msg.pending_bytes);
    }
}

impl Handler<DescribeRooms> for Hub {
    type Result = Vec<RoomView>;

    fn handle(&mut self, _: DescribeRooms, _: &mut Self::Context) -> Vec<RoomView> {
        self.rooms
            .keys()
            .map(|name| RoomView {
                name: name.clone(),
                members: self.members_of(name),
                history: None,
            })
            .collect()
    }
}

impl Handler<DescribeRoom> for Hub {
    type Result = Option<RoomView>;

    fn handle(&mut self, msg: DescribeRoom, _: &mut Self::Context) -> Option<RoomView> {
        let room = self.rooms.get(&msg.room)?;
        Some(RoomView {
            name: msg.room.clone(),
            members: self.members_of(&msg.room),
            history: Some(room.history().cloned().map(Event::Message).collect()),
        })
    }
}

impl Handler<DescribeStats> for Hub {
    type Result = HubStats;

    fn handle(&mut self, _: DescribeStats, _: &mut Self::Context) -> HubStats {
        HubStats {
            members: self.clients.len(),
            rooms: self.rooms.len(),
            ..self.stats.clone()
        }
    }
}

impl Handler<Publish> for Hub {
    type Result = Result<Arc<ChatMessage>, UnknownRoom>;

    fn handle(&mut self, msg: Publish, _: &mut Self::Context) -> Self::Result {
        let room = self.rooms.get_mut(&msg.room).ok_or(UnknownRoom)?;
        let message = room.post(&msg.room, Sender::Server, msg.text.into());
        let frame: ByteString = self.encode(&Event::Message(message.clone())).into();
        self.broadcast(&msg.room, &frame, None);
        Ok(message)
    }
}
