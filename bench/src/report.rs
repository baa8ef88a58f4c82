//! What a run reports and how: the shared error log, the measurement window, latency
//! histograms, and the summary (one JSON line on stdout, one human line on stderr).

use std::{
    fmt::Display,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::{Map, Value};

use crate::probe::{CpuSample, CpuUsage, ServerProbe};

/// Errors printed in full; the rest are only counted, so a broken server cannot flood
/// the terminal.
const ERRORS_SHOWN: u64 = 20;

/// Every failed check of a run, counted; the first few printed as they happen.
#[derive(Debug, Default)]
pub struct ErrorLog {
    count: AtomicU64,
}

impl ErrorLog {
    pub fn record(&self, what: impl Display) {
        let seen = self.count.fetch_add(1, Ordering::Relaxed);
        if seen < ERRORS_SHOWN {
            eprintln!("error: {what}");
        } else if seen == ERRORS_SHOWN {
            eprintln!("error: (more errors are counted but not printed)");
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// When load runs and when it counts: from `start`, warm up until `measure_from`, then
/// measure until `deadline`. Work finished in `[measure_from, deadline)` is counted.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub deadline: Instant,
}

impl Window {
    pub fn starting_now(warmup_s: f64, duration_s: f64) -> Self {
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(warmup_s.max(0.0));
        Self {
            start,
            measure_from,
            deadline: measure_from + Duration::from_secs_f64(duration_s.max(0.01)),
        }
    }

    pub fn counts(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.deadline
    }

    pub fn seconds(&self) -> f64 {
        (self.deadline - self.measure_from).as_secs_f64()
    }

    /// Nanoseconds since `start`: how a send time travels inside a message's text.
    pub fn stamp(&self, at: Instant) -> u64 {
        at.duration_since(self.start).as_nanos() as u64
    }

    /// Latency of a message stamped `sent_ns`, received `at`.
    pub fn since_stamp(&self, sent_ns: u64, at: Instant) -> Duration {
        Duration::from_nanos(self.stamp(at).saturating_sub(sent_ns))
    }

    /// Samples the server's CPU (when there is a probe) and the load generator's own at
    /// `measure_from` and `deadline`, sleeping until each.
    pub async fn sample_cpu(&self, server: Option<ServerProbe>, errors: &ErrorLog) -> Cpu {
        let probes = CpuProbes::new(server);
        tokio::time::sleep_until(self.measure_from.into()).await;
        let from = probes.sample(Some(errors));
        tokio::time::sleep_until(self.deadline.into()).await;
        let to = probes.sample(Some(errors));
        probes.usage(from, to)
    }
}

/// CPU of several servers during a window: their sum as one server (no main thread: it
/// is one per process), and each one's own, in the order given.
#[derive(Debug, Clone)]
pub struct GroupCpu {
    pub total: Cpu,
    pub each: Vec<Option<CpuUsage>>,
}

impl Window {
    /// [`Window::sample_cpu`] over several processes (a cluster's nodes and its Redis):
    /// each sampled at the same two instants, their CPU summed. One process (or none) is
    /// exactly `sample_cpu`, main thread included.
    pub async fn sample_cpu_of(&self, servers: &[ServerProbe], errors: &ErrorLog) -> GroupCpu {
        if servers.len() <= 1 {
            let total = self.sample_cpu(servers.first().copied(), errors).await;
            let each = servers.iter().map(|_| total.server).collect();
            return GroupCpu { total, each };
        }
        let groups: Vec<CpuProbes> = servers
            .iter()
            .map(|server| CpuProbes::new(Some(*server)))
            .collect();
        tokio::time::sleep_until(self.measure_from.into()).await;
        let from: Vec<CpuSamples> = groups
            .iter()
            .map(|probes| probes.sample(Some(errors)))
            .collect();
        tokio::time::sleep_until(self.deadline.into()).await;
        let to: Vec<CpuSamples> = groups
            .iter()
            .map(|probes| probes.sample(Some(errors)))
            .collect();
        let usages: Vec<Cpu> = groups
            .iter()
            .zip(from.into_iter().zip(to))
            .map(|(probes, (from, to))| probes.usage(from, to))
            .collect();
        let each: Vec<Option<CpuUsage>> = usages.iter().map(|usage| usage.server).collect();
        // A gap in any one leaves the sum unknown rather than too small.
        let server = each.iter().copied().sum::<Option<CpuUsage>>();
        GroupCpu {
            total: Cpu {
                server,
                server_main_thread: None,
                client: usages.first().and_then(|usage| usage.client),
            },
            each,
        }
    }
}

/// CPU time of the server, its main thread (where hubbub's hub runs) and the load
/// generator, read together.
#[derive(Debug, Clone, Copy)]
pub struct CpuProbes([Option<ServerProbe>; 3]);

/// One reading of each of [`CpuProbes`]; a failed read is a gap.
pub type CpuSamples = [Option<CpuSample>; 3];

impl CpuProbes {
    pub fn new(server: Option<ServerProbe>) -> Self {
        Self([
            server,
            server.map(|server| server.main_thread()),
            ServerProbe::new(std::process::id()).ok(),
        ])
    }

    pub fn server(&self) -> Option<ServerProbe> {
        self.0[0]
    }

    /// Reads every probe; a failed read is recorded in `errors` when given (a server
    /// gone mid-run leaves a gap that the run's other checks explain).
    pub fn sample(&self, errors: Option<&ErrorLog>) -> CpuSamples {
        self.0.map(|probe| {
            probe?
                .cpu()
                .map_err(|err| {
                    if let Some(errors) = errors {
                        errors.record(format!("CPU time: {err}"));
                    }
                })
                .ok()
        })
    }

    /// What each probe used from `from` to `to`.
    pub fn usage(&self, from: CpuSamples, to: CpuSamples) -> Cpu {
        let usage = |i: usize| match (self.0[i], from[i], to[i]) {
            (Some(probe), Some(from), Some(to)) => Some(probe.usage(from, to)),
            _ => None,
        };
        Cpu {
            server: usage(0),
            server_main_thread: usage(1),
            client: usage(2),
        }
    }
}

/// CPU used during the measurement window.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub server: Option<CpuUsage>,
    /// The server's main thread, where actix runs the actors `main` starts (hubbub's hub).
    pub server_main_thread: Option<CpuUsage>,
    /// The load generator itself: near 100% per thread, it measured itself, not the server.
    pub client: Option<CpuUsage>,
}

/// Latency in microseconds, 1 us to 60 s at 3 significant digits (one per connection in
/// echo mode; merged at the end).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid bounds")
}

/// The same at 2 significant digits and 32-bit counts: fan-out keeps one per member
/// (thousands of them), where 3 digits would cost ~100 KiB each.
pub fn compact_latency_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 60_000_000, 2).expect("constant, valid bounds")
}

