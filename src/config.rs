//! Typed configuration read from the environment (and an optional `.env`).
//!
//! Every limit and timer the server uses lives here, with a default that makes a bare
//! `cargo run` work. `.env.example` mirrors this file: a new setting is added to both.
//! This module parses and validates; the only files it reads are `.env` (through
//! [`Config::from_env`]) and the public key `AUTH_JWT_PUBLIC_KEY_FILE` names, so a bad
//! key stops start-up like any bad setting. Tests build configs from plain key/value
//! pairs.

use std::{collections::HashMap, fmt, path::PathBuf, time::Duration};

use hubbub_core::protocol::{NodeId, MAX_PAGE};

use crate::client_address::TrustedProxies;

use crate::auth::{AuthKey, PublicKey, MIN_SECRET_BYTES};

/// Every variable [`Config::from_vars`] reads, in `.env.example` order.
pub const VARIABLES: &[&str] = &[
    "HOST",
    "PORT",
    "MAX_MESSAGE_BYTES",
    "MAX_ROOMS_PER_CONNECTION",
    "MAX_PENDING_BYTES",
    "HEARTBEAT_INTERVAL_MS",
    "CLIENT_TIMEOUT_MS",
    "HISTORY_LEN",
    "JOINED_MEMBERS_MAX",
    "PRESENCE_EVENTS_MAX",
    "MEMBER_COUNT_INTERVAL_MS",
    "ROOM_TTL_MS",
    "MAX_ROOMS_TOTAL",
    "HISTORY_MAX_BYTES",
    "IDEMPOTENCY_TTL_MS",
    "IDEMPOTENCY_KEYS_MAX",
    "STATIC_DIR",
    "SHUTDOWN_TIMEOUT_MS",
    "CLOSE_LINGER_MS",
    "CLOSE_TIMEOUT_MS",
    "WORKERS",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_IP",
    "RATE_LIMIT_PER_S",
    "RATE_LIMIT_BURST",
    "RATE_LIMIT_STRIKES",
    "HANDSHAKE_TIMEOUT_MS",
    "ALLOWED_ORIGINS",
    "API_KEY",
    "NODE_ID",
    // Behind a reverse proxy.
    "TRUSTED_PROXIES",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "TLS_RELOAD_INTERVAL_MS",
    "AUTH_JWT_SECRET",
    "AUTH_JWT_PUBLIC_KEY_FILE",
    "AUTH_LEEWAY_MS",
    "AUTH_TOKEN_MAX_BYTES",
    // A cluster of nodes sharing their rooms through Redis.
    "REDIS_URL",
    "NODE_TIMEOUT_MS",
    "REDIS_PREFIX",
    "REDIS_LOG_LEN",
];

