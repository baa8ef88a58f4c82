//! Slow readers, limits and rate limits across nodes work as on one node: a connection's
//! own limits (`MAX_ROOMS_PER_CONNECTION`, the rate limit, `MAX_PENDING_BYTES`) are kept
//! by the node that holds it and count nothing on another; `MAX_ROOMS_TOTAL` counts the
//! whole cluster; big rooms count members, not announce them, wherever they joined; a
//! refreshed token's lost rooms are left everywhere; and a node that could not replay
//! what it missed (`REDIS_LOG_LEN`) says `resync`, never a repeated `seq`.

use std::{
    io::Read,
    net::TcpStream,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use hubbub::{auth::AuthKey, config::Secret};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{join_on, who, Cluster};
use crate::{
    auth::{connect_with, SECRET},
    helpers::{Client, DEADLINE},
};

// ------------------------------------------------------------------ rooms per connection

#[actix_web::test]
async fn too_many_rooms_holds_per_connection_and_rooms_on_another_node_do_not_count() {
    let Some(cluster) = Cluster::start("too_many_rooms_per_connection").await else {
        return;
    };
    let two_rooms = |config: &mut hubbub::config::Config| config.max_rooms_per_connection = 2;
    let a = cluster.node_with(two_rooms).await;
    let b = cluster.node_with(two_rooms).await;

    // Bob, on B, fills his two rooms.
    let (mut bob, _) = join_on(&b, "bob", "x1").await;
    bob.send(json!({"type": "join", "room": "x2"})).await;
    bob.expect("joined").await;

    // Ann, on A, still has both of hers: one is a room bob is in, one is new.
    let mut ann = a.connect("?name=ann").await;
    for room in ["x1", "a1"] {
        ann.send(json!({"type": "join", "room": room})).await;
        assert_eq!(ann.expect("joined").await["room"], room);
    }
    bob.expect("member_joined").await;
    // Her third is refused on her node, whatever the room.
    ann.send(json!({"type": "join", "room": "x2", "ref": "third"}))
        .await;
    let refused = ann.expect_error("too_many_rooms").await;
    assert_eq!(refused["ref"], "third");
    // And bob's third on B, too: both nodes keep the limit.
    bob.send(json!({"type": "join", "room": "a1", "ref": "third"}))
        .await;
    assert_eq!(bob.expect_error("too_many_rooms").await["ref"], "third");

    // The refusal did nothing: B lists ann in x1 only, nobody new in x2.
    let x2 = who(&mut bob, "x2").await;
    assert_eq!(x2["member_count"], 1, "{x2}");
    // Another connection on A has its own two.
    let (mut amy, _) = join_on(&a, "amy", "x2").await;
    amy.send(json!({"type": "join", "room": "a1"})).await;
    amy.expect("joined").await;
    assert_eq!(ann.expect("member_joined").await["room"], "a1");
    // Ann leaves one and may join another.
    ann.send(json!({"type": "leave", "room": "a1"})).await;
    ann.expect("left").await;
    ann.send(json!({"type": "join", "room": "x2"})).await;
    let joined = ann.wait_for("joined").await;
    assert_eq!(
        (&joined["room"], &joined["member_count"]),
        (&json!("x2"), &json!(3)),
        "{joined}"
    );
}

// ------------------------------------------------------------------ rooms in the cluster

#[actix_web::test]
async fn rooms_full_counts_the_rooms_of_the_whole_cluster() {
    let Some(cluster) = Cluster::start("rooms_full_counts_the_cluster").await else {
        return;
    };
    let two_in_all = |config: &mut hubbub::config::Config| {
        config.max_rooms_total = 2;
        config.room_ttl = Duration::ZERO; // an empty room goes at once
    };
    let a = cluster.node_with(two_in_all).await;
    let b = cluster.node_with(two_in_all).await;
    let (mut ann, _) = join_on(&a, "ann", "r1").await;
    let (_bob, _) = join_on(&b, "bob", "r2").await;

    // One room on each node: the cluster is full, on either node.
    let mut cid = a.connect("?name=cid").await;
    let mut dan = b.connect("?name=dan").await;
    for client in [&mut cid, &mut dan] {
        client
            .send(json!({"type": "join", "room": "r3", "ref": "j"}))
            .await;
        assert_eq!(client.expect_error("rooms_full").await["ref"], "j");
    }
    for node in [&a, &b] {
        let (status, body) = node.post("/api/rooms/r3/messages", r#"{"text":"x"}"#).await;
        assert_eq!(
            (status, &body["error"]),
            (503, &json!("rooms_full")),
            "{body}"
        );
    }
    // A room that exists is no new room: dan, on B, joins r1 (its member is on A).
    dan.send(json!({"type": "join", "room": "r1"})).await;
    dan.expect("joined").await;
    ann.expect("member_joined").await;
    dan.send(json!({"type": "leave", "room": "r1"})).await;
    dan.expect("left").await;
    ann.expect("member_left").await;

    // Ann leaves r1, its last member; with ROOM_TTL_MS 0 it is gone, and r3 can be made
    // on the other node.
    ann.send(json!({"type": "leave", "room": "r1"})).await;
    ann.expect("left").await;
    dan.send(json!({"type": "join", "room": "r3"})).await;
    assert_eq!(dan.expect("joined").await["room"], "r3");
    // Full again (r2 and r3): r1 cannot come back, on A.
    ann.send(json!({"type": "join", "room": "r1", "ref": "again"}))
        .await;
    assert_eq!(ann.expect_error("rooms_full").await["ref"], "again");
    let (status, body) = a.post("/api/rooms/r1/messages", r#"{"text":"x"}"#).await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("rooms_full")),
        "{body}"
    );
    // Publishing into a room that exists still works, from either node.
    let (status, body) = a.post("/api/rooms/r3/messages", r#"{"text":"in"}"#).await;
    assert_eq!(status, 202, "{body}");
    let message = dan.expect("message").await;
    assert_eq!(
        (&message["text"], &message["seq"]),
        (&json!("in"), &json!(1))
    );
}

// ------------------------------------------------------------------ rate limits

#[actix_web::test]
async fn a_rate_limited_client_on_b_is_refused_and_closed_and_a_member_on_a_is_unaffected() {
    let Some(cluster) = Cluster::start("rate_limit_per_connection").await else {
        return;
    };
    let tight = |config: &mut hubbub::config::Config| {
        config.rate_limit_per_s = 1;
        config.rate_limit_burst = 3;
        config.rate_limit_strikes = 3;
    };
    let a = cluster.node_with(tight).await;
    let b = cluster.node_with(tight).await;
    let (mut calm, _) = join_on(&a, "calm", "lobby").await;
    // Noisy joins through the query (no frame of its own spent on it).
    let mut noisy = b.connect("?name=noisy&room=lobby").await;
    noisy.expect("joined").await;
    let noisy_id = noisy.id.clone();
    assert_eq!(
        calm.expect("member_joined").await["member"]["id"],
        noisy_id.as_str()
    );

    for n in 0..6 {
        noisy
            .send(json!({"type": "say", "room": "lobby", "text": format!("s{n}"), "ref": format!("r{n}")}))
            .await;
    }
    // As on one node: the burst goes through, the next two are refused, the third
    // strike closes. The refusals are answered by the connection itself, the messages
    // come back through the room (and may be cut off by the close): each kind keeps
    // its own order.
    let (mut refused, mut delivered) = (Vec::new(), Vec::new());
    loop {
        match noisy.socket.next().await.expect("open").expect("a frame") {
            Message::Text(text) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                match event["type"].as_str() {
                    Some("error") => {
                        assert_eq!(event["code"], "rate_limited", "{event}");
                        refused.push(event["ref"].clone());
                    }
                    Some("message") => delivered.push((event["ref"].clone(), event["seq"].clone())),
                    other => panic!("unexpected {other:?}: {event}"),
                }
            }
            Message::Close(frame) => {
                let frame = frame.expect("a close code");
                assert_eq!(u16::from(frame.code), 1008, "{}", frame.reason);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(refused, [json!("r3"), json!("r4")]);
    let burst: Vec<(Value, Value)> = (0..3)
        .map(|n| (json!(format!("r{n}")), json!(n + 1)))
        .collect();
    assert!(
        burst.starts_with(&delivered),
        "noisy's own messages, in order, until the close: {delivered:?}"
    );
    eprintln!(
        "rate limit: noisy saw {} of its 3 messages before the close",
        delivered.len()
    );

    // Calm, on A, got the three that went through, then noisy's leaving, and nothing
    // else; its own budget is untouched.
    for n in 0..3 {
        let message = calm.expect("message").await;
        assert_eq!(
            (&message["text"], &message["from"]["id"]),
            (&json!(format!("s{n}")), &json!(noisy_id)),
            "{message}"
        );
    }
    let gone = calm.expect("member_left").await;
    assert_eq!(gone["member"]["id"], noisy_id.as_str(), "{gone}");
    calm.send(json!({"type": "say", "room": "lobby", "text": "fine", "ref": "c"}))
        .await;
    let message = calm.expect("message").await;
    assert_eq!(
        (&message["ref"], &message["seq"]),
        (&json!("c"), &json!(4)),
        "{message}"
    );
}

// ------------------------------------------------------------------ slow readers

/// How a raw connection ended, read to its end.
enum Ending {
    /// A close frame with this code (after `frames` data frames).
    Close { code: u16, frames: usize },
    /// EOF or a reset with no close frame (after `frames` data frames).
    Cut { frames: usize },
}

/// Reads server frames (unmasked) from `stream` until a close frame or the end.
fn read_to_the_end(stream: &mut TcpStream) -> Ending {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut frames = 0;
    loop {
        // Every whole frame in the buffer.
        while let Some((opcode, payload, used)) = parse_frame(&buffer) {
            if opcode == 0x8 {
                let code = payload
                    .get(..2)
                    .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                return Ending::Close { code, frames };
            }
            frames += 1;
            buffer.drain(..used);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ending::Cut { frames },
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ending::Cut { frames }
            }
            Err(err) => panic!("reading the slow connection: {err}"),
        }
    }
}

/// One unmasked frame at the start of `bytes`: (opcode, payload, bytes used).
fn parse_frame(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)?);
    assert_eq!(second & 0x80, 0, "a server frame is never masked");
    let (len, head) = match second & 0x7f {
        126 => (
            u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]) as usize,
            4,
        ),
        127 => {
            let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(raw) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let payload = bytes.get(head..head + len)?;
    Some((first & 0x0f, payload, head + len))
}

#[actix_web::test]
async fn a_slow_reader_on_a_is_dropped_with_1013_and_b_sees_it_leave_as_slow() {
    let Some(cluster) = Cluster::start("a_slow_reader_on_a").await else {
        return;
    };
    let a = cluster
        .node_with(|config| {
            config.max_pending_bytes = 64 * 1024;
            // The silent client never answers a ping: no `timeout` before `slow`.
            config.client_timeout = Duration::from_secs(60);
        })
        .await;
    let b = cluster
        .node_with(|config| config.rate_limit_per_s = 0) // the publisher floods on purpose
        .await;
    let mut publisher = b.member("publisher", "flood").await;
    let mut slow = tokio::task::spawn_blocking({
        let port = a.port;
        move || crate::slow_reader::raw_member(port, "?name=slow&room=flood")
    })
    .await
    .unwrap();
    let arrived = publisher.expect("member_joined").await;
    let slow_id = arrived["member"]["id"].as_str().unwrap().to_owned();
    // A fast reader on A, in the same room, keeps up throughout: it reads until the
    // publisher's "end".
    let (mut fast, _) = join_on(&a, "fast", "flood").await;
    publisher.expect("member_joined").await;
    let fast_reads = actix_web::rt::spawn(async move {
        let (mut seqs, mut left) = (Vec::new(), None);
        loop {
            let event = fast.next_event().await;
            match event["type"].as_str() {
                Some("message") if event["text"] == "end" => return (fast, seqs, left),
                Some("message") => seqs.push(event["seq"].as_u64().unwrap()),
                Some("member_left") => left = Some(event),
                other => panic!("fast: unexpected {other:?}: {event}"),
            }
        }
    });

    // The publisher keeps at most WINDOW says unconfirmed and stops once the slow
    // member is gone (or at LIMIT, which the test then fails).
    const WINDOW: usize = 32;
    const LIMIT: usize = 20_000;
    let text = "x".repeat(1_000);
    let started = Instant::now();
    let (mut sink, mut stream) = publisher.socket.split();
    let (mut sent, mut confirmed) = (0usize, 0usize);
    let mut left = None;
    while left.is_none() && confirmed < LIMIT {
        while sent < LIMIT && sent - confirmed < WINDOW {
            let say = json!({"type": "say", "room": "flood", "text": text});
            sink.send(Message::text(say.to_string())).await.unwrap();
            sent += 1;
        }
        let frame = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("the publisher's messages come back")
            .expect("open")
            .expect("a frame");
        let Message::Text(frame) = frame else {
            continue;
        };
        let event: Value = serde_json::from_str(&frame).unwrap();
        match event["type"].as_str() {
            Some("message") => confirmed += 1,
            Some("member_left") => left = Some(event),
            other => panic!("unexpected {other:?}: {event}"),
        }
    }
    eprintln!(
        "slow reader: dropped after {confirmed} of {sent} messages ({:?})",
        started.elapsed()
    );
    let left = left.expect("the slow member on A was dropped during the flood");
    assert_eq!(
        (&left["member"]["id"], &left["reason"], &left["room"]),
        (&json!(slow_id), &json!("slow"), &json!("flood")),
        "{left}"
    );

    // The slow client, reading at last, finds its frames end in a 1013 close.
    let ending = tokio::task::spawn_blocking(move || read_to_the_end(&mut slow))
        .await
        .unwrap();
    let (code, frames) = match ending {
        Ending::Close { code, frames } => (Some(code), frames),
        Ending::Cut { frames } => (None, frames),
    };
    eprintln!("slow reader: read {frames} frames, then close {code:?}");
    assert_eq!(code, Some(1013), "the slow connection ends with close 1013");
    a.wait_for_open_connections(1, "the slow connection on A is still open")
        .await;

    // The fast reader on A got every message, in order, and saw the slow one leave.
    sink.send(Message::text(
        json!({"type": "say", "room": "flood", "text": "end"}).to_string(),
    ))
    .await
    .unwrap();
    let (_fast, seqs, fast_saw_left) = fast_reads.await.unwrap();
    assert!(
        seqs == (1..=sent as u64).collect::<Vec<_>>(),
        "the fast reader on A missed or reordered messages: {} of {sent}",
        seqs.len()
    );
    let fast_saw_left = fast_saw_left.expect("the fast reader saw the slow one leave");
    assert_eq!(fast_saw_left["member"]["id"], slow_id.as_str());
    assert_eq!(fast_saw_left["reason"], "slow");
    // B and A list the same two members now.
    for node in [&a, &b] {
        let (_, room) = node.get("/api/rooms/flood").await;
        let mut names: Vec<&str> = room["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["fast", "publisher"], "{room}");
    }
}

// ------------------------------------------------------------------ big rooms

#[actix_web::test]
async fn past_presence_events_max_joins_on_b_are_counted_on_a_with_the_cluster_count() {
    let Some(cluster) = Cluster::start("big_rooms_across_nodes").await else {
        return;
    };
    let small = |config: &mut hubbub::config::Config| {
        config.presence_events_max = 2;
        config.member_count_interval = Duration::from_millis(100);
    };
    let a = cluster.node_with(small).await;
    let b = cluster.node_with(small).await;

    // Up to two members, joins are announced.
    let (mut ann, _) = join_on(&a, "ann", "hall").await;
    let (bob, bob_joined) = join_on(&b, "bob", "hall").await;
    assert_eq!(bob_joined["member_count"], 2);
    assert_eq!(
        ann.expect("member_joined").await["member"]["id"],
        bob.id.as_str()
    );
    // The third (on A) makes the room big: counted, on both nodes, to the whole room
    // (the joiner too, as on one node).
    let (amy, amy_joined) = join_on(&a, "amy", "hall").await;
    assert_eq!(amy_joined["member_count"], 3);
    let mut room = vec![ann, bob, amy];
    for client in &mut room {
        let count = client.expect("member_count").await;
        assert_eq!(
            (&count["room"], &count["count"]),
            (&json!("hall"), &json!(3))
        );
    }
    // Joins on B: members on A are told the cluster's count, never member_joined.
    for (i, expected) in [(0, 4), (1, 5), (2, 6)] {
        let (joiner, joined) = join_on(&b, &format!("b{i}"), "hall").await;
        assert_eq!(joined["member_count"], expected, "{joined}");
        room.push(joiner);
        for client in &mut room {
            let count = client.expect("member_count").await;
            assert_eq!(
                (&count["room"], &count["count"]),
                (&json!("hall"), &json!(expected)),
                "{}: {count}",
                client.name
            );
        }
    }
    // Nothing else came to A's members (ann and amy); the count stands.
    for client in [0, 2] {
        room[client].sync().await;
        let presence = who(&mut room[client], "hall").await;
        assert_eq!(presence["member_count"], 6, "{presence}");
    }
    // A leave on B is counted too.
    room.pop().unwrap().close().await;
    for client in [0, 2] {
        assert_eq!(room[client].expect("member_count").await["count"], 5);
    }
}

// ------------------------------------------------------------------ refreshed tokens

fn token(sub: &str, rooms: &[&str]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = json!({"sub": sub, "name": sub, "rooms": rooms, "exp": exp});
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("test claims sign")
}

#[actix_web::test]
async fn a_refreshed_token_that_drops_a_room_removes_the_member_on_every_node() {
    let Some(cluster) = Cluster::start("a_refreshed_token_drops_a_room").await else {
        return;
    };
    let with_auth = |config: &mut hubbub::config::Config| {
        config.auth_key = Some(AuthKey::Secret(Secret::new(SECRET)));
    };
    let a = cluster.node_with(with_auth).await;
    let b = cluster.node_with(with_auth).await;
    let mut bob = connect_with(&b, &token("bob", &["team-red"]), "&room=team-red").await;
    bob.expect("joined").await;
    let mut carol = connect_with(&b, &token("carol", &["lobby"]), "&room=lobby").await;
    carol.expect("joined").await;
    let mut ann = connect_with(&a, &token("ann", &["lobby", "team-red"]), "").await;
    for room in ["lobby", "team-red"] {
        ann.send(json!({"type": "join", "room": room})).await;
        ann.expect("joined").await;
    }
    assert_eq!(
        bob.expect("member_joined").await["member"]["id"],
        ann.id.as_str()
    );
    assert_eq!(
        carol.expect("member_joined").await["member"]["id"],
        ann.id.as_str()
    );

    ann.send(json!({"type": "refresh", "token": token("ann", &["lobby"]), "ref": "r"}))
        .await;
    assert_eq!(ann.expect("refreshed").await["ref"], "r");
    let left = ann.expect("left").await;
    assert_eq!(
        (&left["room"], &left["reason"], &left["ref"]),
        (&json!("team-red"), &json!("kicked"), &json!("r")),
        "{left}"
    );
    let gone = bob.expect("member_left").await;
    assert_eq!(
        (
            &gone["room"],
            &gone["member"]["id"],
            &gone["reason"],
            &gone["last"]
        ),
        (
            &json!("team-red"),
            &json!(ann.id),
            &json!("kicked"),
            &json!(true)
        ),
        "{gone}"
    );
    // Lobby keeps her: carol hears nothing; both nodes list her in lobby only.
    carol.sync().await;
    let red = who(&mut bob, "team-red").await;
    assert_eq!(red["member_count"], 1, "{red}");
    let lobby = who(&mut carol, "lobby").await;
    assert_eq!(lobby["member_count"], 2, "{lobby}");
    for node in [&a, &b] {
        let (_, room) = node.get("/api/rooms/team-red").await;
        let names: Vec<&str> = room["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["bob"], "{room}");
    }
    // Her token no longer lets her back in.
    ann.send(json!({"type": "join", "room": "team-red"})).await;
    ann.expect_error("forbidden").await;
}

// ------------------------------------------------------------------ REDIS_LOG_LEN

/// What one member saw of the room after its `joined`: messages and `resync`s.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Message(u64),
    Resync(u64),
}

/// Reads `client` until it has seen the room up to `last` (a message or a `resync` at or
/// past it); every other event is a failure.
async fn read_up_to(client: &mut Client, last: u64, epoch: &Value) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut at = 0;
    while at < last {
        let event = client.next_event().await;
        match event["type"].as_str() {
            Some("message") => {
                at = event["seq"].as_u64().unwrap();
                seen.push(Seen::Message(at));
            }
            Some("resync") => {
                assert_eq!(event["room"], "log");
                assert_eq!(&event["epoch"], epoch, "Redis kept its data: {event}");
                at = event["seq"].as_u64().unwrap();
                seen.push(Seen::Resync(at));
            }
            other => panic!("unexpected {other:?}: {event}"),
        }
    }
    seen
}

/// What must hold of what a member saw of `1..=total`: runs of messages, each gap-free,
/// the first from 1; a `resync` at `s` only after messages up to at most `s`, and the
/// next run from `s + 1`; no `seq` twice, never a step back; the end at `total`.
fn check_seen(who: &str, seen: &[Seen], total: u64) {
    let mut expected_next = 1;
    let mut last_message = 0;
    for item in seen {
        match *item {
            Seen::Message(seq) => {
                assert!(
                    seq > last_message,
                    "{who}: seq {seq} after {last_message}: {seen:?}"
                );
                assert_eq!(seq, expected_next, "{who}: a gap without resync: {seen:?}");
                last_message = seq;
                expected_next = seq + 1;
            }
            Seen::Resync(seq) => {
                assert!(
                    seq >= last_message && seq <= total,
                    "{who}: resync at {seq} after message {last_message}: {seen:?}"
                );
                expected_next = seq + 1;
            }
        }
    }
    assert_eq!(expected_next, total + 1, "{who}: ends at {total}: {seen:?}");
}

fn summary(seen: &[Seen]) -> String {
    let messages = seen
        .iter()
        .filter(|s| matches!(s, Seen::Message(_)))
        .count();
    let resyncs: Vec<u64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Resync(seq) => Some(*seq),
            Seen::Message(_) => None,
        })
        .collect();
    format!("{messages} messages, resync at {resyncs:?}")
}

