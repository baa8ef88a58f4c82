//! The cluster node: one task, on its own thread, between the hub and Redis.
//!
//! It sends every ask that touches a room to room.lua, in the order asked, over one
//! connection, and reads every room's entries from one subscriber connection, in the
//! order Redis ran them. Each room this node has members in is a *replica*: a
//! hubbub-core `RoomState` of that room alone, built from the snapshot the script sent
//! when this node's first member joined, then fed every entry. The core's own rules
//! make the events; the hub delivers those meant for this node's connections. Since
//! every node applies the same entries in the same order, every member sees one order.
//!
//! The outcome of one of this node's asks comes back as an entry or an answer on the
//! same subscriber connection, so it keeps its place among the room's other events and
//! among the connection's other replies. A reply decided here (a refusal the node can
//! see itself) waits behind the connection's asks still out, through a `barrier`.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{FutureExt, StreamExt};
use hubbub_core::{
    cmd::{forbidden, not_in_room, Leave, ListRooms, Rename, Say, Since, Who},
    replica::RoomSnapshot,
    Access, Audience, Command, Effects, NotAMember, PublishRefused, RoomGrant, RoomState,
    RoomsFull, Settings,
};
use redis::{aio::ConnectionManager, Value};
use tokio::sync::{mpsc, oneshot};

use super::{
    entry::{self, Entry, Record},
    ids::{IdBlocks, Registration},
    scripts::{node_command, RoomCall, RoomRules, Scripts, NODE_LUA, ROOM_LUA},
    ClusterSettings, StoreOp,
};
use crate::{
    hub::backend::{Delivery, Unavailable},
    protocol::{
        ChatMessage, DisplayName, ErrorCode, Event, LeaveReason, Member, MemberId, PageLimit,
        ProtocolError, Ref, RoomCount, RoomName, RoomView, RoomsView, Sender, Timestamp, UserId,
    },
};

/// Where a publish's outcome goes: the message (or why not), or `Unavailable`.
pub type PublishReply =
    oneshot::Sender<Result<Result<(Arc<ChatMessage>, Effects), PublishRefused>, Unavailable>>;
/// Where a kick's outcome goes.
pub type KickReply = oneshot::Sender<Result<Result<Effects, NotAMember>, Unavailable>>;
/// Where a page of `GET /api/rooms` goes.
pub type RoomsReply = oneshot::Sender<Result<RoomsView, Unavailable>>;
/// Where a page of `GET /api/rooms/{room}` goes (`None`: no such room).
pub type RoomReply = oneshot::Sender<Result<Option<RoomView>, Unavailable>>;

/// What the hub asks of the cluster (through `ClusterBackend`).
pub enum Ask {
    Connect {
        id: MemberId,
        name: DisplayName,
        access: Access,
    },
    Apply {
        from: MemberId,
        reference: Option<Ref>,
        command: Command,
    },
    Reauthorize {
        id: MemberId,
        reference: Option<Ref>,
        name: Option<DisplayName>,
        rooms: RoomGrant,
    },
    Disconnect {
        id: MemberId,
        reason: LeaveReason,
    },
    Publish {
        room: RoomName,
        text: String,
        key: Option<String>,
        reply: PublishReply,
    },
    Kick {
        room: RoomName,
        id: MemberId,
        reply: KickReply,
    },
    RoomsView {
        after: Option<RoomName>,
        limit: PageLimit,
        reply: RoomsReply,
    },
    RoomView {
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
        reply: RoomReply,
    },
    /// The server is stopping: finish what is out, then say so to the cluster.
    Leave {
        done: oneshot::Sender<()>,
    },
}

/// One room this node follows.
struct Replica {
    state: RoomState,
    epoch: Arc<str>,
    /// The last entry applied.
    n: u64,
    /// This node's members in the room: at 0 the node stops following it (the script
    /// knows the same from its count of this node's members).
    mine: usize,
    /// While a resume is out: the entries that arrive meanwhile, applied after it.
    resuming: Option<Vec<Entry>>,
}

/// One of this node's connections.
struct Local {
    name: DisplayName,
    access: Access,
    connected_at: Timestamp,
    /// The rooms it is in, as the applied entries say.
    rooms: BTreeSet<RoomName>,
    /// Joins sent and not yet answered: they count against MAX_ROOMS_PER_CONNECTION.
    joining: BTreeSet<RoomName>,
    /// Its asks out to Redis.
    outstanding: usize,
}

impl Local {
    fn user(&self) -> Option<&UserId> {
        self.access.user.as_ref()
    }
}

/// An ask of this node's whose outcome is awaited.
struct Pending {
    member: MemberId,
    reference: Option<Ref>,
    want: Want,
    deadline: Instant,
    /// Entries still to come for it (a rename of several rooms).
    parts: usize,
}

enum Want {
    Join {
        room: RoomName,
        since: Option<Since>,
    },
    Leave,
    Say,
    Who(Who),
    Rooms(ListRooms),
    Whisper,
    Rename,
    Revoke,
    /// A reply decided here, released in its turn.
    Barrier(Effects),
}

/// What a call to Redis was for, to act on its reply.
enum Call {
    /// A WebSocket ask: only a failure matters here (the outcome comes as an entry).
    Ask(u64),
    /// A leave that must happen even if Redis is away now (a disconnect).
    Departure {
        room: RoomName,
        id: MemberId,
        why: LeaveReason,
    },
    Publish {
        room: RoomName,
        text: String,
        reply: PublishReply,
    },
    Kick(KickReply),
    RoomsView {
        limit: PageLimit,
        reply: RoomsReply,
    },
    RoomView {
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
        reply: RoomReply,
    },
    Beat,
    Lost,
    Reaped(String),
    Ids,
    /// A connection entered in the member directory before its upgrade.
    Registered(oneshot::Sender<bool>),
    Sweep,
    Resume(RoomName),
    /// Nothing to do with the reply but notice a failure.
    Plain,
}

impl Call {
    /// What `hubbub_store_errors_total` counts this call's failure as.
    fn op(&self) -> StoreOp {
        match self {
            Call::Ask(_) => StoreOp::Ask,
            Call::Departure { .. } => StoreOp::Departure,
            Call::Publish { .. } => StoreOp::Publish,
            Call::Kick(_) => StoreOp::Kick,
            Call::RoomsView { .. } | Call::RoomView { .. } => StoreOp::Listing,
            Call::Ids => StoreOp::Ids,
            Call::Registered(_) => StoreOp::Register,
            Call::Resume(_) => StoreOp::Resume,
            Call::Beat | Call::Lost | Call::Reaped(_) | Call::Sweep | Call::Plain => {
                StoreOp::Upkeep
            }
        }
    }
}

/// What a pipeline brings back: its calls, their replies in order, and how long
/// Redis took (for `hubbub_store_round_trip_seconds`).
type Answered = (Vec<Call>, redis::RedisResult<Vec<Value>>, Duration);

/// One pipeline of calls on its way.
type Batch = Pin<Box<dyn Future<Output = Answered> + Send>>;

/// Entries read from the subscriber connection into one batch for the hub at most.
const READ_BATCH: usize = 256;

/// Calls sent in one pipeline at most.
const BATCH_MAX: usize = 1024;

/// Asks taken from the hub in one go at most, before the pipeline goes out.
const ASK_BATCH: usize = BATCH_MAX;

pub struct Node {
    settings: ClusterSettings,
    rules: RoomRules,
    replica_settings: Settings,
    scripts: Scripts,
    redis: ConnectionManager,
    client: redis::Client,
    ids: Arc<IdBlocks>,
    deliveries: mpsc::UnboundedSender<Vec<Delivery>>,
    out: Vec<Delivery>,
    replicas: HashMap<RoomName, Replica>,
    locals: HashMap<MemberId, Local>,
    /// Members gone while a join of theirs was out: the join is undone when it lands.
    departed: HashMap<MemberId, LeaveReason>,
    pending: HashMap<u64, Pending>,
    next_ask: u64,
    /// Calls not yet sent, in ask order, and the one pipeline out. One at a time, so
    /// Redis runs every call in the order it was asked for; what is asked meanwhile
    /// goes in the next pipeline (so a busy node sends bigger ones, not more).
    queue: Vec<(redis::Cmd, Call)>,
    in_flight: Option<Batch>,
    /// Leaves of departed members that Redis did not take; sent again when it is back.
    departures_due: VecDeque<(RoomName, MemberId, LeaveReason)>,
    /// No reaping before this: after a start, or after this node last lost Redis, the
    /// others' heartbeats may have lapsed through no fault of theirs.
    grace_until: Instant,
    healthy: bool,
    rooms_count: usize,
    rooms_made: u64,
    leaving: Option<oneshot::Sender<()>>,
    /// `P:events`, the channel every room's entries come on (named once, not per entry).
    events: String,
    /// When the subscriber connection last delivered this node's own ping.
    ping_seen: Instant,
}

