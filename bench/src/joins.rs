//! `joins` mode: a join storm, then a leave storm, in one room. `--members` N connections
//! are opened first (in no room, a bounded number of handshakes at a time); then all send
//! `join` at once and read everything they are sent; once every member has its `joined`
//! and the server has gone quiet, all leave at once (`leave`, or closing the connection).
//!
//! This is the load of the issue "Big rooms": filling a room used to cost the square of
//! its size (each joiner got the whole member list, each member a `member_joined` per
//! join). Reported per storm: server CPU per join and per leave (utime + stime from
//! `/proc`, from the first command sent until the storm's last frame arrived), the time
//! until the last member had its `joined` (its `left`), the frames and bytes all members
//! received, and the server's peak RSS (VmHWM).
//!
//! Checks: no member is closed or reset; each gets exactly one `joined`, and the counts in
//! them (`member_count`, or from a server without it the length of `members`) are 1..=N,
//! once each, as the server applies joins one at a time; when the join storm is over every
//! member's idea of the room's size (its `joined`, +1 per `member_joined`, -1 per
//! `member_left`, or the latest `member_count`) is N; each gets exactly one `left` and
//! nothing for the room after it; afterwards the room has no members.
//!
//! The members are one task each on the current-thread runtime `main` gives this mode:
//! the load generator has one core, and a storm wakes every socket at once.

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};
use futures_util::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::{
    sync::{watch, Semaphore},
    task::{JoinHandle, JoinSet},
    time::MissedTickBehavior,
};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{
    cli::{Common, Measure},
    client::{self, Target, Ws},
    echo::expect_welcome,
    fanout::run_nonce,
    hub,
    idle::raise_open_files,
    probe::{CpuUsage, ServerProbe},
    report::{self, Cpu, CpuProbes, CpuSamples, ErrorLog, Summary},
};

/// How often CPU times are sampled while a round runs: the tick of `/proc`'s clock.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How often the coordinator looks whether a storm is over.
const POLL: Duration = Duration::from_millis(10);
/// Frames a member handles in one go before it yields to the others.
const BATCH: usize = 256;
/// File descriptors the load generator needs besides its connections.
const SPARE_FDS: u64 = 64;

#[derive(Debug, Clone, Args)]
pub struct JoinsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Members: connections that all join one room.
    #[arg(long, short = 'm', default_value_t = 1000)]
    pub members: usize,
    /// Handshakes in progress at once while connecting.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How the members leave: each sends `leave` (over when all have their `left`), or
    /// each closes its connection (over when GET /api/stats shows no members).
    #[arg(long, value_enum, default_value_t = LeaveBy::Leave)]
    pub leave_by: LeaveBy,
    /// Storm pairs in a row, each with fresh connections and a fresh room; CPU time comes
    /// in 10 ms ticks, so small rooms need several for a precise figure per join.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// The join storm is over when every member has its `joined` and no frame came for
    /// this long (ms): longer than MEMBER_COUNT_INTERVAL_MS, so the last `member_count`
    /// is counted.
    #[arg(long, default_value_t = 2500)]
    pub quiet_ms: u64,
    /// Seconds each storm may take; members still waiting then count as errors.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LeaveBy {
    /// Send `leave` and read up to its `left`; the connections are closed afterwards.
    Leave,
    /// Close the connection (the server processes a disconnect).
    Close,
}

impl LeaveBy {
    fn name(self) -> &'static str {
        match self {
            LeaveBy::Leave => "leave",
            LeaveBy::Close => "close",
        }
    }
}

impl Measure for JoinsArgs {
    const NAME: &'static str = "joins";

    fn common(&self) -> &Common {
        &self.common
    }

    /// Past the server's default PRESENCE_EVENTS_MAX (200), so both ways of telling a
    /// room about its members run.
    fn smoke(mut self) -> Self {
        self.members = self.members.min(250);
        self.concurrency = self.concurrency.min(32);
        self.rounds = 1;
        self.timeout = self.timeout.min(60.0);
        self
    }

