//! The log of this test process, kept so tests can read what the server logged. Every
//! server the tests start runs in this process, so [`init`] installs one logger for all
//! of them: it keeps each line (info and above; every line `RUST_LOG` asks for too) and
//! prints what `RUST_LOG` asks for, as `env_logger` would in a test.
//!
//! Lines of servers running in parallel are mixed: a test finds its own by something
//! only it produces (an address only it connects from, a name only it uses). A line is
//! kept before the logging call returns, so whatever the server logged before it
//! answered a request is there once the answer has arrived.
//!
//! ```ignore
//! let warnings = log_capture::lines_containing("TRUSTED_PROXIES");
//! ```

use std::{
    collections::VecDeque,
    sync::{LazyLock, Mutex, Once},
};

use log::{LevelFilter, Log, Metadata, Record};

/// Lines kept at most, the oldest dropped first: enough for any one test to find its
/// own, bounded so that a long run (or a memory test) does not grow on the log.
const KEPT_LINES: usize = 50_000;

/// The least severe level always kept, whatever `RUST_LOG` says.
const ALWAYS_KEPT: LevelFilter = LevelFilter::Info;

static LINES: LazyLock<Mutex<VecDeque<String>>> = LazyLock::new(Default::default);

struct CapturingLogger {
    /// Prints what `RUST_LOG` selects, through the test harness's output capture.
    print: env_logger::Logger,
}

impl Log for CapturingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= ALWAYS_KEPT || self.print.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        {
            let mut lines = LINES
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if lines.len() == KEPT_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
        if self.print.matches(record) {
            self.print.log(record);
        }
    }

    fn flush(&self) {
        self.print.flush();
    }
}

/// Installs the capturing logger, once per process (later calls do nothing). The test
/// helpers call it before starting a server.
pub fn init() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let print = env_logger::Builder::from_env(env_logger::Env::default())
            .is_test(true)
            .build();
        let level = print.filter().max(ALWAYS_KEPT);
        if log::set_boxed_logger(Box::new(CapturingLogger { print })).is_ok() {
            log::set_max_level(level);
        }
    });
}

/// Every line kept so far, oldest first, each `LEVEL target: message`.
pub fn lines() -> Vec<String> {
    init();
    let lines = LINES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    lines.iter().cloned().collect()
}

/// The lines kept so far that contain `needle`, oldest first.
pub fn lines_containing(needle: &str) -> Vec<String> {
    lines()
        .into_iter()
        .filter(|line| line.contains(needle))
        .collect()
}
