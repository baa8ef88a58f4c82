//! The server's metrics: the registry of atomics that the upgrade handlers, the
//! connections, the hub and the supervisor add to, and its Prometheus text exposition
//! (format 0.0.4) for `GET /metrics`. `GET /api/stats` reads some of the same counts
//! ([`Metrics::stats`]). The room state's sizes (rooms, members) are not kept here:
//! they are the backend's, asked for at each scrape and handed to [`Metrics::render`].
//!
//! Every label has a small fixed set of values (endpoints, command names, leave
//! reasons, error codes, refusal causes), so each series is one atomic in an array
//! indexed by its value: counting takes no lock, no map lookup and no allocation, and
//! every series is exported from the start, at 0. Each thread that counts has its own
//! [`Counters`], on cache lines of their own, and a scrape adds them up: the two
//! workers and the hub never write the same line. Only a scrape allocates or locks.
//!
//! # What the hot path pays
//!
//! Every count is one `fetch_add` with `Relaxed` ordering, uncontended (the line is
//! the counting thread's own, so it stays in that core's cache).
//!
//! - per message received on `/ws` (its worker thread, in `Session::on_text`):
//!   `messages_received[type]`, one add; a message over the rate adds `rate_limited`
//!   and `errors_sent[rate_limited]`, a refused frame `errors_sent[code]`;
//! - per event the hub encodes: `frames_serialized`, one add (as before), and a check
//!   whether it is an `error` (then `errors_sent[code]`, one add);
//! - per delivery, i.e. per reply to one member and per worker in a broadcast (the
//!   hub's `send_to` and `broadcast`; not per recipient): `frames_delivered` and
//!   `bytes_delivered`, two adds (one before), and `posts`, one add (as before);
//! - per mailbag (a batch of messages from one worker thread: one per message when the
//!   server is idle, fewer the busier it is): one clock read when the first message
//!   goes into the empty bag, one when the hub takes it, and two adds (a bucket, the
//!   sum);
//! - per connection: one add when it opens, one subtraction when it closes, one add
//!   when it ends (`disconnects[reason]`); per refused upgrade, one add.
//!
//! # A cluster node
//!
//! With `REDIS_URL` set the scrape also has the cluster thread's counts
//! ([`ClusterCounters`], added to by that thread alone): `hubbub_store_errors_total`
//! (label `op`), `hubbub_cluster_subscriber_reconnects_total`,
//! `hubbub_cluster_rooms_rebuilt_total`, `hubbub_cluster_nodes_reaped_total` and the
//! histogram `hubbub_store_round_trip_seconds`: one observation per pipeline (one
//! clock read when it goes, one when its answers are in), not per call.

use std::{
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use hubbub_core::{Command, Counts};

use crate::{
    cluster::{ClusterCounters, ClusterTotals, StoreOp},
    protocol::{ErrorCode, Inbound, LeaveReason},
    stats::StatsView,
};

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The WebSocket endpoints, the values of `endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/ws`, the hub protocol.
    Ws,
    /// `/echo`, plain RFC 6455 echo.
    Echo,
}

impl Endpoint {
    const ALL: [Endpoint; 2] = [Endpoint::Ws, Endpoint::Echo];

    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Ws => "ws",
            Endpoint::Echo => "echo",
        }
    }
}

/// Why an upgrade was refused, the values of `cause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRefusal {
    /// `MAX_CONNECTIONS` reached.
    ServerFull,
    /// `MAX_CONNECTIONS_PER_IP` reached for the client's address.
    TooManyConnections,
    /// The `Origin` is not in `ALLOWED_ORIGINS`.
    OriginNotAllowed,
    /// The server is draining its connections.
    ShuttingDown,
    /// Not a valid WebSocket upgrade request (method, headers, key).
    BadHandshake,
    /// No valid token on `/ws` while authentication is on.
    Unauthorized,
}

impl UpgradeRefusal {
    const ALL: [UpgradeRefusal; 6] = [
        UpgradeRefusal::ServerFull,
        UpgradeRefusal::TooManyConnections,
        UpgradeRefusal::OriginNotAllowed,
        UpgradeRefusal::ShuttingDown,
        UpgradeRefusal::BadHandshake,
        UpgradeRefusal::Unauthorized,
    ];

