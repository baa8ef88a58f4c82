//! `API_KEY`: with it set, `/api/*` and `/metrics` need `Authorization: Bearer <key>`,
//! else `401 {"error":"unauthorized"}`; `/healthz` and the WebSocket endpoints stay open.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

const KEY: &str = "s3cret-key-for-tests";

async fn get_with(app: &TestApp, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = app.http.get(app.url(path));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[actix_web::test]
async fn with_an_api_key_the_api_and_metrics_need_it_and_health_and_sockets_do_not() {
    let app = spawn_app_with(|config| {
        config.api_key = Some(hubbub::config::Secret::new(KEY));
    })
    .await;
    let bearer = format!("Bearer {KEY}");
    for path in ["/api/rooms", "/api/stats", "/api/rooms/lobby", "/metrics"] {
        for wrong in [None, Some("Bearer nope"), Some(KEY), Some("Basic czNjcmV0")] {
            let (status, body) = get_with(&app, path, wrong).await;
            assert_eq!(status, 401, "{path} with {wrong:?}: {body}");
            assert_eq!(body["error"], "unauthorized", "{path}");
            assert!(body["message"].is_string());
        }
    }
    assert_eq!(get_with(&app, "/api/rooms", Some(&bearer)).await.0, 200);
    assert_eq!(get_with(&app, "/metrics", Some(&bearer)).await.0, 200);
    // The scheme is case-insensitive (RFC 9110), as for /ws tokens.
    let lower = format!("bearer {KEY}");
    assert_eq!(get_with(&app, "/api/rooms", Some(&lower)).await.0, 200);
    // A POST without the key publishes nothing.
    let response = app
        .http
        .post(app.url("/api/rooms/lobby/messages"))
        .body(r#"{"text":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let (_, room) = get_with(&app, "/api/rooms/lobby", Some(&bearer)).await;
    assert_eq!(room["error"], "unknown_room", "nothing was made: {room}");
    // A kick without the key removes nobody.
    let mut bob = app.member("bob", "lobby").await;
    let kick = app.url(&format!("/api/rooms/lobby/members/{}", bob.id));
    let response = app.http.delete(&kick).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = app
        .http
        .delete(&kick)
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let left = bob.expect("left").await;
    assert_eq!(
        left["reason"], "kicked",
        "only the keyed kick landed: {left}"
    );
    // Open: the health check, and WebSockets (they have their own admission).
    assert_eq!(get_with(&app, "/healthz", None).await.0, 200);
    let mut ann = app.connect("?name=ann").await;
    ann.send(json!({"type": "echo", "text": "hi"})).await;
    assert_eq!(ann.expect("echo").await["text"], "hi");
}

#[actix_web::test]
async fn without_an_api_key_the_api_is_open() {
    let app = spawn_app().await;
    assert_eq!(get_with(&app, "/api/rooms", None).await.0, 200);
    assert_eq!(get_with(&app, "/metrics", None).await.0, 200);
}
