//! The hub: the session-manager actor. It hands every command to room state through
//! the backend seam ([`backend::RoomBackend`]: in memory here, a shared store in a
//! cluster), then delivers what comes back: each event encoded once, its recipients
//! grouped by worker thread, one post per worker to that worker's courier, which fills
//! each connection's bounded inbox. It keeps no room state of its own, only how to reach
//! this node's connections and who of them is subscribed to which room.
//!
//! - `messages.rs`: every message the hub takes;
//! - `mailbag.rs`: how connections' messages reach it, batched per worker thread;
//! - `backend.rs`: the seam to room state, and the in-memory backend;
//! - `sequencer.rs`: keeps a backend's answers in the order they were asked for;
//! - `subscribers.rs`: a room's members on this node, grouped by worker.

pub mod backend;
pub(crate) mod mailbag;
pub(crate) mod messages;
pub mod sequencer;
pub(crate) mod subscribers;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use actix::prelude::*;
use bytestring::ByteString;
use hubbub_core::{Audience, Effect, Effects, Recipients};
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::{
    courier::{Addressees, CourierHandle, Post},
    metrics::Counters,
    protocol::{ref_spliced, Event, MemberId, Ref, RoomName, Timestamp},
};
use backend::RoomBackend;
use messages::*;
use sequencer::{then, Answer, Sequenced, Sequencer};
use subscribers::Subscribers;

