//! Graceful shutdown: every client on `/ws` and `/echo` gets close 1001, then the server
//! stops accepting; the binary does this on SIGTERM and Ctrl-C (SIGINT) and exits 0.

use serde_json::json;

use crate::{
    config::Binary,
    helpers::{spawn_app, Client, DEADLINE},
};

#[actix_web::test]
async fn shutdown_closes_every_client_with_1001_and_then_refuses_connections() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let mut echo = Client::open(&app.ws_url("/echo")).await;
    echo.send_text("still echoing").await;
    assert_eq!(
        echo.next_message().await,
        tokio_tungstenite::tungstenite::Message::Text("still echoing".into())
    );

    let controller = app.controller.clone();
    let stopped = actix_web::rt::spawn(async move { controller.shutdown().await });

    ann.expect_close(1001).await;
    bob.expect_close(1001).await;
    echo.expect_close(1001).await;
    tokio::time::timeout(DEADLINE, stopped)
        .await
        .expect("shutdown finished within the deadline")
        .expect("shutdown task did not panic");

    let handshake = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async(app.ws_url("/ws")),
    )
    .await
    .expect("the connection attempt ends within the deadline");
    assert!(
        handshake.is_err(),
        "a new /ws connection was accepted after shutdown"
    );

    let health = tokio::time::timeout(DEADLINE, app.http.get(app.url("/healthz")).send())
        .await
        .expect("the health check ends within the deadline");
    if let Ok(response) = health {
        assert_ne!(
            response.status().as_u16(),
            200,
            "/healthz is still 200 after shutdown"
        );
    }
}

#[actix_web::test]
async fn shutdown_with_no_clients_finishes_and_stops_the_listener() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/rooms").await, (200, json!({"rooms": []})));
    tokio::time::timeout(DEADLINE, app.controller.shutdown())
        .await
        .expect("shutdown finished within the deadline");
    let health = tokio::time::timeout(DEADLINE, reqwest::get(app.url("/healthz")))
        .await
        .expect("the health check ends within the deadline");
    assert!(health.is_err(), "the listener still answers: {health:?}");
}

/// Starts the binary with a `/ws` member and an `/echo` client, sends `signal`, and
/// expects both to get close 1001 and the process to exit successfully.
async fn signal_closes_clients_with_1001_and_exits_0(signal: &str) {
    let mut binary = Binary::start(&[]).await;
    let mut member = Client::open(&binary.ws_url("/ws?name=ann&room=lobby")).await;
    member.expect("welcome").await;
    member.expect("joined").await;
    let mut echo = Client::open(&binary.ws_url("/echo")).await;
    echo.send_text("ready").await;
    assert_eq!(
        echo.next_message().await,
        tokio_tungstenite::tungstenite::Message::Text("ready".into())
    );

    binary.signal(signal);

    member.expect_close(1001).await;
    echo.expect_close(1001).await;
    let status = binary.exit_status().await;
    assert!(status.success(), "exit status after SIG{signal}: {status}");
}

#[actix_web::test]
async fn sigterm_closes_every_client_with_1001_and_the_binary_exits_0() {
    signal_closes_clients_with_1001_and_exits_0("TERM").await;
}

#[actix_web::test]
async fn ctrl_c_closes_every_client_with_1001_and_the_binary_exits_0() {
    signal_closes_clients_with_1001_and_exits_0("INT").await;
}
