//! `fanout` mode: R rooms x M members; in each room the first P members also publish,
//! flat out with W of their own messages in flight (a publisher counts its own copy of
//! each `message` coming back) or at `--rate` messages per second.
//!
//! Hub protocol: members connect to `/ws?name=..&room=..` and, before any load starts,
//! read their `joined` and every presence event that follows, so the measurement sees
//! only `message` frames. Raw protocol (the broadcast peer: no JSON, no rooms, every
//! text goes to every connection, the sender's included): one room, members only count.
//!
//! Several `--url`s (the nodes of a cluster, or relay peers): each room's members are
//! dealt round-robin over them by member number; with `--publish-on I` the publishers
//! all connect to URL I and the other members are dealt over the other URLs (so
//! `--url A --url B --publish-on 0` is "publisher on A, everyone else on B"). With
//! several `--server-pid`s (the nodes, and Redis), server CPU is their sum.
//!
//! Checks: every member gets every message of its room exactly once, each publisher's
//! in the order sent, and (hub) with `seq` running 1, 2, 3... without a gap. Reports
//! deliveries/s, end-to-end latency (the publisher's send time travels in the text;
//! publisher and members share one clock) and server CPU per delivery.

use std::{
    pin::pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Args;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::{
    sync::Semaphore,
    task::JoinSet,
    time::{interval, sleep_until, Interval},
};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{
    cli::{Common, Measure, Protocol},
    client::{self, Target, Ws, REPLY_TIMEOUT},
    echo::expect_welcome,
    hub,
    probe::ServerProbe,
    report::{self, ErrorLog, Summary, Window},
};

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 128;
/// After the deadline, how long members may take to receive the last messages.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a member looks at the room's totals once publishing has stopped.
const FINISH_POLL: Duration = Duration::from_millis(10);
/// Frames handled in one go before the task yields to its timers.
const BATCH: usize = 256;

#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// hub: `/ws` with rooms and JSON; raw: every text goes to every connection (one room).
    #[arg(long, value_enum, default_value_t = Protocol::Hub)]
    pub protocol: Protocol,
    /// Path to connect to [default: /ws].
    #[arg(long)]
    pub path: Option<String>,
    /// Rooms.
    #[arg(long, short = 'r', default_value_t = 1)]
    pub rooms: usize,
    /// Members per room, publishers included.
    #[arg(long, short = 'm', default_value_t = 100)]
    pub members: usize,
    /// Publishers per room (the first members of each room).
    #[arg(long, short = 'p', default_value_t = 1)]
    pub publishers: usize,
    /// Flat out: each publisher's own messages in flight.
    #[arg(long, short = 'w', default_value_t = 16)]
    pub window: usize,
    /// Instead of flat out: messages per second per publisher.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Bytes of text per message.
    #[arg(long, short = 's', default_value_t = 64)]
    pub size: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop each publisher after this many messages (keeps under a rate limit).
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// With several `--url`s: the publishers connect to this one (0 = the first), the
    /// other members to the others, round-robin [default: everyone round-robin].
    #[arg(long)]
    pub publish_on: Option<usize>,
}

impl FanoutArgs {
    /// Which of `urls` URLs member `member` of a room connects to.
    fn url_of(&self, member: usize, urls: usize) -> usize {
        match self.publish_on {
            None => member % urls,
            Some(on) if member < self.publishers || urls == 1 => on,
            // The others skip URL `on`: take the n-th of the remaining ones.
            Some(on) => {
                let other = (member - self.publishers) % (urls - 1);
                if other >= on {
                    other + 1
                } else {
                    other
                }
            }
        }
    }
}

/// What every member task needs to know.
#[derive(Debug)]
struct Plan {
    protocol: Protocol,
    rooms: Vec<String>,
    publishers: usize,
    window: u64,
    rate: Option<f64>,
    size: usize,
    max_messages: Option<u64>,
}

/// How many messages each publisher of one room sent, known once all are done.
#[derive(Debug)]
struct RoomTally {
    sent: Vec<AtomicU64>,
    done: AtomicUsize,
}

impl RoomTally {
    fn new(publishers: usize) -> Self {
        Self {
            sent: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicUsize::new(0),
        }
    }

