//! The HTTP surface: `/healthz`, the JSON API for backends (`/api/rooms...`), the page at
//! `/`, and JSON errors (`{"error", "message"}`) for everything that goes wrong.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Client};

/// An error body must be `{"error": code, "message": text}` with both non-empty.
fn assert_json_error(body: &Value, context: &str) {
    let code = body["error"].as_str().unwrap_or_default();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!code.is_empty(), "{context}: no error code in {body}");
    assert!(!message.is_empty(), "{context}: no message in {body}");
}

/// A room's members as the hub reports them over `/ws` (`who` -> `presence`), by id.
async fn presence(client: &mut Client, room: &str) -> Vec<Value> {
    client.send(json!({"type": "who", "room": room})).await;
    let presence = client.wait_for("presence").await;
    assert_eq!(presence["room"], room);
    sorted_by_id(&presence["members"])
}

fn sorted_by_id(members: &Value) -> Vec<Value> {
    let mut members = members.as_array().expect("members is an array").clone();
    members.sort_by_key(|m| m["id"].as_str().expect("member id").parse::<u64>().unwrap());
    members
}

/// Sends `say` and waits until every listed member has the resulting `message`.
async fn say(from: &mut Client, others: &mut [&mut Client], room: &str, text: &str) -> Value {
    from.send(json!({"type": "say", "room": room, "text": text}))
        .await;
    let message = from.wait_for("message").await;
    assert_eq!(message["text"], text);
    for other in others.iter_mut() {
        assert_eq!(other.wait_for("message").await, message);
    }
    message
}

#[actix_web::test]
async fn healthz_answers_200_ok() {
    let app = spawn_app().await;
    let response = app.get_raw("/healthz").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "ok");
}

#[actix_web::test]
async fn the_room_listing_is_empty_while_nobody_is_in_a_room() {
    let app = spawn_app().await;
    let _lonely = app.connect("?name=lonely").await;
    assert_eq!(
        app.get("/api/rooms").await,
        (200, json!({"rooms": [], "next": null}))
    );
}

#[actix_web::test]
async fn the_room_listing_shows_every_room_with_its_members() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let _bob = app.member("bob", "lobby").await;
    let mut cid = app.member("cid", "dev").await;
    let lobby_members = presence(&mut ann, "lobby").await;
    let dev_members = presence(&mut cid, "dev").await;
    assert_eq!(lobby_members.len(), 2);
    assert_eq!(dev_members.len(), 1);
    assert_eq!(dev_members[0]["id"], cid.id.as_str());
    assert_eq!(dev_members[0]["name"], "cid");
    let mut keys: Vec<&String> = dev_members[0].as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "joined_at", "name"], "a member object");

    let (status, body) = app.get("/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    let rooms = body["rooms"].as_array().expect("rooms is an array");
    let mut names: Vec<&str> = rooms.iter().map(|r| r["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["dev", "lobby"]);
    for room in rooms {
        let expected = if room["name"] == "lobby" {
            &lobby_members
        } else {
            &dev_members
        };
        assert_eq!(&sorted_by_id(&room["members"]), expected, "{room}");
    }
}

#[actix_web::test]
async fn one_room_shows_its_members_and_history() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let first = say(&mut ann, &mut [&mut bob], "lobby", "one").await;
    let second = say(&mut bob, &mut [&mut ann], "lobby", "two ☃").await;
    let members = presence(&mut ann, "lobby").await;

    let (status, body) = app.get("/api/rooms/lobby").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "lobby");
    assert_eq!(sorted_by_id(&body["members"]), members);
    let history = body["history"].as_array().expect("history is an array");
    assert_eq!(history.len(), 2, "{body}");
    for (entry, sent) in history.iter().zip([&first, &second]) {
        for field in ["room", "from", "text", "at", "seq"] {
            assert_eq!(entry[field], sent[field], "history field {field}: {entry}");
        }
    }
    assert_eq!(history[0]["seq"], 1);
    assert_eq!(history[1]["seq"], 2);
    assert_eq!(history[1]["from"]["id"], bob.id.as_str());
}

#[actix_web::test]
async fn a_room_without_messages_shows_an_empty_history() {
    let app = spawn_app().await;
    let ann = app.member("ann", "quiet").await;
    let (status, body) = app.get("/api/rooms/quiet").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "quiet");
    assert_eq!(body["members"][0]["id"], ann.id.as_str());
    assert_eq!(
        body["history"],
        json!([]),
        "history must always be an array: {body}"
    );
}

