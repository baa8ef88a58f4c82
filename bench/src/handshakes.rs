//! `handshakes` mode: W workers each repeating connect to `/ws`, read `welcome`, close,
//! as fast as the server answers. Reports handshakes/s and the server's CPU per
//! handshake over the measured window. With `--token`, every connection gives it as
//! `?token=` and its `welcome` must name a `user` (the server checked it); without,
//! `welcome` must have none. `scripts/bench-handshakes.sh` runs it against a server with
//! authentication off and one with it on, interleaved: what a token check costs a
//! connect.

use std::{sync::Arc, time::Instant};

use clap::Args;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::{
    cli::{Common, Measure},
    client::{self, Target, REPLY_TIMEOUT},
    probe::ServerProbe,
    report::{self, ErrorLog, Summary, Window},
};

#[derive(Debug, Clone, Args)]
pub struct HandshakesArgs {
    #[command(flatten)]
    pub common: Common,
    /// Concurrent workers, each one connection at a time.
    #[arg(long, short = 'w', default_value_t = 32)]
    pub workers: usize,
    /// A token (JWT) to connect with, as `?token=`; the server must check it.
    #[arg(long)]
    pub token: Option<String>,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
}

impl Measure for HandshakesArgs {
    const NAME: &'static str = "handshakes";

    fn common(&self) -> &Common {
        &self.common
    }

    fn smoke(mut self) -> Self {
        self.workers = self.workers.min(4);
        self.duration = self.duration.min(1.0);
        self.warmup = 0.0;
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
        let url = match &args.token {
            Some(token) => target.ws(&format!("/ws?name=hs&token={token}")),
            None => target.ws("/ws?name=hs"),
        };
        let authenticated = args.token.is_some();
        let window = Window::starting_now(args.warmup, args.duration);
        let mut tasks = JoinSet::new();
        for worker in 0..args.workers.max(1) {
            let (url, errors) = (url.clone(), errors.clone());
            tasks.spawn(async move {
                let mut times = report::latency_histogram();
                let mut handshakes = 0u64;
                while Instant::now() < window.deadline {
                    let started = Instant::now();
                    if let Err(why) = once(&url, authenticated).await {
                        errors.record(format!("worker {worker}: {why}"));
                        break;
                    }
                    let finished = Instant::now();
                    if window.counts(finished) {
                        handshakes += 1;
                        report::record_latency(&mut times, finished - started);
                    }
                }
                (handshakes, times)
            });
        }
        let cpu = window.sample_cpu(probe, &errors).await;
        let mut handshakes = 0;
        let mut times = report::latency_histogram();
        while let Some(joined) = tasks.join_next().await {
            let (count, worker_times): (u64, Histogram<u64>) =
                joined.map_err(|err| format!("a worker task failed: {err}"))?;
            handshakes += count;
            report::merge(&mut times, &worker_times);
        }

        let rate = handshakes as f64 / window.seconds();
        let [p50, p99, _] = report::quantiles(&times);
        let mut summary = Summary::new("handshakes", args.common.label.as_deref());
        summary
            .field("auth", authenticated)
            .field("workers", args.workers)
            .field("duration_s", window.seconds())
            .field("handshakes", handshakes)
            .field("handshakes_per_s", rate)
            .latency(&times)
            .cpu(cpu, "handshake", handshakes);
        summary.human(format!(
            "handshakes /ws {}: {} workers: {:.0} connects/s, connect-welcome-close p50 {} p99 {}{}",
            if authenticated { "with a token" } else { "without a token" },
            args.workers,
            rate,
            report::micros(p50),
            report::micros(p99),
            report::cpu_text(cpu, "handshake", handshakes),
        ));
        Ok(summary.finish(&errors))
    }
}

/// One connect, `welcome` (with a `user` when `authenticated`, without otherwise), close.
async fn once(url: &str, authenticated: bool) -> Result<(), String> {
    let mut ws = client::connect(url).await?;
    let text = client::next_text(&mut ws, REPLY_TIMEOUT).await?;
    let welcome: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| format!("welcome is not JSON: {err}"))?;
    if welcome["type"] != "welcome" {
        return Err(format!(
            "expected welcome first, got {}",
            client::shorten(&text)
        ));
    }
    if welcome.get("user").is_some() != authenticated {
        return Err(format!(
            "welcome {} a user: {}",
            if authenticated { "lacks" } else { "names" },
            client::shorten(&text)
        ));
    }
    client::close(ws, false).await
}
