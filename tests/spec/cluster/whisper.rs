//! Whispers across nodes: a whisper reaches a member wherever it is connected, and
//! `unknown_member` answers only when the id is nowhere in the cluster.

use serde_json::json;

use super::{join_on, Cluster};

#[actix_web::test]
async fn a_whisper_reaches_a_member_on_another_node() {
    let Some(cluster) = Cluster::start("a_whisper_reaches_a_member_on_another_node").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    let (mut bob, _) = join_on(&b, "bob", "lobby").await;
    ann.expect("member_joined").await;

    ann.send(json!({"type": "whisper", "to": bob.id, "text": "psst", "ref": "w1"}))
        .await;
    let mut own_copy = ann.expect("whisper").await;
    assert_eq!(own_copy["ref"], "w1");
    assert_eq!(own_copy["from"]["id"], ann.id.as_str());
    assert_eq!(own_copy["from"]["name"], "ann");
    assert_eq!(own_copy["to"]["id"], bob.id.as_str());
    assert_eq!(own_copy["to"]["name"], "bob");
    assert_eq!(own_copy["text"], "psst");
    own_copy.as_object_mut().unwrap().remove("ref");
    assert_eq!(bob.expect("whisper").await, own_copy);

    // And back, from B to A.
    bob.send(json!({"type": "whisper", "to": ann.id, "text": "hi back"}))
        .await;
    let back = bob.expect("whisper").await;
    assert_eq!(ann.expect("whisper").await, back);
    assert_eq!(back["from"]["id"], bob.id.as_str());
    ann.sync().await;
    bob.sync().await;
}

#[actix_web::test]
async fn a_whisper_reaches_a_connection_on_another_node_that_is_in_no_room() {
    let Some(cluster) = Cluster::start("a_whisper_reaches_a_connection_in_no_room").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let mut ann = a.connect("?name=ann").await;
    let mut bob = b.connect("?name=bob").await;
    ann.send(json!({"type": "whisper", "to": bob.id, "text": "no room needed"}))
        .await;
    let own_copy = ann.expect("whisper").await;
    assert_eq!(bob.expect("whisper").await, own_copy);
    assert_eq!(own_copy["to"]["id"], bob.id.as_str());
}

#[actix_web::test]
async fn a_whisper_is_unknown_member_only_when_the_id_is_nowhere_in_the_cluster() {
    let Some(cluster) = Cluster::start("a_whisper_is_unknown_member_only_when").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    let (bob, _) = join_on(&b, "bob", "lobby").await;
    ann.expect("member_joined").await;
    let bob_id = bob.id.clone();

    // Never issued: ids start from the clock in microseconds.
    ann.send(json!({"type": "whisper", "to": "1", "text": "hi", "ref": "w1"}))
        .await;
    assert_eq!(ann.expect_error("unknown_member").await["ref"], "w1");

    // Gone from B: once A has heard of the departure, the id is unknown everywhere.
    bob.close().await;
    let gone = ann.expect("member_left").await;
    assert_eq!(gone["member"]["id"], bob_id.as_str());
    ann.send(json!({"type": "whisper", "to": bob_id, "text": "hi", "ref": "w2"}))
        .await;
    assert_eq!(ann.expect_error("unknown_member").await["ref"], "w2");
}
