//! hubbub: a real-time WebSocket hub on actix.
//!
//! How the pieces fit:
//!
//! - [`config`]: the typed `Config`, from the environment and `.env`.
//! - [`startup`]: builds the server (hub, routes, listener); used by `main` and the tests.
//! - [`protocol`]: the `/ws` wire types and validation; no actix.
//! - [`hub`]: the session-manager actor that owns rooms, members, `seq` and history.
//! - [`session`]: the actor behind each `/ws` connection; [`echo`]: the `/echo` actor.
//! - [`courier`]: delivers the hub's frames, one post per worker thread, into each
//!   connection's bounded inbox (slow readers are dropped).
//! - [`outbox`]: the hub's handle on one connection.
//! - [`transport`]: the only code that touches `actix-web-actors`.
//! - [`watchdog`]: resets `/echo` connections whose actor is jammed.
//! - [`routes`]: HTTP handlers: upgrades, the JSON API, health, the page.
//! - [`admission`]: connection caps and the Origin allow-list, checked before upgrades.
//! - [`rate_limit`]: the per-connection token bucket on `/ws`.
//! - [`shutdown`]: the close-1001-then-exit signal shared by every connection.

// Unsafe code is allowed item by item, each with its SAFETY reasoning.
#![deny(unsafe_code)]

pub mod admission;
pub mod config;
pub mod courier;
pub mod echo;
pub mod hub;
pub mod outbox;
pub mod protocol;
pub mod rate_limit;
pub mod routes;
pub mod session;
pub mod shutdown;
pub mod startup;
pub mod transport;
pub mod watchdog;
