//! Redis in trouble: stopped, back with its data or without it, paused, its subscriber
//! connections killed or cut off by the output-buffer limit. Through all of it the
//! connections stay open, what needs Redis says `unavailable` (HTTP 503) and does
//! nothing, presence survives, and once Redis answers again the nodes pick up by
//! themselves: `seq` goes on with no gap and no repeat, or, where the data was lost, the
//! room gets a new `epoch` and its members a `resync`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{
    by_id, entry_of,
    nodes::{assert_in_order, join, messages_on, next_event_by, quiet, say_until_served},
    who, Cluster, Persistence,
};
use crate::{
    helpers::{Client, TestApp, DEADLINE},
    metrics::{promtool_check, promtool_or_skip, scrape},
};

/// How long the nodes may take to be served again once Redis answers.
const BACK_WITHIN: Duration = Duration::from_secs(10);

/// The ids `listing` (a `presence` or a room's JSON) names, sorted.
fn ids(listing: &Value) -> Vec<Value> {
    by_id(&listing["members"])
        .into_iter()
        .map(|member| member["id"].clone())
        .collect()
}

/// The ids of `clients`, sorted as [`by_id`] sorts.
fn ids_of(clients: &[&Client]) -> Vec<Value> {
    let mut ids: Vec<u64> = clients
        .iter()
        .map(|client| client.id.parse().expect("ids are decimal"))
        .collect();
    ids.sort_unstable();
    ids.into_iter().map(|id| json!(id.to_string())).collect()
}

/// `client` sends `frame` (with a `ref`) and must get `error` `unavailable` for it,
/// with that `ref`, as its very next event.
async fn refused(client: &mut Client, frame: Value) {
    let reference = frame["ref"].clone();
    client.send(frame.clone()).await;
    let reply = next_event_by(client, Instant::now() + DEADLINE)
        .await
        .unwrap_or_else(|| panic!("{}: no answer within {DEADLINE:?}", client.name));
    assert_eq!(
        (&reply["type"], &reply["code"], &reply["ref"]),
        (&json!("error"), &json!("unavailable"), &reference),
        "{frame} while Redis is down: {reply}"
    );
    assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// Two nodes, ann on `a` and bob on `b`, both in `lobby`, after ann said `says`
/// messages both heard with `seq` 1, 2, ...
struct InLobby {
    a: TestApp,
    b: TestApp,
    ann: Client,
    bob: Client,
    /// The room's epoch, from bob's `joined`.
    epoch: Value,
}

async fn in_lobby(cluster: &Cluster, says: u64) -> InLobby {
    let a = cluster.node().await;
    let b = cluster.node().await;
    let mut ann = a.connect("?name=ann").await;
    let mut bob = b.connect("?name=bob").await;
    join(&mut ann, "lobby", &mut []).await;
    let bob_joined = join(&mut bob, "lobby", &mut [&mut ann]).await;
    for i in 1..=says {
        ann.send(json!({"type": "say", "room": "lobby", "text": format!("before {i}")}))
            .await;
        assert_eq!(ann.expect("message").await["seq"], i);
        assert_eq!(bob.expect("message").await["seq"], i);
    }
    InLobby {
        a,
        b,
        ann,
        bob,
        epoch: bob_joined["epoch"].clone(),
    }
}

/// An upgrade to `url` must be refused: its HTTP status, `Retry-After` and JSON body.
async fn refused_upgrade(url: &str) -> (u16, Option<String>, Value) {
    let attempt = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
        .await
        .expect("an answer to the upgrade in time");
    match attempt {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("Retry-After")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let body = response.body().clone().unwrap_or_default();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (response.status().as_u16(), retry_after, body)
        }
        Err(other) => panic!("expected an HTTP refusal of {url}, got {other}"),
        Ok(_) => panic!("expected the upgrade to {url} to be refused, it was accepted"),
    }
}