/// How long an ask may wait for Redis before it is answered `unavailable`: long
/// enough for a burst queued behind others on a busy node, short enough that a
/// stalled Redis gets its answer well before NODE_TIMEOUT_MS would matter. Refused
/// connections are answered at once whatever this is.
fn ask_deadline(timeout: Duration) -> Duration {
    (timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

impl Node {
    pub async fn connect(
        settings: ClusterSettings,
        deliveries: mpsc::UnboundedSender<Vec<Delivery>>,
        refill: mpsc::UnboundedSender<()>,
        directory: mpsc::UnboundedSender<Registration>,
    ) -> Result<(Node, Arc<IdBlocks>, redis::aio::PubSubStream), String> {
        let client = redis::Client::open(settings.url.as_str()).map_err(|e| e.to_string())?;
        let deadline = ask_deadline(settings.node_timeout);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(deadline + Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let mut redis = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| e.to_string())?;
        let scripts = Scripts::new();
        scripts
            .room
            .load_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        scripts
            .node
            .load_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        let rules = &settings.rules;
        let room_rules = RoomRules {
            history_len: rules.history_len,
            room_ttl_ms: rules.room_ttl_ms,
            max_rooms: rules.max_rooms_total,
            idempotency_ttl_ms: rules.idempotency_ttl_ms,
            idempotency_keys_max: rules.idempotency_keys_max,
            log_len: settings.log_len,
        };
        let me = settings.node_id.clone();
        // A NODE_ID whose heartbeat is fresh belongs to a live process (or to this one's
        // previous start, killed less than NODE_TIMEOUT_MS ago): taking it over would
        // keep that one's members from ever being reaped. The caller retries until
        // NODE_TIMEOUT_MS, by when a dead one's heartbeat has lapsed.
        let heartbeat = format!("{}:node:{{{me}}}", settings.prefix);
        let alive: bool = redis::cmd("EXISTS")
            .arg(&heartbeat)
            .query_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        if alive {
            return Err(format!(
                "NODE_ID {me} is in use: another node beats {heartbeat} (each process needs its own NODE_ID)"
            ));
        }
        // What a previous start under this NODE_ID left in rooms leaves now, as node_lost
        // (the script checks the heartbeat is gone), before this start beats.
        let old_rooms: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{heartbeat}:rooms"))
            .query_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        let room_rules_for_reap = room_rules.clone();
        for room in old_rooms.iter().filter_map(|r| RoomName::parse(r).ok()) {
            log::warn!("cluster: room {room} still holds members of this NODE_ID's previous start: they leave as node_lost");
            let cmd = RoomCall {
                prefix: &settings.prefix,
                room: &room,
                op: "reap",
                deadline: ask_deadline(settings.node_timeout),
                origin: &me,
                ask: None,
                member: None,
                a1: &me,
                a2: "",
                epoch: "",
                rules: &room_rules_for_reap,
            }
            .command(&scripts);
            let _: Value = cmd
                .query_async(&mut redis)
                .await
                .map_err(|e| e.to_string())?;
        }
        let forget = node_command(&scripts, &settings.prefix, &me, "forget", &[&me]);
        let _: Value = forget
            .query_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        let beat = node_command(
            &scripts,
            &settings.prefix,
            &me,
            "beat",
            &[&settings.node_timeout.as_millis().to_string()],
        );
        let _: Value = beat
            .query_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        let last: u64 = id_block(&scripts, &settings, &me)
            .query_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        let ids = Arc::new(IdBlocks::new(last, refill, directory));
        let subscriber = subscribe(&client, &settings)
            .await
            .map_err(|e| e.to_string())?;
        let node = Node {
            replica_settings: settings.rules.for_replica(),
            rules: room_rules,
            scripts,
            redis,
            client,
            ids: ids.clone(),
            deliveries,
            out: Vec::new(),
            replicas: HashMap::new(),
            locals: HashMap::new(),
            departed: HashMap::new(),
            pending: HashMap::new(),
            next_ask: 1,
            queue: Vec::new(),
            in_flight: None,
            departures_due: VecDeque::new(),
            grace_until: Instant::now() + settings.node_timeout,
            healthy: true,
            rooms_count: 0,
            rooms_made: 0,
            leaving: None,
            ping_seen: Instant::now(),
            events: events_channel(&settings),
            settings,
        };
        Ok((node, ids, subscriber))
    }

    /// Runs until the hub is gone (or the server stops, through `Ask::Leave`).
    pub async fn run(
        mut self,
        mut asks: mpsc::UnboundedReceiver<Ask>,
        mut refill: mpsc::UnboundedReceiver<()>,
        mut directory: mpsc::UnboundedReceiver<Registration>,
        counts: Arc<std::sync::atomic::AtomicUsize>,
        subscriber: redis::aio::PubSubStream,
    ) {
        let timeout = self.settings.node_timeout;
        let mut beat = tokio::time::interval(timeout / 5);
        let mut reap = tokio::time::interval((timeout / 4).min(Duration::from_millis(250)));
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut member_counts = tokio::time::interval(self.settings.member_count_interval);
        let mut resubscribe = tokio::time::interval(Duration::from_millis(200));
        for timer in [
            &mut beat,
            &mut reap,
            &mut sweep,
            &mut member_counts,
            &mut resubscribe,
        ] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        let mut subscriber = Some(subscriber);
        loop {
            tokio::select! {
                ask = asks.recv() => match ask {
                    Some(ask) => {
                        self.handle_ask(ask);
                        // And every ask already sent, into the same pipeline. The hub
                        // hands over a bag's asks at once; a pipeline for the first
                        // alone would hold the rest back for a round trip, and split a
                        // burst of says into bursts of deliveries that each write every
                        // connection again, with fewer frames per write.
                        for _ in 0..ASK_BATCH {
                            match asks.try_recv() {
                                Ok(ask) => self.handle_ask(ask),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                Some(registration) = directory.recv() => {
                    let id = registration.id.to_string();
                    let args = [id.as_str(), registration.record.as_str()];
                    let cmd = node_command(&self.scripts, &self.settings.prefix, &self.settings.node_id, "connect", &args);
                    self.send(cmd, Call::Registered(registration.done));
                }
                Some(()) = refill.recv() => {
                    let cmd = id_block(&self.scripts, &self.settings, &self.settings.node_id);
                    self.send(cmd, Call::Ids);
                }
                message = next_message(&mut subscriber) => match message {
                    Some(message) => {
                        self.handle_message(message);
                        // And whatever else has arrived, into the same batch for the
                        // hub: under load a post to a worker carries many frames, and
                        // each connection writes them in one go, as on one node.
                        for _ in 0..READ_BATCH {
                            let Some(stream) = subscriber.as_mut() else { break };
                            match stream.next().now_or_never() {
                                Some(Some(message)) => self.handle_message(message),
                                _ => break,
                            }
                        }
                    }
                    None => {
                        log::warn!("cluster: the subscriber connection to Redis closed; reconnecting");
                        subscriber = None;
                        self.lost_redis();
                    }
                },
                (calls, replies, took) = in_flight(&mut self.in_flight) => {
                    self.in_flight = None;
                    if replies.is_ok() {
                        self.settings.counters.round_trip(took);
                    }
                    self.handle_batch(calls, replies);
                }
                _ = beat.tick() => {
                    let ms = timeout.as_millis().to_string();
                    let cmd = node_command(&self.scripts, &self.settings.prefix, &self.settings.node_id, "beat", &[&ms]);
                    self.send(cmd, Call::Beat);
                    self.expire_asks();
                    if self.healthy {
                        // A leave that came back late while Redis answered: again.
                        self.retry_departures();
                    }
                    // The subscriber must hear its own ping within NODE_TIMEOUT_MS, or
                    // it is taken for dead (a half-open connection reads nothing ever).
                    if subscriber.is_some() && self.ping_seen.elapsed() > timeout {
                        log::warn!("cluster: the subscriber connection heard nothing for NODE_TIMEOUT_MS; reconnecting");
                        subscriber = None;
                        self.lost_redis();
                    } else if subscriber.is_some() {
                        let channel = format!("{}:node:{}", self.settings.prefix, self.settings.node_id);
                        let cmd = redis::cmd("PUBLISH").arg(channel).arg(r#"{"k":"ping"}"#).clone();
                        self.send(cmd, Call::Plain);
                    }
                }
                _ = reap.tick() => {
                    if self.healthy && subscriber.is_some() && Instant::now() >= self.grace_until {
                        let cmd = node_command(&self.scripts, &self.settings.prefix, &self.settings.node_id, "lost", &[]);
                        self.send(cmd, Call::Lost);
                    }
                }
                _ = sweep.tick() => {
                    let cmd = node_command(&self.scripts, &self.settings.prefix, &self.settings.node_id, "sweep", &[]);
                    self.send(cmd, Call::Sweep);
                    counts.store(self.rooms_count, std::sync::atomic::Ordering::Relaxed);
                }
                _ = member_counts.tick() => {
                    for replica in self.replicas.values_mut() {
                        let effects = replica.state.member_counts();
                        if !effects.is_empty() {
                            self.out.push(Delivery { requester: None, reference: None, effects });
                        }
                    }
                }
                _ = resubscribe.tick(), if subscriber.is_none() => {
                    match subscribe(&self.client, &self.settings).await {
                        Ok(stream) => {
                            subscriber = Some(stream);
                            self.ping_seen = Instant::now();
                            self.settings.counters.subscriber_reconnected();
                            log::info!("cluster: subscribed to Redis again; catching up");
                            self.recover();
                        }
                        Err(err) => log::debug!("cluster: cannot subscribe yet: {err}"),
                    }
                }
            }
            self.flush();
            self.dispatch();
            // Stopping: done once every connection's departure is stored (their
            // disconnects may reach the hub after the stop does).
            if self.leaving.is_some() && self.locals.is_empty() && self.in_flight.is_none() {
                break;
            }
        }
        // Stopping with every member's leave stored: nobody need reap this node. Else
        // (the hub went without a stop, or Redis did not take every leave) its
        // heartbeat lapses and the others reap what it left, as `node_lost`.
        if let Some(done) = self.leaving.take() {
            if self.locals.is_empty() && self.departures_due.is_empty() {
                let cmd = node_command(
                    &self.scripts,
                    &self.settings.prefix,
                    &self.settings.node_id,
                    "leaving",
                    &[],
                );
                let _: redis::RedisResult<Value> = cmd.query_async(&mut self.redis).await;
            }
            let _ = done.send(());
        }
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let _ = self.deliveries.send(std::mem::take(&mut self.out));
        }
    }

    fn send(&mut self, cmd: redis::Cmd, call: Call) {
        self.queue.push((cmd, call));
    }

    /// Sends what is queued, as one pipeline, unless one is out.
    fn dispatch(&mut self) {
        if self.in_flight.is_some() || self.queue.is_empty() {
            return;
        }
        let take = self.queue.len().min(BATCH_MAX);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut calls = Vec::with_capacity(take);
        for (cmd, call) in self.queue.drain(..take) {
            pipe.add_command(cmd);
            calls.push(call);
        }
        let mut redis = self.redis.clone();
        self.in_flight = Some(Box::pin(async move {
            let sent = Instant::now();
            let replies = pipe.query_async::<Vec<Value>>(&mut redis).await;
            (calls, replies, sent.elapsed())
        }));
    }

    fn handle_batch(&mut self, calls: Vec<Call>, replies: redis::RedisResult<Vec<Value>>) {
        match replies {
            Ok(values) => {
                for (call, value) in calls.into_iter().zip(values) {
                    let result = match value {
                        Value::ServerError(err) => Err(err.into()),
                        value => Ok(value),
                    };
                    self.handle_reply(call, result);
                }
            }
            Err(err) => {
                if self.healthy {
                    log::error!("cluster: Redis did not answer: {err}");
                }
                self.lost_redis();
                for call in calls {
                    self.failed(call);
                }
            }
        }
    }

    /// Sends one of member `from`'s asks about `room` to room.lua.
    fn ask_room(&mut self, room: &RoomName, op: &str, ask: u64, from: MemberId, a1: &str) {
        let cmd = self.room_call(room, op, Some(ask), Some(from), a1, "");
        self.rooms_made += 1;
        self.send(cmd, Call::Ask(ask));
    }

    fn room_call(
        &self,
        room: &RoomName,
        op: &str,
        ask: Option<u64>,
        member: Option<MemberId>,
        a1: &str,
        a2: &str,
    ) -> redis::Cmd {
        let epoch = format!(
            "{}-{:x}-{}",
            self.settings.node_id,
            Timestamp::now().millis(),
            self.rooms_made
        );
        RoomCall {
            prefix: &self.settings.prefix,
            room,
            op,
            deadline: ask_deadline(self.settings.node_timeout),
            origin: &self.settings.node_id,
            ask,
            member: member.map(|m| m.0),
            a1,
            a2,
            epoch: &epoch,
            rules: &self.rules,
        }
        .command(&self.scripts)
    }

    // --- asks ---------------------------------------------------------------------------

    fn handle_ask(&mut self, ask: Ask) {
        match ask {
            Ask::Connect { id, name, access } => {
                let connected_at = Timestamp::now();
                let record = Record::encode(id, &name, access.user.as_ref(), connected_at);
                let cmd = node_command(
                    &self.scripts,
                    &self.settings.prefix,
                    &self.settings.node_id,
                    "connect",
                    &[&id.0.to_string(), &record],
                );
                self.send(cmd, Call::Plain);
                self.locals.insert(
                    id,
                    Local {
                        name,
                        access,
                        connected_at,
                        rooms: BTreeSet::new(),
                        joining: BTreeSet::new(),
                        outstanding: 0,
                    },
                );
            }
            Ask::Apply {
                from,
                reference,
                command,
            } => self.apply(from, reference, command),
            Ask::Reauthorize {
                id,
                reference,
                name,
                rooms,
            } => self.reauthorize(id, reference, name, rooms),
            Ask::Disconnect { id, reason } => self.disconnect(id, reason),
            Ask::Publish {
                room,
                text,
                key,
                reply,
            } => {
                let cmd = self.room_call(
                    &room,
                    "publish",
                    None,
                    None,
                    &text,
                    key.as_deref().unwrap_or(""),
                );
                self.rooms_made += 1;
                self.send(cmd, Call::Publish { room, text, reply });
            }
            Ask::Kick { room, id, reply } => {
                let cmd = self.room_call(
                    &room,
                    "kick",
                    None,
                    Some(id),
                    LeaveReason::Kicked.as_str(),
                    "",
                );
                self.send(cmd, Call::Kick(reply));
            }
            Ask::RoomsView {
                after,
                limit,
                reply,
            } => {
                let after = after.map_or("-".to_string(), |room| format!("({room}"));
                let per = self.settings.rules.joined_members_max.to_string();
                let cmd = node_command(
                    &self.scripts,
                    &self.settings.prefix,
                    &self.settings.node_id,
                    "rooms",
                    &["", &after, &limit.get().to_string(), &per],
                );
                self.send(cmd, Call::RoomsView { limit, reply });
            }
            Ask::RoomView {
                room,
                after,
                limit,
                reply,
            } => {
                let cmd = self.room_call(&room, "view", None, None, "", "");
                self.send(
                    cmd,
                    Call::RoomView {
                        room,
                        after,
                        limit,
                        reply,
                    },
                );
            }
            Ask::Leave { done } => self.leaving = Some(done),
        }
    }

    /// A new ask of member `from`, awaited until its outcome comes (or its deadline).
    fn open_ask(
        &mut self,
        from: MemberId,
        reference: Option<Ref>,
        want: Want,
        parts: usize,
    ) -> u64 {
        let ask = self.next_ask;
        self.next_ask += 1;
        if let Some(local) = self.locals.get_mut(&from) {
            local.outstanding += 1;
        }
        let deadline =
            Instant::now() + ask_deadline(self.settings.node_timeout) + Duration::from_secs(1);
        self.pending.insert(
            ask,
            Pending {
                member: from,
                reference,
                want,
                deadline,
                parts,
            },
        );
        ask
    }

    /// Effects for member `to`, as the outcome of its ask with `reference`.
    fn reply_to(&mut self, to: MemberId, reference: Option<Ref>, effects: Effects) {
        self.out.push(Delivery {
            requester: Some(to),
            reference,
            effects,
        });
    }

    /// A reply decided here: now if nothing of the member's is out, else in its turn.
    fn reply_here(&mut self, from: MemberId, reference: Option<Ref>, effects: Effects) {
        let busy = self.locals.get(&from).is_some_and(|l| l.outstanding > 0);
        if !busy {
            self.out.push(Delivery {
                requester: Some(from),
                reference,
                effects,
            });
            return;
        }
        let ask = self.open_ask(from, reference, Want::Barrier(effects), 1);
        let cmd = node_command(
            &self.scripts,
            &self.settings.prefix,
            &self.settings.node_id,
            "barrier",
            &[&ask.to_string()],
        );
        self.send(cmd, Call::Ask(ask));
    }

    fn refuse_here(&mut self, from: MemberId, reference: Option<Ref>, error: ProtocolError) {
        let mut effects = Effects::new();
        effects.reply(error);
        self.reply_here(from, reference, effects);
    }

    fn apply(&mut self, from: MemberId, reference: Option<Ref>, command: Command) {
        let Some(local) = self.locals.get(&from) else {
            return;
        };
        match command {
            Command::Join(join) => {
                if !local.access.rooms.allows(&join.room) {
                    return self.refuse_here(from, reference, forbidden(&join.room));
                }
                let known = local.rooms.contains(&join.room) || local.joining.contains(&join.room);
                let limit = self.settings.rules.max_rooms_per_connection;
                if !known && local.rooms.len() + local.joining.len() >= limit {
                    let error = ProtocolError::new(
                        ErrorCode::TooManyRooms,
                        format!("a connection may be in at most {limit} rooms"),
                    );
                    return self.refuse_here(from, reference, error);
                }
                let record = Record::encode(from, &local.name, local.user(), local.connected_at);
                if let Some(local) = self.locals.get_mut(&from) {
                    local.joining.insert(join.room.clone());
                }
                let room = join.room.clone();
                let ask = self.open_ask(
                    from,
                    reference,
                    Want::Join {
                        room: join.room,
                        since: join.since,
                    },
                    1,
                );
                self.ask_room(&room, "join", ask, from, &record);
            }
            Command::Leave(Leave { room }) => {
                if !local.rooms.contains(&room) && !local.joining.contains(&room) {
                    return self.refuse_here(from, reference, not_in_room(&room));
                }
                let ask = self.open_ask(from, reference, Want::Leave, 1);
                self.ask_room(&room, "leave", ask, from, LeaveReason::Leave.as_str());
            }
            Command::Say(Say { room, text }) => {
                if !local.access.rooms.allows(&room) {
                    return self.refuse_here(from, reference, forbidden(&room));
                }
                if !local.rooms.contains(&room) && !local.joining.contains(&room) {
                    return self.refuse_here(from, reference, not_in_room(&room));
                }
                let ask = self.open_ask(from, reference, Want::Say, 1);
                self.ask_room(&room, "say", ask, from, &text);
            }
            Command::Who(who) => {
                let room = who.room.clone();
                let ask = self.open_ask(from, reference, Want::Who(who), 1);
                self.ask_room(&room, "who", ask, from, "");
            }
            Command::Rooms(list) => {
                let after = list
                    .after
                    .as_ref()
                    .map_or("-".to_string(), |room| format!("({room}"));
                let limit = list.limit.unwrap_or_default().get().to_string();
                let ask = self.open_ask(from, reference, Want::Rooms(list), 1);
                let cmd = node_command(
                    &self.scripts,
                    &self.settings.prefix,
                    &self.settings.node_id,
                    "rooms",
                    &[&ask.to_string(), &after, &limit, "0"],
                );
                self.send(cmd, Call::Ask(ask));
            }
            Command::Whisper(whisper) => {
                let record = Record::encode(from, &local.name, local.user(), local.connected_at);
                let ask = self.open_ask(from, reference, Want::Whisper, 1);
                let deadline = (Timestamp::now().millis()
                    + ask_deadline(self.settings.node_timeout).as_millis() as i64)
                    .to_string();
                let cmd = node_command(
                    &self.scripts,
                    &self.settings.prefix,
                    &self.settings.node_id,
                    "whisper",
                    &[
                        &deadline,
                        &ask.to_string(),
                        &whisper.to.0.to_string(),
                        &record,
                        &whisper.text,
                    ],
                );
                self.send(cmd, Call::Ask(ask));
            }
            Command::Rename(Rename { name }) => self.rename(from, reference, name),
            // Answered by the connection itself (echo, refresh): never sent here.
            other => log::debug!("cluster: {} is not room state's", other.name()),
        }
    }

    fn rename(&mut self, from: MemberId, reference: Option<Ref>, name: DisplayName) {
        let Some(local) = self.locals.get_mut(&from) else {
            return;
        };
        let old_name = std::mem::replace(&mut local.name, name.clone());
        let rooms: Vec<RoomName> = local.rooms.union(&local.joining).cloned().collect();
        if rooms.is_empty() {
            let member = Member {
                id: from,
                name,
                joined_at: local.connected_at,
                user: local.access.user.clone(),
            };
            let mut effects = Effects::new();
            effects.reply(Event::MemberRenamed {
                room: None,
                member,
                old_name,
            });
            return self.reply_here(from, reference, effects);
        }
        let ask = self.open_ask(from, reference, Want::Rename, rooms.len());
        for room in rooms {
            self.ask_room(&room, "rename", ask, from, name.as_str());
        }
    }

    fn reauthorize(
        &mut self,
        id: MemberId,
        reference: Option<Ref>,
        name: Option<DisplayName>,
        rooms: RoomGrant,
    ) {
        let Some(local) = self.locals.get_mut(&id) else {
            return;
        };
        local.access.rooms = rooms;
        let revoked: Vec<RoomName> = local
            .rooms
            .iter()
            .filter(|room| !local.access.rooms.allows(room))
            .cloned()
            .collect();
        let renamed = name.filter(|name| *name != local.name);
        if !revoked.is_empty() {
            let ask = self.open_ask(id, reference.clone(), Want::Revoke, revoked.len());
            for room in revoked {
                log::info!("member {id} left {room}: its refreshed token does not allow it");
                self.ask_room(&room, "kick", ask, id, LeaveReason::Kicked.as_str());
            }
        }
        if let Some(name) = renamed {
            let in_rooms = self
                .locals
                .get(&id)
                .is_some_and(|l| !l.rooms.is_empty() || !l.joining.is_empty());
            if in_rooms {
                self.rename(id, reference, name);
            } else if let Some(local) = self.locals.get_mut(&id) {
                local.name = name;
            }
        }
    }

    fn disconnect(&mut self, id: MemberId, reason: LeaveReason) {
        let Some(local) = self.locals.remove(&id) else {
            return;
        };
        if !local.joining.is_empty() {
            self.departed.insert(id, reason);
        }
        for room in local.rooms {
            self.depart(room, id, reason);
        }
        let cmd = node_command(
            &self.scripts,
            &self.settings.prefix,
            &self.settings.node_id,
            "disconnect",
            &[&id.0.to_string()],
        );
        self.send(cmd, Call::Plain);
    }

    fn depart(&mut self, room: RoomName, id: MemberId, why: LeaveReason) {
        let cmd = self.room_call(&room, "leave", None, Some(id), why.as_str(), "");
        self.send(cmd, Call::Departure { room, id, why });
    }

    // --- replies from Redis -----------------------------------------------------------

    fn handle_reply(&mut self, call: Call, result: redis::RedisResult<Value>) {
        let value = match result {
            Ok(value) => {
                if !self.healthy {
                    log::info!("cluster: Redis answers again");
                    self.healthy = true;
                    self.retry_departures();
                }
                value
            }
            Err(err) => {
                if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
                    // Redis restarted and forgot the scripts: load them; this call is
                    // answered as one that did not run.
                    log::warn!("cluster: Redis no longer has the scripts; loading them again");
                    self.load_scripts();
                    self.lost_redis();
                } else if matches!(err.kind(), redis::ErrorKind::Server(_)) {
                    log::error!("cluster: a script failed: {err}");
                } else {
                    if self.healthy {
                        log::error!("cluster: Redis did not answer: {err}");
                    }
                    self.lost_redis();
                }
                return self.failed(call);
            }
        };
        match call {
            Call::Ask(ask) => {
                if is_late(&value) {
                    self.resolve_unavailable(ask);
                }
            }
            Call::Departure { room, id, why } => {
                if is_late(&value) {
                    self.departures_due.push_back((room, id, why));
                }
            }
            Call::Publish { room, text, reply } => {
                let answer = match is_late(&value) {
                    true => Err(Unavailable),
                    false => Ok(published(&room, &text, &value, &self.settings.rules)),
                };
                let _ = reply.send(answer);
            }
            Call::Kick(reply) => {
                let answer = match strings(&value).first().map(String::as_str) {
                    Some("ok") => Ok(Ok(Effects::new())),
                    Some("late") => Err(Unavailable),
                    _ => Ok(Err(NotAMember)),
                };
                let _ = reply.send(answer);
            }
            Call::RoomsView { limit, reply } => {
                let list = match &value {
                    Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    _ => String::new(),
                };
                let _ = reply.send(Ok(self.rooms_page(&list, limit)));
            }
            Call::RoomView {
                room,
                after,
                limit,
                reply,
            } => {
                let parts = strings(&value);
                let view = match parts.first().map(String::as_str) {
                    Some("ok") => {
                        parts
                            .get(1)
                            .and_then(|json| Entry::parse(json))
                            .and_then(|mut snap| {
                                snap.r = Some(room.to_string());
                                let state = self.scratch(&snap)?;
                                state.room_view(&room, after, limit)
                            })
                    }
                    _ => None,
                };
                let _ = reply.send(Ok(view));
            }
            Call::Beat => {}
            Call::Lost => self.reap(&value),
            Call::Reaped(node) => {
                let cmd = node_command(
                    &self.scripts,
                    &self.settings.prefix,
                    &self.settings.node_id,
                    "forget",
                    &[&node],
                );
                self.send(cmd, Call::Plain);
            }
            Call::Registered(done) => {
                let _ = done.send(true);
            }
            Call::Ids => match &value {
                Value::Int(last) => self.ids.supply(*last as u64),
                _ => self.ids.failed(),
            },
            Call::Sweep => {
                if let Value::Int(count) = value {
                    self.rooms_count = count.max(0) as usize;
                }
            }
            Call::Resume(room) => {
                let parts = strings(&value);
                match (parts.first().map(String::as_str), parts.get(1)) {
                    (Some("tail"), Some(entries)) => self.tail(&room, entries),
                    (Some("follow"), Some(json)) => {
                        if let Some(entry) = Entry::parse(json) {
                            self.follow(entry);
                        }
                    }
                    _ => {
                        log::error!("cluster: room {room} could not be resumed: {parts:?}");
                        if let Some(replica) = self.replicas.get_mut(&room) {
                            replica.resuming = None;
                        }
                    }
                }
            }
            Call::Plain => {}
        }
    }

    fn failed(&mut self, call: Call) {
        // An ask is counted where it is answered `unavailable`: once, whether its
        // deadline or its failure came first.
        if !matches!(call, Call::Ask(_)) {
            self.settings.counters.store_error(call.op());
        }
        match call {
            Call::Ask(ask) => self.resolve_unavailable(ask),
            Call::Departure { room, id, why } => self.departures_due.push_back((room, id, why)),
            Call::Publish { reply, .. } => {
                let _ = reply.send(Err(Unavailable));
            }
            Call::Kick(reply) => {
                let _ = reply.send(Err(Unavailable));
            }
            Call::RoomsView { reply, .. } => {
                let _ = reply.send(Err(Unavailable));
            }
            Call::RoomView { reply, .. } => {
                let _ = reply.send(Err(Unavailable));
            }
            Call::Ids => self.ids.failed(),
            Call::Registered(done) => {
                let _ = done.send(false);
            }
            Call::Resume(room) => {
                // Tried again when Redis is back (the subscriber reconnects).
                if let Some(replica) = self.replicas.get_mut(&room) {
                    replica.resuming = None;
                }
            }
            Call::Beat | Call::Lost | Call::Reaped(_) | Call::Sweep | Call::Plain => {}
        }
    }

    /// Loads both scripts again (Redis restarted and forgot them). Queued before
    /// anything else is sent, so what follows finds them.
    fn load_scripts(&mut self) {
        for source in [ROOM_LUA, NODE_LUA] {
            let cmd = redis::cmd("SCRIPT").arg("LOAD").arg(source).clone();
            self.send(cmd, Call::Plain);
        }
    }

    /// This node lost Redis (or its subscriber connection): no reaping for a while.
    fn lost_redis(&mut self) {
        self.healthy = false;
        self.grace_until = Instant::now() + self.settings.node_timeout;
    }

    fn retry_departures(&mut self) {
        for (room, id, why) in std::mem::take(&mut self.departures_due) {
            self.depart(room, id, why);
        }
    }

    /// Subscribed again after a loss: every followed room catches up from its log (or,
    /// where Redis lost it, starts a new life with this node's members put back), and
    /// the member directory is written again.
    fn recover(&mut self) {
        self.grace_until = Instant::now() + self.settings.node_timeout;
        self.load_scripts();
        let locals: Vec<(MemberId, String)> = self
            .locals
            .iter()
            .map(|(id, l)| (*id, Record::encode(*id, &l.name, l.user(), l.connected_at)))
            .collect();
        for (id, record) in locals {
            let cmd = node_command(
                &self.scripts,
                &self.settings.prefix,
                &self.settings.node_id,
                "connect",
                &[&id.0.to_string(), &record],
            );
            self.send(cmd, Call::Plain);
        }
        let rooms: Vec<RoomName> = self.replicas.keys().cloned().collect();
        for room in rooms {
            self.resume(room);
        }
        // A first join whose snapshot may have been lost with the connection: the room
        // is fetched as a resume that knows nothing of it.
        let joining: BTreeSet<RoomName> = self
            .pending
            .values()
            .filter_map(|p| match &p.want {
                Want::Join { room, .. } if !self.replicas.contains_key(room) => Some(room.clone()),
                _ => None,
            })
            .collect();
        for room in joining {
            let cmd = self.room_call(&room, "resume", None, None, "- 0", "");
            self.send(cmd, Call::Resume(room));
        }
        self.retry_departures();
    }

    fn resume(&mut self, room: RoomName) {
        let Some(replica) = self.replicas.get_mut(&room) else {
            return;
        };
        if replica.resuming.is_some() {
            return;
        }
        replica.resuming = Some(Vec::new());
        let known = format!("{} {}", replica.epoch, replica.n);
        let mine: Vec<String> = self
            .locals
            .iter()
            .filter(|(_, local)| local.rooms.contains(&room))
            .map(|(id, local)| Record::encode(*id, &local.name, local.user(), local.connected_at))
            .collect();
        let cmd = self.room_call(&room, "resume", None, None, &known, &mine.join("\n"));
        self.rooms_made += 1;
        self.send(cmd, Call::Resume(room));
    }

    /// `lost` answered: reap each lost node's rooms, then forget it.
    fn reap(&mut self, value: &Value) {
        let Value::Array(lost) = value else {
            return;
        };
        for node in lost {
            let Value::Array(parts) = node else { continue };
            let (Some(name), Some(Value::Array(rooms))) = (parts.first(), parts.get(1)) else {
                continue;
            };
            let name = text(name);
            log::warn!("cluster: node {name} was not heard from for NODE_TIMEOUT_MS: its members leave as node_lost");
            self.settings.counters.node_reaped();
            for room in rooms {
                if let Ok(room) = RoomName::parse(&text(room)) {
                    let cmd = self.room_call(&room, "reap", None, None, &name, "");
                    self.send(cmd, Call::Plain);
                }
            }
            let cmd = node_command(
                &self.scripts,
                &self.settings.prefix,
                &self.settings.node_id,
                "barrier",
                &["0"],
            );
            self.send(cmd, Call::Reaped(name));
        }
    }

    /// Asks past their deadline: answered `unavailable` (the script, if it runs after
    /// the deadline, does nothing).
    fn expire_asks(&mut self) {
        let now = Instant::now();
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline < now)
            .map(|(a, _)| *a)
            .collect();
        for ask in late {
            self.resolve_unavailable(ask);
        }
    }

    fn resolve_unavailable(&mut self, ask: u64) {
        let Some(pending) = self.pending.remove(&ask) else {
            return;
        };
        self.settings.counters.store_error(StoreOp::Ask);
        self.finish(&pending);
        let error = unavailable();
        let mut effects = Effects::new();
        effects.reply(error);
        self.reply_to(pending.member, pending.reference, effects);
    }

    /// An ask is answered: the member has one fewer out, and a join is no longer in flight.
    fn finish(&mut self, pending: &Pending) {
        match self.locals.get_mut(&pending.member) {
            Some(local) => {
                local.outstanding = local.outstanding.saturating_sub(1);
                if let Want::Join { room, .. } = &pending.want {
                    local.joining.remove(room);
                }
            }
            // Gone meanwhile: nothing of its is awaited once its last join is answered.
            None => {
                if !self.pending.values().any(|p| p.member == pending.member) {
                    self.departed.remove(&pending.member);
                }
            }
        }
    }

    // --- what the subscriber reads ----------------------------------------------------

    fn handle_message(&mut self, message: redis::Msg) {
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        let Some(entry) = Entry::parse(&payload) else {
            return;
        };
        if message.get_channel_name() == self.events {
            self.room_entry(entry);
        } else {
            self.answer(entry);
        }
    }

    /// An answer meant for this node alone.
    fn answer(&mut self, entry: Entry) {
        match entry.k.as_str() {
            "follow" => self.follow(entry),
            "again" => {
                // Already in the room: `joined` again, from the replica.
                let Some(ask) = entry.ask() else {
                    return;
                };
                let room = match self.pending.get(&ask) {
                    Some(Pending {
                        want: Want::Join { room, .. },
                        ..
                    }) => room.clone(),
                    _ => return,
                };
                if !self.replicas.contains_key(&room) {
                    // Redis has the member in, but this node never got the room (its
                    // snapshot was lost with a connection): fetch it; the join is
                    // answered from it (`reconcile`).
                    let cmd = self.room_call(&room, "resume", None, None, "- 0", "");
                    return self.send(cmd, Call::Resume(room));
                }
                let Some((_, pending)) = self.take(&entry) else {
                    return;
                };
                if let Want::Join { room, since } = pending.want {
                    let member = self.local_member(pending.member);
                    if let (Some(replica), Some(member)) = (self.replicas.get_mut(&room), member) {
                        let effects = replica.state.enter(&room, member, since, Timestamp::now());
                        self.reply_to(pending.member, pending.reference, effects);
                    }
                    if let Some(local) = self.locals.get_mut(&pending.member) {
                        local.rooms.insert(room);
                    }
                }
            }
            "refused" => {
                let Some((_, pending)) = self.take(&entry) else {
                    return;
                };
                let room = entry.room();
                let error = match (entry.err.as_deref(), &room) {
                    (Some("not_in_room"), Some(room)) => not_in_room(room),
                    (Some("rooms_full"), _) => ProtocolError::new(
                        ErrorCode::RoomsFull,
                        RoomsFull {
                            max: self.settings.rules.max_rooms_total,
                        }
                        .message(),
                    ),
                    (Some("unknown_member"), _) => ProtocolError::new(
                        ErrorCode::UnknownMember,
                        format!("no member has id {}", entry.m.as_deref().unwrap_or("?")),
                    ),
                    _ => unavailable(),
                };
                if matches!(pending.want, Want::Rename | Want::Revoke)
                    && entry.err.as_deref() == Some("not_in_room")
                {
                    return; // one room of several was left meanwhile: nothing to say
                }
                // A member this node has in the room that Redis does not know: Redis
                // lost the room (emptied under us). The room starts again from here.
                let lost = entry.err.as_deref() == Some("not_in_room")
                    && room.as_ref().is_some_and(|room| {
                        self.locals
                            .get(&pending.member)
                            .is_some_and(|l| l.rooms.contains(room))
                    });
                let error = match (lost, room) {
                    (true, Some(room)) => {
                        log::warn!("cluster: Redis no longer has room {room}; putting it back");
                        self.resume(room);
                        unavailable()
                    }
                    _ => error,
                };
                let mut effects = Effects::new();
                effects.reply(error);
                self.reply_to(pending.member, pending.reference, effects);
            }
            "who" => {
                let Some((_, pending)) = self.take(&entry) else {
                    return;
                };
                let Want::Who(who) = pending.want else { return };
                let room = who.room.clone();
                let effects = match self.replicas.get_mut(&room) {
                    Some(replica) if entry.found.is_none() => {
                        // The asker need not be in the room: a quiet guest while it asks.
                        let guest = !replica.state.contains(&room, pending.member);
                        if guest {
                            replica.state.connect(
                                pending.member,
                                DisplayName::guest(0),
                                Timestamp::now(),
                            );
                        }
                        let effects = Command::Who(who).apply_to(
                            &mut replica.state,
                            pending.member,
                            Timestamp::now(),
                        );
                        if guest {
                            replica.state.forget(pending.member);
                        }
                        effects
                    }
                    _ => {
                        let mut state = self.scratch(&entry).unwrap_or_else(|| {
                            RoomState::new(self.replica_settings.clone(), "none")
                        });
                        state.connect(pending.member, DisplayName::guest(0), Timestamp::now());
                        Command::Who(who).apply_to(&mut state, pending.member, Timestamp::now())
                    }
                };
                self.reply_to(pending.member, pending.reference, effects);
            }
            "rooms" => {
                let Some((_, pending)) = self.take(&entry) else {
                    return;
                };
                let Want::Rooms(list) = pending.want else {
                    return;
                };
                let limit = list.limit.unwrap_or_default();
                let page = self.rooms_page(entry.list.as_deref().unwrap_or(""), limit);
                let rooms = page
                    .rooms
                    .into_iter()
                    .map(|room| RoomCount {
                        name: room.name,
                        members: room.member_count,
                    })
                    .collect();
                let mut effects = Effects::new();
                effects.reply(Event::Rooms {
                    rooms,
                    next: page.next,
                });
                self.reply_to(pending.member, pending.reference, effects);
            }
            "whisper" => self.whisper(entry),
            "ping" => self.ping_seen = Instant::now(),
            "barrier" => {
                let Some((_, pending)) = self.take(&entry) else {
                    return;
                };
                if let Want::Barrier(effects) = pending.want {
                    self.reply_to(pending.member, pending.reference, effects);
                }
            }
            other => log::debug!("cluster: an answer of unknown kind {other}"),
        }
    }

    /// The pending ask an answer or entry is for, if it is this node's, once all its
    /// parts are in.
    fn take(&mut self, entry: &Entry) -> Option<(u64, Pending)> {
        let ask = entry.ask()?;
        let pending = self.pending.get_mut(&ask)?;
        pending.parts = pending.parts.saturating_sub(1);
        if pending.parts > 0 {
            return None;
        }
        let pending = self.pending.remove(&ask)?;
        self.finish(&pending);
        Some((ask, pending))
    }

    /// Whether an entry answers one of this node's asks that is still awaited (its
    /// `ref` goes with it), without taking it.
    fn reference_of(&self, entry: &Entry) -> Option<Ref> {
        if entry.o.as_deref() != Some(self.settings.node_id.as_str()) {
            return None;
        }
        self.pending.get(&entry.ask()?)?.reference.clone()
    }

    fn local_member(&self, id: MemberId) -> Option<Member> {
        let local = self.locals.get(&id)?;
        Some(Member {
            id,
            name: local.name.clone(),
            joined_at: local.connected_at,
            user: local.access.user.clone(),
        })
    }

    /// A state holding the one room of a snapshot entry.
    fn scratch(&self, entry: &Entry) -> Option<RoomState> {
        let snapshot = snapshot_of(entry)?;
        Some(RoomState::replica(self.replica_settings.clone(), snapshot))
    }

    /// The room as it was just before this node's first member joined (or as a resume
    /// found it): the replica starts here.
    fn follow(&mut self, entry: Entry) {
        let Some(snapshot) = snapshot_of(&entry) else {
            return;
        };
        let room = snapshot.room.clone();
        let epoch = snapshot.epoch.clone();
        let n = entry.n.unwrap_or(0);
        let resync = entry.resync.as_deref() == Some("1");
        let me = Some(self.settings.node_id.as_str());
        // This node's members in the room, as Redis has it.
        let ours: BTreeSet<MemberId> = entry::lines(&entry.members)
            .filter_map(Record::parse)
            .filter(|r| r.node.as_deref() == me)
            .filter_map(|r| r.id.parse().ok().map(MemberId))
            .collect();
        let mine = ours.len();
        let seq = snapshot.seq;
        let state = RoomState::replica(self.replica_settings.clone(), snapshot);
        // What came live while a resume was out: applied after the snapshot (what it
        // already holds is skipped by its number).
        let buffered = self
            .replicas
            .get_mut(&room)
            .and_then(|r| r.resuming.take())
            .unwrap_or_default();
        let previous = self.replicas.insert(
            room.clone(),
            Replica {
                state,
                epoch: epoch.clone(),
                n,
                mine,
                resuming: None,
            },
        );
        let rebuilt = resync || previous.as_ref().is_some_and(|p| p.epoch != epoch);
        let joined = match rebuilt {
            true => self.reconcile(&room, &ours),
            false => Vec::new(),
        };
        if rebuilt {
            log::warn!("cluster: room {room} was rebuilt from Redis (epoch {epoch}, seq {seq}); its members here get resync");
            self.settings.counters.room_rebuilt();
            let mut effects = Effects::new();
            let ids: Vec<MemberId> = self
                .locals
                .iter()
                .filter(|(id, l)| l.rooms.contains(&room) && !joined.contains(id))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                effects.send(
                    Event::Resync {
                        room: room.clone(),
                        epoch: epoch.clone(),
                        seq,
                    },
                    Audience::Member(id),
                );
            }
            self.out.push(Delivery {
                requester: None,
                reference: None,
                effects,
            });
        }
        for later in buffered {
            if later.e.as_deref() == Some(&*epoch) {
                self.room_entry(later);
            }
        }
    }

    /// After a room was rebuilt from Redis: this node's table of who is in it follows
    /// what Redis holds. A member of ours that Redis has but the table has not (its
    /// join's answer was lost) is in, and its join is answered now; one the table has
    /// but Redis has not (removed while this node heard nothing) is out; one Redis has
    /// that is no longer connected here leaves, so no ghost stays behind.
    fn reconcile(&mut self, room: &RoomName, ours: &BTreeSet<MemberId>) -> Vec<MemberId> {
        let mut effects = Effects::new();
        for (id, local) in self.locals.iter_mut() {
            if ours.contains(id) {
                local.rooms.insert(room.clone());
            } else if local.rooms.remove(room) {
                effects.unsubscribe(*id, room.clone());
            }
        }
        self.out.push(Delivery {
            requester: None,
            reference: None,
            effects,
        });
        let ghosts: Vec<MemberId> = ours
            .iter()
            .filter(|id| !self.locals.contains_key(id))
            .copied()
            .collect();
        for id in ghosts {
            let why = self.departed.remove(&id).unwrap_or(LeaveReason::Disconnect);
            self.depart(room.clone(), id, why);
        }
        let answered: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                matches!(&p.want, Want::Join { room: r, .. } if r == room)
                    && ours.contains(&p.member)
            })
            .map(|(ask, _)| *ask)
            .collect();
        let mut joined = Vec::new();
        for ask in answered {
            let Some(pending) = self.pending.remove(&ask) else {
                continue;
            };
            joined.push(pending.member);
            self.finish(&pending);
            let Want::Join { since, .. } = pending.want else {
                continue;
            };
            let member = self.local_member(pending.member);
            if let (Some(replica), Some(member)) = (self.replicas.get_mut(room), member) {
                let mut effects = replica.state.enter(room, member, since, Timestamp::now());
                effects.subscribe(pending.member, room.clone());
                self.reply_to(pending.member, pending.reference, effects);
            }
        }
        joined
    }

    /// A resume's answer: the entries this node missed, in order.
    fn tail(&mut self, room: &RoomName, entries: &str) {
        let buffered = self
            .replicas
            .get_mut(room)
            .and_then(|r| r.resuming.take())
            .unwrap_or_default();
        for line in entries.split('\n').filter(|line| !line.is_empty()) {
            if let Some(missed) = Entry::parse(line) {
                self.room_entry(missed);
            }
        }
        for later in buffered {
            self.room_entry(later);
        }
    }

    /// One entry of a room, from the events channel (or a log tail).
    fn room_entry(&mut self, entry: Entry) {
        let Some(room) = entry.room() else { return };
        let Some(replica) = self.replicas.get_mut(&room) else {
            // Not followed here; but an entry that answers an ask of ours is awaited.
            if let Some((_, pending)) = self.take_if_ours(&entry) {
                log::debug!(
                    "cluster: an entry for unfollowed room {room} answers an ask of member {}",
                    pending.member
                );
            }
            return;
        };
        if let Some(buffer) = replica.resuming.as_mut() {
            buffer.push(entry);
            return;
        }
        let n = entry.n.unwrap_or(0);
        let same_life = entry.e.as_deref() == Some(&*replica.epoch);
        if same_life && n <= replica.n {
            return; // seen already (a log tail overlapping what came live)
        }
        if !same_life || n != replica.n + 1 {
            // Something was missed: resume from what was applied (the log's tail holds
            // this entry too).
            log::warn!(
                "cluster: room {room}: entry {n} after {} (epoch {:?}): catching up",
                replica.n,
                entry.e
            );
            return self.resume(room);
        }
        replica.n = n;
        self.apply_entry(room, entry);
    }

    fn take_if_ours(&mut self, entry: &Entry) -> Option<(u64, Pending)> {
        if entry.o.as_deref() != Some(self.settings.node_id.as_str()) {
            return None;
        }
        self.take(entry)
    }

    fn apply_entry(&mut self, room: RoomName, entry: Entry) {
        let now = entry.at();
        let Some(id) = entry.member_id() else {
            if entry.k == "publish" {
                self.post_publish(&room, &entry, now);
            }
            return;
        };
        let reference = self.reference_of(&entry);
        let record = entry.record();
        let ours =
            record.as_ref().and_then(|r| r.node.as_deref()) == Some(self.settings.node_id.as_str());
        let since = match self.pending.get(&entry.ask().unwrap_or(0)) {
            Some(Pending {
                want: Want::Join { since, .. },
                ..
            }) if reference_matches(&entry, &self.settings.node_id) => since.clone(),
            _ => None,
        };
        // This node's own revoke (a refreshed token): its `left` carries the ref.
        let revoked = reference_matches(&entry, &self.settings.node_id)
            && matches!(
                self.pending.get(&entry.ask().unwrap_or(0)),
                Some(Pending {
                    want: Want::Revoke,
                    ..
                })
            );
        let Some(replica) = self.replicas.get_mut(&room) else {
            return;
        };
        let effects = match entry.k.as_str() {
            "join" | "rejoin" => {
                let Some(member) = record.as_ref().and_then(Record::member) else {
                    return;
                };
                if ours {
                    replica.mine += 1;
                }
                if entry.k == "rejoin" {
                    replica.state.enter_quietly(&room, member, now)
                } else {
                    replica.state.enter(&room, member, since, now)
                }
            }
            "leave" | "kick" => {
                let why = leave_reason(entry.why.as_deref());
                let effects = match why {
                    LeaveReason::Leave => {
                        let effects = Command::Leave(Leave { room: room.clone() }).apply_to(
                            &mut replica.state,
                            id,
                            now,
                        );
                        replica.state.forget(id);
                        effects
                    }
                    LeaveReason::Kicked if revoked => {
                        let effects = replica.state.revoke(&room, id, now);
                        replica.state.forget(id);
                        effects
                    }
                    LeaveReason::Kicked => {
                        let effects = replica.state.kick(&room, id, now).unwrap_or_default();
                        replica.state.forget(id);
                        effects
                    }
                    other => replica.state.disconnect(id, other, now),
                };
                if ours {
                    replica.mine = replica.mine.saturating_sub(1);
                }
                effects
            }
            "rename" => {
                let Some(name) = record
                    .as_ref()
                    .and_then(|r| DisplayName::parse(&r.name).ok())
                else {
                    return;
                };
                Command::Rename(Rename { name }).apply_to(&mut replica.state, id, now)
            }
            "say" => {
                let effects = Command::Say(Say {
                    room: room.clone(),
                    text: entry.x.clone().unwrap_or_default(),
                })
                .apply_to(&mut replica.state, id, now);
                check_seq(&room, replica, &entry);
                effects
            }
            other => {
                log::debug!("cluster: an entry of unknown kind {other}");
                return;
            }
        };
        let drop_replica = replica.mine == 0;
        // Keep this node's table of its members' rooms in step with what was applied.
        if let Some(local) = self.locals.get_mut(&id) {
            match entry.k.as_str() {
                "join" | "rejoin" => {
                    local.rooms.insert(room.clone());
                }
                "leave" | "kick" => {
                    local.rooms.remove(&room);
                }
                _ => {}
            }
        }
        if drop_replica {
            self.replicas.remove(&room);
        }
        if entry.k == "join" && ours && !self.locals.contains_key(&id) {
            // It disconnected while its join was out: undo the join now.
            let why = self.departed.remove(&id).unwrap_or(LeaveReason::Disconnect);
            self.depart(room.clone(), id, why);
        }
        if reference_matches(&entry, &self.settings.node_id) {
            self.take(&entry);
        }
        self.out.push(Delivery {
            requester: Some(id),
            reference,
            effects,
        });
    }

    fn post_publish(&mut self, room: &RoomName, entry: &Entry, now: Timestamp) {
        let Some(replica) = self.replicas.get_mut(room) else {
            return;
        };
        let text = entry.x.clone().unwrap_or_default();
        match replica.state.publish(room, text, None, now) {
            Ok((_, effects)) => {
                check_seq(room, replica, entry);
                self.out.push(Delivery {
                    requester: None,
                    reference: None,
                    effects,
                });
            }
            Err(refused) => log::error!(
                "cluster: a replica refused a publish: {}",
                refused.message()
            ),
        }
    }

    fn whisper(&mut self, entry: Entry) {
        let from = entry
            .from
            .as_deref()
            .and_then(Record::parse)
            .and_then(|r| r.member());
        let to = entry
            .to
            .as_deref()
            .and_then(Record::parse)
            .and_then(|r| r.member());
        let (Some(from), Some(to)) = (from, to) else {
            return;
        };
        let whisper = Event::Whisper {
            from: from.clone(),
            to: to.clone(),
            text: entry.x.clone().unwrap_or_default(),
            at: entry.at(),
        };
        let mut effects = Effects::new();
        let ours = entry.ask().is_some();
        if ours {
            let Some((_, pending)) = self.take(&entry) else {
                return;
            };
            if to.id == from.id {
                effects.reply(whisper);
            } else if self.locals.contains_key(&to.id) {
                effects.send_both(whisper, Audience::Member(to.id), Audience::Requester);
            } else {
                effects.reply(whisper);
            }
            self.reply_to(pending.member, pending.reference, effects);
        } else {
            effects.send(whisper, Audience::Member(to.id));
            self.out.push(Delivery {
                requester: None,
                reference: None,
                effects,
            });
        }
    }

    /// A page of rooms from node.lua's `rooms`: `name\tcount\trecords` per room.
    fn rooms_page(&self, list: &str, limit: PageLimit) -> RoomsView {
        let mut rooms: Vec<RoomView> = list
            .split('\r')
            .filter(|part| !part.is_empty())
            .filter_map(|part| {
                let mut fields = part.splitn(3, '\t');
                let name = RoomName::parse(fields.next()?).ok()?;
                let count: usize = fields.next()?.parse().ok()?;
                let mut members: Vec<Member> = fields
                    .next()
                    .unwrap_or("")
                    .split('\n')
                    .filter_map(|line| Record::parse(line)?.member())
                    .collect();
                members.sort_by_key(|m| m.id);
                let max = self.settings.rules.joined_members_max;
                let next = (members.len() > max).then(|| members[max - 1].id);
                members.truncate(max);
                Some(RoomView {
                    name,
                    members,
                    member_count: count,
                    next,
                    history: None,
                })
            })
            .collect();
        let next = (rooms.len() > limit.get()).then(|| rooms[limit.get() - 1].name.clone());
        rooms.truncate(limit.get());
        RoomsView { rooms, next }
    }
}

/// The refusal of an ask that Redis did not take.
fn unavailable() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Unavailable,
        "the cluster's store cannot be reached; nothing was done; retry later",
    )
}