/// Everything the server can be told at start-up.
///
/// Its `Debug` is written out (below) rather than derived, so that the password a
/// `REDIS_URL` may carry is shown as `***`, as [`Config::redis_url_for_logs`] does.
#[derive(Clone)]
pub struct Config {
    /// Address to bind; loopback by default so a first `cargo run` is not exposed.
    pub host: String,
    /// TCP port; `0` asks the OS for a free one (tests and `scripts/` use that).
    pub port: u16,
    /// Largest WebSocket message accepted on `/ws` and `/echo`, in bytes, after
    /// reassembling fragments. Over it the connection is closed with 1009.
    pub max_message_bytes: usize,
    /// How many rooms one connection may be in at once (`too_many_rooms` past it).
    pub max_rooms_per_connection: usize,
    /// Bytes the hub may queue for one connection that has not yet been handed to its
    /// socket. A client that lets more pile up is too slow: it is closed with 1013 and
    /// its rooms see `member_left` with `reason: "slow"`.
    pub max_pending_bytes: usize,
    /// How often the server pings each client.
    pub heartbeat_interval: Duration,
    /// A client heard nothing from (no pong, no frame) for this long is dropped.
    pub client_timeout: Duration,
    /// How many recent messages each room keeps and sends in `joined`.
    pub history_len: usize,
    /// Members listed in `joined` (the joiner always among them); `who` and the HTTP
    /// API page through the rest.
    pub joined_members_max: usize,
    /// Past this many members a room is *big*: its members get `member_count` instead
    /// of a `member_joined` or `member_left` per change, so filling a room does not cost
    /// the square of its size.
    pub presence_events_max: usize,
    /// How often a big room whose count changed hears `member_count`.
    pub member_count_interval: Duration,
    /// How long a room nobody is in is kept, with its `seq`, `epoch` and history, after
    /// its last member left or its last message, whichever is later; zero: gone when
    /// empty.
    pub room_ttl: Duration,
    /// Rooms kept at most. At the cap the empty room idle longest goes; when every room
    /// is occupied a new one is refused (`rooms_full`, HTTP 503).
    pub max_rooms_total: usize,
    /// What the history of every room may cost together, in bytes (text plus about 160
    /// bytes per message). Past it the history of the empty rooms idle longest goes
    /// first, then the oldest messages of the rooms with the largest history.
    pub history_max_bytes: usize,
    /// How long a publish's `Idempotency-Key` is remembered in its room.
    pub idempotency_ttl: Duration,
    /// `Idempotency-Key`s remembered per room at most (the oldest forgotten first).
    pub idempotency_keys_max: usize,
    /// Where the browser page lives.
    pub static_dir: PathBuf,
    /// How long a graceful shutdown waits for clients to take their 1001 close
    /// before the remaining connections are dropped.
    pub shutdown_timeout: Duration,
    /// After a connection's last frame is written, how long the server goes on reading
    /// (and discarding) what the client still sends before closing the TCP connection.
    /// Zero closes at once, as RFC 6455 wants after a close handshake; a linger protects
    /// a close frame from a reset when the client is still sending, at the price of
    /// keeping every closed connection open that long.
    pub close_linger: Duration,
    /// After the server sends a close frame, how long it waits for the client's close
    /// before dropping the connection anyway.
    pub close_timeout: Duration,
    /// HTTP worker threads; `0` means one per CPU core.
    pub workers: usize,
    /// WebSocket connections (`/ws` and `/echo` together) the server holds at once; past
    /// it an upgrade is refused with 503 before it happens.
    pub max_connections: usize,
    /// The same, per client IP address, so one host cannot take every slot.
    pub max_connections_per_ip: usize,
    /// Messages per second one `/ws` connection may send, sustained; `0` turns the rate
    /// limit off. Past it a message is refused with `rate_limited`.
    pub rate_limit_per_s: u32,
    /// Messages a `/ws` connection may send in a burst above the sustained rate.
    pub rate_limit_burst: u32,
    /// Refused messages in a row after which the connection is closed with 1008.
    pub rate_limit_strikes: u32,
    /// Time a new connection has to send its complete HTTP request (the upgrade);
    /// slower ones are dropped, so half-open handshakes cannot pile up. With TLS the TLS
    /// handshake gets this long too (then the request its own), or a client that opens a
    /// connection and says nothing would hold it open. A connection gets at least this
    /// long, and at most 0.5 s more (see `ACTIX_CLOCK_STEP` in `startup.rs`).
    pub handshake_timeout: Duration,
    /// `Origin`s allowed to open WebSockets (exact match, e.g. `https://chat.example`);
    /// empty allows any. Requests without `Origin` (non-browser clients) are allowed.
    pub allowed_origins: Vec<String>,
    /// With it set, every `/api/*` request and `/metrics` need
    /// `Authorization: Bearer <API_KEY>` (else 401); `/healthz` stays open.
    pub api_key: Option<Secret>,
    /// This server process's id, in `welcome.node` and the logs. Generated at every
    /// start unless set, so two processes (or one before and after a restart) never
    /// share one; set it to give a node a name an operator recognises.
    pub node_id: NodeId,
    /// Reverse proxies (addresses and CIDR blocks) whose `X-Forwarded-For` or `Forwarded`
    /// header names the client: behind nginx every TCP peer is nginx, and without this
    /// every client would share its address and its `MAX_CONNECTIONS_PER_IP`. Empty (the
    /// default): the headers are ignored, since anyone may send them.
    pub trusted_proxies: TrustedProxies,
    /// `TLS_CERT_FILE` and `TLS_KEY_FILE`: with both set, `PORT` speaks only TLS
    /// (`https://`, `wss://`), so the server can face the internet without a proxy in
    /// front. Only the paths are kept here: the files are read when the server starts (a
    /// bad one stops the start) and again whenever they change (see [`crate::tls`]).
    pub tls: Option<TlsFiles>,
    /// How often the TLS files are checked for a renewed certificate; zero: never, only
    /// on SIGHUP. Certificates are renewed days before they expire, so seconds are plenty,
    /// and reading two small files that often costs nothing.
    pub tls_reload_interval: Duration,
    /// The key that checks connection tokens on `/ws`: `AUTH_JWT_SECRET` (HS256) or
    /// `AUTH_JWT_PUBLIC_KEY_FILE` (RS256 or ES256, by the key's type). With one set,
    /// every `/ws` connection needs a valid token (`401` before the upgrade otherwise);
    /// `None`: no tokens, anyone who reaches the port may connect.
    pub auth_key: Option<AuthKey>,
    /// How far a token's `exp` and `nbf` may be off, for clock skew between the
    /// issuer and this server (and a client's refresh still in flight). A connection
    /// is closed with 4001 this long after its token's `exp`.
    pub auth_leeway: Duration,
    /// Longest token accepted, in bytes (`401` past it): a token travels in every
    /// upgrade's URL or header, and checking one costs in proportion to its size.
    pub auth_token_max_bytes: usize,
    /// `REDIS_URL`: with it set this process is one node of a cluster, and every room's
    /// truth (members, `seq`, history) lives in that Redis, so that nodes behind one load
    /// balancer serve as one server. `None` (the default): one node, rooms in memory.
    /// Checked at start-up to be `redis://[user:password@]host[:port][/db]`; it may hold
    /// a password, so log it only through [`Config::redis_url_for_logs`].
    pub redis_url: Option<String>,
    /// `NODE_TIMEOUT_MS`: a node not heard from (no heartbeat in Redis) for this long is
    /// lost, and a live node makes its members leave every room with `node_lost`. Long
    /// enough that a slow or paused Redis, or a busy node, is not taken for a dead one;
    /// short enough that the members of a crashed node do not linger.
    pub node_timeout: Duration,
    /// `REDIS_PREFIX`: the start of every Redis key and channel of this cluster, so
    /// several clusters (or tests) can share one Redis without seeing each other. Never
    /// contains `{` or `}`: keys carry the room as a `{room}` hash tag, and a brace in the
    /// prefix would become the hash tag instead.
    pub redis_prefix: String,
    /// `REDIS_LOG_LEN`: the entries (joins, leaves, messages) each room keeps in Redis
    /// beyond its history, so a node whose subscriber connection was cut (a network
    /// blip, Redis's output-buffer limit for a node that fell behind) replays what it
    /// missed instead of rebuilding the room and telling its members `resync`. Each
    /// entry costs Redis a few hundred bytes per room.
    pub redis_log_len: usize,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart field by field, so that a new field cannot be forgotten here: it
        // does not compile until it is listed.
        let Config {
            host,
            port,
            max_message_bytes,
            max_rooms_per_connection,
            max_pending_bytes,
            heartbeat_interval,
            client_timeout,
            history_len,
            joined_members_max,
            presence_events_max,
            member_count_interval,
            room_ttl,
            max_rooms_total,
            history_max_bytes,
            idempotency_ttl,
            idempotency_keys_max,
            static_dir,
            shutdown_timeout,
            close_linger,
            close_timeout,
            workers,
            max_connections,
            max_connections_per_ip,
            rate_limit_per_s,
            rate_limit_burst,
            rate_limit_strikes,
            handshake_timeout,
            allowed_origins,
            api_key,
            node_id,
            trusted_proxies,
            tls,
            tls_reload_interval,
            auth_key,
            auth_leeway,
            auth_token_max_bytes,
            redis_url: _,
            node_timeout,
            redis_prefix,
            redis_log_len,
        } = self;
        f.debug_struct("Config")
            .field("host", host)
            .field("port", port)
            .field("max_message_bytes", max_message_bytes)
            .field("max_rooms_per_connection", max_rooms_per_connection)
            .field("max_pending_bytes", max_pending_bytes)
            .field("heartbeat_interval", heartbeat_interval)
            .field("client_timeout", client_timeout)
            .field("history_len", history_len)
            .field("joined_members_max", joined_members_max)
            .field("presence_events_max", presence_events_max)
            .field("member_count_interval", member_count_interval)
            .field("room_ttl", room_ttl)
            .field("max_rooms_total", max_rooms_total)
            .field("history_max_bytes", history_max_bytes)
            .field("idempotency_ttl", idempotency_ttl)
            .field("idempotency_keys_max", idempotency_keys_max)
            .field("static_dir", static_dir)
            .field("shutdown_timeout", shutdown_timeout)
            .field("close_linger", close_linger)
            .field("close_timeout", close_timeout)
            .field("workers", workers)
            .field("max_connections", max_connections)
            .field("max_connections_per_ip", max_connections_per_ip)
            .field("rate_limit_per_s", rate_limit_per_s)
            .field("rate_limit_burst", rate_limit_burst)
            .field("rate_limit_strikes", rate_limit_strikes)
            .field("handshake_timeout", handshake_timeout)
            .field("allowed_origins", allowed_origins)
            .field("api_key", api_key)
            .field("node_id", node_id)
            .field("trusted_proxies", trusted_proxies)
            .field("tls", tls)
            .field("tls_reload_interval", tls_reload_interval)
            .field("auth_key", auth_key)
            .field("auth_leeway", auth_leeway)
            .field("auth_token_max_bytes", auth_token_max_bytes)
            .field("redis_url", &self.redis_url_for_logs())
            .field("node_timeout", node_timeout)
            .field("redis_prefix", redis_prefix)
            .field("redis_log_len", redis_log_len)
            .finish()
    }
}

