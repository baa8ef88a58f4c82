//! `hubbub-bench`: the load generator behind `scripts/bench.sh` and `docs/benchmarks.md`.
//!
//! One mode per file, each owning its arguments, its load and its correctness checks:
//!
//! - [`echo`]: N connections x W messages in flight x S bytes on `/echo` or `/ws`;
//! - [`fanout`]: R rooms x M members with P publishers per room, flat out or at a rate;
//! - [`idle`]: N connections held open: server RSS per connection, handshakes/s;
//! - [`churn`]: connect, join, say, leave, disconnect cycles; presence must end empty;
//! - [`joins`]: N members join one room at once, then leave at once: CPU per join/leave;
//! - [`handshakes`]: connect, `welcome`, close as fast as the server answers, with a
//!   token or without: what authentication costs a connect;
//! - [`smoke`]: every mode tiny, all checks on, no timing asserted (what CI runs).
//!
//! The plumbing they share: [`cli`] (arguments every mode takes), [`client`] (WebSocket
//! and HTTP connections), [`hub`] (the hub-protocol frames the modes speak), [`probe`]
//! (server CPU and RSS from `/proc`), [`report`] (error log, latency, the summary lines).
//!
//! Every run prints one JSON line on stdout and one human line on stderr; the exit code
//! is 0 only if no check failed.

// Unsafe code is allowed item by item, each with its SAFETY reasoning.
#![deny(unsafe_code)]

mod churn;
mod cli;
mod client;
mod echo;
mod fanout;
mod handshakes;
mod hub;
mod idle;
mod joins;
mod probe;
mod report;
mod smoke;

use clap::Parser;

use cli::{Cli, Mode};

fn main() {
    let cli = Cli::parse();
    let threads = cli.common().threads.unwrap_or_else(|| {
        // Respects the CPU affinity `taskset` gives us, so a pinned run uses its cores.
        std::thread::available_parallelism().map_or(1, |n| n.get())
    });
    let mut builder = match &cli.mode {
        // Every member's socket wakes at once in a storm: on the load generator's one core,
        // one thread polls them all without handing wake-ups across threads.
        Mode::Joins(_) if cli.common().threads.is_none() => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads.max(1));
            builder
        }
    };
    let runtime = builder
        .enable_all()
        .build()
        .expect("a tokio runtime can be built (only fails on OS resource exhaustion)");
    let errors = runtime.block_on(async move {
        let summaries = match cli.mode {
            Mode::Echo(args) => vec![cli::run(args).await],
            Mode::Fanout(args) => vec![cli::run(args).await],
            Mode::Idle(args) => vec![cli::run(args).await],
            Mode::Churn(args) => vec![cli::run(args).await],
            Mode::Joins(args) => vec![cli::run(args).await],
            Mode::Handshakes(args) => vec![cli::run(args).await],
            Mode::Smoke(args) => smoke::run(args).await,
        };
        summaries.iter().map(|summary| summary.errors).sum::<u64>()
    });
    // Connections still closing in the background are not waited for.
    runtime.shutdown_background();
    if errors > 0 {
        eprintln!("hubbub-bench: {errors} error(s)");
        std::process::exit(1);
    }
}
