//! hubbub: a real-time WebSocket hub on actix. The room logic (members, rooms, `seq`,
//! history, every command's rules) is the `hubbub-core` crate; this crate carries it to
//! sockets.
//!
//! How the pieces fit:
//!
//! - [`config`]: the typed `Config`, from the environment and `.env`.
//! - [`startup`]: builds the server (hub, supervisor, routes, per-worker plumbing,
//!   listener); used by `main` and the tests.
//! - [`protocol`]: the `/ws` wire types and validation (`hubbub-core`'s).
//! - [`hub`]: the session-manager actor: hands commands to room state through the
//!   backend seam and delivers what comes back.
//! - [`session`]: the actor behind each `/ws` connection; [`echo`]: the `/echo` actor.
//! - [`worker`]: one worker thread's plumbing: its way to the hub, its connections'
//!   inboxes and their [`courier`], its shutdown list.
//! - [`courier`]: delivers the hub's frames, one post per worker thread, into each
//!   connection's bounded inbox.
//! - [`supervisor`]: connection health: slow and jammed connections are ended there.
//! - [`transport`]: the only code that touches `actix-web-actors`.
//! - [`routes`]: HTTP handlers: upgrades, the JSON API, health, the page.
//! - [`admission`]: connection caps and the Origin allow-list, checked before upgrades.
//! - [`rate_limit`]: the per-connection token bucket on `/ws`.
//! - [`shutdown`]: the close-1001-then-exit signal shared by every connection.
//! - [`stats`]: the server's counters.

// Unsafe code is allowed item by item, each with its SAFETY reasoning.
#![deny(unsafe_code)]

pub use hubbub_core::protocol;

pub mod admission;
pub mod config;
pub mod courier;
pub mod echo;
pub mod hub;
pub mod rate_limit;
pub mod routes;
pub mod session;
pub mod shutdown;
pub mod startup;
pub mod stats;
pub mod supervisor;
pub mod transport;
pub mod worker;