/// Where the certificate and its key live (PEM, both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `TLS_CERT_FILE`: the certificate first, then any intermediates it needs (a chain
    /// file such as certbot's `fullchain.pem`).
    pub cert: PathBuf,
    /// `TLS_KEY_FILE`: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A secret from the configuration: shown as `Secret(..)`, never as itself, so a config
/// printed in a log or an error does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(value: &str) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_message_bytes: 65_536,
            max_rooms_per_connection: 128,
            max_pending_bytes: 1 << 20,
            heartbeat_interval: Duration::from_millis(5_000),
            client_timeout: Duration::from_millis(10_000),
            history_len: 50,
            joined_members_max: 100,
            presence_events_max: 200,
            member_count_interval: Duration::from_millis(1_000),
            room_ttl: Duration::from_millis(3_600_000),
            max_rooms_total: 100_000,
            history_max_bytes: 268_435_456,
            idempotency_ttl: Duration::from_millis(300_000),
            idempotency_keys_max: 1_000,
            static_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")),
            shutdown_timeout: Duration::from_millis(5_000),
            close_linger: Duration::ZERO,
            close_timeout: Duration::from_millis(1_000),
            workers: 0,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            rate_limit_per_s: 100,
            rate_limit_burst: 200,
            rate_limit_strikes: 10,
            handshake_timeout: Duration::from_millis(5_000),
            allowed_origins: Vec::new(),
            api_key: None,
            node_id: generated_node_id(),
            trusted_proxies: TrustedProxies::default(),
            tls: None,
            tls_reload_interval: Duration::from_millis(5_000),
            auth_key: None,
            // 30 s: servers kept by NTP are milliseconds apart, but containers, VMs and
            // an issuer on another network drift by seconds; 30 s covers that with room,
            // and stays short enough that an expired token, or one a short `exp` was
            // meant to cut off, is not honoured for long.
            auth_leeway: Duration::from_millis(30_000),
            auth_token_max_bytes: 4096,
            redis_url: None,
            // 10 s: ten of the heartbeats a node writes every second or so, so a Redis
            // that stalls for a few seconds (a fork for a snapshot, a slow disk under an
            // AOF fsync) loses no node, while a crashed node's members are gone soon.
            node_timeout: Duration::from_millis(10_000),
            redis_prefix: "hubbub".into(),
            // Ten seconds of a room saying 1,000 messages a second: more than a node
            // takes to notice a cut connection (at once) and subscribe again (0.2 s).
            redis_log_len: 10_000,
        }
    }
}

/// 12 hex digits from the OS's randomness (which std seeds its hashers with) and the
/// clock: unique per process start in practice (48 bits), short enough to read in a log.
fn generated_node_id() -> NodeId {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let id = format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff);
    NodeId::parse(&id).expect("12 hex digits are a valid node id")
}

