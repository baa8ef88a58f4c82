//! Connecting to `/ws`: `welcome` first, hub-assigned ids, `?name=` and `?room=`.

use serde_json::json;

use hubbub::protocol::NodeId;

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn welcome_is_the_first_frame_and_carries_id_name_and_limits() {
    let app = spawn_app().await;
    let client = app.connect("?name=ann").await;
    let welcome = &client.welcome;
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(welcome["name"], "ann");
    assert_eq!(
        welcome["heartbeat_ms"],
        app.config.heartbeat_interval.as_millis() as u64
    );
    assert_eq!(
        welcome["timeout_ms"],
        app.config.client_timeout.as_millis() as u64
    );
    assert_eq!(
        welcome["limits"]["max_message_bytes"],
        app.config.max_message_bytes
    );
    assert_eq!(
        welcome["limits"]["max_rooms"],
        app.config.max_rooms_per_connection
    );
    assert_eq!(welcome["node"], app.config.node_id.as_str());
}

#[actix_web::test]
async fn node_id_comes_from_the_config_or_is_new_at_every_start() {
    let named = spawn_app_with(|config| {
        config.node_id = NodeId::parse("eu-1").unwrap();
    })
    .await;
    assert_eq!(named.connect("").await.welcome["node"], "eu-1");
    let first = spawn_app().await;
    let second = spawn_app().await;
    let (a, b) = (first.connect("").await, second.connect("").await);
    assert_ne!(a.welcome["node"], b.welcome["node"]);
}

#[actix_web::test]
async fn ids_are_never_reused_after_a_restart() {
    // A client that kept an id from before a restart must not find it naming someone
    // else: the restarted server's ids all come after the old one's.
    let before = spawn_app().await;
    let mut old_ids = Vec::new();
    for _ in 0..3 {
        old_ids.push(before.connect("").await.id.parse::<u64>().unwrap());
    }
    before.controller.shutdown().await;
    let after = spawn_app().await;
    let new = after.connect("").await;
    let new_id: u64 = new.id.parse().unwrap();
    assert!(
        old_ids.iter().all(|old| *old < new_id),
        "{old_ids:?} then {new_id}"
    );
    // Below 2^53: a JavaScript client that reads an id as a number loses nothing.
    assert!(new_id < 1 << 53, "{new_id}");
    // Guests are still counted from 1 per server, not named after the long id.
    assert_eq!(new.name, "guest-1");
}

#[actix_web::test]
async fn ids_are_unique_and_a_missing_name_becomes_guest() {
    let app = spawn_app().await;
    let a = app.connect("").await;
    let b = app.connect("").await;
    assert_ne!(a.id, b.id);
    assert!(a.name.starts_with("guest-"), "{}", a.name);
    assert!(!a.id.is_empty());
}

#[actix_web::test]
async fn room_in_the_query_is_joined_after_welcome() {
    let app = spawn_app().await;
    let mut client = app.connect("?name=ann&room=lobby").await;
    let joined = client.expect("joined").await;
    assert_eq!(joined["room"], "lobby");
    assert_eq!(joined["members"][0]["id"], client.id.as_str());
}

#[actix_web::test]
async fn a_bad_name_or_room_in_the_query_gets_an_error_after_welcome() {
    let app = spawn_app().await;
    let mut client = app.connect("?name=%20%20&room=no%20spaces").await;
    assert!(client.name.starts_with("guest-"));
    client.expect_error("invalid_name").await;
    client.expect_error("invalid_room").await;
    client.send(json!({"type": "rooms", "ref": "r"})).await;
    assert_eq!(client.expect("rooms").await["rooms"], json!([]));
}

#[actix_web::test]
async fn a_query_key_given_twice_is_a_400_and_a_percent_encoded_name_is_decoded() {
    let app = spawn_app().await;
    let (status, body) = app.get("/ws?name=ann&name=bob").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_query", "{body}");
    let client = app.connect("?name=Ann%20B.&other=ignored").await;
    assert_eq!(client.name, "Ann B.");
    let client = app.connect("?name=Ann+C.").await;
    assert_eq!(client.name, "Ann C.", "'+' is a space in a query");
}

#[actix_web::test]
async fn two_servers_in_one_process_never_cross() {
    // Each server's worker threads get their own plumbing (way to the hub, couriers,
    // shutdown list), bound to that server: nothing one thread met first is reused.
    let first = spawn_app().await;
    let second = spawn_app().await;
    let mut ann = first.member("ann", "lobby").await;
    let mut bob = second.member("bob", "lobby").await;
    // Several connections each, so both servers' workers are all in use.
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(first.member(&format!("a{i}"), "lobby").await);
        others.push(second.member(&format!("b{i}"), "lobby").await);
    }
    ann.send(json!({"type": "say", "room": "lobby", "text": "on the first"}))
        .await;
    bob.send(json!({"type": "say", "room": "lobby", "text": "on the second"}))
        .await;
    assert_eq!(ann.wait_for("message").await["text"], "on the first");
    assert_eq!(bob.wait_for("message").await["text"], "on the second");
    for other in &mut others {
        let message = other.wait_for("message").await;
        assert_eq!(message["seq"], 1, "each server has its own room");
        other.sync().await;
    }
    ann.sync().await;
    bob.sync().await;
    let (_, first_room) = first.get("/api/rooms/lobby").await;
    let (_, second_room) = second.get("/api/rooms/lobby").await;
    assert_eq!(first_room["members"].as_array().unwrap().len(), 5);
    assert_eq!(second_room["members"].as_array().unwrap().len(), 5);
    first.controller.shutdown().await;
    // The second server is untouched by the first one's shutdown.
    bob.send(json!({"type": "say", "room": "lobby", "text": "still here"}))
        .await;
    assert_eq!(bob.wait_for("message").await["text"], "still here");
}
