//! The core's rules, command by command, through its public API only. One test binary;
//! [`helpers::TestHub`] stands in for the hub: it applies each operation to a `RoomState`
//! at a fixed time and delivers the effects the way the hub does, so a test says who
//! heard which event, in which order, and checks the state's views afterwards.
//!
//! One file per command (`join`, `leave`, `say`, `whisper`, `who`, `rooms`, `rename`,
//! `echo`), per operation that is not a command (`disconnect`, `kick`, `publish`, `views`), the
//! decoding of frames into commands (`decode`), connections with a token (`access`: users,
//! grants, `reauthorize`), a cluster's replicas of a room (`replica`), and long mixed
//! runs (`invariants`).

mod helpers;

mod access;
mod big_rooms;
mod decode;
mod disconnect;
mod echo;
mod invariants;
mod join;
mod kept_rooms;
mod kick;
mod leave;
mod publish;
mod rename;
mod replica;
mod resume;
mod rooms;
mod say;
mod views;
mod whisper;
mod who;