    fn publisher_done(&self, publisher: usize, sent: u64) {
        self.sent[publisher].store(sent, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
    }

    /// Messages posted in the room, once every publisher has stopped and seen its own.
    fn total(&self) -> Option<u64> {
        (self.done.load(Ordering::SeqCst) == self.sent.len()).then(|| {
            self.sent
                .iter()
                .map(|sent| sent.load(Ordering::SeqCst))
                .sum()
        })
    }
}

/// One member's result.
struct Tally {
    /// Deliveries to this member inside the window, and in all.
    measured: u64,
    received: u64,
    /// As a publisher: messages sent inside the window, and in all.
    sent_measured: u64,
    sent: u64,
    latency: Histogram<u32>,
}

impl Measure for FanoutArgs {
    const NAME: &'static str = "fanout";

    fn common(&self) -> &Common {
        &self.common
    }

    /// The tiny version for `--smoke`.
    fn smoke(mut self) -> Self {
        self.rooms = match self.protocol {
            Protocol::Hub => self.rooms.clamp(1, 2),
            Protocol::Raw => 1,
        };
        self.members = self.members.min(3);
        self.publishers = self.publishers.clamp(1, self.members);
        self.window = self.window.min(4);
        self.rate = self.rate.map(|rate| rate.min(50.0));
        self.size = self.size.min(64);
        self.duration = self.duration.min(1.0);
        self.warmup = 0.0;
        self.max_messages = Some(self.max_messages.unwrap_or(100).min(100));
        self
    }

    async fn measure(&self) -> Result<Summary, String> {
        let args = self;
        if args.protocol == Protocol::Raw && args.rooms != 1 {
            return Err("--protocol raw has no rooms: use --rooms 1".into());
        }
        if args.members == 0 || args.publishers == 0 || args.publishers > args.members {
            return Err("need 1 <= --publishers <= --members".into());
        }
        let targets = args
            .common
            .url
            .iter()
            .map(|url| Target::parse(url))
            .collect::<Result<Vec<_>, _>>()?;
        if args.publish_on.is_some_and(|on| on >= targets.len()) {
            return Err(format!(
                "--publish-on counts from 0 and there are {} --url(s)",
                targets.len()
            ));
        }
        let probes = args
            .common
            .server_pid
            .iter()
            .map(|pid| ServerProbe::new(*pid))
            .collect::<Result<Vec<_>, _>>()?;
        let errors = Arc::new(ErrorLog::default());
        let plan = Arc::new(Plan {
            protocol: args.protocol,
            rooms: {
                let nonce = run_nonce();
                (0..args.rooms)
                    .map(|room| format!("bench-{nonce}-{room}"))
                    .collect()
            },
            publishers: args.publishers,
            window: args.window.max(1) as u64,
            rate: args.rate.filter(|rate| *rate > 0.0),
            size: args.size,
            max_messages: args.max_messages,
        });
        let path = args.path.as_deref().unwrap_or("/ws");

        let assignment: Vec<usize> = (0..args.members)
            .map(|member| args.url_of(member, targets.len()))
            .collect();
        let members = open_members(&targets, &assignment, path, &plan).await?;
        let tallies: Vec<Arc<RoomTally>> = (0..args.rooms)
            .map(|_| Arc::new(RoomTally::new(args.publishers)))
            .collect();
        let window = Window::starting_now(args.warmup, args.duration);
        let mut tasks = JoinSet::new();
        for ((room, member), ws) in members {
            let member_task = Member {
                room,
                member,
                plan: plan.clone(),
                tally: tallies[room].clone(),
                window,
                errors: errors.clone(),
            };
            tasks.spawn(member_task.drive(ws));
        }
        let group_cpu = window.sample_cpu_of(&probes, &errors).await;
        let cpu = group_cpu.total;
        let mut latency = report::latency_histogram();
        let (mut measured, mut received, mut sent_measured, mut sent) = (0, 0, 0, 0);
        while let Some(joined) = tasks.join_next().await {
            let tally = joined.map_err(|err| format!("a member task failed: {err}"))?;
            measured += tally.measured;
            received += tally.received;
            sent_measured += tally.sent_measured;
            sent += tally.sent;
            report::merge(&mut latency, &tally.latency);
        }

        let seconds = window.seconds();
        let [p50, p99, _] = report::quantiles(&latency);
        let mut summary = Summary::new("fanout", args.common.label.as_deref());
        summary
            .field("protocol", args.protocol.name())
            .field("rooms", args.rooms)
            .field("members", args.members)
            .field("publishers", args.publishers * args.rooms)
            .field("window", plan.rate.is_none().then_some(plan.window))
            .field("rate_per_publisher", plan.rate)
            .field("size", args.size)
            .field("duration_s", seconds)
            .field("messages", sent_measured)
            .field("msgs_per_s", sent_measured as f64 / seconds)
            .field("deliveries", measured)
            .field("deliveries_per_s", measured as f64 / seconds)
            .field("messages_total", sent)
            .field("deliveries_total", received)
            .latency(&latency)
            .cpu(cpu, "delivery", measured);
        if targets.len() > 1 {
            let per_url: Vec<usize> = (0..targets.len())
                .map(|at| assignment.iter().filter(|url| **url == at).count())
                .collect();
            summary
                .field("urls", targets.len())
                .field("members_per_url", per_url)
                .field("publish_on", args.publish_on);
        }
        if probes.len() > 1 {
            // Each process's share (nodes, then Redis, as given), rounded like the rest.
            let each: Vec<Option<f64>> = group_cpu
                .each
                .iter()
                .map(|usage| usage.map(|usage| (usage.percent() * 10.0).round() / 10.0))
                .collect();
            summary.field("server_cpu_pct_each", each);
        }
        let load = match plan.rate {
            Some(rate) => format!("{rate:.0}/s per publisher"),
            None => format!("{} in flight", plan.window),
        };
        summary.human(format!(
        "fanout {} {}x{} ({} publisher(s)/room, {load}): {:.0} deliveries/s ({:.0} msgs/s), latency p50 {} p99 {}{}",
        args.protocol.name(),
        args.rooms,
        args.members,
        args.publishers,
        measured as f64 / seconds,
        sent_measured as f64 / seconds,
        report::micros(p50),
        report::micros(p99),
        report::cpu_text(cpu, "delivery", measured),
    ));
        Ok(summary.finish(&errors))
    }
}

/// Part of a room name no earlier run on the same server has used.
pub fn run_nonce() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:x}{:x}",
        std::process::id(),
        since_epoch.as_millis() & 0xff_ffff
    )
}