    fn as_str(self) -> &'static str {
        match self {
            UpgradeRefusal::ServerFull => "server_full",
            UpgradeRefusal::TooManyConnections => "too_many_connections",
            UpgradeRefusal::OriginNotAllowed => "origin_not_allowed",
            UpgradeRefusal::ShuttingDown => "shutting_down",
            UpgradeRefusal::BadHandshake => "bad_handshake",
            UpgradeRefusal::Unauthorized => "unauthorized",
        }
    }
}

/// The `type` of a message received on `/ws`: each command's name, then these two.
const MESSAGE_KINDS: usize = Command::NAMES.len() + 2;
/// A text frame that is not a JSON object, echoed back.
const PLAIN: usize = Command::NAMES.len();
/// A frame refused with an `error` (bad JSON, unknown type, a bad field, binary).
const INVALID: usize = Command::NAMES.len() + 1;

fn message_kind_name(kind: usize) -> &'static str {
    match kind {
        PLAIN => "plain",
        INVALID => "invalid",
        command => Command::NAMES[command],
    }
}

/// The leave reasons that end a connection, the values of `reason` (`leave` and
/// `kicked` end a membership, never a connection).
const DISCONNECT_REASONS: [LeaveReason; 3] = [
    LeaveReason::Disconnect,
    LeaveReason::Timeout,
    LeaveReason::Slow,
];

/// Upper bounds of the latency histograms' buckets (the mailbox delay, a cluster's store
/// round trip): in nanoseconds to compare, in seconds as exposed. From 100 µs (an idle
/// hub, a pipeline to a Redis on the same machine) to 1 s (far behind); 50 ms, the
/// alert threshold the README suggests, is one of them.
pub(crate) const LATENCY_BUCKETS: [(u64, &str); 13] = [
    (100_000, "0.0001"),
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
];

/// Every counter, by thread: each thread that counts (each worker, the hub, the
/// supervisor) adds to a [`Counters`] of its own, registered here once, and a scrape
/// adds them up. No two threads write the same cache line on the hot path, and nothing
/// is ever unregistered, so no total goes backwards when a worker restarts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Locked when a thread registers and when a scrape reads, never to count.
    threads: Mutex<Vec<Arc<Counters>>>,
    /// A cluster node's counts of its life with Redis; `None` on one node alone, whose
    /// scrape then has no cluster families.
    cluster: Option<Arc<ClusterCounters>>,
}

/// One thread's counters, atomics only ever added to (the open-connection gauge also
/// subtracted from). Aligned to its own cache lines, so that another thread's counting
/// never contends with this one's.
pub type Counters = Tally<AtomicU64>;

/// The server's counts, one field list for both the atomics a thread adds to
/// (`Tally<AtomicU64>`, i.e. [`Counters`]) and the totals a scrape adds up
/// (`Tally<u64>`). Aligned to 128 bytes, two x86 cache lines (the adjacent-line
/// prefetcher pulls them in pairs), so one thread's counters never share a line with
/// another's.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Tally<T> {
    /// By [`Endpoint`]; held by each connection's [`OpenConnection`].
    connections_open: [T; Endpoint::ALL.len()],
    /// By [`Command::index`], then [`PLAIN`] and [`INVALID`].
    messages_received: [T; MESSAGE_KINDS],
    /// Once per event, however many members receive it.
    frames_serialized: T,
    /// Frames queued to members, one per recipient.
    frames_delivered: T,
    /// The bytes of those frames: each frame's length times its recipients.
    bytes_delivered: T,
    /// Messages to the worker threads' couriers.
    posts: T,
    /// By the reason's place in [`DISCONNECT_REASONS`].
    disconnects: [T; DISCONNECT_REASONS.len()],
    /// By `ErrorCode as usize`, the code's place in [`ErrorCode::ALL`].
    errors_sent: [T; ErrorCode::ALL.len()],
    /// Members evicted for reading too slowly (their inbox overflowed).
    slow_evictions: T,
    /// By [`UpgradeRefusal`].
    upgrades_refused: [T; UpgradeRefusal::ALL.len()],
    /// Messages on `/ws` dropped for being over the connection's rate.
    rate_limited: T,
    /// The mailbox delay's observations by bucket of [`LATENCY_BUCKETS`] (not
    /// cumulative; the last is over every bound). Their total is the count, so a scrape
    /// never shows a count that disagrees with its buckets.
    mailbox_delay_buckets: [T; LATENCY_BUCKETS.len() + 1],
    /// The mailbox delays' sum, in nanoseconds.
    mailbox_delay_nanos: T,
}

