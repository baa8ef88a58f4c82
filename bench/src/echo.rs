//! `echo` mode: N connections, each keeping W messages of S bytes in flight, on `/echo`
//! (`--protocol raw`: the text comes back as is) or `/ws` (`--protocol hub`: JSON
//! `echo`, answered by an `echo` event with the same text). Every reply is checked
//! against the oldest message in flight (content and order); a mismatch, an unexpected
//! frame or a dropped connection is an error and ends that connection.
//!
//! Reports replies/s, round-trip latency, and with `--server-pid` the server's CPU % and
//! CPU microseconds per message.

use std::{collections::VecDeque, fmt::Write, sync::Arc, time::Instant};

use clap::Args;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::{sync::Semaphore, task::JoinSet, time::timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    cli::{Common, Measure, Protocol},
    client::{self, Target, Ws, REPLY_TIMEOUT},
    hub,
    probe::ServerProbe,
    report::{self, ErrorLog, Summary, Window},
};

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 256;

#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    #[command(flatten)]
    pub common: Common,
    /// raw: `/echo` (text back as is); hub: `/ws` (JSON `echo`).
    #[arg(long, value_enum, default_value_t = Protocol::Raw)]
    pub protocol: Protocol,
    /// Path to connect to [default: /echo for raw, /ws for hub].
    #[arg(long)]
    pub path: Option<String>,
    /// Connections.
    #[arg(long, short = 'n', default_value_t = 64)]
    pub connections: usize,
    /// Messages in flight per connection.
    #[arg(long, short = 'w', default_value_t = 16)]
    pub window: usize,
    /// Bytes of text per message (the payload; the hub's JSON wraps it).
    #[arg(long, short = 's', default_value_t = 64)]
    pub size: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop each connection after this many messages (keeps under a rate limit).
    #[arg(long)]
    pub max_messages: Option<u64>,
}

impl EchoArgs {
    fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(self.protocol.default_path())
    }
}

/// What each connection does, shared by all of them.
#[derive(Debug)]
struct Plan {
    protocol: Protocol,
    window: usize,
    size: usize,
    max_messages: Option<u64>,
}

/// One connection's result.
struct Tally {
    /// Round trips completed inside the measurement window.
    measured: u64,
    /// Round trips completed in all.
    replies: u64,
    latency: Histogram<u64>,
}

impl Measure for EchoArgs {
    const NAME: &'static str = "echo";

    fn common(&self) -> &Common {
        &self.common
    }

    /// The tiny version for `--smoke`: a few connections, about a second, and few
    /// enough messages per connection to pass hubbub's default rate limit.
    fn smoke(mut self) -> Self {
        self.connections = self.connections.min(4);
        self.window = self.window.min(4);
        self.size = self.size.min(64);
        self.duration = self.duration.min(1.0);
        self.warmup = 0.0;
        self.max_messages = Some(self.max_messages.unwrap_or(150).min(150));
        self
    }

    async fn measure(&self) -> Result<Summary, String> {
        let args = self;
        let target = Target::parse(args.common.single_url()?)?;
        let probe = args
            .common
            .single_server_pid()?
            .map(ServerProbe::new)
            .transpose()?;
        let errors = Arc::new(ErrorLog::default());
        let url = target.ws(args.path());
        let plan = Arc::new(Plan {
            protocol: args.protocol,
            window: args.window.max(1),
            size: args.size,
            max_messages: args.max_messages,
        });

        let connections = open_all(&url, args.connections, args.protocol).await?;
        let window = Window::starting_now(args.warmup, args.duration);
        let mut tasks = JoinSet::new();
        for (index, ws) in connections.into_iter().enumerate() {
            tasks.spawn(drive(ws, index, plan.clone(), window, errors.clone()));
        }
        let cpu = window.sample_cpu(probe, &errors).await;
        let mut latency = report::latency_histogram();
        let (mut measured, mut replies) = (0, 0);
        while let Some(joined) = tasks.join_next().await {
            let tally = joined.map_err(|err| format!("a connection task failed: {err}"))?;
            measured += tally.measured;
            replies += tally.replies;
            report::merge(&mut latency, &tally.latency);
        }

        let rate = measured as f64 / window.seconds();
        let [p50, p99, p999] = report::quantiles(&latency);
        let mut summary = Summary::new("echo", args.common.label.as_deref());
        summary
            .field("protocol", args.protocol.name())
            .field("path", args.path())
            .field("connections", args.connections)
            .field("window", plan.window)
            .field("size", args.size)
            .field("duration_s", window.seconds())
            .field("messages", measured)
            .field("messages_total", replies)
            .field("msgs_per_s", rate)
            .latency(&latency)
            .cpu(cpu, "msg", measured);
        summary.human(format!(
            "echo {} {}: {} conns x {} in flight x {} B: {:.0} msgs/s, p50 {} p99 {} p999 {}{}",
            args.protocol.name(),
            args.path(),
            args.connections,
            plan.window,
            args.size,
            rate,
            report::micros(p50),
            report::micros(p99),
            report::micros(p999),
            report::cpu_text(cpu, "msg", measured),
        ));
        Ok(summary.finish(&errors))
    }
}

/// Opens `count` connections (hub: each past its `welcome`); any failure ends the run.
async fn open_all(url: &str, count: usize, protocol: Protocol) -> Result<Vec<Ws>, String> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let (gate, url) = (gate.clone(), url.to_string());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut ws = client::connect(&url).await?;
            if protocol == Protocol::Hub {
                expect_welcome(&mut ws).await?;
            }
            Ok::<_, String>((index, ws))
        });
    }
    let mut opened = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        opened.push(joined.map_err(|err| format!("a connect task failed: {err}"))??);
    }
    opened.sort_by_key(|(index, _)| *index);
    Ok(opened.into_iter().map(|(_, ws)| ws).collect())
}