pub fn record_latency<T: hdrhistogram::Counter>(histogram: &mut Histogram<T>, latency: Duration) {
    histogram.saturating_record(latency.as_micros().max(1) as u64);
}

/// Adds a per-connection histogram into the run's total.
pub fn merge<T: hdrhistogram::Counter>(total: &mut Histogram<u64>, part: &Histogram<T>) {
    for value in part.iter_recorded() {
        total.saturating_record_n(value.value_iterated_to(), value.count_at_value().as_u64());
    }
}

/// One run's result.
#[derive(Debug)]
pub struct Summary {
    pub errors: u64,
    fields: Map<String, Value>,
    human: String,
}

impl Summary {
    pub fn new(mode: &str, label: Option<&str>) -> Self {
        let mut fields = Map::new();
        fields.insert("mode".into(), mode.into());
        if let Some(label) = label {
            fields.insert("label".into(), label.into());
        }
        Self {
            errors: 0,
            fields,
            human: String::new(),
        }
    }

    /// A field of the JSON line; floats are rounded to 3 decimals to keep it readable.
    pub fn field(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        let value = match value.into() {
            Value::Number(number) if number.is_f64() => number
                .as_f64()
                .and_then(|float| serde_json::Number::from_f64((float * 1000.0).round() / 1000.0))
                .map_or(Value::Null, Value::Number),
            value => value,
        };
        self.fields.insert(name.into(), value);
        self
    }