    async fn measure(&self) -> Result<Summary, String> {
        if self.members == 0 || self.rounds == 0 {
            return Err("need --members and --rounds of at least 1".into());
        }
        let target = Target::parse(self.common.single_url()?)?;
        let server = self
            .common
            .single_server_pid()?
            .map(ServerProbe::new)
            .transpose()?;
        raise_open_files(self.members as u64 + SPARE_FDS)?;
        let probes = CpuProbes::new(server);
        let errors = Arc::new(ErrorLog::default());
        let nonce = run_nonce();
        let mut outcomes = Vec::new();
        for round in 0..self.rounds {
            let room = format!("bench-{nonce}-{round}");
            outcomes.push(self.round(&target, probes, room, &errors).await?);
        }
        Ok(self.summarise(&outcomes).finish(&errors))
    }
}

impl JoinsArgs {
    /// One join storm and one leave storm, with connections of their own.
    async fn round(
        &self,
        target: &Target,
        probes: CpuProbes,
        room: String,
        errors: &Arc<ErrorLog>,
    ) -> Result<Outcome, String> {
        let members = self.members;
        let timeout = Duration::from_secs_f64(self.timeout.max(1.0));
        let sockets = connect_all(target, members, self.concurrency).await?;
        let state = Arc::new(RoundState::new(room.clone(), members, errors.clone()));
        let (phase, phase_rx) = watch::channel(Phase::Connected);
        let mut tasks = JoinSet::new();
        for (index, ws) in sockets.into_iter().enumerate() {
            let member = Member {
                index,
                state: state.clone(),
                leave_by: self.leave_by,
            };
            tasks.spawn(member.drive(ws, phase_rx.clone()));
        }
        drop(phase_rx);
        let server = probes.server();
        let rss_connected = server.and_then(|probe| probe.rss_kib().ok());
        let timeline = Timeline::start(probes);

        // The join storm.
        let delivered_before = frames_delivered(target, errors).await;
        let (join_from, join_start) = (probes.sample(None), Instant::now());
        phase.send_replace(Phase::Joining);
        let quiet = Duration::from_millis(self.quiet_ms);
        let all_joined = || state.joined() + state.closed() >= members;
        if !state.wait(join_start + timeout, quiet, all_joined).await {
            errors.record(format!(
                "{} of {members} members had no joined after {timeout:?}",
                members.saturating_sub(state.joined() + state.closed())
            ));
        }
        let join_end = state.last_frame_at().max(state.last_joined_at());
        let join_cpu = probes.usage(join_from, timeline.at(join_end));
        let peak_rss = server.and_then(|probe| probe.peak_rss_kib().ok());
        let delivered_joining = frames_delivered(target, errors).await;

        // The leave storm.
        state.storm.store(LEAVE_STORM, Ordering::SeqCst);
        let (leave_from, leave_start) = (probes.sample(None), Instant::now());
        phase.send_replace(Phase::Leaving);
        let all_left = || state.left() + state.closed() >= members;
        if !state
            .wait(leave_start + timeout, Duration::ZERO, all_left)
            .await
        {
            errors.record(format!(
                "{} of {members} members had not left after {timeout:?}",
                members.saturating_sub(state.left() + state.closed())
            ));
        }
        let leave_end = match self.leave_by {
            LeaveBy::Leave => state.last_frame_at().max(state.last_left_at()),
            // Closed on our side; gone once the hub has processed every disconnect.
            LeaveBy::Close => no_members_left(target, leave_start + timeout, errors).await,
        };
        let leave_cpu = probes.usage(leave_from, timeline.at(leave_end));
        timeline.stop();
        let delivered_leaving = frames_delivered(target, errors).await;
        room_is_empty(target, &room, errors).await;

        phase.send_replace(Phase::Done);
        let mut tally = Tally::default();
        let mut counts = Vec::with_capacity(members);
        while let Some(done) = tasks.join_next().await {
            let member = done.map_err(|err| format!("a member task failed: {err}"))?;
            counts.extend(member.joined_count);
            tally.add(&member);
        }
        if counts.len() == members {
            if let Err(why) = check_joined_counts(&mut counts) {
                errors.record(why);
            }
        }
        let delta = |from: Option<u64>, to: Option<u64>| Some(to?.saturating_sub(from?));
        Ok(Outcome {
            join_cpu,
            leave_cpu,
            last_joined: state.last_joined_at().saturating_duration_since(join_start),
            join_quiet: join_end.saturating_duration_since(join_start),
            last_left: leave_end.saturating_duration_since(leave_start),
            tally,
            delivered: [
                delta(delivered_before, delivered_joining),
                delta(delivered_joining, delivered_leaving),
            ],
            rss_connected,
            peak_rss,
            closed: state.closed(),
        })
    }