/// Connects every member; for the hub, waits until each has read its `joined` and every
/// presence event the joins of the others caused (`member_joined`, or in a big room
/// `member_count`), so the measurement starts on quiet sockets.
///
/// Member `m` of each room connects to `targets[assignment[m]]`.
async fn open_members(
    targets: &[Target],
    assignment: &[usize],
    path: &str,
    plan: &Arc<Plan>,
) -> Result<Vec<((usize, usize), Ws)>, String> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for (room, room_name) in plan.rooms.iter().enumerate() {
        for (member, at) in assignment.iter().enumerate() {
            let target = &targets[*at];
            let url = match plan.protocol {
                Protocol::Hub => {
                    target.ws(&format!("{path}?name=r{room}m{member}&room={room_name}"))
                }
                Protocol::Raw => target.ws(path),
            };
            let (gate, plan) = (gate.clone(), plan.clone());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let mut ws = client::connect(&url).await?;
                if plan.protocol == Protocol::Hub {
                    expect_welcome(&mut ws).await?;
                    expect_joined(&mut ws, &plan.rooms[room]).await?;
                }
                Ok::<_, String>(((room, member), ws))
            });
        }
    }
    let mut connected = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        connected.push(joined.map_err(|err| format!("a connect task failed: {err}"))??);
    }
    if plan.protocol == Protocol::Raw {
        connected.sort_by_key(|(key, _)| *key);
        return Ok(connected);
    }
    // Everyone has joined: a round trip now comes back behind every presence event the
    // joins caused (the hub answers each connection in order), however many there are.
    for (key, mut ws) in connected {
        tasks.spawn(async move {
            client::send_text(&mut ws, SETTLE.to_owned()).await?;
            loop {
                let text = client::next_text(&mut ws, REPLY_TIMEOUT).await?;
                let frame = hub::parse(&text)?;
                if frame.reference.as_deref() == Some(SETTLE_REF) {
                    break;
                }
                if !(frame.is("member_joined") || frame.is("member_count")) {
                    return Err(format!(
                        "expected presence before the settle reply, got {}",
                        client::shorten(&text)
                    ));
                }
            }
            Ok((key, ws))
        });
    }
    let mut settled = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        settled.push(joined.map_err(|err| format!("a connect task failed: {err}"))??);
    }
    settled.sort_by_key(|(key, _)| *key);
    Ok(settled)
}

