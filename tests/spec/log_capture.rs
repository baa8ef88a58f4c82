//! The spec binary's logger: it writes as `env_logger` does (filtered by `RUST_LOG`, into
//! each test's captured output), and while a test holds a [`Capture`] it also keeps every
//! line logged, at any level, from any thread and module (the server runs in this
//! process, so its log is in there), for the test to read.
//!
//! ```ignore
//! let log = Capture::start();
//! // ... drive the server ...
//! log.wait_for("refused a WebSocket").await;
//! assert!(!log.contains(secret), "{:#?}", log.lines());
//! ```
//!
//! Installed once for the whole binary by [`install`], which every `spawn_app*` helper
//! (and [`Capture::start`]) calls. Lines are `LEVEL target: message`. Tests run in
//! parallel, so a capture also holds other tests' lines: assert on what only this test
//! can have caused (its own token, its own room), never on a count of lines.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use log::{LevelFilter, Log, Metadata, Record};

use crate::helpers::DEADLINE;

/// The lines one [`Capture`] has kept.
type Lines = Arc<Mutex<Vec<String>>>;

struct CapturingLogger {
    /// What `RUST_LOG` asks to see, written where the test harness captures it.
    forward: env_logger::Logger,
    /// The captures alive now, by id.
    captures: Mutex<Vec<(u64, Lines)>>,
}

static LOGGER: OnceLock<&'static CapturingLogger> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Makes the capturing logger this process's logger (once; later calls do nothing).
pub fn install() {
    logger();
}

fn logger() -> &'static CapturingLogger {
    LOGGER.get_or_init(|| {
        let forward = env_logger::Builder::from_env(env_logger::Env::default())
            .is_test(true)
            .build();
        let logger: &'static CapturingLogger = Box::leak(Box::new(CapturingLogger {
            forward,
            captures: Mutex::new(Vec::new()),
        }));
        // Nothing else in this binary sets a logger; if something did, captures would
        // see nothing and their tests fail, which is what should happen.
        log::set_logger(logger).expect("the spec binary's only logger");
        logger.set_max_level(&logger.captures.lock().expect("not poisoned"));
        logger
    })
}

impl CapturingLogger {
    /// Everything while a capture is alive; only what `RUST_LOG` wants otherwise, so
    /// the tests that capture nothing do not pay for every trace line. Called with the
    /// captures locked, so a capture starting and another ending cannot cross.
    fn set_max_level(&self, captures: &[(u64, Lines)]) {
        log::set_max_level(if !captures.is_empty() {
            LevelFilter::Trace
        } else {
            self.forward.filter()
        });
    }
}

impl Log for CapturingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.forward.enabled(metadata) || !self.captures.lock().expect("not poisoned").is_empty()
    }

    fn log(&self, record: &Record<'_>) {
        if self.forward.matches(record) {
            self.forward.log(record);
        }
        let captures = self.captures.lock().expect("not poisoned");
        if captures.is_empty() {
            return;
        }
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        for (_, lines) in captures.iter() {
            lines.lock().expect("not poisoned").push(line.clone());
        }
    }

    fn flush(&self) {
        self.forward.flush();
    }
}

/// Every line logged from [`Capture::start`] until it is dropped.
pub struct Capture {
    id: u64,
    lines: Lines,
}

impl Capture {
    pub fn start() -> Capture {
        let logger = logger();
        let capture = Capture {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lines: Lines::default(),
        };
        let mut captures = logger.captures.lock().expect("not poisoned");
        captures.push((capture.id, capture.lines.clone()));
        logger.set_max_level(&captures);
        drop(captures);
        capture
    }

    /// The lines kept so far, in the order they were logged.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("not poisoned").clone()
    }

    /// Whether any line kept so far contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .expect("not poisoned")
            .iter()
            .any(|line| line.contains(needle))
    }

    /// The lines kept so far that contain `needle`, in the order they were logged.
    pub fn lines_containing(&self, needle: &str) -> Vec<String> {
        self.lines
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    /// The first line that contains `needle`, waiting for it under the deadline.
    pub async fn wait_for(&self, needle: &str) -> String {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .expect("not poisoned")
                .iter()
                .find(|line| line.contains(needle))
            {
                return line.clone();
            }
            assert!(
                started.elapsed() < DEADLINE,
                "no log line with {needle:?} within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let logger = logger();
        let mut captures = logger.captures.lock().expect("not poisoned");
        captures.retain(|(id, _)| *id != self.id);
        logger.set_max_level(&captures);
    }
}
