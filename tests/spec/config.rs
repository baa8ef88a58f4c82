//! Configuration as the `hubbub` binary sees it: a bad variable stops the start with exit
//! code 2 and a message naming the variable; good variables shape the running server.
//! (Parsing rules themselves are unit-tested in `src/config.rs`.)
//!
//! Also home to [`Binary`], the harness that runs the real executable (used by
//! `shutdown.rs` too).

use std::{process::Stdio, time::Duration};

use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStderr, Command},
};

use crate::helpers::{Client, DEADLINE};

/// How long the binary may take to start or to refuse to start.
pub const BINARY_DEADLINE: Duration = Duration::from_secs(20);

/// The `hubbub` executable with a clean environment: only `PATH`, `STATIC_DIR` and
/// `vars`, run from the temp directory so the project's `.env` (if any) is not read.
pub fn binary(vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hubbub"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
        .envs(vars.iter().copied())
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the binary expecting it to exit on its own: its exit code and its stderr.
pub async fn run_to_exit(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let child = binary(vars).spawn().expect("start hubbub");
    // On timeout the child is dropped, which kills it.
    let output = tokio::time::timeout(BINARY_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("hubbub with {vars:?} did not exit within the deadline"))
        .expect("wait for hubbub");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running `hubbub` process that has logged the address it listens on.
pub struct Binary {
    pub child: Child,
    pub port: u16,
}

impl Binary {
    /// Starts the binary on `PORT=0` (plus `vars`) and reads stderr until the
    /// `listening on http://HOST:PORT` (or `https://`) line; stderr keeps being drained
    /// afterwards so the server never blocks on a full pipe.
    pub async fn start(vars: &[(&str, &str)]) -> Binary {
        let mut all_vars = vec![("PORT", "0")];
        all_vars.extend_from_slice(vars);
        let mut child = binary(&all_vars).spawn().expect("start hubbub");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (port, lines) = tokio::time::timeout(BINARY_DEADLINE, read_port(stderr))
            .await
            .expect("hubbub logged its address within the deadline");
        // Each line goes to the test's captured output, which libtest shows only when
        // the test fails: the server's side of a failure, for free.
        actix_web::rt::spawn(async move {
            let mut lines = lines;
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[hubbub {port}] {line}");
            }
        });
        Binary { child, port }
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path_and_query)
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the process is still running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Waits for the process to exit on its own.
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("hubbub exited within the deadline")
            .expect("wait for hubbub")
    }
}

async fn read_port(stderr: ChildStderr) -> (u16, tokio::io::Lines<BufReader<ChildStderr>>) {
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    loop {
        let Some(line) = lines.next_line().await.expect("read stderr") else {
            panic!(
                "hubbub exited before listening; stderr:\n{}",
                seen.join("\n")
            );
        };
        // `https://` when the binary serves TLS.
        let address = line
            .split("listening on http://")
            .nth(1)
            .or_else(|| line.split("listening on https://").nth(1));
        if let Some(address) = address {
            let (host, port) = address.trim().rsplit_once(':').expect("HOST:PORT");
            assert_eq!(host, "127.0.0.1", "{line}");
            let port: u16 = port.parse().expect("a port number");
            assert_ne!(port, 0, "the real port is logged, not 0: {line}");
            return (port, lines);
        }
        seen.push(line);
    }
}

/// The binary must refuse to start: exit code 2, and stderr names `variable`.
pub async fn assert_refused(vars: &[(&str, &str)], variable: &str) {
    // PORT=0 unless PORT is under test, so a start that wrongly succeeds cannot clash.
    let mut all_vars = vars.to_vec();
    if !vars.iter().any(|(key, _)| *key == "PORT") {
        all_vars.push(("PORT", "0"));
    }
    let (code, stderr) = run_to_exit(&all_vars).await;
    assert_eq!(code, Some(2), "exit code with {vars:?}; stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("invalid {variable}:")),
        "stderr should name {variable} for {vars:?}:\n{stderr}"
    );
    assert!(
        !stderr.contains("listening on"),
        "it must not start listening with {vars:?}:\n{stderr}"
    );
}

#[actix_web::test]
async fn a_port_that_is_not_a_number_stops_the_start_naming_port() {
    assert_refused(&[("PORT", "notanumber")], "PORT").await;
}

