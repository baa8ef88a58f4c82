//! `churn` mode: W workers each repeating connect, join, say, leave, disconnect (hub) or
//! connect, echo, disconnect (raw), checking every reply on the way. Reports cycles/s
//! and the cycle time; afterwards (hub) `GET /api/rooms` must list no rooms: every
//! member that left is gone from presence.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::{
    cli::{Common, Measure, Protocol},
    client::{self, Target, Ws, REPLY_TIMEOUT},
    echo::expect_welcome,
    fanout::run_nonce,
    hub,
    report::{self, ErrorLog, Summary, Window},
};

/// How long presence may take to empty after the last cycle.
const PRESENCE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// hub: `/ws` with join/say/leave; raw: `/echo` with one echo.
    #[arg(long, value_enum, default_value_t = Protocol::Hub)]
    pub protocol: Protocol,
    /// Path to connect to [default: /ws for hub, /echo for raw].
    #[arg(long)]
    pub path: Option<String>,
    /// Concurrent workers, each one connection at a time.
    #[arg(long, short = 'w', default_value_t = 16)]
    pub workers: usize,
    /// Rooms the workers share (so joins and leaves are seen by others).
    #[arg(long, default_value_t = 4)]
    pub rooms: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
}

impl ChurnArgs {
    fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(self.protocol.default_path())
    }
}

impl Measure for ChurnArgs {
    const NAME: &'static str = "churn";

    fn common(&self) -> &Common {
        &self.common
    }

    fn smoke(mut self) -> Self {
        self.workers = self.workers.min(4);
        self.rooms = self.rooms.clamp(1, 2);
        self.duration = self.duration.min(1.0);
        self
    }

    async fn measure(&self) -> Result<Summary, String> {
        let args = self;
        let target = Target::parse(args.common.single_url()?)?;
        let errors = Arc::new(ErrorLog::default());
        let nonce = run_nonce();
        let window = Window::starting_now(0.0, args.duration);
        let mut tasks = JoinSet::new();
        for worker in 0..args.workers.max(1) {
            let cycle = Cycle {
                url: target.ws(args.path()),
                protocol: args.protocol,
                name: format!("churn{worker}"),
                room: format!("churn-{nonce}-{}", worker % args.rooms.max(1)),
            };
            let errors = errors.clone();
            tasks.spawn(async move {
                let mut times = report::latency_histogram();
                let mut cycles = 0u64;
                while Instant::now() < window.deadline {
                    let started = Instant::now();
                    if let Err(why) = cycle.once().await {
                        errors.record(format!("{}: {why}", cycle.name));
                        break;
                    }
                    let finished = Instant::now();
                    if window.counts(finished) {
                        cycles += 1;
                        report::record_latency(&mut times, finished - started);
                    }
                }
                (cycles, times)
            });
        }
        let mut cycles = 0;
        let mut times = report::latency_histogram();
        while let Some(joined) = tasks.join_next().await {
            let (worker_cycles, worker_times): (u64, Histogram<u64>) =
                joined.map_err(|err| format!("a worker task failed: {err}"))?;
            cycles += worker_cycles;
            report::merge(&mut times, &worker_times);
        }
        let leftover = match args.protocol {
            Protocol::Hub => presence_empties(&target, &errors).await,
            Protocol::Raw => None,
        };

        let rate = cycles as f64 / window.seconds();
        let [p50, p99, _] = report::quantiles(&times);
        let mut summary = Summary::new("churn", args.common.label.as_deref());
        summary
            .field("protocol", args.protocol.name())
            .field("path", args.path())
            .field("workers", args.workers)
            .field("duration_s", window.seconds())
            .field("cycles", cycles)
            .field("cycles_per_s", rate)
            .field("rooms_left", leftover)
            .latency(&times);
        let presence = match leftover {
            Some(0) => ", presence empty afterwards",
            Some(_) => ", ROOMS LEFT OVER afterwards",
            None => "",
        };
        summary.human(format!(
            "churn {} {}: {} workers: {:.0} cycles/s, cycle p50 {} p99 {}{presence}",
            args.protocol.name(),
            args.path(),
            args.workers,
            rate,
            report::micros(p50),
            report::micros(p99),
        ));
        Ok(summary.finish(&errors))
    }
}