/// Hands out member ids. Shared with the `/ws` route, so a connection knows its id
/// before its actor starts (no placeholder id).
///
/// Ids are never reused, across restarts too (a client that kept an id from before a
/// restart must not find it naming someone else). One node alone counts up from its
/// start time in microseconds, which a later start exceeds unless this one handed out
/// more than a million ids per second of its life. A cluster's nodes take blocks from
/// Redis, which follows the same rule ([`crate::cluster::IdBlocks`]). Ids stay below
/// 2^53, so a JavaScript client that parses one as a number loses nothing.
#[derive(Debug, Clone)]
pub struct MemberIds {
    source: IdSource,
    /// Guests are numbered per node, from 1 (`guest-<n>`; names need not be unique).
    guests: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
enum IdSource {
    Clock(Arc<AtomicU64>),
    Cluster(Arc<crate::cluster::IdBlocks>),
}

impl MemberIds {
    pub fn starting_now() -> Self {
        let micros = (Timestamp::now().millis().max(0) as u64).saturating_mul(1_000);
        Self {
            source: IdSource::Clock(Arc::new(AtomicU64::new(micros))),
            guests: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Ids from a cluster's blocks.
    pub fn from_cluster(blocks: Arc<crate::cluster::IdBlocks>) -> Self {
        Self {
            source: IdSource::Cluster(blocks),
            guests: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Enters a new connection where every node finds it (a cluster's member
    /// directory), before its upgrade is answered; `false` if the cluster's store did
    /// not take it. One node alone has nothing to do.
    pub async fn register(
        &self,
        id: MemberId,
        name: &crate::protocol::DisplayName,
        user: Option<&crate::protocol::UserId>,
    ) -> bool {
        match &self.source {
            IdSource::Clock(_) => true,
            IdSource::Cluster(blocks) => {
                let record = crate::cluster::Record::encode(id, name, user, Timestamp::now());
                blocks.register(id.0, record).await
            }
        }
    }

    /// A new id, and which guest of this server it would be (`guest-<n>`, from 1);
    /// `None` when a cluster's store has no more to give now.
    pub fn next(&self) -> Option<(MemberId, u64)> {
        let id = match &self.source {
            IdSource::Clock(next) => next.fetch_add(1, Ordering::Relaxed),
            IdSource::Cluster(blocks) => blocks.next()?,
        };
        Some((MemberId(id), self.guests.fetch_add(1, Ordering::Relaxed)))
    }
}

/// How often the backend forgets the rooms kept past `ROOM_TTL_MS`.
const ROOM_SWEEP_INTERVAL: Duration = Duration::from_millis(250);

pub struct Hub {
    backend: Box<dyn RoomBackend>,
    /// This node's connections and the courier that reaches each. (Keyed by ids the
    /// server assigned, not client input: a fast hash is safe.)
    connections: FxHashMap<MemberId, CourierHandle>,
    /// Who of this node's connections receives each room's events. Room names are
    /// client input, hence a tree, not a fast hash.
    subscribers: BTreeMap<RoomName, Subscribers<CourierHandle>>,
    /// While a [`mailbag::Mailbag`] is handled: the posts made, by courier, sent at its
    /// end in one message per courier.
    held_posts: Option<Vec<(CourierHandle, Vec<Post>)>>,
    sequencer: Sequencer<Self>,
    /// The hub's own share of the server's metrics.
    metrics: Arc<Counters>,
    /// How often big rooms are told their member count (`MEMBER_COUNT_INTERVAL_MS`).
    member_count_interval: Duration,
}

impl Hub {
    pub fn new(
        backend: Box<dyn RoomBackend>,
        metrics: Arc<Counters>,
        member_count_interval: Duration,
    ) -> Self {
        Self {
            member_count_interval,
            backend,
            connections: FxHashMap::default(),
            subscribers: BTreeMap::new(),
            held_posts: None,
            sequencer: Sequencer::default(),
            metrics,
        }
    }

    /// Carries out a backend's effects, in order. `requester` (with the request's
    /// `reference`) is whom [`Audience::Requester`] means.
    fn deliver(&mut self, requester: Option<MemberId>, reference: Option<&Ref>, effects: Effects) {
        for effect in effects {
            match effect {
                Effect::Subscribe { member, room } => {
                    if let Some(courier) = self.connections.get(&member) {
                        let courier = courier.clone();
                        self.subscribers
                            .entry(room)
                            .or_default()
                            .add(member, courier);
                    }
                }
                Effect::Unsubscribe { member, room } => {
                    if let Some(subscribers) = self.subscribers.get_mut(&room) {
                        subscribers.remove(member);
                        if subscribers.is_empty() {
                            self.subscribers.remove(&room);
                        }
                    }
                }
                Effect::Send { event, to } => self.send(&event, &to, requester, reference),
            }
        }
    }

    /// Delivers one event to its recipients, serialized once for all of them.
    fn send(
        &mut self,
        event: &Event,
        to: &Recipients,
        requester: Option<MemberId>,
        reference: Option<&Ref>,
    ) {
        if let Event::Error { code, .. } = event {
            self.metrics.error_sent(*code);
        }
        if let (Audience::Requester, None) = to.as_pair() {
            // A reply alone: serialized with its `ref` in one buffer.
            if let Some(id) = requester {
                self.metrics.frame_serialized();
                self.send_to(id, event.to_reply(reference).into());
            }
            return;
        }
        self.metrics.frame_serialized();
        let frame: ByteString = event.to_json().into();
        if reference.is_none() {
            if let Some(room) = self.room_including_requester(to, requester) {
                // Without a `ref` the requester's copy is the room's: one post per worker.
                return self.broadcast(room, &frame, None);
            }
        }
        for audience in to.iter() {
            match audience {
                Audience::Requester => {
                    if let Some(id) = requester {
                        let own_copy = match reference {
                            Some(reference) => ref_spliced(&frame, reference).into(),
                            None => frame.clone(),
                        };
                        self.send_to(id, own_copy);
                    }
                }
                Audience::Member(id) => self.send_to(*id, frame.clone()),
                Audience::Room { room, except } => self.broadcast(room, &frame, *except),
            }
        }
    }

    /// The room of recipients "the requester, and the room but the requester" when the
    /// requester is subscribed to that room: the same as "the whole room".
    fn room_including_requester<'to>(
        &self,
        to: &'to Recipients,
        requester: Option<MemberId>,
    ) -> Option<&'to RoomName> {
        let requester = requester?;
        let room = match to.as_pair() {
            (Audience::Requester, Some(Audience::Room { room, except }))
            | (Audience::Room { room, except }, Some(Audience::Requester))
                if *except == Some(requester) =>
            {
                room
            }
            _ => return None,
        };
        self.subscribers
            .get(room)
            .is_some_and(|s| s.contains(requester))
            .then_some(room)
    }

    /// Queues a frame for one member of this node.
    fn send_to(&mut self, id: MemberId, frame: ByteString) {
        if let Some(courier) = self.connections.get(&id) {
            let courier = courier.clone();
            self.metrics.frames_delivered(1, frame.len());
            self.post(&courier, frame, Addressees::One(id));
        }
    }

    /// Sends one serialized frame to every subscriber of `room` but `except`: one
    /// [`Post`] per worker thread, carrying the same bytes and the room's subscribers on
    /// that worker (shared, kept between joins and leaves).
    fn broadcast(&mut self, room: &RoomName, frame: &ByteString, except: Option<MemberId>) {
        let Some(subscribers) = self.subscribers.get(room) else {
            return;
        };
        for (courier, ids) in subscribers.by_route() {
            // Ids are sorted: is `except` among this worker's members?
            let skipped = except.is_some_and(|e| ids.binary_search(&e).is_ok());
            self.metrics
                .frames_delivered(ids.len() - usize::from(skipped), frame.len());
            let to = Addressees::Room {
                ids: ids.clone(),
                except,
            };
            post(
                &mut self.held_posts,
                &self.metrics,
                courier,
                frame.clone(),
                to,
            );
        }
    }

    fn post(&mut self, courier: &CourierHandle, frame: ByteString, to: Addressees) {
        post(&mut self.held_posts, &self.metrics, courier, frame, to);
    }

    fn hold_posts(&mut self) {
        self.held_posts.get_or_insert_with(Vec::new);
    }

    fn release_posts(&mut self) {
        for (courier, posts) in self.held_posts.take().unwrap_or_default() {
            courier.post_all(posts);
        }
    }

    /// Finishes an answer in order and hands `finish`'s result to whoever asked (the
    /// HTTP API).
    fn ask<T: 'static, R: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        answer: Answer<T>,
        finish: impl FnOnce(&mut Hub, T) -> R + 'static,
    ) -> ResponseFuture<Result<R, Unanswered>> {
        let (sender, receiver) = oneshot::channel();
        then(self, ctx, answer, move |hub, _, value| {
            // The asker may have given up (its request was cancelled): nothing to tell.
            let _ = sender.send(finish(hub, value));
        });
        Box::pin(async move { receiver.await.map_err(|_| Unanswered::Stopped) })
    }

    /// Like [`Hub::ask`], for what needs the backend's store, which may be away.
    fn ask_store<T: 'static, R: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        answer: backend::Stored<T>,
        finish: impl FnOnce(&mut Hub, T) -> R + 'static,
    ) -> ResponseFuture<Result<R, Unanswered>> {
        let answered = self.ask(ctx, answer, move |hub, stored| {
            stored.map(|value| finish(hub, value))
        });
        Box::pin(async move { answered.await?.map_err(|_| Unanswered::StoreUnavailable) })
    }
}

/// Hands a frame to a courier, or, while a mailbag is handled, holds it for the end.
fn post(
    held_posts: &mut Option<Vec<(CourierHandle, Vec<Post>)>>,
    metrics: &Counters,
    courier: &CourierHandle,
    frame: ByteString,
    to: Addressees,
) {
    metrics.post();
    let Some(held) = held_posts else {
        return courier.post(frame, to);
    };
    let post = Post { frame, to };
    match held.iter_mut().find(|(c, _)| c == courier) {
        Some((_, posts)) => posts.push(post),
        None => held.push((courier.clone(), vec![post])),
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Big rooms hear their member count at most once per interval, from here.
        ctx.run_interval(self.member_count_interval, |hub, ctx| {
            let answer = hub.backend.member_counts();
            then(hub, ctx, answer, |hub, _, effects| {
                hub.deliver(None, None, effects)
            });
        });
        // Empty rooms past ROOM_TTL_MS go within a second of their time.
        ctx.run_interval(ROOM_SWEEP_INTERVAL, |hub, ctx| {
            let answer = hub.backend.expire_rooms();
            then(hub, ctx, answer, |_, _, ()| {});
        });
        if let Some(feed) = self.backend.feed() {
            ctx.add_stream(feed);
        }
    }
}

/// What a backend delivers on its own (a cluster's events from the other nodes, and the
/// answers it delivers in their place among them): one post per courier per batch.
impl StreamHandler<Vec<backend::Delivery>> for Hub {
    fn handle(&mut self, deliveries: Vec<backend::Delivery>, _: &mut Self::Context) {
        self.hold_posts();
        for delivery in deliveries {
            self.deliver(
                delivery.requester,
                delivery.reference.as_ref(),
                delivery.effects,
            );
        }
        self.release_posts();
    }

