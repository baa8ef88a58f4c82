//! Graceful shutdown: every client on `/ws` and `/echo` gets close 1001; while they go,
//! the listener stays open and answers `/healthz` and new upgrades with 503; then the
//! server stops listening. The binary does this on SIGTERM and Ctrl-C (SIGINT) and exits 0.

use serde_json::json;

use crate::{
    config::Binary,
    helpers::{spawn_app, spawn_app_with, Client, TestApp, DEADLINE},
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
}

#[actix_web::test]
async fn while_clients_drain_healthz_is_503_and_upgrades_are_refused_then_the_listener_closes() {
    let app = spawn_app_with(|config| {
        // Neither timer may end the drain while the test looks at it: the drain lasts
        // until the test lets go of the client that holds it open.
        config.close_timeout = DEADLINE;
        config.shutdown_timeout = DEADLINE;
    })
    .await;
    let mut watcher = app.connect("").await;
    // Never read from again, so it never answers the server's close: as long as this
    // socket is open, the server has a client to wait for.
    let holder = app.connect("").await;
    assert_eq!(health_check(&app).await.0, 200);

    let controller = app.controller.clone();
    let stopped = actix_web::rt::spawn(async move { controller.shutdown().await });
    // The watcher's 1001 says the shutdown has begun; the holder keeps it draining.
    watcher.expect_close(1001).await;

    let (status, body) = health_check(&app).await;
    assert_eq!(status, 503, "/healthz during the drain: {body}");
    assert_eq!(body["error"], "shutting_down", "{body}");
    let upgrade = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async(app.ws_url("/ws")),
    )
    .await
    .expect("the upgrade is answered within the deadline");
    match upgrade {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503, "{response:?}")
        }
        other => panic!("expected a 503 to the upgrade during the drain, got {other:?}"),
    }
    assert!(
        !stopped.is_finished(),
        "shutdown finished while a client was still connected"
    );
    assert!(app.controller.open_connections() > 0);

    drop(holder);
    drop(watcher);
    tokio::time::timeout(DEADLINE, stopped)
        .await
        .expect("shutdown finishes within the deadline once the last client is gone")
        .expect("shutdown task did not panic");
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await;
    assert_eq!(
        connect.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the listener still accepts after shutdown: {connect:?}"
    );
}

/// `GET /healthz` on a new connection, so an answer proves the listener still accepts
/// (a pooled keep-alive connection would be answered after it closed): status and JSON
/// body, if any.
async fn health_check(app: &TestApp) -> (u16, serde_json::Value) {
    let response = tokio::time::timeout(
        DEADLINE,
        reqwest::Client::new().get(app.url("/healthz")).send(),
    )
    .await
    .expect("the health check is answered within the deadline")
    .expect("the listener answers the health check");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[actix_web::test]
async fn shutdown_with_no_clients_finishes_and_stops_the_listener() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/rooms").await,
        (200, json!({"rooms": [], "next": null}))
    );
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