/// The round trip that ends the connect phase ([`open_members`]).
const SETTLE_REF: &str = "settle";
const SETTLE: &str = r#"{"type":"rooms","limit":1,"ref":"settle"}"#;

/// Reads up to the `joined` for `room`.
async fn expect_joined(ws: &mut Ws, room: &str) -> Result<(), String> {
    let text = client::next_text(ws, REPLY_TIMEOUT).await?;
    let frame = hub::parse(&text)?;
    if frame.is("joined") && frame.room.as_deref() == Some(room) {
        Ok(())
    } else {
        Err(format!(
            "expected joined {room}, got {}",
            client::shorten(&text)
        ))
    }
}

/// The text of message `n` of publisher `publisher` in `room`: who, which, when sent
/// (ns on the run's clock), padded to `size` bytes.
fn message_text(room: usize, publisher: usize, n: u64, sent_ns: u64, size: usize) -> String {
    let mut text = format!("p{room}.{publisher}:{n}:{sent_ns}:");
    let padding = size.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', padding));
    text
}

/// `(room, publisher, n, sent_ns)` back from a message text; by hand, as this runs for
/// every delivery.
fn parse_message_text(text: &str) -> Option<(usize, usize, u64, u64)> {
    let rest = text.as_bytes().strip_prefix(b"p")?;
    let (room, rest) = take_number(rest, b'.')?;
    let (publisher, rest) = take_number(rest, b':')?;
    let (n, rest) = take_number(rest, b':')?;
    let (sent_ns, _) = take_number(rest, b':')?;
    Some((room as usize, publisher as usize, n, sent_ns))
}

/// The decimal number at the start of `bytes`, ended by `end`, and what follows `end`.
fn take_number(bytes: &[u8], end: u8) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if byte == end && at > 0 {
            return Some((value, &bytes[at + 1..]));
        }
        let digit = byte.checked_sub(b'0').filter(|digit| *digit < 10)?;
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    None
}

/// One member connection (and publisher, if it is among the first P of its room).
struct Member {
    room: usize,
    member: usize,
    plan: Arc<Plan>,
    tally: Arc<RoomTally>,
    window: Window,
    errors: Arc<ErrorLog>,
}

/// What a member has seen so far.
struct Seen {
    /// Next `n` expected from each publisher of the room.
    next_n: Vec<u64>,
    /// Next `seq` expected (hub).
    next_seq: u64,
    /// This member's own messages back (as a publisher).
    own_back: u64,
    tally: Tally,
}

impl Member {
    async fn drive(self, mut ws: Ws) -> Tally {
        let mut seen = Seen {
            next_n: vec![0; self.plan.publishers],
            next_seq: 1,
            own_back: 0,
            tally: Tally {
                measured: 0,
                received: 0,
                sent_measured: 0,
                sent: 0,
                latency: report::compact_latency_histogram(),
            },
        };
        let outcome = self.run(&mut ws, &mut seen).await;
        match outcome {
            Ok(()) => {
                // Others may still be leaving (member_left): not an error here.
                if let Err(why) = client::close(ws, false).await {
                    self.errors.record(format!("{}: {why}", self.who()));
                }
            }
            Err(why) => self.errors.record(format!("{}: {why}", self.who())),
        }
        seen.tally
    }

    fn who(&self) -> String {
        format!("room {} member {}", self.room, self.member)
    }

    fn publisher(&self) -> Option<usize> {
        (self.member < self.plan.publishers).then_some(self.member)
    }

    fn may_send(&self, sent: u64, now: Instant) -> bool {
        now < self.window.deadline && self.plan.max_messages.is_none_or(|max| sent < max)
    }

