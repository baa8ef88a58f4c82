//! `smoke` mode: every mode tiny (a few connections, about a second each), all checks
//! on, no timing asserted; the exit code says whether everything was correct. CI runs
//! it against a debug hubbub (`scripts/bench.sh --smoke`), which also runs the raw
//! steps against the two peers.
//!
//! Each step is an ordinary command line of this program with `--smoke`, printed
//! before it runs, so a failing step can be rerun by hand.

use std::time::Instant;

use clap::{Args, Parser, ValueEnum};

use crate::{
    cli::{self, Cli, Common, Mode},
    report::Summary,
};

#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Steps to run, comma-separated [default: every step that applies to hubbub].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Step {
    /// `echo` on `/echo`.
    EchoRaw,
    /// `echo` on `/ws` (JSON).
    EchoHub,
    /// `fanout` over 2 rooms x 3 members, flat out.
    FanoutHub,
    /// `fanout` at a set rate.
    FanoutRate,
    /// `fanout` without rooms or JSON (the broadcast peer).
    FanoutRaw,
    /// `idle` on `/ws`.
    IdleHub,
    /// `idle` on `/echo`.
    IdleRaw,
    /// `churn` on `/ws`, then presence must be empty.
    ChurnHub,
    /// `churn` on `/echo`.
    ChurnRaw,
    /// `joins`: 250 members into one room and out again (past PRESENCE_EVENTS_MAX).
    JoinsHub,
    /// `handshakes` on `/ws` without a token (the smoke's server has auth off).
    HandshakesHub,
}

/// What a hubbub server is smoke-tested with when `--only` is not given.
const HUBBUB_STEPS: [Step; 9] = [
    Step::EchoRaw,
    Step::EchoHub,
    Step::FanoutHub,
    Step::FanoutRate,
    Step::IdleHub,
    Step::IdleRaw,
    Step::ChurnHub,
    Step::JoinsHub,
    Step::HandshakesHub,
];

impl Step {
    /// The mode and its arguments, before `--url` and the shared flags.
    fn command(self) -> &'static [&'static str] {
        match self {
            Step::EchoRaw => &["echo", "--protocol", "raw"],
            Step::EchoHub => &["echo", "--protocol", "hub"],
            Step::FanoutHub => &[
                "fanout",
                "--protocol",
                "hub",
                "--rooms",
                "2",
                "--members",
                "3",
            ],
            Step::FanoutRate => &[
                "fanout",
                "--protocol",
                "hub",
                "--members",
                "3",
                "--rate",
                "50",
            ],
            Step::FanoutRaw => &["fanout", "--protocol", "raw", "--members", "3"],
            Step::IdleHub => &["idle", "--protocol", "hub"],
            Step::IdleRaw => &["idle", "--protocol", "raw"],
            Step::ChurnHub => &["churn", "--protocol", "hub"],
            Step::ChurnRaw => &["churn", "--protocol", "raw"],
            Step::JoinsHub => &["joins", "--members", "250"],
            Step::HandshakesHub => &["handshakes"],
        }
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_string())
            .unwrap_or_default()
    }
}

pub async fn run(args: SmokeArgs) -> Vec<Summary> {
    let steps = if args.only.is_empty() {
        HUBBUB_STEPS.to_vec()
    } else {
        args.only.clone()
    };
    let started = Instant::now();
    let mut summaries = Vec::new();
    for step in steps {
        let mut argv: Vec<String> = ["hubbub-bench"]
            .iter()
            .chain(step.command())
            .map(|part| part.to_string())
            .collect();
        argv.push("--smoke".into());
        for url in &args.common.url {
            argv.extend(["--url".into(), url.clone()]);
        }
        argv.extend(["--label".into(), format!("smoke-{}", step.name())]);
        for pid in &args.common.server_pid {
            argv.extend(["--server-pid".into(), pid.to_string()]);
        }
        eprintln!("smoke: {}", argv.join(" "));
        let cli = match Cli::try_parse_from(&argv) {
            Ok(cli) => cli,
            Err(err) => {
                summaries.push(Summary::failed(
                    "smoke",
                    Some(&step.name()),
                    err.to_string(),
                ));
                continue;
            }
        };
        let summary = match cli.mode {
            Mode::Echo(args) => cli::run(args).await,
            Mode::Fanout(args) => cli::run(args).await,
            Mode::Idle(args) => cli::run(args).await,
            Mode::Churn(args) => cli::run(args).await,
            Mode::Joins(args) => cli::run(args).await,
            Mode::Handshakes(args) => cli::run(args).await,
            Mode::Smoke(_) => unreachable!("no smoke step runs smoke"),
        };
        summaries.push(summary);
    }
    let errors: u64 = summaries.iter().map(|summary| summary.errors).sum();
    eprintln!(
        "smoke: {} step(s) in {:.1}s, {}",
        summaries.len(),
        started.elapsed().as_secs_f64(),
        if errors == 0 {
            "all checks passed".to_string()
        } else {
            format!("{errors} ERROR(S)")
        }
    );
    summaries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_is_a_valid_command_line() {
        for step in Step::value_variants() {
            let mut argv = vec!["hubbub-bench"];
            argv.extend(step.command());
            argv.extend(["--smoke", "--url", "ws://127.0.0.1:1"]);
            let cli = Cli::try_parse_from(&argv).unwrap();
            assert!(!matches!(cli.mode, Mode::Smoke(_)), "{step:?}");
        }
    }

    #[test]
    fn hubbub_steps_leave_out_the_peer_only_ones() {
        assert!(!HUBBUB_STEPS.contains(&Step::FanoutRaw));
        let parsed = Parser::try_parse_from([
            "hubbub-bench",
            "smoke",
            "--url",
            "ws://x:1",
            "--only",
            "echo-raw,idle-raw",
        ]);
        let cli: Cli = parsed.unwrap();
        let Mode::Smoke(args) = cli.mode else {
            panic!("not smoke")
        };
        assert_eq!(args.only, vec![Step::EchoRaw, Step::IdleRaw]);
    }
}