#[actix_web::test]
async fn a_port_out_of_range_stops_the_start_naming_port() {
    assert_refused(&[("PORT", "70000")], "PORT").await;
}

#[actix_web::test]
async fn a_zero_heartbeat_interval_stops_the_start_naming_it() {
    assert_refused(&[("HEARTBEAT_INTERVAL_MS", "0")], "HEARTBEAT_INTERVAL_MS").await;
}

#[actix_web::test]
async fn a_client_timeout_below_the_heartbeat_stops_the_start_naming_it() {
    let vars = [
        ("HEARTBEAT_INTERVAL_MS", "1000"),
        ("CLIENT_TIMEOUT_MS", "500"),
    ];
    assert_refused(&vars, "CLIENT_TIMEOUT_MS").await;
}

#[actix_web::test]
async fn a_max_message_bytes_that_is_not_a_number_stops_the_start_naming_it() {
    assert_refused(&[("MAX_MESSAGE_BYTES", "abc")], "MAX_MESSAGE_BYTES").await;
}

#[actix_web::test]
async fn a_negative_history_len_stops_the_start_naming_it() {
    assert_refused(&[("HISTORY_LEN", "-1")], "HISTORY_LEN").await;
}

#[actix_web::test]
async fn the_environment_shapes_the_running_server() {
    let binary = Binary::start(&[
        ("MAX_MESSAGE_BYTES", "2048"),
        ("HEARTBEAT_INTERVAL_MS", "1500"),
        ("CLIENT_TIMEOUT_MS", "4500"),
        ("MAX_ROOMS_PER_CONNECTION", "3"),
        ("NODE_ID", "eu-west_2"),
    ])
    .await;
    let mut client = Client::open(&binary.ws_url("/ws?name=env")).await;
    let welcome = client.expect("welcome").await;
    assert_eq!(welcome["name"], "env");
    assert_eq!(welcome["heartbeat_ms"], 1500);
    assert_eq!(welcome["timeout_ms"], 4500);
    assert_eq!(welcome["limits"]["max_message_bytes"], 2048);
    assert_eq!(welcome["limits"]["max_rooms"], 3);
    assert_eq!(welcome["node"], "eu-west_2");
}

#[actix_web::test]
async fn sighup_without_tls_is_not_the_end_of_the_server() {
    // `systemctl reload` sends SIGHUP (docs/deploy.md's unit); its default action would
    // kill a server that has no certificate to reload.
    let mut binary = Binary::start(&[]).await;
    let mut client = Client::open(&binary.ws_url("/ws?name=hup")).await;
    client.expect("welcome").await;
    binary.signal("HUP");
    // A signal is acted on before the process next runs its own code, so an answer
    // after it means the process took it and lived.
    client
        .send(json!({"type": "echo", "text": "still here"}))
        .await;
    assert_eq!(client.expect("echo").await["text"], "still here");
    assert!(
        binary.child.try_wait().unwrap().is_none(),
        "SIGHUP ended it"
    );
}

#[actix_web::test]
async fn a_node_id_that_is_not_a_plain_word_stops_the_start_naming_it() {
    // It goes into log lines and (in a cluster) store keys: no spaces, no braces.
    assert_refused(&[("NODE_ID", "node {1}")], "NODE_ID").await;
    assert_refused(&[("NODE_ID", &"n".repeat(33))], "NODE_ID").await;
}

#[actix_web::test]
async fn a_zero_member_count_interval_or_a_big_room_cap_below_one_stops_the_start_naming_it() {
    assert_refused(
        &[("MEMBER_COUNT_INTERVAL_MS", "0")],
        "MEMBER_COUNT_INTERVAL_MS",
    )
    .await;
    assert_refused(&[("PRESENCE_EVENTS_MAX", "0")], "PRESENCE_EVENTS_MAX").await;
    assert_refused(&[("JOINED_MEMBERS_MAX", "0")], "JOINED_MEMBERS_MAX").await;
    // A `joined` list longer than one page would be a page nobody can ask for.
    assert_refused(&[("JOINED_MEMBERS_MAX", "1001")], "JOINED_MEMBERS_MAX").await;
}