/// Reads the first frame of a `/ws` connection, which must be `welcome`.
pub async fn expect_welcome(ws: &mut Ws) -> Result<(), String> {
    let text = client::next_text(ws, REPLY_TIMEOUT).await?;
    let frame = hub::parse(&text)?;
    if frame.is("welcome") {
        Ok(())
    } else {
        Err(format!(
            "expected welcome first, got {}",
            client::shorten(&text)
        ))
    }
}

/// Writes the text of message `seq` on connection `index` into `text`: unique, and
/// `size` bytes long (longer only if the numbers alone are).
fn write_payload(text: &mut String, index: usize, seq: u64, size: usize) {
    const PADDING: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let start = text.len();
    // Writing into a String cannot fail.
    let _ = write!(text, "{index}:{seq}:");
    let mut padding = size.saturating_sub(text.len() - start);
    while padding > 0 {
        let chunk = padding.min(PADDING.len());
        text.push_str(&PADDING[..chunk]);
        padding -= chunk;
    }
}

#[cfg(test)]
fn payload(index: usize, seq: u64, size: usize) -> String {
    let mut text = String::new();
    write_payload(&mut text, index, seq, size);
    text
}

/// One connection's load: what is in flight, and the counts so far.
struct Connection {
    index: usize,
    plan: Arc<Plan>,
    window: Window,
    /// `seq` and send time of each message awaiting its echo, oldest first.
    in_flight: VecDeque<(u64, Instant)>,
    sent: u64,
    /// The text the next reply must carry, rebuilt in place for every reply.
    expected: String,
    tally: Tally,
}

/// Keeps the window full until the deadline (or `max_messages`), then waits for the
/// last replies and closes.
async fn drive(
    mut ws: Ws,
    index: usize,
    plan: Arc<Plan>,
    window: Window,
    errors: Arc<ErrorLog>,
) -> Tally {
    let mut connection = Connection {
        index,
        in_flight: VecDeque::with_capacity(plan.window),
        sent: 0,
        expected: String::with_capacity(plan.size + 32),
        tally: Tally {
            measured: 0,
            replies: 0,
            latency: report::latency_histogram(),
        },
        plan,
        window,
    };
    match connection.run(&mut ws).await {
        Err(why) => errors.record(format!("echo connection {index}: {why}")),
        Ok(()) => {
            if let Err(why) = client::close(ws, true).await {
                errors.record(format!("echo connection {index}: {why}"));
            }
        }
    }
    connection.tally
}

impl Connection {
    async fn run(&mut self, ws: &mut Ws) -> Result<(), String> {
        loop {
            self.refill(ws).await?;
            if self.in_flight.is_empty() {
                return Ok(());
            }
            let first = timeout(REPLY_TIMEOUT, ws.next()).await.map_err(|_| {
                format!(
                    "no reply in {REPLY_TIMEOUT:?} ({} in flight)",
                    self.in_flight.len()
                )
            })?;
            // One clock read for the batch: what is already buffered arrived with it.
            let received = Instant::now();
            self.check(first, received)?;
            // Take every reply already here before refilling, so one flush sends a batch.
            while !self.in_flight.is_empty() {
                match ws.next().now_or_never() {
                    Some(item) => self.check(item, received)?,
                    None => break,
                }
            }
        }
    }

    /// Tops the window up and sends the new messages in one flush.
    async fn refill(&mut self, ws: &mut Ws) -> Result<(), String> {
        let now = Instant::now();
        let mut fed = false;
        while self.in_flight.len() < self.plan.window
            && now < self.window.deadline
            && self.plan.max_messages.is_none_or(|max| self.sent < max)
        {
            let mut frame = String::with_capacity(self.plan.size + 48);
            match self.plan.protocol {
                Protocol::Raw => write_payload(&mut frame, self.index, self.sent, self.plan.size),
                Protocol::Hub => {
                    frame.push_str(hub::ECHO_PREFIX);
                    write_payload(&mut frame, self.index, self.sent, self.plan.size);
                    frame.push_str(hub::ECHO_SUFFIX);
                }
            }
            ws.feed(Message::Text(frame))
                .await
                .map_err(|err| format!("sending: {err}"))?;
            self.in_flight.push_back((self.sent, now));
            self.sent += 1;
            fed = true;
        }
        if fed {
            ws.flush().await.map_err(|err| format!("sending: {err}"))?;
        }
        Ok(())
    }

    /// Checks one reply against the oldest message in flight.
    fn check(
        &mut self,
        item: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        received: Instant,
    ) -> Result<(), String> {
        let Some(text) = client::classify(item)? else {
            return Ok(());
        };
        let Some((seq, sent_at)) = self.in_flight.pop_front() else {
            return Err(format!(
                "a reply with nothing in flight: {}",
                client::shorten(&text)
            ));
        };
        self.expected.clear();
        write_payload(&mut self.expected, self.index, seq, self.plan.size);
        let echoed = match self.plan.protocol {
            Protocol::Raw => text == self.expected,
            Protocol::Hub => hub::is_echo_of(&text, &self.expected)?,
        };
        if !echoed {
            return Err(format!(
                "expected the echo of {}, got {}",
                client::shorten(&self.expected),
                client::shorten(&text)
            ));
        }
        self.tally.replies += 1;
        if self.window.counts(received) {
            self.tally.measured += 1;
            report::record_latency(&mut self.tally.latency, received - sent_at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_unique_and_sized() {
        assert_eq!(payload(3, 7, 10), "3:7:xxxxxx");
        assert_eq!(payload(3, 7, 2), "3:7:");
        assert_ne!(payload(1, 23, 16), payload(12, 3, 16));
    }
}
