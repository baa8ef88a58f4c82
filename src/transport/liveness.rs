//! Liveness: when the client was last heard from, for the heartbeat's timeout. It does
//! not send pings or stop anything (see `connection`).

use std::time::{Duration, Instant};

/// When the client was last heard from, kept at heartbeat resolution: a frame only sets
/// a flag (no clock read on the per-frame path); the heartbeat turns the flag into a time.
/// A silent client is therefore dropped between `timeout` and `timeout + interval`.
#[derive(Debug)]
pub(crate) struct Liveness {
    last_heard: Instant,
    heard_since_tick: bool,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            last_heard: Instant::now(),
            heard_since_tick: false,
        }
    }
}

impl Liveness {
    /// Anything arrived from the client.
    pub(crate) fn heard(&mut self) {
        self.heard_since_tick = true;
    }

    /// Called by the heartbeat: how long the client has been silent.
    pub(crate) fn silent_for(&mut self) -> Duration {
        let now = Instant::now();
        if std::mem::take(&mut self.heard_since_tick) {
            self.last_heard = now;
        }
        now.saturating_duration_since(self.last_heard)
    }
}
