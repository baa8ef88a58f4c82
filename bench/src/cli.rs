//! The command line: one subcommand per mode, plus the arguments every mode takes.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Summary;

use crate::{
    churn::ChurnArgs, echo::EchoArgs, fanout::FanoutArgs, handshakes::HandshakesArgs,
    idle::IdleArgs, joins::JoinsArgs, smoke::SmokeArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "hubbub-bench",
    version,
    about = "Load generator for hubbub and its actix peers (see docs/benchmarks.md)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

impl Cli {
    pub fn common(&self) -> &Common {
        match &self.mode {
            Mode::Echo(args) => &args.common,
            Mode::Fanout(args) => &args.common,
            Mode::Idle(args) => &args.common,
            Mode::Churn(args) => &args.common,
            Mode::Joins(args) => &args.common,
            Mode::Handshakes(args) => &args.common,
            Mode::Smoke(args) => &args.common,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// N connections x W messages in flight x S bytes; every reply checked in order.
    Echo(EchoArgs),
    /// R rooms x M members, P publishers per room; every member must get every message once.
    Fanout(FanoutArgs),
    /// N connections held open: server RSS per connection and handshakes/s.
    Idle(IdleArgs),
    /// Connect, join, say, leave, disconnect cycles per second; presence must end empty.
    Churn(ChurnArgs),
    /// N members join one room at once, then leave at once: server CPU per join and leave.
    Joins(JoinsArgs),
    /// Connect, welcome, close on `/ws` as fast as answered, with a token or without.
    Handshakes(HandshakesArgs),
    /// Every mode tiny with all checks on and no timing asserted (CI).
    Smoke(SmokeArgs),
}

/// A load-generator mode: its arguments know how to shrink for a smoke run and how to
/// measure; [`run`] does the rest the same way for every mode.
pub trait Measure: Sized {
    /// The mode's name in summaries.
    const NAME: &'static str;
    fn common(&self) -> &Common;
    /// The same measurement, tiny (for `--smoke`).
    fn smoke(self) -> Self;
    fn measure(&self) -> impl std::future::Future<Output = Result<Summary, String>>;
}

/// Runs a mode, shrunk under `--smoke`; an error becomes a failed summary.
pub async fn run<M: Measure>(args: M) -> Summary {
    let args = if args.common().smoke {
        args.smoke()
    } else {
        args
    };
    let label = args.common().label.clone();
    match args.measure().await {
        Ok(summary) => summary,
        Err(why) => Summary::failed(M::NAME, label.as_deref(), why),
    }
}

/// What every mode takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The server, e.g. ws://127.0.0.1:8080 (http:// works too); each mode adds its path.
    /// `fanout` takes it more than once: the nodes of a cluster, members round-robin.
    #[arg(long, required = true)]
    pub url: Vec<String>,
    /// The server's process id, for its CPU time and RSS from /proc (same machine only).
    /// `fanout` takes it more than once (a cluster's nodes, its Redis): CPU is their sum.
    #[arg(long)]
    pub server_pid: Vec<u32>,
    /// Worker threads of the load generator [default: the CPUs it may run on].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run this mode tiny (a few connections, about a second), checks on.
    #[arg(long)]
    pub smoke: bool,
    /// Copied into the JSON summary, so a script can tell its runs apart.
    #[arg(long)]
    pub label: Option<String>,
}

impl Common {
    /// The one `--url` of a mode that talks to one server.
    pub fn single_url(&self) -> Result<&str, String> {
        match self.url.as_slice() {
            [url] => Ok(url),
            _ => Err("this mode takes one --url (only fanout takes several)".into()),
        }
    }

    /// The one `--server-pid` (or none) of a mode that measures one server.
    pub fn single_server_pid(&self) -> Result<Option<u32>, String> {
        match self.server_pid.as_slice() {
            [] => Ok(None),
            [pid] => Ok(Some(*pid)),
            _ => Err("this mode takes one --server-pid (only fanout takes several)".into()),
        }
    }
}

/// What the server speaks on the path a mode connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Plain WebSocket text: hubbub's `/echo` and the peers. No JSON, no rooms.
    Raw,
    /// The hub protocol on `/ws`: JSON frames, `welcome` first, rooms.
    Hub,
}

impl Protocol {
    /// Where this protocol is spoken unless `--path` says otherwise.
    pub fn default_path(self) -> &'static str {
        match self {
            Protocol::Raw => "/echo",
            Protocol::Hub => "/ws",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Raw => "raw",
            Protocol::Hub => "hub",
        }
    }
}
