//! The server's side of a measurement, read from `/proc/<pid>` (so the server must run
//! on the same machine): CPU time (`stat`: utime + stime, in clock ticks) of the process
//! and of its main thread, and resident memory (`status`: VmRSS now, VmHWM its peak).
//!
//! The main thread matters because actix runs the actors started in `main` there: hubbub's
//! hub and the broadcast peer's server actor. Its share of the CPU shows how close a
//! single actor is to being the ceiling.

use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct ServerProbe {
    pid: u32,
    /// Only this thread's CPU time (`/proc/<pid>/task/<tid>/stat`), or the whole process's.
    thread: Option<u32>,
    /// Clock ticks per second (`getconf CLK_TCK`, normally 100): the unit of utime/stime.
    ticks_per_second: u64,
}

/// The server's CPU time at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    ticks: u64,
    at: Instant,
}

/// CPU the server used between two samples.
#[derive(Debug, Clone, Copy)]
pub struct CpuUsage {
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
}

impl CpuUsage {
    /// 100 is one core busy for the whole interval.
    pub fn percent(&self) -> f64 {
        100.0 * self.cpu_seconds / self.wall_seconds.max(1e-9)
    }

    /// Server CPU microseconds per unit of work (message, delivery); `None` for none.
    pub fn micros_per(&self, units: u64) -> Option<f64> {
        (units > 0).then(|| self.cpu_seconds * 1e6 / units as f64)
    }
}

/// Several processes' usage over (nearly) the same interval: CPU added, the longest wall.
impl std::iter::Sum for CpuUsage {
    fn sum<I: Iterator<Item = Self>>(usages: I) -> Self {
        usages.fold(
            CpuUsage {
                cpu_seconds: 0.0,
                wall_seconds: 0.0,
            },
            |total, usage| CpuUsage {
                cpu_seconds: total.cpu_seconds + usage.cpu_seconds,
                wall_seconds: total.wall_seconds.max(usage.wall_seconds),
            },
        )
    }
}

impl ServerProbe {
    pub fn new(pid: u32) -> Result<Self, String> {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        #[allow(unsafe_code)]
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let probe = Self {
            pid,
            thread: None,
            ticks_per_second: if ticks > 0 { ticks as u64 } else { 100 },
        };
        probe.cpu()?;
        probe.rss_kib()?;
        Ok(probe)
    }

    /// The same process, counting only its main thread.
    pub fn main_thread(&self) -> Self {
        Self {
            thread: Some(self.pid),
            ..*self
        }
    }

    pub fn cpu(&self) -> Result<CpuSample, String> {
        let path = match self.thread {
            Some(tid) => format!("/proc/{}/task/{tid}/stat", self.pid),
            None => format!("/proc/{}/stat", self.pid),
        };
        let stat = std::fs::read_to_string(&path).map_err(|err| format!("{path}: {err}"))?;
        let at = Instant::now();
        Ok(CpuSample {
            ticks: parse_cpu_ticks(&stat).ok_or_else(|| format!("{path}: unexpected format"))?,
            at,
        })
    }

    pub fn usage(&self, from: CpuSample, to: CpuSample) -> CpuUsage {
        CpuUsage {
            cpu_seconds: to.ticks.saturating_sub(from.ticks) as f64 / self.ticks_per_second as f64,
            wall_seconds: to.at.duration_since(from.at).as_secs_f64(),
        }
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> Result<u64, String> {
        self.status_kib("VmRSS")
    }

    /// The highest resident set size since the process started ("high water mark"), in
    /// KiB: a peak between two samples is not missed.
    pub fn peak_rss_kib(&self) -> Result<u64, String> {
        self.status_kib("VmHWM")
    }

    /// A `Name:   1234 kB` line of `/proc/<pid>/status`.
    fn status_kib(&self, name: &str) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).map_err(|err| format!("{path}: {err}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .ok_or_else(|| format!("{path}: no {name} line"))
    }
}

/// utime + stime from `/proc/<pid>/stat`: fields 14 and 15, counted after the command
/// name, which is in parentheses and may itself hold spaces.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        let stat =
            "4242 (hub bub) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(1290));
    }

    #[test]
    fn reads_its_own_process() {
        let probe = ServerProbe::new(std::process::id()).unwrap();
        let rss = probe.rss_kib().unwrap();
        assert!(rss > 0);
        // Read after: the peak so far includes that moment.
        assert!(probe.peak_rss_kib().unwrap() >= rss);
        let first = probe.cpu().unwrap();
        let second = probe.cpu().unwrap();
        assert!(probe.usage(first, second).cpu_seconds >= 0.0);
        let main = probe.main_thread();
        assert!(main.cpu().unwrap().ticks <= probe.cpu().unwrap().ticks);
    }
}