#[actix_web::test]
async fn a_subscriber_cut_past_redis_log_len_gives_resync_or_everything_never_a_repeat() {
    let Some(cluster) = Cluster::start("a_subscriber_cut_past_redis_log_len").await else {
        return;
    };
    let short_log = |config: &mut hubbub::config::Config| {
        config.redis_log_len = 10;
        config.rate_limit_per_s = 0; // a burst of 300
    };
    let a = cluster.node_with(short_log).await;
    let b = cluster.node_with(short_log).await;
    let (mut sayer, _) = join_on(&a, "sayer", "log").await;
    let (mut reader, joined) = join_on(&b, "reader", "log").await;
    let epoch = joined["epoch"].clone();
    sayer.expect("member_joined").await;

    const TOTAL: u64 = 300;
    for n in 1..=TOTAL {
        sayer
            .send(json!({"type": "say", "room": "log", "text": format!("m{n}")}))
            .await;
    }
    // Once B has had ten, every node's subscriber connection is killed.
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let message = reader.expect("message").await;
        seen.push(Seen::Message(message["seq"].as_u64().unwrap()));
    }
    let killed = cluster
        .redis
        .cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await;
    let started = Instant::now();
    seen.extend(read_up_to(&mut reader, TOTAL, &epoch).await);
    eprintln!(
        "REDIS_LOG_LEN 10, subscribers killed ({killed:?}) after B's 10th message: B saw {} in {:?}",
        summary(&seen),
        started.elapsed()
    );
    check_seen("B", &seen, TOTAL);
    // The room's log keeps about REDIS_LOG_LEN entries (Redis trims it whole stream
    // nodes at a time, `MAXLEN ~`): far fewer than the burst, so a node that missed
    // more than it holds cannot replay them.
    let log_key = format!("{}:{{log}}:log", cluster.prefix);
    let kept: u64 = redis::from_redis_value(cluster.redis.cli(&["XLEN", &log_key]).await).unwrap();
    eprintln!("the room's log holds {kept} entries");
    assert!((10..TOTAL).contains(&kept), "{log_key} holds {kept}");
    let sayer_seen = read_up_to(&mut sayer, TOTAL, &epoch).await;
    eprintln!("A's sayer saw {}", summary(&sayer_seen));
    check_seen("A", &sayer_seen, TOTAL);

    // Service goes on: the next say reaches B with the next seq.
    sayer
        .send(json!({"type": "say", "room": "log", "text": "after", "ref": "after"}))
        .await;
    let message = reader.expect("message").await;
    assert_eq!(
        (&message["text"], &message["seq"]),
        (&json!("after"), &json!(TOTAL + 1)),
        "{message}"
    );
    assert_eq!(sayer.expect("message").await["ref"], "after");
    reader.sync().await;
}
