//! hubbub: a real-time WebSocket hub on actix. The room logic (members, rooms, `seq`,
//! history, every command's rules) is the `hubbub-core` crate; this crate carries it to
//! sockets.
//!
//! How the pieces fit (the private ones are documented with
//! `cargo doc --document-private-items`):
//!
//! - [`config`]: the typed `Config`, from the environment and `.env`.
//! - [`auth`]: connection tokens (JWT): the configured key, the `Verifier` every `/ws`
//!   upgrade and `refresh` asks, and minting for `hubbub token` ([`token_command`]).
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
//! - [`routes`]: HTTP handlers: upgrades, the JSON API, health, metrics, the page.
//! - [`admission`]: connection caps and the Origin allow-list, checked before upgrades.
//! - [`client_address`]: who a connection is from, through the `TRUSTED_PROXIES` and
//!   their `X-Forwarded-For` / `Forwarded` headers.
//! - [`rate_limit`]: the per-connection token bucket on `/ws`.
//! - [`shutdown`]: the close-1001-then-exit signal shared by every connection.
//! - [`tls`]: TLS on `PORT` and the certificate reloader (a renewed certificate is served
//!   without a restart).
//! - [`metrics`]: the server's counters and gauges (atomics) and their Prometheus text
//!   for `GET /metrics`; [`stats`]: the few of them `GET /api/stats` shows.

// Unsafe code is allowed item by item, each with its SAFETY reasoning.
#![deny(unsafe_code)]
// The module map above links the crate's private modules too: the docs are for the
// people who work on hubbub, built with `cargo doc --document-private-items` (CI does,
// with -D warnings, so a broken link still fails).
#![allow(rustdoc::private_intra_doc_links)]

pub use hubbub_core::protocol;

// What the tests, the benchmarks and the fuzz targets use is public: the config (and the
// trusted-proxy list it holds), the server, the backend seam, the wire types, the frame
// reassembler, tokens and the `hubbub token` subcommand. The rest is the crate's own, so
// rustc reports what nothing uses.
pub mod auth;
pub mod client_address;
pub mod cluster;
pub mod config;
pub mod hub;
pub mod startup;
pub mod tls;
pub mod token_command;
pub mod transport;

mod admission;
mod courier;
mod echo;
mod metrics;
mod rate_limit;
mod routes;
mod session;
mod shutdown;
mod stats;
mod supervisor;
mod worker;
