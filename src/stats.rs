//! The server's counters: kept with atomics by whoever counts (the hub, the
//! supervisor), read as a [`StatsView`] by `GET /api/stats`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters since the server started. Each is only ever added to, from any thread.
#[derive(Debug, Default)]
pub struct Counters {
    frames_serialized: AtomicU64,
    frames_delivered: AtomicU64,
    posts: AtomicU64,
    members_dropped_slow: AtomicU64,
}

impl Counters {
    pub(crate) fn frame_serialized(&self) {
        self.frames_serialized.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn frames_delivered(&self, count: usize) {
        self.frames_delivered
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn post(&self) {
        self.posts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn member_dropped_slow(&self) {
        self.members_dropped_slow.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now, with the room state's sizes.
    pub(crate) fn view(&self, members: usize, rooms: usize) -> StatsView {
        StatsView {
            members,
            rooms,
            frames_serialized: self.frames_serialized.load(Ordering::Relaxed),
            frames_delivered: self.frames_delivered.load(Ordering::Relaxed),
            posts: self.posts.load(Ordering::Relaxed),
            members_dropped_slow: self.members_dropped_slow.load(Ordering::Relaxed),
        }
    }
}

/// What `GET /api/stats` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsView {
    /// Connected `/ws` members now.
    pub members: usize,
    /// Rooms that exist now.
    pub rooms: usize,
    /// Frames serialized: once per event, however many members receive it.
    pub frames_serialized: u64,
    /// Frames queued to members; over `frames_serialized`, the fan-out factor.
    pub frames_delivered: u64,
    /// Messages to the worker threads' couriers: one per worker per broadcast (carrying
    /// the frame and that worker's recipients) and one per reply. Over
    /// `frames_delivered`, how much delivering cost in cross-thread messages.
    pub posts: u64,
    /// Members dropped for being too slow to read.
    pub members_dropped_slow: u64,
}
