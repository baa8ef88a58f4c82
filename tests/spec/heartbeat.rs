//! Liveness: the server pings every `heartbeat_ms`, and a client heard nothing from for
//! `timeout_ms` is dropped with `member_left` reason `timeout` in each of its rooms.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app_with, DEADLINE};

fn short_timers(config: &mut hubbub::config::Config) {
    config.heartbeat_interval = Duration::from_millis(100);
    config.client_timeout = Duration::from_millis(400);
}

#[actix_web::test]
async fn the_server_pings_every_heartbeat_interval() {
    let app = spawn_app_with(short_timers).await;
    let mut client = app.connect("").await;
    let ping = tokio::time::timeout(DEADLINE, async {
        loop {
            match client.socket.next().await {
                Some(Ok(Message::Ping(payload))) => return payload,
                Some(Ok(_)) => continue,
                other => panic!("connection ended before a ping: {other:?}"),
            }
        }
    })
    .await
    .expect("a ping within the deadline");
    assert!(ping.is_empty());
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
