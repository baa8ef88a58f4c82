//! Several nodes that serve as one, through Redis (`REDIS_URL`).
//!
//! Each room's truth is in Redis under keys tagged with the room (`P:{room}:...`), and
//! one Lua script (`lua/room.lua`) makes every change to a room in one atomic step: it
//! numbers the room's entries and messages (gap-free `seq`), keeps members, history and
//! idempotency keys, logs the entry and publishes it. Every node reads all entries in
//! the order Redis ran them and feeds them to its replicas, which run hubbub-core's own
//! rules (see `node.rs`). Nodes beat a heartbeat key; a node not heard from for
//! `NODE_TIMEOUT_MS` has its members leave as `node_lost`, once (`lua/node.lua`).
//!
//! - `mod.rs`: the settings, start-up, and [`ClusterBackend`], the hub's side of the seam;
//! - `node.rs`: the node task (asks, replicas, heartbeats, reaping, catching up);
//! - `scripts.rs` and `lua/`: the scripts and how they are called;
//! - `entry.rs`: what the scripts publish, parsed;
//! - `ids.rs`: member ids in blocks from Redis.

mod counters;
mod entry;
mod ids;
mod node;
mod scripts;

use std::{
    collections::HashSet,
    io,
    sync::{atomic::AtomicUsize, Arc},
    time::Duration,
};

use hubbub_core::{
    Access, Command, Counts, Effects, NotAMember, PublishRefused, RoomGrant, Settings,
};
use tokio::sync::{mpsc, oneshot};

pub use counters::{ClusterCounters, ClusterTotals, StoreOp};
pub use entry::Record;
pub use ids::IdBlocks;

use crate::{
    hub::{
        backend::{Feed, RoomBackend, Stored, Unavailable},
        sequencer::Answer,
    },
    protocol::{
        ChatMessage, DisplayName, LeaveReason, MemberId, PageLimit, Ref, RoomName, RoomView,
        RoomsView,
    },
};
use node::{Ask, Node};

/// What a node needs to join a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// `REDIS_URL`.
    pub url: String,
    /// `REDIS_URL` without its password, for logs and errors.
    pub url_for_logs: String,
    /// `REDIS_PREFIX`: every key and channel starts with it.
    pub prefix: String,
    /// `NODE_ID`: unique per process start.
    pub node_id: String,
    /// `NODE_TIMEOUT_MS`.
    pub node_timeout: Duration,
    /// The room rules (the same on every node).
    pub rules: Settings,
    /// `MEMBER_COUNT_INTERVAL_MS`: this node tells its own members of big rooms.
    pub member_count_interval: Duration,
    /// Entries kept per room for nodes catching up after a lost connection.
    pub log_len: usize,
    /// What the node counts for `/metrics`.
    pub counters: Arc<ClusterCounters>,
}

/// The hub's side of the cluster: every ask goes to the node task, in order.
pub struct ClusterBackend {
    asks: mpsc::UnboundedSender<Ask>,
    feed: Option<Feed>,
    /// This node's connections (for `/api/stats` and `/metrics`, which are per node).
    members: HashSet<MemberId>,
    /// The cluster's room count, as the node last read it.
    rooms: Arc<AtomicUsize>,
}

