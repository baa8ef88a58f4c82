//! History and resuming come from the cluster's shared store: a member joining on B
//! gets what was said on A, and a client that saw a room on A resumes it on B.

use serde_json::{json, Value};

use super::{join_on, Cluster};
use crate::helpers::{Client, TestApp};

/// `client` says `text` in `room` and waits for its own copy.
async fn say(client: &mut Client, room: &str, text: &str) -> Value {
    client
        .send(json!({"type": "say", "room": room, "text": text}))
        .await;
    let message = client.expect("message").await;
    assert_eq!(message["text"], text);
    message
}

fn texts(joined: &Value) -> Vec<&str> {
    joined["history"]
        .as_array()
        .expect("history is an array")
        .iter()
        .map(|m| m["text"].as_str().expect("a text"))
        .collect()
}

#[actix_web::test]
async fn a_member_joining_on_one_node_gets_the_history_said_on_another() {
    let Some(cluster) = Cluster::start("a_member_joining_on_one_node_gets_history").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, ann_joined) = join_on(&a, "ann", "lobby").await;
    let mut said = Vec::new();
    for text in ["m1", "m2", "m3"] {
        said.push(say(&mut ann, "lobby", text).await);
    }
    let (_bob, bob_joined) = join_on(&b, "bob", "lobby").await;
    assert_eq!(bob_joined["history"], json!(said), "{bob_joined}");
    assert_eq!(bob_joined["seq"], 3);
    assert_eq!(
        bob_joined["epoch"], ann_joined["epoch"],
        "one room, one epoch"
    );
    assert!(
        ann_joined["epoch"].as_str().is_some_and(|e| !e.is_empty()),
        "{ann_joined}"
    );
}

/// Ann sees two messages on A and goes; bob (on B) says three more. Returns bob and
/// the `(seq, epoch)` ann saw.
async fn ann_misses_three(a: &TestApp, b: &TestApp) -> (Client, u64, Value) {
    let (mut ann, ann_joined) = join_on(a, "ann", "lobby").await;
    let (mut bob, _) = join_on(b, "bob", "lobby").await;
    ann.expect("member_joined").await;
    say(&mut ann, "lobby", "m1").await;
    let seen = say(&mut ann, "lobby", "m2").await["seq"].as_u64().unwrap();
    assert_eq!(bob.expect("message").await["text"], "m1");
    assert_eq!(bob.expect("message").await["text"], "m2");
    ann.close().await;
    assert_eq!(bob.expect("member_left").await["reason"], "disconnect");
    for text in ["m3", "m4", "m5"] {
        say(&mut bob, "lobby", text).await;
    }
    (bob, seen, ann_joined["epoch"].clone())
}

#[actix_web::test]
async fn a_client_that_saw_a_room_on_one_node_resumes_it_on_another() {
    let Some(cluster) = Cluster::start("a_client_resumes_on_another_node").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (_bob, seen, epoch) = ann_misses_three(&a, &b).await;

    let mut ann = b.connect("?name=ann").await;
    ann.send(json!({"type": "join", "room": "lobby", "since": {"seq": seen, "epoch": epoch}}))
        .await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(
        texts(&joined),
        ["m3", "m4", "m5"],
        "exactly what was missed"
    );
    let seqs: Vec<&Value> = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["seq"])
        .collect();
    assert_eq!(seqs, [&json!(3), &json!(4), &json!(5)]);
    assert_eq!((&joined["seq"], &joined["epoch"]), (&json!(5), &epoch));

    // Nothing missed since: recovered, nothing to replay.
    ann.send(json!({"type": "join", "room": "lobby", "since": {"seq": 5, "epoch": epoch}}))
        .await;
    let again = ann.expect("joined").await;
    assert_eq!(
        (&again["recovered"], &again["history"]),
        (&json!(true), &json!([]))
    );
}

#[actix_web::test]
async fn resuming_on_another_node_with_a_wrong_epoch_is_not_recovered() {
    let Some(cluster) = Cluster::start("resuming_with_a_wrong_epoch").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (_bob, seen, _) = ann_misses_three(&a, &b).await;

    let mut ann = b.connect("?name=ann").await;
    ann.send(
        json!({"type": "join", "room": "lobby", "since": {"seq": seen, "epoch": "not-the-epoch"}}),
    )
    .await;
    let joined = ann.expect("joined").await;
    assert_eq!(joined["recovered"], false, "{joined}");
    assert_eq!(
        texts(&joined),
        ["m1", "m2", "m3", "m4", "m5"],
        "the usual recent history"
    );
}
