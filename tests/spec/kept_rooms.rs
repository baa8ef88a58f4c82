//! Rooms that last and clients that resume. A room with nobody in it is kept for
//! `ROOM_TTL_MS` with its `seq`, `epoch` and history (a backend may publish into it, a
//! member may come back to it); `join` with `since` gets exactly what was missed.
//! Whatever clients do, what is kept stays bounded: `MAX_ROOMS_TOTAL` rooms and
//! `HISTORY_MAX_BYTES` of history.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    resident_bytes, spawn_app, spawn_app_alone, spawn_app_with, Client, TestApp, DEADLINE,
};

/// The `seq` of each message in a `joined`'s history, oldest first.
fn history_seqs(joined: &Value) -> Vec<u64> {
    joined["history"]
        .as_array()
        .expect("joined has a history")
        .iter()
        .map(|m| m["seq"].as_u64().expect("a message has a seq"))
        .collect()
}

/// Says `text` into `room` and waits for it to come back.
async fn say(client: &mut Client, room: &str, text: &str) -> Value {
    client
        .send(json!({"type": "say", "room": room, "text": text}))
        .await;
    client.wait_for("message").await
}

/// A member of `room` that said `count` messages, and where its client left off.
async fn a_room_with_messages(app: &TestApp, count: usize) -> (Client, String, u64) {
    let mut ann = app.member("ann", "lobby").await;
    let mut last = Value::Null;
    for i in 0..count {
        last = say(&mut ann, "lobby", &format!("m{}", i + 1)).await;
    }
    ann.send(json!({"type": "who", "room": "lobby", "ref": "epoch"}))
        .await;
    ann.expect("presence").await;
    ann.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = ann.expect("joined").await;
    let epoch = joined["epoch"].as_str().unwrap().to_owned();
    (ann, epoch, last["seq"].as_u64().unwrap_or(0))
}

