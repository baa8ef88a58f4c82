//! One order for everyone: every member of a room, on whichever node, receives the
//! room's messages in the same order with `seq` gap-free, each sender's in the order it
//! sent them; and a connection's replies, and its last words, keep their order across
//! nodes as on one server.

use std::collections::HashSet;

use futures_util::future::join_all;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{
    protocol::{frame::coding::CloseCode, CloseFrame},
    Message,
};

use super::{by_id, entry_of, join_on, Cluster};
use crate::helpers::Client;

const CLIENTS_PER_NODE: usize = 10;
const SAYS_PER_CLIENT: usize = 100;

#[actix_web::test]
async fn concurrent_says_from_two_nodes_reach_every_member_once_in_one_gap_free_order() {
    let Some(cluster) = Cluster::start("concurrent_says_from_two_nodes").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let mut clients = Vec::new();
    for i in 0..2 * CLIENTS_PER_NODE {
        let node = if i < CLIENTS_PER_NODE { &a } else { &b };
        let (client, _) = join_on(node, &format!("s{i}"), "crowd").await;
        clients.push(client);
    }
    let total = 2 * CLIENTS_PER_NODE * SAYS_PER_CLIENT;

    // Everyone sends all of its says at once, then reads until it has every message.
    let runs = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| async move {
            for j in 0..SAYS_PER_CLIENT {
                client
                    .send(json!({"type": "say", "room": "crowd", "text": format!("s{i}-{j}")}))
                    .await;
            }
            let mut messages = Vec::with_capacity(total);
            while messages.len() < total {
                let event = client.next_event().await;
                match event["type"].as_str() {
                    Some("message") => messages.push(event),
                    // Joins after this client's own are presence, not part of the test.
                    Some("member_joined") => {}
                    _ => panic!("s{i}: unexpected {event}"),
                }
            }
            (client, messages)
        });
    let received: Vec<(Client, Vec<Value>)> = join_all(runs).await;

    let senders: Vec<String> = received
        .iter()
        .map(|(client, _)| client.id.clone())
        .collect();
    let reference = &received[0].1;
    for (i, (client, messages)) in received.iter().enumerate() {
        let seqs: Vec<u64> = messages
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        assert!(
            seqs.iter().copied().eq(1..=total as u64),
            "s{i} ({}): seq must run 1..={total} with no gap or repeat",
            client.id
        );
        if let Some(at) = (0..total).find(|&k| messages[k] != reference[k]) {
            panic!(
                "s{i} saw another order than s0: at {at}, {} where s0 saw {}",
                messages[at], reference[at]
            );
        }
    }
    // Exactly once each, and each sender's in its own order.
    let texts: HashSet<&str> = reference
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), total, "every message exactly once");
    for (i, sender) in senders.iter().enumerate() {
        let own: Vec<&str> = reference
            .iter()
            .filter(|m| m["from"]["id"] == sender.as_str())
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        let sent: Vec<String> = (0..SAYS_PER_CLIENT).map(|j| format!("s{i}-{j}")).collect();
        assert_eq!(own, sent, "s{i}'s messages in the order it sent them");
    }
    // Nothing more for anyone: every client syncs while all are still connected (a
    // client dropped early would be a `member_left` in the others' way).
    let mut clients: Vec<Client> = received.into_iter().map(|(client, _)| client).collect();
    for client in &mut clients {
        client.sync().await;
    }
}

#[actix_web::test]
async fn a_connections_replies_keep_its_order_when_the_room_spans_nodes() {
    let Some(cluster) = Cluster::start("a_connections_replies_keep_its_order").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    // Bob, on B, is in both rooms, so every request of ann's (on A) involves both nodes.
    let (mut bob, _) = join_on(&b, "bob", "a").await;
    bob.send(json!({"type": "join", "room": "b"})).await;
    bob.expect("joined").await;

    let mut ann = a.connect("?name=ann").await;
    for frame in [
        json!({"type": "join", "room": "a", "ref": "1"}),
        json!({"type": "join", "room": "b", "ref": "2"}),
        json!({"type": "say", "room": "b", "text": "hi", "ref": "3"}),
        json!({"type": "who", "room": "a", "ref": "4"}),
        json!({"type": "leave", "room": "a", "ref": "5"}),
    ] {
        ann.send(frame).await;
    }
    let replies = [
        ann.next_event().await,
        ann.next_event().await,
        ann.next_event().await,
        ann.next_event().await,
        ann.next_event().await,
    ];
    let kinds: Vec<(&Value, &Value)> = replies.iter().map(|r| (&r["type"], &r["ref"])).collect();
    assert_eq!(
        kinds,
        [
            (&json!("joined"), &json!("1")),
            (&json!("joined"), &json!("2")),
            (&json!("message"), &json!("3")),
            (&json!("presence"), &json!("4")),
            (&json!("left"), &json!("5")),
        ],
        "{replies:?}"
    );
    assert_eq!(replies[0]["room"], "a");
    assert_eq!(replies[1]["room"], "b");
    assert_eq!(replies[2]["seq"], 1);
    let ann_entry = entry_of(&replies[0], &ann.id);
    assert_eq!(
        by_id(&replies[3]["members"]),
        by_id(&json!([entry_of(&replies[0], &bob.id), ann_entry])),
        "who lists bob (on B) and ann"
    );
    // Bob, on B, hears it in the same order.
    for (kind, room) in [
        ("member_joined", "a"),
        ("member_joined", "b"),
        ("message", "b"),
        ("member_left", "a"),
    ] {
        let event = bob.expect(kind).await;
        assert_eq!(event["room"], room, "{event}");
    }
    ann.sync().await;
    bob.sync().await;
}

#[actix_web::test]
async fn what_a_member_on_one_node_says_before_closing_arrives_on_another_before_its_departure() {
    let Some(cluster) = Cluster::start("last_words_across_nodes").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut bob, _) = join_on(&b, "bob", "lobby").await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    bob.expect("member_joined").await;
    for i in 0..20 {
        ann.send(json!({"type": "say", "room": "lobby", "text": format!("last words {i}")}))
            .await;
    }
    // A complete closing handshake: ann reads what came before the server's close.
    ann.send_message(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await;
    ann.expect_close(1000).await;

    for i in 0..20 {
        let message = bob.expect("message").await;
        assert_eq!(message["text"], format!("last words {i}"));
        assert_eq!(message["seq"], i + 1);
    }
    let departed = bob.expect("member_left").await;
    assert_eq!(departed["member"]["id"], ann.id.as_str());
    assert_eq!(departed["reason"], "disconnect");
    bob.sync().await;
}