    /// The rounds' figures: CPU summed (so per join is over every join of the run),
    /// frames per round, times as the median round's (and the slowest).
    fn summarise(&self, outcomes: &[Outcome]) -> Summary {
        let rounds = outcomes.len() as u64;
        let joins = self.members as u64 * rounds;
        let join_cpu = sum_cpu(outcomes.iter().map(|outcome| outcome.join_cpu));
        let leave_cpu = sum_cpu(outcomes.iter().map(|outcome| outcome.leave_cpu));
        let mut tally = Tally::default();
        outcomes
            .iter()
            .for_each(|outcome| tally.add(&outcome.tally));
        let per_round = |total: u64| (total + rounds / 2) / rounds;
        let [last_joined, last_joined_max] = median_max(outcomes, |o| o.last_joined);
        let [join_quiet, _] = median_max(outcomes, |o| o.join_quiet);
        let [last_left, last_left_max] = median_max(outcomes, |o| o.last_left);
        let delivered = |storm: usize| -> Option<u64> {
            let total: Option<u64> = outcomes.iter().map(|o| o.delivered[storm]).sum();
            total.map(per_round)
        };
        let peak_rss = outcomes.iter().filter_map(|o| o.peak_rss).max();
        let rss_connected = outcomes.iter().filter_map(|o| o.rss_connected).max();
        let closed: usize = outcomes.iter().map(|o| o.closed).sum();
        let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
        let cpu_ms = |cpu: Cpu| {
            cpu.server
                .map(|usage| usage.cpu_seconds * 1000.0 / rounds as f64)
        };
        let pct = |usage: Option<CpuUsage>| usage.map(|usage| usage.percent());

        let mut summary = Summary::new(Self::NAME, self.common.label.as_deref());
        summary
            .field("members", self.members)
            .field("rounds", rounds)
            .field("leave_by", self.leave_by.name())
            .field("quiet_ms", self.quiet_ms)
            .field(
                "cpu_us_per_join",
                join_cpu.server.and_then(|usage| usage.micros_per(joins)),
            )
            .field("join_server_cpu_ms", cpu_ms(join_cpu))
            .field("join_server_cpu_pct", pct(join_cpu.server))
            .field("join_main_thread_cpu_pct", pct(join_cpu.server_main_thread))
            .field("join_client_cpu_pct", pct(join_cpu.client))
            .field(
                "cpu_us_per_leave",
                leave_cpu.server.and_then(|usage| usage.micros_per(joins)),
            )
            .field("leave_server_cpu_ms", cpu_ms(leave_cpu))
            .field("leave_server_cpu_pct", pct(leave_cpu.server))
            .field(
                "leave_main_thread_cpu_pct",
                pct(leave_cpu.server_main_thread),
            )
            .field("leave_client_cpu_pct", pct(leave_cpu.client))
            .field("last_joined_ms", millis(last_joined))
            .field("last_joined_ms_max", millis(last_joined_max))
            .field("join_quiet_ms", millis(join_quiet))
            .field("last_left_ms", millis(last_left))
            .field("last_left_ms_max", millis(last_left_max))
            .field("frames", per_round(tally.frames[JOIN_STORM]))
            .field("bytes", per_round(tally.bytes[JOIN_STORM]))
            .field("leave_frames", per_round(tally.frames[LEAVE_STORM]))
            .field("leave_bytes", per_round(tally.bytes[LEAVE_STORM]))
            .field("presence_events", per_round(tally.presence_events))
            .field("count_events", per_round(tally.count_events))
            .field("joined_members_listed_max", tally.listed_max)
            .field("server_frames_delivered", delivered(JOIN_STORM))
            .field("leave_server_frames_delivered", delivered(LEAVE_STORM))
            .field("rss_connected_kib", rss_connected)
            .field("peak_rss_kib", peak_rss)
            .field("closed", closed);
        let rounds_text = match rounds {
            1 => String::new(),
            _ => format!(", median of {rounds} rounds"),
        };
        let memory = match peak_rss {
            Some(kib) => format!("; server peak RSS {:.1} MiB", kib as f64 / 1024.0),
            None => String::new(),
        };
        summary.human(format!(
            "joins {} members (leave by {}{rounds_text}): joined by {:.0}ms, quiet after {:.0}ms, {} frames {}{}; left by {:.0}ms, {} frames {}{}{memory}",
            self.members,
            self.leave_by.name(),
            millis(last_joined),
            millis(join_quiet),
            per_round(tally.frames[JOIN_STORM]),
            megabytes(per_round(tally.bytes[JOIN_STORM])),
            report::cpu_text(join_cpu, "join", joins),
            millis(last_left),
            per_round(tally.frames[LEAVE_STORM]),
            megabytes(per_round(tally.bytes[LEAVE_STORM])),
            report::cpu_text(leave_cpu, "leave", joins),
        ));
        summary
    }
}