/// A setting that could not be used; names the variable so the operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads `.env` when present (values already in the environment win), then the
    /// process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing `.env` is the normal case; a broken one is an error worth reporting.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => {
                return Err(ConfigError {
                    variable: ".env".into(),
                    problem: err.to_string(),
                })
            }
        }
        Self::from_vars(std::env::vars())
    }

    /// Builds a config from `KEY=value` pairs; unknown keys are ignored (the process
    /// environment holds plenty of them).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut config = Config::default();
        let get = |key: &str| vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());

        if let Some(host) = get("HOST") {
            config.host = host.to_string();
        }
        if let Some(v) = get("PORT") {
            config.port = parse_number("PORT", v, 0, u16::MAX as u64)? as u16;
        }
        if let Some(v) = get("MAX_MESSAGE_BYTES") {
            // 125 bytes is the largest control-frame payload; anything smaller cannot
            // carry a useful JSON command. 1 GiB keeps a typo from disabling the limit.
            config.max_message_bytes = parse_number("MAX_MESSAGE_BYTES", v, 125, 1 << 30)? as usize;
        }
        if let Some(v) = get("MAX_ROOMS_PER_CONNECTION") {
            config.max_rooms_per_connection =
                parse_number("MAX_ROOMS_PER_CONNECTION", v, 1, 1_000_000)? as usize;
        }
        if let Some(v) = get("MAX_PENDING_BYTES") {
            config.max_pending_bytes =
                parse_number("MAX_PENDING_BYTES", v, 1024, 1 << 34)? as usize;
        }
        if let Some(v) = get("HEARTBEAT_INTERVAL_MS") {
            config.heartbeat_interval = parse_millis("HEARTBEAT_INTERVAL_MS", v)?;
        }
        if let Some(v) = get("CLIENT_TIMEOUT_MS") {
            config.client_timeout = parse_millis("CLIENT_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("HISTORY_LEN") {
            config.history_len = parse_number("HISTORY_LEN", v, 0, 100_000)? as usize;
        }
        if let Some(v) = get("JOINED_MEMBERS_MAX") {
            config.joined_members_max =
                parse_number("JOINED_MEMBERS_MAX", v, 1, MAX_PAGE as u64)? as usize;
        }
        if let Some(v) = get("PRESENCE_EVENTS_MAX") {
            config.presence_events_max =
                parse_number("PRESENCE_EVENTS_MAX", v, 1, 10_000_000)? as usize;
        }
        if let Some(v) = get("MEMBER_COUNT_INTERVAL_MS") {
            config.member_count_interval = parse_millis("MEMBER_COUNT_INTERVAL_MS", v)?;
        }
        if let Some(v) = get("ROOM_TTL_MS") {
            config.room_ttl =
                Duration::from_millis(parse_number("ROOM_TTL_MS", v, 0, 30 * 86_400_000)?);
        }
        if let Some(v) = get("MAX_ROOMS_TOTAL") {
            config.max_rooms_total = parse_number("MAX_ROOMS_TOTAL", v, 1, 100_000_000)? as usize;
        }
        if let Some(v) = get("HISTORY_MAX_BYTES") {
            config.history_max_bytes = parse_number("HISTORY_MAX_BYTES", v, 0, 1 << 40)? as usize;
        }
        if let Some(v) = get("IDEMPOTENCY_TTL_MS") {
            // At least the five minutes the protocol promises a retry.
            config.idempotency_ttl =
                Duration::from_millis(parse_number("IDEMPOTENCY_TTL_MS", v, 300_000, 86_400_000)?);
        }
        if let Some(v) = get("IDEMPOTENCY_KEYS_MAX") {
            config.idempotency_keys_max =
                parse_number("IDEMPOTENCY_KEYS_MAX", v, 1, 1_000_000)? as usize;
        }
        if let Some(v) = get("STATIC_DIR") {
            config.static_dir = PathBuf::from(v);
        }
        if let Some(v) = get("SHUTDOWN_TIMEOUT_MS") {
            config.shutdown_timeout = parse_millis("SHUTDOWN_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("CLOSE_LINGER_MS") {
            // actix-http computes the linger deadline from a clock cached for up to 500 ms;
            // short lingers were seen never to end (the connection stayed open), so only
            // "off" or a second and more are accepted.
            config.close_linger = parse_off_or_millis("CLOSE_LINGER_MS", v, 1_000, 60_000, "")?;
        }
        if let Some(v) = get("CLOSE_TIMEOUT_MS") {
            config.close_timeout = parse_millis("CLOSE_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("WORKERS") {
            config.workers = parse_number("WORKERS", v, 0, 1024)? as usize;
        }
        if let Some(v) = get("MAX_CONNECTIONS") {
            config.max_connections = parse_number("MAX_CONNECTIONS", v, 1, 10_000_000)? as usize;
        }
        if let Some(v) = get("MAX_CONNECTIONS_PER_IP") {
            config.max_connections_per_ip =
                parse_number("MAX_CONNECTIONS_PER_IP", v, 1, 10_000_000)? as usize;
        }
        if let Some(v) = get("RATE_LIMIT_PER_S") {
            config.rate_limit_per_s = parse_number("RATE_LIMIT_PER_S", v, 0, 1_000_000)? as u32;
        }
        if let Some(v) = get("RATE_LIMIT_BURST") {
            config.rate_limit_burst = parse_number("RATE_LIMIT_BURST", v, 1, 1_000_000)? as u32;
        }
        if let Some(v) = get("RATE_LIMIT_STRIKES") {
            config.rate_limit_strikes = parse_number("RATE_LIMIT_STRIKES", v, 1, 1_000_000)? as u32;
        }
        if let Some(v) = get("HANDSHAKE_TIMEOUT_MS") {
            config.handshake_timeout = parse_millis("HANDSHAKE_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("ALLOWED_ORIGINS") {
            config.allowed_origins = parse_origins(v)?;
        }
        if let Some(v) = get("API_KEY") {
            config.api_key = Some(parse_api_key(v)?);
        }
        if let Some(v) = get("NODE_ID") {
            config.node_id = NodeId::parse(v).map_err(|problem| ConfigError {
                variable: "NODE_ID".into(),
                problem,
            })?;
        }
        if let Some(v) = get("TRUSTED_PROXIES") {
            config.trusted_proxies = TrustedProxies::parse(v).map_err(|problem| ConfigError {
                variable: "TRUSTED_PROXIES".into(),
                problem,
            })?;
        }
        config.tls = parse_tls_files(get("TLS_CERT_FILE"), get("TLS_KEY_FILE"))?;
        if let Some(v) = get("TLS_RELOAD_INTERVAL_MS") {
            // Under 100 ms the poll would be a busy loop rereading two files for nothing.
            config.tls_reload_interval = parse_off_or_millis(
                "TLS_RELOAD_INTERVAL_MS",
                v,
                100,
                86_400_000,
                " (only on SIGHUP)",
            )?;
        }
        config.auth_key = auth_key(
            vars.get("AUTH_JWT_SECRET").filter(|v| !v.is_empty()),
            get("AUTH_JWT_PUBLIC_KEY_FILE"),
        )?;
        if let Some(v) = get("AUTH_LEEWAY_MS") {
            // Ten minutes at most: a leeway is for skew, not for extending tokens.
            config.auth_leeway =
                Duration::from_millis(parse_number("AUTH_LEEWAY_MS", v, 0, 600_000)?);
        }
        if let Some(v) = get("AUTH_TOKEN_MAX_BYTES") {
            // A JWT with a short `sub` and `exp` is about 150 bytes; 64 KiB is more
            // than a URL should carry.
            config.auth_token_max_bytes =
                parse_number("AUTH_TOKEN_MAX_BYTES", v, 256, 65_536)? as usize;
        }
        if let Some(v) = get("REDIS_URL") {
            config.redis_url = Some(parse_redis_url(v)?);
        }
        if let Some(v) = get("NODE_TIMEOUT_MS") {
            // Under half a second a node would need to reach Redis many times a second
            // to stay alive, and one slow round trip would lose it; over an hour the
            // members of a dead node would haunt their rooms for longer than anyone waits.
            config.node_timeout =
                Duration::from_millis(parse_number("NODE_TIMEOUT_MS", v, 500, 3_600_000)?);
        }
        if let Some(v) = get("REDIS_PREFIX") {
            config.redis_prefix = parse_redis_prefix(v)?;
        }
        if let Some(v) = get("REDIS_LOG_LEN") {
            // Under 10 a node would rebuild its rooms after the shortest blip; a million
            // entries of a busy room would hold Redis's memory for no one.
            config.redis_log_len = parse_number("REDIS_LOG_LEN", v, 10, 1_000_000)? as usize;
        }
        config.validate()?;
        Ok(config)
    }

    /// Cross-field rules: a timeout shorter than the ping interval would drop every
    /// idle client between two pings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client_timeout <= self.heartbeat_interval {
            return Err(ConfigError {
                variable: "CLIENT_TIMEOUT_MS".into(),
                problem: format!(
                    "must be greater than HEARTBEAT_INTERVAL_MS ({} ms), got {} ms",
                    self.heartbeat_interval.as_millis(),
                    self.client_timeout.as_millis()
                ),
            });
        }
        if self.max_pending_bytes < self.max_message_bytes {
            return Err(ConfigError {
                variable: "MAX_PENDING_BYTES".into(),
                problem: format!(
                    "must be at least MAX_MESSAGE_BYTES ({}), got {}",
                    self.max_message_bytes, self.max_pending_bytes
                ),
            });
        }
        Ok(())
    }

    /// The settings of the room rules (`hubbub-core`).
    pub fn room_rules(&self) -> hubbub_core::Settings {
        hubbub_core::Settings {
            max_rooms_per_connection: self.max_rooms_per_connection,
            history_len: self.history_len,
            joined_members_max: self.joined_members_max,
            presence_events_max: self.presence_events_max,
            room_ttl_ms: self.room_ttl.as_millis() as u64,
            max_rooms_total: self.max_rooms_total,
            history_max_bytes: self.history_max_bytes,
            idempotency_ttl_ms: self.idempotency_ttl.as_millis() as u64,
            idempotency_keys_max: self.idempotency_keys_max,
        }
    }

    /// `REDIS_URL` fit for a log line or an error: its password, if any, replaced by
    /// `***` (the user name and the rest kept, so the operator still sees which Redis
    /// and which account). `None` when this node is not in a cluster.
    pub fn redis_url_for_logs(&self) -> Option<String> {
        self.redis_url.as_deref().map(redact_redis_url)
    }

    /// `host:port` as given to the listener.
    pub fn bind_address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Shortest `API_KEY` taken: anything shorter is a placeholder (`API_KEY=yes`) or a
/// guessable word, not a key.
const MIN_API_KEY_BYTES: usize = 16;

/// `API_KEY`: visible ASCII only, since it travels in an `Authorization` header, where a
/// space or a non-ASCII byte could never match and every request would get 401 with
/// nothing to say why.
fn parse_api_key(value: &str) -> Result<Secret, ConfigError> {
    let problem = if !value.bytes().all(|byte| byte.is_ascii_graphic()) {
        Some("must be visible ASCII, without spaces (it is sent in a header)".to_string())
    } else if value.len() < MIN_API_KEY_BYTES {
        Some(format!(
            "must be at least {MIN_API_KEY_BYTES} characters (e.g. `openssl rand -hex 32`), got {}",
            value.len()
        ))
    } else {
        None
    };
    match problem {
        // The value itself is never repeated: it is a secret.
        Some(problem) => Err(ConfigError {
            variable: "API_KEY".into(),
            problem,
        }),
        None => Ok(Secret::new(value)),
    }
}

/// The token key from `AUTH_JWT_SECRET` (its bytes exactly as written, not trimmed) or
/// the PEM file `AUTH_JWT_PUBLIC_KEY_FILE` names; not both.
fn auth_key(
    secret: Option<&String>,
    key_file: Option<&str>,
) -> Result<Option<AuthKey>, ConfigError> {
    match (secret, key_file) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(ConfigError {
            variable: "AUTH_JWT_PUBLIC_KEY_FILE".into(),
            problem: "set AUTH_JWT_SECRET (HS256) or AUTH_JWT_PUBLIC_KEY_FILE (RS256/ES256), \
                      not both"
                .into(),
        }),
        (Some(secret), None) => {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(ConfigError {
                    variable: "AUTH_JWT_SECRET".into(),
                    problem: format!(
                        "must be at least {MIN_SECRET_BYTES} bytes (an HS256 key as long as \
                         its hash; e.g. `openssl rand -hex 32`), got {}",
                        secret.len()
                    ),
                });
            }
            Ok(Some(AuthKey::Secret(Secret::new(secret))))
        }
        (None, Some(path)) => {
            let error = |problem: String| ConfigError {
                variable: "AUTH_JWT_PUBLIC_KEY_FILE".into(),
                problem,
            };
            let pem = crate::tls::read_capped(std::path::Path::new(path))
                .map_err(|crate::tls::FileError(problem)| error(format!("{path}: {problem}")))?;
            let key =
                PublicKey::from_pem(&pem).map_err(|problem| error(format!("{path}: {problem}")))?;
            Ok(Some(AuthKey::PublicKey(key)))
        }
    }
}

