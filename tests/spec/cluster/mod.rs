//! Clusters: several nodes sharing one Redis (`REDIS_URL`) behave as one server
//! (PROTOCOL.md, *Clusters*). Each test starts its own `redis-server` (Debian's package)
//! on a free loopback port with a directory of its own, and its own nodes: in-process
//! servers like every other spec test's, told the Redis URL, a key prefix unique to the
//! test and `NODE_TIMEOUT_MS` 1000, so a lost node is noticed within the test's time.
//!
//! Without `redis-server` a cluster test says `SKIP` and passes, except under `CI=true`,
//! where it fails (as the browser and proxy tests do with their programs).
//!
//! At most two cluster tests run at once: each holds a Redis and two or more servers,
//! and the timings they measure mean something only on a machine that is not swamped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, LazyLock,
    },
    time::Duration,
};

use hubbub::config::Config;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};

use crate::helpers::{shared_isolation, spawn_app_sharing, Client, Isolation, TestApp, DEADLINE};

mod faults_node;
mod faults_redis;
mod harness;
mod history;
mod http;
mod ids;
mod limits;
mod nodes;
mod order;
mod presence;
mod visibility;
mod whisper;

/// The node timeout of every test node: short, so a fault test sees a lost node within
/// seconds, and still far above what a heartbeat on a loaded machine takes.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// The `redis-server` executable: on `PATH`, or where Debian puts it.
fn redis_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// The redis-server binary, or `None` after printing `SKIP: <test>: ...`; under
/// `CI=true` a missing redis-server fails `test` instead.
pub fn redis_or_skip(test: &str) -> Option<PathBuf> {
    let binary = redis_binary();
    if binary.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true and redis-server is missing: apt-get install redis-server"
        );
        eprintln!("SKIP: {test}: redis-server is not installed (apt-get install redis-server)");
    }
    binary
}

/// What a test's Redis keeps on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing: a restart comes back empty (as a Redis that lost its data).
    None,
    /// An append-only file, fsynced on every write: a restart comes back with all of it.
    Aof,
}