/// Where the members of a round are; they are told each change at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected, in no room.
    Connected,
    /// Join the room (the join storm).
    Joining,
    /// Leave it (the leave storm).
    Leaving,
    /// Close the connection if it is still open; the round is over.
    Done,
}

/// Indexes of the storms in [`Tally`]'s per-storm counts.
const JOIN_STORM: usize = 0;
const LEAVE_STORM: usize = 1;

/// What a round's members share with the coordinator, which watches it to tell when a
/// storm is over.
#[derive(Debug)]
struct RoundState {
    room: String,
    members: usize,
    /// The round's clock: the instants below are nanoseconds since this.
    start: Instant,
    /// The storm frames count for: set before the members are told to leave, so a frame
    /// is counted by when it arrived, not by when its member heard of the change.
    storm: AtomicUsize,
    /// Members that have their `joined`; their `left` (or their close answered).
    joined: AtomicUsize,
    left: AtomicUsize,
    /// Members whose connection the server closed or reset.
    closed: AtomicUsize,
    /// When the latest frame, `joined` and `left` arrived.
    last_frame: AtomicU64,
    last_joined: AtomicU64,
    last_left: AtomicU64,
    errors: Arc<ErrorLog>,
}

impl RoundState {
    fn new(room: String, members: usize, errors: Arc<ErrorLog>) -> Self {
        Self {
            room,
            members,
            start: Instant::now(),
            storm: AtomicUsize::new(JOIN_STORM),
            joined: AtomicUsize::new(0),
            left: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            last_frame: AtomicU64::new(0),
            last_joined: AtomicU64::new(0),
            last_left: AtomicU64::new(0),
            errors,
        }
    }

    fn joined(&self) -> usize {
        self.joined.load(Ordering::SeqCst)
    }