/// A non-JSON text is still answered with `echo`, as the next event: the connection is
/// open and nothing else was queued for it.
async fn still_echoes(client: &mut Client, text: &str) {
    client.send_text(text).await;
    let reply = next_event_by(client, Instant::now() + DEADLINE)
        .await
        .unwrap_or_else(|| panic!("{}: no answer within {DEADLINE:?}", client.name));
    assert_eq!(
        (&reply["type"], &reply["text"]),
        (&json!("echo"), &json!(text)),
        "{}: {reply}",
        client.name
    );
}

#[actix_web::test]
async fn while_redis_is_down_commands_get_unavailable_and_once_back_seq_goes_on() {
    let Some(mut cluster) = Cluster::start_with("while_redis_is_down", Persistence::Aof).await
    else {
        return;
    };
    let InLobby {
        a,
        b,
        mut ann,
        mut bob,
        epoch,
    } = in_lobby(&cluster, 3).await;

    let healthy = scrape(&a).await;
    for op in ["ask", "publish"] {
        let series = format!("hubbub_store_errors_total{{op=\"{op}\"}}");
        assert_eq!(healthy.value(&series), 0.0, "{series} before Redis stopped");
    }
    // The joins and says so far went to Redis in pipelines, each timed once.
    let pipelines = healthy.value("hubbub_store_round_trip_seconds_count");
    assert!(pipelines >= 1.0, "no store round trip counted");
    assert_eq!(
        healthy.value("hubbub_store_round_trip_seconds_bucket{le=\"+Inf\"}"),
        pipelines
    );
    assert!(healthy.value("hubbub_store_round_trip_seconds_sum") > 0.0);

    cluster.redis.stop().await;
    let down = Instant::now();
    refused(
        &mut ann,
        json!({"type": "say", "room": "lobby", "text": "lost?", "ref": "say"}),
    )
    .await;
    refused(
        &mut ann,
        json!({"type": "join", "room": "elsewhere", "ref": "join"}),
    )
    .await;
    refused(
        &mut bob,
        json!({"type": "who", "room": "lobby", "ref": "who"}),
    )
    .await;
    let request = a
        .http
        .post(a.url("/api/rooms/lobby/messages"))
        .header("Content-Type", "application/json")
        .body(r#"{"text":"nobody will see this"}"#);
    let response = tokio::time::timeout(DEADLINE, request.send())
        .await
        .expect("HTTP answer in time")
        .expect("HTTP request");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("Retry-After").cloned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 503, "publish while Redis is down: {body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let retry_after = retry_after.expect("a 503 says when to retry (Retry-After)");
    assert!(
        retry_after
            .to_str()
            .is_ok_and(|seconds| seconds.parse::<u64>().is_ok()),
        "Retry-After in seconds: {retry_after:?}"
    );
    // A new connection cannot be entered in the cluster's directory (nobody could
    // whisper to it): refused with 503 before the upgrade, told when to retry.
    let (status, retry_after, body) = refused_upgrade(&b.ws_url("/ws?name=dan")).await;
    assert_eq!(status, 503, "an upgrade while Redis is down: {body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    assert!(retry_after.is_some(), "a 503 upgrade says when to retry");
    // What Redis did not take is counted, by what it was, in a valid exposition.
    let counted = scrape(&a).await;
    for op in ["ask", "publish"] {
        let series = format!("hubbub_store_errors_total{{op=\"{op}\"}}");
        assert!(
            counted.value(&series) >= 1.0,
            "{series} while Redis is down"
        );
    }
    if let Some(promtool) = promtool_or_skip("a cluster node's /metrics under promtool") {
        let (clean, said) = promtool_check(&promtool, &counted.text).await;
        assert!(clean, "promtool on a cluster node's /metrics: {said}");
    }
    // Connections stay open and get nothing else (no message from a refused say).
    still_echoes(&mut ann, "still here?").await;
    still_echoes(&mut bob, "me too").await;
    eprintln!("redis down: refusals took {:?}", down.elapsed());

    cluster.redis.restart().await;
    let back = Instant::now();
    let (served, attempts) = say_until_served(&mut ann, "lobby", "after", back + BACK_WITHIN).await;
    eprintln!(
        "redis back with its data: served {:?} after the restart, in {attempts} attempts",
        back.elapsed()
    );
    assert_eq!(
        served["seq"], 4,
        "seq goes on from before, no gap: {served}"
    );
    // Bob's next event is that very message: nothing refused was published after all.
    let heard = bob.expect("message").await;
    assert_eq!(
        (&heard["seq"], &heard["text"]),
        (&served["seq"], &served["text"]),
        "{heard}"
    );
    // Presence was kept: both still listed, on both nodes, in the same epoch.
    let expected = ids_of(&[&ann, &bob]);
    for client in [&mut ann, &mut bob] {
        let presence = who(client, "lobby").await;
        assert_eq!(ids(&presence), expected, "{presence}");
    }
    for node in [&a, &b] {
        let (status, room) = node.get("/api/rooms/lobby").await;
        assert_eq!(status, 200, "{room}");
        assert_eq!(ids(&room), expected, "{room}");
    }
    // The room was not renewed: a resume from before the outage recovers exactly seq 4.
    let mut cid = b.connect("?name=cid").await;
    cid.send(json!({"type": "join", "room": "lobby", "since": {"seq": 3, "epoch": epoch}}))
        .await;
    let resumed = cid.expect("joined").await;
    assert_eq!(resumed["epoch"], epoch, "{resumed}");
    assert_eq!(resumed["recovered"], true, "{resumed}");
    let missed: Vec<&Value> = resumed["history"]
        .as_array()
        .expect("history")
        .iter()
        .collect();
    assert_eq!(missed.len(), 1, "{resumed}");
    assert_eq!(missed[0]["seq"], 4, "{resumed}");
}

#[actix_web::test]
async fn redis_back_empty_gives_a_new_epoch_a_resync_and_keeps_who_is_connected() {
    let Some(mut cluster) = Cluster::start_with("redis_back_empty", Persistence::None).await else {
        return;
    };
    let InLobby {
        a,
        b,
        mut ann,
        mut bob,
        epoch: old_epoch,
    } = in_lobby(&cluster, 2).await;

    for node in [&a, &b] {
        let before = scrape(node).await;
        for series in [
            "hubbub_cluster_rooms_rebuilt_total",
            "hubbub_cluster_subscriber_reconnects_total",
        ] {
            assert_eq!(before.value(series), 0.0, "{series} before the restart");
        }
    }

    // Back without its data: as a Redis that lost it.
    cluster.redis.restart().await;
    let back = Instant::now();
    let deadline = back + BACK_WITHIN;
    let mut resyncs = Vec::new();
    for client in [&mut ann, &mut bob] {
        let Some(resync) = next_event_by(client, deadline).await else {
            panic!("{}: no resync within {BACK_WITHIN:?}", client.name);
        };
        assert_eq!(resync["type"], "resync", "{}: {resync}", client.name);
        assert_eq!(resync["room"], "lobby", "{resync}");
        assert!(resync["epoch"].is_string(), "{resync}");
        assert_ne!(resync["epoch"], old_epoch, "the data is gone: a new epoch");
        assert!(resync["seq"].is_u64(), "{resync}");
        resyncs.push(resync);
    }
    eprintln!(
        "redis back empty: both resynced {:?} after the restart",
        back.elapsed()
    );
    assert_eq!(
        (&resyncs[0]["epoch"], &resyncs[0]["seq"]),
        (&resyncs[1]["epoch"], &resyncs[1]["seq"]),
        "one new epoch for the room on both nodes"
    );
    // Each node counts the room it found rebuilt and the subscriber it replaced.
    for node in [&a, &b] {
        let after = scrape(node).await;
        for series in [
            "hubbub_cluster_rooms_rebuilt_total",
            "hubbub_cluster_subscriber_reconnects_total",
        ] {
            assert!(after.value(series) >= 1.0, "{series} after the restart");
        }
    }
    let new_epoch = resyncs[0]["epoch"].clone();
    let from_seq = resyncs[0]["seq"].as_u64().expect("seq");

    // Who is connected stays in presence, on both nodes.
    let expected = ids_of(&[&ann, &bob]);
    for client in [&mut ann, &mut bob] {
        let presence = who(client, "lobby").await;
        assert_eq!(ids(&presence), expected, "{presence}");
    }
    // New says go on from the resync's seq.
    let (served, _) = say_until_served(&mut ann, "lobby", "after", deadline).await;
    assert_eq!(served["seq"], from_seq + 1, "{served}");
    let heard = bob.expect("message").await;
    assert_eq!(
        (&heard["seq"], &heard["text"]),
        (&served["seq"], &served["text"])
    );

    // A client resuming from the old epoch is told its view is stale.
    let mut cid = b.connect("?name=cid").await;
    cid.send(json!({
        "type": "join",
        "room": "lobby",
        "since": {"seq": 2, "epoch": old_epoch},
    }))
    .await;
    let resumed = cid.expect("joined").await;
    assert_eq!(resumed["recovered"], false, "{resumed}");
    assert_eq!(resumed["epoch"], new_epoch, "{resumed}");
    assert_eq!(resumed["seq"], from_seq + 1, "{resumed}");
    let mut listed = ids(&resumed);
    listed.retain(|id| *id != json!(cid.id));
    assert_eq!(listed, expected, "{resumed}");
    for client in [&mut ann, &mut bob] {
        let arrived = client.expect("member_joined").await;
        assert_eq!(arrived["member"], entry_of(&resumed, &cid.id), "{arrived}");
    }
    // And the new epoch's messages reach everyone, the resumed client too.
    let (served, _) = say_until_served(&mut bob, "lobby", "new epoch", deadline).await;
    assert_eq!(served["seq"], from_seq + 2, "{served}");
    for client in [&mut ann, &mut cid] {
        let heard = client.expect("message").await;
        assert_eq!(
            (&heard["seq"], &heard["text"]),
            (&served["seq"], &served["text"])
        );
    }
}

#[actix_web::test]
async fn redis_paused_for_less_than_the_node_timeout_loses_no_node() {
    let Some(cluster) = Cluster::start("redis_paused_briefly").await else {
        return;
    };
    let timeout = Duration::from_millis(2000);
    let pause = timeout.mul_f64(0.6);
    let a = cluster
        .node_with(|config| config.node_timeout = timeout)
        .await;
    let b = cluster
        .node_with(|config| config.node_timeout = timeout)
        .await;
    let mut ann = a.connect("?name=ann").await;
    let mut bob = b.connect("?name=bob").await;
    join(&mut ann, "lobby", &mut []).await;
    join(&mut bob, "lobby", &mut [&mut ann]).await;

    cluster.redis.pause();
    // Nothing happens while Redis sleeps (and the connections stay open)...
    quiet(&mut [&mut ann, &mut bob], pause, "while Redis is paused").await;
    cluster.redis.resume();
    // ...nor once it wakes up: no node was lost, so nobody leaves.
    quiet(
        &mut [&mut ann, &mut bob],
        2 * timeout,
        "after Redis was paused",
    )
    .await;

    let (served, attempts) =
        say_until_served(&mut ann, "lobby", "awake", Instant::now() + BACK_WITHIN).await;
    assert_eq!(served["seq"], 1, "{served}");
    assert_eq!(attempts, 1, "Redis answers again: nothing to wait for");
    let heard = bob.expect("message").await;
    assert_eq!(heard["text"], served["text"]);
    let expected = ids_of(&[&ann, &bob]);
    for client in [&mut ann, &mut bob] {
        let presence = who(client, "lobby").await;
        assert_eq!(ids(&presence), expected, "{presence}");
    }
}

/// A node for the burst tests: no rate limit (the bursts are far over it) and room to
/// queue what a test client has not read yet.
async fn burst_node(cluster: &Cluster) -> crate::helpers::TestApp {
    cluster
        .node_with(|config| {
            config.rate_limit_per_s = 0;
            config.max_pending_bytes = 64 << 20;
        })
        .await
}

/// The `say` frame of message `text`.
fn say(text: &str) -> Message {
    Message::text(json!({"type": "say", "room": "burst", "text": text}).to_string())
}

#[actix_web::test]
async fn killing_the_subscriber_connections_mid_burst_loses_no_message() {
    const TOTAL: usize = 500;
    const HALF: usize = TOTAL / 2;
    const KILL_AFTER: usize = 50;
    let Some(cluster) = Cluster::start("killing_the_subscriber").await else {
        return;
    };
    let a = burst_node(&cluster).await;
    let b = burst_node(&cluster).await;
    let mut ann = a.connect("?name=ann").await;
    let mut bob = b.connect("?name=bob").await;
    join(&mut ann, "burst", &mut []).await;
    join(&mut bob, "burst", &mut [&mut ann]).await;
    let texts: Vec<String> = (0..TOTAL).map(|i| format!("burst {i}")).collect();

    // Ann sends the first half at once; once bob has 50 of them, every subscriber
    // connection is killed, with the rest of the first half still in flight, and ann
    // sends the second half while the nodes resubscribe.
    let (mut sink, mut ann_stream) = ann.socket.split();
    let (killed, on_kill) = tokio::sync::oneshot::channel::<()>();
    let per_frame = DEADLINE;
    let sending = async {
        for text in &texts[..HALF] {
            sink.send(say(text)).await.expect("send");
        }
        on_kill.await.expect("the kill happens");
        for text in &texts[HALF..] {
            sink.send(say(text)).await.expect("send");
        }
        sink
    };
    let bob_reads = async {
        let mut got = messages_on(&mut bob.socket, KILL_AFTER, per_frame, "bob").await;
        let victims = cluster
            .redis
            .cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
            .await;
        let killed_at = got.len();
        killed.send(()).expect("the sender waits");
        got.extend(messages_on(&mut bob.socket, TOTAL - KILL_AFTER, per_frame, "bob").await);
        (got, victims, killed_at)
    };
    let ann_reads = messages_on(&mut ann_stream, TOTAL, per_frame, "ann");
    let started = Instant::now();
    let (_sink, (bob_got, victims, killed_at), ann_got) =
        tokio::join!(sending, bob_reads, ann_reads);
    eprintln!(
        "subscriber killed after bob's message {killed_at}: {victims:?} connections; \
         all {TOTAL} in {:?}",
        started.elapsed()
    );
    assert!(
        matches!(victims, redis::Value::Int(n) if n >= 2),
        "each node's subscriber connection was killed: {victims:?}"
    );
    assert_in_order(&bob_got, 1, &texts, "bob (node B)");
    assert_in_order(&ann_got, 1, &texts, "ann (node A)");
    // Nothing more: no repeat of a message caught up twice.
    quiet(
        &mut [&mut bob],
        Duration::from_millis(300),
        "after the burst",
    )
    .await;
}

/// The ids of the Redis connections in pub/sub mode (`CLIENT LIST TYPE pubsub`).
async fn subscriber_ids(cluster: &Cluster) -> Vec<String> {
    let list = cluster
        .redis
        .cli(&["CLIENT", "LIST", "TYPE", "pubsub"])
        .await;
    let list: String = redis::from_redis_value(list).expect("CLIENT LIST is text");
    list.lines()
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .map(str::to_string)
        .collect()
}

#[actix_web::test]
async fn a_subscriber_cut_off_by_the_output_buffer_limit_catches_up_every_message() {
    const TOTAL: usize = 2000;
    let Some(cluster) = Cluster::start("a_subscriber_cut_off").await else {
        return;
    };
    let a = burst_node(&cluster).await;
    // B is a process of its own, so it can be made a node too busy to read (SIGSTOP):
    // meanwhile Redis piles up what it publishes to B past the limit and cuts B off.
    // Its own NODE_TIMEOUT_MS outlasts the stop, so nobody takes it for lost.
    let url = cluster.redis.url();
    let b = crate::config::Binary::start(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_PREFIX", cluster.prefix.as_str()),
        ("NODE_TIMEOUT_MS", "5000"),
        ("WORKERS", "2"),
        ("RATE_LIMIT_PER_S", "0"),
        ("MAX_PENDING_BYTES", "67108864"),
    ])
    .await;
    let mut ann = a.connect("?name=ann").await;
    let mut bob = super::nodes::connect_to(&b, "bob").await;
    join(&mut ann, "burst", &mut []).await;
    join(&mut bob, "burst", &mut [&mut ann]).await;
    cluster
        .redis
        .cli(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 256kb 128kb 1",
        ])
        .await;
    // 8 KB each, 16 MB in all: more than the kernel's socket buffers take while B
    // sleeps, so the rest piles up in Redis.
    let filler = "x".repeat(8000);
    let texts: Vec<String> = (0..TOTAL).map(|i| format!("{i:04} {filler}")).collect();
    let before = subscriber_ids(&cluster).await;

    let (mut sink, mut ann_stream) = ann.socket.split();
    let per_frame = DEADLINE;
    let sending = async {
        for (i, text) in texts.iter().enumerate() {
            if i == 100 {
                b.signal("STOP");
            }
            sink.send(say(text)).await.expect("send");
        }
        sink
    };
    let started = Instant::now();
    let ann_reads = async {
        let got = messages_on(&mut ann_stream, TOTAL, per_frame, "ann").await;
        // Everything is in Redis once ann has all of it back: B may wake up.
        b.signal("CONT");
        got
    };
    let (_sink, ann_got, bob_got) = tokio::join!(
        sending,
        ann_reads,
        messages_on(&mut bob.socket, TOTAL, per_frame, "bob"),
    );
    // Redis 7.0 does not count cut-offs in INFO; a subscriber connection with another
    // id afterwards is one that was cut off and opened again.
    let after = subscriber_ids(&cluster).await;
    let replaced = before.iter().filter(|id| !after.contains(id)).count();
    eprintln!(
        "output-buffer limit: {TOTAL} messages of ~8 KB, B stopped from the 100th until \
         all were stored, in {:?}; {replaced} of {} subscriber connections replaced",
        started.elapsed(),
        before.len()
    );
    assert!(
        replaced >= 1,
        "the stopped node's subscriber was never cut off"
    );
    assert_in_order(&ann_got, 1, &texts, "ann (A)");
    assert_in_order(&bob_got, 1, &texts, "bob (B, cut off)");
    quiet(
        &mut [&mut bob],
        Duration::from_millis(300),
        "after the burst",
    )
    .await;
}