#[actix_web::test]
async fn with_room_ttl_0_a_room_is_gone_from_the_api_once_its_last_member_leaves() {
    let app = spawn_app_with(|config| config.room_ttl = std::time::Duration::ZERO).await;
    let mut ann = app.member("ann", "lobby").await;
    assert_eq!(app.get("/api/rooms/lobby").await.0, 200);
    ann.send(json!({"type": "leave", "room": "lobby"})).await;
    ann.expect("left").await;
    let (status, body) = app.get("/api/rooms/lobby").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_room");
    assert_eq!(
        app.get("/api/rooms").await,
        (200, json!({"rooms": [], "next": null}))
    );
}

#[actix_web::test]
async fn an_unknown_room_is_a_404_json_error() {
    let app = spawn_app().await;
    let _ann = app.member("ann", "lobby").await;
    let (status, body) = app.get("/api/rooms/nowhere").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_room");
    assert_json_error(&body, "GET unknown room");
    // Room names are case-sensitive.
    assert_eq!(app.get("/api/rooms/Lobby").await.0, 404);
}

#[actix_web::test]
async fn an_invalid_room_name_is_a_400_json_error() {
    let app = spawn_app().await;
    let too_long = "a".repeat(65);
    for room in ["no%20spaces", "bad!name", "caf%C3%A9", too_long.as_str()] {
        let (status, body) = app.get(&format!("/api/rooms/{room}")).await;
        assert_eq!(status, 400, "GET room {room:?}: {body}");
        assert_eq!(body["error"], "invalid_room", "GET room {room:?}");
        assert_json_error(&body, room);

        let path = format!("/api/rooms/{room}/messages");
        let (status, body) = app.post(&path, r#"{"text":"hi"}"#).await;
        assert_eq!(status, 400, "POST room {room:?}: {body}");
        assert_eq!(body["error"], "invalid_room", "POST room {room:?}");
    }
    // 64 characters of every allowed kind is a valid name: just not a room yet.
    let longest = format!("{}-_.9", "Z".repeat(60));
    assert_eq!(app.get(&format!("/api/rooms/{longest}")).await.0, 404);
}

#[actix_web::test]
async fn publishing_into_a_room_reaches_every_member_as_server_with_the_next_seq() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    let mut outsider = app.member("cid", "elsewhere").await;
    ann.expect("member_joined").await;
    say(&mut ann, &mut [&mut bob], "lobby", "first").await;

    let (status, body) = app
        .post(
            "/api/rooms/lobby/messages",
            r#"{"text":"from the backend ☃"}"#,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["room"], "lobby");
    assert_eq!(body["seq"], 2);
    let at = body["at"].as_str().expect("at is a string");
    // RFC 3339 UTC with milliseconds: 2024-01-02T03:04:05.678Z
    assert_eq!(at.len(), 24, "{at}");
    assert!(at.ends_with('Z') && at.as_bytes()[19] == b'.', "{at}");

    for member in [&mut ann, &mut bob] {
        let message = member.expect("message").await;
        assert_eq!(message["room"], "lobby");
        assert_eq!(message["from"], json!({"id": "server", "name": "server"}));
        assert_eq!(message["text"], "from the backend ☃");
        assert_eq!(message["seq"], 2);
        assert_eq!(message["at"], at);
    }
    // Only the room's members get it.
    outsider.sync().await;

    let (_, room) = app.get("/api/rooms/lobby").await;
    let history = room["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[1]["from"],
        json!({"id": "server", "name": "server"})
    );
    assert_eq!(history[1]["seq"], 2);
}

#[actix_web::test]
async fn publishing_into_a_room_nobody_is_in_makes_it_and_answers_202_with_seq_1() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/api/rooms/news/messages", r#"{"text":"anyone?"}"#)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["room"].clone(), body["seq"].clone()),
        (json!("news"), json!(1))
    );
    // Kept with its history and no members; a member joining later reads it.
    let (status, room) = app.get("/api/rooms/news").await;
    assert_eq!(status, 200);
    assert_eq!(room["member_count"], 0);
    assert_eq!(room["history"][0]["text"], "anyone?");
    let mut ann = app.connect("?name=ann").await;
    ann.send(json!({"type": "join", "room": "news"})).await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["history"][0]["seq"], 1);
    assert_eq!(joined["seq"], 1);
}

#[actix_web::test]
async fn a_bad_publish_body_is_a_400_json_error_and_publishes_nothing() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    for bad in [
        "not json",
        "",
        "{}",
        r#"{"txt":"typo"}"#,
        r#"{"text":5}"#,
        r#"{"text":null}"#,
        r#"["text","hi"]"#,
        r#"{"text":"unterminated"#,
    ] {
        let (status, body) = app.post("/api/rooms/lobby/messages", bad).await;
        assert_eq!(status, 400, "body {bad:?}: {body}");
        assert_json_error(&body, bad);
    }
    // None of them reached the room: the next good one is the room's first message.
    let (status, body) = app
        .post("/api/rooms/lobby/messages", r#"{"text":"good"}"#)
        .await;
    assert_eq!((status, &body["seq"]), (202, &json!(1)), "{body}");
    let message = ann.expect("message").await;
    assert_eq!(
        (&message["text"], &message["seq"]),
        (&json!("good"), &json!(1))
    );
}