    fn left(&self) -> usize {
        self.left.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    fn storm(&self) -> usize {
        self.storm.load(Ordering::Relaxed)
    }

    /// Moves `latest` to `at` if that is later.
    fn stamp(&self, latest: &AtomicU64, at: Instant) {
        let ns = at.duration_since(self.start).as_nanos() as u64;
        latest.fetch_max(ns, Ordering::SeqCst);
    }

    fn instant(&self, latest: &AtomicU64) -> Instant {
        self.start + Duration::from_nanos(latest.load(Ordering::SeqCst))
    }

    fn last_frame_at(&self) -> Instant {
        self.instant(&self.last_frame)
    }

    fn last_joined_at(&self) -> Instant {
        self.instant(&self.last_joined)
    }

    fn last_left_at(&self) -> Instant {
        self.instant(&self.last_left)
    }

    /// Waits until `over` holds and no frame has come for `quiet`; false if `deadline`
    /// came first.
    async fn wait(&self, deadline: Instant, quiet: Duration, over: impl Fn() -> bool) -> bool {
        loop {
            tokio::time::sleep(POLL).await;
            let now = Instant::now();
            if over() && now.saturating_duration_since(self.last_frame_at()) >= quiet {
                return true;
            }
            if now >= deadline {
                return false;
            }
        }
    }
}

/// What members received, summed over members (and rounds).
#[derive(Debug, Default)]
struct Tally {
    /// Text frames and their payload bytes, per storm.
    frames: [u64; 2],
    bytes: [u64; 2],
    /// `member_joined` and `member_left` frames; `member_count` frames.
    presence_events: u64,
    count_events: u64,
    /// The most members one `joined` listed.
    listed_max: usize,
    /// One member's: the room's size its `joined` gave.
    joined_count: Option<u64>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        for storm in [JOIN_STORM, LEAVE_STORM] {
            self.frames[storm] += other.frames[storm];
            self.bytes[storm] += other.bytes[storm];
        }
        self.presence_events += other.presence_events;
        self.count_events += other.count_events;
        self.listed_max = self.listed_max.max(other.listed_max);
    }
}

/// One member's side of a round.
struct Member {
    index: usize,
    state: Arc<RoundState>,
    leave_by: LeaveBy,
}

/// How a member's connection ended.
enum Ending {
    /// Still open: the member closes it.
    Open,
    /// Closed (the member's own close, answered).
    Closed,
}

/// What one member has seen.
#[derive(Debug, Default)]
struct Seen {
    tally: Tally,
    /// `joined` frames for the room; `left` frames.
    joined: u32,
    lefts: u32,
    /// The room's size as this member knows it: from its `joined`, then presence events.
    size: Option<i64>,
    /// It sent its close and waits for the answer.
    closing: bool,
}

impl Member {
    async fn drive(self, mut ws: Ws, mut phase: watch::Receiver<Phase>) -> Tally {
        let mut seen = Seen::default();
        match self.run(&mut ws, &mut phase, &mut seen).await {
            Ok(Ending::Open) => {
                if let Err(why) = client::close(ws, false).await {
                    self.error(why);
                }
            }
            Ok(Ending::Closed) => {}
            Err(why) => {
                self.state.closed.fetch_add(1, Ordering::SeqCst);
                self.error(why);
            }
        }
        seen.tally
    }

    fn error(&self, why: impl std::fmt::Display) {
        self.state
            .errors
            .record(format!("member {}: {why}", self.index));
    }