#[actix_web::test]
async fn a_redis_url_that_is_not_plain_redis_stops_the_start_naming_it() {
    assert_refused(&[("REDIS_URL", "http://x")], "REDIS_URL").await;
    // TLS to Redis is refused with a way out, not taken as plain TCP.
    let (code, stderr) = run_to_exit(&[("PORT", "0"), ("REDIS_URL", "rediss://x")]).await;
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("invalid REDIS_URL:"), "{stderr}");
    assert!(
        stderr.contains("TLS") && stderr.contains("tunnel"),
        "{stderr}"
    );
    // A password in a refused URL is not repeated.
    let (code, stderr) = run_to_exit(&[
        ("PORT", "0"),
        ("REDIS_URL", "redis://app:hunter2hunter2@:6379/zero"),
    ])
    .await;
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("invalid REDIS_URL:"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[actix_web::test]
async fn a_node_timeout_under_half_a_second_stops_the_start_naming_it() {
    assert_refused(&[("NODE_TIMEOUT_MS", "100")], "NODE_TIMEOUT_MS").await;
    assert_refused(&[("NODE_TIMEOUT_MS", "3600001")], "NODE_TIMEOUT_MS").await;
}

#[actix_web::test]
async fn a_redis_prefix_with_braces_stops_the_start_naming_it() {
    // Keys carry `{room}` as their Redis Cluster hash tag; a brace in the prefix would
    // take its place.
    assert_refused(&[("REDIS_PREFIX", "a{b}")], "REDIS_PREFIX").await;
    assert_refused(&[("REDIS_PREFIX", &"p".repeat(33))], "REDIS_PREFIX").await;
}

#[test]
fn without_cluster_settings_a_node_is_alone_with_the_documented_defaults() {
    let config = hubbub::config::Config::from_vars(Vec::<(String, String)>::new()).unwrap();
    assert_eq!(config.redis_url, None);
    assert_eq!(config.node_timeout, Duration::from_millis(10_000));
    assert_eq!(config.redis_prefix, "hubbub");
    let config = hubbub::config::Config::from_vars([
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("NODE_TIMEOUT_MS", "1000"),
        ("REDIS_PREFIX", "test:1"),
    ])
    .unwrap();
    assert_eq!(
        config.redis_url.as_deref(),
        Some("redis://127.0.0.1:6379/0")
    );
    assert_eq!(config.node_timeout, Duration::from_millis(1000));
    assert_eq!(config.redis_prefix, "test:1");
}

#[actix_web::test]
async fn kept_room_limits_out_of_range_stop_the_start_naming_them() {
    // The protocol promises a retry five minutes: a shorter key TTL is refused.
    assert_refused(&[("IDEMPOTENCY_TTL_MS", "299999")], "IDEMPOTENCY_TTL_MS").await;
    assert_refused(&[("IDEMPOTENCY_KEYS_MAX", "0")], "IDEMPOTENCY_KEYS_MAX").await;
    assert_refused(&[("MAX_ROOMS_TOTAL", "0")], "MAX_ROOMS_TOTAL").await;
    assert_refused(&[("ROOM_TTL_MS", "-1")], "ROOM_TTL_MS").await;
    assert_refused(&[("HISTORY_MAX_BYTES", "lots")], "HISTORY_MAX_BYTES").await;
}

#[actix_web::test]
async fn a_redis_that_cannot_be_reached_stops_the_start_within_the_node_timeout() {
    // Port 1 on loopback: nothing listens, so every attempt is refused at once; the
    // node keeps trying for NODE_TIMEOUT_MS, then gives up, naming REDIS_URL.
    let started = std::time::Instant::now();
    let (code, stderr) = run_to_exit(&[
        ("PORT", "0"),
        ("REDIS_URL", "redis://127.0.0.1:1/0"),
        ("NODE_TIMEOUT_MS", "500"),
    ])
    .await;
    assert_ne!(code, Some(0), "started without its Redis:\n{stderr}");
    assert!(
        stderr.contains("cannot join the cluster at REDIS_URL redis://127.0.0.1:1/0"),
        "the failure names REDIS_URL:\n{stderr}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "gave up before NODE_TIMEOUT_MS"
    );
}
