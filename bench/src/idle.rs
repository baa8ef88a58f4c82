//! `idle` mode: N connections opened (the ramp) and held open, reading only (so the
//! server's heartbeat pings are answered). Reports handshakes/s during the ramp and,
//! with `--server-pid`, the server's RSS per connection: VmRSS after the ramp and the
//! hold, minus VmRSS before the ramp, over N. Every connection must stay open until the
//! end; hub connections must get `welcome` and nothing but pings afterwards.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use futures_util::StreamExt;
use tokio::{
    sync::{mpsc, watch, Semaphore},
    task::JoinSet,
};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    cli::{Common, Measure, Protocol},
    client::{self, Target, Ws},
    echo::expect_welcome,
    probe::ServerProbe,
    report::{ErrorLog, Summary},
};

/// File descriptors the load generator needs besides its connections.
const SPARE_FDS: u64 = 64;

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// hub: `/ws` (each connection reads its `welcome`); raw: `/echo`, connected only.
    #[arg(long, value_enum, default_value_t = Protocol::Hub)]
    pub protocol: Protocol,
    /// Path to connect to [default: /ws for hub, /echo for raw].
    #[arg(long)]
    pub path: Option<String>,
    /// Connections to hold.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub connections: usize,
    /// Handshakes in progress at once during the ramp.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to hold every connection open after the ramp, before measuring RSS (long
    /// enough for the server's heartbeats to run).
    #[arg(long, default_value_t = 3.0)]
    pub hold: f64,
}

impl IdleArgs {
    fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(self.protocol.default_path())
    }
}

impl Measure for IdleArgs {
    const NAME: &'static str = "idle";

    fn common(&self) -> &Common {
        &self.common
    }

    fn smoke(mut self) -> Self {
        self.connections = self.connections.min(20);
        self.concurrency = self.concurrency.min(8);
        self.hold = self.hold.min(0.5);
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
        raise_open_files(args.connections as u64 + SPARE_FDS)?;
        let errors = Arc::new(ErrorLog::default());
        let url = target.ws(args.path());

        let rss_before = probe.map(|probe| probe.rss_kib()).transpose()?;
        let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
        let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let ramp_start = Instant::now();
        for index in 0..args.connections {
            let holder = Holder {
                index,
                url: url.clone(),
                protocol: args.protocol,
                errors: errors.clone(),
            };
            tasks.spawn(holder.hold(gate.clone(), opened_tx.clone(), stop_rx.clone()));
        }
        drop(opened_tx);
        let mut opened = 0u64;
        let mut ramp = Duration::ZERO;
        while let Some(success) = opened_rx.recv().await {
            if success {
                opened += 1;
                ramp = ramp_start.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_secs_f64(args.hold.max(0.0))).await;
        let rss_after = probe.map(|probe| probe.rss_kib()).transpose()?;
        let _ = stop_tx.send(true);
        let mut pings = 0;
        while let Some(joined) = tasks.join_next().await {
            pings += joined.map_err(|err| format!("a connection task failed: {err}"))?;
        }

        let handshakes_per_s = opened as f64 / ramp.as_secs_f64().max(1e-9);
        let per_connection = match (rss_before, rss_after) {
            (Some(before), Some(after)) if opened > 0 => {
                Some((after as f64 - before as f64) / opened as f64)
            }
            _ => None,
        };
        let mut summary = Summary::new("idle", args.common.label.as_deref());
        summary
            .field("protocol", args.protocol.name())
            .field("path", args.path())
            .field("connections", args.connections)
            .field("opened", opened)
            .field("ramp_s", ramp.as_secs_f64())
            .field("handshakes_per_s", handshakes_per_s)
            .field("hold_s", args.hold)
            .field("pings_seen", pings)
            .field("rss_before_kib", rss_before)
            .field("rss_after_kib", rss_after)
            .field("rss_per_conn_kib", per_connection);
        let memory = match per_connection {
            Some(kib) => format!(
                ", server RSS {:.1} KiB/conn ({} -> {} KiB)",
                kib,
                rss_before.unwrap_or(0),
                rss_after.unwrap_or(0)
            ),
            None => String::new(),
        };
        summary.human(format!(
            "idle {} {}: {opened}/{} open, {:.0} handshakes/s over {:.2}s, {pings} pings{memory}",
            args.protocol.name(),
            args.path(),
            args.connections,
            handshakes_per_s,
            ramp.as_secs_f64(),
        ));
        Ok(summary.finish(&errors))
    }
}

/// One held connection.
struct Holder {
    index: usize,
    url: String,
    protocol: Protocol,
    errors: Arc<ErrorLog>,
}

impl Holder {
    /// Opens (reporting success on `opened`), then reads until `stop`; returns the
    /// pings seen.
    async fn hold(
        self,
        gate: Arc<Semaphore>,
        opened: mpsc::UnboundedSender<bool>,
        mut stop: watch::Receiver<bool>,
    ) -> u64 {
        let ws = {
            let _permit = gate.acquire_owned().await;
            match self.open().await {
                Ok(ws) => ws,
                Err(why) => {
                    self.errors
                        .record(format!("connection {}: {why}", self.index));
                    let _ = opened.send(false);
                    return 0;
                }
            }
        };
        let _ = opened.send(true);
        drop(opened);
        let mut ws = ws;
        let mut pings = 0;
        loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                item = ws.next() => match item {
                    Some(Ok(Message::Ping(_))) => pings += 1,
                    Some(Ok(Message::Pong(_))) => {}
                    other => {
                        let why = match client::classify(other) {
                            Ok(Some(text)) => format!("unexpected frame {}", client::shorten(&text)),
                            Ok(None) => continue,
                            Err(why) => why,
                        };
                        self.errors.record(format!("connection {}: {why}", self.index));
                        return pings;
                    }
                },
            }
        }
        if let Err(why) = client::close(ws, true).await {
            self.errors
                .record(format!("connection {}: {why}", self.index));
        }
        pings
    }

    async fn open(&self) -> Result<Ws, String> {
        let mut ws = client::connect(&self.url).await?;
        if self.protocol == Protocol::Hub {
            expect_welcome(&mut ws).await?;
        }
        Ok(ws)
    }
}

/// Raises this process's open-file limit to what `needed` connections take, up to the
/// hard limit; says what to do if the hard limit is too low.
pub fn raise_open_files(needed: u64) -> Result<(), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; RLIMIT_NOFILE is a valid resource.
    #[allow(unsafe_code)]
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if status != 0 {
        return Err(format!(
            "getrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        return Err(format!(
            "{needed} open files are needed but the hard limit (ulimit -Hn) is {}: raise it \
             (as root: ulimit -Hn {needed}, or nofile in /etc/security/limits.conf) or use fewer --connections",
            limit.rlim_max
        ));
    }
    limit.rlim_cur = needed.max(limit.rlim_cur);
    // SAFETY: setrlimit only reads the struct we own; the new soft limit is within the
    // hard limit.
    #[allow(unsafe_code)]
    let status = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    if status != 0 {
        return Err(format!(
            "setrlimit(RLIMIT_NOFILE, {needed}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
