//! Liveness: the server pings every `heartbeat_ms`, and a client heard nothing from for
//! `timeout_ms` is dropped with `member_left` reason `timeout` in each of its rooms.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app_with, DEADLINE};

/// Consecutive pings whose spacing is measured (the first ping starts the clock).
const PINGS_TIMED: usize = 8;

fn short_timers(config: &mut hubbub::config::Config) {
    config.heartbeat_interval = Duration::from_millis(100);
    config.client_timeout = Duration::from_millis(400);
}

#[actix_web::test]
async fn the_server_pings_every_heartbeat_interval() {
    let app = spawn_app_with(short_timers).await;
    let interval = app.config.heartbeat_interval;
    let mut client = app.connect("").await;
    let mut pings = Vec::new();
    while pings.len() < PINGS_TIMED {
        match tokio::time::timeout(DEADLINE, client.socket.next()).await {
            Ok(Some(Ok(Message::Ping(payload)))) => {
                assert!(payload.is_empty(), "ping payload {payload:?}");
                pings.push(Instant::now());
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no ping {} within the deadline: {other:?}", pings.len() + 1),
        }
    }

    let gaps: Vec<Duration> = pings.windows(2).map(|pair| pair[1] - pair[0]).collect();
    // Each gap may stretch when this machine stalls (a ping late by a stall is followed
    // by a short gap: the schedule is fixed), so each is only bounded from above, well
    // below the 10x of a heartbeat ten times too slow; the mean pins the rate both ways.
    for gap in &gaps {
        assert!(
            *gap <= interval * 5,
            "a gap of {gap:?} between pings, interval {interval:?}; all: {gaps:?}"
        );
    }
    let mean = pings[PINGS_TIMED - 1].duration_since(pings[0]) / (PINGS_TIMED as u32 - 1);
    assert!(
        mean >= interval / 2 && mean <= interval * 2,
        "pings {mean:?} apart on average, interval {interval:?}; gaps: {gaps:?}"
    );
}

#[actix_web::test]
async fn a_silent_client_is_dropped_and_its_rooms_see_timeout() {
    let app = spawn_app_with(short_timers).await;
    let mut watcher = app.member("watcher", "lobby").await;
    // The silent client never reads again, so it never answers a ping.
    let silent = app.member("silent", "lobby").await;
    watcher.expect("member_joined").await;

    let left = watcher.wait_for("member_left").await;
    assert_eq!(left["member"]["id"], silent.id.as_str());
    assert_eq!(left["reason"], "timeout");
    assert_eq!(left["room"], "lobby");

    let (status, room) = app.get("/api/rooms/lobby").await;
    assert_eq!(status, 200);
    assert_eq!(room["members"].as_array().unwrap().len(), 1, "{room}");
}

#[actix_web::test]
async fn a_client_that_answers_pings_stays_connected_past_the_timeout() {
    let app = spawn_app_with(short_timers).await;
    let mut client = app.member("steady", "lobby").await;
    // Reading answers pings. Wait for enough pings to span twice the timeout.
    let needed = 2 * 400 / 100 + 1;
    let mut pings = 0;
    while pings < needed {
        match tokio::time::timeout(DEADLINE, client.socket.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Close(frame)))) => panic!("dropped: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("connection failed: {other:?}"),
        }
    }
    client.send(json!({"type": "who", "room": "lobby"})).await;
    let presence = client.wait_for("presence").await;
    assert_eq!(presence["members"][0]["id"], client.id.as_str());
}

#[actix_web::test]
async fn a_client_that_disappears_is_removed_exactly_once() {
    let app = spawn_app_with(short_timers).await;
    let mut watcher = app.member("watcher", "lobby").await;
    let gone = app.member("gone", "lobby").await;
    watcher.expect("member_joined").await;
    let gone_id = gone.id.clone();
    drop(gone); // TCP closed without a close frame

    let left = watcher.wait_for("member_left").await;
    assert_eq!(left["member"]["id"], gone_id.as_str());
    assert_eq!(left["reason"], "disconnect");
    // Well past the timeout, no second member_left arrives: the next hub reply is ours.
    let needed = 2 * 400 / 100 + 1;
    let mut pings = 0;
    while pings < needed {
        match tokio::time::timeout(DEADLINE, watcher.socket.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Text(text)))) => panic!("unexpected event: {text}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("connection failed: {other:?}"),
        }
    }
    watcher.sync().await;
}