    /// The backend stopped delivering (the server is going down): the hub goes on
    /// answering what it is asked until it is stopped.
    fn finished(&mut self, _: &mut Self::Context) {}
}

impl Sequenced for Hub {
    fn sequencer(&mut self) -> &mut Sequencer<Self> {
        &mut self.sequencer
    }
}

impl Handler<Connect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Connect, ctx: &mut Self::Context) {
        let id = msg.id;
        self.connections.insert(id, msg.courier);
        let answer = self.backend.connect(id, msg.name, msg.access);
        then(self, ctx, answer, move |hub, _, effects| {
            hub.deliver(Some(id), None, effects)
        });
    }
}

impl Handler<FromMember> for Hub {
    type Result = ();

    fn handle(&mut self, msg: FromMember, ctx: &mut Self::Context) {
        let FromMember {
            from,
            reference,
            command,
        } = msg;
        let answer = self.backend.apply(from, reference.as_ref(), command);
        then(self, ctx, answer, move |hub, _, effects| {
            hub.deliver(Some(from), reference.as_ref(), effects)
        });
    }
}

impl Handler<Reauthorize> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Reauthorize, ctx: &mut Self::Context) {
        let Reauthorize {
            id,
            reference,
            name,
            rooms,
        } = msg;
        let answer = self
            .backend
            .reauthorize(id, reference.as_ref(), name, rooms);
        then(self, ctx, answer, move |hub, _, effects| {
            hub.deliver(Some(id), reference.as_ref(), effects)
        });
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, ctx: &mut Self::Context) {
        let id = msg.id;
        let reason = msg.reason;
        let answer = self.backend.disconnect(id, reason);
        then(self, ctx, answer, move |hub, _, effects| {
            hub.deliver(Some(id), None, effects);
            // A connection may be reported ended twice (by itself and by the
            // supervisor); completions run in order, so only the first finds it here.
            if hub.connections.remove(&id).is_some() {
                hub.metrics.disconnected(reason);
            }
        });
    }
}