#[actix_web::test]
async fn published_text_over_max_message_bytes_is_a_413_json_error() {
    let app = spawn_app_with(|c| c.max_message_bytes = 1024).await;
    let mut ann = app.member("ann", "lobby").await;
    let over = json!({"text": "x".repeat(1025)}).to_string();
    let (status, body) = app.post("/api/rooms/lobby/messages", over).await;
    assert_eq!(status, 413, "{body}");
    assert_json_error(&body, "413");

    // The limit counts UTF-8 bytes: 512 two-byte characters fit exactly.
    let at_limit = "é".repeat(512);
    let fits = json!({ "text": at_limit }).to_string();
    let (status, body) = app.post("/api/rooms/lobby/messages", fits).await;
    assert_eq!((status, &body["seq"]), (202, &json!(1)), "{body}");
    let message = ann.expect("message").await;
    assert_eq!(message["text"], at_limit.as_str());
    assert_eq!(message["seq"], 1);
}

#[actix_web::test]
async fn an_unknown_path_is_a_404_json_error() {
    let app = spawn_app().await;
    for path in ["/nope", "/api/nothing", "/api/rooms/lobby/members"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_json_error(&body, path);
    }
}

#[actix_web::test]
async fn a_plain_get_of_a_websocket_path_is_a_4xx_json_error() {
    let app = spawn_app().await;
    for path in ["/ws", "/echo", "/ws?name=ann&room=lobby"] {
        let (status, body) = app.get(path).await;
        assert!(
            (400..500).contains(&status),
            "{path}: status {status}, {body}"
        );
        assert_json_error(&body, path);
    }
    // The failed upgrades left nobody behind.
    assert_eq!(
        app.get("/api/rooms").await,
        (200, json!({"rooms": [], "next": null}))
    );
}

#[actix_web::test]
async fn the_root_serves_the_page() {
    let app = spawn_app().await;
    let response = app.get_raw("/").await;
    let page_exists = app.config.static_dir.join("index.html").is_file();
    if page_exists {
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            response.content_type.starts_with("text/html"),
            "content type {:?}",
            response.content_type
        );
        assert!(
            response.body.to_ascii_lowercase().contains("<html"),
            "not a page: {}",
            response.body
        );
    } else {
        // The page is not written yet: `/` must still answer sensibly.
        let html = response.status == 200 && response.content_type.starts_with("text/html");
        let json_404 = response.status == 404
            && serde_json::from_str::<Value>(&response.body)
                .is_ok_and(|body| body["error"].is_string());
        assert!(
            html || json_404,
            "GET / answered {}: {}",
            response.status,
            response.body
        );
    }
}

#[actix_web::test]
async fn deleting_a_member_kicks_it_from_the_room_and_it_stays_connected() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;

    let (status, body) = app
        .delete(&format!("/api/rooms/lobby/members/{}", bob.id))
        .await;
    assert_eq!(status, 204, "{body}");

    let left = bob.expect("left").await;
    assert_eq!(left["room"], "lobby");
    assert_eq!(left["reason"], "kicked");
    let departed = ann.expect("member_left").await;
    assert_eq!(departed["member"]["id"], bob.id.as_str());
    assert_eq!(departed["reason"], "kicked");
    assert_eq!(presence(&mut ann, "lobby").await.len(), 1);
    // Still connected: the kicked member may talk and join again.
    bob.send(json!({"type": "echo", "text": "still here"}))
        .await;
    assert_eq!(bob.expect("echo").await["text"], "still here");
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    bob.expect("joined").await;
    assert_eq!(
        ann.expect("member_joined").await["member"]["id"],
        bob.id.as_str()
    );
}

#[actix_web::test]
async fn deleting_a_member_not_in_the_room_is_a_404_json_error() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let bob = app.member("bob", "elsewhere").await;
    for path in [
        format!("/api/rooms/lobby/members/{}", bob.id),
        "/api/rooms/lobby/members/999999".to_string(),
        "/api/rooms/lobby/members/not-an-id".to_string(),
        format!("/api/rooms/nowhere/members/{}", ann.id),
    ] {
        let (status, body) = app.delete(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], "not_a_member", "{path}");
        assert!(body["message"].is_string());
    }
    let (status, body) = app.delete("/api/rooms/bad%20name/members/1").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_room");
    // Nothing happened to anyone.
    assert_eq!(presence(&mut ann, "lobby").await.len(), 1);
    ann.sync().await;
}