#[actix_web::test]
async fn a_first_join_while_the_subscribers_are_cut_is_answered_and_leaves_no_ghost() {
    let Some(cluster) = Cluster::start("a_first_join_while_cut").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let mut bob = b.connect("?name=bob").await;
    join(&mut bob, "lobby", &mut []).await;
    let mut ann = a.connect("?name=ann").await;
    // Every node's subscriber goes, and ann's join (A's first member in the room) is
    // sent at once: it races A's new subscription. Whether A heard the room's snapshot
    // and the join or lost them with the connection (then it fetches the room and
    // answers from it), ann gets her `joined`, B hears of her, and no ghost of her
    // stays behind. (Which way the race went is not forced here.)
    cluster
        .redis
        .cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await;
    ann.send(json!({"type": "join", "room": "lobby", "ref": "j"}))
        .await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["ref"], "j", "{joined}");
    assert_eq!(joined["member_count"], 2, "{joined}");
    let arrived = bob.wait_for("member_joined").await;
    assert_eq!(arrived["member"]["id"], json!(ann.id), "{arrived}");
    // The room works both ways from here.
    ann.send(json!({"type": "say", "room": "lobby", "text": "made it"}))
        .await;
    let said = bob.wait_for("message").await;
    assert_eq!(said["text"], "made it", "{said}");
    // And ann leaving takes her out of Redis too: bob is alone in `who` on both nodes.
    ann.close().await;
    let left = bob.wait_for("member_left").await;
    assert_eq!(left["member"]["id"], arrived["member"]["id"], "{left}");
    for node in [&a, &b] {
        let listing = who(&mut node.connect("?name=eve").await, "lobby").await;
        assert_eq!(listing["member_count"], 1, "no ghost of ann: {listing}");
    }
}