    /// Follows the phases until the round is over; an error is the connection lost.
    async fn run(
        &self,
        ws: &mut Ws,
        phase: &mut watch::Receiver<Phase>,
        seen: &mut Seen,
    ) -> Result<Ending, String> {
        let room = self.state.room.as_str();
        loop {
            tokio::select! {
                biased;
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Ok(Ending::Open);
                    }
                    let now = *phase.borrow_and_update();
                    match now {
                        Phase::Connected => {}
                        Phase::Joining => client::send_text(ws, hub::join(room, "j")).await?,
                        Phase::Leaving => {
                            self.check_size(seen);
                            match self.leave_by {
                                LeaveBy::Leave => {
                                    client::send_text(ws, hub::leave(room, "l")).await?;
                                }
                                LeaveBy::Close => {
                                    ws.close(None)
                                        .await
                                        .map_err(|err| format!("sending close: {err}"))?;
                                    seen.closing = true;
                                }
                            }
                        }
                        Phase::Done if seen.closing => return Ok(Ending::Closed),
                        Phase::Done => return Ok(Ending::Open),
                    }
                }
                item = ws.next() => {
                    let mut open = self.take(item, seen)?;
                    for _ in 0..BATCH {
                        if !open {
                            break;
                        }
                        match ws.next().now_or_never() {
                            Some(item) => open = self.take(item, seen)?,
                            None => break,
                        }
                    }
                    let at = Instant::now();
                    self.state.stamp(&self.state.last_frame, at);
                    if !open {
                        self.state.left.fetch_add(1, Ordering::SeqCst);
                        self.state.stamp(&self.state.last_left, at);
                        return Ok(Ending::Closed);
                    }
                }
            }
        }
    }

    /// Counts and checks one item of the stream; `Ok(false)` once our close is answered,
    /// `Err` for the connection lost.
    fn take(
        &self,
        item: Option<Result<Message, tungstenite::Error>>,
        seen: &mut Seen,
    ) -> Result<bool, String> {
        let text = match item {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => return Ok(true),
            Some(Ok(Message::Binary(data))) => {
                self.error(format!("unexpected binary message of {} bytes", data.len()));
                return Ok(true);
            }
            // The answer to our close, or the server hanging up first after it.
            _ if seen.closing => return Ok(false),
            // Closed by the server, reset, or ended: classify says which.
            other => {
                return Err(client::classify(other)
                    .err()
                    .unwrap_or_else(|| "the connection ended".into()))
            }
        };
        let storm = self.state.storm();
        seen.tally.frames[storm] += 1;
        seen.tally.bytes[storm] += text.len() as u64;
        if text.starts_with(hub::MEMBER_JOINED_PREFIX) {
            self.presence(seen, 1, &text);
        } else if text.starts_with(hub::MEMBER_LEFT_PREFIX) {
            self.presence(seen, -1, &text);
        } else {
            self.parsed(&text, seen);
        }
        Ok(true)
    }

    /// A `member_joined` (+1) or `member_left` (-1).
    fn presence(&self, seen: &mut Seen, change: i64, text: &str) {
        seen.tally.presence_events += 1;
        match seen.size {
            Some(size) if seen.lefts == 0 => seen.size = Some(size + change),
            _ => self.out_of_room(seen, text),
        }
    }

    /// Any frame but the presence events, which come in millions.
    fn parsed(&self, text: &str, seen: &mut Seen) {
        let frame = match hub::parse(text) {
            Ok(frame) => frame,
            Err(why) => return self.error(why),
        };
        if frame.room.as_deref() != Some(self.state.room.as_str()) {
            return self.error(format!("unexpected frame {}", client::shorten(text)));
        }
        let kind = frame.kind.as_ref();
        match kind {
            "joined" => {
                seen.joined += 1;
                if seen.joined > 1 {
                    return self.error(format!("a second joined: {}", client::shorten(text)));
                }
                let listed = frame.members.as_ref().map_or(0, Vec::len);
                let count = frame.member_count.unwrap_or(listed as u64);
                if listed as u64 > count || count > self.state.members as u64 {
                    self.error(format!(
                        "joined lists {listed} members and counts {count}, in a room of {}",
                        self.state.members
                    ));
                }
                seen.tally.listed_max = listed;
                seen.tally.joined_count = Some(count);
                seen.size = Some(count as i64);
                self.state.joined.fetch_add(1, Ordering::SeqCst);
                self.state.stamp(&self.state.last_joined, Instant::now());
            }
            "member_joined" => self.presence(seen, 1, text),
            "member_left" => self.presence(seen, -1, text),
            "member_count" => {
                seen.tally.count_events += 1;
                match (frame.count, seen.size.is_some() && seen.lefts == 0) {
                    (Some(count), true) => seen.size = Some(count as i64),
                    (None, _) => self.error(format!("a member_count without count: {text}")),
                    (_, false) => self.out_of_room(seen, text),
                }
            }
            "left" => {
                seen.lefts += 1;
                if seen.lefts > 1 {
                    return self.error(format!("a second left: {}", client::shorten(text)));
                }
                self.state.left.fetch_add(1, Ordering::SeqCst);
                self.state.stamp(&self.state.last_left, Instant::now());
            }
            _ => self.error(format!("unexpected frame {}", client::shorten(text))),
        }
    }

    fn out_of_room(&self, seen: &Seen, text: &str) {
        let when = if seen.lefts > 0 {
            "after its left"
        } else {
            "before its joined"
        };
        self.error(format!("{when}: {}", client::shorten(text)));
    }

    /// At the end of the join storm every member must know the room's full size.
    fn check_size(&self, seen: &Seen) {
        let members = self.state.members as i64;
        match seen.size {
            // Counted by the coordinator, which waited for every `joined`.
            None => {}
            Some(size) if size == members => {}
            Some(size) => self.error(format!(
                "believes the room has {size} members after the join storm, not {members}"
            )),
        }
    }
}