fn events_channel(settings: &ClusterSettings) -> String {
    format!("{}:events", settings.prefix)
}

/// The subscriber connection: every room's entries, and this node's own answers.
async fn subscribe(
    client: &redis::Client,
    settings: &ClusterSettings,
) -> redis::RedisResult<redis::aio::PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(events_channel(settings)).await?;
    pubsub
        .subscribe(format!("{}:node:{}", settings.prefix, settings.node_id))
        .await?;
    Ok(pubsub.into_on_message())
}

fn reference_matches(entry: &Entry, me: &str) -> bool {
    entry.o.as_deref() == Some(me) && entry.a.is_some()
}

/// The replica's message must have the seq the script gave it: every node runs the same
/// rules on the same entries, so a difference is a bug, and is logged as one.
fn check_seq(room: &RoomName, replica: &mut Replica, entry: &Entry) {
    let ours = replica.state.position(room).map(|(_, seq)| seq);
    if ours != entry.s {
        log::error!(
            "cluster: room {room}: the replica is at seq {ours:?}, Redis at {:?}",
            entry.s
        );
    }
}

fn leave_reason(why: Option<&str>) -> LeaveReason {
    match why {
        Some("leave") => LeaveReason::Leave,
        Some("timeout") => LeaveReason::Timeout,
        Some("slow") => LeaveReason::Slow,
        Some("kicked") => LeaveReason::Kicked,
        Some("node_lost") => LeaveReason::NodeLost,
        _ => LeaveReason::Disconnect,
    }
}