/// One worker's connect-to-disconnect cycle.
struct Cycle {
    url: String,
    protocol: Protocol,
    name: String,
    room: String,
}

impl Cycle {
    async fn once(&self) -> Result<(), String> {
        let url = match self.protocol {
            Protocol::Hub => format!("{}?name={}", self.url, self.name),
            Protocol::Raw => self.url.clone(),
        };
        let mut ws = client::connect(&url).await?;
        match self.protocol {
            Protocol::Hub => {
                expect_welcome(&mut ws).await?;
                client::send_text(&mut ws, hub::join(&self.room, "j")).await?;
                let joined = reply_to(&mut ws, "j").await?;
                expect(&joined, "joined", |frame| {
                    frame.room.as_deref() == Some(self.room.as_str())
                })?;
                let text = format!("{}-says-hi", self.name);
                client::send_text(&mut ws, hub::say_with_ref(&self.room, &text, "s")).await?;
                let message = reply_to(&mut ws, "s").await?;
                expect(&message, "message", |frame| {
                    frame.text.as_deref() == Some(text.as_str())
                })?;
                client::send_text(&mut ws, hub::leave(&self.room, "l")).await?;
                let left = reply_to(&mut ws, "l").await?;
                expect(&left, "left", |frame| {
                    frame.room.as_deref() == Some(self.room.as_str())
                })?;
                client::close(ws, false).await
            }
            Protocol::Raw => {
                let text = format!("{}-says-hi", self.name);
                client::send_text(&mut ws, text.clone()).await?;
                let echoed = client::next_text(&mut ws, REPLY_TIMEOUT).await?;
                if echoed != text {
                    return Err(format!(
                        "expected the echo of {text}, got {}",
                        client::shorten(&echoed)
                    ));
                }
                client::close(ws, true).await
            }
        }
    }
}

/// Reads frames until the one carrying `ref` (others' joins, leaves and messages in the
/// shared room pass by meanwhile).
async fn reply_to(ws: &mut Ws, reference: &str) -> Result<String, String> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let text = client::next_text(ws, left)
            .await
            .map_err(|why| format!("waiting for the reply to {reference}: {why}"))?;
        if hub::parse(&text)?.reference.as_deref() == Some(reference) {
            return Ok(text);
        }
    }
}

fn expect(text: &str, kind: &str, check: impl Fn(&hub::Frame<'_>) -> bool) -> Result<(), String> {
    let frame = hub::parse(text)?;
    if frame.is(kind) && check(&frame) {
        Ok(())
    } else {
        Err(format!("expected {kind}, got {}", client::shorten(text)))
    }
}

/// Polls `GET /api/rooms` until it lists no rooms; returns how many it still lists.
async fn presence_empties(target: &Target, errors: &ErrorLog) -> Option<u64> {
    let deadline = Instant::now() + PRESENCE_TIMEOUT;
    loop {
        let listing = match target.get("/api/rooms").await {
            Ok((200, body)) => body,
            Ok((status, body)) => {
                errors.record(format!(
                    "GET /api/rooms: {status} {}",
                    client::shorten(&body)
                ));
                return None;
            }
            Err(why) => {
                errors.record(why);
                return None;
            }
        };
        let rooms = serde_json::from_str::<serde_json::Value>(&listing)
            .ok()
            .and_then(|value| {
                value
                    .get("rooms")
                    .and_then(|rooms| rooms.as_array().cloned())
            });
        let Some(rooms) = rooms else {
            errors.record(format!(
                "GET /api/rooms: not a room listing: {}",
                client::shorten(&listing)
            ));
            return None;
        };
        // Rooms are kept after their last member left: empty is nobody in any of them.
        let occupied = rooms
            .iter()
            .filter(|room| {
                room.get("member_count")
                    .and_then(|n| n.as_u64())
                    .unwrap_or(1)
                    > 0
            })
            .count();
        if occupied == 0 {
            return Some(0);
        }
        if Instant::now() >= deadline {
            errors.record(format!(
                "presence did not empty: GET /api/rooms still lists {}",
                client::shorten(&listing)
            ));
            return Some(occupied as u64);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