/// A `redis-server` of a test's own, on 127.0.0.1; killed (SIGKILL) and its directory
/// removed on drop.
pub struct RedisServer {
    pub port: u16,
    binary: PathBuf,
    persistence: Persistence,
    /// Its working directory: the AOF and its log (`redis.log`).
    dir: PathBuf,
    /// `None` while stopped.
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `binary` on a free loopback port and waits (under the deadline) until it
    /// answers `PING`.
    pub async fn start(binary: &Path, persistence: Persistence) -> RedisServer {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hubbub-redis-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the Redis directory");
        // The port is free when picked, but Redis binds it a moment later: if another
        // process took it meanwhile, Redis exits, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                port,
                binary: binary.to_path_buf(),
                persistence,
                dir: dir.clone(),
                child: None,
            };
            server.spawn();
            if server.wait_until_ready().await {
                return server;
            }
        }
        panic!(
            "redis-server did not start on any of 5 ports; see {}",
            dir.display()
        );
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs one command over a fresh connection and returns its answer; panics on an
    /// error answer or when Redis does not answer in time.
    pub async fn cli(&self, args: &[&str]) -> redis::Value {
        match self.try_cli(args).await {
            Ok(value) => value,
            Err(err) => panic!("redis {args:?}: {err}"),
        }
    }

    /// Like [`RedisServer::cli`], with Redis's error (or the connection's) as a value.
    pub async fn try_cli(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let (name, rest) = args.split_first().expect("a command");
        let query = async {
            let client = redis::Client::open(self.url())?;
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd(name)
                .arg(rest)
                .query_async::<redis::Value>(&mut connection)
                .await
        };
        tokio::time::timeout(DEADLINE, query)
            .await
            .unwrap_or_else(|_| panic!("redis {args:?}: no answer in time"))
    }

    /// Stops Redis with SIGTERM (with an AOF, what it was told is on disk) and waits
    /// until it has exited.
    pub async fn stop(&mut self) {
        let Some(child) = &mut self.child else { return };
        signal(child.id(), "TERM");
        let started = tokio::time::Instant::now();
        loop {
            if child.try_wait().expect("wait for redis-server").is_some() {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "redis-server did not exit on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.child = None;
    }

    /// Stops Redis (if it runs) and starts it again on the same port and directory
    /// (with [`Persistence::Aof`], with its data); waits until it answers `PING`.
    pub async fn restart(&mut self) {
        self.stop().await;
        // The port was ours a moment ago; a socket in TIME_WAIT does not stop Redis
        // (it sets SO_REUSEADDR), but another process may have taken it: a few tries.
        for _ in 0..5 {
            self.spawn();
            if self.wait_until_ready().await {
                return;
            }
        }
        panic!(
            "redis-server did not start again on port {}; see {}",
            self.port,
            self.dir.display()
        );
    }

    /// SIGSTOP: Redis stops answering, its connections stay open.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let appendonly = match self.persistence {
            Persistence::None => "no",
            Persistence::Aof => "yes",
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .expect("open the Redis log");
        let child = Command::new(&self.binary)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
            ])
            .args(["--save", "", "--appendonly", appendonly])
            .args(["--appendfsync", "always", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
    }

    /// Polls `PING` until `+PONG` (`true`), or until Redis has exited, e.g. because its
    /// port was taken (`false`). Answers such as `-LOADING` (an AOF being read) are
    /// waited through.
    async fn wait_until_ready(&mut self) -> bool {
        let started = tokio::time::Instant::now();
        loop {
            let child = self.child.as_mut().expect("spawned");
            if child.try_wait().expect("poll redis-server").is_some() {
                self.child = None;
                return false;
            }
            if ping(self.port).await {
                return true;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "redis-server on port {} did not answer PING in time; see {}",
                self.port,
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused Redis dies of SIGKILL too.
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether Redis on `port` answers `PING` with `+PONG` within a short while.
async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer).await.ok()?;
        Some(&answer == b"+PONG\r\n")
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// At most two cluster tests at once (see the module's doc).
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(2)));

/// A test's cluster: one Redis, a key prefix unique to the test, and the nodes it starts
/// on both. Nodes are plain [`TestApp`]s: drop one (after `controller.shutdown()` for a
/// graceful stop) and start another to restart a node. One per test: it holds one of the
/// two slots and the shared isolation lock, and a second would wait for both.
pub struct Cluster {
    pub redis: RedisServer,
    pub prefix: String,
    /// The shared memory-isolation lock, held once for every node of the cluster
    /// (taking it once per node could deadlock behind a memory test waiting for it).
    _isolation: Isolation,
    _slot: OwnedSemaphorePermit,
}

impl Cluster {
    /// A cluster on a Redis without persistence; `None`: skipped (no redis-server).
    pub async fn start(test: &str) -> Option<Cluster> {
        Self::start_with(test, Persistence::None).await
    }

    /// A cluster on a Redis with `persistence`; `None`: skipped (no redis-server).
    pub async fn start_with(test: &str, persistence: Persistence) -> Option<Cluster> {
        let binary = redis_or_skip(test)?;
        let slot = SLOTS.clone().acquire_owned().await.expect("never closed");
        let isolation = shared_isolation().await;
        let redis = RedisServer::start(&binary, persistence).await;
        static CLUSTERS: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "test-{}-{}",
            CLUSTERS.fetch_add(1, Ordering::Relaxed),
            test.chars().take(24).collect::<String>()
        );
        Some(Cluster {
            redis,
            prefix,
            _isolation: isolation,
            _slot: slot,
        })
    }

    /// A node of this cluster (its own `NODE_ID`, generated), with `NODE_TIMEOUT_MS` 1000.
    pub async fn node(&self) -> TestApp {
        self.node_with(|_| {}).await
    }

    /// A node whose config `adjust` may change after the cluster's settings are in.
    pub async fn node_with(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let url = self.redis.url();
        let prefix = self.prefix.clone();
        spawn_app_sharing(move |config| {
            config.redis_url = Some(url);
            config.redis_prefix = prefix;
            config.node_timeout = NODE_TIMEOUT;
            adjust(config);
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------
// What the must-hold tests share
// ---------------------------------------------------------------------------------------

/// Connects to `node` as `name` and joins `room`: the client and its `joined`.
pub async fn join_on(node: &TestApp, name: &str, room: &str) -> (Client, Value) {
    let mut client = node.connect(&format!("?name={name}")).await;
    client.send(json!({"type": "join", "room": room})).await;
    let joined = client.expect("joined").await;
    assert_eq!(joined["room"], room, "{joined}");
    (client, joined)
}

/// The member `id` as a `joined` (or `presence`) lists it.
pub fn entry_of(listing: &Value, id: &str) -> Value {
    listing["members"]
        .as_array()
        .expect("members is an array")
        .iter()
        .find(|member| member["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not listed in {listing}"))
        .clone()
}

/// Members sorted by id (ids are decimal numbers), to compare listings as sets.
pub fn by_id(members: &Value) -> Vec<Value> {
    let mut members = members.as_array().expect("members is an array").clone();
    members.sort_by_key(|member| {
        member["id"]
            .as_str()
            .expect("a member id")
            .parse::<u64>()
            .expect("ids are decimal")
    });
    members
}

/// `who` for `room` from `client`: its `presence` reply (the next event must be it).
pub async fn who(client: &mut Client, room: &str) -> Value {
    client
        .send(json!({"type": "who", "room": room, "ref": "who"}))
        .await;
    let presence = client.expect("presence").await;
    assert_eq!(presence["ref"], "who");
    assert_eq!(presence["room"], room);
    presence
}