    async fn run(&self, ws: &mut Ws, seen: &mut Seen) -> Result<(), String> {
        let publisher = self.publisher();
        let mut sending = publisher.is_some();
        let mut published = publisher.is_none();
        let mut ticker: Option<Interval> = self.plan.rate.filter(|_| sending).map(|rate| {
            // Burst: a late tick is made up at once, so the offered rate holds.
            interval(Duration::from_secs_f64(1.0 / rate))
        });
        let give_up = self.window.deadline + DRAIN_TIMEOUT;
        let mut poll = pin!(sleep_until(self.window.deadline.into()));
        loop {
            let now = Instant::now();
            if let (true, Some(publisher)) = (sending, publisher) {
                if !self.may_send(seen.tally.sent, now) {
                    sending = false;
                } else if ticker.is_none() {
                    let mut fed = false;
                    while seen.tally.sent - seen.own_back < self.plan.window
                        && self.may_send(seen.tally.sent, now)
                    {
                        self.feed(ws, publisher, seen, now).await?;
                        fed = true;
                    }
                    if fed {
                        ws.flush().await.map_err(|err| format!("sending: {err}"))?;
                    }
                }
            }
            if let (false, false, Some(publisher)) = (sending, published, publisher) {
                if seen.own_back == seen.tally.sent {
                    self.tally.publisher_done(publisher, seen.tally.sent);
                    published = true;
                }
            }
            if published {
                if let Some(total) = self.tally.total() {
                    if seen.tally.received == total {
                        return self.finish(seen, total);
                    }
                }
            }
            tokio::select! {
                biased;
                item = ws.next() => {
                    // One clock read for the batch: what is already buffered arrived with it.
                    let received_at = Instant::now();
                    self.take(item, seen, received_at)?;
                    for _ in 0..BATCH {
                        match ws.next().now_or_never() {
                            Some(item) => self.take(item, seen, received_at)?,
                            None => break,
                        }
                    }
                }
                _ = tick(&mut ticker), if sending => {
                    let now = Instant::now();
                    if let (true, Some(publisher)) = (self.may_send(seen.tally.sent, now), publisher) {
                        self.feed(ws, publisher, seen, now).await?;
                        ws.flush().await.map_err(|err| format!("sending: {err}"))?;
                    }
                }
                _ = poll.as_mut() => {
                    let now = Instant::now();
                    if now >= give_up {
                        return Err(self.missing(seen));
                    }
                    poll.as_mut().reset((now + FINISH_POLL).into());
                }
            }
        }
    }

    /// Queues this publisher's next message (sent on the next flush).
    async fn feed(
        &self,
        ws: &mut Ws,
        publisher: usize,
        seen: &mut Seen,
        now: Instant,
    ) -> Result<(), String> {
        let text = message_text(
            self.room,
            publisher,
            seen.tally.sent,
            self.window.stamp(Instant::now()),
            self.plan.size,
        );
        let frame = match self.plan.protocol {
            Protocol::Hub => hub::say(&self.plan.rooms[self.room], &text),
            Protocol::Raw => text,
        };
        ws.feed(Message::Text(frame))
            .await
            .map_err(|err| format!("sending: {err}"))?;
        seen.tally.sent += 1;
        if self.window.counts(now) {
            seen.tally.sent_measured += 1;
        }
        Ok(())
    }

    /// Checks and counts one frame.
    fn take(
        &self,
        item: Option<Result<Message, tungstenite::Error>>,
        seen: &mut Seen,
        received_at: Instant,
    ) -> Result<(), String> {
        let Some(text) = client::classify(item)? else {
            return Ok(());
        };
        let body = match self.plan.protocol {
            Protocol::Raw => text.as_str(),
            Protocol::Hub => {
                let message = match hub::quick_message(&text) {
                    Some(message) => message,
                    None => {
                        let frame = hub::parse(&text)?;
                        // Presence goes on during a run (a big room's count, at most
                        // once a second): not a delivery.
                        if frame.is("member_joined")
                            || frame.is("member_left")
                            || frame.is("member_count")
                        {
                            return Ok(());
                        }
                        match hub::message_of(&frame) {
                            Some(message) => {
                                self.check_seq(message, seen)?;
                                return self.count(message.text, seen, received_at);
                            }
                            None => {
                                return Err(format!("unexpected frame {}", client::shorten(&text)))
                            }
                        }
                    }
                };
                self.check_seq(message, seen)?;
                message.text
            }
        };
        self.count(body, seen, received_at)
    }

    fn check_seq(&self, message: hub::MessageView<'_>, seen: &mut Seen) -> Result<(), String> {
        if message.room != self.plan.rooms[self.room] {
            return Err(format!(
                "a message for room {} in room {}",
                message.room, self.plan.rooms[self.room]
            ));
        }
        if message.seq != seen.next_seq {
            return Err(format!(
                "seq {} where {} was due",
                message.seq, seen.next_seq
            ));
        }
        seen.next_seq += 1;
        Ok(())
    }

