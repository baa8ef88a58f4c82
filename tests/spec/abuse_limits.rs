//! Abuse limits: connection caps (in total and per address) and the Origin allow-list
//! refuse upgrades with an HTTP status and a JSON body; the per-connection rate limit
//! answers `rate_limited`, then closes with 1008; a flooding client harms nobody else.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

use crate::helpers::{
    resident_bytes, spawn_app, spawn_app_alone, spawn_app_with, Client, DEADLINE,
};

/// Tries an upgrade and returns the refusal: HTTP status and JSON body.
async fn refused_upgrade(request: tungstenite::handshake::client::Request) -> (u16, Value) {
    let attempt = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("an answer in time");
    match attempt {
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected the upgrade to be refused, it was accepted"),
    }
}

/// Opens `/ws` from a chosen local loopback address (127.0.0.2 is loopback too).
async fn connect_from(local: &str, url: &str) -> Result<Client, tungstenite::Error> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let port: u16 = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let stream = tokio::time::timeout(DEADLINE, socket.connect(server))
        .await
        .expect("connect in time")
        .unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (socket, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("handshake in time")?;
    Ok(Client {
        socket,
        id: String::new(),
        name: String::new(),
        welcome: Value::Null,
    })
}

#[actix_web::test]
async fn past_max_connections_an_upgrade_gets_503_and_the_others_are_still_served() {
    let app = spawn_app_with(|c| c.max_connections = 2).await;
    let mut ann = app.member("ann", "lobby").await;
    let echo = Client::open(&app.ws_url("/echo")).await;

    let (status, body) = refused_upgrade(app.ws_url("/ws").into_client_request().unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "server_full");

    ann.send(json!({"type": "say", "room": "lobby", "text": "still here"}))
        .await;
    assert_eq!(ann.expect("message").await["text"], "still here");

    // A freed slot is usable again.
    echo.close().await;
    app.wait_for_open_connections(1, "the closed connection kept its slot")
        .await;
    let bob = app.connect("?name=bob").await;
    assert_eq!(bob.name, "bob");
}

#[actix_web::test]
async fn past_max_connections_per_ip_that_address_gets_503_and_other_addresses_do_not() {
    let app = spawn_app_with(|c| c.max_connections_per_ip = 1).await;
    let _first = app.connect("?name=first").await;
    let (status, body) = refused_upgrade(app.ws_url("/ws").into_client_request().unwrap()).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "too_many_connections");
    assert!(body["message"].as_str().unwrap().contains('1'));

    let mut other = connect_from("127.0.0.2", &app.ws_url("/ws?name=other"))
        .await
        .expect("another address has its own allowance");
    assert_eq!(other.expect("welcome").await["name"], "other");
}

#[actix_web::test]
async fn an_origin_not_allowed_gets_403_and_allowed_or_absent_origins_connect() {
    let app = spawn_app_with(|c| c.allowed_origins = vec!["https://chat.example".into()]).await;
    let mut request = app.ws_url("/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    let (status, body) = refused_upgrade(request).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "origin_not_allowed");

    let mut request = app.ws_url("/echo").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://chat.example".parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 101);
    drop(socket);
    app.connect("?name=cli").await; // no Origin header: not a browser, allowed
}

#[actix_web::test]
async fn a_client_over_the_rate_gets_rate_limited_then_close_1008_and_others_are_unaffected() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_s = 1;
        c.rate_limit_burst = 3;
        c.rate_limit_strikes = 3;
    })
    .await;
    let mut calm = app.member("calm", "lobby").await;
    let mut noisy = app.connect("?name=noisy").await;
    for n in 0..6 {
        noisy
            .send(json!({"type": "echo", "text": format!("e{n}"), "ref": format!("r{n}")}))
            .await;
    }
    for n in 0..3 {
        let echo = noisy.expect("echo").await;
        assert_eq!(echo["ref"], format!("r{n}"));
    }
    for n in 3..5 {
        let refused = noisy.expect_error("rate_limited").await;
        assert_eq!(refused["ref"], format!("r{n}"));
    }
    noisy.expect_close(1008).await;

    calm.send(json!({"type": "say", "room": "lobby", "text": "fine", "ref": "c"}))
        .await;
    assert_eq!(calm.expect("message").await["ref"], "c");
}

#[actix_web::test]
async fn the_default_rate_limit_lets_a_normal_client_through() {
    let app = spawn_app().await;
    let mut client = app.member("chatty", "lobby").await;
    // A lively but human pace: a burst of 50 messages.
    for n in 0..50 {
        client
            .send(json!({"type": "say", "room": "lobby", "text": format!("{n}")}))
            .await;
    }
    for n in 1..=50u64 {
        assert_eq!(client.expect("message").await["seq"], n);
    }
}

#[actix_web::test]
async fn a_client_flooding_a_room_of_fifty_is_cut_off_and_the_room_keeps_working() {
    let app = spawn_app_alone(|_| {}).await;
    let mut members = Vec::new();
    for i in 0..49 {
        members.push(app.member(&format!("m{i}"), "crowd").await);
    }
    let flooder = app.member("flooder", "crowd").await;
    let rss_before = resident_bytes();

    // The flooder writes as fast as it can; it also reads, to see how it is cut off.
    let big = "f".repeat(4_000);
    let (mut sink, mut stream) = flooder.socket.split();
    let flood = actix_web::rt::spawn(async move {
        let mut sent = 0;
        for _ in 0..100_000 {
            let say = json!({"type": "say", "room": "crowd", "text": big});
            if sink.send(Message::text(say.to_string())).await.is_err() {
                break; // the connection is closing
            }
            sent += 1;
        }
        sent
    });
    let close_code = tokio::time::timeout(DEADLINE, async {
        while let Some(frame) = stream.next().await {
            if let Ok(Message::Close(Some(frame))) = frame {
                return Some(u16::from(frame.code));
            }
        }
        None
    })
    .await
    .expect("the flooder is cut off in time");
    assert_eq!(close_code, Some(1008));
    let sent = flood.await.unwrap();
    assert!(sent < 100_000, "the flood was never cut off");

    // Everyone else still talks: a message after the flood reaches all 49.
    let mut speaker = members.pop().unwrap();
    speaker
        .send(json!({"type": "say", "room": "crowd", "text": "after the flood"}))
        .await;
    for member in members.iter_mut().chain(std::iter::once(&mut speaker)) {
        let after = loop {
            let event = member.next_event().await;
            if event["type"] == "message" && event["text"] == "after the flood" {
                break event;
            }
        };
        assert_eq!(after["from"]["name"], "m48");
    }
    let growth = resident_bytes().saturating_sub(rss_before);
    assert!(growth < 64 << 20, "resident memory grew by {growth} bytes");
}