fn snapshot_of(entry: &Entry) -> Option<RoomSnapshot> {
    let room = entry.room()?;
    let mut members: Vec<Member> = entry::lines(&entry.members)
        .filter_map(|line| Record::parse(line)?.member())
        .collect();
    members.sort_by_key(|m| m.id);
    let history = entry::lines(&entry.hist)
        .filter_map(|line| entry::message(&room, line))
        .collect();
    Some(RoomSnapshot {
        room,
        epoch: Arc::from(entry.e.as_deref()?),
        seq: entry.s.unwrap_or(0),
        members,
        history,
    })
}

fn id_block(scripts: &Scripts, settings: &ClusterSettings, me: &str) -> redis::Cmd {
    let floor = (Timestamp::now().millis().max(0) as u64).saturating_mul(1000);
    node_command(
        scripts,
        &settings.prefix,
        me,
        "ids",
        &[&super::ids::BLOCK.to_string(), &floor.to_string()],
    )
}

async fn in_flight(batch: &mut Option<Batch>) -> Answered {
    match batch {
        Some(batch) => batch.await,
        None => std::future::pending().await,
    }
}

async fn next_message(subscriber: &mut Option<redis::aio::PubSubStream>) -> Option<redis::Msg> {
    match subscriber {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

fn is_late(value: &Value) -> bool {
    strings(value).first().is_some_and(|s| s == "late")
}

/// room.lua's answer to a publish: `ok item epoch`, `first item epoch`, or `refused code`.
fn published(
    room: &RoomName,
    text_sent: &str,
    value: &Value,
    rules: &Settings,
) -> Result<(Arc<ChatMessage>, Effects), PublishRefused> {
    let parts = strings(value);
    match parts.first().map(String::as_str) {
        Some("ok") | Some("first") => {
            let message = parts
                .get(1)
                .and_then(|item| entry::message(room, item))
                .unwrap_or_else(|| {
                    Arc::new(ChatMessage {
                        room: room.clone(),
                        from: Sender::Server,
                        text: text_sent.into(),
                        at: Timestamp::now(),
                        seq: 0,
                    })
                });
            Ok((message, Effects::new()))
        }
        Some("refused") if parts.get(1).map(String::as_str) == Some("too_many_keys") => {
            Err(PublishRefused::TooManyKeys {
                max: rules.idempotency_keys_max,
            })
        }
        _ => Err(PublishRefused::RoomsFull(RoomsFull {
            max: rules.max_rooms_total,
        })),
    }
}