fn add(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

impl Metrics {
    /// A cluster node's metrics: these families, and those of `cluster`.
    pub(crate) fn for_cluster(cluster: Arc<ClusterCounters>) -> Self {
        Self {
            cluster: Some(cluster),
            ..Self::default()
        }
    }

    /// Counters for one thread (or one actor) to add to, summed into every scrape.
    pub(crate) fn thread_counters(&self) -> Arc<Counters> {
        let counters = Arc::new(Counters::default());
        self.lock_threads().push(counters.clone());
        counters
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Counters>>> {
        // The list only ever has whole entries pushed: a panic elsewhere cannot leave it
        // half-written.
        self.threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every thread's counters, added up.
    fn totals(&self) -> Tally<u64> {
        let mut totals = Tally::<u64>::default();
        for counters in self.lock_threads().iter() {
            counters.add_to(&mut totals);
        }
        totals
    }

    /// What `GET /api/stats` shows: these counters with the room state's sizes.
    pub(crate) fn stats(&self, counts: Counts) -> StatsView {
        let totals = self.totals();
        StatsView {
            members: counts.members,
            rooms: counts.rooms,
            frames_serialized: totals.frames_serialized,
            frames_delivered: totals.frames_delivered,
            posts: totals.posts,
            members_dropped_slow: totals.slow_evictions,
        }
    }

    /// The text exposition of every family; the `hubbub_rooms` and `hubbub_members`
    /// gauges only when the backend said how many there are (`counts`).
    pub(crate) fn render(&self, counts: Option<Counts>) -> String {
        let totals = self.totals();
        let mut out = Exposition(String::with_capacity(8 * 1024));

        out.labelled(
            "hubbub_connections_open",
            "gauge",
            "Open WebSocket connections, by endpoint.",
            "endpoint",
            (Endpoint::ALL.into_iter()).map(|endpoint| {
                (
                    endpoint.as_str(),
                    totals.connections_open[endpoint as usize],
                )
            }),
        );
        if let Some(counts) = counts {
            out.family(
                "hubbub_members",
                "gauge",
                "Members connected on /ws, as the room state counts them.",
            );
            out.sample("hubbub_members", None, counts.members);
            out.family("hubbub_rooms", "gauge", "Rooms that exist (have members).");
            out.sample("hubbub_rooms", None, counts.rooms);
        }

        out.labelled(
            "hubbub_messages_received_total",
            "counter",
            "Messages received on /ws, by type: the command, plain (echoed text) or invalid (refused).",
            "type",
            (totals.messages_received.iter().enumerate())
                .map(|(kind, count)| (message_kind_name(kind), *count)),
        );

        out.counter(
            "hubbub_frames_serialized_total",
            "Events serialized by the hub: once per event, however many members receive it.",
            totals.frames_serialized,
        );
        out.counter(
            "hubbub_frames_delivered_total",
            "Frames queued to members, one per recipient.",
            totals.frames_delivered,
        );
        out.counter(
            "hubbub_delivered_bytes_total",
            "Bytes of the frames queued to members: each frame's length times its recipients.",
            totals.bytes_delivered,
        );
        out.counter(
            "hubbub_courier_posts_total",
            "Messages from the hub to the worker threads' couriers: one per worker per broadcast, one per reply.",
            totals.posts,
        );

        out.labelled(
            "hubbub_disconnects_total",
            "counter",
            "Connections on /ws that ended, by reason: disconnect (closed), timeout (silent), slow (did not read).",
            "reason",
            (DISCONNECT_REASONS.iter().enumerate())
                .map(|(index, reason)| (reason.as_str(), totals.disconnects[index])),
        );

        out.labelled(
            "hubbub_errors_sent_total",
            "counter",
            "Error frames sent to clients on /ws, by code.",
            "code",
            (ErrorCode::ALL.iter()).map(|code| (code.as_str(), totals.errors_sent[*code as usize])),
        );

        out.counter(
            "hubbub_slow_evictions_total",
            "Members closed with 1013 because their outbound queue overflowed.",
            totals.slow_evictions,
        );

        out.labelled(
            "hubbub_upgrades_refused_total",
            "counter",
            "WebSocket upgrades refused before the handshake, by cause.",
            "cause",
            (UpgradeRefusal::ALL.into_iter())
                .map(|cause| (cause.as_str(), totals.upgrades_refused[cause as usize])),
        );

        out.counter(
            "hubbub_rate_limited_messages_total",
            "Messages on /ws dropped for being over the connection's rate limit.",
            totals.rate_limited,
        );

        out.histogram(
            "hubbub_hub_mailbox_delay_seconds",
            "Time from a worker's first message into its empty mailbag to the hub handling that bag.",
            &totals.mailbox_delay_buckets,
            totals.mailbox_delay_nanos,
        );
        if let Some(cluster) = &self.cluster {
            render_cluster(&mut out, cluster.totals());
        }
        out.0
    }
}

/// The cluster's families (see [`ClusterCounters`]).
fn render_cluster(out: &mut Exposition, totals: ClusterTotals) {
    out.labelled(
        "hubbub_store_errors_total",
        "counter",
        "Calls to the cluster's Redis that failed or went unanswered by their deadline, by op.",
        "op",
        (StoreOp::ALL.into_iter()).map(|op| (op.as_str(), totals.store_errors[op as usize])),
    );
    out.counter(
        "hubbub_cluster_subscriber_reconnects_total",
        "Subscriber connections to Redis replaced after closing, being cut off or going silent.",
        totals.subscriber_reconnects,
    );
    out.counter(
        "hubbub_cluster_rooms_rebuilt_total",
        "Rooms found rebuilt in Redis with a new epoch; their members on this node got resync.",
        totals.rooms_rebuilt,
    );
    out.counter(
        "hubbub_cluster_nodes_reaped_total",
        "Other nodes this node found silent for NODE_TIMEOUT_MS and reaped.",
        totals.nodes_reaped,
    );
    out.histogram(
        "hubbub_store_round_trip_seconds",
        "Time from a pipeline of calls going to the cluster's Redis to its answers, one per pipeline.",
        &totals.round_trip_buckets,
        totals.round_trip_nanos,
    );
}

impl Counters {
    /// Counts a connection open on `endpoint` until the returned guard is dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>, endpoint: Endpoint) -> OpenConnection {
        add(&self.connections_open[endpoint as usize], 1);
        OpenConnection {
            counters: self.clone(),
            endpoint,
        }
    }

    /// A message received on `/ws`, by what it turned out to be.
    pub(crate) fn message_received(&self, inbound: &Inbound) {
        let kind = match inbound {
            Inbound::Command { command, .. } => command.index(),
            Inbound::Plain(_) => PLAIN,
            Inbound::Rejected { .. } => INVALID,
        };
        add(&self.messages_received[kind], 1);
    }

    /// A message received on `/ws` that is not text: refused like a bad frame.
    pub(crate) fn binary_received(&self) {
        add(&self.messages_received[INVALID], 1);
    }

    pub(crate) fn frame_serialized(&self) {
        add(&self.frames_serialized, 1);
    }

    /// One frame of `frame_bytes` queued to `recipients` members.
    pub(crate) fn frames_delivered(&self, recipients: usize, frame_bytes: usize) {
        add(&self.frames_delivered, recipients as u64);
        add(&self.bytes_delivered, (recipients * frame_bytes) as u64);
    }

    pub(crate) fn post(&self) {
        add(&self.posts, 1);
    }

    /// A connection has ended, for `reason`. Called once per connection.
    pub(crate) fn disconnected(&self, reason: LeaveReason) {
        if let Some(index) = DISCONNECT_REASONS.iter().position(|r| *r == reason) {
            add(&self.disconnects[index], 1);
        }
    }

    /// An `error` frame with `code` goes to a client: the one way both the hub and the
    /// connections count them.
    pub(crate) fn error_sent(&self, code: ErrorCode) {
        add(&self.errors_sent[code as usize], 1);
    }

    pub(crate) fn slow_eviction(&self) {
        add(&self.slow_evictions, 1);
    }

    pub(crate) fn upgrade_refused(&self, cause: UpgradeRefusal) {
        add(&self.upgrades_refused[cause as usize], 1);
    }

    pub(crate) fn rate_limited(&self) {
        add(&self.rate_limited, 1);
    }

    /// How long a mailbag waited between its first message and the hub.
    pub(crate) fn mailbox_delay(&self, waited: Duration) {
        let (bucket, nanos) = latency_bucket(waited);
        add(&self.mailbox_delay_buckets[bucket], 1);
        add(&self.mailbox_delay_nanos, nanos);
    }

    /// Adds this thread's counts to `totals`.
    fn add_to(&self, totals: &mut Tally<u64>) {
        fn each<const N: usize>(totals: &mut [u64; N], counters: &[AtomicU64; N]) {
            for (total, counter) in totals.iter_mut().zip(counters) {
                *total += counter.load(Ordering::Relaxed);
            }
        }
        let one = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        each(&mut totals.connections_open, &self.connections_open);
        each(&mut totals.messages_received, &self.messages_received);
        totals.frames_serialized += one(&self.frames_serialized);
        totals.frames_delivered += one(&self.frames_delivered);
        totals.bytes_delivered += one(&self.bytes_delivered);
        totals.posts += one(&self.posts);
        each(&mut totals.disconnects, &self.disconnects);
        each(&mut totals.errors_sent, &self.errors_sent);
        totals.slow_evictions += one(&self.slow_evictions);
        each(&mut totals.upgrades_refused, &self.upgrades_refused);
        totals.rate_limited += one(&self.rate_limited);
        each(
            &mut totals.mailbox_delay_buckets,
            &self.mailbox_delay_buckets,
        );
        totals.mailbox_delay_nanos += one(&self.mailbox_delay_nanos);
    }
}

/// One connection counted in `hubbub_connections_open` while this lives (held in the
/// connection's admission [`Ticket`](crate::admission::Ticket)).
#[derive(Debug)]
pub struct OpenConnection {
    /// Those of the worker thread that admitted the connection.
    counters: Arc<Counters>,
    endpoint: Endpoint,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.counters.connections_open[self.endpoint as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// The text being written. Names, help texts and label values are this module's own
/// constants (no backslash, quote or newline), so nothing needs escaping.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing into a String cannot fail.
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, label: Option<(&str, &str)>, value: impl std::fmt::Display) {
        let _ = match label {
            Some((label, label_value)) => {
                writeln!(self.0, "{name}{{{label}=\"{label_value}\"}} {value}")
            }
            None => writeln!(self.0, "{name} {value}"),
        };
    }

    /// A family (`kind`: counter or gauge) with one series per value of `label`, as
    /// `series` lists them.
    fn labelled<'a>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        series: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        self.family(name, kind, help);
        for (value, count) in series {
            self.sample(name, Some((label, value)), count);
        }
    }

    /// A family of one unlabelled counter.
    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, None, value);
    }

    /// A histogram over [`LATENCY_BUCKETS`]: `buckets` holds the observations of each
    /// bucket alone (the last: over every bound), `nanos` their sum.
    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        buckets: &[u64; LATENCY_BUCKETS.len() + 1],
        nanos: u64,
    ) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (count, (_, bound)) in buckets.iter().zip(LATENCY_BUCKETS.iter()) {
            cumulative += count;
            self.sample(&bucket, Some(("le", bound)), cumulative);
        }
        cumulative += buckets[LATENCY_BUCKETS.len()];
        self.sample(&bucket, Some(("le", "+Inf")), cumulative);
        self.sample(&format!("{name}_sum"), None, nanos as f64 / 1e9);
        self.sample(&format!("{name}_count"), None, cumulative);
    }
}

