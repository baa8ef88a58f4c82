//! The executable spec of hubbub: one module per protocol area, each test driving the
//! real server over real sockets. Read these to learn what the server promises.

#![deny(unsafe_code)]

mod helpers;
mod log_capture;

mod abuse;
mod abuse_limits;
mod api_key;
mod auth;
mod backend_seam;
mod big_rooms;
mod cluster;
mod commands;
mod concurrency;
mod config;
mod connect;
mod echo_endpoint;
mod errors;
mod fanout;
mod heartbeat;
mod http_api;
mod kept_rooms;
mod limits;
mod metrics;
mod properties;
mod proxy;
mod rooms;
mod shutdown;
mod slow_reader;
mod tls;
mod token_command;
