//! Message size limits on `/ws`: `MAX_MESSAGE_BYTES` (default 65536) counts the whole
//! frame as sent; over it the connection is closed with 1009 and nobody else is affected.

use serde_json::json;

use crate::helpers::spawn_app;

/// A `say` frame into `room` padded with `x`s to exactly `bytes` bytes on the wire.
fn say_of_exact_size(room: &str, bytes: usize) -> (String, String) {
    let empty = json!({"type": "say", "room": room, "text": ""}).to_string();
    let text = "x".repeat(bytes - empty.len());
    let frame = json!({"type": "say", "room": room, "text": text}).to_string();
    assert_eq!(frame.len(), bytes);
    (frame, text)
}

#[actix_web::test]
async fn a_say_of_exactly_the_default_limit_is_delivered() {
    let app = spawn_app().await;
    assert_eq!(app.config.max_message_bytes, 65_536);
    let mut ann = app.member("ann", "lobby").await;
    let (frame, text) = say_of_exact_size("lobby", 65_536);
    ann.send_text(&frame).await;
    let message = ann.expect("message").await;
    assert_eq!(message["text"], text.as_str());
    assert_eq!(message["seq"], 1);
    assert_eq!(message["from"]["id"], ann.id.as_str());
}

#[actix_web::test]
async fn a_say_one_byte_over_the_default_limit_gets_close_1009() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let (frame, _) = say_of_exact_size("lobby", 65_537);
    ann.send_text(&frame).await;
    ann.expect_close(1009).await;
}

#[actix_web::test]
async fn the_limit_follows_max_message_bytes() {
    let app = crate::helpers::spawn_app_with(|c| c.max_message_bytes = 4096).await;
    assert_eq!(
        app.connect("").await.welcome["limits"]["max_message_bytes"],
        4096
    );
    let mut ann = app.member("ann", "lobby").await;
    let (fits, text) = say_of_exact_size("lobby", 4096);
    ann.send_text(&fits).await;
    assert_eq!(ann.expect("message").await["text"], text.as_str());
    let (over, _) = say_of_exact_size("lobby", 4097);
    ann.send_text(&over).await;
    ann.expect_close(1009).await;
}

#[actix_web::test]
async fn after_one_client_is_closed_with_1009_the_others_are_still_served() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    let joined = ann.expect("member_joined").await;
    assert_eq!(joined["member"]["id"], bob.id.as_str());

    let (over, _) = say_of_exact_size("lobby", 70_000);
    bob.send_text(&over).await;
    bob.expect_close(1009).await;

    // Bob's oversize message never reached the room; his connection ended.
    let left = ann.expect("member_left").await;
    assert_eq!(left["room"], "lobby");
    assert_eq!(left["member"]["id"], bob.id.as_str());
    assert_eq!(left["reason"], "disconnect");

    ann.send(json!({"type": "say", "room": "lobby", "text": "still here"}))
        .await;
    let message = ann.expect("message").await;
    assert_eq!(message["text"], "still here");
    assert_eq!(message["seq"], 1);

    let mut cid = app.member("cid", "lobby").await;
    assert_eq!(
        ann.expect("member_joined").await["member"]["id"],
        cid.id.as_str()
    );
    cid.send(json!({"type": "echo", "text": "hi", "ref": "e"}))
        .await;
    let echo = cid.expect("echo").await;
    assert_eq!(echo["text"], "hi");
    assert_eq!(echo["ref"], "e");
}
