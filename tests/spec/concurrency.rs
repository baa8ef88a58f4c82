//! Many members saying at once: every member gets every message exactly once, in `seq`
//! order, and each sender's messages keep their order.

use std::collections::HashMap;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, TestApp, DEADLINE};

const CLIENTS: usize = 20;
const SAYS_EACH: usize = 100;

#[actix_web::test]
async fn twenty_clients_saying_a_hundred_times_each_all_see_two_thousand_in_seq_order() {
    let app = spawn_app().await;
    clients_saying_at_once_all_see_one_seq_order(&app, CLIENTS, SAYS_EACH).await;
}

/// `clients_count` members of one room each say `says_each` messages as fast as they can:
/// every member receives all of them exactly once, in `seq` order from 1 without a gap,
/// each sender's order kept. (Also run over a late backend: `backend_seam.rs`.)
pub async fn clients_saying_at_once_all_see_one_seq_order(
    app: &TestApp,
    clients_count: usize,
    says_each: usize,
) {
    let mut clients = Vec::new();
    for i in 0..clients_count {
        clients.push(app.member(&format!("c{i}"), "crowd").await);
    }
    let total = clients_count * says_each;

    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for client in clients {
        let id = client.id.clone();
        let (mut sink, mut stream) = client.socket.split();
        readers.push(actix_web::rt::spawn(async move {
            let mut messages: Vec<Value> = Vec::with_capacity(total);
            while messages.len() < total {
                let frame = tokio::time::timeout(DEADLINE, stream.next())
                    .await
                    .expect("messages keep coming")
                    .expect("connection open")
                    .expect("valid frame");
                if let Message::Text(text) = frame {
                    let event: Value = serde_json::from_str(&text).unwrap();
                    if event["type"] == "message" {
                        messages.push(event);
                    }
                }
            }
            messages
        }));
        writers.push(actix_web::rt::spawn(async move {
            for n in 0..says_each {
                let say = json!({"type": "say", "room": "crowd", "text": format!("{id}:{n}")});
                sink.feed(Message::text(say.to_string())).await.unwrap();
            }
            sink.flush().await.unwrap();
            sink
        }));
    }
    let mut sinks = Vec::new();
    for writer in writers {
        sinks.push(writer.await.unwrap());
    }
    let mut orders = Vec::new();
    for reader in readers {
        let messages = reader.await.unwrap();
        let seqs: Vec<u64> = messages
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=total as u64).collect();
        assert_eq!(seqs, expected, "every message once, in seq order");
        let mut next_per_sender: HashMap<String, usize> = HashMap::new();
        for message in &messages {
            let (sender, n) = message["text"].as_str().unwrap().split_once(':').unwrap();
            assert_eq!(message["from"]["id"], sender);
            let next = next_per_sender.entry(sender.to_string()).or_default();
            assert_eq!(n.parse::<usize>().unwrap(), *next, "sender order kept");
            *next += 1;
        }
        assert_eq!(next_per_sender.len(), clients_count);
        assert!(next_per_sender.values().all(|count| *count == says_each));
        orders.push(
            messages
                .iter()
                .map(|m| m["text"].clone())
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        orders.windows(2).all(|pair| pair[0] == pair[1]),
        "one order for everyone"
    );
}