impl Handler<Stopping> for Hub {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Stopping, ctx: &mut Self::Context) -> Self::Result {
        let answer = self.backend.leave();
        let done = self.ask(ctx, answer, |_, ()| ());
        Box::pin(async move {
            let _ = done.await;
        })
    }
}

impl Handler<DescribeRooms> for Hub {
    type Result = ResponseFuture<Result<crate::protocol::RoomsView, Unanswered>>;

    fn handle(&mut self, msg: DescribeRooms, ctx: &mut Self::Context) -> Self::Result {
        let answer = self.backend.rooms_view(msg.after, msg.limit);
        self.ask_store(ctx, answer, |_, rooms| rooms)
    }
}

impl Handler<DescribeRoom> for Hub {
    type Result = ResponseFuture<Result<Option<crate::protocol::RoomView>, Unanswered>>;

    fn handle(&mut self, msg: DescribeRoom, ctx: &mut Self::Context) -> Self::Result {
        let answer = self.backend.room_view(msg.room, msg.after, msg.limit);
        self.ask_store(ctx, answer, |_, room| room)
    }
}

impl Handler<DescribeCounts> for Hub {
    type Result = ResponseFuture<Result<hubbub_core::Counts, Unanswered>>;

    fn handle(&mut self, _: DescribeCounts, ctx: &mut Self::Context) -> Self::Result {
        let answer = self.backend.counts();
        self.ask(ctx, answer, |_, counts| counts)
    }
}

impl Handler<Publish> for Hub {
    type Result = ResponseFuture<
        Result<Result<Arc<crate::protocol::ChatMessage>, hubbub_core::PublishRefused>, Unanswered>,
    >;

    fn handle(&mut self, msg: Publish, ctx: &mut Self::Context) -> Self::Result {
        let answer = self
            .backend
            .publish(msg.room, msg.text, msg.idempotency_key);
        self.ask_store(ctx, answer, |hub, published| {
            published.map(|(message, effects)| {
                hub.deliver(None, None, effects);
                message
            })
        })
    }
}

impl Handler<Kick> for Hub {
    type Result = ResponseFuture<Result<Result<(), hubbub_core::NotAMember>, Unanswered>>;

    fn handle(&mut self, msg: Kick, ctx: &mut Self::Context) -> Self::Result {
        let answer = self.backend.kick(msg.room, msg.member);
        self.ask_store(ctx, answer, |hub, kicked| {
            kicked.map(|effects| hub.deliver(None, None, effects))
        })
    }
}