/// The joins were applied one at a time, so the k-th joiner was told of k members: the
/// counts of all `joined` frames, sorted, are 1, 2, ..., N.
fn check_joined_counts(counts: &mut [u64]) -> Result<(), String> {
    counts.sort_unstable();
    for (expected, &count) in (1..).zip(counts.iter()) {
        if count != expected {
            return Err(format!(
                "the counts of the {} joined frames are not 1..={} once each: {count} where {expected} was due",
                counts.len(),
                counts.len()
            ));
        }
    }
    Ok(())
}

/// Opens `members` connections to `/ws`, `concurrency` handshakes at a time, each past
/// its `welcome`.
async fn connect_all(
    target: &Target,
    members: usize,
    concurrency: usize,
) -> Result<Vec<Ws>, String> {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for index in 0..members {
        let url = target.ws(&format!("/ws?name=j{index}"));
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut ws = client::connect(&url).await?;
            expect_welcome(&mut ws)
                .await
                .map_err(|why| format!("member {index}: {why}"))?;
            Ok::<_, String>((index, ws))
        });
    }
    let mut connected = Vec::with_capacity(members);
    while let Some(done) = tasks.join_next().await {
        connected.push(done.map_err(|err| format!("a connect task failed: {err}"))??);
    }
    connected.sort_by_key(|(index, _)| *index);
    Ok(connected.into_iter().map(|(_, ws)| ws).collect())
}

/// `GET /api/stats`.
async fn stats(target: &Target) -> Result<Value, String> {
    match target.get("/api/stats").await? {
        (200, body) => serde_json::from_str(&body)
            .map_err(|err| format!("GET /api/stats: {err}: {}", client::shorten(&body))),
        (status, body) => Err(format!(
            "GET /api/stats: {status} {}",
            client::shorten(&body)
        )),
    }
}

/// The server's count of frames queued to members so far.
async fn frames_delivered(target: &Target, errors: &ErrorLog) -> Option<u64> {
    match stats(target).await {
        Ok(stats) => stats.get("frames_delivered").and_then(Value::as_u64),
        Err(why) => {
            errors.record(why);
            None
        }
    }
}

