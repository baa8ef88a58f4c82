//! Starts the real server on a free loopback port and talks to it through a typed
//! WebSocket client. Every wait has a deadline; nothing sleeps a fixed time.

use std::{net::TcpListener, time::Duration};

use futures_util::{SinkExt, StreamExt};
use hubbub::{
    config::Config,
    hub::backend::{InMemory, RoomBackend},
    startup::{Application, Controller},
};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{protocol::frame::coding::CloseCode, Message},
    MaybeTlsStream, WebSocketStream,
};

/// How long any single expected frame may take on a loaded 2-core CI machine.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub struct TestApp {
    pub port: u16,
    pub config: Config,
    pub controller: Controller,
    pub http: reqwest::Client,
    _isolation: Isolation,
}

/// A server with default settings (two workers, so tests exercise cross-thread paths).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Tests that measure this process's memory run alone: every other test holds this lock
/// shared while its server lives, a memory test holds it exclusively.
static ISOLATION: std::sync::LazyLock<std::sync::Arc<tokio::sync::RwLock<()>>> =
    std::sync::LazyLock::new(Default::default);

pub enum Isolation {
    Shared(#[allow(dead_code)] tokio::sync::OwnedRwLockReadGuard<()>),
    Alone(#[allow(dead_code)] tokio::sync::OwnedRwLockWriteGuard<()>),
    /// The test holds a [`shared_isolation`] for this server (a cluster's nodes share
    /// their cluster's): the lock is fair, so a second shared take while a memory test
    /// waits for it would deadlock.
    Held,
}

/// The shared side of the memory-isolation lock, for a test that starts several servers
/// with [`spawn_app_sharing`] and holds this while they live.
pub async fn shared_isolation() -> Isolation {
    Isolation::Shared(ISOLATION.clone().read_owned().await)
}

/// Like [`spawn_app_with`], for a test that holds a [`shared_isolation`] while the
/// server lives.
pub async fn spawn_app_sharing(adjust: impl FnOnce(&mut Config)) -> TestApp {
    start_app(adjust, Isolation::Held).await
}

/// A server whose config `adjust` may change first (shorter timers, smaller limits).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let isolation = Isolation::Shared(ISOLATION.clone().read_owned().await);
    start_app(adjust, isolation).await
}

/// Like [`spawn_app_with`], but no other test's server runs meanwhile, so this process's
/// resident memory is this server's alone.
pub async fn spawn_app_alone(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let isolation = Isolation::Alone(ISOLATION.clone().write_owned().await);
    start_app(adjust, isolation).await
}

/// A server with default settings whose room state is kept by the backend `backend`
/// makes (from the config).
pub async fn spawn_app_with_backend(
    backend: impl FnOnce(&Config) -> Box<dyn RoomBackend>,
) -> TestApp {
    let isolation = Isolation::Shared(ISOLATION.clone().read_owned().await);
    start_app_with_backend(|_| {}, backend, isolation).await
}

async fn start_app(adjust: impl FnOnce(&mut Config), isolation: Isolation) -> TestApp {
    let in_memory =
        |config: &Config| -> Box<dyn RoomBackend> { Box::new(InMemory::new(config.room_rules())) };
    start_app_with_backend(adjust, in_memory, isolation).await
}

async fn start_app_with_backend(
    adjust: impl FnOnce(&mut Config),
    backend: impl FnOnce(&Config) -> Box<dyn RoomBackend>,
    isolation: Isolation,
) -> TestApp {
    crate::log_capture::install();
    let mut config = Config {
        port: 0,
        workers: 2,
        ..Config::default()
    };
    adjust(&mut config);
    config.validate().expect("test config is valid");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    // With REDIS_URL the node joins its cluster, as the binary's does.
    let app = match config.redis_url {
        Some(_) => Application::build_with_listener(config.clone(), listener),
        None => Application::build_with_backend(config.clone(), listener, backend(&config)),
    }
    .expect("build app");
    let port = app.port();
    let controller = app.controller();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        port,
        config,
        controller,
        http: reqwest::Client::new(),
        _isolation: isolation,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path_and_query)
    }

    /// Opens `/ws` with the given query (e.g. `"?name=ann"`) and reads `welcome`.
    pub async fn connect(&self, query: &str) -> Client {
        let mut client = Client::open(&self.ws_url(&format!("/ws{query}"))).await;
        let welcome = client.expect("welcome").await;
        client.id = welcome["id"]
            .as_str()
            .expect("welcome has an id")
            .to_string();
        client.name = welcome["name"]
            .as_str()
            .expect("welcome has a name")
            .to_string();
        client.welcome = welcome;
        client
    }

    /// Connects as `name` and joins `room`, reading `joined`.
    pub async fn member(&self, name: &str, room: &str) -> Client {
        let mut client = self.connect(&format!("?name={name}")).await;
        client.send(json!({"type": "join", "room": room})).await;
        client.expect("joined").await;
        client
    }

    /// Waits (under the deadline) until at most `at_most` WebSocket connections are open,
    /// i.e. until the server has really let go of the ones a test ended or jammed.
    pub async fn wait_for_open_connections(&self, at_most: usize, what: &str) {
        let started = tokio::time::Instant::now();
        while self.controller.open_connections() > at_most {
            assert!(started.elapsed() < DEADLINE, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A GET's answer as raw parts, for endpoints that do not answer JSON (`/healthz`,
    /// the page, `/metrics`).
    pub async fn get_raw(&self, path: &str) -> RawResponse {
        let response = tokio::time::timeout(DEADLINE, self.http.get(self.url(path)).send())
            .await
            .expect("HTTP response in time")
            .expect("HTTP request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = tokio::time::timeout(DEADLINE, response.text())
            .await
            .expect("HTTP body in time")
            .expect("HTTP body");
        RawResponse {
            status,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = tokio::time::timeout(DEADLINE, self.http.get(self.url(path)).send())
            .await
            .expect("HTTP response in time")
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let response = tokio::time::timeout(DEADLINE, self.http.delete(self.url(path)).send())
            .await
            .expect("HTTP response in time")
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let request = self.http.post(self.url(path)).body(body);
        let response = tokio::time::timeout(DEADLINE, request.send())
            .await
            .expect("HTTP response in time")
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that speaks in protocol events.
pub struct Client {
    pub socket: Socket,
    /// From `welcome` (empty on `/echo`).
    pub id: String,
    pub name: String,
    pub welcome: Value,
}

impl Client {
    pub async fn open(url: &str) -> Client {
        let (socket, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket handshake in time")
            .expect("WebSocket handshake");
        Client {
            socket,
            id: String::new(),
            name: String::new(),
            welcome: Value::Null,
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_message(Message::text(frame.to_string())).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    pub async fn send_message(&mut self, message: Message) {
        tokio::time::timeout(DEADLINE, self.socket.send(message))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// The next data or close frame (pings and pongs are answered by the library).
    /// One deadline for the frame: the server's pings must not extend it, or a frame
    /// that never comes would be waited for forever.
    pub async fn next_message(&mut self) -> Message {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a frame before the deadline")
                .expect("the connection to stay open")
                .expect("a valid frame");
            match message {
                Message::Ping(_) | Message::Pong(_) => continue,
                other => return other,
            }
        }
    }

    /// The next event, parsed. Panics on a close frame or a non-JSON frame.
    pub async fn next_event(&mut self) -> Value {
        match self.next_message().await {
            Message::Text(text) => serde_json::from_str(&text).expect("frames are JSON"),
            other => panic!("expected a JSON event, got {other:?}"),
        }
    }

    /// The next event, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let event = self.next_event().await;
        assert_eq!(event["type"], kind, "expected a {kind} event, got {event}");
        event
    }

    /// The next event must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let event = self.expect("error").await;
        assert_eq!(event["code"], code, "unexpected error: {event}");
        assert!(event["message"].as_str().is_some_and(|m| !m.is_empty()));
        event
    }

    /// Skips events until one of `kind` arrives (for streams with known noise).
    pub async fn wait_for(&mut self, kind: &str) -> Value {
        loop {
            let event = self.next_event().await;
            if event["type"] == kind {
                return event;
            }
        }
    }

    /// The server must close the connection with `code` (skipping data frames before it).
    /// Each data frame gives the close a new deadline; pings do not.
    pub async fn expect_close(&mut self, code: u16) {
        let mut deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a close frame before the deadline")
            {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(
                        u16::from(frame.code),
                        code,
                        "close reason: {}",
                        frame.reason
                    );
                    return;
                }
                Some(Ok(Message::Close(None))) => panic!("closed without a code, expected {code}"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(_)) => deadline = tokio::time::Instant::now() + DEADLINE,
                Some(Err(err)) => panic!("connection failed before close {code}: {err}"),
                None => panic!("connection ended without close {code}"),
            }
        }
    }

    /// A hub round trip: everything the hub queued for this client before it saw this
    /// request has arrived once the reply does. Used to prove that nothing was sent.
    pub async fn sync(&mut self) {
        self.send(json!({"type": "rooms", "ref": "sync"})).await;
        let reply = self.next_event().await;
        assert_eq!(
            reply["ref"], "sync",
            "expected nothing before the sync reply, got {reply}"
        );
    }

    pub async fn close(mut self) {
        let _ = self
            .socket
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}

/// This process's resident memory (the server runs in it), from `/proc/self/status`.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Mask key of every client frame; not zero, so a server that skipped unmasking would
/// see garbage.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One masked client frame; `first` is the FIN/RSV/opcode byte, sent exactly as given.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ MASK[i % 4]),
    );
    frame
}

/// Reads a raw socket until the server ends the connection: `true` for EOF or a reset,
/// `false` for any other error (a read timeout included: set one first).
pub fn read_until_closed(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) => return err.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// A response as raw parts ([`TestApp::get_raw`]).
pub struct RawResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}