/// `REDIS_URL`: `redis://[user:password@]host[:port][/db]`, parsed by the `url` crate as
/// the redis crate will parse it, so a URL that passes here is one the cluster can use.
/// `rediss://` is refused rather than half supported: the redis crate is built without
/// TLS (one TLS stack in the server), so it could not open it. The value is never echoed
/// back when it may hold a password.
fn parse_redis_url(value: &str) -> Result<String, ConfigError> {
    let error = |problem: String| ConfigError {
        variable: "REDIS_URL".into(),
        problem,
    };
    let shape = "expected redis://[user:password@]host[:port][/db], e.g. redis://127.0.0.1:6379/0";
    let shown = redact_redis_url(value);
    let (scheme, _) = value.split_once("://").unwrap_or(("", ""));
    match scheme.to_ascii_lowercase().as_str() {
        "redis" => {}
        "rediss" => {
            return Err(error(
                "rediss:// (TLS to Redis) is not supported yet: use redis:// to a local TLS \
                 tunnel (e.g. stunnel or spiped) in front of Redis"
                    .into(),
            ))
        }
        _ => return Err(error(format!("{shape}, got {shown:?}"))),
    }
    let url =
        url::Url::parse(value).map_err(|err| error(format!("{shape}: {err}, got {shown:?}")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error(format!("{shape}: no host, got {shown:?}")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(error(format!(
            "{shape}: no ?query or #fragment, got {shown:?}"
        )));
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u16>().is_err() {
        return Err(error(format!(
            "{shape}: the database after the / must be a number, got {shown:?}"
        )));
    }
    Ok(value.to_string())
}

/// A Redis URL with its password replaced by `***`. A value that does not parse as a URL
/// with a host is cut at its last `@` instead (what comes before may be a password), so
/// even a mistyped URL is safe to show.
fn redact_redis_url(value: &str) -> String {
    if let Ok(mut url) = url::Url::parse(value) {
        if url.password().is_none() {
            return value.to_string();
        }
        // Fails for a URL that cannot carry a password (no host): cut it below instead.
        if url.set_password(Some("***")).is_ok() {
            return url.to_string();
        }
    }
    match value.rsplit_once('@') {
        Some((before, after)) => {
            let scheme = before.split_once("://").map_or("", |(scheme, _)| scheme);
            format!("{scheme}://***@{after}")
        }
        None => value.to_string(),
    }
}

/// `REDIS_PREFIX`: 1 to 32 ASCII letters, digits, `-`, `_`, `.` and `:`. Short, since it
/// starts every key; no braces, since keys carry `{room}` as their hash tag and Redis
/// Cluster takes the first `{...}` of a key as its tag; no spaces or control characters,
/// which would make keys awkward to type in `redis-cli`.
fn parse_redis_prefix(value: &str) -> Result<String, ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    let problem = if value.contains(['{', '}']) {
        Some(format!(
            "must not contain {{ or }} (keys use {{room}} as their hash tag), got {value:?}"
        ))
    } else if value.len() > 32 || !value.chars().all(allowed) {
        Some(format!(
            "expected 1 to 32 ASCII letters, digits, '-', '_', '.' or ':', got {value:?}"
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ConfigError {
            variable: "REDIS_PREFIX".into(),
            problem,
        }),
        None => Ok(value.to_string()),
    }
}

fn parse_number(variable: &str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let error = |problem: String| ConfigError {
        variable: variable.into(),
        problem,
    };
    let number: u64 = value
        .parse()
        .map_err(|_| error(format!("expected a whole number, got {value:?}")))?;
    if number < min || number > max {
        return Err(error(format!(
            "must be between {min} and {max}, got {number}"
        )));
    }
    Ok(number)
}

/// Both TLS files or neither: one alone is surely a mistake, and serving plain HTTP when
/// the operator asked for TLS would be the worst way to handle it. The error names the
/// variable that is set (it is the one in the operator's file) and says which is missing.
fn parse_tls_files(cert: Option<&str>, key: Option<&str>) -> Result<Option<TlsFiles>, ConfigError> {
    let alone = |variable: &str, missing: &str| ConfigError {
        variable: variable.into(),
        problem: format!(
            "is set but {missing} is not: set both (PEM files) to serve TLS, or neither"
        ),
    };
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        })),
        (Some(_), None) => Err(alone("TLS_CERT_FILE", "TLS_KEY_FILE")),
        (None, Some(_)) => Err(alone("TLS_KEY_FILE", "TLS_CERT_FILE")),
        (None, None) => Ok(None),
    }
}