#[actix_web::test]
async fn an_empty_room_keeps_its_history_and_seq_until_its_ttl_then_goes_within_a_second() {
    let ttl = Duration::from_millis(600);
    let app = spawn_app_with(|config| config.room_ttl = ttl).await;
    let mut ann = app.member("ann", "lobby").await;
    say(&mut ann, "lobby", "one").await;
    say(&mut ann, "lobby", "two").await;
    ann.send(json!({"type": "leave", "room": "lobby"})).await;
    ann.expect("left").await;
    let left_at = Instant::now();

    let (status, room) = app.get("/api/rooms/lobby").await;
    assert_eq!(status, 200, "kept: {room}");
    assert_eq!(room["member_count"], 0);
    assert_eq!(room["history"].as_array().unwrap().len(), 2);
    // `rooms` lists it, with nobody in it.
    ann.send(json!({"type": "rooms"})).await;
    assert_eq!(
        ann.expect("rooms").await["rooms"],
        json!([{"name": "lobby", "members": 0}])
    );
    // Back within the TTL: the seq goes on.
    ann.send(json!({"type": "join", "room": "lobby"})).await;
    let joined = ann.expect("joined").await;
    assert_eq!(
        (
            joined["seq"].clone(),
            joined["history"].as_array().unwrap().len()
        ),
        (json!(2), 2)
    );
    assert_eq!(say(&mut ann, "lobby", "three").await["seq"], 3);
    ann.send(json!({"type": "leave", "room": "lobby"})).await;
    ann.expect("left").await;
    let left_at = left_at.max(Instant::now());

    // Gone after the TTL, within a second more; looking meanwhile does not extend it.
    loop {
        let (status, _) = app.get("/api/rooms/lobby").await;
        if status == 404 {
            break;
        }
        assert!(
            left_at.elapsed() < ttl + Duration::from_secs(1) + Duration::from_millis(500),
            "still kept {:?} after its last use",
            left_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(left_at.elapsed() >= ttl, "not before its TTL");
    // A room made again is a new life: seq from 1, another epoch.
    ann.send(json!({"type": "join", "room": "lobby"})).await;
    let again = ann.expect("joined").await;
    assert_eq!(again["seq"], 0);
    assert_ne!(again["epoch"], joined["epoch"]);
}

#[actix_web::test]
async fn a_retried_publish_with_the_same_idempotency_key_answers_the_first_seq_and_publishes_nothing(
) {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let publish = |key: &'static str| {
        let http = app.http.clone();
        let url = app.url("/api/rooms/lobby/messages");
        async move {
            let response = http
                .post(url)
                .header("Idempotency-Key", key)
                .body(r#"{"text":"deploy done"}"#)
                .send()
                .await
                .expect("HTTP request");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = publish("deploy-42").await;
    assert_eq!(status, 202, "{first}");
    let (status, retry) = publish("deploy-42").await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!(retry["seq"], first["seq"]);
    assert_eq!(retry["at"], first["at"]);
    let (_, other) = publish("deploy-43").await;
    assert_eq!(other["seq"], first["seq"].as_u64().unwrap() + 1);
    // Ann got two messages, not three.
    assert_eq!(ann.expect("message").await["seq"], first["seq"]);
    assert_eq!(ann.expect("message").await["seq"], other["seq"]);
    ann.sync().await;
    // A key that is too long is refused.
    let (status, body) = publish(Box::leak("k".repeat(300).into_boxed_str())).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "bad_idempotency_key");
}

#[actix_web::test]
async fn a_room_full_of_young_idempotency_keys_refuses_a_new_one_with_429() {
    let app = spawn_app_with(|config| config.idempotency_keys_max = 2).await;
    let keyed = |key: &'static str| {
        let http = app.http.clone();
        let url = app.url("/api/rooms/lobby/messages");
        async move {
            let response = http
                .post(url)
                .header("Idempotency-Key", key)
                .body(r#"{"text":"x"}"#)
                .send()
                .await
                .expect("HTTP request");
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    assert_eq!(keyed("a").await.0, 202);
    assert_eq!(keyed("b").await.0, 202);
    let (status, body) = keyed("c").await;
    assert_eq!(
        (status, body["error"].clone()),
        (429, json!("too_many_idempotency_keys"))
    );
    // Nothing was published by the refused one; the remembered keys still answer.
    let (status, retry) = keyed("a").await;
    assert_eq!((status, retry["seq"].clone()), (202, json!(1)));
    let (_, room) = app.get("/api/rooms/lobby").await;
    assert_eq!(room["history"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn when_every_kept_room_is_occupied_a_new_room_is_rooms_full() {
    let app = spawn_app_with(|config| config.max_rooms_total = 2).await;
    let mut ann = app.member("ann", "one").await;
    let _bob = app.member("bob", "two").await;
    ann.send(json!({"type": "join", "room": "three", "ref": "j"}))
        .await;
    let error = ann.expect_error("rooms_full").await;
    assert_eq!(error["ref"], "j");
    let (status, body) = app
        .post("/api/rooms/three/messages", r#"{"text":"x"}"#)
        .await;
    assert_eq!((status, body["error"].clone()), (503, json!("rooms_full")));
    // An empty kept room makes room: ann leaves "one", and "three" can be made.
    ann.send(json!({"type": "leave", "room": "one"})).await;
    ann.expect("left").await;
    ann.send(json!({"type": "join", "room": "three"})).await;
    ann.expect("joined").await;
}

#[actix_web::test]
async fn resuming_after_a_short_disconnect_gets_exactly_the_missed_messages() {
    let app = spawn_app().await;
    let (ann, epoch, seen) = a_room_with_messages(&app, 3).await;
    let mut bob = app.member("bob", "lobby").await;
    ann.close().await;
    for i in 4..=6 {
        say(&mut bob, "lobby", &format!("m{i}")).await;
    }
    let mut ann = app.connect("?name=ann").await;
    ann.send(json!({"type": "join", "room": "lobby", "since": {"seq": seen, "epoch": epoch}}))
        .await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["recovered"], true);
    assert_eq!(joined["seq"], 6);
    let texts: Vec<&str> = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m4", "m5", "m6"]);

    // Nothing missed since: recovered, empty.
    ann.send(json!({"type": "join", "room": "lobby", "since": {"seq": 6, "epoch": epoch}}))
        .await;
    let again = ann.expect("joined").await;
    assert_eq!(
        (again["recovered"].clone(), again["history"].clone()),
        (json!(true), json!([]))
    );
}

#[actix_web::test]
async fn resuming_is_refused_for_a_gap_past_the_history_a_wrong_epoch_or_a_seq_beyond() {
    let app = spawn_app_with(|config| config.history_len = 3).await;
    let (_ann, epoch, _) = a_room_with_messages(&app, 6).await;
    let mut bob = app.connect("?name=bob").await;
    for (since, why) in [
        (
            json!({"seq": 1, "epoch": epoch}),
            "missed 2-6, only 4-6 kept",
        ),
        (
            json!({"seq": 5, "epoch": "not-the-epoch"}),
            "another life of the room",
        ),
        (json!({"seq": 99, "epoch": epoch}), "beyond the room's seq"),
    ] {
        bob.send(json!({"type": "join", "room": "lobby", "since": since}))
            .await;
        let joined = bob.wait_for("joined").await;
        assert_eq!(joined["recovered"], false, "{why}");
        let seqs = history_seqs(&joined);
        assert_eq!(seqs, [4, 5, 6], "the usual history: {why}");
    }
    // A `since` that is not an object of seq and epoch is bad_json.
    bob.send(json!({"type": "join", "room": "lobby", "since": 5}))
        .await;
    bob.expect_error("bad_json").await;
}

#[actix_web::test]
async fn resuming_while_the_room_is_flooded_misses_nothing_and_repeats_nothing() {
    const FLOOD: u64 = 1_500;
    let app = spawn_app_with(|config| {
        config.history_len = 5_000;
        config.rate_limit_per_s = 0;
    })
    .await;
    let (ann, epoch, seen) = a_room_with_messages(&app, 10).await;
    let flooder = app.member("flooder", "lobby").await;
    ann.close().await;
    let (mut sink, mut stream) = flooder.socket.split();
    let writer = actix_web::rt::spawn(async move {
        for i in 0..FLOOD {
            let say = json!({"type": "say", "room": "lobby", "text": format!("f{i}")});
            sink.feed(Message::text(say.to_string())).await.unwrap();
        }
        sink.flush().await.unwrap();
        sink
    });
    // The flooder's own copies tell how far the flood has come; resume midway.
    let mut flooded = 0;
    while flooded < FLOOD / 3 {
        let frame = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            if serde_json::from_str::<Value>(&text).unwrap()["type"] == "message" {
                flooded += 1;
            }
        }
    }
    let mut ann = app.connect("?name=ann").await;
    ann.send(json!({"type": "join", "room": "lobby", "since": {"seq": seen, "epoch": epoch}}))
        .await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["recovered"], true);
    let mut seqs = history_seqs(&joined);
    let last = 10 + FLOOD;
    while seqs.last().copied().unwrap_or(seen) < last {
        let event = ann.next_event().await;
        if event["type"] == "message" {
            seqs.push(event["seq"].as_u64().unwrap());
        }
    }
    let expected: Vec<u64> = (seen + 1..=last).collect();
    assert_eq!(seqs.len(), expected.len(), "no gap and no duplicate");
    assert_eq!(seqs, expected);
    drop(writer.await.unwrap());
}

#[actix_web::test]
async fn a_client_making_rooms_in_a_loop_keeps_the_server_within_max_rooms_total() {
    // 2,000 rooms of ten 4 KiB messages: 80 MiB of history if every room were kept.
    const ROOMS: usize = 2_000;
    let app = spawn_app_alone(|config| {
        config.max_rooms_total = 500;
        config.rate_limit_per_s = 0;
    })
    .await;
    let mut ann = app.connect("?name=ann").await;
    let text = "x".repeat(4096);
    let rss_before = resident_bytes();
    let mut joined = 0;
    for i in 0..ROOMS {
        let room = format!("room-{i}");
        ann.send(json!({"type": "join", "room": room})).await;
        for _ in 0..10 {
            ann.send(json!({"type": "say", "room": room, "text": text}))
                .await;
        }
        ann.send(json!({"type": "leave", "room": room})).await;
        if i % 100 == 99 {
            joined += count_until_drained(&mut ann, "joined").await;
        }
    }
    joined += count_until_drained(&mut ann, "joined").await;
    assert_eq!(
        joined, ROOMS,
        "every new room was made: the idlest kept one made room"
    );
    let mut kept = 0;
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/api/rooms?after={after}"),
            None => "/api/rooms".into(),
        };
        let (_, page) = app.get(&path).await;
        kept += page["rooms"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(kept, 500, "at most MAX_ROOMS_TOTAL rooms are kept");
    let growth = resident_bytes().saturating_sub(rss_before);
    assert!(growth < 32 << 20, "the server grew by {} MiB", growth >> 20);
}

/// Reads everything before a round trip, counting the events of `kind` (an `error` is a
/// failure: nothing here should be refused).
async fn count_until_drained(client: &mut Client, kind: &str) -> usize {
    client
        .send(json!({"type": "rooms", "limit": 1, "ref": "drained"}))
        .await;
    let mut count = 0;
    loop {
        let event = client.next_event().await;
        if event["ref"] == "drained" {
            return count;
        }
        assert_ne!(event["type"], "error", "{event}");
        if event["type"] == kind {
            count += 1;
        }
    }
}

#[actix_web::test]
async fn rooms_filled_with_maximum_size_messages_keep_history_within_its_budget() {
    // Two clients, 30 rooms each, ten 60 KiB messages a room: 36 MiB said, nine times
    // the budget; kept in full it would outgrow the bound below.
    const BUDGET: usize = 4 << 20;
    let app = spawn_app_alone(|config| {
        config.history_max_bytes = BUDGET;
        config.rate_limit_per_s = 0;
        config.max_message_bytes = 64 << 10;
        config.max_pending_bytes = 4 << 20;
    })
    .await;
    let text = "y".repeat(60 << 10);
    let rss_before = resident_bytes();
    let mut rooms = Vec::new();
    let mut fillers = Vec::new();
    for client in 0..2 {
        let mut filler = app.connect(&format!("?name=filler{client}")).await;
        let text = text.clone();
        let names: Vec<String> = (0..30).map(|i| format!("full-{client}-{i}")).collect();
        rooms.extend(names.clone());
        fillers.push(actix_web::rt::spawn(async move {
            for room in names {
                filler.send(json!({"type": "join", "room": room})).await;
                filler.wait_for("joined").await;
                for _ in 0..10 {
                    filler
                        .send(json!({"type": "say", "room": room, "text": text}))
                        .await;
                    filler.wait_for("message").await;
                }
            }
        }));
    }
    for filler in fillers {
        filler.await.unwrap();
    }
    let mut kept_bytes = 0;
    for room in &rooms {
        let (_, view) = app.get(&format!("/api/rooms/{room}")).await;
        kept_bytes += view["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().len())
            .sum::<usize>();
    }
    assert!(kept_bytes <= BUDGET, "{kept_bytes} bytes of history kept");
    assert!(
        kept_bytes > BUDGET / 2,
        "the budget is used, not wiped: {kept_bytes}"
    );
    let growth = resident_bytes().saturating_sub(rss_before);
    assert!(growth < 24 << 20, "the server grew by {} MiB", growth >> 20);
}
