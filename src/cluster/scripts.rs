//! The two Lua scripts and how they are called. Each call is one `EVALSHA` sent in the
//! order it was asked for (one connection, so Redis runs them in that order); a
//! `NOSCRIPT` (Redis restarted) loads them again and the call is answered `unavailable`
//! like any other that did not run.

use std::time::Duration;

use redis::{Cmd, Script};

use crate::protocol::{RoomName, Timestamp};

/// A room's keys, all with the room's hash tag, in the order room.lua takes them.
pub fn room_keys(prefix: &str, room: &RoomName) -> [String; 7] {
    ["meta", "members", "hist", "log", "nodes", "idem", "idemt"]
        .map(|part| format!("{prefix}:{{{room}}}:{part}"))
}

/// The scripts' sources, also what is loaded again into a Redis that forgot them.
pub const ROOM_LUA: &str = include_str!("lua/room.lua");
pub const NODE_LUA: &str = include_str!("lua/node.lua");

pub struct Scripts {
    pub room: Script,
    pub node: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            room: Script::new(ROOM_LUA),
            node: Script::new(NODE_LUA),
        }
    }
}

/// The room rules every room.lua call carries (so a Redis that lost its data needs
/// nothing written back before the rooms work again).
#[derive(Debug, Clone)]
pub struct RoomRules {
    pub history_len: usize,
    pub room_ttl_ms: u64,
    pub max_rooms: usize,
    pub idempotency_ttl_ms: u64,
    pub idempotency_keys_max: usize,
    pub log_len: usize,
}

/// One room.lua call.
pub struct RoomCall<'a> {
    pub prefix: &'a str,
    pub room: &'a RoomName,
    pub op: &'a str,
    pub deadline: Duration,
    pub origin: &'a str,
    pub ask: Option<u64>,
    pub member: Option<u64>,
    pub a1: &'a str,
    pub a2: &'a str,
    pub epoch: &'a str,
    pub rules: &'a RoomRules,
}

impl RoomCall<'_> {
    pub fn command(&self, scripts: &Scripts) -> Cmd {
        let deadline = Timestamp::now().millis() + self.deadline.as_millis() as i64;
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(scripts.room.get_hash()).arg(7);
        for key in room_keys(self.prefix, self.room) {
            cmd.arg(key);
        }
        cmd.arg(self.prefix)
            .arg(self.room.as_str())
            .arg(self.op)
            .arg(deadline)
            .arg(self.origin)
            .arg(self.ask.map(|a| a.to_string()).unwrap_or_default())
            .arg(self.member.map(|m| m.to_string()).unwrap_or_default())
            .arg(self.a1)
            .arg(self.a2)
            .arg(self.epoch)
            .arg(self.rules.history_len)
            .arg(self.rules.room_ttl_ms)
            .arg(self.rules.max_rooms)
            .arg(self.rules.idempotency_ttl_ms)
            .arg(self.rules.idempotency_keys_max)
            .arg(self.rules.log_len);
        cmd
    }
}

/// One node.lua call: `op` and its own arguments.
pub fn node_command(scripts: &Scripts, prefix: &str, me: &str, op: &str, args: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(scripts.node.get_hash())
        .arg(0)
        .arg(prefix)
        .arg(op)
        .arg(me);
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}