/// Joins the cluster: connects to Redis, takes the first block of ids and subscribes,
/// on a thread of its own, before the server listens. Fails when Redis cannot be
/// reached within `NODE_TIMEOUT_MS`.
pub fn start(settings: ClusterSettings) -> io::Result<(ClusterBackend, Arc<IdBlocks>)> {
    let (ask_tx, ask_rx) = mpsc::unbounded_channel();
    let (delivery_tx, mut delivery_rx) = mpsc::unbounded_channel();
    let (refill_tx, refill_rx) = mpsc::unbounded_channel();
    let (directory_tx, directory_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rooms = Arc::new(AtomicUsize::new(0));
    let node_rooms = rooms.clone();
    let timeout = settings.node_timeout;
    let url = settings.url_for_logs.clone();
    std::thread::Builder::new()
        .name("hubbub-cluster".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready_tx.send(Err(err.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let deadline = tokio::time::Instant::now() + timeout;
                let (node, ids, subscriber) = loop {
                    match Node::connect(
                        settings.clone(),
                        delivery_tx.clone(),
                        refill_tx.clone(),
                        directory_tx.clone(),
                    )
                    .await
                    {
                        Ok(ready) => break ready,
                        Err(err) if tokio::time::Instant::now() >= deadline => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                        Err(err) => {
                            log::warn!("cluster: cannot reach Redis yet ({err}); retrying");
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                };
                let _ = ready_tx.send(Ok(ids));
                node.run(ask_rx, refill_rx, directory_rx, node_rooms, subscriber)
                    .await;
            });
        })?;
    let ids = ready_rx
        .recv()
        .map_err(|_| io::Error::other("the cluster's thread ended"))?
        .map_err(|err| {
            io::Error::other(format!("cannot join the cluster at REDIS_URL {url}: {err}"))
        })?;
    let feed: Feed = Box::pin(futures_util::stream::poll_fn(move |cx| {
        delivery_rx.poll_recv(cx)
    }));
    Ok((
        ClusterBackend {
            asks: ask_tx,
            feed: Some(feed),
            members: HashSet::new(),
            rooms,
        },
        ids,
    ))
}

impl ClusterBackend {
    fn tell(&self, ask: Ask) {
        if self.asks.send(ask).is_err() {
            log::error!("cluster: the node task has stopped");
        }
    }

    fn later<T: 'static>(
        &self,
        ask: Ask,
        answer: oneshot::Receiver<Result<T, Unavailable>>,
    ) -> Stored<T> {
        self.tell(ask);
        Answer::Later(Box::pin(
            async move { answer.await.unwrap_or(Err(Unavailable)) },
        ))
    }
}

/// Every reply to a connection comes through the feed, in its place among the room's
/// events; what is answered at once here is only "nothing yet".
impl RoomBackend for ClusterBackend {
    fn connect(&mut self, id: MemberId, name: DisplayName, access: Access) -> Answer<Effects> {
        self.members.insert(id);
        self.tell(Ask::Connect { id, name, access });
        Answer::Now(Effects::new())
    }

    fn apply(
        &mut self,
        from: MemberId,
        reference: Option<&Ref>,
        command: Command,
    ) -> Answer<Effects> {
        let reference = reference.cloned();
        self.tell(Ask::Apply {
            from,
            reference,
            command,
        });
        Answer::Now(Effects::new())
    }

    fn reauthorize(
        &mut self,
        id: MemberId,
        reference: Option<&Ref>,
        name: Option<DisplayName>,
        rooms: RoomGrant,
    ) -> Answer<Effects> {
        let reference = reference.cloned();
        self.tell(Ask::Reauthorize {
            id,
            reference,
            name,
            rooms,
        });
        Answer::Now(Effects::new())
    }

    fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Answer<Effects> {
        if self.members.remove(&id) {
            self.tell(Ask::Disconnect { id, reason });
        }
        Answer::Now(Effects::new())
    }

    fn publish(
        &mut self,
        room: RoomName,
        text: String,
        idempotency_key: Option<String>,
    ) -> Stored<Result<(Arc<ChatMessage>, Effects), PublishRefused>> {
        let (reply, answer) = oneshot::channel();
        self.later(
            Ask::Publish {
                room,
                text,
                key: idempotency_key,
                reply,
            },
            answer,
        )
    }

    /// Rooms expire in Redis (their keys' TTL); nothing to do here.
    fn expire_rooms(&mut self) -> Answer<()> {
        Answer::Now(())
    }

    fn kick(&mut self, room: RoomName, id: MemberId) -> Stored<Result<Effects, NotAMember>> {
        let (reply, answer) = oneshot::channel();
        self.later(Ask::Kick { room, id, reply }, answer)
    }

    /// The node task tells big rooms their count on its own timer, from its replicas.
    fn member_counts(&mut self) -> Answer<Effects> {
        Answer::Now(Effects::new())
    }

    fn rooms_view(&mut self, after: Option<RoomName>, limit: PageLimit) -> Stored<RoomsView> {
        let (reply, answer) = oneshot::channel();
        self.later(
            Ask::RoomsView {
                after,
                limit,
                reply,
            },
            answer,
        )
    }

    fn room_view(
        &mut self,
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
    ) -> Stored<Option<RoomView>> {
        let (reply, answer) = oneshot::channel();
        self.later(
            Ask::RoomView {
                room,
                after,
                limit,
                reply,
            },
            answer,
        )
    }

    fn counts(&mut self) -> Answer<Counts> {
        Answer::Now(Counts {
            members: self.members.len(),
            rooms: self.rooms.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    fn feed(&mut self) -> Option<Feed> {
        self.feed.take()
    }

    fn leave(&mut self) -> Answer<()> {
        let (done, left) = oneshot::channel();
        self.tell(Ask::Leave { done });
        Answer::Later(Box::pin(async move {
            let _ = left.await;
        }))
    }
}