    fn count(&self, text: &str, seen: &mut Seen, received_at: Instant) -> Result<(), String> {
        let Some((room, publisher, n, sent_ns)) = parse_message_text(text) else {
            return Err(format!(
                "a text this run did not send: {}",
                client::shorten(text)
            ));
        };
        if room != self.room || publisher >= self.plan.publishers {
            return Err(format!(
                "a message from p{room}.{publisher}, not of this room"
            ));
        }
        if n != seen.next_n[publisher] {
            return Err(format!(
                "message {n} of p{room}.{publisher} where {} was due (lost, repeated or reordered)",
                seen.next_n[publisher]
            ));
        }
        seen.next_n[publisher] += 1;
        seen.tally.received += 1;
        if Some(publisher) == self.publisher() {
            seen.own_back += 1;
        }
        if self.window.counts(received_at) {
            seen.tally.measured += 1;
            report::record_latency(
                &mut seen.tally.latency,
                self.window.since_stamp(sent_ns, received_at),
            );
        }
        Ok(())
    }

    /// Every message of the room arrived: one last check per publisher.
    fn finish(&self, seen: &Seen, total: u64) -> Result<(), String> {
        for (publisher, next) in seen.next_n.iter().enumerate() {
            let sent = self.tally.sent[publisher].load(Ordering::SeqCst);
            if *next != sent {
                return Err(format!(
                    "{next} of the {sent} messages of publisher {publisher}"
                ));
            }
        }
        if self.plan.protocol == Protocol::Hub && seen.next_seq != total + 1 {
            return Err(format!(
                "last seq {} of {total} messages",
                seen.next_seq - 1
            ));
        }
        Ok(())
    }

    fn missing(&self, seen: &Seen) -> String {
        match self.tally.total() {
            Some(total) => format!(
                "got {} of the room's {total} messages within {DRAIN_TIMEOUT:?} of the end",
                seen.tally.received
            ),
            None => format!(
                "publishers never saw all their own messages back (this member: {} sent, {} back)",
                seen.tally.sent, seen.own_back
            ),
        }
    }
}

/// The next tick, or never without a ticker (flat-out publishers and plain members).
async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_texts_round_trip() {
        let text = message_text(3, 1, 42, 123_456, 40);
        assert_eq!(text.len(), 40);
        assert_eq!(parse_message_text(&text), Some((3, 1, 42, 123_456)));
        assert_eq!(parse_message_text("hello"), None);
        assert_eq!(parse_message_text("p1.:2:3:"), None);
        assert_eq!(parse_message_text("p1.2:3:4"), None);
    }

    #[test]
    fn a_room_total_waits_for_every_publisher() {
        let tally = RoomTally::new(2);
        tally.publisher_done(0, 5);
        assert_eq!(tally.total(), None);
        tally.publisher_done(1, 7);
        assert_eq!(tally.total(), Some(12));
    }

    fn args(urls: usize, publishers: usize, publish_on: Option<usize>) -> FanoutArgs {
        let mut argv = vec!["fanout".to_string()];
        for port in 0..urls {
            argv.extend(["--url".into(), format!("ws://127.0.0.1:{}", port + 1)]);
        }
        argv.extend(["--publishers".into(), publishers.to_string()]);
        if let Some(on) = publish_on {
            argv.extend(["--publish-on".into(), on.to_string()]);
        }
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: FanoutArgs,
        }
        <Only as clap::Parser>::parse_from(argv).args
    }

    #[test]
    fn members_are_dealt_round_robin_over_the_urls() {
        let two = args(2, 1, None);
        let dealt: Vec<usize> = (0..6).map(|member| two.url_of(member, 2)).collect();
        assert_eq!(dealt, [0, 1, 0, 1, 0, 1]);
        let one = args(1, 1, Some(0));
        assert_eq!(one.url_of(5, 1), 0);
    }

    #[test]
    fn publishers_on_one_url_leave_the_others_to_the_rest() {
        let cross = args(2, 1, Some(0));
        let dealt: Vec<usize> = (0..5).map(|member| cross.url_of(member, 2)).collect();
        assert_eq!(dealt, [0, 1, 1, 1, 1]);
        let three = args(3, 2, Some(1));
        let dealt: Vec<usize> = (0..6).map(|member| three.url_of(member, 3)).collect();
        assert_eq!(dealt, [1, 1, 0, 2, 0, 2]);
    }

    #[test]
    fn room_names_are_valid() {
        let name = format!("bench-{}-12", run_nonce());
        assert!(name.len() <= 64);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