/// A comma-separated list of `scheme://host[:port]` origins.
fn parse_origins(value: &str) -> Result<Vec<String>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/');
            if valid {
                Ok(origin.to_string())
            } else {
                Err(ConfigError {
                    variable: "ALLOWED_ORIGINS".into(),
                    problem: format!(
                        "expected origins like https://chat.example or http://localhost:8080, got {origin:?}"
                    ),
                })
            }
        })
        .collect()
}

/// Milliseconds from 1 ms to one day: zero would spin a timer, a day is surely a typo.
fn parse_millis(variable: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_number(variable, value, 1, 86_400_000).map(Duration::from_millis)
}

/// Milliseconds that are either 0 ("off", which `zero_means` explains in the error) or
/// `min..=max`: for settings whose small values do not work.
fn parse_off_or_millis(
    variable: &str,
    value: &str,
    min: u64,
    max: u64,
    zero_means: &str,
) -> Result<Duration, ConfigError> {
    let millis = parse_number(variable, value, 0, max)?;
    if millis != 0 && millis < min {
        return Err(ConfigError {
            variable: variable.into(),
            problem: format!("must be 0{zero_means} or at least {min}, got {millis}"),
        });
    }
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_environment() {
        let config = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.max_message_bytes, 65_536);
        assert_eq!(config.heartbeat_interval, Duration::from_secs(5));
    }

    #[test]
    fn a_bad_number_names_its_variable() {
        let err = Config::from_vars([("PORT", "eighty")]).unwrap_err();
        assert_eq!(err.variable, "PORT");
        let err = Config::from_vars([("HISTORY_LEN", "-1")]).unwrap_err();
        assert_eq!(err.variable, "HISTORY_LEN");
        let err = Config::from_vars([("HEARTBEAT_INTERVAL_MS", "0")]).unwrap_err();
        assert_eq!(err.variable, "HEARTBEAT_INTERVAL_MS");
    }

    #[test]
    fn env_example_documents_every_variable_with_a_usable_value() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example");
        let text = std::fs::read_to_string(path).unwrap();
        for variable in VARIABLES {
            assert!(
                text.contains(&format!("{variable}=")),
                "{variable} missing from .env.example"
            );
        }
        let pairs: Vec<(String, String)> = dotenvy::from_path_iter(path)
            .unwrap()
            .map(|pair| pair.unwrap())
            .collect();
        let config = Config::from_vars(pairs).unwrap();
        let defaults = Config::default();
        assert_eq!(config.max_pending_bytes, defaults.max_pending_bytes);
        assert_eq!(config.client_timeout, defaults.client_timeout);
        assert_eq!(config.port, defaults.port);
    }

    #[test]
    fn close_linger_is_off_or_at_least_a_second() {
        assert_eq!(
            Config::from_vars([("CLOSE_LINGER_MS", "0")])
                .unwrap()
                .close_linger,
            Duration::ZERO
        );
        let config = Config::from_vars([("CLOSE_LINGER_MS", "1500")]).unwrap();
        assert_eq!(config.close_linger, Duration::from_millis(1500));
        let err = Config::from_vars([("CLOSE_LINGER_MS", "100")]).unwrap_err();
        assert_eq!(err.variable, "CLOSE_LINGER_MS");
    }

    #[test]
    fn origins_are_a_checked_list() {
        let config = Config::from_vars([(
            "ALLOWED_ORIGINS",
            "https://a.example, http://localhost:8080",
        )])
        .unwrap();
        assert_eq!(
            config.allowed_origins,
            vec!["https://a.example", "http://localhost:8080"]
        );
        let err = Config::from_vars([("ALLOWED_ORIGINS", "a.example")]).unwrap_err();
        assert_eq!(err.variable, "ALLOWED_ORIGINS");
    }

    #[test]
    fn rate_limit_zero_means_off_but_burst_and_strikes_are_positive() {
        assert_eq!(
            Config::from_vars([("RATE_LIMIT_PER_S", "0")])
                .unwrap()
                .rate_limit_per_s,
            0
        );
        assert!(Config::from_vars([("RATE_LIMIT_BURST", "0")]).is_err());
        assert!(Config::from_vars([("RATE_LIMIT_STRIKES", "0")]).is_err());
        assert!(Config::from_vars([("MAX_CONNECTIONS_PER_IP", "0")]).is_err());
    }

    #[test]
    fn trusted_proxies_are_a_checked_list_of_addresses_and_blocks() {
        assert!(Config::default().trusted_proxies.is_empty());
        let config =
            Config::from_vars([("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8")])
                .unwrap();
        assert!(config.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        assert!(config.trusted_proxies.contains("fd00::5".parse().unwrap()));
        assert!(!config
            .trusted_proxies
            .contains("192.0.2.1".parse().unwrap()));
        for bad in [
            "nginx.internal",
            "10.0.0.0/40",
            "10.0.0.1/8",
            "127.0.0.1:8080",
        ] {
            let err = Config::from_vars([("TRUSTED_PROXIES", bad)]).unwrap_err();
            assert_eq!(err.variable, "TRUSTED_PROXIES");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn tls_needs_both_files_or_neither() {
        let config = Config::from_vars([
            ("TLS_CERT_FILE", "/etc/hubbub/fullchain.pem"),
            ("TLS_KEY_FILE", "/etc/hubbub/key.pem"),
        ])
        .unwrap();
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: "/etc/hubbub/fullchain.pem".into(),
                key: "/etc/hubbub/key.pem".into(),
            })
        );
        assert_eq!(Config::default().tls, None);
        let err = Config::from_vars([("TLS_CERT_FILE", "cert.pem")]).unwrap_err();
        assert_eq!(err.variable, "TLS_CERT_FILE");
        assert!(err.problem.contains("TLS_KEY_FILE"), "{err}");
        let err = Config::from_vars([("TLS_KEY_FILE", "key.pem")]).unwrap_err();
        assert_eq!(err.variable, "TLS_KEY_FILE");
        assert!(err.problem.contains("TLS_CERT_FILE"), "{err}");
        // A blank one counts as unset.
        let err =
            Config::from_vars([("TLS_CERT_FILE", "cert.pem"), ("TLS_KEY_FILE", " ")]).unwrap_err();
        assert_eq!(err.variable, "TLS_CERT_FILE");
    }

    #[test]
    fn tls_reload_interval_is_off_or_at_least_100_ms() {
        let interval = |value| {
            Config::from_vars([("TLS_RELOAD_INTERVAL_MS", value)]).map(|c| c.tls_reload_interval)
        };
        assert_eq!(interval("0"), Ok(Duration::ZERO));
        assert_eq!(interval("100"), Ok(Duration::from_millis(100)));
        assert_eq!(
            interval("99").unwrap_err().variable,
            "TLS_RELOAD_INTERVAL_MS"
        );
        assert_eq!(
            interval("86400001").unwrap_err().variable,
            "TLS_RELOAD_INTERVAL_MS"
        );
    }

    #[test]
    fn timeout_must_exceed_heartbeat() {
        let err = Config::from_vars([
            ("HEARTBEAT_INTERVAL_MS", "500"),
            ("CLIENT_TIMEOUT_MS", "500"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "CLIENT_TIMEOUT_MS");
    }

    #[test]
    fn a_key_file_past_a_mebibyte_is_refused_unread() {
        // A path to a log file or a device is not a key: reading stops at the cap.
        let path = std::env::temp_dir().join(format!("hubbub-big-key-{}.pem", std::process::id()));
        std::fs::write(&path, vec![b'A'; (1 << 20) + 1]).unwrap();
        let err =
            Config::from_vars([("AUTH_JWT_PUBLIC_KEY_FILE", path.to_str().unwrap())]).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(err.variable, "AUTH_JWT_PUBLIC_KEY_FILE");
        assert!(err.problem.contains("larger than 1048576 bytes"), "{err}");
    }

    #[test]
    fn an_api_key_is_a_long_enough_header_value() {
        let key = "0123456789abcdef0123";
        let config = Config::from_vars([("API_KEY", key)]).unwrap();
        assert_eq!(config.api_key.as_ref().map(Secret::expose), Some(key));
        for bad in ["yes", "a key with spaces inside", "schlüssel-0123456789"] {
            let err = Config::from_vars([("API_KEY", bad)]).unwrap_err();
            assert_eq!(err.variable, "API_KEY");
            assert!(
                !err.to_string().contains(bad),
                "the key is not shown: {err}"
            );
        }
    }

    #[test]
    fn a_token_key_is_a_long_enough_secret_or_a_readable_public_key_not_both() {
        let secret = " 32 bytes of secret, as written ";
        let config = Config::from_vars([("AUTH_JWT_SECRET", secret)]).unwrap();
        match &config.auth_key {
            Some(AuthKey::Secret(kept)) => assert_eq!(kept.expose(), secret, "not trimmed"),
            other => panic!("{other:?}"),
        }
        assert!(
            !format!("{config:?}").contains("bytes of secret"),
            "{config:?}"
        );
        let err = Config::from_vars([("AUTH_JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.variable, "AUTH_JWT_SECRET");
        assert!(!err.to_string().contains("short"), "{err}");
        // Blank is not unset: a secret of spaces must not turn authentication off.
        let err = Config::from_vars([("AUTH_JWT_SECRET", "   ")]).unwrap_err();
        assert_eq!(err.variable, "AUTH_JWT_SECRET");
        assert!(Config::from_vars([("AUTH_JWT_SECRET", "")])
            .unwrap()
            .auth_key
            .is_none());

        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys");
        let rsa = format!("{keys}/rsa-public.pem");
        let config = Config::from_vars([("AUTH_JWT_PUBLIC_KEY_FILE", rsa.as_str())]).unwrap();
        assert_eq!(
            config.auth_key.unwrap().algorithm(),
            jsonwebtoken::Algorithm::RS256
        );
        for bad in [
            format!("{keys}/nowhere.pem"),
            format!("{keys}/rsa-private.pem"),
            keys.to_string(),
        ] {
            let err = Config::from_vars([("AUTH_JWT_PUBLIC_KEY_FILE", bad.as_str())]).unwrap_err();
            assert_eq!(err.variable, "AUTH_JWT_PUBLIC_KEY_FILE", "{bad}");
            assert!(err.problem.contains(&bad), "{err}");
        }
        let err = Config::from_vars([
            ("AUTH_JWT_SECRET", secret),
            ("AUTH_JWT_PUBLIC_KEY_FILE", rsa.as_str()),
        ])
        .unwrap_err();
        assert!(err.problem.contains("not both"), "{err}");
        assert!(Config::default().auth_key.is_none());
    }

    #[test]
    fn the_leeway_and_the_token_cap_are_bounded() {
        let config =
            Config::from_vars([("AUTH_LEEWAY_MS", "0"), ("AUTH_TOKEN_MAX_BYTES", "512")]).unwrap();
        assert_eq!(config.auth_leeway, Duration::ZERO);
        assert_eq!(config.auth_token_max_bytes, 512);
        assert_eq!(Config::default().auth_leeway, Duration::from_secs(30));
        assert_eq!(
            Config::from_vars([("AUTH_LEEWAY_MS", "600001")])
                .unwrap_err()
                .variable,
            "AUTH_LEEWAY_MS"
        );
        assert_eq!(
            Config::from_vars([("AUTH_TOKEN_MAX_BYTES", "100")])
                .unwrap_err()
                .variable,
            "AUTH_TOKEN_MAX_BYTES"
        );
    }

    #[test]
    fn a_redis_url_is_redis_scheme_with_a_host_and_never_shown_with_its_password() {
        let defaults = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(
            defaults.redis_url, None,
            "no REDIS_URL: one node, in memory"
        );
        assert_eq!(defaults.redis_url_for_logs(), None);
        assert_eq!(
            Config::from_vars([("REDIS_URL", " ")]).unwrap().redis_url,
            None
        );
        for good in [
            "redis://127.0.0.1",
            "redis://127.0.0.1:6379/0",
            "redis://localhost:6380/15",
            "redis://[::1]:6379",
            "redis://:hunter2hunter2@redis.internal:6379/2",
            "redis://app:hunter2hunter2@redis.internal/",
        ] {
            let config = Config::from_vars([("REDIS_URL", good)]).unwrap();
            assert_eq!(config.redis_url.as_deref(), Some(good));
            // What passes here is what the redis crate can open (no connection made).
            assert!(redis::Client::open(good).is_ok(), "{good}");
        }
        // And it could not open rediss://: it is built without TLS.
        assert!(redis::Client::open("rediss://127.0.0.1").is_err());
        let config = Config::from_vars([(
            "REDIS_URL",
            "redis://app:hunter2hunter2@redis.internal:6379/2",
        )])
        .unwrap();
        assert_eq!(
            config.redis_url_for_logs().as_deref(),
            Some("redis://app:***@redis.internal:6379/2")
        );
        assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
        assert!(
            format!("{config:?}").contains("redis.internal"),
            "{config:?}"
        );

        let err = Config::from_vars([("REDIS_URL", "rediss://redis.internal")]).unwrap_err();
        assert_eq!(err.variable, "REDIS_URL");
        assert!(err.problem.contains("TLS"), "{err}");
        assert!(err.problem.contains("tunnel"), "{err}");
        for bad in [
            "http://x",
            "127.0.0.1:6379",
            "redis://",
            "redis:///0",
            "redis://host:99999",
            "redis://host/zero",
            "redis://host/0?protocol=resp3",
            "redis+unix:///run/redis.sock",
            "redis://:hunter2hunter2@",
        ] {
            let err = Config::from_vars([("REDIS_URL", bad)]).unwrap_err();
            assert_eq!(err.variable, "REDIS_URL", "{bad}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        // A URL that does not even parse is still not echoed with its password.
        let err =
            Config::from_vars([("REDIS_URL", "redis://u:hunter2hunter2@ho st:1")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn a_node_timeout_is_half_a_second_to_an_hour() {
        assert_eq!(Config::default().node_timeout, Duration::from_secs(10));
        let timeout =
            |value| Config::from_vars([("NODE_TIMEOUT_MS", value)]).map(|c| c.node_timeout);
        assert_eq!(timeout("500"), Ok(Duration::from_millis(500)));
        assert_eq!(timeout("3600000"), Ok(Duration::from_secs(3600)));
        for bad in ["499", "3600001", "0", "ten"] {
            assert_eq!(
                timeout(bad).unwrap_err().variable,
                "NODE_TIMEOUT_MS",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_redis_prefix_is_a_short_word_without_braces() {
        assert_eq!(Config::default().redis_prefix, "hubbub");
        for good in ["a", "hubbub", "team-1_eu.west:v2", &"p".repeat(32)] {
            let config = Config::from_vars([("REDIS_PREFIX", good)]).unwrap();
            assert_eq!(config.redis_prefix, good);
        }
        let err = Config::from_vars([("REDIS_PREFIX", "a{b}")]).unwrap_err();
        assert_eq!(err.variable, "REDIS_PREFIX");
        assert!(err.problem.contains("hash tag"), "{err}");
        for bad in ["a}", "two words", "préfixe", "a/b", &"p".repeat(33)] {
            let err = Config::from_vars([("REDIS_PREFIX", bad)]).unwrap_err();
            assert_eq!(err.variable, "REDIS_PREFIX", "{bad}");
        }
    }

    #[test]
    fn pending_budget_must_hold_one_message() {
        let err = Config::from_vars([
            ("MAX_MESSAGE_BYTES", "100000"),
            ("MAX_PENDING_BYTES", "50000"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "MAX_PENDING_BYTES");
    }
}
