//! Slow readers: a client that stops reading is dropped once its outbound queue passes
//! `MAX_PENDING_BYTES` (close 1013, `member_left` reason `slow`), its connection is torn
//! down even though its writer is jammed, memory stays bounded, and everyone else keeps
//! receiving every message.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    client_frame, read_until_closed, resident_bytes, spawn_app_alone, spawn_app_with, DEADLINE,
};

const MESSAGES: usize = 12_000;
const TEXT_BYTES: usize = 1_000;
/// The publisher keeps at most this many says unconfirmed, like a real client would;
/// a publisher that dumps 12 MB at once makes every reader "slow" relative to it.
const WINDOW: usize = 32;

/// Opens `/ws` by hand with a tiny receive buffer, completes the upgrade, and returns
/// the socket, which the test then never reads from.
pub(crate) fn raw_member(port: u16, query: &str) -> TcpStream {
    raw_upgrade(port, &format!("/ws{query}"))
}

/// Opens `path` by hand with a tiny receive buffer and completes the upgrade.
fn raw_upgrade(port: u16, path: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
    stream
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_dropped_as_slow_and_nobody_else_is_held_up() {
    let app = spawn_app_alone(|c| {
        c.max_pending_bytes = 256 * 1024;
        c.rate_limit_per_s = 0; // the publisher floods on purpose
                                // A quick sweep resets the evicted socket soon; a long timeout keeps the silent
                                // client (it never answers pings) from being dropped as `timeout` first.
        c.heartbeat_interval = Duration::from_millis(200);
        c.client_timeout = Duration::from_secs(60);
    })
    .await;
    let mut publisher = app.member("publisher", "flood").await;
    let mut reader = app.member("reader", "flood").await;
    publisher.expect("member_joined").await;

    let mut slow = tokio::task::spawn_blocking({
        let port = app.port;
        move || raw_member(port, "?name=slow&room=flood")
    })
    .await
    .unwrap();
    let slow_joined = reader.expect("member_joined").await;
    let slow_id = slow_joined["member"]["id"].as_str().unwrap().to_string();
    publisher.expect("member_joined").await;
    let rss_before = resident_bytes();

    // Both fast members read concurrently while the flood goes out.
    // Each message the publisher gets back frees one place in its window.
    let window = std::rc::Rc::new(tokio::sync::Semaphore::new(WINDOW));
    let watch = |client: crate::helpers::Client,
                 window: Option<std::rc::Rc<tokio::sync::Semaphore>>| {
        let slow_id = slow_id.clone();
        let (sink, mut stream) = client.socket.split();
        let handle = actix_web::rt::spawn(async move {
            let mut seqs = Vec::with_capacity(MESSAGES);
            let mut slow_left = None;
            while seqs.len() < MESSAGES {
                let frame = tokio::time::timeout(DEADLINE, stream.next())
                    .await
                    .expect("the flood keeps arriving")
                    .expect("connection open")
                    .expect("valid frame");
                let Message::Text(text) = frame else { continue };
                let event: Value = serde_json::from_str(&text).unwrap();
                match event["type"].as_str() {
                    Some("message") => {
                        seqs.push(event["seq"].as_u64().unwrap());
                        if let Some(window) = &window {
                            window.add_permits(1);
                        }
                    }
                    Some("member_left") if event["member"]["id"] == slow_id.as_str() => {
                        slow_left = Some((event["reason"].clone(), seqs.len()));
                    }
                    _ => {}
                }
            }
            (seqs, slow_left)
        });
        (sink, handle)
    };
    let (mut publisher_sink, publisher_reads) = watch(publisher, Some(window.clone()));
    let (_reader_sink, reader_reads) = watch(reader, None);

    let text = "x".repeat(TEXT_BYTES);
    for _ in 0..MESSAGES {
        let permit = tokio::time::timeout(DEADLINE, window.acquire())
            .await
            .expect("the publisher's own messages come back")
            .unwrap();
        permit.forget();
        let say = json!({"type": "say", "room": "flood", "text": text});
        publisher_sink
            .send(Message::text(say.to_string()))
            .await
            .unwrap();
    }

    for reads in [publisher_reads, reader_reads] {
        let (seqs, slow_left) = reads.await.unwrap();
        let expected: Vec<u64> = (1..=MESSAGES as u64).collect();
        assert!(
            seqs == expected,
            "a fast member missed or reordered messages"
        );
        let (reason, at_message) = slow_left.expect("the slow member was dropped");
        assert_eq!(reason, "slow");
        assert!(
            at_message < MESSAGES,
            "dropped during the flood, not after it"
        );
    }

    // The whole flood was ~12 MB per recipient; a server that queued it for the slow
    // client would have grown by that much.
    let growth = resident_bytes().saturating_sub(rss_before);
    assert!(growth < 8 << 20, "resident memory grew by {growth} bytes");

    // The jammed connection is torn down by the server although the client never reads.
    app.wait_for_open_connections(2, "the jammed connection is still open")
        .await;
    // And the client sees its end: reading ends (EOF or reset) in time.
    let closed = tokio::task::spawn_blocking(move || read_until_closed(&mut slow))
        .await
        .unwrap();
    assert!(closed, "the slow connection is closed by the server");

    let (_, room) = app.get("/api/rooms/flood").await;
    let members: Vec<&str> = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(members, vec!["publisher", "reader"]);
}

#[actix_web::test]
async fn a_connection_jammed_by_its_own_replies_is_torn_down_and_reported_slow() {
    let app = spawn_app_with(|c| {
        c.heartbeat_interval = Duration::from_millis(200);
        c.client_timeout = Duration::from_millis(1_000);
        c.rate_limit_per_s = 0; // the jammer floods on purpose
    })
    .await;
    let mut watcher = app.member("watcher", "lobby").await;
    let mut jammer = tokio::task::spawn_blocking({
        let port = app.port;
        move || raw_member(port, "?name=jammer&room=lobby")
    })
    .await
    .unwrap();
    let joined = watcher.expect("member_joined").await;
    let jammer_id = joined["member"]["id"].as_str().unwrap().to_string();

    // Ask for ~30 MB of echoes and never read them: the server's writer jams, which
    // stops the session actor (timers included) until the hub tears it down.
    let writer = tokio::task::spawn_blocking(move || {
        jammer
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let echo = json!({"type": "echo", "text": "y".repeat(60_000)}).to_string();
        let frame = client_frame(0x81, echo.as_bytes());
        for _ in 0..500 {
            if jammer.write_all(&frame).is_err() {
                break; // the server stopped reading (jammed) or reset us
            }
        }
        jammer
    });

    let left = watcher.wait_for("member_left").await;
    assert_eq!(left["member"]["id"], jammer_id.as_str());
    assert_eq!(left["reason"], "slow");
    let mut jammer = writer.await.unwrap();
    jammer.set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(
        read_until_closed(&mut jammer),
        "the jammed connection was closed by the server"
    );
    watcher.sync().await;
}

#[actix_web::test]
async fn an_echo_connection_jammed_by_its_own_replies_is_torn_down() {
    let app = spawn_app_with(|c| {
        c.heartbeat_interval = Duration::from_millis(200);
        c.client_timeout = Duration::from_millis(1_000);
    })
    .await;
    let jammer = tokio::task::spawn_blocking({
        let port = app.port;
        move || raw_upgrade(port, "/echo")
    })
    .await
    .unwrap();
    // ~30 MB of echoes asked for and never read: the writer jams, the actor stops.
    let writer = tokio::task::spawn_blocking(move || {
        let mut jammer = jammer;
        jammer
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let frame = client_frame(0x82, &[7u8; 60_000]);
        for _ in 0..500 {
            if jammer.write_all(&frame).is_err() {
                break;
            }
        }
        jammer
    });
    app.wait_for_open_connections(0, "the jammed /echo connection is still open")
        .await;
    let mut jammer = writer.await.unwrap();
    jammer.set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(
        read_until_closed(&mut jammer),
        "the jammed connection was closed by the server"
    );
    // The server still echoes for others.
    let mut other = crate::helpers::Client::open(&app.ws_url("/echo")).await;
    other.send_text("still here").await;
    assert_eq!(
        other.next_message().await.into_text().unwrap(),
        "still here"
    );
}