/// Which of [`LATENCY_BUCKETS`] (or the one past them) `took` falls in, and `took` in
/// nanoseconds.
pub(crate) fn latency_bucket(took: Duration) -> (usize, u64) {
    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    let bucket = LATENCY_BUCKETS
        .iter()
        .position(|(bound, _)| nanos <= *bound)
        .unwrap_or(LATENCY_BUCKETS.len());
    (bucket, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol;

    #[test]
    fn error_codes_and_commands_index_their_lists() {
        for (index, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, index, "{code}");
        }
        let say = protocol::decode(r#"{"type":"say","room":"lobby","text":"hi"}"#);
        let Inbound::Command { command, .. } = say else {
            panic!("a say decodes: {say:?}");
        };
        assert_eq!(Command::NAMES[command.index()], "say");
    }

    #[test]
    fn the_histogram_is_cumulative_with_inclusive_bounds() {
        let metrics = Metrics::default();
        let counters = metrics.thread_counters();
        counters.mailbox_delay(Duration::from_micros(100)); // on the first bound
        counters.mailbox_delay(Duration::from_millis(3));
        counters.mailbox_delay(Duration::from_secs(2)); // over every bound
        let text = metrics.render(None);
        for line in [
            "hubbub_hub_mailbox_delay_seconds_bucket{le=\"0.0001\"} 1",
            "hubbub_hub_mailbox_delay_seconds_bucket{le=\"0.0025\"} 1",
            "hubbub_hub_mailbox_delay_seconds_bucket{le=\"0.005\"} 2",
            "hubbub_hub_mailbox_delay_seconds_bucket{le=\"1\"} 2",
            "hubbub_hub_mailbox_delay_seconds_bucket{le=\"+Inf\"} 3",
            "hubbub_hub_mailbox_delay_seconds_sum 2.0031",
            "hubbub_hub_mailbox_delay_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_cluster_node_shows_its_store_round_trips() {
        let cluster = Arc::new(ClusterCounters::default());
        let metrics = Metrics::for_cluster(cluster.clone());
        cluster.round_trip(Duration::from_micros(300));
        cluster.round_trip(Duration::from_millis(60));
        let text = metrics.render(None);
        for line in [
            "# TYPE hubbub_store_round_trip_seconds histogram",
            "hubbub_store_round_trip_seconds_bucket{le=\"0.00025\"} 0",
            "hubbub_store_round_trip_seconds_bucket{le=\"0.0005\"} 1",
            "hubbub_store_round_trip_seconds_bucket{le=\"0.05\"} 1",
            "hubbub_store_round_trip_seconds_bucket{le=\"0.1\"} 2",
            "hubbub_store_round_trip_seconds_bucket{le=\"+Inf\"} 2",
            "hubbub_store_round_trip_seconds_sum 0.0603",
            "hubbub_store_round_trip_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(
            !Metrics::default()
                .render(None)
                .contains("hubbub_store_round_trip_seconds"),
            "one node alone has no cluster families"
        );
    }

    #[test]
    fn a_scrape_adds_up_every_thread_and_a_gauge_follows_its_guard() {
        let metrics = Metrics::default();
        let (one, other) = (metrics.thread_counters(), metrics.thread_counters());
        one.frames_delivered(3, 10);
        other.frames_delivered(2, 100);
        let open = one.connection_opened(Endpoint::Echo);
        let text = metrics.render(None);
        assert!(
            text.contains("\nhubbub_frames_delivered_total 5\n"),
            "{text}"
        );
        assert!(
            text.contains("\nhubbub_delivered_bytes_total 230\n"),
            "{text}"
        );
        assert!(text.contains("hubbub_connections_open{endpoint=\"echo\"} 1\n"));
        drop(open);
        assert!(metrics
            .render(None)
            .contains("hubbub_connections_open{endpoint=\"echo\"} 0\n"));
    }

    #[test]
    fn every_family_has_help_and_type_and_every_series_starts_at_zero() {
        // A cluster node's: every family of one node's, and the cluster's.
        let metrics = Metrics::for_cluster(Arc::default());
        let text = metrics.render(Some(Counts {
            members: 0,
            rooms: 0,
        }));
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                family = rest.split(' ').next().unwrap();
                continue;
            }
            if line.starts_with("# TYPE ") {
                assert!(line.starts_with(&format!("# TYPE {family} ")), "{line}");
                continue;
            }
            assert!(
                line.starts_with(family),
                "{line} outside its family {family}"
            );
            let value = line.rsplit(' ').next().unwrap();
            assert_eq!(value, "0", "{line}");
        }
        assert!(text.contains("hubbub_messages_received_total{type=\"plain\"} 0"));
        assert!(text.contains("hubbub_errors_sent_total{code=\"not_in_room\"} 0"));
        assert!(text.contains("hubbub_store_errors_total{op=\"ask\"} 0"));
        assert!(text.contains("hubbub_store_round_trip_seconds_count 0"));
    }
}