/// Polls `GET /api/stats` until it shows no members; returns when it did (or the
/// deadline, recording an error).
async fn no_members_left(target: &Target, deadline: Instant, errors: &ErrorLog) -> Instant {
    loop {
        let members = match stats(target).await {
            Ok(stats) => stats.get("members").and_then(Value::as_u64),
            Err(why) => {
                errors.record(why);
                return Instant::now();
            }
        };
        let now = Instant::now();
        match members {
            Some(0) => return now,
            None => {
                errors.record("GET /api/stats: no members field");
                return now;
            }
            Some(members) if now >= deadline => {
                errors.record(format!(
                    "GET /api/stats still shows {members} members after the leave storm"
                ));
                return now;
            }
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// After the leave storm nobody is in the room: `GET /api/rooms/{room}` is 404, or (a
/// server that keeps empty rooms, ROOM_TTL_MS) shows it with no members.
async fn room_is_empty(target: &Target, room: &str, errors: &ErrorLog) {
    let (status, body) = match target.get(&format!("/api/rooms/{room}")).await {
        Ok(answer) => answer,
        Err(why) => return errors.record(why),
    };
    let members = |view: &Value| {
        let listed = view.get("members")?.as_array()?.len() as u64;
        Some(
            view.get("member_count")
                .and_then(Value::as_u64)
                .unwrap_or(listed),
        )
    };
    let left = match status {
        404 => Some(0),
        200 => serde_json::from_str(&body).ok().as_ref().and_then(members),
        _ => None,
    };
    if left != Some(0) {
        errors.record(format!(
            "room {room} after the leave storm: GET {status} {}",
            client::shorten(&body)
        ));
    }
}

/// One round's figures.
struct Outcome {
    join_cpu: Cpu,
    leave_cpu: Cpu,
    /// From the first `join` sent to the last `joined` received; to the last frame of
    /// the join storm.
    last_joined: Duration,
    join_quiet: Duration,
    /// From the first `leave` (close) sent to the last `left` (to the server showing no
    /// members).
    last_left: Duration,
    tally: Tally,
    /// Frames the server says it queued, per storm.
    delivered: [Option<u64>; 2],
    rss_connected: Option<u64>,
    peak_rss: Option<u64>,
    closed: usize,
}

/// CPU samples every [`SAMPLE_EVERY`] while a round runs: a storm's end is known only
/// once the server has been quiet for a while, and its CPU time is looked up then.
struct Timeline {
    probes: CpuProbes,
    samples: Arc<Mutex<Vec<(Instant, CpuSamples)>>>,
    sampler: JoinHandle<()>,
}

impl Timeline {
    fn start(probes: CpuProbes) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sampler = tokio::spawn({
            let samples = samples.clone();
            async move {
                let mut every = tokio::time::interval(SAMPLE_EVERY);
                every.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    let sample = probes.sample(None);
                    let at = Instant::now();
                    samples
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((at, sample));
                }
            }
        });
        Self {
            probes,
            samples,
            sampler,
        }
    }

    /// The first sample taken at or after `at` (one taken now if there is none yet).
    fn at(&self, at: Instant) -> CpuSamples {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        match samples.iter().find(|(taken, _)| *taken >= at) {
            Some((_, sample)) => *sample,
            None => self.probes.sample(None),
        }
    }

    fn stop(self) {
        self.sampler.abort();
    }
}

/// The CPU of several rounds as one: CPU time and wall time each summed.
fn sum_cpu(rounds: impl Iterator<Item = Cpu> + Clone) -> Cpu {
    let sum = |pick: fn(&Cpu) -> Option<CpuUsage>| {
        rounds.clone().map(|cpu| pick(&cpu)).try_fold(
            CpuUsage {
                cpu_seconds: 0.0,
                wall_seconds: 0.0,
            },
            |total, usage| {
                let usage = usage?;
                Some(CpuUsage {
                    cpu_seconds: total.cpu_seconds + usage.cpu_seconds,
                    wall_seconds: total.wall_seconds + usage.wall_seconds,
                })
            },
        )
    };
    Cpu {
        server: sum(|cpu| cpu.server),
        server_main_thread: sum(|cpu| cpu.server_main_thread),
        client: sum(|cpu| cpu.client),
    }
}

/// The median (the upper one of an even count) and the largest of a duration over rounds.
fn median_max(outcomes: &[Outcome], pick: impl Fn(&Outcome) -> Duration) -> [Duration; 2] {
    let mut durations: Vec<Duration> = outcomes.iter().map(pick).collect();
    durations.sort_unstable();
    let median = durations
        .get(durations.len() / 2)
        .copied()
        .unwrap_or_default();
    [median, durations.last().copied().unwrap_or_default()]
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_counts_must_be_one_to_n_once_each() {
        assert_eq!(check_joined_counts(&mut [3, 1, 2]), Ok(()));
        assert!(check_joined_counts(&mut [1, 2, 2]).is_err());
        assert!(check_joined_counts(&mut [2, 3, 4]).is_err());
    }

    #[test]
    fn cpu_of_rounds_adds_up() {
        let usage = |cpu_seconds, wall_seconds| CpuUsage {
            cpu_seconds,
            wall_seconds,
        };
        let round = |cpu_seconds, wall_seconds| Cpu {
            server: Some(usage(cpu_seconds, wall_seconds)),
            server_main_thread: None,
            client: Some(usage(0.1, wall_seconds)),
        };
        let total = sum_cpu([round(0.5, 1.0), round(1.5, 3.0)].into_iter());
        let server = total.server.unwrap();
        assert_eq!((server.cpu_seconds, server.wall_seconds), (2.0, 4.0));
        assert!(total.server_main_thread.is_none());
        assert_eq!(total.client.unwrap().cpu_seconds, 0.2);
    }
}
