//! What `GET /api/stats` shows: a few of the server's counters, read from the same
//! atomics as `GET /metrics` ([`crate::metrics::Metrics::stats`]), with the room
//! state's sizes.

use serde::Serialize;

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
