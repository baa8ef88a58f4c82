//! What a cluster node counts of its life with Redis, for `GET /metrics`: the calls
//! Redis did not answer, the subscriber connections it had to replace, the rooms it
//! found rebuilt, the nodes it reaped, and how long Redis takes to answer. Until now
//! these were only logged, and an operator alerting on a flaky or slow Redis had
//! nothing to scrape.
//!
//! One set per process, written by the cluster thread alone (so its adds never contend)
//! and read by a scrape. Each family has a fixed set of series, exported from the start
//! at 0, as every family in [`crate::metrics`] is.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use crate::metrics::{latency_bucket, LATENCY_BUCKETS};

/// A call to Redis, the values of `op` in `hubbub_store_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// A WebSocket command on a room (`join`, `say`, ...), whisper or listing.
    Ask,
    /// A disconnected member's leave (retried until Redis takes it).
    Departure,
    /// `POST /api/rooms/{room}/messages`.
    Publish,
    /// `DELETE /api/rooms/{room}/members/{id}`.
    Kick,
    /// `GET /api/rooms` and `GET /api/rooms/{room}`.
    Listing,
    /// A block of member ids.
    Ids,
    /// A new connection's entry in the member directory.
    Register,
    /// A room's catching up after the subscriber came back.
    Resume,
    /// The node's own upkeep: heartbeat, looking for lost nodes, sweeping, reaping.
    Upkeep,
}

impl StoreOp {
    pub const ALL: [StoreOp; 9] = [
        StoreOp::Ask,
        StoreOp::Departure,
        StoreOp::Publish,
        StoreOp::Kick,
        StoreOp::Listing,
        StoreOp::Ids,
        StoreOp::Register,
        StoreOp::Resume,
        StoreOp::Upkeep,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreOp::Ask => "ask",
            StoreOp::Departure => "departure",
            StoreOp::Publish => "publish",
            StoreOp::Kick => "kick",
            StoreOp::Listing => "listing",
            StoreOp::Ids => "ids",
            StoreOp::Register => "register",
            StoreOp::Resume => "resume",
            StoreOp::Upkeep => "upkeep",
        }
    }
}

/// The cluster thread's counts.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// By [`StoreOp`]: calls that failed or were not answered by their deadline.
    store_errors: [AtomicU64; StoreOp::ALL.len()],
    /// Subscriber connections replaced (closed, cut off, or silent for NODE_TIMEOUT_MS).
    subscriber_reconnects: AtomicU64,
    /// Rooms found rebuilt in Redis (a new epoch): their members here got `resync`.
    rooms_rebuilt: AtomicU64,
    /// Other nodes this node found lost and reaped.
    nodes_reaped: AtomicU64,
    /// Pipelines answered, by bucket of [`LATENCY_BUCKETS`] (not cumulative; the last:
    /// over every bound), and their round trips' sum in nanoseconds.
    round_trip_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    round_trip_nanos: AtomicU64,
}

/// A snapshot of [`ClusterCounters`], for the exposition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterTotals {
    pub store_errors: [u64; StoreOp::ALL.len()],
    pub subscriber_reconnects: u64,
    pub rooms_rebuilt: u64,
    pub nodes_reaped: u64,
    pub round_trip_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub round_trip_nanos: u64,
}

impl ClusterCounters {
    pub(crate) fn store_error(&self, op: StoreOp) {
        self.store_errors[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn subscriber_reconnected(&self) {
        self.subscriber_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn room_rebuilt(&self) {
        self.rooms_rebuilt.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn node_reaped(&self) {
        self.nodes_reaped.fetch_add(1, Ordering::Relaxed);
    }

    /// A pipeline's answers came `took` after it went.
    pub(crate) fn round_trip(&self, took: Duration) {
        let (bucket, nanos) = latency_bucket(took);
        self.round_trip_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.round_trip_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn totals(&self) -> ClusterTotals {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ClusterTotals {
            store_errors: std::array::from_fn(|i| read(&self.store_errors[i])),
            subscriber_reconnects: read(&self.subscriber_reconnects),
            rooms_rebuilt: read(&self.rooms_rebuilt),
            nodes_reaped: read(&self.nodes_reaped),
            round_trip_buckets: std::array::from_fn(|i| read(&self.round_trip_buckets[i])),
            round_trip_nanos: read(&self.round_trip_nanos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_count_lands_in_its_own_series() {
        let counters = ClusterCounters::default();
        counters.store_error(StoreOp::Publish);
        counters.store_error(StoreOp::Publish);
        counters.store_error(StoreOp::Upkeep);
        counters.subscriber_reconnected();
        counters.room_rebuilt();
        counters.node_reaped();
        let totals = counters.totals();
        for op in StoreOp::ALL {
            let expected = match op {
                StoreOp::Publish => 2,
                StoreOp::Upkeep => 1,
                _ => 0,
            };
            assert_eq!(
                totals.store_errors[op as usize],
                expected,
                "{}",
                op.as_str()
            );
        }
        assert_eq!(
            (
                totals.subscriber_reconnects,
                totals.rooms_rebuilt,
                totals.nodes_reaped
            ),
            (1, 1, 1)
        );
    }
}