    pub fn latency(&mut self, histogram: &Histogram<u64>) -> &mut Self {
        let quantile = |q: f64| (!histogram.is_empty()).then(|| histogram.value_at_quantile(q));
        self.field("p50_us", quantile(0.5));
        self.field("p99_us", quantile(0.99));
        self.field("p999_us", quantile(0.999));
        self.field("max_us", (!histogram.is_empty()).then(|| histogram.max()))
    }

    pub fn cpu(&mut self, cpu: Cpu, per: &str, units: u64) -> &mut Self {
        self.field("server_cpu_pct", cpu.server.map(|usage| usage.percent()));
        self.field(
            &format!("cpu_us_per_{per}"),
            cpu.server.and_then(|usage| usage.micros_per(units)),
        );
        self.field(
            "server_main_thread_cpu_pct",
            cpu.server_main_thread.map(|usage| usage.percent()),
        );
        self.field("client_cpu_pct", cpu.client.map(|usage| usage.percent()))
    }

    pub fn human(&mut self, line: String) -> &mut Self {
        self.human = line;
        self
    }

    /// Prints the JSON line (stdout) and the human line (stderr) and returns the summary.
    pub fn finish(mut self, errors: &ErrorLog) -> Self {
        self.errors = errors.count();
        self.fields.insert("errors".into(), self.errors.into());
        println!("{}", Value::Object(self.fields.clone()));
        let verdict = if self.errors == 0 {
            "ok".to_string()
        } else {
            format!("{} ERROR(S)", self.errors)
        };
        eprintln!("{}  [{verdict}]", self.human);
        self
    }

    /// A run that could not start (no server, bad arguments): one error, no figures.
    pub fn failed(mode: &str, label: Option<&str>, why: String) -> Self {
        let errors = ErrorLog::default();
        errors.record(&why);
        let mut summary = Self::new(mode, label);
        summary.field("failed", why);
        summary.human(format!("{mode}: could not run"));
        summary.finish(&errors)
    }
}

/// Formats a latency in microseconds for the human line.
pub fn micros(value: Option<u64>) -> String {
    match value {
        None => "-".into(),
        Some(us) if us >= 10_000 => format!("{:.1}ms", us as f64 / 1000.0),
        Some(us) => format!("{us}us"),
    }
}

/// Formats the CPU part of a human line.
pub fn cpu_text(cpu: Cpu, per: &str, units: u64) -> String {
    let server = match (cpu.server, cpu.server_main_thread) {
        (Some(usage), Some(main)) => format!(
            ", server CPU {:.0}% (main thread {:.0}%) = {:.2}us/{per}",
            usage.percent(),
            main.percent(),
            usage.micros_per(units).unwrap_or(f64::NAN)
        ),
        // Several processes (a cluster): their sum, no one main thread.
        (Some(usage), None) => format!(
            ", server CPU {:.0}% (all processes) = {:.2}us/{per}",
            usage.percent(),
            usage.micros_per(units).unwrap_or(f64::NAN)
        ),
        _ => String::new(),
    };
    match cpu.client {
        None => server,
        Some(usage) => format!("{server}, load generator CPU {:.0}%", usage.percent()),
    }
}

pub fn quantiles(histogram: &Histogram<u64>) -> [Option<u64>; 3] {
    [0.5, 0.99, 0.999].map(|q| (!histogram.is_empty()).then(|| histogram.value_at_quantile(q)))
}
